"""The head node dies mid-sweep (its processes and the driver that ran on it are SIGKILLed):
the experiment in storage resumes on a new head with ``tuner resume``, every history whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import tuner as tune
from tests.cluster.conftest import ray_start
from tuner.storage import journal

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

STEPS = 30
SWEEP = textwrap.dedent(f'''
    trainable: tests.cluster.trainables:counter_on_node
    metric: step
    mode: max
    config:
      seed: {{grid_search: [0, 1, 2]}}
      n: {STEPS}
      sleep: 0.5
    resources_per_trial: {{cpu: 1}}
''')


def histories(path: str) -> dict[str, list[int]]:
    return {t.trial_id: [r["training_iteration"] for r in t.history] for t in tune.load(path).trials}


def test_head_node_killed_then_resumed_on_a_new_head(tmp_path):
    (tmp_path / "sweep.yaml").write_text(SWEEP)
    storage, path = str(tmp_path / "results"), str(tmp_path / "results" / "exp")
    with ray_start(workers={"a": {"cpus": 2, "gpus": 0}}) as first:
        driver = subprocess.Popen([sys.executable, "-m", "tuner.cli", "sweep", "sweep.yaml", "--address", first.gcs,
                                   "--storage", storage, "--name", "exp", "-q"], env=first.env, cwd=str(tmp_path),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 300
        while not (journal.exists(path) and len(h := histories(path)) == 3 and all(len(v) >= 3 for v in h.values())):
            assert driver.poll() is None, driver.stdout.read()[-3000:]
            assert time.monotonic() < deadline, "the sweep did not report on the first cluster"
            time.sleep(0.5)
        # The head goes down with the driver that ran on it: SIGKILL, no chance to clean up.
        driver.kill()
        for pid in first.pids(head_only=True):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        driver.wait(timeout=60)
        before = histories(path)
    assert any(len(h) < STEPS for h in before.values()), "the head died before the end"

    with ray_start(workers={"b": {"cpus": 2, "gpus": 0}}) as second:  # a new head, a new node
        resumed = subprocess.run([sys.executable, "-m", "tuner.cli", "resume", path, "--address", second.gcs, "-q"],
                                 env=second.env, cwd=str(tmp_path), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    after = histories(path)
    assert after.keys() == before.keys()
    for trial in tune.load(path).trials:
        iterations = after[trial.trial_id]
        assert iterations == list(range(1, STEPS + 1)), (trial.trial_id, iterations)  # no gap, no repeat
        assert iterations[:len(before[trial.trial_id])] == before[trial.trial_id]  # nothing seen is lost
        assert [r["step"] for r in trial.history] == iterations  # continued from its checkpoint
        old, new = (trial.history[:len(before[trial.trial_id])], trial.history[len(before[trial.trial_id]):])
        assert not {r["node"] for r in old} & {r["node"] for r in new}  # the rest ran on the new cluster
