"""Ray Tune's ``Tuner`` API over the tuner's own ``tune.run``.

Code written for Ray Tune (``Tuner(...).fit()``, ``TuneConfig``, ``RunConfig``,
``ResultGrid``, ``with_parameters``, ``with_resources``, callbacks with Ray's
hook signatures) runs here after changing only its imports. A room of its own
because it holds no run loop, no storage and no scheduling: every class turns
Ray's arguments into ``tune.run`` / ``tune.resume`` calls and reads results
back through ``ExperimentResults``.
"""

import importlib
from typing import Any

# Loaded on first use: ``import tuner`` installs the module-path aliases from here, and a
# worker process must not pay for the results and storage modules it never uses.
_EXPORTS = {
    **{name: "tuner.compat.configs" for name in ("CheckpointConfig", "FailureConfig", "RunConfig", "TuneConfig")},
    "Result": "tuner.compat.result_grid", "ResultGrid": "tuner.compat.result_grid",
    "Tuner": "tuner.compat.tuner_api",
    "with_parameters": "tuner.compat.wrappers", "with_resources": "tuner.compat.wrappers",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tuner.compat' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
