"""Ctrl-C twice: a `tuner sweep` driver with its own local Ray gets SIGINT twice in a row (the second
while the first is still stopping the sweep); it exits 130 without a traceback and leaves none of the
processes it started (raylet, GCS, agents, workers) running; the experiment can still be loaded."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

import tuner as tune
from tests.reliability import crash
from tuner.storage import journal
from tests.reliability.helpers import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SWEEP = """
trainable: tests.reliability.sweeps:endless
num_samples: 2
metric: loss
mode: min
resources_per_trial: {cpu: 1}
"""


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        children.setdefault(int(stat[stat.rfind(b")") + 2:].split()[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:].split()[0] != b"Z"  # a zombie has ended


def test_ctrl_c_twice_exits_130_without_traceback_or_orphans(tmp_path):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(SWEEP)
    storage = str(tmp_path / "results")
    ray_tmp = tempfile.mkdtemp(prefix="trc_", dir="/tmp")  # its own Ray session directory (short: socket paths)
    env = {**os.environ, "RAY_ADDRESS": "", "RAY_TMPDIR": ray_tmp,
           "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "tuner", "sweep", str(sweep), "--storage", storage,
                             "--name", "ctrlc", "--quiet"], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    path = os.path.join(storage, "ctrlc")
    started: list[int] = []
    try:
        crash.wait_for(lambda: proc.poll() is not None or (
            os.path.exists(os.path.join(path, "journal.jsonl")) and
            sum(1 for t in tune.load(path).trials if t.history) == 2), timeout=400, what="both trials reporting")
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        started = descendants(proc.pid)
        assert started, "the driver started no processes (no local Ray?)"
        os.kill(proc.pid, signal.SIGINT)
        # The second Ctrl-C once the first is being handled (its `interrupted` record is journaled; two
        # signals sent at once reach Python's handler as one), then again until the driver is gone.
        crash.wait_for(lambda: proc.poll() is not None or any(
            r.event is journal.Event.INTERRUPTED for r in journal.read(path)), timeout=120, what="the first Ctrl-C")
        while proc.poll() is None:
            os.kill(proc.pid, signal.SIGINT)
            time.sleep(0.05)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 130, err[-3000:]
        assert "Traceback" not in err, err[-3000:]
        assert "Interrupted again: stopping now" in err and "tuner resume" in err
        crash.wait_for(lambda: not any(alive(pid) for pid in started), timeout=60,
                       what="every process the driver started to end")
    finally:
        crash.kill_group(proc)
        for pid in started:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert all(t.history for t in tune.load(path).trials)  # the journal is intact: resumable
