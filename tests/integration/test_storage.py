"""Checkpoints and trial files go from the workers straight to storage (local directory here;
an S3-compatible server in test_storage_s3.py, a second node in test_cluster.py)."""

from __future__ import annotations

import os

import pytest

import tuner as tune
from tests.integration.trainables import directory_checkpoints

pytestmark = pytest.mark.usefixtures("ray_local")


def test_workers_publish_checkpoints_that_restore_prune_and_rank(storage):
    results = tune.run(directory_checkpoints, config={"steps": 6, "peak": 2, "fail_at": 4},
                       metric="score", mode="max", keep_checkpoints_num=2, checkpoint_score_attr="score",
                       max_failures=1, storage_path=storage, name="direct", verbose=0)
    trial = results.trials[0]
    # failed at 4, retried from the checkpoint of step 4, read back in the worker
    assert [r["step"] for r in trial.history] == [1, 2, 3, 4, 5, 6]
    assert [r["restored_from"] for r in trial.history][-2:] == [4, 4]
    # keep 2 by score: the best one (step 2) and the latest (step 6); the others are gone from disk
    ckpt_dir = os.path.join(trial.path, "checkpoints")
    assert sorted(os.listdir(ckpt_dir)) == ["000002", "000006"]
    assert [os.path.basename(p) for p in trial.checkpoints] == ["000002", "000006"]
    # the best checkpoint by the score recorded with it, not the latest; both are there
    best = results.best_checkpoint
    assert open(os.path.join(best.to_directory(), "state.txt")).read() == "2"
    assert open(os.path.join(results.latest_checkpoint.to_directory(), "state.txt")).read() == "6"
    loaded = tune.load(results.experiment_path)
    assert loaded.get_best_checkpoint_path(loaded.trials[0], "score", "max") == trial.checkpoints[0]
    assert loaded.get_best_checkpoint_path(loaded.trials[0], "step", "max") == trial.checkpoints[1]
    # the working directory, stdout and stderr of the trial are in its storage
    assert open(os.path.join(trial.path, "artifacts", "notes.txt")).read() == "started at 0\nstarted at 4\n"
    stdout = open(os.path.join(trial.path, "stdout.log")).read()
    assert f"stdout of {trial.trial_id} from 0" in stdout and f"stdout of {trial.trial_id} from 4" in stdout
    assert "fails at step 4 on purpose" not in stdout
