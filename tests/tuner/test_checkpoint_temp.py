"""Checkpoints leave no temporary directories behind: a class trainable's save scratch
directory and a restored directory checkpoint are removed once used."""

from __future__ import annotations

import os
import tempfile

import tuner as tune
from tests.fakes import InProcessExecutor


class DirSaver(tune.Trainable):
    """Saves a directory checkpoint every step; fails once at step 3 (the retry restores)."""

    def setup(self, config):
        self.step_count = 0
        self.flag = config["flag"]

    def step(self):
        self.step_count += 1
        if self.step_count == 3 and not os.path.exists(self.flag):
            open(self.flag, "w").close()
            raise RuntimeError("fails once")
        return {"n": self.step_count}

    def save_checkpoint(self, checkpoint_dir):
        with open(os.path.join(checkpoint_dir, "n.txt"), "w") as f:
            f.write(str(self.step_count))

    def load_checkpoint(self, checkpoint_dir):
        with open(os.path.join(checkpoint_dir, "n.txt")) as f:
            self.step_count = int(f.read())


def test_class_checkpoints_and_restores_leave_no_temp_directories(storage, tmp_path, monkeypatch):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # this test's own temp dir (in-process workers)
    results = tune.run(DirSaver, config={"flag": str(tmp_path / "failed")}, stop={"training_iteration": 5},
                       checkpoint_freq=1, max_failures=1, storage_path=storage, verbose=0,
                       _executor=InProcessExecutor())
    trial = results.trials[0]
    assert trial.num_failures == 1 and [r["n"] for r in trial.history] == [1, 2, 3, 4, 5]  # restored at 2
    assert os.listdir(scratch) == []
