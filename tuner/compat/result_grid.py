"""``ResultGrid`` and ``Result``: Ray Tune's view of finished trials, read from ``ExperimentResults``."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterator
from typing import Any

from tuner.results import ExperimentResults
from tuner.storage.checkpoint import Checkpoint
from tuner.trial import Trial, TrialStatus
from tuner.validation import MODES, is_number

SCOPES = ("last", "avg", "last-5-avg", "last-10-avg", "all")


class TrialError(RuntimeError):
    """A trial's failure, carrying the traceback text from its worker."""


@dataclasses.dataclass
class Result:
    """One trial's outcome.

    Attributes:
        config: its (final) config.
        metrics: its last result (with ``config`` in it, as Ray Tune's has).
        checkpoint: its latest checkpoint (``.to_dict()``, ``.as_directory()``) or None.
        path: the trial's directory.
        error: a ``TrialError`` with the traceback when it failed, else None.
        best_checkpoints: every kept checkpoint with the result it was taken at.
    """

    config: dict[str, Any]
    metrics: dict[str, Any]
    checkpoint: Checkpoint | None
    path: str | None
    error: TrialError | None
    best_checkpoints: list[tuple[Checkpoint, dict[str, Any]]]
    trial: Trial = dataclasses.field(repr=False)

    @classmethod
    def of(cls, trial: Trial) -> Result:
        paths = [p for p in trial.checkpoints if os.path.isdir(p)]
        by_iteration = _results_at(trial, {_iteration(p) for p in paths}) if paths else {}
        kept = [(Checkpoint.from_directory(p), by_iteration.get(_iteration(p), {})) for p in paths]
        latest = trial.checkpoint_path
        error = TrialError(trial.error or "the trial failed") if trial.status is TrialStatus.ERROR else None
        return cls(config=trial.config, metrics={**(trial.last_result or {}), "config": trial.config},
                   checkpoint=Checkpoint.from_directory(latest) if latest and os.path.isdir(latest) else None,
                   path=trial.path, error=error, best_checkpoints=kept, trial=trial)

    @property
    def metrics_dataframe(self):
        """Every result of the trial, one row each (pandas)."""
        import pandas as pd

        from tuner.storage.experiment import flatten

        return pd.DataFrame([flatten(r) for r in self.trial.history])

    @property
    def log_dir(self) -> str | None:
        return self.path


def _results_at(trial: Trial, iterations: set[int | None]) -> dict[Any, dict[str, Any]]:
    """The trial's result of each of ``iterations`` (the latest one of each); the history is read back
    from the journal only when the latest result is not the only one asked for."""
    last = trial.last_result or {}
    if iterations == {last.get("training_iteration")}:
        return {last.get("training_iteration"): last}
    return {r.get("training_iteration"): r for r in trial.history}


def _iteration(path: str) -> int | None:
    try:
        return int(os.path.basename(path.rstrip("/")))
    except ValueError:
        return None


class ResultGrid:
    """The results of ``Tuner.fit()``: indexable, iterable, with the best by any metric.

    Example::

        grid = tuner.fit()
        best = grid.get_best_result(metric="loss", mode="min")
        print(best.config, best.metrics["loss"], grid.num_errors)
    """

    def __init__(self, results: ExperimentResults) -> None:
        self.experiment_results = results
        self._results = [Result.of(t) for t in results.trials]

    @property
    def experiment_path(self) -> str:
        return self.experiment_results.experiment_path

    def __len__(self) -> int:
        return len(self._results)

    def __getitem__(self, index: int) -> Result:
        return self._results[index]

    def __iter__(self) -> Iterator[Result]:
        return iter(self._results)

    @property
    def errors(self) -> list[TrialError]:
        return [r.error for r in self._results if r.error is not None]

    @property
    def num_errors(self) -> int:
        return len(self.errors)

    @property
    def num_terminated(self) -> int:
        return sum(r.trial.status is TrialStatus.TERMINATED for r in self._results)

    def get_best_result(self, metric: str | None = None, mode: str | None = None, scope: str = "last",
                        filter_nan_and_inf: bool = True) -> Result:
        """The best trial's ``Result`` by ``metric``/``mode`` (the ``TuneConfig``'s when None).

        ``scope``: "last" compares last results, "avg" the mean over all results,
        "last-5-avg"/"last-10-avg" the mean of the last 5/10, "all" the best of all results.
        """
        metric = metric or self.experiment_results.metric
        mode = mode or self.experiment_results.mode
        if not isinstance(metric, str) or mode not in MODES:
            raise ValueError("No single `metric`/`mode` to rank trials by; pass them to get_best_result or "
                             f"to tune.TuneConfig (got metric={metric!r}, mode={mode!r}).")
        if scope not in SCOPES:
            raise ValueError(f"The value of `scope` is {scope!r}, but must be one of {SCOPES}.")
        best, best_value = None, math.nan
        for result in self._results:
            value = _scoped(result.trial, metric, mode, scope)
            if value is None or math.isnan(value) or (filter_nan_and_inf and math.isinf(value)):
                continue
            if best is None or (value > best_value if mode == "max" else value < best_value):
                best, best_value = result, value
        if best is None:
            raise RuntimeError(f"No trial reported a finite `{metric}`; the trials reported: "
                               f"{', '.join(sorted({k for r in self._results for k in r.metrics}))}.")
        return best

    def get_dataframe(self, filter_metric: str | None = None, filter_mode: str | None = None):
        """One row per trial: its last result, or with ``filter_metric``/``filter_mode`` the result
        where that metric was best."""
        import pandas as pd

        from tuner.storage.experiment import flatten

        if (filter_metric is None) != (filter_mode is None):
            raise ValueError("Pass both `filter_metric` and `filter_mode`, or neither.")
        rows = []
        for result in self._results:
            trial = result.trial
            chosen = trial.last_result or {}
            if filter_metric is not None:
                scored = [r for r in trial.history if is_number(r.get(filter_metric))]
                if scored:
                    pick = max if filter_mode == "max" else min
                    chosen = pick(scored, key=lambda r: r[filter_metric])
            row = {**flatten(chosen), **{f"config/{k}": v for k, v in flatten(trial.config).items()},
                   "trial_id": trial.trial_id, "logdir": trial.path}
            rows.append(row)
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        return f"ResultGrid({self.experiment_path!r}, {len(self)} results, {self.num_errors} errors)"




def _scoped(trial: Trial, metric: str, mode: str, scope: str) -> float | None:
    if scope == "last":  # the latest result only: nothing read back from the journal
        last = (trial.last_result or {}).get(metric)
        return float(last) if is_number(last) else None
    values = [float(r[metric]) for r in trial.history if is_number(r.get(metric))]
    if not values:
        return None
    if scope == "all":
        return max(values) if mode == "max" else min(values)
    window = {"avg": len(values), "last-5-avg": 5, "last-10-avg": 10}[scope]
    tail = values[-window:]
    return sum(tail) / len(tail)
