"""Changing an RLlib algorithm's learning rate and entropy coefficient without rebuilding it.

RLlib 2.60 has no public call for this: a ``Learner`` reads ``lr`` through one
``Scheduler`` per optimizer and PPO-family learners read ``entropy_coeff``
through one ``Scheduler`` per module, both built from the learner's (frozen)
config. ``set_hyperparameters`` replaces those schedulers and the config fields
on every learner, local or remote, so that the next update uses the new values.
It checks everything it needs before it changes anything and answers False when
the algorithm is not one it knows how to change; the caller then rebuilds.

Restoring a checkpoint also goes through here: a torch optimizer's saved state
carries the donor's learning rate, which RLlib would otherwise use for one more
update before its scheduler sets the recipient's own.
"""

from __future__ import annotations

from typing import Any
from tuner.validation import is_real_number

IN_PLACE_KEYS = ("lr", "entropy_coeff")


def _is_fixed(value: Any) -> bool:
    return is_real_number(value)


def set_config_fields(config: Any, values: dict[str, float]) -> None:
    """Set fields of a (possibly frozen) ``AlgorithmConfig``, keeping it frozen."""
    frozen = config._is_frozen
    config._is_frozen = False  # the one attribute a frozen config lets through
    try:
        for key, value in values.items():
            setattr(config, key, value)
    finally:
        config._is_frozen = frozen


def can_set(learner: Any, values: dict[str, Any]) -> bool:
    """True when ``learner`` takes ``values`` in place (fixed numbers, keys it schedules, no
    per-module overrides)."""
    if set(values) - set(IN_PLACE_KEYS) or not all(_is_fixed(v) for v in values.values()):
        return False
    if getattr(learner.config, "algorithm_config_overrides_per_module", None):
        return False
    if "lr" in values and not hasattr(learner, "_optimizer_lr_schedules"):
        return False
    return "entropy_coeff" not in values or hasattr(learner, "entropy_coeff_schedulers_per_module")


def set_hyperparameters(learner: Any, values: dict[str, float]) -> bool:
    """Run on each learner (``LearnerGroup.foreach_learner``): apply ``values`` or answer False."""
    if not can_set(learner, values):
        return False
    from ray.rllib.utils.schedules.scheduler import Scheduler

    set_config_fields(learner.config, values)
    if "lr" in values:
        schedules = learner._optimizer_lr_schedules
        for optimizer in list(schedules):
            schedules[optimizer] = Scheduler(values["lr"], framework=learner.framework, device=learner._device)
            learner._set_optimizer_lr(optimizer, values["lr"])
    if "entropy_coeff" in values:
        # A LambdaDefaultDict: emptied, it builds each module's scheduler again from the new config.
        learner.entropy_coeff_schedulers_per_module.clear()
    return True


def apply(algo: Any, values: dict[str, Any]) -> bool:
    """Set ``values`` on ``algo``'s config and every learner; False (nothing changed) when it cannot."""
    if not values:
        return True
    group = getattr(algo, "learner_group", None)
    if group is None or not all(r.get() for r in group.foreach_learner(can_set, values=values)):
        return False
    answers = [r.get() for r in group.foreach_learner(set_hyperparameters, values=values)]
    if not all(answers):
        raise RuntimeError(f"Some of the learners of {type(algo).__name__} refused {values} after accepting it.")
    set_config_fields(algo.config, values)
    return True


def _forget_weights_version(runner: Any) -> None:
    runner._weights_seq_no = 0  # 0: the next weights it is sent replace its own, whatever their version


def take_restored_weights(algo: Any) -> None:
    """After ``restore_from_path`` on an algorithm that already trained: make every EnvRunner (training
    and evaluation) take the restored weights. RLlib 2.60's EnvRunner ignores weights whose version
    (``weights_seq_no``) is not newer than its own, and a PBT donor's checkpoint is often of the same
    or an earlier iteration than the recipient: its restore reached the learner but the runners kept
    sampling and evaluating with the recipient's old policy (seen on Acrobot: clones of a -80 donor
    went on at -500). A fresh algorithm (version 0) never had this problem."""
    for group in (getattr(algo, "env_runner_group", None), getattr(algo, "eval_env_runner_group", None)):
        if group is None:
            continue
        group.foreach_env_runner(_forget_weights_version, local_env_runner=True)
        group.sync_weights(from_worker_or_learner_group=algo.learner_group, inference_only=True)
