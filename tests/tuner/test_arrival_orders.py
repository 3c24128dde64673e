"""Synchronous and promoting schedulers over many random arrival orders of results.

A trial's final batch after a PAUSE may reach the driver after other trials have
completed the rung it waits at; whatever the order, every trial must end at
``max_t`` or by a scheduler decision, and restart exactly from its checkpoint.
"""

from __future__ import annotations

import json
import math
import random
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tuner as tune
from schedulers import ASHAScheduler, HyperBandScheduler, PopulationBasedTraining
from tests.fakes import SimulatedExecutor
from tuner.trial import TrialStatus

MAX_T = 27


def never_called(config):
    """The simulated executor computes results itself."""


def sweep(scheduler, seed: int, num_samples: int, slots: int, checkpoint_every: int, ties: bool):
    quality = tune.choice([0.25, 0.5, 0.75]) if ties else tune.uniform(0, 1)
    executor = SimulatedExecutor(random.Random(seed), slots=slots, length=MAX_T, checkpoint_every=checkpoint_every)
    with tempfile.TemporaryDirectory() as storage:
        return tune.run(never_called, config={"quality": quality}, num_samples=num_samples, metric="score",
                        mode="max", scheduler=scheduler, storage_path=storage, verbose=0, seed=seed,
                        log_to_tensorboard=False, _executor=executor)


def last_decision(results, trial):
    mine = [d for d in results.decisions() if d["trial_id"] == trial.trial_id]
    return mine[-1] if mine else None


def check_record(trial):
    """Every iteration once, in order: a restart from an older checkpoint rolled the record back."""
    iterations = [r["training_iteration"] for r in trial.history]
    assert iterations == list(range(1, len(iterations) + 1)), (trial.trial_id, iterations)
    assert trial.status is TrialStatus.TERMINATED, (trial.trial_id, trial.status, trial.stop_reason)


RUNS = dict(seed=st.integers(0, 2**16), num_samples=st.integers(1, 14), slots=st.integers(1, 4),
            checkpoint_every=st.sampled_from([1, 2, 3]), ties=st.booleans())
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(**RUNS)
def test_hyperband_ends_every_trial_by_a_decision_or_at_max_t(seed, num_samples, slots, checkpoint_every, ties):
    results = sweep(HyperBandScheduler(max_t=MAX_T, reduction_factor=3), seed, num_samples, slots,
                    checkpoint_every, ties)
    for trial in results.trials:
        check_record(trial)
        decision = last_decision(results, trial)
        at_max_t = trial.last_result["training_iteration"] >= MAX_T
        assert at_max_t or (decision is not None and decision["action"] == "STOP"), \
            (trial.trial_id, trial.stop_reason, decision)


@SETTINGS
@given(**RUNS)
def test_promotion_asha_leaves_paused_only_trials_that_did_not_earn_promotion(seed, num_samples, slots,
                                                                              checkpoint_every, ties):
    rf = 3
    results = sweep(ASHAScheduler(max_t=MAX_T, grace_period=1, reduction_factor=rf, stop_or_promote="promote",
                                  seed=seed), seed, num_samples, slots, checkpoint_every, ties)
    for trial in results.trials:
        check_record(trial)
        if trial.last_result["training_iteration"] >= MAX_T:
            continue
        decision = last_decision(results, trial)
        assert decision is not None and decision["action"] == "PAUSE", (trial.trial_id, decision)
        rung = decision["info"]["rung"]
        at_rung = {t.trial_id: next(r["score"] for r in t.history if r["training_iteration"] == rung)
                   for t in results.trials if len(t.history) >= rung}
        ranked = sorted(at_rung, key=lambda tid: (-at_rung[tid], tid))
        quota = math.floor(len(at_rung) / rf)
        promoted = [t.trial_id for t in results.trials if len(t.history) > rung]
        # ASHA's rule: promote the top floor(n/rf) at a rung, never more than that many in all
        assert trial.trial_id not in ranked[:quota] or len(promoted) >= quota, (trial.trial_id, rung, ranked,
                                                                                 promoted)


@SETTINGS
@given(seed=st.integers(0, 2**16), num_samples=st.integers(2, 8), slots=st.integers(1, 4))
def test_synch_pbt_copies_every_donor_at_the_generations_point(seed, num_samples, slots):
    """Regression: a recipient whose worker had not wound down when the generation restarted was
    exploited later, after its donor had been resumed and saved a checkpoint past the point; the
    recipient then continued from the donor's later state."""
    scheduler = PopulationBasedTraining(perturbation_interval=3, synch=True, seed=seed, quantile_fraction=0.5,
                                        hyperparam_mutations={"quality": [0.1, 0.3, 0.5, 0.7, 0.9]})
    with tempfile.TemporaryDirectory() as storage:
        executor = SimulatedExecutor(random.Random(seed), slots=slots, length=MAX_T, checkpoint_every=1)
        results = tune.run(never_called, config={"quality": tune.uniform(0, 1)}, num_samples=num_samples,
                           metric="score", mode="max", scheduler=scheduler, storage_path=storage, verbose=0,
                           seed=seed, log_to_tensorboard=False, _executor=executor)
        with open(f"{results.experiment_path}/journal.jsonl") as f:  # the journal records what was copied
            changed = [json.loads(line) for line in f if '"config_changed"' in line]
    # (A drawn population may see no exploit at all, two trials on one slot for one; the drawn examples
    # that do exploit failed here before the fix.)
    for record in changed:
        assert record["donor_iteration"] == record["info"]["at"], record
    for trial in results.trials:
        check_record(trial)
