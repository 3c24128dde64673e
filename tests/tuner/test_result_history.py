"""Trial histories past the in-memory budget are read back from the journal, equal to what was reported."""

from __future__ import annotations

import json
import os
import pickle

import pytest

import tuner as tune
from tests.fakes import InProcessExecutor
from tuner.results import ExperimentResults
from tuner.storage.journal import JournalError
from tuner.trial import Trial

STEPS = 12


def reporting(config):
    """12 results (nested values, strings), a checkpoint every 3; with ``flag``, fails once at step 8, so it
    restarts from step 6 and step 7 is reported again (a rollback)."""
    checkpoint = tune.get_checkpoint()
    for step in range((checkpoint or {}).get("step", 0) + 1, STEPS + 1):
        if step == 8 and config["flag"] and not os.path.exists(config["flag"]):
            open(config["flag"], "w").close()
            raise RuntimeError("fails once at step 8")
        tune.report({"loss": config["x"] / step, "step": step, "nested": {"a": step, "b": [step, "s"]},
                     "tag": f"s{step}"}, checkpoint={"step": step} if step % 3 == 0 else None)


def sweep(storage, name, flag=""):
    return tune.run(reporting, config={"x": tune.uniform(1, 2), "flag": tune.grid_search([flag, "", "", "", ""])},
                    metric="loss", mode="min", seed=5, max_failures=1, storage_path=storage, name=name, verbose=0,
                    log_to_tensorboard=False, _executor=InProcessExecutor())


def reported(trial):
    x = trial.config["x"]
    return [(s, x / s, {"a": s, "b": [s, "s"]}, f"s{s}") for s in range(1, STEPS + 1)]


def seen(trial):
    return [(r["step"], r["loss"], r["nested"], r["tag"]) for r in trial.history]


def test_histories_past_the_budget_are_read_back_equal_to_what_was_reported(storage, tmp_path, monkeypatch):
    monkeypatch.setenv("TUNER_RESULTS_IN_MEMORY", "10")
    results = sweep(storage, "exp", flag=str(tmp_path / "failed"))
    trials = results.trials
    assert [t.num_failures for t in trials] == [1, 0, 0, 0, 0]
    assert sum(len(t.history) for t in trials if t.history.in_memory) <= 10
    assert not any(t.history.in_memory for t in trials[:4])  # the oldest trials let theirs go
    for trial in trials:
        assert seen(trial) == reported(trial)
        assert [r["training_iteration"] for r in trial.history] == list(range(1, STEPS + 1))
        assert trial.history[-1] is trial.last_result and trial.history[3] == list(trial.history)[3]
        assert trial.best_value("loss", "min") == trial.config["x"] / STEPS
        with open(os.path.join(trial.path, "result.jsonl")) as f:  # the per-trial view says the same
            assert [json.loads(line) for line in f] == list(trial.history)

    loaded = tune.load(results.experiment_path)
    assert [list(t.history) for t in loaded.trials] == [list(t.history) for t in trials]
    assert loaded.dataframe(all_results=True).equals(results.dataframe(all_results=True))
    assert len(results.dataframe(all_results=True)) == 5 * STEPS
    again = pickle.loads(pickle.dumps(loaded))
    assert [seen(t) for t in again.trials] == [reported(t) for t in trials]


def test_a_history_whose_journal_is_gone_or_rewritten_says_so(storage, monkeypatch):
    monkeypatch.setenv("TUNER_RESULTS_IN_MEMORY", "0")
    results = sweep(storage, "exp")
    trial = results.trials[0]
    assert trial.history[-1]["step"] == STEPS  # the latest result is held
    journal_file = os.path.join(results.experiment_path, "journal.jsonl")
    with open(journal_file, "rb") as f:
        lines = f.readlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(b'{"event":"result"'))
    with open(journal_file, "wb") as f:  # one line dropped, as `tuner repair` drops a damaged one
        f.writelines(lines[:first] + lines[first + 1:])
    with pytest.raises(JournalError, match=r"no result of trial trial_00000 at byte \d+ any more.*tune.load"):
        list(trial.history)
    os.remove(journal_file)
    with pytest.raises(FileNotFoundError, match=r"journal is gone.*tune.load"):
        list(trial.history)
    assert trial.last_result["step"] == STEPS and len(trial.history) == STEPS


def test_the_budget_must_be_a_count(storage, monkeypatch):
    results = sweep(storage, "exp")
    monkeypatch.setenv("TUNER_RESULTS_IN_MEMORY", "many")
    with pytest.raises(ValueError, match=r"TUNER_RESULTS_IN_MEMORY is 'many', but must be an integer >= 0"):
        tune.load(results.experiment_path)


def odd_metric(config):
    for step in range(1, 6):
        value = {2: None, 3: "bad", 4: float("nan")}.get(step, float(step)) if config["odd"] else float(step)
        tune.report({"loss": value} if step != 5 or not config["odd"] else {"other": 1.0})


def test_problems_come_from_what_the_histories_kept_and_match_a_full_read(storage, monkeypatch):
    """The sweep's metric is summarised as results arrive: problems() reads nothing back, and says
    what a reading of every result says."""
    monkeypatch.setenv("TUNER_RESULTS_IN_MEMORY", "0")
    results = tune.run(odd_metric, config={"odd": tune.grid_search([True, False])}, metric="loss", mode="min",
                       storage_path=storage, name="odd", verbose=0, log_to_tensorboard=False,
                       _executor=InProcessExecutor())
    read_whole = ExperimentResults([Trial(t.trial_id, t.config, status=t.status, last_result=t.last_result,
                                          history=list(t.history)) for t in results.trials],
                                   results.experiment_path, "loss", "min")
    os.remove(os.path.join(results.experiment_path, "journal.jsonl"))  # nothing can be read back now
    problems = results.problems()
    assert problems == read_whole.problems() and list(problems) == ["trial_00000"]
    assert "reported loss=None at iteration 2 (and 2 later result(s))" in problems["trial_00000"][0]
