"""RLlib algorithms as trainables: ``tune.run("PPO", config={...})`` or ``tune.run(PPOConfig()...)``.

The algorithm is built on the trial's worker; one ``step`` is one
``algo.train()``; the result is RLlib's dict flattened with "/" as RLlib users
read it (``env_runners/episode_return_mean``, ``learners/default_policy/...``,
``evaluation/env_runners/episode_return_mean``), without the echoed ``config``;
checkpoints are RLlib's own ``save_to_path`` directories, so retries, resume and
PBT clones restore the whole algorithm (weights, optimizer, connector state).
The trial's resources are the algorithm's ``default_resource_request``: the main
process, the env runners and the learners as one gang of bundles.

PBT: a change of ``lr`` or ``entropy_coeff`` only is applied in place on the
warm algorithm (``_rllib_learner``); any other change rebuilds it, and either
way the donor's checkpoint is restored.

Needs ``pip install 'tuner[rllib]'``; RLlib is imported only when used.
"""

from __future__ import annotations

import difflib
import os
from typing import Any, ClassVar

import numpy as np

from tuner.integrations import _rllib_learner
from tuner.runtime import session as session_lib
from tuner.runtime.trainable import Trainable
from tuner.space import config as space_lib

PREFIX = "rllib:"
# Fields whose value changes the trial's resource request: tuning one makes the request per trial.
RESOURCE_KEYS = frozenset({
    "num_env_runners", "num_workers", "num_cpus_per_env_runner", "num_gpus_per_env_runner",
    "custom_resources_per_env_runner", "num_learners", "num_cpus_per_learner", "num_gpus_per_learner",
    "num_cpus_for_main_process", "num_cpus_for_driver", "num_gpus", "evaluation_num_env_runners",
    "evaluation_interval", "num_aggregator_actors_per_learner", "placement_strategy",
})
_DICT_KEYS = {"model_config": "_model_config"}


def _rllib() -> Any:
    try:
        from ray.rllib.algorithms import registry
        from ray.rllib.algorithms.algorithm import Algorithm
        from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
    except ImportError as exc:
        raise ImportError(f"Tuning an RLlib algorithm needs RLlib ({exc}); install it with "
                          "pip install 'tuner[rllib]' (ray[rllib] at the version of ray).") from exc
    return registry, Algorithm, AlgorithmConfig


class RLlibTrainable(Trainable):
    """One RLlib algorithm per trial; made per algorithm by ``as_trainable``."""

    algorithm_class: ClassVar[type]
    base_config: ClassVar[Any]  # the AlgorithmConfig each trial's config is laid over
    tuner_import: ClassVar[str | None] = None  # how tune.resume and experiment.json name it

    def setup(self, config: dict[str, Any]) -> None:
        algo_config = self.base_config.copy(copy_frozen=False).update_from_dict(_as_config_dict(config))
        if algo_config.seed is None:
            algo_config.debugging(seed=session_lib.current().context.seed)
        self.algo = self.algorithm_class(config=algo_config)

    def step(self) -> dict[str, Any]:
        return flatten_result(self.algo.train())

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        self.algo.save_to_path(checkpoint_dir)

    def load_checkpoint(self, checkpoint: Any) -> None:
        self.algo.restore_from_path(checkpoint)
        _rllib_learner.take_restored_weights(self.algo)  # a warm algorithm (PBT in place) ignores them otherwise
        # The restored optimizer state carries the saver's learning rate: use this trial's from the next update.
        _rllib_learner.apply(self.algo, _fixed_in_place_values(self.config))

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        """PBT: take ``new_config`` in place when only ``lr`` / ``entropy_coeff`` change."""
        old, changed = space_lib.config_changes(self.config, new_config)
        # PBT hands over a deep copy: a callback object in the config is the same one if it reads the same.
        changed = {k: v for k, v in changed.items() if _is_plain(v) or repr(v) != repr(old[k])}
        if set(changed) - set(_rllib_learner.IN_PLACE_KEYS):
            return False
        return _rllib_learner.apply(self.algo, changed)

    def cleanup(self) -> None:
        algo = getattr(self, "algo", None)
        if algo is None:
            return
        logdir = algo.logdir
        algo.stop()
        try:  # RLlib makes an (empty) log directory under ~/ray_results for every algorithm
            os.rmdir(logdir)
        except OSError:
            pass


def flatten_result(result: dict[str, Any]) -> dict[str, Any]:
    """RLlib's nested result as ``"a/b/c"`` keys, without the ``config`` it echoes (the trial has it)."""
    return space_lib.flatten_dict({k: v for k, v in result.items() if k != "config"})


def _is_plain(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str, list, tuple, dict))


def _as_config_dict(config: dict[str, Any]) -> dict[str, Any]:
    """Keys as ``update_from_dict`` takes them (``model_config`` is a read-only property there)."""
    return {_DICT_KEYS.get(k, k): v for k, v in config.items()}


def _fixed_in_place_values(config: dict[str, Any]) -> dict[str, float]:
    return {k: config[k] for k in _rllib_learner.IN_PLACE_KEYS
            if isinstance(config.get(k), (int, float)) and not isinstance(config.get(k), bool)}


# --- from what tune.run was given to a trainable class -----------------------------------------------


def algorithm_names() -> list[str]:
    """The names RLlib's registry knows (``"PPO"``, ``"DQN"``, ...)."""
    return sorted(_rllib()[0].ALGORITHMS)


def registered_algorithm(name: str) -> type:
    registry = _rllib()[0]
    key = name[len(PREFIX):] if name.startswith(PREFIX) else name
    if key not in registry.ALGORITHMS:
        close = difflib.get_close_matches(key, list(registry.ALGORITHMS), n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"The trainable {name!r} is not an RLlib algorithm; RLlib's registry has: "
                         f"{', '.join(algorithm_names())}.{hint} (A function or tune.Trainable subclass is "
                         "passed as the object itself, not as a string.)")
    return registry.ALGORITHMS[key]()[0]


def _check_keys(base: Any, space: dict[str, Any]) -> None:
    """A key that is no field of the algorithm's config would be set and silently ignored by RLlib."""
    known = set(base.to_dict())
    for key in space:
        if base._translate_special_keys(key, warn_deprecated=False) in known or hasattr(base, key):
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"The config key {key!r} is not a field of {type(base).__name__}, so RLlib would ignore "
                         f"it.{hint}")


def as_trainable(algorithm: Any, config: Any = None, resources: Any = None) -> tuple[type, dict[str, Any], Any]:
    """``(trainable class, search space, resources_per_trial)`` for an RLlib algorithm.

    Args:
        algorithm: a registered name (``"PPO"`` or ``"rllib:PPO"``), an ``Algorithm``
            subclass, or an ``AlgorithmConfig`` whose fields may hold ``tune.*`` domains.
        config: the search space as a dict of config keys (laid over the
            ``AlgorithmConfig``'s fields), or an ``AlgorithmConfig`` for a named algorithm.
        resources: ``resources_per_trial`` given by the user, returned unchanged: it
            replaces the class's ``default_resources_per_trial`` (the algorithm's
            ``default_resource_request``, per trial when the space tunes a key it reads).
    """
    _, algorithm_base, config_base = _rllib()
    tuner_import = None
    if isinstance(algorithm, str):
        algo_cls = registered_algorithm(algorithm)
        tuner_import = PREFIX + (algorithm[len(PREFIX):] if algorithm.startswith(PREFIX) else algorithm)
    elif isinstance(algorithm, config_base):
        algo_cls = algorithm.algo_class
    else:
        algo_cls = algorithm
    if isinstance(algo_cls, str):
        algo_cls = registered_algorithm(algo_cls)
    if not (isinstance(algo_cls, type) and issubclass(algo_cls, algorithm_base)):
        raise ValueError(f"The AlgorithmConfig {algorithm!r} names no algorithm class; build it from an "
                         "algorithm's config class (PPOConfig(), DQNConfig(), ...).")
    if isinstance(config, config_base):
        algorithm, config = config, None
    base = algorithm.copy(copy_frozen=False) if isinstance(algorithm, config_base) else algo_cls.get_default_config()
    if isinstance(algorithm, config_base):
        tuner_import = None  # the config object itself is needed again to resume
    if config is not None and not isinstance(config, dict):
        raise ValueError(f"The value of `config` is {config!r}, but must be a dict of {type(base).__name__} keys "
                         "(or an AlgorithmConfig).")
    fields = base.to_dict()
    space = {**{path[0]: fields[path[0]] for path, _ in space_lib.walk(fields)}, **dict(config or {})}
    _check_keys(base, space)
    cls = type(algo_cls.__name__, (RLlibTrainable,), {
        "algorithm_class": algo_cls, "base_config": base, "tuner_import": tuner_import, "__module__": __name__,
        "__qualname__": f"RLlibTrainable[{algo_cls.__name__}]", "__doc__": f"RLlib's {algo_cls.__name__}.",
        "default_resources_per_trial": _default_resources(algo_cls, base, space)})
    return cls, space, resources


def _default_resources(algo_cls: type, base: Any, space: dict[str, Any]) -> Any:
    """The algorithm's own request: fixed, or per trial when the space tunes a key that changes it."""
    if RESOURCE_KEYS & {path[0] for path, _ in space_lib.walk(space)}:
        def rllib_resources(config: dict[str, Any]) -> Any:
            return _request(algo_cls, base, config)

        rllib_resources.__qualname__ = f"<{algo_cls.__name__}.default_resource_request>"
        return rllib_resources
    return _request(algo_cls, base, next(space_lib.generate_variants(space, 1, np.random.default_rng(0))))


def _request(algo_cls: type, base: Any, config: dict[str, Any]) -> Any:
    """``default_resource_request`` as ``resources_per_trial``: one bundle, or a gang with RLlib's strategy."""
    from tuner.execution.resources import PlacementGroupFactory

    request = algo_cls.default_resource_request(base.copy(copy_frozen=False).update_from_dict(_as_config_dict(config)))
    bundles = [{k: float(v) for k, v in b.items() if v} for b in request.bundles]
    bundles = [b for i, b in enumerate(bundles) if b or i == 0]
    return bundles[0] if len(bundles) == 1 else PlacementGroupFactory(bundles, strategy=request.strategy)


def resources_hint(trainable: Any) -> str:
    """What to change when an RLlib trial's request cannot fit the cluster ("" for other trainables)."""
    if not (isinstance(trainable, type) and issubclass(trainable, RLlibTrainable)):
        return ""
    return (f" These are {trainable.__name__}'s own bundles (default_resource_request: the main process, then one "
            "per env runner and learner); lower num_env_runners / num_learners (or their num_cpus_per_*), or run on "
            "a larger cluster.")
