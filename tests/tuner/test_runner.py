"""The run loop against an in-process executor: decision points, exact stops,
pause and resume from checkpoint. No Ray."""

from __future__ import annotations

import math

import tuner as tune
from schedulers.base import Decision, TrialDecision, TrialScheduler
from tests.fakes import InProcessExecutor
from tuner.trial import TrialStatus


def counting(config):
    start = tune.get_checkpoint() or {"step": 0}
    for step in range(start["step"] + 1, 13):
        tune.report({"score": step * config["w"], "step": step}, checkpoint={"step": step})


class EveryThird(TrialScheduler):
    """Decides at iterations 3, 6, 9...; stops trials with w < 1 at 3, pauses the others once at 6."""

    def __init__(self):
        super().__init__()
        self.seen: list[tuple[str, int]] = []
        self.paused_once: set[str] = set()

    def next_decision_point(self, trial, after):
        return (after // 3 + 1) * 3

    def on_trial_result(self, trial, result):
        self.seen.append((trial.trial_id, result["training_iteration"]))
        if result["training_iteration"] == 3 and trial.config["w"] < 1:
            return TrialDecision.stop("w < 1 at 3", rung=3)
        if result["training_iteration"] == 6 and trial.trial_id not in self.paused_once:
            self.paused_once.add(trial.trial_id)
            return TrialDecision.pause("pause at 6")
        return Decision.CONTINUE

    def choose_trial_to_run(self, trials):
        for t in trials:
            if t.status in (TrialStatus.PENDING, TrialStatus.PAUSED):
                return t
        return None


def test_scheduler_sees_only_decision_points_and_stops_exactly(storage):
    scheduler = EveryThird()
    results = tune.run(counting, config={"w": tune.grid_search([0.5, 2.0])}, scheduler=scheduler,
                       storage_path=storage, verbose=0, _executor=InProcessExecutor())
    low, high = results.trials
    assert [r["training_iteration"] for r in low.history] == [1, 2, 3]
    assert low.stop_reason == "w < 1 at 3" and low.status is TrialStatus.TERMINATED
    assert {it for _, it in scheduler.seen} <= {3, 6, 9, 12}
    # paused at 6, resumed from its checkpoint at 6: no iteration lost or repeated
    assert [r["training_iteration"] for r in high.history] == list(range(1, 13))
    assert [r["step"] for r in high.history] == list(range(1, 13))
    decisions = sorted(results.decisions(), key=lambda d: d["trial_id"])  # the two trials run side by side
    assert [(d["trial_id"], d["action"], d["iteration"]) for d in decisions] == [
        ("trial_00000", "STOP", 3), ("trial_00001", "PAUSE", 6)]
    assert decisions[0]["info"] == {"rung": 3}


class AskEveryResult(TrialScheduler):
    def __init__(self):
        super().__init__()
        self.iterations = []

    def on_trial_result(self, trial, result):
        self.iterations.append(result["training_iteration"])
        return Decision.CONTINUE


def test_scheduler_without_decision_points_sees_every_result(storage):
    scheduler = AskEveryResult()
    tune.run(counting, config={"w": 1.0}, scheduler=scheduler, storage_path=storage, verbose=0,
             _executor=InProcessExecutor())
    assert scheduler.iterations == list(range(1, 13))


def test_fifo_streams_without_decisions(storage):
    executor = InProcessExecutor(slots=2)
    results = tune.run(counting, config={"w": tune.grid_search([1, 2, 3, 4])}, storage_path=storage, verbose=0,
                       _executor=executor)
    assert all(len(t.history) == 12 for t in results.trials)
    assert executor.workers_created == 2 and executor.max_running == 2
    assert math.isclose(results.trials[3].last_result["score"], 48)


class ResettableCounter(tune.Trainable):
    def setup(self, config):
        self.count, self.resets = 0, 0

    def step(self):
        self.count += self.config["inc"]
        return {"count": self.count, "resets": self.resets, "obj": id(self), "done": self.count >= 5 * self.config["inc"]}

    def save_checkpoint(self, checkpoint_dir):
        return {"count": self.count}

    def load_checkpoint(self, checkpoint):
        self.count = checkpoint["count"]

    def reset_config(self, new_config):
        self.resets += 1
        return True


class PlainCounter(ResettableCounter):
    def reset_config(self, new_config):
        return False


def fn_counter(config):
    count = (tune.get_checkpoint() or {"count": 0})["count"]
    for _ in range(5):
        count += config["inc"]
        tune.report({"count": count}, checkpoint={"count": count})


class ExploitAtThree(TrialScheduler):
    """trial_00001 takes trial_00000's state and inc=100 at iteration 3."""

    def next_decision_point(self, trial, after):
        return 3 if after < 3 else math.inf

    def on_trial_result(self, trial, result):
        if trial.trial_id == "trial_00001":
            return TrialDecision.exploit("trial_00000", {"inc": 100}, "copy trial_00000", donor_score=5)
        return Decision.CONTINUE


def _exploit_run(trainable, storage, **kwargs):
    return tune.run(trainable, config={"inc": tune.grid_search([1, 2])}, scheduler=ExploitAtThree(),
                    max_concurrent_trials=1, storage_path=storage, verbose=0, _executor=InProcessExecutor(), **kwargs)


def test_exploit_in_place_uses_reset_config(storage):
    results = _exploit_run(ResettableCounter, storage, checkpoint_freq=1)
    recipient = results.trials[1]
    assert [r["count"] for r in recipient.history] == [2, 4, 6, 105, 205, 305, 405, 505]
    assert [r["training_iteration"] for r in recipient.history] == list(range(1, 9))
    assert recipient.history[-1]["resets"] == 1
    assert len({r["obj"] for r in recipient.history}) == 1, "the object was kept"
    assert recipient.config == {"inc": 100}
    (lineage,) = results.pbt_lineage()
    assert lineage["trial_id"] == "trial_00001" and lineage["donor_id"] == "trial_00000"
    assert lineage["old_config"] == {"inc": 2} and lineage["config"] == {"inc": 100} and lineage["donor_score"] == 5
    # the recipient's own latest checkpoint is the donor's state from then on
    assert tune.load(results.experiment_path).trials[1].checkpoints[-1].endswith("000008")


def test_exploit_without_reset_config_builds_a_fresh_object(storage):
    recipient = _exploit_run(PlainCounter, storage, checkpoint_freq=1).trials[1]
    assert [r["count"] for r in recipient.history] == [2, 4, 6, 105, 205, 305, 405, 505]
    assert recipient.history[-1]["resets"] == 0
    assert len({r["obj"] for r in recipient.history}) == 2


def test_exploit_restarts_a_function_trainable_from_the_donor(storage):
    recipient = _exploit_run(fn_counter, storage).trials[1]
    assert [r["count"] for r in recipient.history] == [2, 4, 6, 105, 205, 305, 405, 505]
    assert [r["training_iteration"] for r in recipient.history] == list(range(1, 9))
