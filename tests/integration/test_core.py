"""tune.run end to end on the shared local Ray: results, storage, trainables,
stop criteria, failures, resources and worker reuse."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest

import tuner as tune
from tests.integration import trainables as tr

pytestmark = pytest.mark.usefixtures("ray_local")


def test_function_sweep_results_and_files(storage):
    results = tune.run(tr.quadratic, config={"x": tune.uniform(0, 6), "steps": 3}, num_samples=4,
                       metric="loss", mode="min", storage_path=storage, name="quad", seed=1, verbose=0)
    assert len(results.trials) == 4
    assert all(t.status is tune.TrialStatus.TERMINATED for t in results.trials)
    best = results.best_trial
    assert best.last_result["loss"] == min(t.last_result["loss"] for t in results.trials)
    assert results.best_config == best.config and results.best_result == best.last_result
    for trial in results.trials:
        assert [r["training_iteration"] for r in trial.history] == [1, 2, 3]
        assert {"time_total_s", "timestamp", "trial_id"} <= set(trial.last_result)
        assert trial.last_result["trial_id"] == trial.trial_id
    path = results.experiment_path
    assert path == os.path.join(storage, "quad")
    spec = json.load(open(os.path.join(path, "experiment.json")))
    assert spec["metric"] == "loss" and spec["space"]["x"]["__domain__"]["type"] == "uniform"
    trial_dir = os.path.join(path, "trials", best.trial_id)
    assert json.load(open(os.path.join(trial_dir, "params.json"))) == best.config
    assert len(open(os.path.join(trial_dir, "result.jsonl")).read().splitlines()) == 3
    csv = pd.read_csv(os.path.join(trial_dir, "progress.csv"))
    assert list(csv["training_iteration"]) == [1, 2, 3]

    df = results.dataframe()
    assert len(df) == 4 and "config/x" in df and "loss" in df
    assert len(results.dataframe(all_results=True)) == 12

    loaded = tune.load(path)
    assert [t.trial_id for t in loaded.trials] == [t.trial_id for t in results.trials]
    assert loaded.best_config == results.best_config
    assert [t.history for t in loaded.trials] == [t.history for t in results.trials]


def test_seed_makes_configs_reproducible(storage):
    space = {"x": tune.uniform(0, 6), "nested": {"k": tune.choice(["a", "b", "c"])}, "steps": 1}
    runs = [tune.run(tr.quadratic, config=space, num_samples=5, seed=7, storage_path=storage, verbose=0)
            for _ in range(2)]
    assert [t.config for t in runs[0].trials] == [t.config for t in runs[1].trials]
    assert [t.seed for t in runs[0].trials] == [t.seed for t in runs[1].trials]


def test_grid_search_cross_product_times_samples(storage):
    results = tune.run(tr.quadratic, config={"x": tune.grid_search([1, 2, 3]), "steps": tune.grid_search([1, 2])},
                       num_samples=2, storage_path=storage, verbose=0)
    configs = sorted((t.config["x"], t.config["steps"]) for t in results.trials)
    assert configs == sorted([(x, s) for x in (1, 2, 3) for s in (1, 2)] * 2)


def test_class_trainable_with_checkpoints(storage):
    results = tune.run(tr.Counter, config={"inc": tune.grid_search([1, 2])}, storage_path=storage,
                       checkpoint_freq=2, checkpoint_at_end=True, metric="count", mode="max", verbose=0)
    for trial in results.trials:
        assert trial.last_result["count"] == 5 * trial.config["inc"]
        assert trial.last_result["training_iteration"] == 5
        names = sorted(os.path.basename(p) for p in trial.checkpoints)
        assert names == ["000002", "000004", "000005"]
    assert results.best_checkpoint == {"count": 10}


def test_context_isolation_and_worker_reuse(storage):
    results = tune.run(tr.introspect, config={"i": tune.grid_search(list(range(6)))}, storage_path=storage,
                       seed=3, verbose=0)
    firsts = [t.history[0] for t in results.trials]
    assert len({r["pid"] for r in firsts}) <= 2, "two CPUs, one CPU per trial: at most two warm workers"
    assert len({r["seed"] for r in firsts}) == 6 and len({r["rand"] for r in firsts}) == 6
    for trial, first in zip(results.trials, firsts):
        assert first["ctx_trial_id"] == trial.trial_id
        # the working directory is the trial's artifacts folder in storage
        work_dir = os.path.join(trial.path, "artifacts")
        assert first["trial_dir"] == work_dir and first["cwd"] == work_dir
        assert first["gpu_ids"] == "" and first["cuda"] in ("", "<unset>")


def test_a_callable_object_trainable_is_fresh_for_every_trial(storage):
    """Warm workers keep a function or class trainable for the whole run, but a callable object is
    fetched again per trial: no trial sees what another did to its state."""
    results = tune.run(tr.CountingCallable(), num_samples=6, max_concurrent_trials=1, storage_path=storage,
                       verbose=0)
    assert len({t.last_result["pid"] for t in results.trials}) == 1, "one warm worker ran every trial"
    assert [t.last_result["calls"] for t in results.trials] == [1] * 6


def test_max_concurrent_trials_is_respected(storage):
    results = tune.run(tr.introspect, config={"sleep": 0.3, "i": tune.grid_search(list(range(4)))},
                       max_concurrent_trials=1, storage_path=storage, verbose=0)
    spans = sorted((t.history[0]["start"], t.history[-1]["end"]) for t in results.trials)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), "trials overlapped"


def test_stop_dict_is_exact_and_min_mode_stops_below(storage):
    results = tune.run(tr.endless, config={"rate": 0.1}, stop={"training_iteration": 7}, storage_path=storage,
                       verbose=0)
    assert [r["training_iteration"] for r in results.trials[0].history] == list(range(1, 8))
    assert results.trials[0].stop_reason == "training_iteration=7 >= 7"
    results = tune.run(tr.endless, config={"rate": 0.1}, stop={"loss": 0.25}, metric="loss", mode="min",
                       storage_path=storage, verbose=0)
    assert results.trials[0].last_result["training_iteration"] == 4  # 1/4 <= 0.25


def _stop_at_acc(trial_id, result):
    return result["acc"] >= 0.5


def test_stop_callable_and_time_budget(storage):
    results = tune.run(tr.endless, config={"rate": 0.1}, stop=_stop_at_acc, storage_path=storage, verbose=0)
    assert results.trials[0].last_result["training_iteration"] == 5
    results = tune.run(tr.endless, config={"rate": 0.001, "sleep": 0.01}, num_samples=3, time_budget_s=1.5,
                       storage_path=storage, verbose=0)
    assert all(t.status is tune.TrialStatus.TERMINATED for t in results.trials)
    assert {t.stop_reason for t in results.trials} == {"time budget reached"}


def test_failed_trial_keeps_traceback_and_others_go_on(storage):
    with pytest.raises(tune.TuneError, match="2 trial\\(s\\) failed: trial_00001, trial_00003") as info:
        tune.run(tr.fail_on_odd, config={"i": tune.grid_search([0, 1, 2, 3])}, storage_path=storage,
                 name="fails", verbose=0)
    results = info.value.results
    statuses = {t.config["i"]: t.status for t in results.trials}
    assert statuses == {0: tune.TrialStatus.TERMINATED, 1: tune.TrialStatus.ERROR,
                        2: tune.TrialStatus.TERMINATED, 3: tune.TrialStatus.ERROR}
    error_txt = open(os.path.join(storage, "fails", "trials", "trial_00001", "error.txt")).read()
    assert "Traceback" in error_txt and "odd trial 1 fails on purpose" in error_txt
    assert results.trials[1].history == [results.trials[1].last_result]  # its first result is kept

    quiet = tune.run(tr.fail_on_odd, config={"i": 1}, storage_path=storage, verbose=0,
                     raise_on_failed_trial=False)
    assert quiet.trials[0].status is tune.TrialStatus.ERROR


def test_max_failures_retries(storage):
    results = tune.run(tr.flaky, config={}, max_failures=1, storage_path=storage, verbose=0)
    trial = results.trials[0]
    assert trial.status is tune.TrialStatus.TERMINATED and trial.num_failures == 1
    assert trial.last_result["ok"] == 1


def test_infeasible_resources_fail_at_once(storage):
    with pytest.raises(ValueError, match=r"can never be met: no node has CPU=64 \(CPU: not enough on any node\)\. The cluster's nodes have: \[CPU=2"):
        tune.run(tr.quadratic, config={"x": 1}, resources_per_trial={"cpu": 64}, storage_path=storage, verbose=0)
    with pytest.raises(ValueError, match=r"no node has CPU=1, tpu=1 \(tpu: not enough on any node\)"):
        tune.run(tr.quadratic, config={"x": 1}, resources_per_trial={"cpu": 1, "tpu": 1},
                 storage_path=storage, verbose=0)


def test_placement_group_captures_child_tasks_and_is_removed(storage, ray_local):
    results = tune.run(tr.placement_probe, config={"i": 0}, resources_per_trial=[{"cpu": 1}, {"cpu": 1}],
                       storage_path=storage, verbose=0)
    seen = results.trials[0].last_result
    assert seen["own_pg"] is not None and seen["task_pg"] == seen["own_pg"] == seen["actor_pg"]
    assert (seen["bundles"], seen["strategy"]) == (2, "PACK")
    table = ray_local.util.placement_group_table()
    assert table[seen["own_pg"]]["state"] == "REMOVED", "the gang's group is given back when the trial ends"


def test_placement_group_factory_strategy_and_infeasible_gangs(storage):
    spread = tune.PlacementGroupFactory([{"cpu": 1}, {"cpu": 1}], strategy="SPREAD")
    results = tune.run(tr.placement_probe, config={}, resources_per_trial=spread, storage_path=storage, verbose=0)
    assert results.trials[0].last_result["strategy"] == "SPREAD"
    assert results.trials[0].last_result["task_pg"] == results.trials[0].last_result["own_pg"]
    one_node = tune.PlacementGroupFactory([{"cpu": 1}, {"cpu": 1}], strategy="STRICT_SPREAD")
    with pytest.raises(ValueError, match=r"\{CPU=1\} x2 STRICT_SPREAD can never be met: the cluster "
                                         r"cannot hold its 2 bundles at once with the STRICT_SPREAD strategy \(every "
                                         r"bundle on a different node\)\. The cluster's nodes have: \[CPU=2"):
        tune.run(tr.placement_probe, config={}, resources_per_trial=one_node, storage_path=storage, verbose=0)
    with pytest.raises(ValueError, match=r"3 bundles at once with the PACK strategy"):
        tune.run(tr.placement_probe, config={}, resources_per_trial=[{"cpu": 1}] * 3, storage_path=storage,
                 verbose=0)


def test_per_trial_resources_two_shapes_under_asha(storage):
    from schedulers import ASHAScheduler

    results = tune.run(tr.shaped, config={"cpus": tune.grid_search([1, 2, 1, 2, 1])}, metric="score", mode="max",
                       scheduler=ASHAScheduler(max_t=3, grace_period=1, reduction_factor=2),
                       resources_per_trial=tr.cpus_of, storage_path=storage, name="shapes", verbose=0)
    assert all(t.status is tune.TrialStatus.TERMINATED for t in results.trials)
    for trial in results.trials:
        assert trial.history[0]["cpus_given"] == trial.config["cpus"]
        assert str(trial.resources) == f"{{CPU={trial.config['cpus']}}}"
    spans = {t.trial_id: (t.history[0]["start"], t.history[-1]["end"], t.config["cpus"]) for t in results.trials}
    for tid, (start, end, cpus) in spans.items():
        if cpus == 2:  # a 2-CPU trial has the whole 2-CPU Ray: nothing ran beside it
            assert all(e <= start or s >= end for other, (s, e, _) in spans.items() if other != tid), spans
    loaded = tune.load(results.experiment_path)
    assert [str(t.resources) for t in loaded.trials] == [str(t.resources) for t in results.trials]
    spec = json.load(open(os.path.join(results.experiment_path, "experiment.json")))
    assert spec["resources_per_trial"] == {"per_trial": "tests.integration.trainables:cpus_of"}
    from click.testing import CliRunner

    from tuner.cli.main import main

    shown = CliRunner().invoke(main, ["show", results.experiment_path, "--trials", "--format", "csv"])
    assert shown.exit_code == 0, shown.output
    header, *rows = shown.output.strip().splitlines()
    column = header.split(",").index("resources")
    assert [r.split(",")[column] for r in rows] == ["{CPU=1}", "{CPU=2}", "{CPU=1}", "{CPU=2}", "{CPU=1}"]


def test_per_trial_resources_that_can_never_fit_fail_that_trial(storage):
    results = tune.run(tr.shaped, config={"cpus": tune.grid_search([1, 64])}, resources_per_trial=tr.cpus_of,
                       storage_path=storage, verbose=0, raise_on_failed_trial=False)
    ok, never = results.trials
    assert ok.status is tune.TrialStatus.TERMINATED and never.status is tune.TrialStatus.ERROR
    assert "{CPU=64} can never be met: no node has CPU=64" in never.error and not never.history


def test_progress_summary_is_printed(storage, capsys):
    tune.run(tr.quadratic, config={"x": tune.grid_search([1, 3]), "steps": 1}, metric="loss", mode="min",
             storage_path=storage, verbose=1)
    out = capsys.readouterr().out
    assert "Sweep finished" in out and "Best trial trial_00001: loss=0" in out
    tune.run(tr.quadratic, config={"x": 1, "steps": 1}, storage_path=storage, verbose=0)
    assert capsys.readouterr().out == ""


def test_keep_checkpoints_num_keeps_the_best_and_the_latest(storage):
    results = tune.run(tr.Counter, config={"inc": 1}, storage_path=storage, checkpoint_freq=1,
                       keep_checkpoints_num=2, checkpoint_score_attr="min-count", verbose=0)
    trial = results.trials[0]
    assert [os.path.basename(p) for p in trial.checkpoints] == ["000001", "000005"]
    on_disk = sorted(os.listdir(os.path.join(trial.path, "checkpoints")))
    assert on_disk == ["000001", "000005"]
    assert tune.load(results.experiment_path).trials[0].checkpoints == trial.checkpoints


def test_time_budget_kills_a_trial_that_never_reports(storage, monkeypatch):
    monkeypatch.setattr("tuner.execution.runner.STOP_GRACE_S", 1.0)
    # a budget the worker surely starts within: a stop that overtakes the first report ends it gracefully
    results = tune.run(tr.never_reports_again, config={}, time_budget_s=4.0, storage_path=storage, verbose=0)
    trial = results.trials[0]
    assert trial.status is tune.TrialStatus.TERMINATED
    assert trial.stop_reason.startswith("time budget reached (killed")
