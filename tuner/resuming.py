"""``tune.resume(path)``: continue an interrupted experiment from its directory alone.

Everything needed is in ``experiment.json``: the trainable's import path, the
search space, the scheduler and searcher with their constructor arguments. The
journal and ``state.json`` then restore trials and scheduler/searcher state.
"""

from __future__ import annotations

import os
from typing import Any

from tuner import components
from tuner.resume_policy import resume_pair
from tuner.stop_record import recorded_stop
from tuner.import_path import import_object
from tuner.storage import fs
from tuner.storage import jsonio as jsonutil
from tuner.storage.experiment import SPEC, SPEC_FIX

_RUN_KEYS = ("num_samples", "metric", "mode", "seed", "max_concurrent_trials", "time_budget_s", "max_failures",
             "checkpoint_freq", "checkpoint_at_end", "keep_checkpoints_num", "checkpoint_score_attr",
             "runtime_env", "trial_files", "in_process")


def resume(path: str, trainable: Any = None, config: dict[str, Any] | None = None, *,
           resume_unfinished: bool = True, resume_errored: bool = False, restart_errored: bool = False,
           allow_changes: bool = False, **overrides: Any):
    """Continue the experiment in ``path``; returns its ExperimentResults.

    Args:
        path: the experiment directory.
        trainable: needed only when it cannot be imported again (defined in
            ``__main__`` or inside a function).
        config: needed only when the space holds ``sample_from`` functions.
        resume_unfinished: continue the trials the earlier run left unfinished (False: they
            end TERMINATED as they are).
        resume_errored: run failed trials again from their latest checkpoints.
        restart_errored: run failed trials again from scratch (their checkpoints are deleted).
        allow_changes: accept another search space (``config``), ``metric`` or ``mode`` than the
            experiment's; without it such a resume is refused with the differences listed.
        overrides: any other ``tune.run`` argument (``verbose``, ``scheduler``...).
    """
    from tuner.space import config as space_lib
    from tuner.api import run

    path = fs.normalize(path)
    spec_file = fs.join(path, SPEC)
    if not fs.exists(spec_file):
        raise FileNotFoundError(f"{path} is not an experiment directory (no {SPEC} in it).")
    spec = jsonutil.read(spec_file, SPEC_FIX)
    if trainable is None:
        if not spec.get("trainable_import"):
            raise ValueError(
                f"The trainable {spec.get('trainable')!r} of {path} was defined where it cannot be imported again "
                "(in __main__ or inside a function); pass it: tune.resume(path, trainable=train)."
            )
        trainable = import_object(spec["trainable_import"])
    if config is None:
        config = space_lib.space_from_json(spec["space"])
    kwargs: dict[str, Any] = {k: spec[k] for k in _RUN_KEYS if k in spec}
    if "resources_per_trial" not in overrides:
        kwargs["resources_per_trial"] = _resources(spec.get("resources_per_trial"), path)
    if "stop" not in overrides:
        stop = recorded_stop(spec.get("stop"), path)
        if stop is not None:
            kwargs["stop"] = stop
    # The searcher first: a scheduler may hold the sweep's searcher (SearcherPruningScheduler).
    search_alg = overrides.get("search_alg") or components.rebuild(spec["searcher"], "search_alg")
    kwargs["search_alg"] = search_alg
    if "scheduler" not in overrides:
        kwargs["scheduler"] = components.rebuild(spec["scheduler"], "scheduler", search_alg)
    kwargs.update(overrides)
    return run(trainable, config, storage_path=fs.dirname(path), name=fs.basename(path),
               resume=resume_pair(resume_unfinished, resume_errored, restart_errored), allow_changes=allow_changes,
               **kwargs)


def _resources(recorded: Any, path: str) -> Any:
    """The recorded ``resources_per_trial``; a per-trial callable is imported again by its path."""
    if not (isinstance(recorded, dict) and "per_trial" in recorded):
        return recorded
    if not recorded["per_trial"]:
        raise ValueError(f"The experiment {path} took `resources_per_trial` from a callable defined where it cannot "
                         "be imported again (in __main__ or inside a function); pass it: "
                         "tune.resume(path, resources_per_trial=my_resources).")
    return import_object(recorded["per_trial"])
