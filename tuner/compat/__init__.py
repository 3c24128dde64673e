"""Ray Tune's ``Tuner`` API over the tuner's own ``tune.run``.

Code written for Ray Tune (``Tuner(...).fit()``, ``TuneConfig``, ``RunConfig``,
``ResultGrid``, ``with_parameters``, ``with_resources``, callbacks with Ray's
hook signatures) runs here after changing only its imports. A room of its own
because it holds no run loop, no storage and no scheduling: every class turns
Ray's arguments into ``tune.run`` / ``tune.resume`` calls and reads results
back through ``ExperimentResults``.
"""

from tuner.compat.configs import CheckpointConfig, FailureConfig, RunConfig, TuneConfig
from tuner.compat.result_grid import Result, ResultGrid
from tuner.compat.tuner_api import Tuner
from tuner.compat.wrappers import with_parameters, with_resources

__all__ = ["CheckpointConfig", "FailureConfig", "Result", "ResultGrid", "RunConfig", "TuneConfig", "Tuner",
           "with_parameters", "with_resources"]
