"""Trainables of the cluster tests (module level: every node imports them from the repository)."""

from __future__ import annotations

import os
import time

import ray

import tuner as tune


def where(config):
    """Reports its node, GPU ids and when it ran, then sleeps, so overlaps can be checked."""
    ctx = tune.get_context()
    start = time.time()
    time.sleep(config["sleep"])
    tune.report({"node": ray.get_runtime_context().get_node_id(), "gpu_ids": ",".join(ctx.gpu_ids),
                 "cuda": os.environ.get("CUDA_VISIBLE_DEVICES", ""), "start": start, "end": time.time()})


def counter_on_node(config):
    """Counts to config["n"], checkpointing every step; each result names its node and process."""
    state = tune.get_checkpoint() or {"step": 0}
    node = ray.get_runtime_context().get_node_id()
    for step in range(state["step"] + 1, config["n"] + 1):
        time.sleep(config["sleep"])
        tune.report({"step": step, "node": node, "pid": os.getpid()}, checkpoint={"step": step})
