"""Multi-node and start-up behaviour, each in its own process (they need their own Ray)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(args: list[str], timeout: int = 240, env: dict | None = None) -> str:
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "RAY_ADDRESS": "", **(env or {})})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_fractional_gpus_custom_resources_and_infeasible_request(tmp_path):
    out = _run(["-m", "tests.integration.cluster_script", str(tmp_path)])
    seen = json.loads(next(line[7:] for line in out.splitlines() if line.startswith("RESULT ")))
    trials = seen["gpu_trials"]
    for t in trials:
        assert t["gpu_ids"] in ("0", "1"), t  # exactly one GPU per trial
        assert t["cuda"] == t["gpu_ids"], "each trial sees only its own GPU"
    # 0.5 GPU each: all four ran at once, two on each GPU
    assert max(t["start"] for t in trials) < min(t["end"] for t in trials)
    assert sorted(t["gpu_ids"] for t in trials) == ["0", "0", "1", "1"]
    assert seen["custom_ok"]
    assert ("{CPU=1, GPU=3} can never be met: no node has CPU=1, GPU=3 (GPU: not enough on any node)"
            in seen["infeasible_error"])
    assert "CPU=4, GPU=2, accel=2" in seen["infeasible_error"]
    # PBT on two nodes: each clone continues exactly from its donor's checkpoint, wherever each ran
    clones = seen["pbt_clones"]
    assert clones and all(c["after"] == c["expected"] for c in clones), clones
    assert len(seen["pbt_nodes"]) == 2, "the population ran on both nodes"


def test_run_starts_a_local_ray_when_none_is_running(tmp_path):
    code = (
        "import ray, tuner as tune\n"
        "from tests.integration.trainables import quadratic\n"
        "assert not ray.is_initialized()\n"
        f"r = tune.run(quadratic, config={{'x': 1, 'steps': 2}}, storage_path={str(tmp_path)!r}, verbose=0)\n"
        "print('OK', ray.is_initialized(), r.trials[0].status.value)\n"
    )
    assert "OK True TERMINATED" in _run(["-c", code])


@pytest.mark.slow
def test_ddp_gangs_follow_their_placement_strategy_across_nodes(tmp_path):
    out = _run(["-m", "tests.integration.cluster_distributed_script", str(tmp_path)], timeout=600)
    seen = json.loads(next(line[7:] for line in out.splitlines() if line.startswith("RESULT ")))
    for strategy in ("PACK", "SPREAD"):
        gang = seen[strategy]
        assert gang["status"] == "TERMINATED", gang
        assert gang["rank_nodes"] == gang["bundle_nodes"], "rank i runs in bundle i"
        assert set(gang["rank_nodes"]) <= set(seen["worker_nodes"])
        params = gang["same_params"]
        assert len(params) == 2 and params[0] == params[1], "DDP across nodes kept the ranks in step"
        assert gang["pg_state"] == "REMOVED"
    assert len(set(seen["PACK"]["rank_nodes"])) == 1 and seen["PACK"]["local_ranks"] == [0, 1]
    assert len(set(seen["SPREAD"]["rank_nodes"])) == 2 and seen["SPREAD"]["local_ranks"] == [0, 0]
    assert ("{CPU=1} x3 STRICT_SPREAD can never be met: the cluster cannot hold its 3 bundles at once with the "
            "STRICT_SPREAD strategy (every bundle on a different node)" in seen["infeasible_error"])
