"""What a sweep returns, and the same object rebuilt from disk (``tune.load``).

Everything comes from the journal, so a results object loaded after a crash
holds every result that was reported before it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

from tuner.storage import checkpoint as ckpt_lib
from tuner.storage import journal, jsonio
from tuner.storage.experiment import SPEC, SPEC_FIX, metric_names
from tuner.trial import Trial, TrialStatus
from tuner.validation import MODES, is_number


class ExperimentResults:
    """The trials of one experiment, with the best one by ``metric``/``mode``.

    Attributes:
        trials: every trial, in creation order.
        experiment_path: the experiment directory.
        metric, mode: what "best" means (may be None: then ``best_*`` raise).
    """

    def __init__(self, trials: list[Trial], experiment_path: str, metric: Any = None, mode: Any = None,
                 lineage: list[journal.ConfigChanged | journal.DecisionMade] | None = None,
                 space: Any = None) -> None:
        self.trials = trials
        self.experiment_path = experiment_path
        self.metric = metric
        self.mode = mode
        self.space = space  # the search space tune.run was given (domains), when known
        self._lineage = lineage or []

    def __len__(self) -> int:
        return len(self.trials)

    def __iter__(self):
        return iter(self.trials)

    @property
    def errors(self) -> list[Trial]:
        return [t for t in self.trials if t.status is TrialStatus.ERROR]

    def problems(self) -> dict[str, list[str]]:
        """Per trial id, what it reported that no scheduler could use: no result at all, or a
        metric that is not a number (None, a string, a list, NaN). Trials without problems are left out."""
        from tuner.problems import trial_problems

        found = {t.trial_id: trial_problems(t, self.metric) for t in self.trials}
        return {tid: p for tid, p in found.items() if p}

    def get_best_trial(self, metric: str | None = None, mode: str | None = None, scope: str = "last") -> Trial | None:
        """The best trial by ``metric`` (its last result, or its best over all results with scope="all")."""
        metric, mode = self._metric_mode(metric, mode)
        if scope not in ("last", "all"):
            raise ValueError(f"The value of `scope` is {scope!r}, but must be 'last' or 'all'.")
        best, best_value = None, math.nan
        for trial in self.trials:
            value = trial.best_value(metric, mode) if scope == "all" else trial.metric(metric)
            if not is_number(value):
                continue
            if best is None or (value > best_value if mode == "max" else value < best_value):
                best, best_value = trial, value
        return best

    def _metric_mode(self, metric: str | None, mode: str | None) -> tuple[str, str]:
        metric = metric or self.metric
        mode = mode or self.mode
        if not isinstance(metric, str) or mode not in MODES:
            raise ValueError(
                "No single `metric`/`mode` to rank trials by; pass them to tune.run or to get_best_trial "
                f"(got metric={metric!r}, mode={mode!r})."
            )
        return metric, mode

    @property
    def best_trial(self) -> Trial | None:
        return self.get_best_trial()

    @property
    def best_config(self) -> dict[str, Any] | None:
        trial = self.best_trial
        return trial.config if trial else None

    @property
    def best_result(self) -> dict[str, Any] | None:
        trial = self.best_trial
        return trial.last_result if trial else None

    @property
    def best_checkpoint(self) -> Any:
        """The best trial's checkpoint with the best ``metric`` recorded with it (not
        necessarily its latest), loaded: the object, or a Checkpoint on a local directory."""
        trial = self.best_trial
        return self.get_best_checkpoint(trial) if trial is not None else None

    @property
    def latest_checkpoint(self) -> Any:
        """The best trial's latest checkpoint, loaded."""
        trial = self.best_trial
        if trial is None or trial.checkpoint_path is None:
            return None
        return ckpt_lib.load(trial.checkpoint_path)

    def get_best_checkpoint_path(self, trial: Trial, metric: str | None = None, mode: str | None = None) -> str | None:
        """Path (or URI) of ``trial``'s kept checkpoint whose recorded ``metric`` is best; None when
        no kept checkpoint recorded it."""
        metric, mode = self._metric_mode(metric, mode)
        best, best_value = None, math.nan
        for path in trial.checkpoints:
            value = (trial.checkpoint_metrics.get(path) or {}).get(metric)
            if not is_number(value):
                continue
            if best is None or (value > best_value if mode == "max" else value < best_value):
                best, best_value = path, value
        return best

    def get_best_checkpoint(self, trial: Trial, metric: str | None = None, mode: str | None = None) -> Any:
        """``trial``'s checkpoint with the best ``metric`` recorded with it, loaded (None if none).

        Example::

            ckpt = results.get_best_checkpoint(results.best_trial, "acc", "max")
        """
        path = self.get_best_checkpoint_path(trial, metric, mode)
        return ckpt_lib.load(path) if path is not None else None

    def decisions(self) -> list[dict[str, Any]]:
        """Every scheduler decision other than CONTINUE, with its reason (rung, cutoff...)."""
        return [r.to_dict() for r in self._lineage if isinstance(r, journal.DecisionMade)]

    def outcomes(self) -> dict[str, str]:
        """How each trial ended: "finished", "stopped early" (a scheduler's STOP before the
        longest trial's ``training_iteration``, as ASHA prunes), "errored", or "unfinished"."""
        stopped = {d["trial_id"] for d in self.decisions() if d.get("action") == "STOP"}
        longest = max((t.metric("training_iteration", 0) for t in self.trials), default=0)
        out = {}
        for trial in self.trials:
            if trial.status is TrialStatus.ERROR:
                out[trial.trial_id] = "errored"
            elif trial.status is not TrialStatus.TERMINATED:
                out[trial.trial_id] = "unfinished"
            elif trial.trial_id in stopped and trial.metric("training_iteration", 0) < longest:
                out[trial.trial_id] = "stopped early"
            else:
                out[trial.trial_id] = "finished"
        return out

    def to_optuna_study(self, metric: Any = None, mode: Any = None) -> Any:
        """The sweep as an in-memory ``optuna.Study`` with the search space's distributions,
        so Optuna's analysis applies (``optuna.importance.get_param_importances``, its plots).
        See ``tuner.optuna_study.to_optuna_study``."""
        from tuner.optuna_study import to_optuna_study

        return to_optuna_study(self, metric, mode)

    def pareto_front(self, metric: list[str] | None = None, mode: list[str] | None = None) -> list[Trial]:
        """Trials whose last results no other trial beats on every metric (multi-objective sweeps)."""
        metric = metric or self.metric
        mode = mode or self.mode
        if not isinstance(metric, (list, tuple)) or not isinstance(mode, (list, tuple)) or len(metric) != len(mode):
            raise ValueError(f"pareto_front needs lists of metrics and modes of the same length, got "
                             f"metric={metric!r}, mode={mode!r}.")
        signs = [1.0 if m == "max" else -1.0 for m in mode]
        points = []
        for trial in self.trials:
            values = [trial.metric(m) for m in metric]
            if all(is_number(v) for v in values):
                points.append((trial, [s * v for s, v in zip(signs, values)]))
        return [t for t, p in points
                if not any(all(a >= b for a, b in zip(q, p)) and any(a > b for a, b in zip(q, p))
                           for _, q in points)]

    def pbt_lineage(self) -> list[dict[str, Any]]:
        """Every exploit, in order: time, recipient, donor, old and new config, scores."""
        return [
            {"time": r.time, "trial_id": r.trial_id, "donor_id": r.donor_id, "iteration": r.iteration,
             "old_config": r.old_config, "config": r.config,
             **{k: v for k, v in (r.info or {}).items() if k not in ("time",)}}
            for r in self._lineage if isinstance(r, journal.ConfigChanged)
        ]

    def rows(self, all_results: bool = False, first: int | None = None) -> list[dict[str, Any]]:
        """Flat dicts, one per trial (its last result) or per result: ``trial_id``, ``status``,
        ``config/<key>`` and the result's keys (nested ones as ``a/b``); of the ``first`` trials
        only, when given."""
        from tuner.storage.experiment import flatten

        rows = []
        for trial in self.trials if first is None else self.trials[:first]:
            base = {"trial_id": trial.trial_id, "status": trial.status.value,
                    **{f"config/{k}": v for k, v in flatten(trial.config).items()}}
            results = trial.history if all_results else [trial.last_result or {}]
            for result in results:
                row = dict(base)
                row.update({k: v for k, v in flatten(result).items() if k != "trial_id"})
                rows.append(row)
        return rows

    def dataframe(self, all_results: bool = False):
        """A pandas DataFrame of ``rows()``: one row per trial (its last result), or per result."""
        import pandas as pd

        return pd.DataFrame(self.rows(all_results))

    def __repr__(self) -> str:
        counts: dict[str, int] = {}
        for t in self.trials:
            counts[t.status.value] = counts.get(t.status.value, 0) + 1
        return f"ExperimentResults({self.experiment_path!r}, {counts})"


def load(path: str, metric: Any = None, mode: Any = None) -> ExperimentResults:
    """The results of the experiment in ``path``, read from its journal (nothing is unpickled);
    "best" by ``metric``/``mode`` when given, else by the experiment's own."""
    from tuner.storage import fs

    path = fs.normalize(path)
    spec = {}
    if fs.exists(fs.join(path, SPEC)):
        spec = jsonio.read(fs.join(path, SPEC), SPEC_FIX)
    replayed = journal.replay(path, metrics=metric_names(metric or spec.get("metric")))
    space = None
    if "space" in spec:
        from tuner.space import config as space_lib

        space = space_lib.space_from_json(spec["space"])
    return ExperimentResults(list(replayed.trials.values()), path, metric or spec.get("metric"),
                             mode or spec.get("mode"), replayed.lineage, space)
