"""``tune.run(..., in_process=True)``: trials in threads of the driver, no Ray started.

The run loop is the same as on Ray workers (tests/integration/test_executor_contract.py
holds ThreadExecutor to RayExecutor's contract); these check what is particular to it:
where trials run, how many at once, what it refuses, a hung trial, a crash of the driver.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import tuner as tune
from schedulers import ASHAScheduler

_lock = threading.Lock()
_now = {"running": 0, "most": 0}
_seen_in: list[int] = []


def overlapping(config):
    with _lock:
        _now["running"] += 1
        _now["most"] = max(_now["most"], _now["running"])
    try:
        for step in range(1, 4):
            time.sleep(0.02)
            tune.report({"score": config["x"] * step})
        _seen_in.append(os.getpid())
    finally:
        with _lock:
            _now["running"] -= 1


def _ray_up() -> bool:
    return "ray" in sys.modules and sys.modules["ray"].is_initialized()


def test_trials_run_in_this_process_as_many_at_once_as_allowed_without_ray(storage):
    _now["most"] = 0
    _seen_in.clear()
    ray_before = _ray_up()  # the suite's shared Ray may be up already; in_process must not start one
    results = tune.run(overlapping, config={"x": tune.uniform(0, 1)}, num_samples=8, metric="score", mode="max",
                       max_concurrent_trials=2, in_process=True, storage_path=storage, verbose=0, seed=0)
    assert [t.status for t in results.trials] == ["TERMINATED"] * 8
    assert all(len(t.history) == 3 for t in results.trials)
    assert set(_seen_in) == {os.getpid()}
    assert _now["most"] == 2  # two at once, never more
    assert _ray_up() == ray_before


def rung_curve(config):
    for step in range(1, 10):
        tune.report({"loss": config["x"] + 1.0 / step})


def test_asha_stops_trials_at_its_rungs_in_process(storage):
    results = tune.run(rung_curve, config={"x": tune.grid_search([0.1 * i for i in range(9)])}, metric="loss",
                       mode="min", scheduler=ASHAScheduler(max_t=9, grace_period=1, reduction_factor=3),
                       max_concurrent_trials=1, in_process=True, storage_path=storage, verbose=0)
    lengths = sorted(len(t.history) for t in results.trials)
    assert set(lengths) <= {1, 3, 9} and lengths[-1] == 9 and lengths[0] == 1
    assert results.best_config["x"] == 0.0


@pytest.mark.parametrize("resources, named", [({"cpu": 1, "gpu": 1}, "GPU"), ({"cpu": 1, "tpu_slice": 1}, "tpu_slice"),
                                              ([{"cpu": 1}, {"cpu": 1}], "placement group"),
                                              ({"cpu": 4096}, "more CPUs")])
def test_what_threads_cannot_hold_is_refused_before_anything_starts(storage, resources, named):
    with pytest.raises(ValueError, match=named) as err:
        tune.run(overlapping, config={"x": 1.0}, resources_per_trial=resources, in_process=True,
                 storage_path=storage, name="refused", verbose=0)
    assert "in_process" in str(err.value)
    assert not os.path.exists(os.path.join(storage, "refused"))


def test_in_process_with_a_cluster_address_or_bad_value_is_refused(storage):
    with pytest.raises(ValueError, match="drop `address`"):
        tune.run(overlapping, config={"x": 1.0}, in_process=True, address="auto", storage_path=storage, verbose=0)
    with pytest.raises(ValueError, match="`in_process` is 'yes'"):
        tune.run(overlapping, config={"x": 1.0}, in_process="yes", storage_path=storage, verbose=0)


def hangs_after_one_report(config):
    tune.report({"score": 1.0})
    time.sleep(3600)  # never reports again: a stop request cannot reach it


def test_a_trial_that_does_not_stop_at_the_budget_is_abandoned_and_the_sweep_ends(storage):
    results = tune.run(hangs_after_one_report, config={"x": 1.0}, in_process=True, time_budget_s=0.5,
                       storage_path=storage, verbose=0, raise_on_failed_trial=False)
    [trial] = results.trials
    assert trial.status == "TERMINATED" and len(trial.history) == 1  # as a Ray worker killed at the budget
    assert "did not stop when asked" in trial.stop_reason


TRAINABLE = textwrap.dedent("""
    import time
    import tuner as tune

    def train(config):
        start = tune.get_checkpoint() or {"step": 0}
        for step in range(start["step"] + 1, 31):
            time.sleep(0.05)
            tune.report({"score": config["x"] * step, "step": step}, checkpoint={"step": step})
""")
DRIVER = textwrap.dedent("""
    import sys
    import tuner as tune
    from in_process_trainable import train

    tune.run(train, config={"x": tune.uniform(0, 1)}, num_samples=4, metric="score", mode="max",
             max_concurrent_trials=2, in_process=True, storage_path=sys.argv[1], name="crash", verbose=0, seed=3)
""")


def test_a_sigkilled_in_process_driver_resumes_in_process_with_every_result(tmp_path):
    (tmp_path / "in_process_trainable.py").write_text(TRAINABLE)
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", ""), os.getcwd()])}
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "exp")], env=env, cwd=tmp_path)
    journal = tmp_path / "exp" / "crash" / "journal.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not journal.exists() or journal.read_text().count('"result"') < 20):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = journal.read_text()
    assert before.count('"result"') >= 20, "the driver was killed before it reported enough"

    ray_before = _ray_up()
    sys.path.insert(0, str(tmp_path))
    try:
        results = tune.resume(str(tmp_path / "exp" / "crash"), verbose=0)
    finally:
        sys.path.remove(str(tmp_path))
    assert json.loads((tmp_path / "exp" / "crash" / "experiment.json").read_text())["in_process"] is True
    for trial in results.trials:
        assert trial.status == "TERMINATED"
        assert [r["step"] for r in trial.history] == list(range(1, 31))  # gap-free, no repeats
    assert _ray_up() == ray_before
