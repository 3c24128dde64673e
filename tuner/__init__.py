"""tuner: Tune-style hyperparameter tuning on Ray core.

    import tuner as tune

    results = tune.run(train, config={"lr": tune.loguniform(1e-4, 1e-1)}, num_samples=16,
                       metric="acc", mode="max")

Names are loaded on first use (PEP 562), so a worker process that only needs
``tune.report`` does not import the driver's machinery: worker start-up is on
the critical path of every sweep.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "run": "tuner.api", "TuneError": "tuner.api", "ExperimentChangedError": "tuner.api",
    "resume": "tuner.resuming",
    "Callback": "tuner.callbacks",
    "Checkpoint": "tuner.storage.checkpoint",
    "report": "tuner.runtime.report", "get_context": "tuner.runtime.report", "get_checkpoint": "tuner.runtime.report",
    "ExperimentResults": "tuner.results", "load": "tuner.results",
    "Trainable": "tuner.runtime.trainable",
    "PlacementGroupFactory": "tuner.execution.resources", "WorkerImportError": "tuner.execution.executor",
    "distributed": "tuner.runtime.distributed",
    "Trial": "tuner.trial", "TrialStatus": "tuner.trial",
    "Stopper": "tuner.stopper",
    "ExperimentLockedError": "tuner.storage.lock", "StorageNotWritableError": "tuner.storage.lock",
    **{name: "tuner.space.config" for name in (
        "choice", "grid_search", "lograndint", "loguniform", "qloguniform", "qlograndint", "qrandint", "qrandn",
        "quniform", "randint", "randn", "sample_from", "uniform")},
    # Ray Tune's Tuner API (tuner.compat): Tuner(...).fit() -> ResultGrid
    **{name: "tuner.compat" for name in (
        "CheckpointConfig", "FailureConfig", "Result", "ResultGrid", "RunConfig", "TuneConfig", "Tuner",
        "with_parameters", "with_resources")},
    "LoggerCallback": "tuner.compat.callbacks",
}

__all__ = sorted(_EXPORTS)

from tuner.compat import aliases as _aliases  # noqa: E402 - Ray Tune's module paths (tuner.schedulers...)

_aliases.install()


# Submodules reachable as attributes, as Ray Tune code writes them (``tune.stopper.TimeoutStopper``).
_SUBMODULES = {"stopper"}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"tuner.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tuner' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # for type checkers and IDEs; at run time names load lazily
    from tuner.api import ExperimentChangedError, TuneError, run
    from tuner.callbacks import Callback
    from tuner.storage.checkpoint import Checkpoint
    from tuner.runtime.report import get_checkpoint, get_context, report
    from tuner.results import ExperimentResults, load
    from tuner.resuming import resume
    from tuner.compat import (CheckpointConfig, FailureConfig, Result, ResultGrid, RunConfig, TuneConfig, Tuner,
                              with_parameters, with_resources)
    from tuner.compat.callbacks import LoggerCallback
    from tuner.space.config import (choice, grid_search, lograndint, loguniform, qloguniform, qlograndint, qrandint,
                                    qrandn, quniform, randint, randn, sample_from, uniform)
    from tuner.stopper import Stopper
    from tuner.runtime.trainable import Trainable
    from tuner.execution.resources import PlacementGroupFactory
    from tuner.runtime.distributed import distributed
    from tuner.trial import Trial, TrialStatus
    from tuner.storage.lock import ExperimentLockedError, StorageNotWritableError
