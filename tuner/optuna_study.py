"""A finished (or running) sweep as an in-memory Optuna study.

Optuna's analysis is well kept and widely known: parameter importance
(fANOVA, PED-ANOVA, mean decrease in impurity), its plots, its dataframes.
Exporting the sweep to a study lets users reuse all of it instead of this
package writing its own. The search space's domains become Optuna
distributions through the same translation ``OptunaSearch`` uses.
"""

from __future__ import annotations

import datetime
import warnings
from typing import Any

from tuner.space import config as sp
from tuner.validation import MODES, is_finite_number


def to_optuna_study(results: Any, metric: Any = None, mode: Any = None) -> Any:
    """An in-memory ``optuna.Study`` holding one frozen trial per trial of ``results``.

    Each trial keeps its config (for PBT: its current config, after its last
    exploit) as params with the search space's distributions, its last
    ``metric`` as value, every reported value as intermediate values (by
    ``training_iteration``), and its ``trial_id`` as a user attribute. States:
    finished -> COMPLETE, stopped early by the scheduler -> PRUNED, errored ->
    FAIL, unfinished -> FAIL with ``user_attrs["unfinished"]``. Grid searches
    become categorical distributions.

    Example::

        import optuna

        study = results.to_optuna_study()
        optuna.importance.get_param_importances(study)   # fANOVA by default

    Raises:
        ValueError: no metric/mode, or no search space known (a results object
            built by hand), or a domain Optuna cannot express (named).
    """
    from searchers.optuna_space import import_optuna, to_optuna

    optuna = import_optuna()
    metrics, modes = _objectives(results, metric, mode)
    if results.space is None:
        raise ValueError(f"The results of {results.experiment_path} carry no search space; load them with "
                         "tune.load(path), which reads it from experiment.json.")
    params = to_optuna(_grids_as_choices(results.space))
    directions = ["maximize" if m == "max" else "minimize" for m in modes]
    study = optuna.create_study(directions=directions, study_name=results.experiment_path)
    TrialState = optuna.trial.TrialState
    states = {"finished": TrialState.COMPLETE, "stopped early": TrialState.PRUNED,
              "errored": TrialState.FAIL, "unfinished": TrialState.FAIL}
    outcomes = results.outcomes()
    for trial in results.trials:
        values = [trial.metric(m) for m in metrics]
        state = states[outcomes[trial.trial_id]]
        if state == TrialState.COMPLETE and not all(is_finite_number(v) for v in values):
            state = TrialState.FAIL  # finished without a usable value
        chosen = {}
        for p in params:
            found, value = sp.lookup(trial.config, p.path)
            if found:
                chosen[p.name] = p.encode(value)
        start = datetime.datetime.fromtimestamp((trial.history[0]["timestamp"] - trial.history[0].get(
            "time_this_iter_s", 0.0)) if trial.history else 0.0)
        end = datetime.datetime.fromtimestamp(trial.history[-1]["timestamp"]) if trial.history else start
        keep_values = state in (TrialState.COMPLETE, TrialState.PRUNED) and all(is_finite_number(v) for v in values)
        try:
            frozen = optuna.trial.create_trial(
                state=state, values=[float(v) for v in values] if keep_values else None,
                params=chosen, distributions={p.name: p.distribution for p in params if p.name in chosen},
                intermediate_values={int(r["training_iteration"]): float(r[metrics[0]]) for r in trial.history
                                     if is_finite_number(r.get(metrics[0])) and "training_iteration" in r},
                user_attrs={"trial_id": trial.trial_id, **({"unfinished": True}
                                                           if outcomes[trial.trial_id] == "unfinished" else {})},
            )
        except ValueError as exc:  # a value outside its distribution (a custom PBT explore)
            warnings.warn(f"{trial.trial_id} left out of the Optuna study: {exc}", stacklevel=2)
            continue
        frozen.datetime_start, frozen.datetime_complete = start, end
        study.add_trial(frozen)
    return study


def _objectives(results: Any, metric: Any, mode: Any) -> tuple[list[str], list[str]]:
    metric = metric or results.metric
    mode = mode or results.mode
    metrics = list(metric) if isinstance(metric, (list, tuple)) else [metric]
    modes = list(mode) if isinstance(mode, (list, tuple)) else [mode]
    if not all(isinstance(m, str) for m in metrics) or len(metrics) != len(modes) or not all(
            m in MODES for m in modes):
        raise ValueError(f"to_optuna_study needs a metric and a mode ('min'/'max') per metric, got "
                         f"metric={metric!r}, mode={mode!r}; pass them, or to tune.run.")
    return metrics, modes


def _grids_as_choices(space: Any) -> Any:
    """A grid's values are the categories the trials were drawn from."""
    values = {path: sp.choice(list(domain.values)) for path, domain in sp.walk(space) if domain.kind == "grid"}
    return sp.fill(space, values) if values else space


