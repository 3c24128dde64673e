"""A worker killed for memory is named as such in its trial's error: a real kill by Ray's memory monitor,
on a Ray of the test's own (a subprocess driver, not the shared test Ray) with a threshold set just above
the memory this shared machine uses now."""

from __future__ import annotations

import json
import re

import pytest

from tests.reliability import crash


def memory_used_fraction() -> tuple[float, int]:
    """The share of this machine's memory in use now (as Ray's monitor counts it: total less available)
    and the total, in bytes."""
    info = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, value = line.split(":")
            info[key] = int(value.split()[0]) * 1024
    return 1 - info["MemAvailable"] / info["MemTotal"], info["MemTotal"]


@pytest.mark.slow
def test_a_worker_killed_by_rays_memory_monitor_is_named_out_of_memory(storage):
    """The threshold is 1 GB above the memory in use now; the trainable takes memory until killed (2 GB at
    most: the machine is shared) and its trial's error says that the memory monitor killed it."""
    used, total = memory_used_fraction()
    threshold = used + 2**30 / total
    script = (f"from tests.reliability.sweeps import memory_monitor_run; "
              f"memory_monitor_run({storage!r}, {threshold:.4f}, 2000)")
    proc = crash.driver(script)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    ended = json.loads(out.strip().splitlines()[-1])
    assert ended["status"] == "ERROR", f"not killed with 2 GB taken (threshold {threshold:.3f}): {ended}"
    assert "Ray's memory monitor killed it: its node ran out of memory" in ended["error"], ended["error"]
    assert re.search(r"\(PID \d+ on node \d+\.\d+\.\d+\.\d+ [0-9a-f]+\) died", ended["error"]), ended["error"]
