"""Shared bits of the benchmarks: a shared local Ray, timing and a markdown table."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("RAY_DEDUP_LOGS", "0")


def start_ray(num_cpus: int = 2) -> None:
    import ray

    if not ray.is_initialized():  # "local": a Ray of its own, even where a `ray start` one is running
        ray.init(address="local", num_cpus=num_cpus, num_gpus=0, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def scratch_dir(prefix: str) -> str:
    return tempfile.mkdtemp(prefix=f"bench_{prefix}_")


def ray_tune_available() -> bool:
    try:
        import ray.tune  # noqa: F401
    except ImportError:
        return False
    return True


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def run_seeds(runners: dict[str, Callable[[int], dict[str, Any]]], seeds: int,
              describe: Callable[[dict[str, Any]], str], first_seed: int = 0) -> dict[str, list[dict[str, Any]]]:
    """Every runner on seeds ``first_seed`` .. ``first_seed + seeds - 1``, seeds outermost (a slow spell
    of the shared machine hits every method alike); one ``describe``d line per run on stderr. Returns
    each runner's measurements."""
    measured: dict[str, list[dict[str, Any]]] = {name: [] for name in runners}
    for seed in range(first_seed, first_seed + seeds):
        for name, fn in runners.items():
            measured[name].append(fn(seed))
            print(f"{name} seed {seed}: {describe(measured[name][-1])}", file=sys.stderr, flush=True)
    return measured
