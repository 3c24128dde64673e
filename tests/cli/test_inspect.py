"""``tuner ls`` and ``tuner show`` on experiments written by tune.run with the in-process
executor (no Ray): tables, CSV, JSON, sorting, columns, the best trial, PBT lineage, and
never unpickling anything."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import pickle

import pytest
from click.testing import CliRunner

import tuner as tune
from schedulers.base import Decision, TrialDecision, TrialScheduler
from tests.cli.trainables import fails_above_zero, quad
from tests.fakes import InProcessExecutor
from tuner.cli.main import main


def cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


class ExploitAtTwo(TrialScheduler):
    """trial_00001 takes trial_00000's checkpoint and x=3 at iteration 2 (what PBT answers)."""

    def next_decision_point(self, trial, after):
        return 2 if after < 2 else math.inf

    def on_trial_result(self, trial, result):
        if trial.trial_id == "trial_00001":
            return TrialDecision.exploit("trial_00000", {**trial.config, "x": 3.0}, "copy trial_00000",
                                         donor_score=0.5, recipient_score=4.0)
        return Decision.CONTINUE


@pytest.fixture(scope="module")
def storage(tmp_path_factory):
    """Three experiments: a finished sweep, one with a failed trial, one with a PBT exploit."""
    root = tmp_path_factory.mktemp("results")
    common = {"storage_path": str(root), "verbose": 0, "metric": "loss", "mode": "min"}
    tune.run(quad, config={"x": tune.grid_search([0.0, 2.5, 5.0]), "steps": 3}, name="grid", seed=0,
             _executor=InProcessExecutor(), **common)
    tune.run(fails_above_zero, config={"x": tune.grid_search([-1, 1])}, name="failing", raise_on_failed_trial=False,
             _executor=InProcessExecutor(), **common)
    tune.run(quad, config={"x": tune.grid_search([1.0, 2.0]), "steps": 4}, name="pbt", scheduler=ExploitAtTwo(),
             max_concurrent_trials=1, _executor=InProcessExecutor(), **common)
    return str(root)


def test_ls_lists_status_counts_best_and_start(storage):
    result = cli("ls", storage, "--format", "json")
    assert result.exit_code == 0, result.output
    listed = {e["name"]: e for e in json.loads(result.output)}
    assert set(listed) == {"grid", "failing", "pbt"}
    grid, failing = listed["grid"], listed["failing"]
    assert grid["status"] == "finished" and grid["counts"] == {"TERMINATED": 3} and grid["trials"] == 3
    assert grid["best_trial"] == "trial_00001" and grid["best_value"] == pytest.approx(0.25 + 1 / 3)
    assert grid["metric"] == "loss" and grid["mode"] == "min" and grid["start_time"].startswith("20")
    assert failing["counts"] == {"TERMINATED": 1, "ERROR": 1}

    table = cli("ls", storage)
    assert table.exit_code == 0
    line = next(line for line in table.output.splitlines() if line.startswith("grid "))
    assert "finished" in line and "3 terminated" in line and "loss=0.5833 (min)" in line and "trial_00001" in line
    assert "1 terminated, 1 error" in table.output


def test_ls_defaults_to_the_storage_env_and_says_when_empty(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNER_STORAGE_PATH", str(tmp_path))
    result = cli("ls")
    assert result.exit_code == 0 and f"No experiments in {tmp_path}." in result.output
    missing = cli("ls", str(tmp_path / "nowhere"))
    assert missing.exit_code == 2 and f"Error: {tmp_path / 'nowhere'}: no such directory" in missing.output


def test_show_default_has_a_header_and_the_varying_columns(storage):
    result = cli("show", os.path.join(storage, "grid"))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "grid  finished" in out and "trainable tests.cli.trainables:quad, metric loss (min)" in out
    assert "3 trials (3 terminated); best loss=0.5833 (trial_00001)" in out
    header = next(line for line in out.splitlines() if line.startswith("trial_id"))
    assert [c.strip() for c in header.split("┃")] == ["trial_id", "status", "config/x", "training_iteration", "loss"]


def test_show_limit_draws_the_first_trials_and_says_how_many_more(storage):
    result = cli("show", os.path.join(storage, "grid"), "--trials", "--sort", "loss", "--limit", "1")
    assert result.exit_code == 0, result.output
    assert re.findall(r"trial_\d+", result.output) == ["trial_00001"]
    assert "... and 2 more trials (--limit 0 shows all" in result.output


def test_show_trials_sorted_with_chosen_columns_as_csv(storage):
    path = os.path.join(storage, "grid")
    result = cli("show", path, "--trials", "--sort", "loss", "--columns", "trial_id,config/x", "--columns", "loss",
                 "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [r["trial_id"] for r in rows] == ["trial_00001", "trial_00002", "trial_00000"]
    assert list(rows[0]) == ["trial_id", "config/x", "loss"] and float(rows[0]["config/x"]) == 2.5
    descending = cli("show", path, "--trials", "--sort", "-config/x", "--format", "json")
    assert [r["config/x"] for r in json.loads(descending.output)] == [5.0, 2.5, 0.0]


def test_show_json_has_the_experiment_and_every_trial(storage):
    data = json.loads(cli("show", os.path.join(storage, "failing"), "--format", "json").output)
    assert data["experiment"]["counts"] == {"TERMINATED": 1, "ERROR": 1}
    errored = next(t for t in data["trials"] if t["status"] == "ERROR")
    assert errored["error"] == "RuntimeError: x > 0 diverged" and errored["config/x"] == 1


def test_show_best(storage):
    path = os.path.join(storage, "grid")
    best = json.loads(cli("show", path, "--best", "--format", "json").output)
    assert best["trial_id"] == "trial_00001" and best["config"] == {"x": 2.5, "steps": 3}
    assert best["value"] == pytest.approx(0.25 + 1 / 3) and best["last_result"]["training_iteration"] == 3
    assert best["checkpoint"] == os.path.join(path, "trials", "trial_00001", "checkpoints", "000003")
    text = cli("show", path, "--best").output
    assert "Best trial trial_00001 (TERMINATED): loss=0.5833 (min)" in text and best["checkpoint"] in text
    other = json.loads(cli("show", path, "--best", "--metric", "loss", "--mode", "max", "--format", "json").output)
    assert other["trial_id"] == "trial_00000"


def test_show_lineage(storage):
    path = os.path.join(storage, "pbt")
    records = json.loads(cli("show", path, "--lineage", "--format", "json").output)
    (record,) = records
    assert record["trial_id"] == "trial_00001" and record["donor_id"] == "trial_00000"
    assert record["old_config"] == {"x": 2.0, "steps": 4} and record["config"] == {"x": 3.0, "steps": 4}
    assert record["donor_score"] == 0.5 and record["recipient_score"] == 4.0 and record["iteration"] == 2
    table = cli("show", path, "--lineage").output
    assert "PBT lineage of pbt: 1 exploits" in table
    row = next(line for line in table.splitlines() if "trial_00001" in line)
    assert [c.strip() for c in row.split("│")][1:] == ["2", "trial_00001", "trial_00000", "x=2", "x=3",
                                                         "0.5", "4"]
    rows = list(csv.DictReader(io.StringIO(cli("show", path, "--lineage", "--format", "csv").output)))
    assert json.loads(rows[0]["config"]) == {"x": 3.0, "steps": 4}
    assert "No PBT exploits" in cli("show", os.path.join(storage, "grid"), "--lineage").output


@pytest.mark.parametrize("args, message", [
    (["--columns", "trial_id,nope"], "Error: unknown column 'nope'; columns: trial_id, status, config/x"),
    (["--sort", "nope"], "Error: cannot sort by 'nope': no trial has it"),
    (["--format", "xml"], "Invalid value for '--format'"),
])
def test_show_usage_errors(storage, args, message):
    result = cli("show", os.path.join(storage, "grid"), *args)
    assert result.exit_code == 2 and message in result.output, result.output


def test_show_a_directory_that_is_no_experiment(storage):
    result = cli("show", storage)
    assert result.exit_code == 2
    assert f"Error: {storage} is not an experiment directory (no journal.jsonl in it)" in result.output


def test_ls_and_show_never_unpickle(storage, tmp_path, monkeypatch):
    """A checkpoint whose unpickling would run code: listing and showing must not touch it."""
    marker = tmp_path / "unpickled"

    class Poison:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    path = os.path.join(storage, "grid")
    checkpoint = json.loads(cli("show", path, "--best", "--format", "json").output)["checkpoint"]
    with open(os.path.join(checkpoint, "data.pkl"), "wb") as f:
        pickle.dump(Poison(), f)

    def refuse(*args, **kwargs):
        raise AssertionError("tuner ls/show unpickled something")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    for args in (["ls", storage], ["show", path], ["show", path, "--best"], ["show", path, "--format", "json"],
                 ["show", path, "--trials", "--format", "csv"], ["show", path, "--lineage"]):
        assert cli(*args).exit_code == 0, args
    assert not marker.exists()
