"""Resume equals no crash: a seeded sweep (max_concurrent_trials=1) whose driver is SIGKILLed at
varied points and resumed each time makes exactly the decisions of an uninterrupted run, for ASHA
with promotion, HyperBand, median stopping and PBT; each trial's result.jsonl and progress.csv
then say what the journal says. Drivers are subprocesses with the in-process executor
(``tests/reliability/sweeps.py``): no Ray, so many kills fit in a few seconds."""

from __future__ import annotations

import csv
import json
import os
import random

import pytest

import tuner as tune
from tests.fakes import InProcessExecutor
from tests.reliability import crash, sweeps
from tuner.storage import journal

KINDS = ["asha_promote", "hyperband", "median", "pbt", "pb2"]


def outcome(results) -> dict:
    """The decisions, every reported value and PBT's lineage: what a resume must repeat."""
    out = sweeps.decisions(results)
    out["values"] = [[r[results.metric] for r in t.history] for t in results.trials]
    out["lineage"] = [(e["trial_id"], e["donor_id"], e["iteration"], e["config"]) for e in results.pbt_lineage()]
    return out


def assert_views_match_journal(path: str) -> None:
    """Each trial's result.jsonl and progress.csv hold exactly its history as the journal has it."""
    for trial in tune.load(path).trials:
        with open(os.path.join(trial.path, "result.jsonl")) as f:
            rows = [json.loads(line) for line in f]
        assert rows == trial.history, f"{trial.trial_id}: result.jsonl differs from the journal"
        with open(os.path.join(trial.path, "progress.csv"), newline="") as f:
            table = list(csv.DictReader(f))
        assert [int(r["training_iteration"]) for r in table] == [r["training_iteration"] for r in trial.history], \
            f"{trial.trial_id}: progress.csv differs from the journal"


@pytest.mark.parametrize("kind", KINDS)
def test_killed_at_varied_points_then_resumed_decides_as_the_uninterrupted_sweep(storage, kind):
    whole = sweeps.run(kind, storage, "whole")
    total = crash.journal_lines(os.path.join(storage, "whole"))
    rng = random.Random(f"{kind}-kills")
    path = os.path.join(storage, "killed")
    # Three drivers in a row, each SIGKILLed after writing a seeded number of journal records
    # (exact points of the run loop), then one killed from outside at a seeded journal size.
    for attempt, records in enumerate(rng.randint(2, total // 4) for _ in range(3)):
        proc = crash.driver(crash.sweep_script(kind, storage, "killed", resume=attempt > 0, die_after=records))
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == -9, f"driver {attempt} was not killed (exit {proc.returncode}): {err[-3000:]}"
    crash.kill_at(crash.sweep_script(kind, storage, "killed", resume=True), path,
                  crash.journal_lines(path) + rng.randint(5, total // 4))
    assert not crash.finished(path)

    resumed = sweeps.resume(path)
    assert outcome(resumed) == outcome(whole)
    assert outcome(tune.load(path)) == outcome(whole)
    assert any(d[1] != "CONTINUE" for d in outcome(whole)["decisions"])
    assert_views_match_journal(path)


def killed_then_resumed(storage, kind, **where):
    """Run sweep ``kind`` as 'killed' in a driver that SIGKILLs itself where ``where`` says
    (``tests.reliability.sweeps.main``'s ``die_at_*`` arguments), then resume it here."""
    args = "".join(f", {key}={value!r}" for key, value in where.items())
    script = f"from tests.reliability.sweeps import main; main({kind!r}, {storage!r}, 'killed'{args})"
    proc = crash.driver(script)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == -9, err[-3000:]
    return sweeps.resume(os.path.join(storage, "killed"))


@pytest.mark.parametrize("ask", [3, 11])  # a random suggestion, and one of TPE's (after its 10 random ones)
def test_killed_inside_an_optuna_suggestion_resumes_to_the_same_configs(storage, ask):
    """Killed between Optuna's ask and the note of the trial id on it (two writes to Optuna's own journal):
    the resumed study fails that orphan ask and suggests the same config again, so every config and
    decision is the same."""
    whole = sweeps.run("asha_promote", storage, "whole")
    resumed = killed_then_resumed(storage, "asha_promote", die_at_optuna_ask=ask)
    assert outcome(resumed) == outcome(whole)


@pytest.mark.parametrize("kind", ["asha_promote", "median"])
def test_killed_as_a_new_trials_files_are_written_resumes_to_the_same_trials(storage, kind):
    """Killed as the 4th trial's params.json is written: after the searcher suggested it (OptunaSearch noted
    the trial id in its own journal) and its journal record was written. The trial keeps its id and config
    and gets its params.json on resume. (With the directory made before the record, as it was, a kill in
    between left a directory without a record; the resume skipped its id, so every later trial had another
    id and OptunaSearch another config: the rare mismatches of random-moment kills.)"""
    whole = sweeps.run(kind, storage, "whole")
    resumed = killed_then_resumed(storage, kind, die_at_trial_files=4)
    assert outcome(resumed) == outcome(whole)
    assert_views_match_journal(os.path.join(storage, "killed"))
    for trial in resumed.trials:
        with open(os.path.join(trial.path, "params.json")) as f:
            assert json.load(f) == trial.config


@pytest.mark.parametrize("result", [6, 14])  # where the Stopper ends trial_00000; where the median rule stops trial_00002
def test_killed_before_a_driver_side_stopper_saw_a_result_resumes_to_the_same_decisions(storage, result):
    """The driver dies right after journaling a result that neither its Stopper nor its scheduler saw:
    the resume shows it to the Stopper and then, at a decision point, to the scheduler, as the run loop
    would have; so every trial stops where and why it did uninterrupted."""
    whole = sweeps.run("median_stopper", storage, "whole")
    reasons = {t.stop_reason.split(" ")[0] for t in whole.trials}
    assert {"TrialPlateauStopper", "running"} <= reasons  # both the Stopper and the scheduler end trials
    resumed = killed_then_resumed(storage, "median_stopper", die_at_result=result)
    assert outcome(resumed) == outcome(whole)
    assert [t.stop_reason for t in resumed.trials] == [t.stop_reason for t in whole.trials]


def test_views_match_the_journal_after_a_failure_between_checkpoints(storage):
    """A worker failing between two checkpoints rolls the trial back; its files forget the rows too."""
    results = tune.run(sweeps.fails_once, config={"every": 3}, max_failures=1, storage_path=storage, name="retry",
                       verbose=0, log_to_tensorboard=False, _executor=InProcessExecutor())
    (trial,) = results.trials
    assert trial.num_failures == 1 and [r["training_iteration"] for r in trial.history] == list(range(1, 9))
    assert_views_match_journal(results.experiment_path)


def test_time_budget_counts_across_resumes(storage):
    """The budget is the experiment's: a driver killed after using it leaves nothing for the resume."""
    path = os.path.join(storage, "budget")
    script = ("from tests.reliability.sweeps import endless_run; "
              f"endless_run({storage!r}, 'budget', time_budget_s=3600)")

    def used_seconds() -> float:
        try:
            records = journal.read(path)
            start = json.load(open(os.path.join(path, "experiment.json")))["start_time"]
        except (OSError, ValueError):
            return 0.0
        stamps = [r.result["timestamp"] for r in records if isinstance(r, journal.Result)]
        return max(stamps, default=start) - start

    proc = crash.driver(script)
    try:
        crash.wait_for(lambda: used_seconds() >= 3.0, timeout=300, what="3 s of the sweep")
    finally:
        crash.kill_group(proc)
    before = len(tune.load(path).trials[0].history)

    resumed = sweeps.endless_resume(path, time_budget_s=3)
    (trial,) = resumed.trials
    assert trial.stop_reason == "time budget reached"
    assert len(trial.history) <= before  # not a single new result
    (record,) = [r for r in journal.read(path) if isinstance(r, journal.Resumed)]
    assert record.time_used >= 3.0


def test_resume_with_another_space_metric_or_mode_is_refused_with_the_differences(storage):
    path = os.path.join(storage, "space")
    sweeps.run("median", storage, "space", num_samples=2)
    with pytest.raises(tune.ExperimentChangedError) as caught:
        sweeps.resume(path, config={"x": tune.uniform(0, 10), "extra": 1}, mode="max")
    message = str(caught.value)
    assert "space['x']: uniform(lower=-2, upper=4) -> uniform(lower=0, upper=10)" in message
    assert "space['extra']: (absent) -> 1" in message and "mode: 'min' -> 'max'" in message
    assert "allow_changes=True" in message
    assert len(tune.load(path).trials) == 2  # nothing ran

    with pytest.warns(UserWarning, match="with changes"):
        sweeps.resume(path, config={"x": tune.uniform(0, 10)}, allow_changes=True, num_samples=3)
    with open(os.path.join(path, "experiment.json")) as f:
        assert json.load(f)["space"]["x"]["__domain__"]["upper"] == 10
    assert len(tune.load(path).trials) == 3
