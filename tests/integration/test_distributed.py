"""tune.distributed on the shared local Ray (2 CPUs): DDP with gloo on 2 ranks per trial,
rank failures, SIGKILL and retry from the checkpoint, and ASHA pruning a gang mid-run with
every rank process gone afterwards."""

from __future__ import annotations

import os
import time

import pytest

import tuner as tune
from schedulers import ASHAScheduler
from tests.integration import ddp_trainables as ddp

pytestmark = pytest.mark.usefixtures("ray_local")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_gone(pids: list[int], within_s: float = 60.0) -> list[int]:
    """The pids still alive after waiting up to ``within_s`` (Ray kills asynchronously)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    return [p for p in pids if _alive(p)]


def test_ddp_ranks_all_reduce_and_a_failing_rank_fails_the_trial(storage, ray_local):
    results = tune.run(ddp.ddp_linear, config={"lr": 0.05, "epochs": 4, "raise_rank": tune.grid_search([None, 1]),
                                               "raise_at": 2},
                       metric="loss", mode="min", storage_path=storage, verbose=0, raise_on_failed_trial=False)
    ok, failed = results.trials
    assert ok.status is tune.TrialStatus.TERMINATED
    assert [r["epoch"] for r in ok.history] == [1, 2, 3, 4] and {r["reported_by"] for r in ok.history} == {0}
    assert str(ok.resources) == "{CPU=1} x2 PACK"
    starts = ddp.records(ok.path, "start")
    assert [(s["rank"], s["dist_rank"], s["world"], s["dist_world"], s["backend"]) for s in starts] == [
        (0, 0, 2, 2, "gloo"), (1, 1, 2, 2, "gloo")]
    assert [s["env"]["RANK"] for s in starts] == ["0", "1"] and [s["local_rank"] for s in starts] == [0, 1]
    assert len({(s["env"]["MASTER_ADDR"], s["env"]["MASTER_PORT"]) for s in starts}) == 1
    assert len({s["pid"] for s in starts}) == 2 and len({s["pg"] for s in starts}) == 1
    finals = ddp.records(ok.path, "final")
    assert finals[0]["shard_sum"] != finals[1]["shard_sum"], "each rank trained on its own shard"
    assert finals[0]["params"] == finals[1]["params"], "gradients were all-reduced: identical parameters"

    assert failed.status is tune.TrialStatus.ERROR
    assert "Rank 1 of 2 failed; the whole gang stops." in failed.error
    assert "rank 1 fails on purpose at epoch 2" in failed.error
    # rank 0 may have reported epoch 2 before rank 1 raised; it can never pass epoch 3's all-reduce
    assert [r["epoch"] for r in failed.history] in ([1], [1, 2])
    table = ray_local.util.placement_group_table()
    assert {table[s["pg"]]["state"] for t in (ok, failed) for s in ddp.records(t.path, "start")} == {"REMOVED"}
    assert _wait_gone([s["pid"] for t in (ok, failed) for s in ddp.records(t.path, "start")]) == []


@pytest.mark.slow
def test_sigkilled_rank_fails_the_trial_and_the_retry_resumes_every_rank(storage):
    results = tune.run(ddp.ddp_linear, config={"lr": 0.05, "epochs": 5, "kill_rank": 1, "kill_at": 3},
                       max_failures=1, storage_path=storage, verbose=0)
    trial = results.trials[0]
    assert trial.status is tune.TrialStatus.TERMINATED and trial.num_failures == 1
    assert [r["epoch"] for r in trial.history] == [1, 2, 3, 4, 5]
    first = ddp.records(trial.path, "start000")
    retry = [r for r in ddp.records(trial.path, "start") if r["restored_epoch"] > 0]
    # Rank 1 died in epoch 3 after its all-reduce: rank 0 may or may not have reported epoch 3 first.
    assert [r["rank"] for r in retry] == [0, 1], "every rank restarted"
    assert len({r["restored_epoch"] for r in retry}) == 1 and retry[0]["restored_epoch"] in (2, 3)
    assert {r["pid"] for r in retry}.isdisjoint(r["pid"] for r in first), "a whole new gang"
    assert _wait_gone([r["pid"] for r in first + retry]) == []
    finals = ddp.records(trial.path, "final")
    assert finals[0]["params"] == finals[1]["params"]


class _GangGone(tune.Callback):
    """When a trial ends, wait until every rank process of it is gone (driver side)."""

    def __init__(self):
        self.leftover: dict[str, list[int]] = {}

    def on_trial_complete(self, trial):
        pids = [r["pid"] for r in ddp.records(trial.path, "start")]
        self.leftover[trial.trial_id] = _wait_gone(pids)


@pytest.mark.slow
def test_asha_prunes_a_gang_mid_run_and_its_processes_are_gone(storage):
    gone = _GangGone()
    results = tune.run(ddp.ddp_linear, config={"lr": tune.grid_search([0.05, 0.0, 0.0]), "epochs": 6, "sleep": 0.2},
                       metric="loss", mode="min", scheduler=ASHAScheduler(max_t=6, grace_period=1, reduction_factor=2),
                       callbacks=[gone], storage_path=storage, verbose=0)
    pruned = [t for t in results.trials if t.last_result["epoch"] < 6]
    assert pruned, [t.last_result["epoch"] for t in results.trials]
    for trial in pruned:
        assert trial.status is tune.TrialStatus.TERMINATED and trial.stop_reason, trial
        assert len(ddp.records(trial.path, "start")) == 2
    assert gone.leftover and all(v == [] for v in gone.leftover.values()), gone.leftover
