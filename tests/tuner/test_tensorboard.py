"""TensorBoardCallback driven with fake trials; the event files are read back
with TensorBoard's own loader. No Ray."""

from __future__ import annotations

import dataclasses
import glob
import os
import threading
import time

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.hparams import metadata as hp_metadata
from tensorboard.util import tensor_util

import tuner as tune
from tuner.tensorboard.hparams import flatten_config, hparam_value, numeric_metrics
from tuner.tensorboard.export import EXPERIMENT_DIR, PBT_DONOR, PBT_SEGMENT, STOPPED_EARLY, SUPERSEDED, TensorBoardCallback
from tuner.trial import Trial

FLOAT64, STRING, BOOL = api_pb2.DATA_TYPE_FLOAT64, api_pb2.DATA_TYPE_STRING, api_pb2.DATA_TYPE_BOOL


# --- reading the files back -------------------------------------------------------------------


def events(run_dir):
    out = []
    for path in sorted(glob.glob(os.path.join(run_dir, "events.out.tfevents.*"))):
        out.extend(EventFileLoader(path).Load())
    return out


def values(run_dir, tag):
    return [(e.step, v) for e in events(run_dir) for v in e.summary.value if v.tag == tag]


def scalars(run_dir, tag):
    # The loader migrates simple_value to a scalar tensor, as TensorBoard does.
    return [(step, tensor_util.make_ndarray(v.tensor).item()) for step, v in values(run_dir, tag)]


def experiment(tb_dir) -> api_pb2.Experiment:
    versions = os.listdir(os.path.join(tb_dir, EXPERIMENT_DIR))
    assert len(versions) == 1, versions  # older versions are deleted
    (_, value), = values(os.path.join(tb_dir, EXPERIMENT_DIR, versions[0]), hp_metadata.EXPERIMENT_TAG)
    return hp_metadata.parse_experiment_plugin_data(value.metadata.plugin_data.content)


def session_start(run_dir):
    found = values(run_dir, hp_metadata.SESSION_START_INFO_TAG)
    assert found, f"no session start in {run_dir}"
    return hp_metadata.parse_session_start_info_plugin_data(found[0][1].metadata.plugin_data.content)


def session_end(run_dir):
    found = values(run_dir, hp_metadata.SESSION_END_INFO_TAG)
    if not found:
        return None
    return hp_metadata.parse_session_end_info_plugin_data(found[0][1].metadata.plugin_data.content)


def flushed(run_dir, tag=hp_metadata.SESSION_START_INFO_TAG, timeout=5.0):
    """Wait for the callback's flushing thread (flush_secs=0.05) to have written ``tag`` in the run."""
    deadline = time.monotonic() + timeout
    while not values(run_dir, tag):
        assert time.monotonic() < deadline, f"{tag} not flushed to {run_dir} within {timeout} s"
        time.sleep(0.02)
    return run_dir


def texts(run_dir, tag):
    return [v.tensor.string_val[0].decode() for _, v in values(run_dir, tag)]


def hparams_of(run_dir):
    out = {}
    for name, value in session_start(run_dir).hparams.items():
        out[name] = getattr(value, value.WhichOneof("kind"))
    return out


BOOKKEEPING = {PBT_DONOR: "", PBT_SEGMENT: 0.0}  # every session carries them, declared or not


def infos(tb_dir):
    return {info.name: info for info in experiment(tb_dir).hparam_infos}


def metric_tags(tb_dir):
    return [m.name.tag for m in experiment(tb_dir).metric_infos]


def discrete(info):
    return [getattr(v, v.WhichOneof("kind")) for v in info.domain_discrete.values]


# --- fixtures ----------------------------------------------------------------------------------

SPACE = {
    "lr": tune.loguniform(1e-4, 1e-1),
    "momentum": tune.uniform(0.1, 0.9),
    "layers": tune.randint(2, 5),
    "wd": tune.randn(0.0, 1.0),
    "batch": tune.grid_search([16, 32, 64]),
    "model": {"act": tune.choice(["relu", "tanh"]), "bn": tune.choice([True, False]),
              "extra": tune.choice([None, "x", 3])},
    "sched": tune.choice([{"kind": "cos"}, {"kind": "step"}]),
    "width": tune.sample_from(lambda spec: 128),
    "seed": 7,
    "tags": ["a", "b"],
}


def config(i=0):
    return {"lr": 0.001 * (i + 1), "momentum": 0.5, "layers": 3, "wd": -0.25, "batch": 32,
            "model": {"act": "tanh", "bn": False, "extra": None}, "sched": {"kind": "cos"},
            "width": 128, "seed": 7, "tags": ["a", "b"]}


@pytest.fixture
def cb(tmp_path):
    callback = TensorBoardCallback(flush_secs=0.05)
    callback.setup(str(tmp_path), SPACE, "acc", "max")
    yield callback
    callback.on_experiment_end([])


@pytest.fixture
def tb(tmp_path):
    return os.path.join(str(tmp_path), "tensorboard")


def result(it, **metrics):
    return {"training_iteration": it, "timestamp": time.time(), "trial_id": "x", "done": False, **metrics}


def run_trial(cb, trial, n=3, end="complete"):
    cb.on_trial_start(trial)
    for it in range(1, n + 1):
        res = result(it, acc=0.1 * it, loss=1.0 / it)
        trial.last_result = res
        trial.history.append(res)
        cb.on_trial_result(trial, res)
    if end == "complete":
        cb.on_trial_complete(trial)
    elif end == "error":
        cb.on_trial_error(trial)
    cb.flush()  # an ended session is written by the flushing thread; now, for the assertions


# --- arguments -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -1.0, "2"])
def test_flush_secs_must_be_positive(bad):
    with pytest.raises(ValueError, match=r"The value of `flush_secs` is .*, but must be `flush_secs > 0`\."):
        TensorBoardCallback(flush_secs=bad)


def test_default_logdir_is_under_the_experiment(tmp_path):
    cb = TensorBoardCallback()
    cb.setup(str(tmp_path), {"x": tune.uniform(0, 1)}, "acc", "max")
    cb.on_experiment_end([])
    assert os.path.isdir(os.path.join(str(tmp_path), "tensorboard", EXPERIMENT_DIR))


def test_explicit_logdir(tmp_path):
    cb = TensorBoardCallback(logdir=str(tmp_path / "tb"))
    cb.setup(str(tmp_path / "exp"), {"x": tune.uniform(0, 1)}, None, None)
    run_trial(cb, Trial("t1", {"x": 0.5}))
    cb.on_experiment_end([])
    assert hparams_of(str(tmp_path / "tb" / "t1")) == {"x": 0.5, **BOOKKEEPING}
    assert not os.path.exists(tmp_path / "exp" / "tensorboard")


# --- the experiment config -----------------------------------------------------------------------


def test_every_hyperparameter_is_declared_with_its_domain(cb, tb):
    got = infos(tb)
    assert set(got) == {"lr", "momentum", "layers", "wd", "batch", "model/act", "model/bn", "model/extra",
                        "sched", "seed", "tags"}  # sample_from: declared when its first value is seen
    assert (got["lr"].type, got["lr"].domain_interval.min_value, got["lr"].domain_interval.max_value) == (
        FLOAT64, 1e-4, 1e-1)
    assert (got["momentum"].domain_interval.min_value, got["momentum"].domain_interval.max_value) == (0.1, 0.9)
    layers = SPACE["layers"]
    top = layers.upper if getattr(layers, "upper_inclusive", False) else layers.upper - 1
    assert got["layers"].type == FLOAT64
    assert (got["layers"].domain_interval.min_value, got["layers"].domain_interval.max_value) == (2, top)
    assert got["wd"].type == FLOAT64 and got["wd"].WhichOneof("domain") is None
    assert (got["batch"].type, discrete(got["batch"])) == (FLOAT64, [16.0, 32.0, 64.0])
    assert (got["model/act"].type, discrete(got["model/act"])) == (STRING, ["relu", "tanh"])
    assert (got["model/bn"].type, discrete(got["model/bn"])) == (BOOL, [True, False])
    assert (got["model/extra"].type, discrete(got["model/extra"])) == (STRING, ["None", "x", "3"])
    assert (got["sched"].type, discrete(got["sched"])) == (STRING, ["{'kind': 'cos'}", "{'kind': 'step'}"])
    assert (got["seed"].type, discrete(got["seed"]), got["seed"].differs) == (FLOAT64, [7.0], False)
    assert (got["tags"].type, discrete(got["tags"])) == (STRING, ["['a', 'b']"])
    assert got["lr"].differs and got["model/act"].differs


def test_integer_bounds_follow_upper_inclusive(tmp_path):
    @dataclasses.dataclass
    class Integer:  # a stand-in with the tuner.space.config contract's attributes
        lower: int
        upper: int
        upper_inclusive: bool
        kind: str = "int"

    cb = TensorBoardCallback()
    cb.setup(str(tmp_path), {"a": Integer(1, 10, False), "b": Integer(1, 10, True)}, "acc", "max")
    cb.on_experiment_end([])
    got = infos(os.path.join(str(tmp_path), "tensorboard"))
    assert got["a"].domain_interval.max_value == 9 and got["b"].domain_interval.max_value == 10


def test_tuned_metrics_come_first_then_discovered_ones(cb, tb):
    assert metric_tags(tb) == ["acc"]
    trial = Trial("t1", config())
    cb.on_trial_start(trial)
    cb.on_trial_result(trial, result(1, loss=0.5, acc=0.1))
    assert metric_tags(tb) == ["acc", "training_iteration", "loss"]  # timestamp excluded, strings/bools skipped
    cb.on_trial_result(trial, result(2, loss=0.4, acc=0.2, val={"f1": 0.3}))
    assert metric_tags(tb) == ["acc", "training_iteration", "loss", "val/f1"]
    assert len(os.listdir(os.path.join(tb, EXPERIMENT_DIR))) == 1


def test_multi_objective_metrics_are_all_first(tmp_path):
    cb = TensorBoardCallback()
    cb.setup(str(tmp_path), {"x": tune.uniform(0, 1)}, ["acc", "latency"], ["max", "min"])
    cb.on_experiment_end([])
    exp = experiment(os.path.join(str(tmp_path), "tensorboard"))
    assert [m.name.tag for m in exp.metric_infos] == ["acc", "latency"]
    assert "mode=min" in exp.metric_infos[1].description


# --- sessions ----------------------------------------------------------------------------------


def test_session_start_has_the_concrete_flattened_values(cb, tb):
    trial = Trial("t1", dict(config(), lr=np.float64(0.003), extra_key={"deep": 5}))
    cb.on_trial_start(trial)
    got = hparams_of(flushed(os.path.join(tb, "t1")))
    assert got == {
        "lr": 0.003, "momentum": 0.5, "layers": 3.0, "wd": -0.25, "batch": 32.0,
        "model/act": "tanh", "model/bn": False, "model/extra": "None", "sched": "{'kind': 'cos'}",
        "width": 128.0, "seed": 7.0, "tags": "['a', 'b']", "extra_key/deep": 5.0, **BOOKKEEPING,
    }
    declared = infos(tb)  # keys first seen in a trial are declared then, with their value's type
    assert declared["width"].type == FLOAT64 and declared["extra_key/deep"].type == FLOAT64
    assert session_start(os.path.join(tb, "t1")).group_name == "t1"


def test_session_start_and_results_are_on_disk_within_flush_secs(cb, tb):
    trial = Trial("t1", config())
    cb.on_trial_start(trial)
    cb.on_trial_result(trial, result(1, acc=0.5))
    deadline = time.monotonic() + 5
    while not scalars(os.path.join(tb, "t1"), "acc"):
        assert time.monotonic() < deadline, "not flushed within 5 s (flush_secs=0.05)"
        time.sleep(0.02)
    assert session_start(os.path.join(tb, "t1"))  # flushed by the flushing thread, the trial still running
    assert scalars(os.path.join(tb, "t1"), "acc") == [(1, pytest.approx(0.5))]
    assert session_end(os.path.join(tb, "t1")) is None  # still running


def test_an_ended_session_is_written_by_the_flushing_thread_within_flush_secs(cb, tb):
    trial = Trial("t1", config())
    cb.on_trial_start(trial)
    cb.on_trial_result(trial, result(1, acc=0.5))
    cb.on_trial_complete(trial)  # no flush(): the thread writes it, off the run loop
    run = flushed(os.path.join(tb, "t1"), tag=hp_metadata.SESSION_END_INFO_TAG)
    assert session_end(run).status == api_pb2.STATUS_SUCCESS
    assert scalars(run, "acc") == [(1, pytest.approx(0.5))]


def test_every_numeric_metric_is_a_scalar_at_its_training_iteration(cb, tb):
    trial = Trial("t1", config())
    run_trial(cb, trial, n=3)
    run = os.path.join(tb, "t1")
    assert scalars(run, "acc") == [(1, pytest.approx(0.1)), (2, pytest.approx(0.2)), (3, pytest.approx(0.3))]
    assert [s for s, _ in scalars(run, "loss")] == [1, 2, 3]
    assert scalars(run, "timestamp") == [] and values(run, "done") == [] and values(run, "trial_id") == []


def test_results_without_training_iteration_count_steps(cb, tb):
    trial = Trial("t1", config())
    cb.on_trial_result(trial, {"acc": 1.0})  # no on_trial_start: started lazily
    cb.on_trial_result(trial, {"acc": 2.0})
    cb.on_trial_complete(trial)
    cb.flush()
    assert scalars(os.path.join(tb, "t1"), "acc") == [(1, 1.0), (2, 2.0)]
    assert session_start(os.path.join(tb, "t1"))


def test_finished_trial_ends_with_success_and_not_stopped_early(cb, tb):
    run_trial(cb, Trial("t1", config()))
    run = os.path.join(tb, "t1")
    assert session_end(run).status == api_pb2.STATUS_SUCCESS
    assert scalars(run, STOPPED_EARLY) == [(0, 0.0)]  # written at the session start, stays 0
    assert STOPPED_EARLY in metric_tags(tb)


def test_stopped_early_trial_is_marked(cb, tb):
    trial = Trial("t1", config(), stop_reason="ASHA: below the rung cutoff")
    run_trial(cb, trial)
    run = os.path.join(tb, "t1")
    assert session_end(run).status == api_pb2.STATUS_SUCCESS
    assert scalars(run, STOPPED_EARLY) == [(0, 0.0), (3, 1.0)]  # the last value is what HParams shows
    assert texts(run, "tuner/end") == ["Stopped early: ASHA: below the rung cutoff"]


def test_errored_trial_ends_with_failure(cb, tb):
    trial = Trial("t1", config(), error="Traceback (most recent call last):\n  ...\nValueError: boom\n")
    run_trial(cb, trial, end="error")
    run = os.path.join(tb, "t1")
    assert session_end(run).status == api_pb2.STATUS_FAILURE
    assert texts(run, "tuner/end") == ["Error: ValueError: boom"]


def test_restart_after_pause_keeps_one_session(cb, tb):
    trial = Trial("t1", config())
    run_trial(cb, trial, n=2, end=None)
    cb.on_trial_start(trial)  # resumed after a PAUSE
    cb.on_trial_result(trial, result(3, acc=0.9))
    cb.on_trial_complete(trial)
    cb.flush()
    run = os.path.join(tb, "t1")
    assert len(values(run, hp_metadata.SESSION_START_INFO_TAG)) == 1
    assert [s for s, _ in scalars(run, "acc")] == [1, 2, 3]


def test_bookkeeping_columns_are_declared_only_once_they_mean_something(cb, tb):
    trial = Trial("t1", config())
    cb.on_trial_start(trial)
    assert PBT_DONOR not in infos(tb) and STOPPED_EARLY not in metric_tags(tb) and SUPERSEDED not in metric_tags(tb)
    run_trial(cb, Trial("t2", config()))
    assert STOPPED_EARLY in metric_tags(tb) and SUPERSEDED not in metric_tags(tb) and PBT_DONOR not in infos(tb)
    # ...but every session already has them, or the parallel-coordinates view would skip it.
    assert scalars(flushed(os.path.join(tb, "t1"), SUPERSEDED), STOPPED_EARLY) == [(0, 0.0)]
    assert scalars(os.path.join(tb, "t1"), SUPERSEDED) == [(0, 0.0)]


def test_lists_of_domains_are_flattened_by_index(tmp_path):
    cb = TensorBoardCallback()
    space = {"layers": [tune.choice([8, 16]), tune.randint(1, 4)], "const": [1, 2],
             "nested": {"l": (tune.uniform(0, 1),)}}
    cb.setup(str(tmp_path), space, "acc", "max")
    run_trial(cb, Trial("t", {"layers": [16, 2], "const": [1, 2], "nested": {"l": (0.5,)}}), n=1)
    cb.on_experiment_end([])
    tb = os.path.join(str(tmp_path), "tensorboard")
    got = infos(tb)
    assert discrete(got["layers/0"]) == [8.0, 16.0] and got["layers/1"].domain_interval.max_value == 3
    assert discrete(got["const"]) == ["[1, 2]"] and got["nested/l/0"].domain_interval.max_value == 1
    assert hparams_of(os.path.join(tb, "t")) == {"layers/0": 16.0, "layers/1": 2.0, "const": "[1, 2]",
                                                 "nested/l/0": 0.5, **BOOKKEEPING}


def test_quantized_integer_bounds_are_the_reachable_multiples(tmp_path):
    cb = TensorBoardCallback()
    cb.setup(str(tmp_path), {"q": tune.qrandint(1, 20, 3)}, "acc", "max")
    cb.on_experiment_end([])
    got = infos(os.path.join(str(tmp_path), "tensorboard"))["q"]
    assert (got.domain_interval.min_value, got.domain_interval.max_value) == (3, 18)


# --- PBT ---------------------------------------------------------------------------------------


def test_exploit_starts_a_new_segment_with_the_current_config_and_lineage(cb, tb):
    donor, trial = Trial("d", config(0)), Trial("t", config(1))
    run_trial(cb, donor, n=2, end=None)
    run_trial(cb, trial, n=2, end=None)
    old = trial.config
    trial.config = dict(old, lr=0.05, model=dict(old["model"], act="relu"))
    cb.on_trial_config_change(trial, old, "d")
    cb.on_trial_start(trial)  # the run loop relaunches the trial from the donor's checkpoint
    cb.on_trial_result(trial, result(3, acc=0.8))
    cb.on_trial_complete(trial)
    cb.flush()

    first, second = os.path.join(tb, "t"), os.path.join(tb, "t", "pbt_1")
    assert (hparams_of(first)["lr"], hparams_of(first)[PBT_DONOR], hparams_of(first)[PBT_SEGMENT]) == (0.002, "", 0)
    assert session_end(first).status == api_pb2.STATUS_SUCCESS
    assert scalars(first, SUPERSEDED) == [(0, 0.0), (2, 1.0)]
    assert scalars(second, SUPERSEDED) == [(2, 0.0)]
    now = hparams_of(second)
    assert (now["lr"], now["model/act"], now[PBT_DONOR], now[PBT_SEGMENT]) == (0.05, "relu", "d", 1.0)
    assert session_start(second).group_name == "t/pbt_1"
    assert scalars(second, "acc") == [(3, pytest.approx(0.8))]
    assert scalars(second, STOPPED_EARLY) == [(2, 0.0)]
    assert session_end(second).status == api_pb2.STATUS_SUCCESS
    (lineage,) = texts(second, "pbt/lineage")
    assert "trial `d`" in lineage and "`lr`: 0.002 → 0.05" in lineage and "`model/act`: 'tanh' → 'relu'" in lineage
    declared = infos(tb)
    assert declared[PBT_DONOR].type == STRING and declared[PBT_SEGMENT].type == FLOAT64
    assert SUPERSEDED in metric_tags(tb)


def test_second_exploit_names_the_donor_segment(cb, tb):
    a, b = Trial("a", config(0)), Trial("b", config(1))
    run_trial(cb, a, n=1, end=None)
    run_trial(cb, b, n=1, end=None)
    old = a.config
    a.config = dict(old, lr=0.5)
    cb.on_trial_config_change(a, old, "b")  # a -> a/pbt_1
    old = b.config
    b.config = dict(old, lr=0.7)
    cb.on_trial_config_change(b, old, "a")  # b -> b/pbt_1, donor is a's current segment
    assert hparams_of(os.path.join(tb, "b", "pbt_1"))[PBT_DONOR] == "a/pbt_1"


# --- resume ------------------------------------------------------------------------------------


def test_a_resumed_sweep_keeps_declarations_and_segments(tmp_path, tb):
    first = TensorBoardCallback()
    first.setup(str(tmp_path), SPACE, "acc", "max")
    trial = Trial("t", config())
    run_trial(first, trial, n=1, end=None)
    first.on_trial_result(trial, result(2, acc=0.3, custom=1.0))
    old = trial.config
    trial.config = dict(old, lr=0.09)
    first.on_trial_config_change(trial, old, None)
    first.on_experiment_end([trial])  # interrupted: no session end

    second = TensorBoardCallback()
    second.setup(str(tmp_path), SPACE, "acc", "max")
    assert metric_tags(tb)[:1] == ["acc"] and "custom" in metric_tags(tb)
    assert PBT_DONOR in infos(tb)
    second.on_trial_start(trial)
    second.on_trial_result(trial, result(3, acc=0.4))
    second.on_trial_complete(trial)
    second.on_experiment_end([trial])
    assert not os.path.exists(os.path.join(tb, "t", "pbt_2"))
    assert scalars(os.path.join(tb, "t", "pbt_1"), "acc") == [(3, pytest.approx(0.4))]
    assert session_end(os.path.join(tb, "t", "pbt_1")).status == api_pb2.STATUS_SUCCESS


def test_experiment_end_closes_files_and_stops_flushing(cb, tb):
    def flushers():
        return [t for t in threading.enumerate() if t.name == "tensorboard-flush"]

    trial = Trial("t", config())
    run_trial(cb, trial, n=1, end=None)
    before = flushers()  # this callback's, and any other test's callback never ended
    cb.on_experiment_end([trial])
    assert len(flushers()) == len(before) - 1  # its flushing thread is gone
    assert session_end(os.path.join(tb, "t")) is None
    assert scalars(os.path.join(tb, "t"), "acc")


def test_a_failing_disk_turns_the_export_off_not_the_sweep(cb, tb, monkeypatch, caplog):
    from tuner.tensorboard import event_file as tb_writer
    def full_disk(self, event):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tb_writer.EventFileWriter, "write", full_disk)
    trial = Trial("t", config())
    with caplog.at_level("WARNING", logger="tuner.tensorboard.export"):
        cb.on_trial_start(trial)
        cb.on_trial_result(trial, result(1, acc=0.5))
        cb.on_trial_complete(trial)
    assert [r.getMessage() for r in caplog.records if "stopped, the sweep goes on" in r.getMessage()] == [
        f"TensorBoard export to {tb} stopped, the sweep goes on: [Errno 28] No space left on device"]


# --- pure helpers ----------------------------------------------------------------------------------


def test_flatten_config_keeps_space_leaves_whole():
    cfg = {"a": {"b": 1, "c": {"d": "x"}}, "e": {"k": 1}, "f": {}}
    assert flatten_config(cfg, {("e",)}) == {"a/b": 1, "a/c/d": "x", "e": {"k": 1}, "f": {}}


def test_numeric_metrics():
    res = {"a": 1, "b": 2.5, "c": True, "d": "s", "e": None, "f": {"g": np.float32(0.5), "h": [1]},
           "timestamp": 5.0, "i": np.int64(3), "j": float("nan")}
    got = numeric_metrics(res, ("timestamp",))
    assert set(got) == {"a", "b", "f/g", "i", "j"}
    assert (got["a"], got["f/g"], got["i"]) == (1.0, 0.5, 3.0) and all(type(v) is float for v in got.values())


@pytest.mark.parametrize(("value", "dtype", "expected"), [
    (3, FLOAT64, 3), (np.int64(3), FLOAT64, 3), (True, BOOL, True), (3, STRING, "3"), (None, STRING, "None"),
    ("x", FLOAT64, "x"), (True, FLOAT64, "True"), ([1, 2], STRING, "[1, 2]"),
])
def test_hparam_value_follows_the_declared_type(value, dtype, expected):
    got = hparam_value(value, dtype)
    assert got == expected and type(got) is type(expected)
