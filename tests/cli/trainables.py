"""Trainables for the CLI tests, imported by path (``tests.cli.trainables:quad``) as the CLI does."""

from __future__ import annotations

import time

import tuner as tune


def quad(config):
    for step in range(1, config.get("steps", 3) + 1):
        tune.report({"loss": (config["x"] - 3) ** 2 + 1.0 / step}, checkpoint={"step": step})


def fails_above_zero(config):
    tune.report({"loss": abs(config["x"])})
    if config["x"] > 0:
        raise RuntimeError("x > 0 diverged")


def slow(config):
    start = (tune.get_checkpoint() or {"step": 0})["step"]
    for step in range(start + 1, config["steps"] + 1):
        time.sleep(config.get("sleep", 0.2))
        tune.report({"loss": config["x"] / step}, checkpoint={"step": step})


NOT_CALLABLE = 3
