"""Other libraries' training objects as trainables (RLlib algorithms today).

Each adapter depends on a large optional library that the core never imports:
``resolve_trainable`` recognises such an object without importing anything, and
only then loads the adapter (and the library).
"""

from __future__ import annotations

import sys
from typing import Any


def is_rllib(obj: Any) -> bool:
    """An RLlib algorithm name (``"PPO"``, ``"rllib:PPO"``), ``AlgorithmConfig`` or ``Algorithm`` class.

    Reads ``sys.modules`` only: an RLlib object exists only once RLlib is imported.
    """
    if isinstance(obj, str):
        return True
    config_mod = sys.modules.get("ray.rllib.algorithms.algorithm_config")
    if config_mod is not None and isinstance(obj, config_mod.AlgorithmConfig):
        return True
    algo_mod = sys.modules.get("ray.rllib.algorithms.algorithm")
    return algo_mod is not None and isinstance(obj, type) and issubclass(obj, algo_mod.Algorithm)


def resolve_trainable(trainable: Any, config: Any, resources: Any) -> tuple[Any, Any, Any]:
    """``(trainable, search space, resources_per_trial)`` as the core takes them; other
    trainables pass through unchanged."""
    if not is_rllib(trainable):
        return trainable, config, resources
    from tuner.integrations import rllib

    return rllib.as_trainable(trainable, config, resources)
