"""Ray Tune's configuration objects, each turned into ``tune.run`` keyword arguments.

Only fields the tuner honours exist: an unknown one is a ``TypeError`` naming
it (``docs/migrating_from_ray_tune.md`` says what replaces it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any


@dataclasses.dataclass
class CheckpointConfig:
    """Which checkpoints to take and keep.

    Args:
        num_to_keep: keep this many per trial (the latest always among them); all when None.
        checkpoint_score_attribute: the result key ranking checkpoints; the newest by default.
        checkpoint_score_order: "max" or "min" (is a higher score better?).
        checkpoint_frequency: class trainables: checkpoint every this many iterations.
        checkpoint_at_end: class trainables: checkpoint when the trial ends.
    """

    num_to_keep: int | None = None
    checkpoint_score_attribute: str | None = None
    checkpoint_score_order: str = "max"
    checkpoint_frequency: int = 0
    checkpoint_at_end: bool | None = None

    def __post_init__(self) -> None:
        if self.checkpoint_score_order not in ("max", "min"):
            raise ValueError(f"The value of `checkpoint_score_order` is {self.checkpoint_score_order!r}, but must "
                             "be 'max' or 'min'.")

    def run_kwargs(self) -> dict[str, Any]:
        attr = self.checkpoint_score_attribute
        if attr is not None and self.checkpoint_score_order == "min":
            attr = f"min-{attr}"
        return {"keep_checkpoints_num": self.num_to_keep, "checkpoint_score_attr": attr,
                "checkpoint_freq": self.checkpoint_frequency, "checkpoint_at_end": bool(self.checkpoint_at_end)}


@dataclasses.dataclass
class FailureConfig:
    """What a failing trial does: retry ``max_failures`` times (from its checkpoint);
    ``fail_fast`` ends the experiment at the first failure ("raise": and raises)."""

    max_failures: int = 0
    fail_fast: bool | str = False

    def run_kwargs(self) -> dict[str, Any]:
        return {"max_failures": self.max_failures, "fail_fast": self.fail_fast}


@dataclasses.dataclass
class RunConfig:
    """Where the experiment goes, when trials stop, who watches.

    Args:
        name: the experiment's directory name under ``storage_path``.
        storage_path: the root directory (``~/tuner_results`` by default).
        stop: a dict of thresholds, ``(trial_id, result) -> bool`` or a ``tune.Stopper``.
        callbacks: ``tune.Callback`` objects (the tuner's hooks or Ray Tune's signatures).
        verbose: 0-3 or a bool (True is 1... as ``tune.run``).
        checkpoint_config, failure_config: see their classes.
    """

    name: str | None = None
    storage_path: str | None = None
    stop: Mapping[str, Any] | Callable | None = None
    callbacks: Sequence[Any] | None = None
    verbose: int | bool | None = None
    checkpoint_config: CheckpointConfig | None = None
    failure_config: FailureConfig | None = None

    def run_kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "storage_path": self.storage_path, "stop": self.stop,
                               "callbacks": list(self.callbacks or [])}
        if self.verbose is not None:
            out["verbose"] = int(self.verbose)
        out.update((self.checkpoint_config or CheckpointConfig()).run_kwargs())
        out.update((self.failure_config or FailureConfig()).run_kwargs())
        return out


@dataclasses.dataclass
class TuneConfig:
    """How configs are searched and trials scheduled.

    Args:
        metric, mode: what to optimize.
        search_alg: a ``Searcher`` (random/grid by default).
        scheduler: a ``TrialScheduler`` (FIFO by default).
        num_samples: samples drawn (times the grid); -1 is not supported (use a stopper).
        max_concurrent_trials: at most this many at once.
        time_budget_s: end the experiment after this many seconds.
        reuse_actors: keep worker actors warm between trials.
        trial_name_creator: ``trial -> str``: the trial's display name.
        trial_dirname_creator: ``trial -> str``: its directory name under ``trials/``.
        seed: the tuner's own: makes configs and per-trial seeds reproducible.
    """

    metric: str | None = None
    mode: str | None = None
    search_alg: Any = None
    scheduler: Any = None
    num_samples: int = 1
    max_concurrent_trials: int | None = None
    time_budget_s: float | None = None
    reuse_actors: bool | None = None
    trial_name_creator: Callable[[Any], str] | None = None
    trial_dirname_creator: Callable[[Any], str] | None = None
    seed: int | None = None

    def run_kwargs(self) -> dict[str, Any]:
        out = {"metric": self.metric, "mode": self.mode, "search_alg": self.search_alg,
               "scheduler": self.scheduler, "num_samples": self.num_samples,
               "max_concurrent_trials": self.max_concurrent_trials, "time_budget_s": self.time_budget_s,
               "seed": self.seed}
        if self.reuse_actors is not None:
            out["reuse_actors"] = self.reuse_actors
        if self.trial_name_creator is not None:
            out["trial_name_creator"] = self.trial_name_creator
        if self.trial_dirname_creator is not None:
            out["trial_dirname_creator"] = self.trial_dirname_creator
        return out
