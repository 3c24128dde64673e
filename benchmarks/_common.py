"""Shared bits of the benchmarks: a shared local Ray, timing and a markdown table."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("RAY_DEDUP_LOGS", "0")


def start_ray(num_cpus: int = 2) -> None:
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=num_cpus, num_gpus=0, include_dashboard=False, log_to_driver=False,
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
