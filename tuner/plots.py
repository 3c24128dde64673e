"""Plots of a sweep's results (matplotlib, the ``plots`` extra).

Each function takes an ``ExperimentResults`` (from ``tune.run`` or
``tune.load``), draws on ``ax`` (a new figure when None) and returns the
matplotlib ``Axes`` (or ``Figure``), so users restyle them as they like. Every
artist that stands for data carries a ``gid`` (the trial id, "rung",
"lineage", "exploit:<donor>-><recipient>") so it can be found again.

Parameter importance is Optuna's, through ``results.to_optuna_study()``.

Example::

    from tuner import plots

    plots.learning_curves(results)
    plots.best_so_far({"ASHA": asha, "random": random_search}, x="iterations")
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any
from tuner.validation import MODES, is_number

OUTCOME_COLORS = {"finished": "tab:green", "stopped early": "tab:orange", "errored": "tab:red",
                  "unfinished": "tab:gray"}


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("tuner.plots needs matplotlib: pip install 'tuner[plots]'.") from exc
    return plt


def _axes(ax: Any) -> Any:
    if ax is not None:
        return ax
    return _pyplot().subplots(figsize=(7, 4.5))[1]


def _metric(results: Any, metric: str | None) -> str:
    metric = metric or results.metric
    if not isinstance(metric, str):
        raise ValueError(f"Which metric to plot? The results have metric={results.metric!r}; pass `metric`.")
    return metric


def _mode(results: Any, mode: str | None) -> str:
    mode = mode or results.mode
    if mode not in MODES:
        raise ValueError(f"The value of `mode` is {mode!r}, but must be 'min' or 'max' (the results have "
                         f"mode={results.mode!r}).")
    return mode




def curve(trial: Any, metric: str, x: str = "training_iteration") -> tuple[list[float], list[float]]:
    """A trial's ``(x, metric)`` points, in report order, where both were reported as numbers."""
    points = [(r[x], r[metric]) for r in trial.history if is_number(r.get(x)) and is_number(r.get(metric))]
    return [p[0] for p in points], [p[1] for p in points]


def _label_x(ax: Any, x: str) -> None:
    ax.set_xlabel(x)
    if x == "training_iteration":
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _outcome_legend(ax: Any, seen: set[str]) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=OUTCOME_COLORS[o], label=o) for o in OUTCOME_COLORS if o in seen]
    ax.legend(handles=handles, title="trial", loc="best", fontsize="small")


def learning_curves(results: Any, metric: str | None = None, x: str = "training_iteration",
                    rungs: Sequence[float] | None = None, ax: Any = None) -> Any:
    """Every trial's ``metric`` against ``x``, coloured by how it ended (``results.outcomes()``).

    Rungs (dotted vertical lines) are where the scheduler's decisions say they
    were (the ``rung`` of ASHA/HyperBand decisions), unless ``rungs`` is given;
    an ``x`` marks where each trial stopped early.
    """
    metric = _metric(results, metric)
    ax = _axes(ax)
    outcomes = results.outcomes()
    stops_x, stops_y = [], []
    for trial in results.trials:
        xs, ys = curve(trial, metric, x)
        outcome = outcomes[trial.trial_id]
        ax.plot(xs, ys, color=OUTCOME_COLORS[outcome], alpha=0.8, linewidth=1.2, gid=trial.trial_id)
        if outcome == "stopped early" and xs:
            stops_x.append(xs[-1])
            stops_y.append(ys[-1])
    if rungs is None:
        rungs = sorted({d["info"]["rung"] for d in results.decisions()
                        if is_number((d.get("info") or {}).get("rung"))})
    for rung in rungs:
        ax.axvline(rung, color="0.6", linestyle=":", linewidth=1, gid="rung")
    if stops_x:
        ax.plot(stops_x, stops_y, linestyle="none", marker="x", color=OUTCOME_COLORS["stopped early"], gid="stops")
    _outcome_legend(ax, set(outcomes.values()))
    _label_x(ax, x)
    ax.set_ylabel(metric)
    ax.set_title("Learning curves" + (" (dotted: rungs)" if rungs else ""))
    return ax


def best_so_far_points(results: Any, x: str = "time", metric: str | None = None,
                       mode: str | None = None) -> tuple[list[float], list[float]]:
    """The best ``metric`` over every result reported so far, against the wall time since the
    sweep's first result started (``x="time"``, seconds) or against the training iterations
    spent by all trials together (``x="iterations"``)."""
    if x not in ("time", "iterations"):
        raise ValueError(f"The value of `x` is {x!r}, but must be 'time' or 'iterations'.")
    metric, mode = _metric(results, metric), _mode(results, mode)
    reported = sorted((r for t in results.trials for r in t.history if is_number(r.get("timestamp"))),
                      key=lambda r: r["timestamp"])
    if not reported:
        return [], []
    start = min(r["timestamp"] - r.get("time_this_iter_s", 0.0) for r in reported)
    xs, ys, best = [], [], None
    for spent, r in enumerate(reported, start=1):
        value = r.get(metric)
        if is_number(value) and (best is None or (value > best if mode == "max" else value < best)):
            best = value
        if best is not None:
            xs.append(r["timestamp"] - start if x == "time" else spent)
            ys.append(best)
    return xs, ys


def best_so_far(results: Any, x: str = "time", metric: str | None = None, mode: str | None = None,
                ax: Any = None) -> Any:
    """Best-so-far curves (see ``best_so_far_points``); ``results`` may be a dict
    ``{label: results}`` to compare sweeps (what a scheduler bought) on one Axes."""
    runs = results if isinstance(results, Mapping) else {results.experiment_path.rstrip("/").split("/")[-1]: results}
    ax = _axes(ax)
    for label, run in runs.items():
        xs, ys = best_so_far_points(run, x, metric, mode)
        ax.step(xs, ys, where="post", label=label, gid=label)
    first = next(iter(runs.values()))
    ax.set_xlabel("wall time (s)" if x == "time" else "training iterations, all trials")
    ax.set_ylabel(f"best {_metric(first, metric)} so far")
    ax.legend(loc="best", fontsize="small")
    return ax


def pbt_population(results: Any, metric: str | None = None, x: str = "training_iteration", ax: Any = None) -> Any:
    """PBT: every trial's ``metric`` over ``x``, each exploit an arrow from the donor's score
    to the recipient's at the exploit (gid ``exploit:<donor>-><recipient>``), and the best
    trial's lineage (the curves its final state came through, ``ancestry``) drawn bold."""
    metric = _metric(results, metric)
    ax = _axes(ax)
    curves = {t.trial_id: curve(t, metric, x) for t in results.trials}
    for trial_id, (xs, ys) in curves.items():
        ax.plot(xs, ys, linewidth=1, alpha=0.6, gid=trial_id)
    lineage = results.pbt_lineage()
    for exploit in lineage:
        at, donor, recipient = exploit.get("at", exploit.get("iteration")), exploit["donor_id"], exploit["trial_id"]
        if not (is_number(at) and is_number(exploit.get("score")) and is_number(exploit.get("donor_score"))):
            continue
        ax.annotate("", xy=(at, exploit["score"]), xytext=(at, exploit["donor_score"]),
                    arrowprops={"arrowstyle": "->", "color": "0.4", "linewidth": 0.8},
                    gid=f"exploit:{donor}->{recipient}")
    best = results.best_trial
    if best is not None:
        lx, ly = lineage_points(results, best.trial_id, metric, x)
        ax.plot(lx, ly, color="black", linewidth=2.5, gid="lineage", label=f"lineage of {best.trial_id}")
        ax.legend(loc="best", fontsize="small")
    _label_x(ax, x)
    ax.set_ylabel(metric)
    ax.set_title(f"PBT population: {len(lineage)} exploits (arrows: donor -> recipient)")
    return ax


def lineage_points(results: Any, trial_id: str, metric: str | None = None,
                   x: str = "training_iteration") -> tuple[list[float], list[float]]:
    """The points the final state of ``trial_id`` came through: the root ancestor's curve up
    to its first exploit, then each recipient's from that exploit to the next, ending with
    ``trial_id``'s own curve after its last exploit."""
    from schedulers.pbt import ancestry

    metric = _metric(results, metric)
    by_id = {t.trial_id: t for t in results.trials}
    chain = ancestry(results.pbt_lineage(), trial_id)
    owners = [chain[0]["donor_id"]] + [e["trial_id"] for e in chain] if chain else [trial_id]
    cuts = [-math.inf] + [e.get("at", e.get("iteration")) for e in chain] + [math.inf]
    xs, ys = [], []
    for owner, low, high in zip(owners, cuts, cuts[1:]):
        for px, py in zip(*curve(by_id[owner], metric, x)):
            if low < px <= high:
                xs.append(px)
                ys.append(py)
    return xs, ys


def hyperparameters(results: Any, params: Sequence[str] | None = None, metric: str | None = None,
                    log: Sequence[str] = (), fig: Any = None) -> Any:
    """One scatter per hyperparameter: its value (``config/<name>`` of ``results.rows()``)
    against the trial's last ``metric``, coloured by how the trial ended. Categories are
    placed at 0, 1, ... with their labels. Returns the Figure (one Axes per parameter)."""
    metric = _metric(results, metric)
    rows = results.rows()
    if params is None:  # the ones that vary
        keys = dict.fromkeys(k[len("config/"):] for r in rows for k in r if k.startswith("config/"))
        params = [k for k in keys if len({repr(r.get(f"config/{k}")) for r in rows}) > 1]
    if not params:
        raise ValueError("No hyperparameter varies between the trials; pass `params` to plot some anyway.")
    plt = _pyplot()
    fig = fig or plt.figure(figsize=(min(4 * len(params), 16), 3.8))
    axes = fig.subplots(1, len(params), squeeze=False, sharey=True)[0]
    outcomes = results.outcomes()
    for ax, param in zip(axes, params):
        points = [(r.get(f"config/{param}"), r.get(metric), outcomes[r["trial_id"]], r["trial_id"]) for r in rows
                  if f"config/{param}" in r and is_number(r.get(metric))]
        values = [p[0] for p in points]
        numeric = all(is_number(v) for v in values)
        categories = [] if numeric else list(dict.fromkeys(repr(v) for v in values))
        xs = values if numeric else [categories.index(repr(v)) for v in values]
        ax.scatter(xs, [p[1] for p in points], c=[OUTCOME_COLORS[p[2]] for p in points], s=22, gid=param)
        if not numeric:
            ax.set_xticks(range(len(categories)), categories)
        if param in log:
            ax.set_xscale("log")
        ax.set_xlabel(param)
    axes[0].set_ylabel(metric)
    _outcome_legend(axes[-1], set(outcomes.values()))
    fig.tight_layout()
    return fig


def param_importances(results: Any, evaluator: Any = None, metric: str | None = None) -> Any:
    """Optuna's parameter-importance bar chart (its Axes) of ``results.to_optuna_study(metric)``:
    fANOVA unless ``evaluator`` is given, e.g. ``optuna.importance.PedAnovaImportanceEvaluator()``."""
    import warnings

    from optuna.visualization.matplotlib import plot_param_importances

    study = results.to_optuna_study(metric)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
        return plot_param_importances(study, evaluator=evaluator)
