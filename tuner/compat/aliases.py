"""Ray Tune's module paths for the tuner's packages, so ``ray.tune`` -> ``tuner`` is the whole port.

``from tuner.schedulers import ASHAScheduler`` is the ``schedulers`` package,
``from tuner.search.optuna import OptunaSearch`` is ``searchers.optuna``,
``from tuner.logger import LoggerCallback`` is ``tuner.compat.callbacks``. The
finder hands back the real module under the second name (one module object,
so classes are the same), and imports nothing until such a name is imported.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from typing import Any

ALIASES = {"tuner.schedulers": "schedulers", "tuner.search": "searchers", "tuner.logger": "tuner.compat.callbacks"}


def _target(fullname: str) -> str | None:
    for alias, target in ALIASES.items():
        if fullname == alias or fullname.startswith(alias + "."):
            return target + fullname[len(alias):]
    return None


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        return importlib.import_module(self.target)

    def exec_module(self, module: Any) -> None:
        """The real module ran when it was imported under its own name."""


class AliasFinder(importlib.abc.MetaPathFinder):
    """Finds ``tuner.schedulers[.x]``, ``tuner.search[.x]`` and ``tuner.logger``."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        real = _target(fullname)
        if real is None or importlib.util.find_spec(real) is None:
            return None
        spec = importlib.machinery.ModuleSpec(fullname, _AliasLoader(real), is_package=True)
        return spec


def install() -> None:
    if not any(isinstance(f, AliasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, AliasFinder())  # before the path finder, which would load a second copy
