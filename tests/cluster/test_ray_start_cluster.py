"""``tuner submit / logs / status / stop`` against a real ``ray start`` cluster with token auth:
the trainable lives only in the submitted working directory; a stopped sweep resumes whole."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time

import pytest

import tuner as tune
from tuner.storage import journal

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

TRAIN = textwrap.dedent('''
    import time
    import tuner as tune

    def train(config):
        state = tune.get_checkpoint() or {"step": 0}
        for step in range(state["step"] + 1, config["steps"] + 1):
            time.sleep(config["sleep"])
            tune.report({"loss": (config["x"] - 1) ** 2 / step}, checkpoint={"step": step})
''')

SWEEP = textwrap.dedent('''
    trainable: only_here:train
    metric: loss
    mode: min
    config:
      x: {grid_search: [0, 1, 2]}
      steps: 40
      sleep: 1.5
    resources_per_trial: {cpu: 1}
''')


def tuner(*args: str, env: dict, cwd: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tuner.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1.0)
    raise AssertionError(f"timed out waiting for {what}")


def test_submit_logs_status_stop_then_resume(ray_start_cluster, tmp_path):
    workdir = tmp_path / "project"
    workdir.mkdir()
    (workdir / "only_here.py").write_text(TRAIN)
    (workdir / "sweep.yaml").write_text(SWEEP)
    storage = str(tmp_path / "results")
    env, url = ray_start_cluster.env, ray_start_cluster.dashboard
    with pytest.raises(ImportError):
        __import__("only_here")  # the trainable exists only in the shipped working directory

    out = tuner("submit", "sweep.yaml", "--address", url, "--storage", storage, "--name", "exp", env=env,
                cwd=str(workdir), timeout=420)
    assert out.returncode == 0, out.stdout + out.stderr
    job = re.search(r"Submitted job (\S+)", out.stdout).group(1)
    path = os.path.join(storage, "exp")
    assert f"Experiment: {path}" in out.stdout

    def running_with_progress():
        logs = tuner("logs", job, "--address", url, env=env, cwd=str(tmp_path)).stdout
        return "RUNNING" in tuner("status", job, "--address", url, env=env, cwd=str(tmp_path)).stdout and \
            journal.exists(path) and len(tune.load(path).trials) == 3 and \
            all(len(t.history) >= 3 for t in tune.load(path).trials) and " running" in logs
    wait_for(running_with_progress, 180, "the submitted sweep to report results")

    status = tuner("status", job, "--address", url, env=env, cwd=str(tmp_path))
    assert f"Experiment: {path}" in status.stdout and "RUNNING" in status.stdout, status.stdout
    stopped = tuner("stop", job, "--address", url, env=env, cwd=str(tmp_path))
    assert stopped.returncode == 0 and "STOPPED" in stopped.stdout, stopped.stdout + stopped.stderr
    before = {t.trial_id: [r["training_iteration"] for r in t.history] for t in tune.load(path).trials}
    assert any(len(h) < 40 for h in before.values()), "stopped before the end"

    again = tuner("submit", "--resume", path, "--address", url, env=env, cwd=str(workdir), timeout=420)
    assert again.returncode == 0, again.stdout + again.stderr
    job2 = re.search(r"Submitted job (\S+)", again.stdout).group(1)
    wait_for(lambda: "SUCCEEDED" in tuner("status", job2, "--address", url, env=env, cwd=str(tmp_path)).stdout
             or "FAILED" in tuner("status", job2, "--address", url, env=env, cwd=str(tmp_path)).stdout,
             500, "the resumed job to end")
    assert "SUCCEEDED" in tuner("status", job2, "--address", url, env=env, cwd=str(tmp_path)).stdout, \
        tuner("logs", job2, "--address", url, env=env, cwd=str(tmp_path)).stdout[-3000:]
    results = tune.load(path)
    for trial in results.trials:
        iterations = [r["training_iteration"] for r in trial.history]
        assert iterations == list(range(1, 41)), (trial.trial_id, iterations)  # no gap, no repeat
        assert iterations[:len(before[trial.trial_id])] == before[trial.trial_id]  # nothing seen was lost
    assert results.best_config["x"] == 1


def test_missing_token_is_named_with_the_fix(ray_start_cluster, tmp_path):
    env = {k: v for k, v in ray_start_cluster.env.items() if k not in ("RAY_AUTH_TOKEN", "RAY_AUTH_MODE")}
    env["HOME"] = str(tmp_path)  # no ~/.ray/auth_token either
    out = tuner("status", "raysubmit_none", "--address", ray_start_cluster.dashboard, env=env, cwd=str(tmp_path))
    assert out.returncode == 2, out.stdout + out.stderr
    assert "RAY_AUTH_TOKEN" in out.stderr and "~/.ray/auth_token" in out.stderr, out.stderr


def test_unknown_job_and_bad_address(ray_start_cluster, tmp_path):
    env, url = ray_start_cluster.env, ray_start_cluster.dashboard
    out = tuner("status", "raysubmit_none", "--address", url, env=env, cwd=str(tmp_path))
    assert out.returncode == 2 and "no job 'raysubmit_none'" in out.stderr, out.stderr
    out = tuner("status", "x", "--address", ray_start_cluster.gcs, env=env, cwd=str(tmp_path))
    assert out.returncode == 2 and "http://HEAD:8265" in out.stderr, out.stderr


def test_fractional_gpus_fill_every_gpu_at_most_two_per_gpu(ray_start_cluster, tmp_path):
    """8 trials of 0.5 GPU on 2 nodes x 2 fake GPUs: all 4 GPUs used, never more than 2 trials on one."""
    code = textwrap.dedent(f'''
        import json, tuner as tune
        from tests.cluster.trainables import where
        r = tune.run(where, config={{"i": tune.grid_search(list(range(8))), "sleep": 4.0}},
                     resources_per_trial={{"cpu": 0.5, "gpu": 0.5}}, storage_path={str(tmp_path)!r}, verbose=0,
                     address={ray_start_cluster.gcs!r})
        print("RESULT " + json.dumps([t.last_result for t in r.trials]))
    ''')
    proc = subprocess.run([sys.executable, "-c", code], env=ray_start_cluster.env, capture_output=True, text=True,
                          timeout=300, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    seen = json.loads(next(line[7:] for line in proc.stdout.splitlines() if line.startswith("RESULT ")))
    for r in seen:
        assert len(r["gpu_ids"].split(",")) == 1 and r["cuda"] == r["gpu_ids"], r  # only its own GPU
    gpus = {(r["node"], r["gpu_ids"]) for r in seen}
    assert len(gpus) == 4, gpus  # both GPUs of both nodes
    for gpu in gpus:
        on_it = [r for r in seen if (r["node"], r["gpu_ids"]) == gpu]
        for r in on_it:  # at any trial's start, at most 2 trials hold that GPU
            assert sum(o["start"] <= r["start"] < o["end"] for o in on_it) <= 2, on_it


def test_runtime_env_ships_the_working_dir_when_the_driver_joins(ray_start_cluster, tmp_path):
    """tune.run(runtime_env={"working_dir": "."}): workers on other nodes import a module that
    exists only in the driver's directory; the experiment records it for tune.resume."""
    (tmp_path / "only_here.py").write_text(TRAIN)
    code = textwrap.dedent(f'''
        import json, tuner as tune
        from only_here import train
        r = tune.run(train, config={{"x": tune.grid_search([0, 2]), "steps": 3, "sleep": 0.0}},
                     resources_per_trial={{"cpu": 1}}, storage_path="results", verbose=0,
                     address={ray_start_cluster.gcs!r}, runtime_env={{"working_dir": "."}})
        print("RESULT " + json.dumps({{"status": [t.status.value for t in r.trials], "path": r.experiment_path}}))
    ''')
    proc = subprocess.run([sys.executable, "-c", code], env=ray_start_cluster.env, capture_output=True, text=True,
                          timeout=400, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    seen = json.loads(next(line[7:] for line in proc.stdout.splitlines() if line.startswith("RESULT ")))
    assert seen["status"] == ["TERMINATED", "TERMINATED"], seen
    with open(os.path.join(seen["path"], "experiment.json")) as f:
        assert json.load(f)["runtime_env"] == {"working_dir": str(tmp_path)}
