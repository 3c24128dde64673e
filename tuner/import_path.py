"""Trainables and components named by import path (``package.module:attr``), both ways: the
path ``experiment.json`` records so that resume can import the trainable again, and the import
of such a path (resume, ``tuner sweep``'s ``trainable:`` and component keys)."""

from __future__ import annotations

import importlib
from typing import Any


def import_object(path: str) -> Any:
    """Import ``module:attr.sub`` (the working directory is on the path, as for ``tuner sweep``);
    ``rllib:NAME`` stays the string that names an RLlib algorithm."""
    if path.startswith("rllib:"):
        return path  # an RLlib algorithm by its registered name: tune.run takes the string itself
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ValueError(f"The import path {path!r} must look like 'package.module:function'.")
    obj = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def import_path(trainable: Any) -> str | None:
    """``module:qualname`` when the trainable can be imported again later (for resume); an
    adapted trainable (``rllib:PPO``) says its own name, or None."""
    if hasattr(trainable, "tuner_import"):
        return trainable.tuner_import
    module = getattr(trainable, "__module__", None)
    qualname = getattr(trainable, "__qualname__", "")
    if not module or module == "__main__" or "<" in qualname:
        return None
    return f"{module}:{qualname}"
