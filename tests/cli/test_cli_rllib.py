"""``trainable: rllib:PPO`` from the shell: the example's sweep file, shrunk with --set, runs in a
subprocess; ``tuner show`` and the TensorBoard event files then carry RLlib's metrics."""

from __future__ import annotations

import json
import os

import pytest

from tests.cli.test_cli_e2e import tuner_cmd
from tests.tuner.test_tensorboard import scalars

pytest.importorskip("ray.rllib")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
RETURN = "env_runners/episode_return_mean"
EVAL = "evaluation/env_runners/episode_return_mean"


def test_rllib_sweep_file_runs_then_show_and_tensorboard_have_rllib_metrics(tmp_path):
    storage = str(tmp_path / "results")
    tiny = ["num_samples=2", "stop.training_iteration=2", "config.train_batch_size=64", "config.minibatch_size=32",
            "config.num_epochs=1", "config.evaluation_duration=1", "scheduler.pbt.perturbation_interval=1",
            # Synchronous: the exploit at iteration 1 copies the donor's iteration-1 state. Asynchronous, a
            # donor already past iteration 2 hands over 128 steps, and the recipient ends with 192.
            "scheduler.pbt.synch=true"]
    run = tuner_cmd("sweep", "examples/rllib_pbt_cartpole.yaml", "--storage", storage,
                    *[arg for item in tiny for arg in ("--set", item)], timeout=800)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    path = os.path.join(storage, "rllib-pbt-cartpole")
    with open(os.path.join(path, "experiment.json")) as f:
        assert json.load(f)["trainable_import"] == "rllib:PPO"  # what `tuner resume` builds it from again

    shown = tuner_cmd("show", path, "--trials", "--format", "json", "--columns",
                      f"trial_id,training_iteration,{RETURN},{EVAL},num_env_steps_sampled_lifetime")
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)
    assert len(rows) == 2
    for row in rows:
        assert row["training_iteration"] == 2 and row["num_env_steps_sampled_lifetime"] == 2 * 64
        assert row[RETURN] > 0 and row[EVAL] > 0

    run_dirs = [d for d in os.scandir(os.path.join(path, "tensorboard")) if d.name.startswith("trial_")]
    assert run_dirs
    assert all(s > 0 for d in run_dirs for _, s in scalars(d.path, RETURN))
    assert any(scalars(d.path, EVAL) for d in run_dirs)
