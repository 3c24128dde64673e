"""The ``tuner`` command end to end, in real subprocesses that start their own local Ray:
a sweep file from examples/ (then ``tuner ls`` and ``tuner show --best --format json``),
Ctrl-C (exit 130) then ``tuner resume``, ``tuner tensorboard`` checked through TensorBoard's
HTTP API, and errors that must not need Ray."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

import tuner as tune
from tuner.storage import journal
from tuner.storage.journal import Event

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The installed console script when there is one, else the module: both run `tuner.cli.main:main`.
TUNER = [shutil.which("tuner")] if shutil.which("tuner") else [sys.executable, "-m", "tuner.cli"]


def tuner_cmd(*args: str, timeout: float = 240, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*TUNER, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env=_env(), **kwargs)


def _env() -> dict[str, str]:
    env = dict(os.environ, RAY_DEDUP_LOGS="0", PYTHONUNBUFFERED="1")
    env.pop("RAY_ADDRESS", None)
    return env


def test_mlp_sweep_file_then_ls_and_show(tmp_path):
    storage = str(tmp_path / "results")
    run = tuner_cmd("sweep", "examples/mlp_asha.yaml", "--storage", storage, "--set", "num_samples=4",
                    "--set", "config.epochs=3", "--set", "scheduler.asha.max_t=3", "--set", "stop.training_iteration=3")
    assert run.returncode == 0, run.stdout + run.stderr
    path = os.path.join(storage, "mlp-asha")
    assert "Sweep finished" in run.stdout and "Best trial trial_" in run.stdout
    assert f"tuner tensorboard {path}" in run.stdout and f"tuner resume {path}" in run.stdout

    listed = tuner_cmd("ls", storage)
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if line.startswith("mlp-asha"))
    assert "finished" in line and "4 terminated" in line and "acc=" in line

    shown = tuner_cmd("show", path, "--best", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    best = json.loads(shown.stdout)
    results = tune.load(path)
    accs = {t.trial_id: t.last_result["acc"] for t in results.trials}
    assert best["trial_id"] == max(accs, key=accs.get) and best["value"] == accs[best["trial_id"]]
    assert best["metric"] == "acc" and best["mode"] == "max" and 0.5 < best["value"] <= 1.0
    assert set(best["config"]) == {"lr", "layers", "width", "batch_size", "epochs"} and best["config"]["epochs"] == 3
    assert os.path.isdir(best["checkpoint"]) and best["checkpoint"].startswith(path)


def test_ctrl_c_exits_130_and_resume_finishes_the_sweep(tmp_path):
    storage = str(tmp_path / "results")
    path = os.path.join(storage, "slow")
    config = json.dumps({"x": {"grid_search": [1, 2]}, "steps": 40, "sleep": 0.1})
    out, err = open(tmp_path / "out.txt", "w+"), open(tmp_path / "err.txt", "w+")  # noqa: SIM115
    proc = subprocess.Popen([*TUNER, "run", "tests.cli.trainables:slow", "--config", config, "--metric", "loss",
                             "--mode", "min", "--storage", storage, "--name", "slow"],
                            cwd=ROOT, stdout=out, stderr=err, env=_env())
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if journal.exists(path) and sum(r.event is Event.RESULT for r in journal.read(path)) >= 6:
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    err.seek(0)
    assert f"Interrupted. Continue the sweep with:\n  tuner resume {path}" in err.read()
    (listed,) = json.loads(tuner_cmd("ls", storage, "--format", "json").stdout)
    assert listed["status"] == "interrupted"

    resumed = tuner_cmd("resume", path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    (listed,) = json.loads(tuner_cmd("ls", storage, "--format", "json").stdout)
    assert listed["status"] == "finished" and listed["counts"] == {"TERMINATED": 2}
    for trial in tune.load(path).trials:  # nothing lost, nothing reported twice
        assert [r["training_iteration"] for r in trial.history] == list(range(1, 41))


@pytest.mark.parametrize("where", ["local", "s3"])
def test_tensorboard_serves_the_experiment(tmp_path, where, request):
    """From a directory, and from an s3:// URI (moto_server): the event files are copied down first."""
    pytest.importorskip("tensorboard")
    from tests.integration.test_tensorboard_server import Sweep, TensorBoardServer, assert_finished_sweep_shown
    from tests.integration.test_tensorboard_server import SPACE, write_fake_sweep

    path = str(tmp_path / "exp") if where == "local" else f"{request.getfixturevalue('s3_server')}/tb/exp"
    cb, trials = write_fake_sweep(path, ["complete", "stopped", "error", "complete"])
    cb.on_experiment_end(trials)
    log = open(tmp_path / "tuner-tensorboard.log", "w+b")  # noqa: SIM115 - closed by server.stop()
    proc = subprocess.Popen([*TUNER, "tensorboard", path, "--port", "0"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=log, stdin=subprocess.DEVNULL, env=_env(), text=True)
    # The helper's own server, pointed at ours: the same HTTP checks as the TensorBoard tests.
    server = TensorBoardServer.__new__(TensorBoardServer)
    server.proc, server.log = proc, log
    try:
        line = proc.stdout.readline()
        if where == "s3":
            assert line.startswith(f"Copied the event files of {path}/tensorboard to "), line + server.output()
            line = proc.stdout.readline()
        match = re.match(r"TensorBoard: (http://127\.0\.0\.1:(\d+))/#hparams", line)
        assert match, line + server.output()
        server.url, server.port = match.group(1), int(match.group(2))
        assert_finished_sweep_shown(server, Sweep(os.path.join(path, "tensorboard"), SPACE, trials))
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


@pytest.mark.parametrize("args, message", [
    (["sweep", "no/such.yaml"], "Error: no/such.yaml: no such sweep file"),
    (["sweep", "examples/quadratic_asha.yaml", "--set", "scheduler.asha.reduction_factor=three", "--dry-run"],
     'Error: examples/quadratic_asha.yaml: scheduler.asha.reduction_factor: expected a number > 1, got "three"'),
    (["run", "examples.quadratic:train", "--config", "{x: 1}"], "Error: --config: not valid JSON"),
    (["tensorboard", "examples"], "Error: " + os.path.join(ROOT, "examples") + ": no TensorBoard logs"),
])
def test_errors_in_a_subprocess_exit_2(args, message):
    result = tuner_cmd(*args, timeout=60)
    assert result.returncode == 2
    assert message in result.stderr, result.stderr


def test_quadratic_dry_run_in_a_subprocess(tmp_path):
    result = tuner_cmd("sweep", "examples/quadratic_asha.yaml", "--dry-run", "--storage", str(tmp_path), timeout=60)
    assert result.returncode == 0, result.stderr
    assert "First 5 of 16 configs" in result.stdout and not os.listdir(tmp_path)


def test_quadratic_sweep_file_runs_with_asha_then_show_trials_as_csv(tmp_path):
    storage = str(tmp_path / "results")
    run = tuner_cmd("sweep", "examples/quadratic_asha.yaml", "--storage", storage, "-q")
    assert run.returncode == 0, run.stdout + run.stderr
    path = os.path.join(storage, "quadratic-asha")
    results = tune.load(path)
    assert len(results.trials) == 16 and all(t.status is tune.TrialStatus.TERMINATED for t in results.trials)
    stopped = [d for d in results.decisions() if d["action"] == "STOP" and d["info"]["rung"] < 20]
    assert stopped, "ASHA stopped no trial early"
    assert all(d["iteration"] == d["info"]["rung"] for d in stopped)  # exactly at their rungs
    shown = tuner_cmd("show", path, "--trials", "--format", "csv", "--sort", "loss", "--columns", "trial_id,loss")
    assert shown.returncode == 0, shown.stderr
    rows = shown.stdout.strip().splitlines()
    assert rows[0] == "trial_id,loss" and len(rows) == 17
    assert rows[1].split(",")[0] == results.best_trial.trial_id


def test_sweep_file_in_process_runs_without_ray(tmp_path):
    storage = str(tmp_path / "results")
    run = tuner_cmd("sweep", "examples/quadratic_asha.yaml", "--storage", storage, "--set", "in_process=true")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Ray" not in run.stderr, run.stderr  # a local Ray announces itself there when it starts
    path = os.path.join(storage, "quadratic-asha")
    with open(os.path.join(path, "experiment.json")) as f:
        assert json.load(f)["in_process"] is True
    results = tune.load(path)
    assert len(results.trials) == 16 and all(t.status is tune.TrialStatus.TERMINATED for t in results.trials)
    assert any(d["action"] == "STOP" and d["info"]["rung"] < 20 for d in results.decisions())
