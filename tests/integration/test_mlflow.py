"""MLflowCallback against a real ``mlflow server`` on 127.0.0.1: what the server holds is
read back and compared with the journal (tune.load). Sweeps run in process (no Ray):
the callbacks run on the driver either way."""

from __future__ import annotations

import filecmp
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

import tuner as tune
from schedulers import ASHAScheduler, PopulationBasedTraining
from tests.fakes import InProcessExecutor
from tests.integration.trainables import pbt_counter
from tuner.storage.experiment import flatten

mlflow = pytest.importorskip("mlflow")
from tuner.integrations import MLflowCallback  # noqa: E402

pytestmark = [pytest.mark.tracking, pytest.mark.timeout(600)]  # the server starts slowly on a busy machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """``mlflow server`` with a SQLite backend store and served artifacts, stopped by PID."""
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    log = open(root / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{root}/mlflow.db", "--artifacts-destination", str(root / "artifacts")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 480  # first start creates the database: minutes on a loaded machine
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not come up: {(root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield uri
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and its worker processes, by the server's PID
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def decaying(config):
    start = (tune.get_checkpoint() or {"step": 0})["step"]
    for step in range(start + 1, 7):
        if config["x"] == 2 and step == 3:
            raise RuntimeError("x=2 diverges")
        tune.report({"loss": config["x"] / step, "aux": {"width": config["net"]["width"]}}, checkpoint={"step": step})


def runs_by_name(client, experiment_name):
    experiment = client.get_experiment_by_name(experiment_name)
    assert experiment is not None, f"no MLflow experiment {experiment_name!r}"
    return {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}


def test_one_run_per_trial_with_params_metrics_status_and_checkpoints(mlflow_server, storage, tmp_path):
    results = tune.run(decaying, config={"x": tune.grid_search([3, 2, 1, 4]), "net": {"width": tune.choice([8, 16])}},
                       metric="loss", mode="min", scheduler=ASHAScheduler(max_t=6, grace_period=2, reduction_factor=2),
                       max_concurrent_trials=1, storage_path=storage, name="asha", verbose=0, seed=0,
                       raise_on_failed_trial=False, log_to_tensorboard=False, _executor=InProcessExecutor(),
                       callbacks=[MLflowCallback(mlflow_server, experiment_name="tuner-asha", log_checkpoints=True,
                                                 flush_timeout_s=240)])
    journal = tune.load(results.experiment_path)
    client = mlflow.tracking.MlflowClient(mlflow_server)
    runs = runs_by_name(client, "tuner-asha")
    assert set(runs) == {t.trial_id for t in journal.trials}
    for trial in journal.trials:
        run = runs[trial.trial_id]
        assert run.info.status == ("FAILED" if trial.status.value == "ERROR" else "FINISHED")
        assert run.data.params == {k: str(v) for k, v in flatten(trial.config).items()}
        assert run.data.tags["tuner.trial_id"] == trial.trial_id
        for key in ("loss", "aux/width"):
            history = client.get_metric_history(run.info.run_id, key)
            sent = sorted((m.step, m.value, m.timestamp) for m in history)
            assert sent == [(r["training_iteration"], flatten(r)[key], int(1000 * r["timestamp"]))
                            for r in trial.history]
        listed = [a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")]
        assert listed == [f"checkpoints/{os.path.basename(trial.checkpoint_path)}"]
        local = client.download_artifacts(run.info.run_id, listed[0], str(tmp_path / trial.trial_id))
        assert not filecmp.dircmp(local, trial.checkpoint_path).diff_files
        assert sorted(os.listdir(local)) == sorted(os.listdir(trial.checkpoint_path))
    assert {r.info.status for r in runs.values()} == {"FAILED", "FINISHED"}


def test_pbt_exploits_are_params_with_their_step_and_the_donor(mlflow_server, storage):
    scheduler = PopulationBasedTraining(perturbation_interval=3, synch=True, seed=0, quantile_fraction=0.5,
                                        hyperparam_mutations={"inc": [1, 2, 5, 10, 20]})
    results = tune.run(pbt_counter, config={"inc": tune.grid_search([1, 2, 10, 20])}, metric="count", mode="max",
                       scheduler=scheduler, stop={"training_iteration": 9}, storage_path=storage, name="pbt",
                       verbose=0, log_to_tensorboard=False, _executor=InProcessExecutor(),
                       callbacks=[MLflowCallback(mlflow_server, experiment_name="tuner-pbt", flush_timeout_s=240)])
    lineage = tune.load(results.experiment_path).pbt_lineage()
    assert lineage
    client = mlflow.tracking.MlflowClient(mlflow_server)
    runs = runs_by_name(client, "tuner-pbt")
    for trial in results.trials:
        params, tags = runs[trial.trial_id].data.params, runs[trial.trial_id].data.tags
        exploits = [e for e in lineage if e["trial_id"] == trial.trial_id]
        initial = exploits[0]["old_config"] if exploits else trial.config
        expected = {"inc": str(initial["inc"])}
        expected.update({f"inc:{e['iteration']}": str(e["config"]["inc"]) for e in exploits
                         if e["config"]["inc"] != e["old_config"]["inc"]})
        assert params == expected
        assert {k: v for k, v in tags.items() if k.startswith("exploit:")} == {
            f"exploit:{e['iteration']}": e["donor_id"] for e in exploits}
        counts = [(m.step, m.value) for m in client.get_metric_history(runs[trial.trial_id].info.run_id, "count")]
        assert sorted(counts) == [(r["training_iteration"], r["count"]) for r in trial.history]


def test_a_dead_tracking_server_neither_fails_nor_stalls_the_sweep(storage, caplog):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with caplog.at_level(logging.WARNING, logger="tuner.integrations"):
        results = tune.run(decaying, config={"x": tune.grid_search([1, 3]), "net": {"width": 8}}, metric="loss",
                           mode="min", storage_path=storage, verbose=0, log_to_tensorboard=False,
                           _executor=InProcessExecutor(), callbacks=[MLflowCallback(dead, flush_timeout_s=1)])
    assert [len(t.history) for t in tune.load(results.experiment_path).trials] == [6, 6]
    assert any(r.name == "tuner.integrations" and "MLflowCallback" in r.getMessage() for r in caplog.records)


def test_missing_mlflow_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # what an environment without mlflow looks like
    with pytest.raises(ImportError, match=r"pip install 'tuner\[mlflow\]'"):
        MLflowCallback("http://127.0.0.1:1")
