"""The executor contract: the same checks against RayExecutor (on the shared local Ray)
and the in-process executor the run-loop tests use, so a fake cannot drift from Ray.

Every implementation must stream results until a decision point, wait there for a
Command, end exactly on STOP, restart from a checkpoint in storage at the iteration the
LaunchSpec says, report a trainable's exception as ERROR with its traceback, and end
a trial asked to stop between decision points.
"""

from __future__ import annotations

import math
import time

import pytest

import tuner as tune
from tuner.execution.threads import ThreadExecutor
from tuner.execution.protocol import Executor
from tuner.execution.resources import normalize_resources
from tuner.runtime.messages import Command, LaunchSpec, SessionState
from tuner.storage import checkpoint as ckpt_lib

ONE_CPU = normalize_resources({"cpu": 1})


def counter(config):
    start = tune.get_checkpoint() or {"step": 0}
    for step in range(start["step"] + 1, config["steps"] + 1):
        tune.report({"step": step}, checkpoint={"step": step})
        time.sleep(config.get("sleep", 0))


def broken(config):
    tune.report({"step": 1})
    raise ValueError("the trainable broke at step 1")


@pytest.fixture(params=["in_process", pytest.param("ray", marks=pytest.mark.ray)])
def executor(request):
    if request.param == "ray":
        request.getfixturevalue("ray_local")
        from tuner.execution.executor import RayExecutor

        made = RayExecutor()
    else:
        made = ThreadExecutor(cpus=2)
    yield made
    made.shutdown()


def _spec(tmp_path, config, **kwargs):
    return LaunchSpec("trial_00000", str(tmp_path / "trial_00000"), str(tmp_path), seed=0, config=config, **kwargs)


def _until(executor, states, timeout=120.0):
    """Poll RUNNING batches until one of ``states``; returns (results so far, that batch)."""
    results, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        for trial_id, batch in executor.wait(timeout=1.0):
            assert trial_id == "trial_00000"
            results += [r for r, _ in batch.results]
            if batch.state in states:
                return results, batch
            assert batch.state is SessionState.RUNNING, batch
            executor.poll(trial_id)
    raise AssertionError(f"no batch in {states} within {timeout}s")


def test_it_is_an_executor(executor):
    assert isinstance(executor, Executor)
    assert executor.cluster_resources().get("CPU", 0) >= 1
    assert executor.has_resources_for(ONE_CPU) and executor.running() == 0


def test_streams_to_each_decision_point_and_stops_exactly_there(executor, tmp_path):
    executor.start("trial_00000", ONE_CPU, _spec(tmp_path, {"steps": 10}, next_point=2), counter, None)
    assert executor.running() == 1
    results, batch = _until(executor, {SessionState.WAITING})
    assert [r["training_iteration"] for r in results] == [1, 2]
    executor.decide("trial_00000", Command.CONTINUE, 4)
    more, batch = _until(executor, {SessionState.WAITING})
    assert [r["training_iteration"] for r in more] == [3, 4]
    executor.decide("trial_00000", Command.STOP, None)
    rest, batch = _until(executor, {SessionState.DONE})
    assert rest == []  # nothing past the point where it was stopped
    executor.release("trial_00000")
    assert executor.running() == 0


def test_restarts_from_a_checkpoint_in_storage_at_the_spec_iteration(executor, tmp_path):
    spec = _spec(tmp_path, {"steps": 5}, next_point=math.inf, start_iteration=3, time_offset=7.0)
    saved = ckpt_lib.save({"step": 3}, ckpt_lib.directory_for(spec.trial_dir, 3))  # as a worker published it
    executor.start("trial_00000", ONE_CPU, spec, counter, saved)
    results, batch = _until(executor, {SessionState.DONE})
    assert [(r["training_iteration"], r["step"]) for r in results] == [(4, 4), (5, 5)]
    assert all(r["time_total_s"] >= 7.0 for r in results)
    executor.release("trial_00000")


def test_a_raising_trainable_comes_back_as_error_with_its_traceback(executor, tmp_path):
    executor.start("trial_00000", ONE_CPU, _spec(tmp_path, {}, next_point=math.inf), broken, None)
    results, batch = _until(executor, {SessionState.ERROR})
    assert [r["step"] for r in results] == [1]
    assert "ValueError: the trainable broke at step 1" in batch.error
    executor.release("trial_00000", healthy=False)


def test_request_stop_ends_a_trial_between_decision_points(executor, tmp_path):
    spec = _spec(tmp_path, {"steps": 10_000, "sleep": 0.01}, next_point=math.inf)
    executor.start("trial_00000", ONE_CPU, spec, counter, None)
    executor.request_stop("trial_00000")
    results, batch = _until(executor, {SessionState.DONE})
    assert len(results) < 10_000
    executor.release("trial_00000")
