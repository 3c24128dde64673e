"""A real ``tensorboard`` server reads what TensorBoardCallback wrote, checked
through the HParams plugin's HTTP API (``/data/plugin/hparams/experiment`` and
``/data/plugin/hparams/session_groups``, POST JSON as the frontend sends).

The sweeps are driven with fake trials for now; ``finished_sweep`` is the one
fixture to switch to a real ``tune.run`` sweep: the assertions only use the
sweep's ``space``, its ``Trial`` objects and its tensorboard directory.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import shutil
import socket
import subprocess
import time
import urllib.request
from typing import Any

import numpy as np
import pytest

import tuner as tune
from tuner.tensorboard.hparams import flatten_config
from tuner.tensorboard.export import EXPERIMENT_DIR, PBT_DONOR, PBT_SEGMENT, STOPPED_EARLY, TensorBoardCallback
from tuner.trial import Trial, TrialStatus

pytestmark = pytest.mark.skipif(shutil.which("tensorboard") is None,
                                reason="the `tensorboard` command is not installed")

ALL_STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]
LOADERS = [pytest.param("auto", id="fast-loader"), pytest.param("false", id="python-loader")]


# --- the server --------------------------------------------------------------------------------


class TensorBoardServer:
    """``tensorboard --logdir DIR --host 127.0.0.1 --port <free>`` as a subprocess."""

    def __init__(self, logdir: str, load_fast: str = "auto") -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        log_path = os.path.join(os.path.dirname(logdir.rstrip("/")), f"tensorboard-{self.port}.log")
        self.log = open(log_path, "wb")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            ["tensorboard", "--logdir", logdir, "--host", "127.0.0.1", "--port", str(self.port),
             "--reload_interval", "1", f"--load_fast={load_fast}"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def post(self, route: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(self.url + route, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def get(self, route: str) -> Any:
        with urllib.request.urlopen(self.url + route, timeout=10) as response:
            return json.loads(response.read())

    def experiment(self) -> dict[str, Any]:
        return self.post("/data/plugin/hparams/experiment", {"experimentName": ""})

    def session_groups(self) -> dict[str, dict[str, Any]]:
        body = {"experimentName": "", "allowedStatuses": ALL_STATUSES, "colParams": [],
                "startIndex": 0, "sliceSize": 10_000}
        return {g["name"]: g for g in self.post("/data/plugin/hparams/session_groups", body)["sessionGroups"]}

    def wait_until(self, check, timeout: float = 90.0):
        """Polls ``check(self)`` until it returns a truthy value (TensorBoard reloads every second here)."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tensorboard exited with {self.proc.returncode}: {self.output()}")
            try:
                value = check(self)
                if value:
                    return value
            except (OSError, ValueError, KeyError, AssertionError) as exc:  # not up, or not loaded yet
                last_error = exc
            time.sleep(0.5)
        raise TimeoutError(f"tensorboard at {self.url} never satisfied the check ({last_error!r}): {self.output()}")

    def output(self) -> str:
        self.log.flush()
        with open(self.log.name, "rb") as fh:
            return fh.read().decode(errors="replace")[-3000:]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture
def server_factory():
    servers: list[TensorBoardServer] = []

    def start(logdir: str, load_fast: str = "auto") -> TensorBoardServer:
        servers.append(TensorBoardServer(logdir, load_fast))
        return servers[-1]

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


# --- sweeps written by the callback (fake trials until tune.run drives them) ---------------------

SPACE = {
    "lr": tune.loguniform(1e-4, 1e-1),
    "momentum": tune.uniform(0.5, 0.99),
    "layers": tune.randint(2, 6),
    "batch": tune.grid_search([16, 32, 64]),
    "model": {"act": tune.choice(["relu", "tanh", "gelu"]), "bn": tune.choice([True, False])},
    "seed": 7,
}


@dataclasses.dataclass
class Sweep:
    tb_dir: str
    space: dict[str, Any]
    trials: list[Trial]
    metric: str = "acc"


def _sample_config(rng: random.Random, i: int) -> dict[str, Any]:
    return {
        "lr": 10 ** rng.uniform(-4, -1), "momentum": rng.uniform(0.5, 0.99), "layers": rng.randrange(2, 6),
        "batch": [16, 32, 64][i % 3],
        "model": {"act": rng.choice(["relu", "tanh", "gelu"]), "bn": rng.choice([True, False])}, "seed": 7,
    }


def _report(cb: TensorBoardCallback, trial: Trial, iterations: range, rng: random.Random) -> None:
    for it in iterations:
        res = {"acc": rng.random(), "loss": rng.random() * 3, "training_iteration": it, "timestamp": time.time(),
               "trial_id": trial.trial_id, "done": False}
        trial.last_result = res
        trial.history.append(res)
        cb.on_trial_result(trial, res)


def write_fake_sweep(experiment_path: str, ends: list[str], seed: int = 0) -> tuple[TensorBoardCallback, list[Trial]]:
    """Drives the callback like the run loop would: one trial per entry of ``ends``
    ("complete", "stopped", "error", or "running": started, reporting, no end)."""
    rng = random.Random(seed)
    cb = TensorBoardCallback(flush_secs=0.2)
    cb.setup(experiment_path, SPACE, "acc", "max")
    trials = []
    for i, end in enumerate(ends):
        trial = Trial(f"{i:05d}_{rng.randrange(16**4):04x}", _sample_config(rng, i))
        trial.status = TrialStatus.RUNNING
        trials.append(trial)
        cb.on_trial_start(trial)
        _report(cb, trial, range(1, 3 + i % 3), rng)
        if end == "stopped":
            trial.stop_reason = "ASHA: below the cutoff at rung 2"
        if end in ("complete", "stopped"):
            trial.status = TrialStatus.TERMINATED
            cb.on_trial_complete(trial)
        elif end == "error":
            trial.status, trial.error = TrialStatus.ERROR, "Traceback ...\nRuntimeError: diverged"
            cb.on_trial_error(trial)
    return cb, trials


@pytest.fixture
def finished_sweep(tmp_path) -> Sweep:
    """A finished sweep's experiment directory (switch to ``tune.run`` once it exists)."""
    path = str(tmp_path / "exp")
    cb, trials = write_fake_sweep(path, ["complete", "complete", "stopped", "error", "complete", "stopped",
                                         "complete", "complete"])
    cb.on_experiment_end(trials)
    return Sweep(os.path.join(path, "tensorboard"), SPACE, trials)


# --- what TensorBoard must show ---------------------------------------------------------------


def expected_domain(domain: Any) -> tuple[str, Any]:
    """(type, interval or discrete values) of one leaf of the space, as the HParams API spells it."""
    kind = getattr(domain, "kind", None)
    if kind == "float":
        return "DATA_TYPE_FLOAT64", (domain.lower, domain.upper)
    if kind == "int":
        return "DATA_TYPE_FLOAT64", (domain.lower, domain.upper if getattr(domain, "upper_inclusive", False)
                                     else domain.upper - 1)
    values = list(domain.categories if kind == "categorical" else domain.values if kind == "grid" else [domain])
    if all(isinstance(v, bool) for v in values):
        return "DATA_TYPE_BOOL", values
    if all(isinstance(v, (int, float)) for v in values):
        return "DATA_TYPE_FLOAT64", [float(v) for v in values]
    return "DATA_TYPE_STRING", [str(v) for v in values]


def leaves(space: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in space.items():
        if isinstance(value, dict):
            out.update(leaves(value, f"{prefix}{key}/"))
        else:
            out[f"{prefix}{key}"] = value
    return out


def assert_experiment_declares_the_space(experiment: dict[str, Any], sweep: Sweep) -> None:
    declared = {info["name"]: info for info in experiment["hparamInfos"]}
    for name, domain in leaves(sweep.space).items():
        assert name in declared, f"{name} is not declared: {sorted(declared)}"
        info = declared[name]
        dtype, domain_values = expected_domain(domain)
        assert info["type"] == dtype, name
        if isinstance(domain_values, tuple):
            interval = info["domainInterval"]
            assert (interval["minValue"], interval["maxValue"]) == pytest.approx(domain_values), name
        else:
            assert info["domainDiscrete"] == domain_values, name
    metrics = [m["name"]["tag"] for m in experiment["metricInfos"]]
    assert metrics[0] == sweep.metric
    assert {"loss", "training_iteration", STOPPED_EARLY} <= set(metrics)


def metric_value(group: dict[str, Any], tag: str) -> float | None:
    found = [m["value"] for m in group["metricValues"] if m["name"]["tag"] == tag and not m["name"]["group"]]
    return found[0] if found else None


def float32(value: float) -> float:
    return float(np.float32(value))


def assert_group_matches_trial(group: dict[str, Any], trial: Trial, metric: str) -> None:
    expected = {k: float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
                for k, v in flatten_config(trial.config).items()}
    assert group["hparams"] == {**expected, PBT_DONOR: "", PBT_SEGMENT: 0.0}  # no exploit in these sweeps
    (session,) = group["sessions"]
    assert session["name"] == trial.trial_id
    if trial.last_result:
        assert metric_value(group, metric) == float32(trial.last_result[metric])
    if trial.status is TrialStatus.TERMINATED:
        assert session["status"] == "STATUS_SUCCESS"
        assert metric_value(group, STOPPED_EARLY) == (1.0 if trial.stop_reason else 0.0)
    elif trial.status is TrialStatus.ERROR:
        assert session["status"] == "STATUS_FAILURE"
    else:  # running: no session end yet, which TensorBoard reports as unknown
        assert session["status"] == "STATUS_UNKNOWN" and not session.get("endTimeSecs")


def assert_finished_sweep_shown(server: TensorBoardServer, sweep: Sweep) -> dict[str, dict[str, Any]]:
    """Every trial has ended in TensorBoard's eyes, with its space, values and metric; returns the groups."""
    n = len(sweep.trials)
    groups = server.wait_until(lambda s: (g := s.session_groups()) and len(g) == n and all(
        x["sessions"][0]["status"] != "STATUS_UNKNOWN" for x in g.values()) and g)
    assert_experiment_declares_the_space(server.experiment(), sweep)
    assert set(groups) == {t.trial_id for t in sweep.trials}
    for trial in sweep.trials:
        assert_group_matches_trial(groups[trial.trial_id], trial, sweep.metric)
    return groups


# --- tests ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("load_fast", LOADERS)
def test_finished_sweep_in_tensorboard(finished_sweep, server_factory, load_fast):
    groups = assert_finished_sweep_shown(server_factory(finished_sweep.tb_dir, load_fast), finished_sweep)
    n = len(finished_sweep.trials)
    statuses = sorted(g["sessions"][0]["status"] for g in groups.values())
    assert statuses.count("STATUS_FAILURE") == 1 and statuses.count("STATUS_SUCCESS") == n - 1


@pytest.mark.parametrize("load_fast", LOADERS)
def test_running_sweep_is_live_in_tensorboard(tmp_path, server_factory, load_fast):
    path = str(tmp_path / "exp")
    cb, trials = write_fake_sweep(path, ["complete", "running", "running"])
    try:
        sweep = Sweep(os.path.join(path, "tensorboard"), SPACE, trials)
        server = server_factory(sweep.tb_dir, load_fast)
        groups = server.wait_until(lambda s: (g := s.session_groups()) and len(g) == 3 and all(
            metric_value(x, "acc") is not None for x in g.values()) and g)
        assert_experiment_declares_the_space(server.experiment(), sweep)
        for trial in trials:
            assert_group_matches_trial(groups[trial.trial_id], trial, "acc")
        running = [name for name, g in groups.items() if not g["sessions"][0].get("endTimeSecs")]
        assert running == [t.trial_id for t in trials[1:]]

        # The sweep goes on while TensorBoard watches: a new trial, a new metric
        # (the experiment config is rewritten), more results, and one trial ends.
        rng = random.Random(1)
        late = Trial("00003_late", _sample_config(rng, 3), status=TrialStatus.RUNNING)
        trials.append(late)
        cb.on_trial_start(late)
        _report(cb, late, range(1, 3), rng)
        res = dict(trials[1].last_result, training_iteration=10, acc=0.99, grad_norm=3.5)
        trials[1].last_result = res
        cb.on_trial_result(trials[1], res)
        trials[1].status = TrialStatus.TERMINATED
        cb.on_trial_complete(trials[1])

        def updated(s):
            g = s.session_groups()
            metrics = [m["name"]["tag"] for m in s.experiment()["metricInfos"]]
            return (len(g) == 4 and "grad_norm" in metrics
                    and g[trials[1].trial_id]["sessions"][0]["status"] == "STATUS_SUCCESS"
                    and metric_value(g[late.trial_id], "acc") is not None and g)

        groups = server.wait_until(updated)
        # The superseded experiment config is gone from TensorBoard, not merely outranked.
        server.wait_until(lambda s: [r for r in s.get("/data/runs") if r.startswith(EXPERIMENT_DIR)] == [
            f"{EXPERIMENT_DIR}/{v}" for v in os.listdir(os.path.join(sweep.tb_dir, EXPERIMENT_DIR))])
        assert metric_value(groups[trials[1].trial_id], "acc") == float32(0.99)
        assert metric_value(groups[trials[1].trial_id], "grad_norm") == 3.5
        for trial in trials:
            assert_group_matches_trial(groups[trial.trial_id], trial, "acc")
        assert not math.isnan(metric_value(groups[late.trial_id], "loss"))
    finally:
        cb.on_experiment_end(trials)


@pytest.fixture
def real_sweep(ray_local, tmp_path) -> Sweep:
    """A finished sweep written by tune.run itself (the callback is on by default)."""
    from tests.integration.trainables import tb_sweep

    results = tune.run(tb_sweep, config=SPACE, num_samples=3, metric="acc", mode="max", seed=0,
                       stop={"training_iteration": 3}, storage_path=str(tmp_path), name="real", verbose=0,
                       raise_on_failed_trial=False)
    return Sweep(os.path.join(results.experiment_path, "tensorboard"), SPACE, results.trials)


def test_real_sweep_in_tensorboard(real_sweep, server_factory):
    groups = assert_finished_sweep_shown(server_factory(real_sweep.tb_dir, "auto"), real_sweep)
    assert sum(g["sessions"][0]["status"] == "STATUS_FAILURE" for g in groups.values()) == 1
    # the stop at iteration 3 fires for every trial reaching it: indexes 1, 2, 4, 5, 7, 8
    assert sum(metric_value(g, STOPPED_EARLY) == 1.0 for g in groups.values()) == 6
