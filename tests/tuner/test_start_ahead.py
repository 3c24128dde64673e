"""Start-ahead without Ray: the policy (``StartAhead``) and the worker's side (``TrialWorker.start_after``),
run in this process with real threads. The executor's side is tested on Ray in
tests/integration/test_start_ahead.py."""

from __future__ import annotations

import threading
import time

import pytest

import tuner as tune
from tuner.execution.start_ahead import BELOW_S, MAX_DEPTH, WINDOW_S, StartAhead
from tuner.runtime.messages import LaunchSpec, SessionState
from tuner.runtime.worker import TrialWorker

SHAPE = "1 CPU"


def test_no_start_ahead_until_the_shape_is_known_to_be_short():
    ahead = StartAhead(enabled=True)
    for _ in range(3):
        ahead.note_length(SHAPE, 0.001)
    assert ahead.depth(SHAPE) == 0, "three trials are too few to judge"
    ahead.note_length(SHAPE, 0.001)
    assert ahead.depth(SHAPE) == min(MAX_DEPTH, int(WINDOW_S / 0.001))
    assert StartAhead(enabled=False).depth(SHAPE) == 0


def test_the_depth_follows_the_running_mean_and_long_trials_turn_it_off():
    ahead = StartAhead(enabled=True)
    for _ in range(4):
        ahead.note_length(SHAPE, 0.01)
    assert ahead.depth(SHAPE) == 2  # 20 ms of work ahead at 10 ms a trial
    for _ in range(30):
        ahead.note_length(SHAPE, 2 * BELOW_S)
    assert ahead.depth(SHAPE) == 0
    assert ahead.depth("another shape") == 0


def test_trials_that_wait_at_decision_points_are_not_started_ahead():
    ahead = StartAhead(enabled=True)
    for _ in range(10):
        ahead.note_length(SHAPE, 0.001)
    ahead.note_points(SHAPE, 3)  # a scheduler's first rung
    assert ahead.depth(SHAPE) == 0
    ahead.note_points(SHAPE, None)  # a driver-side Stopper: after every result
    assert ahead.depth(SHAPE) == 0
    ahead.note_points(SHAPE, float("inf"))
    assert ahead.depth(SHAPE) > 0


def test_a_dead_worker_turns_its_shape_off_and_each_trial_is_given_back_once():
    ahead = StartAhead(enabled=True)
    for _ in range(10):
        ahead.note_length(SHAPE, 0.001)
    ahead.worker_died(SHAPE)
    assert ahead.depth(SHAPE) == 0
    assert ahead.give_back("t1") and not ahead.give_back("t1")
    assert ahead.give_back("t2")


# --- the worker's side -------------------------------------------------------------------------

RAN: list[tuple[str, str, float]] = []  # (trial id, "begin"/"end", time)
GATES: dict[str, threading.Event] = {}


def gated(config):
    """Reports once, after its gate opens (if it has one); notes when it began and ended."""
    name = config["name"]
    RAN.append((name, "begin", time.monotonic()))
    gate = GATES.get(name)
    if gate is not None:
        assert gate.wait(10)
    tune.report({"name": name})
    if config.get("then_sleep"):
        time.sleep(config["then_sleep"])
        tune.report({"name": name, "again": True})
    RAN.append((name, "end", time.monotonic()))


@pytest.fixture(autouse=True)
def _clean():
    RAN.clear()
    GATES.clear()
    yield
    for gate in GATES.values():
        gate.set()


def _spec(tmp_path, name, **config):
    return LaunchSpec(trial_id=name, trial_dir=str(tmp_path / name), experiment_path=str(tmp_path), seed=0,
                      config={"name": name, **config}, next_point=float("inf"))


def _in_thread(fn, *args):
    out: dict = {}
    thread = threading.Thread(target=lambda: out.setdefault("value", fn(*args)))
    thread.start()
    return thread, out


def _until_done(worker, name, batch):
    while batch.state is not SessionState.DONE:
        batch = batch.then(worker.poll(name))
    return batch


def _t1_held_then_t2_t3_ahead(worker, tmp_path):
    """t1 started and held at its gate; t2 and t3 sent ahead behind it. Each call in its own thread."""
    GATES["t1"] = threading.Event()
    first = _in_thread(worker.start, _spec(tmp_path, "t1"), gated, None, 1)
    ahead = _in_thread(worker.start_after, 1, [(2, _spec(tmp_path, "t2"), gated, None),
                                               (3, _spec(tmp_path, "t3"), gated, None)])
    time.sleep(0.3)
    return first, ahead


def test_trials_sent_ahead_begin_one_after_the_other_once_the_running_one_ends(tmp_path):
    worker = TrialWorker(chdir=False)
    (first, first_out), (ahead, ahead_out) = _t1_held_then_t2_t3_ahead(worker, tmp_path)
    assert [r[0] for r in RAN] == ["t1"], "nothing begins while t1 runs"
    GATES["t1"].set()
    first.join(10)
    ahead.join(10)
    assert _until_done(worker, "t1", first_out["value"]).results[0][0]["name"] == "t1"
    batches = ahead_out["value"]
    assert [(b.started, b.state, [r["name"] for r, _ in b.results]) for b in batches] == [
        (True, SessionState.DONE, ["t2"]), (True, SessionState.DONE, ["t3"])]
    order = [(name, what) for name, what, _ in RAN]
    assert order == [("t1", "begin"), ("t1", "end"), ("t2", "begin"), ("t2", "end"), ("t3", "begin"), ("t3", "end")]


def test_a_call_that_arrives_before_the_trial_it_follows_waits_for_it(tmp_path):
    worker = TrialWorker(chdir=False)
    ahead, ahead_out = _in_thread(worker.start_after, 1, [(2, _spec(tmp_path, "t2"), gated, None)])
    time.sleep(0.2)
    assert RAN == []
    _until_done(worker, "t1", worker.start(_spec(tmp_path, "t1"), gated, None, 1))
    ahead.join(10)
    assert [b.state for b in ahead_out["value"]] == [SessionState.DONE]
    assert [r[0] for r in RAN if r[1] == "begin"] == ["t1", "t2"]


def test_a_trial_asked_to_stop_before_it_began_never_runs(tmp_path):
    worker = TrialWorker(chdir=False)
    (first, _), (ahead, ahead_out) = _t1_held_then_t2_t3_ahead(worker, tmp_path)
    worker.request_stop("t2")
    GATES["t1"].set()
    ahead.join(10)
    first.join(10)
    t2, t3 = ahead_out["value"]
    assert not t2.started and t2.results == []
    assert t3.started and t3.state is SessionState.DONE
    assert "t2" not in [r[0] for r in RAN]


def test_behind_a_trial_that_goes_on_the_rest_of_the_call_never_begins(tmp_path):
    worker = TrialWorker(chdir=False)
    _until_done(worker, "t1", worker.start(_spec(tmp_path, "t1"), gated, None, 1))
    batches = worker.start_after(1, [(2, _spec(tmp_path, "t2", then_sleep=0.3), gated, None),
                                     (3, _spec(tmp_path, "t3"), gated, None),
                                     (4, _spec(tmp_path, "t4"), gated, None)])
    t2, t3, t4 = batches
    assert t2.started and t2.state is SessionState.RUNNING and [r["name"] for r, _ in t2.results] == ["t2"]
    assert not t3.started and not t4.started
    rest = _until_done(worker, "t2", worker.poll("t2"))
    assert [r.get("again") for r, _ in rest.results] == [True]
    assert [r[0] for r in RAN if r[1] == "begin"] == ["t1", "t2"]
    # What is sent next goes after t4 (passed over): it begins at once, t2 having ended.
    assert [b.state for b in worker.start_after(4, [(5, _spec(tmp_path, "t5"), gated, None)])] == [SessionState.DONE]
