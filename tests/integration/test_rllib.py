"""RLlib algorithms as trainables on the shared local Ray (PPO on CartPole-v1, tiny batches):
RLlib's metrics arrive flattened, checkpoints are RLlib directories that restore, a trial whose
worker dies continues from its checkpoint, and a PBT exploit copies the donor's weights."""

from __future__ import annotations

import functools
import json
import os
import pickle

import numpy as np
import pytest

import tuner as tune
from schedulers import PopulationBasedTraining
from tests.integration import rllib_callbacks

pytest.importorskip("ray.rllib")
pytestmark = [pytest.mark.usefixtures("ray_local"), pytest.mark.slow, pytest.mark.timeout(900)]

BATCH = 64
TINY_PPO = {"env": "CartPole-v1", "num_env_runners": 0, "train_batch_size": BATCH, "minibatch_size": 32,
            "num_epochs": 1, "model_config": {"fcnet_hiddens": [16]}}


def _journal(experiment_path):
    with open(os.path.join(experiment_path, "journal.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def _weights(checkpoint_dir):
    """The policy's parameters as RLlib saved them in the checkpoint directory."""
    path = os.path.join(checkpoint_dir, "learner_group", "learner", "rl_module", "default_policy",
                        "module_state.pkl")
    with open(path, "rb") as f:
        return pickle.load(f)


def test_grid_over_lr_reports_rllib_metrics_and_retries_from_rllib_checkpoints(storage, tmp_path):
    crash = functools.partial(rllib_callbacks.crash_once, marker=str(tmp_path / "crashed"), lr=1e-3, iteration=2)
    config = {**TINY_PPO, "lr": tune.grid_search([1e-3, 1e-4]), "callbacks_on_train_result": crash}
    results = tune.run("PPO", config=config, stop={"training_iteration": 2}, checkpoint_freq=1, max_failures=1,
                       metric="env_runners/episode_return_mean", mode="max", storage_path=storage, verbose=0, seed=0)

    assert [t.status for t in results.trials] == [tune.TrialStatus.TERMINATED] * 2
    for trial in results.trials:
        last = trial.last_result
        assert last["training_iteration"] == 2
        assert last["env_runners/episode_return_mean"] > 0
        assert last["num_env_steps_sampled_lifetime"] == 2 * BATCH
        assert last["learners/default_policy/default_optimizer_learning_rate"] == pytest.approx(trial.config["lr"])
        assert not any(k.startswith("config/") for k in last)
        assert sorted(os.listdir(os.path.join(trial.path, "checkpoints"))) == ["000001", "000002"]
        assert os.path.exists(os.path.join(trial.checkpoint_path, "rllib_checkpoint.json"))

    # The lr=1e-3 trial's worker died inside iteration 2; the retry restored RLlib's checkpoint of iteration 1:
    # RLlib's own lifetime step counter goes on from it (a fresh algorithm would report BATCH, not 2 * BATCH).
    crashed = results.trials[0]
    events = _journal(results.experiment_path)
    assert [e["trial_id"] for e in events if e["event"] == "retry"] == [crashed.trial_id]
    after_retry = [e["result"] for e in events if e["event"] == "result" and e["trial_id"] == crashed.trial_id]
    assert [r["training_iteration"] for r in after_retry] == [1, 2]
    assert crashed.num_failures == 1

    # The directory is RLlib's own: RLlib loads the policy from it.
    from ray.rllib.core.rl_module.rl_module import RLModule

    module = RLModule.from_checkpoint(os.path.join(crashed.checkpoint_path, "learner_group", "learner", "rl_module",
                                                   "default_policy"))
    saved = _weights(crashed.checkpoint_path)
    for name, value in module.get_state().items():
        np.testing.assert_array_equal(np.asarray(value), saved[name])


@pytest.mark.parametrize("mutations", [{"lr": [0.0]}, {"lr": [0.0], "gamma": [0.95]}], ids=["in_place", "rebuilt"])
def test_pbt_exploit_copies_the_donors_weights(mutations, storage):
    # Every exploit sets lr=0, so the recipient's next iteration leaves the donor's weights untouched: its
    # checkpoint after the exploit must hold exactly the donor checkpoint's weights. A change of lr alone is
    # taken by the warm algorithm; a change of gamma too rebuilds it and restores the donor's checkpoint.
    rebuilt = "gamma" in mutations
    pbt = PopulationBasedTraining(perturbation_interval=1, quantile_fraction=0.5, resample_probability=0.0,
                                  hyperparam_mutations=mutations, seed=0)
    together = functools.partial(rllib_callbacks.side_by_side, trials=2)
    config = {**TINY_PPO, "lr": tune.grid_search([3e-3, 1e-5]), "callbacks_on_algorithm_init": together}
    results = tune.run("PPO", config=config, scheduler=pbt,
                       stop={"training_iteration": 4}, checkpoint_freq=1, metric="env_runners/episode_return_mean",
                       mode="max", storage_path=storage, verbose=0, seed=0)

    exploits = [e for e in _journal(results.experiment_path) if e["event"] == "config"]
    assert exploits, "PBT never exploited; the test needs at least one exploit"
    by_id = {t.trial_id: t for t in results.trials}
    checked = rebuilds = 0
    for e in exploits:
        trial, iteration = by_id[e["trial_id"]], e["iteration"]
        nxt = [r for r in trial.history if r["training_iteration"] == iteration + 1]
        if not nxt:
            continue
        assert nxt[0]["learners/default_policy/default_optimizer_learning_rate"] == 0.0
        # RLlib counts iterations since the algorithm was built: a rebuilt one starts again at 1. An exploit
        # that changes gamma (not only lr) rebuilds; a later one that finds gamma already set does not.
        changed = {k for k in set(e["config"]) | set(e["old_config"])
                   if e["config"].get(k) != e["old_config"].get(k) and k not in ("lr", "entropy_coeff")}
        rebuilds += bool(changed)
        assert (nxt[0]["iterations_since_restore"] == 1) if changed else (nxt[0]["iterations_since_restore"] > 1)
        after = os.path.join(trial.path, "checkpoints", f"{iteration + 1:06d}")
        donor, mine = _weights(e["donor_checkpoint"]), _weights(after)
        assert donor.keys() == mine.keys()
        for name in donor:
            np.testing.assert_array_equal(mine[name], donor[name], err_msg=name)
        checked += 1
    assert checked and (rebuilds > 0) == rebuilt


def test_a_warm_algorithm_samples_and_evaluates_with_the_weights_it_restores(tmp_path):
    """PBT in place restores a donor's checkpoint into a warm algorithm. RLlib's EnvRunners take new
    weights only when their version is newer than their own, and a donor's checkpoint is often of an
    earlier iteration: before the fix the learner held the donor's weights while the runners went on
    sampling and evaluating the recipient's old policy (Acrobot: clones of a -80 donor stayed at -500)."""
    from tuner.integrations.rllib import as_trainable

    cls, space, _ = as_trainable("PPO", {**TINY_PPO, "evaluation_interval": 1, "evaluation_duration": 50,
                                         "evaluation_duration_unit": "timesteps"})
    donor, recipient = cls({**space, "seed": 1}), cls({**space, "seed": 2})
    try:
        for _ in range(2):
            donor.step()
        for _ in range(4):  # ahead of the donor: its runners' weights are newer than the checkpoint's
            recipient.step()
        donor.save_checkpoint(str(tmp_path))
        saved = _weights(str(tmp_path))
        recipient.load_checkpoint(str(tmp_path))
        algo = recipient.algo
        runners = [algo.env_runner_group.local_env_runner, algo.eval_env_runner_group.local_env_runner]
        for runner in runners:
            state = runner.module.get_state()
            assert set(state) <= set(saved)
            for name, value in state.items():
                np.testing.assert_array_equal(np.asarray(value), saved[name], err_msg=name)
    finally:
        donor.cleanup()
        recipient.cleanup()


def test_a_paused_trial_resumes_from_its_pause_point(storage):
    # 3 one-CPU trials on 2 CPUs: asynchronous PBT pauses a trial at its perturbation point while another
    # waits, which ends its algorithm; the resume builds a new one and restores the pause's checkpoint.
    # RLlib's own lifetime step counter (restored state) must go on from the result before the pause.
    pbt = PopulationBasedTraining(perturbation_interval=1, quantile_fraction=0.25, resample_probability=0.0,
                                  hyperparam_mutations={"lr": [1e-3]}, seed=0)
    config = {**TINY_PPO, "lr": tune.grid_search([1e-3, 3e-4, 1e-4])}
    results = tune.run("PPO", config=config, scheduler=pbt, stop={"training_iteration": 2}, checkpoint_freq=1,
                       metric="env_runners/episode_return_mean", mode="max", storage_path=storage, verbose=0,
                       seed=0)

    assert [t.status for t in results.trials] == [tune.TrialStatus.TERMINATED] * 3
    events = _journal(results.experiment_path)
    exploited = {(e["trial_id"], e["iteration"]) for e in events if e["event"] == "config"}
    resumes = 0
    for trial in results.trials:
        mine = [e["result"] for e in events if e["event"] == "result" and e["trial_id"] == trial.trial_id]
        for before, after in zip(mine, mine[1:]):
            if (trial.trial_id, before["training_iteration"]) in exploited or after["iterations_since_restore"] > 1:
                continue  # an exploit (the donor's state) or the same warm algorithm
            resumes += 1
            assert after["training_iteration"] == before["training_iteration"] + 1
            assert after["num_env_steps_sampled_lifetime"] == before["num_env_steps_sampled_lifetime"] + BATCH
    assert resumes, "no trial was paused and resumed; the test needs at least one"
