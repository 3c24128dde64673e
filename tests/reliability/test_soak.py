"""The seeded fault-injection soak: an ASHA + OptunaSearch sweep with a checkpoint every step and
max_failures=3, on a local Ray, is hit 20 times at random moments, each time either its driver
(SIGKILL, then resumed by a new driver) or one of its running workers (SIGKILL of the PID). At the
end every trial's history is gap-free and duplicate-free, and every result journaled before a kill
is still there, with the same value. The figures go to docs/reliability.md."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

import tuner as tune
from tests.reliability import crash
from tuner.storage import journal

pytestmark = [pytest.mark.soak, pytest.mark.ray, pytest.mark.timeout(900)]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CYCLES = 20


def _results(path):
    """(trial id, iteration) -> the loss and PID journaled for it, in journal order."""
    try:
        records = journal.read(path)
    except (OSError, journal.JournalError):
        return {}
    return {(r.trial_id, r.result["training_iteration"]): (r.result["loss"], r.result["pid"])
            for r in records if isinstance(r, journal.Result)}


def _driver(ray, storage, resume):
    env = {**os.environ, "RAY_ADDRESS": ray.get_runtime_context().gcs_address,
           "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    script = f"from tests.reliability.sweeps import soak_run; soak_run({storage!r}, 'soak', {resume!r})"
    return subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_soak_twenty_kills_of_driver_or_worker(ray_local, storage):
    rng = random.Random(20)
    path = os.path.join(storage, "soak")
    seen: dict = {}
    kills = {"driver": 0, "worker": 0}
    proc = None
    try:
        for cycle in range(CYCLES):
            if proc is None:
                proc = _driver(ray_local, storage, resume=cycle > 0)
                started = len(_results(path))
            # a random moment: after 1-3 more results than the last kill left (the sweep has ~80)
            target = len(_results(path)) + rng.randint(1, 3)
            deadline = time.time() + 300
            while len(_results(path)) < target and proc.poll() is None:
                assert time.time() < deadline, "the sweep made no progress for 300 s"
                time.sleep(0.02)
            if proc.poll() is not None:
                break  # the sweep finished before this cycle's kill
            results = _results(path)
            seen.update(results)
            if rng.random() < 0.5 or len(results) == started:
                crash.kill_group(proc)
                proc = None
                kills["driver"] += 1
                continue
            running = {t.trial_id for t in tune.load(path).trials  # max_failures=3: at most 3 kills a trial
                       if t.status is tune.TrialStatus.RUNNING and t.num_failures < 2}
            fresh = [pid for (tid, _), (_, pid) in list(results.items())[started:] if tid in running]
            if not fresh:
                crash.kill_group(proc)
                proc = None
                kills["driver"] += 1
                continue
            try:
                os.kill(rng.choice(fresh), signal.SIGKILL)
                kills["worker"] += 1
            except ProcessLookupError:  # that worker had just ended its trial: the driver instead
                crash.kill_group(proc)
                proc = None
                kills["driver"] += 1
    finally:
        if proc is not None:
            crash.kill_group(proc)
    final = tune.resume(path, verbose=0, log_to_tensorboard=False, raise_on_failed_trial=False)

    assert sum(kills.values()) == CYCLES, kills
    lost = []
    for trial in final.trials:
        iterations = [r["training_iteration"] for r in trial.history]
        assert iterations == list(range(1, len(iterations) + 1)), (trial.trial_id, iterations)  # no gap, no dupe
        assert trial.status is tune.TrialStatus.TERMINATED, (trial.trial_id, trial.error)
        final_loss = {r["training_iteration"]: r["loss"] for r in trial.history}
        lost += [(tid, i) for (tid, i), (loss, _) in seen.items() if tid == trial.trial_id and final_loss.get(i) != loss]
    assert not lost, f"results seen before a kill and lost: {sorted(lost)}"
    assert len(final.trials) == 24
    print(f"\nsoak: {kills['driver']} driver kills, {kills['worker']} worker kills, {len(final.trials)} trials, "
          f"{sum(len(t.history) for t in final.trials)} results, {len(seen)} results seen before kills, 0 lost")
