"""The PBT CartPole example: the PPO agent's in-place exploit, and ``--quick`` through
tune.run on the shared local Ray (metrics reported, lineage on record)."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("torch")
pytest.importorskip("gymnasium")

import tuner as tune
from examples import pbt_cartpole as ex
from schedulers.pbt import ancestry


def test_set_hparams_and_load_keep_weights_apart_from_coefficients():
    small = {"steps_per_iteration": 256}
    donor, recipient = ex.PPOAgent({**small, "lr": 3e-3}, seed=1), ex.PPOAgent({**small, "lr": 1e-4}, seed=2)
    donor.train_iteration()
    recipient.set_hparams(lr=5e-4, entropy_coef=0.02)
    recipient.load_state_dict(donor.state_dict())
    for mine, theirs in zip(recipient.params, donor.params):
        assert (mine == theirs).all()
    assert recipient.optimizer.state_dict()["state"], "Adam's moments came with the donor's state"
    assert [g["lr"] for g in recipient.optimizer.param_groups] == [5e-4]
    assert recipient.cfg["entropy_coef"] == 0.02


@pytest.mark.usefixtures("ray_local")
def test_quick_run_reports_metrics_and_records_the_lineage(storage, capsys):
    assert ex.main(["--quick", "--seed", "3", "--storage", storage]) == 0
    printed = capsys.readouterr().out
    (name,) = os.listdir(storage)
    results = tune.load(os.path.join(storage, name))

    steps = ex.QUICK["settings"]["steps_per_iteration"]
    assert len(results.trials) == ex.QUICK["population"]
    for trial in results.trials:
        assert trial.status.value == "TERMINATED"
        assert [r["training_iteration"] for r in trial.history] == [1, 2, 3]
        assert [r["env_steps"] for r in trial.history] == [steps, 2 * steps, 3 * steps]
        for r in trial.history:
            assert 0 < r["eval_return"] <= 500 and r["episode_return_mean"] > 0

    # synchronous generations at iterations 1 and 2: each exploits the worse trial (unless tied)
    lineage = results.pbt_lineage()
    assert 1 <= len(lineage) <= 2
    ids = {t.trial_id for t in results.trials}
    for record in lineage:
        assert record["trial_id"] in ids and record["donor_id"] in ids - {record["trial_id"]}
        assert record["iteration"] in (1, 2)
        assert 1e-5 <= record["config"]["lr"] <= 1e-2 and 0 <= record["config"]["entropy_coef"] <= 0.05
        assert record["old_config"]["lr"] != record["config"]["lr"] or \
            record["old_config"]["entropy_coef"] != record["config"]["entropy_coef"]
    last_config = {r["trial_id"]: r["config"] for r in lineage}
    for trial in results.trials:
        if trial.trial_id in last_config:
            assert trial.config == last_config[trial.trial_id]

    best = results.best_trial.trial_id
    chain = ancestry(lineage, best)
    assert f"lineage of {best} ({len(chain)} of {len(lineage)} exploits" in printed
    assert f"best trial {best}: final eval_return" in printed
