"""Damaged or missing files are named, never fatal to the rest: state.json, experiment.json,
checkpoint directories, and `tuner ls` over a storage directory with one damaged experiment."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

import tuner as tune
from searchers import OptunaSearch
from tests.fakes import InProcessExecutor
from tests.reliability.helpers import ROOT
from tuner.storage.jsonio import DamagedFileError


class InterruptAfter(tune.Callback):
    """Ctrl-C in the driver after ``n`` results: the sweep stops there, as after a crash."""

    def __init__(self, n):
        self.n, self.seen = n, 0

    def on_trial_result(self, trial, result):
        self.seen += 1
        if self.seen == self.n:
            raise KeyboardInterrupt


def steps(config):
    start = (tune.get_checkpoint() or {"step": 0})["step"]
    for step in range(start + 1, 7):
        tune.report({"loss": config["x"] ** 2 + 1.0 / step, "step": step}, checkpoint={"step": step})


def _run(storage, interrupt=None, **kwargs):
    kwargs.setdefault("search_alg", OptunaSearch(seed=0))
    return tune.run(steps, config={"x": tune.uniform(-1, 1)}, num_samples=6, metric="loss", mode="min",
                    storage_path=storage, name="exp", verbose=0, max_concurrent_trials=2, seed=0,
                    callbacks=[InterruptAfter(interrupt)] if interrupt else None, _executor=InProcessExecutor(),
                    **kwargs)


def _interrupted(storage, n=9):
    with pytest.raises(KeyboardInterrupt):
        _run(storage, interrupt=n)
    return os.path.join(storage, "exp")


def test_garbage_state_json_is_an_error_naming_the_file_and_the_fix(storage):
    path = _interrupted(storage)
    with open(os.path.join(path, "state.json"), "w") as f:
        f.write('{"version": 2, "sched')
    with pytest.raises(DamagedFileError, match=rf"{path}/state.json is damaged: not valid JSON \(line 1, column "
                                               r"\d+: .*\). .*delete it and resume: the snapshot is rebuilt from "
                                               "journal.jsonl"):
        _run(storage, resume=True)


def test_missing_state_json_is_rebuilt_from_the_journal_without_repeating_configs(storage):
    path = _interrupted(storage, n=20)
    if os.path.exists(os.path.join(path, "state.json")):  # snapshots are written on a budget: maybe none yet
        os.remove(os.path.join(path, "state.json"))
    results = _run(storage, resume=True)
    xs = [t.config["x"] for t in results.trials]
    assert len(results.trials) == 6 and len(set(xs)) == 6
    for t in results.trials:
        assert [r["step"] for r in t.history] == list(range(1, 7))


def test_garbage_experiment_json_is_named_and_tuner_ls_lists_the_rest(storage):
    path = _interrupted(storage)
    _run(os.path.join(storage, "other"))
    with open(os.path.join(path, "experiment.json"), "wb") as f:
        f.write(b"\x00\x01 not json")
    with pytest.raises(DamagedFileError, match=rf"{path}/experiment.json is damaged: not valid JSON .*the results "
                                               "themselves are in journal.jsonl"):
        tune.load(path)
    with pytest.raises(DamagedFileError, match="experiment.json is damaged"):
        tune.resume(path, verbose=0)
    listing = subprocess.run([sys.executable, "-m", "tuner.cli", "ls", storage, "--format", "json"], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0, listing.stderr
    by_name = {s["name"]: s for s in json.loads(listing.stdout)}
    assert by_name["exp"]["status"] == "damaged" and "experiment.json is damaged" in by_name["exp"]["problem"]
    table = subprocess.run([sys.executable, "-m", "tuner.cli", "ls", storage], cwd=ROOT, capture_output=True,
                           text=True, timeout=120)
    assert "damaged" in table.stdout and "exp: " in table.stderr and "Traceback" not in table.stderr
    shown = subprocess.run([sys.executable, "-m", "tuner.cli", "show", path], cwd=ROOT, capture_output=True,
                           text=True, timeout=120)
    assert shown.returncode == 2 and "experiment.json is damaged" in shown.stderr
    assert "Traceback" not in shown.stderr


def _interrupted_with_two_checkpoints(storage):
    """Where the interruption lands depends on the trials' threads: try later points until a
    running trial has two checkpoints (the case this test is about)."""
    for n in range(7, 14):
        sub = os.path.join(storage, f"at{n}")
        os.makedirs(sub)
        path = _interrupted(sub, n=n)
        before = tune.load(path)
        running = [t for t in before.trials if t.status is tune.TrialStatus.RUNNING and len(t.checkpoints) >= 2]
        if running:
            return sub, path, before, running
    pytest.fail("never interrupted while a trial with two checkpoints ran")


def test_a_deleted_checkpoint_directory_falls_back_to_the_previous_one_and_is_journaled(storage):
    storage, path, before, running = _interrupted_with_two_checkpoints(storage)
    victim = running[0]
    latest, previous = victim.checkpoints[-1], victim.checkpoints[-2]
    shutil.rmtree(latest)
    results = _run(storage, resume=True)
    trial = next(t for t in results.trials if t.trial_id == victim.trial_id)
    assert [r["step"] for r in trial.history] == list(range(1, 7))  # gap-free after the fallback
    events = [json.loads(line) for line in open(os.path.join(path, "journal.jsonl"))]
    deleted = [e for e in events if e["event"] == "checkpoint_deleted" and e["path"] == latest]
    assert deleted, "the missing checkpoint is recorded"
    rollbacks = [e["iteration"] for e in events if e["event"] == "rollback" and e["trial_id"] == victim.trial_id]
    assert before.trials[int(victim.trial_id[-1])].checkpoint_iterations[previous] in rollbacks


def test_every_checkpoint_deleted_restarts_the_trial_from_scratch(storage):
    path = _interrupted(storage, n=7)
    victim = next(t for t in tune.load(path).trials if t.status is tune.TrialStatus.RUNNING and t.checkpoints)
    shutil.rmtree(os.path.join(victim.path, "checkpoints"))
    results = _run(storage, resume=True)
    trial = next(t for t in results.trials if t.trial_id == victim.trial_id)
    assert [r["step"] for r in trial.history] == list(range(1, 7))
