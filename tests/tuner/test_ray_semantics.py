"""Ray Tune semantics that its users' programs rely on: ``done=True``, ``stop={"done": True}``,
``checkpoint_at_end`` under ``stop``, ``save_checkpoint`` returning its directory, dict
checkpoints, and a restart after a pause rolling the record back to its checkpoint. No Ray."""

from __future__ import annotations

import math
import os

import pytest

import tuner as tune
from schedulers.base import Decision, TrialDecision, TrialScheduler
from tests.fakes import InProcessExecutor
from tuner.result import SHOULD_CHECKPOINT
from tuner.trial import TrialStatus


def run(trainable, storage, **kwargs):
    kwargs.setdefault("verbose", 0)
    return tune.run(trainable, storage_path=storage, log_to_tensorboard=False, _executor=InProcessExecutor(),
                    **kwargs)


class PauseOnceAt(TrialScheduler):
    """Pauses every trial once when it reaches ``point``, then resumes it."""

    def __init__(self, point):
        super().__init__()
        self.point = point
        self.paused = set()

    def next_decision_point(self, trial, after):
        return self.point if after < self.point else math.inf

    def on_trial_result(self, trial, result):
        if trial.trial_id not in self.paused:
            self.paused.add(trial.trial_id)
            return TrialDecision.pause("once")
        return Decision.CONTINUE

    def choose_trial_to_run(self, trials):
        return next((t for t in trials if t.status in (TrialStatus.PENDING, TrialStatus.PAUSED)), None)


def every_third_checkpointed(config):
    start = tune.get_checkpoint() or {"step": 0}
    for step in range(start["step"] + 1, 11):
        tune.report({"step": step}, checkpoint={"step": step} if step % 3 == 0 else None)


def test_a_resume_after_a_pause_rolls_the_record_back_to_its_checkpoint(storage):
    (trial,) = run(every_third_checkpointed, storage, scheduler=PauseOnceAt(5)).trials
    assert [r["step"] for r in trial.history] == list(range(1, 11))
    assert [r["training_iteration"] for r in trial.history] == list(range(1, 11))
    again = tune.load(os.path.dirname(os.path.dirname(trial.path))).trials[0]
    assert [r["step"] for r in again.history] == list(range(1, 11))


def reports_done_at_three(config):
    for step in range(1, 51):
        tune.report({"step": step, "done": step == 3})


@pytest.mark.parametrize("stop", [None, {"done": True}])
def test_a_function_reporting_done_ends_there(storage, stop):
    (trial,) = run(reports_done_at_three, storage, stop=stop).trials
    assert [r["step"] for r in trial.history] == [1, 2, 3]
    assert trial.status is TrialStatus.TERMINATED


def test_stop_rejects_a_non_number_naming_the_key():
    with pytest.raises(ValueError, match=r"stop\['acc'\] is 'high', but must be a number \(or True"):
        tune.run(reports_done_at_three, stop={"acc": "high"}, _executor=InProcessExecutor())


class FileCounter(tune.Trainable):
    """Writes its state as a file and returns the directory, as Ray Tune code does."""

    def setup(self, config):
        self.count = 0
        self.restored_from = None

    def step(self):
        self.count += 1
        return {"count": self.count, "restored_from": self.restored_from}

    def save_checkpoint(self, checkpoint_dir):
        with open(os.path.join(checkpoint_dir, "count.txt"), "w") as f:
            f.write(str(self.count))
        return checkpoint_dir

    def load_checkpoint(self, checkpoint):
        with open(os.path.join(checkpoint, "count.txt")) as f:
            self.count = self.restored_from = int(f.read())


def test_checkpoint_at_end_when_stopped_by_stop(storage):
    (trial,) = run(FileCounter, storage, stop={"training_iteration": 3}, checkpoint_at_end=True).trials
    assert [r["count"] for r in trial.history] == [1, 2, 3]
    assert trial.checkpoint_path is not None and trial.checkpoint_path.rstrip("/").endswith("3")
    with open(os.path.join(trial.checkpoint_path, "count.txt")) as f:
        assert f.read() == "3"


def test_save_checkpoint_returning_its_directory_keeps_the_files(storage):
    (trial,) = run(FileCounter, storage, stop={"training_iteration": 6}, checkpoint_freq=2,
                   scheduler=PauseOnceAt(3)).trials
    assert [r["count"] for r in trial.history] == [1, 2, 3, 4, 5, 6]
    assert trial.history[3]["restored_from"] == 3  # the pause saved the files, the restart read them
    with open(os.path.join(trial.checkpoint_path, "count.txt")) as f:
        assert f.read() == "6"


def dict_checkpointed(config):
    ckpt = tune.get_checkpoint()
    start = ckpt.to_dict()["step"] if ckpt is not None else 0
    for step in range(start + 1, 7):
        tune.report({"step": step, "resumed_with": type(ckpt).__name__},
                    checkpoint=tune.Checkpoint.from_dict({"step": step}))


def test_a_from_dict_checkpoint_comes_back_as_a_checkpoint(storage):
    (trial,) = run(dict_checkpointed, storage, scheduler=PauseOnceAt(3)).trials
    assert [r["step"] for r in trial.history] == list(range(1, 7))
    assert [r["resumed_with"] for r in trial.history] == ["NoneType"] * 3 + ["Checkpoint"] * 3
    best = tune.load(os.path.dirname(os.path.dirname(trial.path)), metric="step", mode="max").best_checkpoint
    assert best.to_dict() == {"step": 6}
    loaded = tune.Checkpoint.from_directory(trial.checkpoint_path)
    assert loaded.to_dict() == {"step": 6}


def test_checkpoint_as_directory_and_dict_round_trips(tmp_path):
    ckpt = tune.Checkpoint.from_dict({"w": [1, 2]})
    with ckpt.as_directory() as path:
        assert tune.Checkpoint.from_directory(path).to_dict() == {"w": [1, 2]}
    assert not os.path.exists(path)
    (tmp_path / "model.txt").write_text("weights")
    files = tune.Checkpoint.from_directory(tmp_path)
    with files.as_directory() as path:
        assert open(os.path.join(path, "model.txt")).read() == "weights"
    assert os.path.exists(path)  # the user's own directory is not removed
    with pytest.raises(ValueError, match="holds files, not a dict; read them through as_directory"):
        files.to_dict()


class AsksForCheckpoints(tune.Trainable):
    def setup(self, config):
        self.count = 0

    def step(self):
        self.count += 1
        return {"count": self.count, SHOULD_CHECKPOINT: self.count in (2, 3)}

    def save_checkpoint(self, checkpoint_dir):
        return {"count": self.count}


def test_step_returning_should_checkpoint_is_checkpointed(storage):
    (trial,) = run(AsksForCheckpoints, storage, stop={"training_iteration": 5}).trials
    assert [os.path.basename(p) for p in trial.checkpoints] == ["000002", "000003"]
