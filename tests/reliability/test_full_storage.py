"""A storage that fills up mid-sweep, on a real tmpfs of 1 MiB (mounted as root; skipped where
mounting is not allowed): the error names the file and the fix, and once space is freed (the
tmpfs remounted larger) the experiment resumes and finishes with nothing lost. Trials run in
the driver's threads through the real worker code (no Ray start-up)."""

from __future__ import annotations

import errno
import os
import subprocess

import pytest

import tuner as tune
from tests.fakes import InProcessExecutor
from tests.reliability.helpers import tmpfs
from tuner.storage.fs import StorageWriteError

STEPS = 8


def big_checkpoints(config):
    """Each step checkpoints ``kb`` kB; restores from its checkpoint."""
    ckpt = tune.get_checkpoint()
    start = ckpt["step"] if ckpt else 0
    for step in range(start + 1, STEPS + 1):
        tune.report({"step": step, "restored_from": start}, checkpoint={"step": step, "blob": b"x" * config["kb"] * 1024})


def big_results(config):
    """Results that fill the driver's journal, no checkpoints (each restart begins at step 1)."""
    for step in range(1, STEPS + 1):
        tune.report({"step": step, "padding": "x" * config["kb"] * 1024})


def _grow(path):
    out = subprocess.run(["mount", "-o", "remount,size=16m", path], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_a_checkpoint_that_does_not_fit_fails_its_trial_naming_the_fix_and_the_sweep_resumes():
    with tmpfs("size=1m") as root:
        with pytest.raises(tune.TuneError):
            tune.run(big_checkpoints, config={"kb": 150}, storage_path=root, name="full", verbose=0,
                     log_to_tensorboard=False, _executor=InProcessExecutor())
        path = os.path.join(root, "full")
        (trial,) = tune.load(path).trials
        assert trial.status.value == "ERROR"
        done = trial.checkpoint_iteration
        assert 0 < done < STEPS
        assert f"to {trial.path}/checkpoints/{done + 1:06d} failed" in trial.error
        assert "No space left on device" in trial.error and "Free space on" in trial.error
        assert "resume the experiment" in trial.error
        _grow(root)  # space freed
        resumed = tune.resume(path, resume_errored=True, verbose=0, _executor=InProcessExecutor())
    (trial,) = resumed.trials
    assert trial.status.value == "TERMINATED"
    assert [r["step"] for r in trial.history] == list(range(1, STEPS + 1))
    assert trial.history[-1]["restored_from"] == done  # from the last complete checkpoint


def test_a_journal_that_does_not_fit_stops_the_sweep_naming_the_file_and_the_sweep_resumes():
    with tmpfs("size=1m") as root:
        path = os.path.join(root, "full")
        with pytest.raises(StorageWriteError) as raised:
            tune.run(big_results, config={"kb": 100, "i": tune.grid_search([0, 1])}, storage_path=root, name="full",
                     verbose=0, log_to_tensorboard=False, trial_files=False, _executor=InProcessExecutor())
        assert raised.value.errno == errno.ENOSPC
        message = str(raised.value)
        assert f"Cannot write {path}/journal.jsonl: No space left on device" in message
        assert f"tune.resume({path!r})" in message and "Free space on" in message
        assert not isinstance(raised.value.__context__, OSError)  # not raised while handling another
        before = {(t.trial_id, r["step"]) for t in tune.load(path).trials for r in t.history}
        _grow(root)
        resumed = tune.resume(path, verbose=0, _executor=InProcessExecutor())
    assert len(resumed.trials) == 2
    for trial in resumed.trials:
        assert trial.status.value == "TERMINATED"
        assert [r["step"] for r in trial.history] == list(range(1, STEPS + 1))
    assert before <= {(t.trial_id, r["step"]) for t in resumed.trials for r in t.history}
