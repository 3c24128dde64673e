"""Ray Tune's callback hooks on a real local Ray: a callback written for Ray Tune sees
``on_step_begin``/``on_step_end`` around every trial hook, ``on_checkpoint`` and
``on_trial_save`` after the result a checkpoint was taken with, ``on_trial_recover`` when a
failing trial is retried and ``on_trial_restore`` when it has restored its checkpoint; a
callback setting ``should_checkpoint`` in a class trainable's result gets that checkpoint."""

from __future__ import annotations

import os

import pytest

import tuner as tune
from tuner.result import SHOULD_CHECKPOINT

pytestmark = pytest.mark.usefixtures("ray_local")


class FailsOnceAtThree(tune.Trainable):
    """Counts; raises once at count 3 (a marker file remembers it did); directory checkpoints."""

    def setup(self, config):
        self.count = 0

    def step(self):
        self.count += 1
        if self.count == 3 and not os.path.exists(self.config["marker"]):
            open(self.config["marker"], "w").close()
            raise RuntimeError("failing once at 3")
        return {"count": self.count}

    def save_checkpoint(self, checkpoint_dir):
        with open(os.path.join(checkpoint_dir, "count"), "w") as f:
            f.write(str(self.count))

    def load_checkpoint(self, checkpoint_dir):
        with open(os.path.join(checkpoint_dir, "count")) as f:
            self.count = int(f.read())


class Recorder(tune.Callback):
    """Every hook as Ray Tune's documentation writes it; asks for a checkpoint at count 5."""

    def __init__(self):
        self.events = []

    def setup(self, stop=None, num_samples=None, total_num_samples=None, **info):
        self.events.append(("setup",))

    def on_step_begin(self, iteration, trials, **info):
        self.events.append(("step_begin", iteration))

    def on_step_end(self, iteration, trials, **info):
        self.events.append(("step_end", iteration))

    def _trial_event(self, name, iteration, trials, trial, *detail):
        assert trial in trials
        self.events.append((name, iteration, *detail))

    def on_trial_start(self, iteration, trials, trial, **info):
        self._trial_event("start", iteration, trials, trial)

    def on_trial_restore(self, iteration, trials, trial, **info):
        self._trial_event("restore", iteration, trials, trial)

    def on_trial_save(self, iteration, trials, trial, **info):
        self._trial_event("save", iteration, trials, trial)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self._trial_event("result", iteration, trials, trial, result["count"])
        if result["count"] == 5:
            result[SHOULD_CHECKPOINT] = True

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        with checkpoint.as_directory() as path, open(os.path.join(path, "count")) as f:
            self._trial_event("checkpoint", iteration, trials, trial, int(f.read()))

    def on_trial_recover(self, iteration, trials, trial, **info):
        self._trial_event("recover", iteration, trials, trial)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._trial_event("complete", iteration, trials, trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._trial_event("error", iteration, trials, trial)

    def on_experiment_end(self, trials, **info):
        self.events.append(("end", len(trials)))


class Logged(tune.LoggerCallback):
    def __init__(self):
        super().__init__()
        self.lines = []

    def log_trial_start(self, trial):
        self.lines.append("start")

    def log_trial_restore(self, trial):
        self.lines.append("restore")

    def log_trial_save(self, trial):
        self.lines.append(f"save {os.path.basename(trial.checkpoint_path)}")

    def log_trial_result(self, iteration, trial, result):
        self.lines.append(f"result {result['count']}")

    def log_trial_end(self, trial, failed=False):
        self.lines.append(f"end failed={failed}")


def test_ray_callback_sees_every_hook_in_order(storage, tmp_path):
    recorder, logged = Recorder(), Logged()
    grid = tune.Tuner(
        FailsOnceAtThree, param_space={"marker": str(tmp_path / "failed_once")},
        run_config=tune.RunConfig(storage_path=storage, verbose=0, callbacks=[recorder, logged],
                                  stop={"training_iteration": 6},
                                  checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=2),
                                  failure_config=tune.FailureConfig(max_failures=1)),
    ).fit()
    assert grid.num_errors == 0 and grid[0].metrics["count"] == 6

    events = recorder.events
    assert events[0] == ("setup",) and events[-1] == ("end", 1)
    trial_events = [e for e in events[1:-1] if not e[0].startswith("step_")]
    assert [(e[0], *e[2:]) for e in trial_events] == [
        ("start",), ("result", 1), ("result", 2), ("checkpoint", 2), ("save",),
        ("recover",), ("start",), ("restore",),  # failed at 3, restarted from checkpoint 2
        ("result", 3), ("result", 4), ("checkpoint", 4), ("save",),
        ("result", 5), ("checkpoint", 5), ("save",),  # asked for by the callback
        ("result", 6), ("checkpoint", 6), ("save",), ("complete",),
    ]
    # Steps alternate begin/end, end counts the turn; each trial hook runs inside a turn with its number.
    turn = None
    for event in events[1:-1]:
        if event[0] == "step_begin":
            assert turn is None
            turn = event[1]
        elif event[0] == "step_end":
            assert event[1] == turn + 1
            turn = None
        else:
            assert event[1] == turn, event
    assert [metrics["count"] for _, metrics in grid[0].best_checkpoints] == [2, 4, 5, 6]
    assert logged.lines == ["start", "result 1", "result 2", "save 000002", "start", "restore", "result 3",
                            "result 4", "save 000004", "result 5", "save 000005", "result 6", "save 000006",
                            "end failed=False"]
