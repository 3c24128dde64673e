"""PBT through tune.run on the shared local Ray: an exploited trial goes on from
exactly the donor's checkpointed state with its new config (function and class
trainables), checkpoint retention, synchronous generations resuming from
checkpoints, and the replayed schedule of every trial."""

from __future__ import annotations

import os

import pytest

import tuner as tune
from schedulers import PB2, PopulationBasedTraining
from schedulers.pbt import config_at, replay
from tests.integration import trainables as tr
from tuner.storage import journal
from tuner.storage.journal import Event

pytestmark = pytest.mark.usefixtures("ray_local")
INCS = [1, 2, 3, 5, 10, 20]
STEPS = 12


def _pbt(**kwargs):
    return PopulationBasedTraining(perturbation_interval=3, quantile_fraction=0.5, seed=0,
                                   hyperparam_mutations={"inc": INCS}, **kwargs)


def _run(trainable, storage, scheduler, incs=(1, 2, 10, 20), side_by_side=0, **kwargs):
    config = {"inc": tune.grid_search(list(incs)), "sleep": 0.02, "side_by_side": side_by_side}
    return tune.run(trainable, config=config, metric="count", mode="max", scheduler=scheduler,
                    stop={"training_iteration": STEPS}, storage_path=storage, verbose=0, seed=0, **kwargs)


def _at(trial, iteration):
    (result,) = [r for r in trial.history if r["training_iteration"] == iteration]
    return result


def checkpoint_counts(experiment_path):
    """The count each checkpoint held when each exploit copied it, read from the journal in order:
    a checkpoint holds its trial's count at that iteration, unless the trial adopted a donor's state
    there (a PBT exploit), after which it holds the donor's."""
    reported: dict[tuple, int] = {}  # (trial, iteration) -> the count it reported there
    adopted: dict[tuple, int] = {}  # (recipient, iteration) -> the donor's count it took over there
    held: dict[str, int] = {}  # checkpoint path -> the count it holds now
    copied = []  # (exploit event, count of the donor checkpoint when copied)
    for record in journal.read(experiment_path):
        e = record.to_dict()
        if record.event is Event.RESULT:
            reported[e["trial_id"], e["result"]["training_iteration"]] = e["result"]["count"]
        elif record.event is Event.CONFIG:  # followed by the checkpoint event of the adopted state
            copied.append((e, held[e["donor_checkpoint"]]))
            adopted[e["trial_id"], e["iteration"]] = copied[-1][1]
        elif record.event is Event.CHECKPOINT:
            key = (e["trial_id"], e["iteration"])
            held[e["path"]] = adopted.pop(key) if key in adopted else reported[key]
    return copied


def check_exploits_continue_exactly(results):
    """Every recipient's next result = the count held by the donor checkpoint it copied + the new inc."""
    copied = checkpoint_counts(results.experiment_path)
    exploits = [e for e, _ in copied]
    by_id = {t.trial_id: t for t in results.trials}
    for e, count in copied:
        after = _at(by_id[e["trial_id"]], e["iteration"] + 1)
        assert after["count"] == count + e["config"]["inc"], e
        assert after["inc"] == e["config"]["inc"] == e["info"]["new"].get("inc", e["old_config"]["inc"])
    for trial in results.trials:
        assert [r["training_iteration"] for r in trial.history] == list(range(1, STEPS + 1))
        mine = [e for e in exploits if e["trial_id"] == trial.trial_id]
        if mine:
            assert trial.config == mine[-1]["config"]  # results show the current (mutated) config
        assert trial.last_result["inc"] == trial.config["inc"]
    return exploits


def test_function_trainable_continues_from_the_donor_checkpoint(storage):
    results = _run(tr.pbt_counter, storage, _pbt())
    exploits = check_exploits_continue_exactly(results)
    assert exploits, "the population never exploited"
    lineage = results.pbt_lineage()
    assert [(x["trial_id"], x["donor_id"], x["config"]) for x in lineage] == [
        (e["trial_id"], e["donor_id"], e["config"]) for e in exploits]
    assert all(x["donor_score"] > x["score"] for x in lineage)
    decisions = [d for d in results.decisions() if d["action"] == "EXPLOIT"]
    assert len(decisions) == len(exploits) and all(d["iteration"] % 3 == 0 for d in decisions)


def test_class_trainable_is_exploited_in_place_with_reset_config(storage):
    # a population that all runs at once (2 trials, 2 CPUs): nobody waits, so exploits happen in place;
    # each waits for the other to start, however late Ray starts the second worker
    results = _run(tr.PBTCounter, storage, _pbt(), incs=(1, 20), side_by_side=2, checkpoint_freq=1)
    exploits = check_exploits_continue_exactly(results)
    assert exploits
    for e in exploits:
        recipient = next(t for t in results.trials if t.trial_id == e["trial_id"])
        assert _at(recipient, e["iteration"] + 1)["resets"] > _at(recipient, e["iteration"])["resets"]


@pytest.mark.parametrize("trainable", [tr.pbt_counter, tr.PBTCounter], ids=["function", "class"])
def test_a_population_larger_than_the_cpus_advances_together(storage, trainable):
    # 6 trials on 2 CPUs: at each point a trial yields to the waiting ones, the least advanced runs next
    results = _run(trainable, storage, _pbt(), incs=(1, 2, 3, 5, 10, 20),
                   checkpoint_freq=1 if trainable is tr.PBTCounter else 0)
    exploits = check_exploits_continue_exactly(results)
    assert exploits
    launches = [r.trial_id for r in journal.read(results.experiment_path)  # the run loop's own order
                if r.event is Event.STATUS and r.status == "RUNNING"]
    assert len(set(launches[:6])) == 6, "a trial was resumed before the whole population had started"
    assert len(launches) > 6, "nobody yielded and came back"
    pauses = [d for d in results.decisions() if d["action"] == "PAUSE"]
    assert pauses and all(d["iteration"] % 3 == 0 and "yields to" in d["reason"] for d in pauses)
    for trial in results.trials:
        assert len(trial.history) == STEPS
        # replay follows donors' donors; the final state went through STEPS or more steps (a donor
        # copied ahead of its recipient), and exactly one number of steps gives the final count
        schedule = replay(results.experiment_path, trial.trial_id)
        counts = [sum(config_at(schedule, i)["inc"] for i in range(1, n + 1)) for n in range(STEPS, 4 * STEPS)]
        assert trial.last_result["count"] in counts, schedule
        assert schedule[-1][1] == trial.config


def test_checkpoints_are_pruned_to_keep_checkpoints_num_by_score(storage):
    results = _run(tr.pbt_counter, storage, _pbt(), keep_checkpoints_num=2, checkpoint_score_attr="min-count")
    exploits = check_exploits_continue_exactly(results)
    recipients = {e["trial_id"] for e in exploits}
    loaded = tune.load(results.experiment_path)
    for trial, read_back in zip(results.trials, loaded.trials):
        on_disk = sorted(os.listdir(os.path.join(trial.path, "checkpoints")))
        assert on_disk == sorted(os.path.basename(p) for p in trial.checkpoints) == sorted(
            os.path.basename(p) for p in read_back.checkpoints)
        assert len(on_disk) == 2 and on_disk[-1] == f"{STEPS:06d}"  # the latest is always kept
        if trial.trial_id not in recipients:
            assert on_disk[0] == "000001"  # the lowest count: the best by "min-count"


@pytest.mark.parametrize("trainable", [tr.pbt_counter, tr.PBTCounter], ids=["function", "class"])
def test_synch_generations_pause_resume_from_checkpoints_and_replay(storage, trainable):
    results = _run(trainable, storage, _pbt(synch=True), checkpoint_freq=1 if trainable is tr.PBTCounter else 0)
    exploits = check_exploits_continue_exactly(results)
    assert exploits
    decisions = results.decisions()
    for generation, point in enumerate((3, 6, 9)):
        pauses = [i for i, d in enumerate(decisions) if d["action"] == "PAUSE" and d["info"]["point"] == point]
        exploited = [i for i, d in enumerate(decisions)
                     if d["action"] == "EXPLOIT" and d["info"]["generation"] == generation]
        assert len(pauses) == 4, "every trial waits at every generation's point"
        assert all(i > max(pauses) for i in exploited), "nobody is exploited before all reached the point"
    recipients = {(e["trial_id"], e["iteration"]) for e in exploits}
    for trial in results.trials:
        for point in (3, 6, 9):
            if (trial.trial_id, point) not in recipients:  # resumed from its own checkpoint, not from scratch
                assert _at(trial, point + 1)["count"] == _at(trial, point)["count"] + _at(trial, point + 1)["inc"]
        schedule = replay(results.experiment_path, trial.trial_id)
        assert schedule[0][0] == 1 and config_at(schedule, STEPS) == trial.config
        assert sum(config_at(schedule, i)["inc"] for i in range(1, STEPS + 1)) == trial.last_result["count"]


def test_pb2_sweep_explores_inside_its_bounds(storage):
    scheduler = PB2(perturbation_interval=3, quantile_fraction=0.5, seed=0, hyperparam_bounds={"inc": [1.0, 20.0]})
    results = _run(tr.pbt_counter, storage, scheduler)
    exploits = check_exploits_continue_exactly(results)
    assert exploits and all(1.0 <= e["config"]["inc"] <= 20.0 for e in exploits)


@pytest.mark.parametrize("trainable", [tr.pbt_counter_shaped, tr.PBTCounterShaped], ids=["function", "class"])
def test_per_trial_resources_reshape_a_trial_on_an_exploit(storage, trainable):
    """With ``resources_per_trial`` a callable of the config, an exploited trial's next launch reserves
    the shape of its new config (the donor's ``cpus``, not a mutated key). Here that shape (1.5 CPU) does
    not fit beside the donor's on 2 CPUs, so the trial waits (PENDING) and the two never run together again.
    A class trainable is then not exploited in place (reset_config) on its 0.5-CPU worker."""
    from searchers import BasicVariantGenerator

    results = tune.run(
        trainable, config={"inc": tune.choice(INCS), "cpus": 0.5, "sleep": 0.02, "side_by_side": 2},
        num_samples=2, search_alg=BasicVariantGenerator(points_to_evaluate=[{"inc": 1, "cpus": 0.5},
                                                                             {"inc": 20, "cpus": 1.5}]),
        resources_per_trial=tr.cpus_of, metric="count", mode="max", scheduler=_pbt(),
        stop={"training_iteration": STEPS}, storage_path=storage, verbose=0, seed=0,
        **({"checkpoint_freq": 1} if isinstance(trainable, type) else {}))
    small, big = results.trials
    assert (small.history[0]["cpus_given"], big.history[0]["cpus_given"]) == (0.5, 1.5)
    records = [e.to_dict() for e in journal.read(results.experiment_path)]
    first = next(e for e in records if e["event"] == Event.CONFIG.value)
    assert (first["trial_id"], first["donor_id"], first["config"]["cpus"]) == (small.trial_id, big.trial_id, 1.5)
    assert first["resources"] == "{CPU=1.5}", "the journal records the new shape"
    after = [r for r in small.history if r["training_iteration"] > first["iteration"]]
    assert after and all(r["cpus_given"] == 1.5 for r in after), "the relaunch reserved the new config's shape"
    assert after[0].get("resets", 0) == 0, "a fresh worker of the new shape, not reset in place on the old one"
    # From the exploit on, the statuses the run loop journaled: the recipient waited, and 1.5 + 1.5 CPUs
    # never ran at once on the 2-CPU Ray (the loop starts a trial only after the other's worker is released).
    statuses = [(i, e["trial_id"], e["status"]) for i, e in enumerate(records) if e["event"] == "status"]
    exploit_at = records.index(first)
    assert next((t, s) for i, t, s in statuses if i > exploit_at) == (small.trial_id, "PENDING"), statuses
    running: set[str] = set()
    for i, trial_id, status in statuses:
        running = running | {trial_id} if status == "RUNNING" else running - {trial_id}
        assert i < exploit_at or len(running) < 2, statuses
    assert small.status is tune.TrialStatus.TERMINATED and small.history[-1]["training_iteration"] == STEPS
    assert str(small.resources) == str(tune.load(results.experiment_path).trials[0].resources) == "{CPU=1.5}"
