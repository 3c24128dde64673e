"""Bridges to other libraries: callbacks that send a sweep to the experiment
trackers teams already use (MLflow, Weights & Biases), and RLlib algorithms as
trainables (``rllib``, recognised by ``adapted.resolve_trainable``).

A room of its own because each one speaks to a third-party library and often a
server, both optional extras imported lazily, and none of that may reach the
core: the journal stays the source of truth, and a tracker that fails never
fails or stalls the sweep (``_shared.Outbox``).

    from tuner.integrations import MLflowCallback, WandbCallback
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {"MLflowCallback": "tuner.integrations.mlflow_callback",
            "WandbCallback": "tuner.integrations.wandb_callback"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    import importlib

    if name not in _EXPORTS:
        raise AttributeError(f"module 'tuner.integrations' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
