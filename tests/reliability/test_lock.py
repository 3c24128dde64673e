"""One driver per experiment: the lock file, its holder, stale locks, two real drivers at once."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

import ray.cloudpickle  # what tune.run imports before it takes the lock: loaded before the start signal
import tuner as tune
from tests.fakes import InProcessExecutor
from tests.integration.trainables import quadratic
from tests.reliability.helpers import ROOT, dead_pid, driver, kill_group, read_only_dir, wait_for
from tuner.storage.lock import LOCK, ExperimentLock, ExperimentLockedError, read_holder


def _write_holder(path, **fields):
    os.makedirs(path, exist_ok=True)
    holder = {"host": socket.gethostname(), "pid": os.getpid(), "start_time": None, "token": "x",
              "acquired": time.time(), "refreshed": time.time(), **fields}
    with open(os.path.join(path, LOCK), "w") as f:
        json.dump(holder, f)
    return holder


def test_second_lock_names_the_live_holder_and_release_frees_it(tmp_path):
    path = str(tmp_path / "exp")
    first = ExperimentLock(path).acquire()
    with pytest.raises(ExperimentLockedError, match=rf"in use by another driver: PID {os.getpid()} on host "
                                                    rf"'{socket.gethostname()}'"):
        ExperimentLock(path).acquire()
    first.release()
    assert read_holder(path) is None
    with ExperimentLock(path) as again:
        assert read_holder(path)["token"] == again.token


def test_lock_of_a_dead_driver_on_this_host_is_taken_over(tmp_path):
    path = str(tmp_path / "exp")
    pid = dead_pid()
    _write_holder(path, pid=pid)
    with ExperimentLock(path) as lock:
        assert lock.taken_over["pid"] == pid
        assert "no longer running" in lock.taken_over["reason"]
        assert read_holder(path)["pid"] == os.getpid()


def test_lock_from_another_host_is_taken_over_only_once_stale(tmp_path):
    path = str(tmp_path / "exp")
    _write_holder(path, host="elsewhere", pid=1, refreshed=time.time())
    with pytest.raises(ExperimentLockedError, match="PID 1 on host 'elsewhere'"):
        ExperimentLock(path, stale_after_s=60).acquire()
    _write_holder(path, host="elsewhere", pid=1, refreshed=time.time() - 120)
    with ExperimentLock(path, stale_after_s=60) as lock:
        assert "not refreshed for 12" in lock.taken_over["reason"]


def test_garbage_lock_file_is_taken_over(tmp_path):
    path = tmp_path / "exp"
    path.mkdir()
    (path / LOCK).write_bytes(b"\x00\xffgarbage")
    with ExperimentLock(str(path)) as lock:
        assert "unreadable" in lock.taken_over["reason"]


def test_the_lock_is_refreshed_while_held_and_a_takeover_is_noticed(tmp_path):
    path = str(tmp_path / "exp")
    lock = ExperimentLock(path, refresh_s=0.05).acquire()
    first = read_holder(path)["refreshed"]
    wait_for(lambda: read_holder(path)["refreshed"] > first, 10, "a refresh")
    _write_holder(path, token="someone else")  # another driver took it (this one looked dead)
    wait_for(lambda: lock.lost, 10, "the loss to be noticed")
    lock.release()
    assert read_holder(path)["token"] == "someone else"  # not removed: it is not ours


def test_read_only_storage_fails_before_ray_starts():
    script = """
import ray, tuner as tune
from tests.integration.trainables import quadratic
try:
    tune.run(quadratic, config={{"x": 1}}, storage_path={path!r}, name="exp", verbose=0)
except tune.StorageNotWritableError as exc:
    print("ERROR", exc)
print("RAY", ray.is_initialized())
"""
    with read_only_dir() as path:
        out = subprocess.run([sys.executable, "-c", script.format(path=path)], cwd=ROOT, capture_output=True,
                             text=True, timeout=120)
    assert f"ERROR Cannot write the experiment directory {path}/exp" in out.stdout, out.stderr
    assert "storage_path" in out.stdout
    assert "RAY False" in out.stdout


TWO_DRIVERS = """
import os, time, sys
import ray.cloudpickle  # what tune.run imports before it takes the lock: loaded before the start signal
import tuner as tune
from tests.fakes import InProcessExecutor  # real driver processes; their trials run in threads (no Ray start-up)
from tests.integration.trainables import slow_counter
open({go!r} + "." + str(os.getpid()), "w").close()  # ready
while not os.path.exists({go!r}):
    time.sleep(0.001)
try:
    tune.run(slow_counter, config={{"n": 6, "w": tune.grid_search([1, 2]), "sleep": 1.0}},
             storage_path={storage!r}, name="same", resume=True, verbose=0, metric="score", mode="max", _executor=InProcessExecutor())
except tune.ExperimentLockedError as exc:
    print("LOCKED", exc)
    sys.exit(3)
print("RAN")
"""


def test_two_drivers_started_at_once_one_runs_the_other_is_refused(storage, tmp_path):
    go = str(tmp_path / "go")
    procs = [driver(TWO_DRIVERS.format(go=go, storage=storage)) for _ in range(2)]
    try:
        wait_for(lambda: all(os.path.exists(f"{go}.{p.pid}") for p in procs), 120, "both drivers to be ready")
        open(go, "w").close()  # both have imported the tuner and start at the same instant
        outs = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            kill_group(p)
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 3], outs
    loser = next(out for p, out in zip(procs, outs) if p.returncode == 3)[0]
    winner = next(p for p in procs if p.returncode == 0)
    assert f"in use by another driver: PID {winner.pid} on host '{socket.gethostname()}'" in loser
    results = tune.load(os.path.join(storage, "same"))
    assert [t.trial_id for t in results.trials] == ["trial_00000", "trial_00001"]
    assert [[r["step"] for r in t.history] for t in results.trials] == [list(range(1, 7))] * 2
    assert read_holder(os.path.join(storage, "same")) is None  # released at the end


def test_cli_resume_of_a_busy_experiment_exits_2_naming_the_holder(storage):
    path = os.path.join(storage, "busy")
    tune.run(quadratic, config={"x": 1}, storage_path=storage, name="busy", verbose=0,
             _executor=InProcessExecutor())
    holder = _write_holder(path, pid=os.getpid())
    out = subprocess.run([sys.executable, "-m", "tuner.cli", "resume", path], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert f"PID {holder['pid']} on host '{holder['host']}'" in out.stderr
    assert "Traceback" not in out.stderr
    listing = subprocess.run([sys.executable, "-m", "tuner.cli", "ls", storage, "--format", "json"], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    assert json.loads(listing.stdout)[0]["status"] == "running"
