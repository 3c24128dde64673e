"""The ``tuner`` commands in-process (click's CliRunner): every usage error with its message
and exit code 2, ``--dry-run``, and sweeps whose trials run on the in-process executor
(tests/fakes.py) for exit codes 0, 1 and 130 and ``tuner resume``. No Ray here: the
end-to-end runs through a real subprocess and Ray are in test_cli_e2e.py."""

from __future__ import annotations

import json
import os
import re
import textwrap

import pytest
from click.testing import CliRunner

import tuner
import tuner.api  # the no_ray fixture patches it: loaded even when a test runs alone
from tests.fakes import InProcessExecutor
from tuner.callbacks import Callback
from tuner.cli.main import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

QUAD = """\
name: quad
trainable: tests.cli.trainables:quad
metric: loss
mode: min
num_samples: 4
seed: 0
config:
  x: {uniform: [0, 6]}
  steps: 3
scheduler: {asha: {max_t: 3, grace_period: 1, reduction_factor: 2}}
"""


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
    """Trainables are imported relative to the working directory: the repository root here."""
    monkeypatch.chdir(ROOT)


@pytest.fixture
def cli():
    def invoke(*args: str):
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    return invoke


@pytest.fixture
def sweep_file(tmp_path):
    def write(text: str = QUAD, name: str = "sweep.yaml") -> str:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return str(path)

    return write


class InterruptAfter(Callback):
    """Plays Ctrl-C in the middle of a sweep."""

    def __init__(self, results: int) -> None:
        self.left = results

    def on_trial_result(self, trial, result) -> None:
        self.left -= 1
        if self.left == 0:
            raise KeyboardInterrupt


@pytest.fixture
def no_ray(monkeypatch):
    """tune.run as the CLI calls it, with trials on the in-process executor; returns the calls' kwargs."""
    real_run = tuner.api.run
    calls: list[dict] = []
    interrupt: dict[str, int] = {}

    def run(trainable, config=None, **kwargs):
        calls.append(kwargs)
        if interrupt:
            kwargs["callbacks"] = [InterruptAfter(interrupt.pop("after"))]
        return real_run(trainable, config, _executor=InProcessExecutor(), **kwargs)

    monkeypatch.setattr(tuner, "run", run)  # first: reading tuner.run loads it from tuner.api
    monkeypatch.setattr(tuner.api, "run", run)
    run.calls, run.interrupt = calls, interrupt
    return run


# --- help ------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [[], ["sweep"], ["run"], ["ls"], ["show"], ["resume"], ["tensorboard"]])
def test_every_command_has_help_with_examples(cli, command):
    result = cli(*command, "--help")
    assert result.exit_code == 0
    assert "Examples:" in result.output and "tuner " in result.output


# --- bad usage and bad sweep files: exit code 2, the file, the key path, what was expected ------------


@pytest.mark.parametrize("text, message", [
    ("trainable: m:f\nconfig: [1, 2\n", r"sweep\.yaml: not valid YAML"),
    (QUAD + "num_sample: 3\n", r"sweep\.yaml: num_sample: unknown key; did you mean 'num_samples'\?"),
    (QUAD.replace("num_samples: 4", "num_samples: four"),
     r"sweep\.yaml: num_samples: expected an integer, got \"four\""),
    (QUAD.replace("{asha:", "{ashha:"), r"sweep\.yaml: scheduler\.ashha: unknown scheduler"),
    (QUAD.replace("reduction_factor: 2", "reduction_factor: three"),
     r"sweep\.yaml: scheduler\.asha\.reduction_factor: expected a number > 1, got \"three\""),
    (QUAD.replace("tests.cli.trainables:quad", "tests.cli.nowhere:quad"),
     r"sweep\.yaml: trainable: cannot import 'tests\.cli\.nowhere:quad': No module named 'tests\.cli\.nowhere'"),
    (QUAD.replace("trainables:quad", "trainables:qaud"),
     r"sweep\.yaml: trainable: cannot import 'tests\.cli\.trainables:qaud': .*has no attribute 'qaud'"),
    (QUAD.replace("trainables:quad", "broken_module:train"),
     r"sweep\.yaml: trainable: importing 'tests\.cli\.broken_module:train' raised RuntimeError: broken on purpose"),
    (QUAD.replace("trainables:quad", "trainables:NOT_CALLABLE"),
     r"sweep\.yaml: trainable: The trainable 3 is not callable"),
    (QUAD.replace("mode: min", "mode: min\nstop: {training_iteration: soon}"),
     r"sweep\.yaml: stop\.training_iteration: expected a number, got \"soon\""),
])
def test_bad_sweep_files_exit_2_naming_file_and_key(cli, sweep_file, tmp_path, text, message):
    result = cli("sweep", sweep_file(text), "--storage", str(tmp_path / "results"))
    assert result.exit_code == 2, result.output
    assert re.search(r"Error: .*" + message, result.output), result.output
    assert not (tmp_path / "results").exists(), "nothing may start for a bad file"


def test_missing_sweep_file(cli, tmp_path):
    result = cli("sweep", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2
    assert "Error: " + str(tmp_path / "nope.yaml") + ": no such sweep file" in result.output


@pytest.mark.parametrize("item, message", [
    ("num_samples", r"Error: --set num_samples: expected key\.path=value"),
    ("scheduler.asha.max_t=[3", r"Error: --set scheduler\.asha\.max_t=\[3: the value is not valid YAML"),
    ("scheduler.asha.max_t=-1", r"Error: .*sweep\.yaml: scheduler\.asha\.max_t: expected a number > 0, got -1"),
    ("seed.value=1", r"Error: --set seed\.value=1: seed is 0, not a mapping"),
])
def test_bad_set(cli, sweep_file, item, message):
    result = cli("sweep", sweep_file(), "--set", item, "--dry-run")
    assert result.exit_code == 2
    assert re.search(message, result.output), result.output


@pytest.mark.parametrize("args, message", [
    (["--config", "{lr: 0.1}"], r"Error: --config: not valid JSON: Expecting property name"),
    (["--config", "[1, 2]"], r"Error: --config: expected a JSON object, got \[1, 2\]"),
    (["--config", '{"x": {"uniform": [6, 0]}}'], r"Error: tuner run: config\.x\.uniform: The value of `lower` is 6"),
    (["--stop", "iteration=3"], r"Error: --stop: not valid JSON"),
    (["--scheduler", "{asha: {max_t: [}"], r"Error: --scheduler: not valid YAML or JSON"),
    (["--scheduler", "asha", "--set", "scheduler.asha.grace_period=0"],
     r"Error: tuner run: scheduler\.asha\.grace_period: expected 0 < grace_period <= max_t, got 0"),
    (["--mode", "best"], r"Invalid value for '--mode'"),
    (["--num-samples", "0"], r"Invalid value for '--num-samples'"),
])
def test_bad_run_options(cli, args, message):
    result = cli("run", "tests.cli.trainables:quad", "--metric", "loss", "--dry-run", *args)
    assert result.exit_code == 2
    assert re.search(message, result.output), result.output


def test_run_needs_a_mode_with_a_metric(cli):
    result = cli("run", "tests.cli.trainables:quad", "--config", '{"x": 1}', "--metric", "loss", "--dry-run")
    assert result.exit_code == 2
    assert "Error: tuner run: `metric='loss'` was given without a `mode`" in result.output


def test_unknown_command_and_option_exit_2(cli):
    assert cli("swep").exit_code == 2
    assert cli("ls", "--colour").exit_code == 2


# --- --dry-run -------------------------------------------------------------------------------


def test_dry_run_validates_and_prints_the_first_configs(cli, sweep_file, tmp_path, no_ray):
    storage = tmp_path / "results"
    result = cli("sweep", sweep_file(), "--storage", str(storage), "--dry-run", "--set", "num_samples=7")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "valid; nothing was run" in out and "tests.cli.trainables:quad" in out
    assert re.search(r"trials\s+7", out) and "ASHAScheduler(max_t=3, reduction_factor=2)" in out
    assert "First 5 of 7 configs" in out and str(storage / "quad") in out
    assert len(re.findall(r"^\s*\d │\s+[\d.]+ │\s+3\s*$", out, re.M)) == 5, out
    assert not storage.exists() and not no_ray.calls


def test_run_dry_run_with_grid(cli):
    result = cli("run", "tests.cli.trainables:quad", "--config", '{"x": {"grid_search": [1, 2, 3]}}',
                 "--num-samples", "2", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "First 5 of 6 configs" in result.output


def test_an_existing_experiment_is_not_overwritten(cli, sweep_file, tmp_path, no_ray):
    storage = str(tmp_path / "results")
    assert cli("sweep", sweep_file(), "--storage", storage, "-q").exit_code == 0
    result = cli("sweep", sweep_file(), "--storage", storage, "-q")
    assert result.exit_code == 2
    assert f"the experiment {storage}/quad already exists; pass another --name, or continue it: " \
           f"tuner resume {storage}/quad" in result.output


# --- running: exit codes 0, 1, 130, and resume ------------------------------------------------------


def test_sweep_runs_and_says_what_next(cli, sweep_file, tmp_path, no_ray):
    storage = str(tmp_path / "results")
    result = cli("sweep", sweep_file(), "--storage", storage, "--name", "mine", "--num-samples", "3")
    assert result.exit_code == 0, result.output
    (kwargs,) = no_ray.calls
    assert kwargs["num_samples"] == 3 and kwargs["name"] == "mine" and kwargs["storage_path"] == storage
    path = os.path.join(storage, "mine")
    assert "Best trial trial_" in result.output and "config: {'x': " in result.output
    assert "checkpoint: " + path in result.output
    for command in ("tuner show", "tuner tensorboard", "tuner resume"):
        assert f"{command} {path}" in result.output


def test_failed_trials_exit_1_unless_told_otherwise(cli, tmp_path, no_ray):
    args = ["run", "tests.cli.trainables:fails_above_zero", "--config", '{"x": {"grid_search": [-1, 1]}}',
            "--metric", "loss", "--mode", "min", "--storage", str(tmp_path), "-q"]
    failed = cli(*args, "--name", "a")
    assert failed.exit_code == 1
    assert re.search(r"Error: 1 trial\(s\) failed: trial_00001", failed.output)
    assert f"tuner resume {tmp_path}/a" in failed.output
    assert cli(*args, "--name", "b", "--no-raise-on-failed").exit_code == 0


def test_interrupted_sweep_exits_130_then_resumes(cli, sweep_file, tmp_path, no_ray):
    storage = str(tmp_path / "results")
    path = os.path.join(storage, "quad")
    no_ray.interrupt["after"] = 2
    result = cli("sweep", sweep_file(), "--storage", storage, "-q")
    assert result.exit_code == 130
    assert f"Interrupted. Continue the sweep with:\n  tuner resume {path}" in result.output
    listed = json.loads(cli("ls", storage, "--format", "json").output)
    assert [(e["name"], e["status"]) for e in listed] == [("quad", "interrupted")]

    result = cli("resume", path, "-q")
    assert result.exit_code == 0, result.output
    (listed,) = json.loads(cli("ls", storage, "--format", "json").output)
    assert listed["status"] == "finished" and listed["counts"] == {"TERMINATED": 4}


@pytest.mark.parametrize("flags, resume", [((), ("resume", "keep")), (("--errored", "resume"), ("resume", "resume")),
                                           (("--errored", "restart", "--skip-unfinished"), ("skip", "restart"))])
def test_resume_flags_reach_the_run(cli, tmp_path, no_ray, flags, resume):
    args = ["run", "tests.cli.trainables:fails_above_zero", "--config", '{"x": {"grid_search": [-1, 1]}}',
            "--metric", "loss", "--mode", "min", "--storage", str(tmp_path), "--name", "a", "-q"]
    assert cli(*args).exit_code == 1
    result = cli("resume", str(tmp_path / "a"), "-q", *flags)
    assert no_ray.calls[-1]["resume"] == resume
    failed = tuner.load(str(tmp_path / "a")).trials[1]
    assert result.exit_code == 1 and failed.status.value == "ERROR"  # it fails again when run again
    assert failed.num_failures == (2 if resume[1] == "resume" else 1)  # from scratch: a new count


def test_resume_errors(cli, tmp_path):
    result = cli("resume", str(tmp_path))
    assert result.exit_code == 2
    assert f"Error: {tmp_path} is not an experiment directory (no experiment.json in it)" in result.output
