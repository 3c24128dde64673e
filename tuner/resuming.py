"""``tune.resume(path)``: continue an interrupted experiment from its directory alone.

Everything needed is in ``experiment.json``: the trainable's import path, the
search space, the scheduler and searcher with their constructor arguments. The
journal and ``state.json`` then restore trials and scheduler/searcher state.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from tuner import components
from tuner.import_path import import_object
from tuner.storage import fs
from tuner.storage import jsonio as jsonutil
from tuner.storage.experiment import SPEC, SPEC_FIX

_RUN_KEYS = ("num_samples", "metric", "mode", "seed", "max_concurrent_trials", "time_budget_s", "max_failures",
             "checkpoint_freq", "checkpoint_at_end", "keep_checkpoints_num", "checkpoint_score_attr",
             "runtime_env", "trial_files")


_SUFFIXES = {"": ("resume", "keep"), "+ERRORED": ("resume", "resume"), "+RESTART_ERRORED": ("resume", "restart"),
             "+ERRORED_ONLY": ("skip", "resume"), "+RESTART_ERRORED_ONLY": ("skip", "restart")}


def resume_policy(resume: Any) -> tuple[str, str] | None:
    """``tune.run``'s ``resume`` as (what to do with unfinished trials, with failed ones), or None
    for a new experiment. Takes Ray Tune's values: True/False, ``"AUTO"`` and its suffixes
    ``+ERRORED``, ``+RESTART_ERRORED``, ``+ERRORED_ONLY``, ``+RESTART_ERRORED_ONLY``; or the
    pair itself: (``"resume"``/``"skip"``, ``"keep"``/``"resume"``/``"restart"``)."""
    if resume is False or resume is None:
        return None
    if resume is True:
        return _SUFFIXES[""]
    if isinstance(resume, str) and resume.upper().startswith("AUTO") and resume.upper()[4:] in _SUFFIXES:
        return _SUFFIXES[resume.upper()[4:]]
    if (isinstance(resume, tuple) and len(resume) == 2 and resume[0] in ("resume", "skip")
            and resume[1] in ("keep", "resume", "restart")):
        return resume
    raise ValueError(f"The value of `resume` is {resume!r}, but must be True, False, 'AUTO' or 'AUTO' with one of "
                     f"{', '.join(repr(k) for k in _SUFFIXES if k)} (e.g. 'AUTO+ERRORED').")


def resume_pair(resume_unfinished: bool = True, resume_errored: bool = False,
                restart_errored: bool = False) -> tuple[str, str]:
    """Ray Tune's ``Tuner.restore`` flags as a ``resume`` value of ``tune.run``."""
    if resume_errored and restart_errored:
        raise ValueError("`resume_errored` and `restart_errored` are both True; pass one: resume failed trials from "
                         "their latest checkpoints, or restart them from scratch.")
    return ("resume" if resume_unfinished else "skip",
            "resume" if resume_errored else "restart" if restart_errored else "keep")


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


def recorded_stop(recorded: Any, path: str) -> Any:
    """``stop`` as experiment.json recorded it: a dict, or a Stopper rebuilt from its constructor
    arguments (its calls are then replayed from the journal); a function cannot come back."""
    from tuner.api import STOPPER

    if isinstance(recorded, dict) and STOPPER in recorded:
        record = recorded[STOPPER]
        if components.NOT_JSON in record:
            raise components.NotRebuildableError(
                f"The experiment {path} stopped trials with {record[components.NOT_JSON]}, which tune.resume cannot "
                "rebuild from experiment.json; pass it again: tune.resume(path, stop=...) or Tuner.restore(path, "
                "trainable, run_config=tune.RunConfig(stop=...)). Its state comes back from the journal.")
        return components.rebuild(record, "stop")
    if isinstance(recorded, str):
        warnings.warn(f"The experiment {path} was run with stop={recorded}, a function experiment.json cannot "
                      "hold; this run has no stop criterion unless you pass it again: tune.resume(path, stop=...).",
                      stacklevel=3)
        return None
    return recorded


def _resources(recorded: Any, path: str) -> Any:
    """The recorded ``resources_per_trial``; a per-trial callable is imported again by its path."""
    if not (isinstance(recorded, dict) and "per_trial" in recorded):
        return recorded
    if not recorded["per_trial"]:
        raise ValueError(f"The experiment {path} took `resources_per_trial` from a callable defined where it cannot "
                         "be imported again (in __main__ or inside a function); pass it: "
                         "tune.resume(path, resources_per_trial=my_resources).")
    return import_object(recorded["per_trial"])
