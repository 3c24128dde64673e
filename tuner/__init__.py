"""tuner: Tune-style hyperparameter tuning on Ray core.

    import tuner as tune

    results = tune.run(train, config={"lr": tune.loguniform(1e-4, 1e-1)}, num_samples=16,
                       metric="acc", mode="max")
"""

from tuner.api import TuneError, run
from tuner.callbacks import Callback
from tuner.checkpoint import Checkpoint
from tuner.reporting import get_checkpoint, get_context, report
from tuner.results import ExperimentResults, load
from tuner.resume import resume
from tuner.space import (
    choice,
    grid_search,
    lograndint,
    loguniform,
    qloguniform,
    qrandint,
    quniform,
    randint,
    randn,
    sample_from,
    uniform,
)
from tuner.trainable import Trainable
from tuner.trial import Trial, TrialStatus

__version__ = "0.1.0"

__all__ = [
    "Callback", "Checkpoint", "ExperimentResults", "Trainable", "Trial", "TrialStatus", "TuneError",
    "choice", "get_checkpoint", "get_context", "grid_search", "load", "lograndint", "loguniform",
    "qloguniform", "qrandint", "quniform", "randint", "randn", "report", "resume", "run", "sample_from", "uniform",
]
