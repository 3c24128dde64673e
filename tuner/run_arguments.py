"""The checks of ``tune.run``'s arguments that need no Ray and no storage, in one place: ``tune.run``
runs them before anything starts, and ``tuner sweep --dry-run`` runs the same ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schedulers.base import TrialScheduler
from searchers.base import Searcher
from tuner.execution.resources import resource_request
from tuner.execution.runner import RunSettings
from tuner.runtime.stopping import StopCriteria, validate_stop
from tuner.space import config as space_lib
from tuner.stopper import Stopper
from tuner.validation import BadValueError, check_int, check_mode, check_seed, is_finite_number


def check_arguments(*, config: Any = None, num_samples: Any = 1, metric: Any = None, mode: Any = None,
                    stop: Any = None, resources_per_trial: Any = None, max_concurrent_trials: Any = None,
                    time_budget_s: Any = None, seed: Any = None, verbose: Any = 2, max_failures: Any = 0,
                    checkpoint_freq: Any = 0, **_checked_elsewhere: Any) -> RunSettings:
    """Check the sweep's own arguments (named as tune.run names them) and gather them. Other
    tune.run arguments may be passed too (a sweep file's whole set): they are checked where used."""
    if config is not None and not isinstance(config, Mapping):
        raise BadValueError("config", config, "a dict (the search space)")
    space_lib.check_keys(config or {})
    check_int(num_samples, "num_samples", 1)
    metrics = metric if isinstance(metric, (list, tuple)) else [metric]
    modes = mode if isinstance(mode, (list, tuple)) else [mode]
    for m in modes:
        check_mode(m)
    if mode is not None and metric is None:
        raise ValueError(f"`mode={mode!r}` was given without a `metric`; pass the result key to optimize.")
    if metric is not None and mode is None:
        raise ValueError(f"`metric={metric!r}` was given without a `mode`; pass mode='min' or mode='max'.")
    if metric is not None and len(metrics) != len(modes):
        raise ValueError(f"`metric` has {len(metrics)} entries but `mode` has {len(modes)}; give one mode per metric.")
    validate_stop(stop)
    for label, value, low in (("max_concurrent_trials", max_concurrent_trials, 1), ("max_failures", max_failures, 0),
                              ("checkpoint_freq", checkpoint_freq, 0), ("verbose", verbose, 0)):
        if value is not None:
            check_int(value, label, low)
    if time_budget_s is not None and (not is_finite_number(time_budget_s) or time_budget_s <= 0):
        raise BadValueError("time_budget_s", time_budget_s, "a number > 0")
    check_seed(seed)
    return RunSettings(
        metric=metric, mode=mode, num_samples=num_samples, stop=stop,
        stopper=StopCriteria(stop, metric, mode) if stop is not None and not isinstance(stop, Stopper) else None,
        driver_stopper=stop if isinstance(stop, Stopper) else None,
        resources=resource_request(resources_per_trial), max_concurrent_trials=max_concurrent_trials,
        time_budget_s=time_budget_s, max_failures=max_failures, seed=seed, checkpoint_freq=checkpoint_freq,
    )


def scheduler_or_default(scheduler: Any) -> TrialScheduler:
    if scheduler is None:
        from schedulers.fifo import FIFOScheduler

        return FIFOScheduler()
    if not isinstance(scheduler, TrialScheduler):
        raise BadValueError("scheduler", scheduler, "a TrialScheduler instance")
    return scheduler


def searcher_or_default(searcher: Any) -> Searcher:
    if searcher is None:
        from searchers.basic_variant import BasicVariantGenerator

        return BasicVariantGenerator()
    if not isinstance(searcher, Searcher):
        raise BadValueError("search_alg", searcher, "a Searcher instance")
    return searcher
