"""The plots draw the results' data: each line and point is checked against the journal (no Ray)."""

from __future__ import annotations

import math

import pytest

import tuner as tune
from schedulers import ASHAScheduler, PopulationBasedTraining
from schedulers.pbt import config_at, replay
from tests.fakes import InProcessExecutor
from tests.integration.trainables import pbt_counter

plots = pytest.importorskip("tuner.plots")
matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
from matplotlib import colors, pyplot as plt  # noqa: E402


def decaying(config):
    for step in range(1, 10):
        if config["x"] == 1 and step == 5:
            raise RuntimeError("x=1 diverges")
        tune.report({"loss": config["x"] / step + 0.01 * config["width"], "aux": config["width"]})


@pytest.fixture(scope="module")
def asha(tmp_path_factory):
    """Loaded back from disk: plots must work on tune.load's results."""
    results = tune.run(decaying, config={"x": tune.grid_search([3, 6, 1, 2, 5, 4]), "width": tune.choice([8, 16, 32]),
                                         "lr": tune.loguniform(1e-4, 1e-1)},
                       metric="loss", mode="min", scheduler=ASHAScheduler(max_t=9, grace_period=1, reduction_factor=3),
                       max_concurrent_trials=1, storage_path=str(tmp_path_factory.mktemp("asha")), seed=0, verbose=0,
                       raise_on_failed_trial=False, log_to_tensorboard=False, _executor=InProcessExecutor())
    return tune.load(results.experiment_path)


@pytest.fixture(scope="module")
def pbt(tmp_path_factory):
    scheduler = PopulationBasedTraining(perturbation_interval=3, synch=True, seed=0, quantile_fraction=0.5,
                                        hyperparam_mutations={"inc": [1, 2, 5, 10, 20]})
    results = tune.run(pbt_counter, config={"inc": tune.grid_search([1, 2, 10, 20])}, metric="count", mode="max",
                       scheduler=scheduler, stop={"training_iteration": 12}, verbose=0, log_to_tensorboard=False,
                       storage_path=str(tmp_path_factory.mktemp("pbt")), _executor=InProcessExecutor())
    return tune.load(results.experiment_path)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def lines_by_gid(ax):
    return {line.get_gid(): line for line in ax.get_lines() if line.get_gid()}


def test_outcomes_tell_pruned_finished_and_errored_apart(asha):
    outcomes = asha.outcomes()
    by_x = {t.config["x"]: outcomes[t.trial_id] for t in asha.trials}
    assert by_x[1] == "errored" and {"finished", "stopped early"} <= set(by_x.values())
    for trial in asha.trials:
        iters = trial.last_result["training_iteration"]
        assert (outcomes[trial.trial_id] == "stopped early") == (trial.status.value == "TERMINATED" and iters < 9)
        assert (outcomes[trial.trial_id] == "finished") == (iters == 9)


def test_learning_curves_draw_every_trial_in_its_outcome_colour_with_rungs(asha):
    ax = plots.learning_curves(asha)
    lines = lines_by_gid(ax)
    outcomes = asha.outcomes()
    for trial in asha.trials:
        line = lines[trial.trial_id]
        assert list(line.get_xdata()) == [r["training_iteration"] for r in trial.history]
        assert list(line.get_ydata()) == [r["loss"] for r in trial.history]
        assert colors.same_color(line.get_color(), plots.OUTCOME_COLORS[outcomes[trial.trial_id]])
    rungs = sorted(line.get_xdata()[0] for line in ax.get_lines() if line.get_gid() == "rung")
    assert rungs == sorted({d["info"]["rung"] for d in asha.decisions() if "rung" in d["info"]})
    assert {1, 9} <= set(rungs)  # the first rung (grace period) and max_t
    stopped = [t for t in asha.trials if outcomes[t.trial_id] == "stopped early"]
    assert sorted(lines["stops"].get_xdata()) == sorted(t.last_result["training_iteration"] for t in stopped)
    assert {t.get_text() for t in ax.get_legend().get_texts()} == set(outcomes.values())


def test_best_so_far_is_the_running_best_over_results_in_time_order(asha):
    ax = plots.best_so_far({"asha": asha}, x="iterations")
    line = lines_by_gid(ax)["asha"]
    results = sorted((r for t in asha.trials for r in t.history), key=lambda r: r["timestamp"])
    expected = [min(r["loss"] for r in results[:k]) for k in range(1, len(results) + 1)]
    assert list(line.get_xdata()) == list(range(1, len(results) + 1))
    assert list(line.get_ydata()) == expected and expected[-1] == asha.best_trial.best_value("loss", "min")
    xs, _ = plots.best_so_far_points(asha, x="time")
    assert xs == sorted(xs) and xs[0] >= 0 and xs[-1] == pytest.approx(
        results[-1]["timestamp"] - min(r["timestamp"] - r["time_this_iter_s"] for r in results))
    with pytest.raises(ValueError, match=r"The value of `x` is 'epochs', but must be 'time' or 'iterations'"):
        plots.best_so_far(asha, x="epochs")


def test_hyperparameter_scatter_places_each_trial(asha):
    fig = plots.hyperparameters(asha, log=["lr"])
    by_param = {ax.get_xlabel(): ax for ax in fig.axes}
    assert set(by_param) == {"x", "width", "lr"}  # the ones that vary
    assert by_param["lr"].get_xscale() == "log"
    scatter = next(c for c in by_param["lr"].collections if c.get_gid() == "lr")
    expected = sorted((t.config["lr"], t.last_result["loss"]) for t in asha.trials)
    assert sorted(map(tuple, scatter.get_offsets().tolist())) == pytest.approx(expected)
    with pytest.raises(ValueError, match="No hyperparameter varies"):
        plots.hyperparameters(asha, params=[], metric="loss")


def test_pbt_population_draws_every_exploit_and_the_best_lineage(pbt):
    ax = plots.pbt_population(pbt)
    lineage = pbt.pbt_lineage()
    arrows = [a for a in ax.texts if (a.get_gid() or "").startswith("exploit:")]
    assert len(arrows) == len(lineage) >= 2
    for arrow, exploit in zip(arrows, lineage):
        assert arrow.get_gid() == f"exploit:{exploit['donor_id']}->{exploit['trial_id']}"
        assert arrow.xy == (exploit["at"], exploit["score"]) and arrow.xyann == (exploit["at"], exploit["donor_score"])
    best = pbt.best_trial
    line = lines_by_gid(ax)["lineage"]
    assert (list(line.get_xdata()), list(line.get_ydata())) == plots.lineage_points(pbt, best.trial_id)
    assert line.get_ydata()[-1] == best.last_result["count"]
    # pbt_counter adds config["inc"] each step: along any lineage the count is its replayed schedule's sum
    exploited = {e["trial_id"] for e in lineage}
    for trial in pbt.trials:
        xs, ys = plots.lineage_points(pbt, trial.trial_id)
        schedule = replay(pbt.experiment_path, trial.trial_id)
        assert xs == list(range(1, 13))
        assert ys == [sum(config_at(schedule, j)["inc"] for j in range(1, i + 1)) for i in range(1, 13)]
        if trial.trial_id in exploited:  # the curve before its last exploit is a donor's, not its own
            assert ys[:3] != [r["count"] for r in trial.history[:3]]


def test_parameter_importance_is_optunas_over_the_exported_study(asha):
    optuna = pytest.importorskip("optuna")
    study = asha.to_optuna_study()
    states = {t.user_attrs["trial_id"]: t.state for t in study.trials}
    expected = {"finished": "COMPLETE", "stopped early": "PRUNED", "errored": "FAIL"}
    assert {k: v.name for k, v in states.items()} == {k: expected[v] for k, v in asha.outcomes().items()}
    assert isinstance(study.trials[0].distributions["lr"], optuna.distributions.FloatDistribution)
    assert study.trials[0].distributions["lr"].log
    assert study.trials[0].distributions["x"].choices == (3, 6, 1, 2, 5, 4)  # the grid, as categories
    for frozen in study.trials:
        trial = next(t for t in asha.trials if t.trial_id == frozen.user_attrs["trial_id"])
        assert frozen.params == {k: trial.config[k] for k in ("x", "width", "lr")}
        assert frozen.intermediate_values == {r["training_iteration"]: r["loss"] for r in trial.history}
        if frozen.state.name == "COMPLETE":
            assert frozen.value == trial.last_result["loss"]
    importances = optuna.importance.get_param_importances(
        study, evaluator=optuna.importance.MeanDecreaseImpurityImportanceEvaluator(seed=0))
    assert set(importances) == {"x", "width", "lr"} and math.isclose(sum(importances.values()), 1.0)
    ax = plots.param_importances(asha, evaluator=optuna.importance.MeanDecreaseImpurityImportanceEvaluator(seed=0))
    assert sorted(t.get_text() for t in ax.get_yticklabels()) == ["lr", "width", "x"]


def test_errors_name_the_fix(asha):
    unnamed = tune.ExperimentResults(asha.trials, asha.experiment_path)
    with pytest.raises(ValueError, match="Which metric to plot"):
        plots.learning_curves(unnamed)
    with pytest.raises(ValueError, match="carry no search space; load them with tune.load"):
        tune.ExperimentResults(asha.trials, asha.experiment_path, "loss", "min").to_optuna_study()
