"""``tune.run``: check everything, set the sweep up, run it, return its results."""

from __future__ import annotations

import datetime
import json
import os
import re
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from schedulers.base import TrialScheduler
from searchers.base import Searcher
from tuner.storage import fs
from tuner.storage import jsonio as jsonutil
from tuner import components
from tuner.storage import relay as relay_lib
from tuner.callbacks import Callback
from tuner.results import ExperimentResults
from tuner.execution.replay import ComponentReplay
from tuner.execution.resources import Resources, trainable_resources
from tuner.execution.runner import RunSettings, TrialRunner
from tuner.storage import journal
from tuner.storage.experiment import STATE_FIX, ExperimentStorage, metric_names, storage_root, write_spec
from tuner.storage.lock import ExperimentLock
from tuner.stopper import Stopper
from tuner.import_path import import_path
from tuner.resume_policy import resume_policy
from tuner.stop_record import STOPPER, describe_stop
from tuner.integrations.adapted import resolve_trainable
from tuner.run_arguments import check_arguments, scheduler_or_default, searcher_or_default
from tuner.runtime.messages import Shared
from tuner.space import config as space_lib
from tuner.runtime.trainable import is_class_trainable, validate_trainable



class TuneError(RuntimeError):
    """Raised at the end of a sweep in which trials failed (``raise_on_failed_trial``)."""

    def __init__(self, message: str, results: ExperimentResults | None = None) -> None:
        super().__init__(message)
        self.results = results


def run(
    trainable: Callable | type,
    config: Mapping[str, Any] | None = None,
    *,
    num_samples: int = 1,
    metric: str | list[str] | None = None,
    mode: str | list[str] | None = None,
    stop: Mapping[str, float] | Callable[[str, dict], bool] | None = None,
    scheduler: TrialScheduler | None = None,
    search_alg: Searcher | None = None,
    resources_per_trial: Any = None,
    max_concurrent_trials: int | None = None,
    time_budget_s: float | None = None,
    storage_path: str | None = None,
    name: str | None = None,
    seed: int | None = None,
    verbose: int = 2,
    callbacks: Sequence[Callback] | None = None,
    raise_on_failed_trial: bool = True,
    max_failures: int = 0,
    fail_fast: bool | str = False,
    trial_name_creator: Callable[[Any], str] | None = None,
    trial_dirname_creator: Callable[[Any], str] | None = None,
    checkpoint_freq: int = 0,
    checkpoint_at_end: bool = False,
    keep_checkpoints_num: int | None = None,
    checkpoint_score_attr: str | None = None,
    log_to_tensorboard: bool = True,
    address: str | None = None,
    runtime_env: Mapping[str, Any] | None = None,
    reuse_actors: bool = True,
    in_process: bool = False,
    resume: bool | str = False,
    allow_changes: bool = False,
    trial_files: bool = True,
    _executor: Any = None,
) -> ExperimentResults:
    """Run a hyperparameter sweep and return its results.

    The arguments are checked first; the experiment directory is then locked
    (``driver.lock``) before Ray starts, so a busy or unwritable experiment fails
    without starting Ray; resources are checked against the cluster once Ray is
    up. Ray is started locally when it is not running (``address`` or
    ``RAY_ADDRESS`` joins a cluster). Scheduler or searcher arguments that JSON
    cannot hold are named in a warning: ``tune.resume`` will ask for them.

    Example::

        import tuner as tune

        def train(config):
            for step in range(10):
                tune.report({"loss": (config["x"] - 3) ** 2 / (step + 1)})

        results = tune.run(train, config={"x": tune.uniform(0, 10)}, num_samples=8,
                           metric="loss", mode="min", seed=0)
        print(results.best_config)

    Args:
        trainable: ``train(config)`` calling ``tune.report``, or a ``tune.Trainable`` subclass; or an
            RLlib algorithm: its registered name (``"PPO"``), ``Algorithm`` class or ``AlgorithmConfig``
            (see ``tuner.integrations.rllib``; its resources are the algorithm's own request).
        config: the search space: constants, ``tune.*`` domains, nested dicts and lists.
        num_samples: samples drawn (times the grid, for ``grid_search``).
        metric, mode: what to optimize ("min" or "max"); lists for multi-objective.
        stop: dict of result thresholds, ``(trial_id, result) -> bool`` (both checked in the
            worker), or a ``tune.Stopper`` (checked on the driver; it may end the experiment).
        scheduler: a ``TrialScheduler`` (FIFO by default).
        search_alg: a ``Searcher`` (random/grid ``BasicVariantGenerator`` by default).
        resources_per_trial: ``{"cpu": 1, "gpu": 0.5, "memory": bytes, "<custom>": n}``, a list
            of such bundles (a placement group, PACK), a ``tune.PlacementGroupFactory(bundles,
            strategy)``, or a callable of the trial's config returning one of those. Default: the
            trainable's ``default_resources_per_trial`` (``tune.distributed`` sets it), else 1 CPU.
        max_concurrent_trials: at most this many trials run at once.
        time_budget_s: stop the whole sweep after this many seconds.
        storage_path, name: the experiment goes to ``storage_path/name``.
        seed: makes the sequence of configs and each trial's seed reproducible.
        verbose: 0 silent; 1 a status line every 15 s and the summary at the end; 2 the live
            table (in place in Jupyter too) and the summary; 3 also each result as it arrives.
        callbacks: ``tune.Callback`` objects.
        raise_on_failed_trial: raise ``TuneError`` at the end when trials failed.
        fail_fast: end the experiment when a trial fails (after its retries): stop the running
            trials and start no more; ``"raise"`` also raises ``TuneError`` whatever
            ``raise_on_failed_trial`` says.
        trial_name_creator: ``trial -> str``, the trial's display name (``str(trial)``).
        trial_dirname_creator: ``trial -> str``, its directory name under ``trials/`` (unique,
            no path separator); the trial id by default.
        max_failures: retry a failing trial up to this many times (from its checkpoint).
        checkpoint_freq, checkpoint_at_end: class trainables: checkpoint every k
            iterations / at the end.
        keep_checkpoints_num: keep only this many checkpoints per trial (the latest always
            among them), the best by ``checkpoint_score_attr``.
        checkpoint_score_attr: result key ranking checkpoints, higher is better;
            ``"min-loss"`` for lower is better. Default: the newest are kept.
        log_to_tensorboard: write the TensorBoard HParams view (when tensorboard is installed).
        address: Ray cluster address ("auto" joins the running one).
        runtime_env: Ray's runtime environment for every trial's worker, to ship code to a
            cluster: ``{"working_dir": ".", "pip": [...], "py_modules": [...]}`` (a relative
            ``working_dir`` is taken from the current directory and recorded absolute, so
            ``tune.resume`` ships the same code).
        reuse_actors: keep worker actors warm between trials.
        in_process: run trials in threads of this process instead of Ray workers, as many at once as
            the machine has CPUs (``max_concurrent_trials`` lowers it); Ray is not started. For
            debugging (a breakpoint in the trainable stops there) and for trainables that last
            about as long as a worker takes to start and import them (docs/in_process.md). It
            gives up isolation: concurrent trials share global random state, the working directory
            and the output, a crash of the interpreter ends the sweep (``tune.resume`` continues it),
            and a trial that hangs cannot be killed. GPUs, custom resources and placement groups
            need Ray workers.
        resume: continue the experiment ``storage_path/name`` if it exists (finished
            trials stay finished, the others restart from their latest checkpoint,
            scheduler and searcher state are restored); start it otherwise. Ray Tune's
            ``"AUTO"`` is True; ``"AUTO+ERRORED"`` also runs failed trials again from their
            latest checkpoints, ``"AUTO+RESTART_ERRORED"`` from scratch, and the ``_ONLY``
            forms of both end the unfinished trials as they are instead of continuing them.
        allow_changes: with ``resume``, accept another search space, metric or mode than the experiment
            was run with; without it such a resume is refused listing the differences
            (``ExperimentChangedError``). experiment.json then records the new ones.
        trial_files: write each trial's params.json, result.jsonl, progress.csv and
            decisions.jsonl beside the journal. False is the compact layout for sweeps of
            many short trials (docs/large_sweeps.md): the journal alone holds them, and
            ``tune.load`` and ``tuner show`` read it the same.
        _executor: replaces the Ray executor (tests use an in-process one).
    """
    trainable, config, resources_per_trial = resolve_trainable(trainable, config, resources_per_trial)
    trainable_name = validate_trainable(trainable)
    if isinstance(verbose, bool):  # Ray Tune code writes verbose=False / True
        verbose = int(verbose)
    resources_per_trial = trainable_resources(trainable, resources_per_trial)
    runtime_env = _check_runtime_env(runtime_env)
    settings = check_arguments(config=config, num_samples=num_samples, metric=metric, mode=mode, stop=stop,
                               resources_per_trial=resources_per_trial,
                               max_concurrent_trials=max_concurrent_trials, time_budget_s=time_budget_s,
                               seed=seed, verbose=verbose, max_failures=max_failures,
                               checkpoint_freq=checkpoint_freq)
    settings.checkpoint_at_end = bool(checkpoint_at_end)
    if fail_fast not in (True, False, "raise"):
        raise ValueError(f"The value of `fail_fast` is {fail_fast!r}, but must be True, False or 'raise'.")
    settings.fail_fast = fail_fast
    if not isinstance(in_process, bool):
        raise ValueError(f"The value of `in_process` is {in_process!r}, but must be True or False.")
    threads = None
    if in_process and _executor is None:
        if address or runtime_env:
            raise ValueError("`in_process=True` runs the trials in this process, without Ray: drop "
                             f"`{'address' if address else 'runtime_env'}`, or run on Ray workers (in_process=False).")
        from tuner.execution.threads import ThreadExecutor

        threads = ThreadExecutor()
        if isinstance(settings.resources, Resources):  # per-trial shapes are checked as trials are made
            threads.check_feasible(settings.resources)
    for label, creator in (("trial_name_creator", trial_name_creator), ("trial_dirname_creator", trial_dirname_creator)):
        if creator is not None and not callable(creator):
            raise ValueError(f"The value of `{label}` is {creator!r}, but must be a function trial -> str.")
    settings.trainable_name = trainable_name
    settings.trial_name_creator, settings.trial_dirname_creator = trial_name_creator, trial_dirname_creator
    settings.class_trainable = is_class_trainable(trainable)
    settings.echo_output = verbose >= 1
    if keep_checkpoints_num is not None and (isinstance(keep_checkpoints_num, bool)
                                             or not isinstance(keep_checkpoints_num, int) or keep_checkpoints_num < 1):
        raise ValueError(f"The value of `keep_checkpoints_num` is {keep_checkpoints_num!r}, but must be an "
                         "integer >= 1 or None.")
    settings.keep_checkpoints_num = keep_checkpoints_num
    settings.checkpoint_score_attr = checkpoint_score_attr
    config = dict(config or {})
    scheduler = scheduler_or_default(scheduler)
    search_alg = searcher_or_default(search_alg)
    callbacks = _check_callbacks(callbacks)
    _check_picklable(trainable, trainable_name)
    _check_config_picklable(config)

    policy = resume_policy(resume)
    if policy is not None and name is None:
        raise ValueError("`resume=True` needs the `name` of the experiment to continue.")
    path = _experiment_path(storage_path, name, trainable_name, allow_existing=policy is not None)
    # Before the components see metric and mode: a changed one is named here, not as a clash inside them.
    changed_spec = _check_unchanged(path, config, settings, allow_changes) if policy is not None else None
    scheduler.set_search_properties(metric, mode)
    search_alg.set_search_properties(metric, mode, config, num_samples=num_samples, seed=seed, experiment_path=path)

    # Before Ray starts: a busy or read-only experiment fails in no time.
    with ExperimentLock(path) as lock:
        if threads is not None:
            executor, trainable_ref = threads, trainable
        elif _executor is None:
            import ray

            from tuner.execution.executor import RayExecutor

            executor = RayExecutor(address=address, reuse_workers=reuse_actors, runtime_env=runtime_env,
                                   env_vars=fs.credentials_env() if fs.is_uri(path) else None,
                                   start_ahead=not search_alg.learns_from_results)
            if isinstance(settings.resources, Resources):  # per-trial shapes are checked as trials are made
                try:
                    executor.check_feasible(settings.resources)
                except ValueError as exc:
                    from tuner.integrations.rllib import resources_hint

                    raise ValueError(f"{exc}{resources_hint(trainable)}") from None
            trainable_ref = Shared.of(ray.put(trainable), trainable)
        else:
            executor, trainable_ref = _executor, trainable

        restored = (_read_previous_run(path, scheduler, search_alg, settings.driver_stopper, metric)
                    if policy is not None else None)
        if restored is not None and changed_spec is not None:
            jsonutil.write_atomic(fs.join(path, "experiment.json"), changed_spec)
        if restored is None:  # the spec before the journal: a journal always has its spec beside it
            spec = _spec(trainable, trainable_name, config, settings, scheduler, search_alg)
            write_spec(path, {**spec, "runtime_env": runtime_env, "trial_files": bool(trial_files),
                              "in_process": in_process})
            _warn_not_rebuildable(spec, path)
        storage = ExperimentStorage(path, trial_files=bool(trial_files), metrics=metric)
        if lock.taken_over is not None:
            _note_takeover(storage, lock.taken_over)
        if log_to_tensorboard and not any(type(cb).__name__ == "TensorBoardCallback" for cb in callbacks):
            callbacks += _tensorboard_callback()
        from tuner.progress import ProgressReporter

        reporter = ProgressReporter(metric, mode, verbose=verbose)
        callbacks.append(reporter)
        for cb in callbacks:
            cb.setup(storage.path, config, metric, mode)
        runner = TrialRunner(trainable_ref=trainable_ref, settings=settings, searcher=search_alg,
                             scheduler=scheduler, executor=executor, storage=storage, callbacks=callbacks,
                             reporter=reporter, lock=lock)
        if restored is not None:
            unfinished, errored = policy
            runner.restore_callbacks(restored.callback_states)
            runner.time_used_before = _time_used(path, restored, lock.taken_over)
            runner.restore(restored.trials, restored.stopping, unfinished=unfinished, errored=errored,
                           stopper_saw=restored.stopper_saw, previous=restored)
        relay = None
        if _executor is None and threads is None and storage.token and relay_lib.needs_relay(storage.path):
            relay = relay_lib.start_relay(storage.token)  # for nodes that do not see this local directory
        started = time.time()
        try:
            trials = runner.run()
        finally:
            reporter.close(runner)
            if relay is not None:
                ray.kill(relay)
        lineage = restored.lineage + storage.lineage if restored is not None else storage.lineage
        results = ExperimentResults(trials, storage.path, metric, mode, lineage, config)
        reporter.summary(results, time.time() - started)
        if (raise_on_failed_trial or fail_fast == "raise") and results.errors:
            ids = ", ".join(t.trial_id for t in results.errors)
            raise TuneError(f"{len(results.errors)} trial(s) failed: {ids}. Tracebacks are in "
                            f"{storage.path}/trials/<trial_id>/error.txt.", results)
        return results


class ExperimentChangedError(ValueError):
    """``resume`` with another search space, metric or mode than the experiment was run with."""


def _check_unchanged(path: str, config: Mapping[str, Any], settings: RunSettings,
                     allow: bool) -> dict[str, Any] | None:
    """Refuse to mix trials of two sweeps in one experiment: compare the space, metric and mode with
    experiment.json. ``allow``: return the spec to record instead (None when nothing changed)."""
    spec_file = fs.join(path, "experiment.json")
    if not journal.exists(path) or not fs.exists(spec_file):
        return None
    spec = jsonutil.read(spec_file)
    now = json.loads(jsonutil.dumps({"space": space_lib.space_to_json(config), "metric": settings.metric,
                                         "mode": settings.mode}))
    changes = [line for key in ("space", "metric", "mode") for line in _differences(key, spec.get(key), now[key])]
    if not changes:
        return None
    if not allow:
        listed = "\n".join(f"  {line}" for line in changes)
        raise ExperimentChangedError(
            f"The experiment {path} was run with another search space, metric or mode than this resume asks "
            f"for:\n{listed}\nIts trials would mix two sweeps. Resume it unchanged (tune.resume(path) takes "
            "them from experiment.json), start a new experiment, or accept the change: "
            "tune.resume(path, ..., allow_changes=True).")
    warnings.warn(f"Resuming {path} with changes ({'; '.join(changes)}); experiment.json now records them.",
                  stacklevel=3)
    return {**spec, **now}


def _differences(where: str, old: Any, new: Any) -> list[str]:
    """``where: old -> new`` for each leaf that differs (nested keys as ``space['a']['b']``)."""
    if isinstance(old, dict) and isinstance(new, dict) and not ("__domain__" in old or "__domain__" in new):
        out = []
        for key in list(old) + [k for k in new if k not in old]:
            label = f"{where}[{key!r}]"
            if key not in new:
                out.append(f"{label}: {_shown(old[key])} -> (removed)")
            elif key not in old:
                out.append(f"{label}: (absent) -> {_shown(new[key])}")
            else:
                out.extend(_differences(label, old[key], new[key]))
        return out
    return [] if old == new else [f"{where}: {_shown(old)} -> {_shown(new)}"]


def _shown(value: Any) -> str:
    from tuner.space.domains import space_from_json

    shown = space_from_json(value)
    return repr(shown)


def _warn_not_rebuildable(spec: dict[str, Any], path: str) -> None:
    """Arguments experiment.json cannot hold: say now what ``tune.resume`` will need."""
    flagged = [(where, arg) for key, where in (("scheduler", "scheduler"), ("searcher", "search_alg"))
               for arg in components.not_rebuildable(spec[key], where)]
    stopper = spec["stop"].get(STOPPER) if isinstance(spec.get("stop"), dict) else None
    if stopper is not None:
        flagged += [("stop", arg) for arg in ([f"stop ({stopper[components.NOT_JSON]})"]
                                              if components.NOT_JSON in stopper
                                              else components.not_rebuildable(stopper, "stop"))]
    for where, arg in flagged:
        warnings.warn(f"{arg} is not JSON, so experiment.json records only its repr: to resume {path}, pass "
                      f"the {where} again: tune.resume({path!r}, {where}=...).", stacklevel=3)


def _note_takeover(storage: ExperimentStorage, holder: dict[str, Any]) -> None:
    warnings.warn(f"Took over the lock of {storage.path} from PID {holder.get('pid')} on host "
                  f"{holder.get('host')!r}: {holder['reason']}.", stacklevel=3)
    storage.event(journal.LockTakenOver(holder.get("host"), holder.get("pid"), holder["reason"], time.time()))


def _check_callbacks(callbacks: Any) -> list[Callback]:
    from tuner.compat.callbacks import adapt

    callbacks = list(callbacks or [])
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise ValueError(f"The callback {cb!r} is not a tune.Callback instance.")
    return [adapt(cb) for cb in callbacks]  # Ray Tune-style hooks get Ray's arguments


def _check_picklable(trainable: Any, name: str) -> None:
    """Workers get the trainable by pickle; say which object stops that, before starting."""
    from ray import cloudpickle

    try:
        cloudpickle.dumps(trainable)
    except Exception as exc:  # noqa: BLE001 - rewritten with the culprit
        culprit = _find_unpicklable(trainable)
        raise TypeError(
            f"The trainable {name!r} cannot be sent to the workers because it cannot be pickled: "
            f"{culprit or exc}. Create such objects inside the trainable instead of capturing them."
        ) from exc


def _check_config_picklable(config: Mapping[str, Any]) -> None:
    """Workers get each trial's config by pickle: name the value that stops that, before Ray starts."""
    from ray import cloudpickle

    for path, value in space_lib.constants(config):
        if isinstance(value, (type(None), bool, int, float, str, bytes)):
            continue
        try:
            cloudpickle.dumps(value)
        except Exception as exc:  # noqa: BLE001 - rewritten with the key
            where = "config" + "".join(f"[{p!r}]" for p in path)
            raise TypeError(f"The value of {where} ({type(value).__name__}) cannot be pickled, so it cannot be "
                            f"sent to the workers: {type(exc).__name__}: {exc}. Pass what builds it (a name, a "
                            "path, its arguments) and create it inside the trainable.") from None


def _find_unpicklable(trainable: Any) -> str | None:
    from ray import cloudpickle

    closure = getattr(trainable, "__closure__", None) or ()
    names = getattr(getattr(trainable, "__code__", None), "co_freevars", ())
    candidates = list(zip(names, (c.cell_contents for c in closure)))
    code = getattr(trainable, "__code__", None)
    for global_name in getattr(code, "co_names", ()):
        if global_name in getattr(trainable, "__globals__", {}):
            candidates.append((global_name, trainable.__globals__[global_name]))
    for var, obj in candidates:
        try:
            cloudpickle.dumps(obj)
        except Exception as exc:  # noqa: BLE001
            return f"the captured variable {var!r} ({type(obj).__name__}: {exc})"
    return None


def _tensorboard_callback() -> list[Callback]:
    try:
        import tensorboard  # noqa: F401

        from tuner.tensorboard.export import TensorBoardCallback
    except ImportError:
        return []
    return [TensorBoardCallback()]


def _experiment_path(storage_path: str | None, name: str | None, trainable_name: str,
                     allow_existing: bool = False) -> str:
    """``storage_path/name``; a default name gets a numeric suffix instead of colliding."""
    root = storage_root(storage_path)
    if name is not None:
        path = fs.join(root, name)
        if not allow_existing and journal.exists(path):
            raise ValueError(f"The experiment {path} already exists; pass another `name`, or resume it.")
        return path
    base = fs.join(root, f"{_slug(trainable_name)}_{datetime.datetime.now():%Y-%m-%d_%H-%M-%S}")
    path, n = base, 1
    while fs.exists(path):
        n += 1
        path = f"{base}_{n}"
    return path


def _read_previous_run(path: str, scheduler: TrialScheduler, searcher: Searcher,
                       stopper: Stopper | None = None, metric: Any = None) -> ComponentReplay | None:
    """Trials and scheduler/searcher state of an earlier run in ``path`` (None if there is none):
    the last snapshot, brought up to the end of the journal by replaying what followed it. A
    driver-side ``stopper`` sees again every call it saw, then loads its snapshot entry."""
    if not journal.exists(path):
        return None
    state_file = fs.join(path, "state.json")
    start = 0  # no snapshot: the whole journal is replayed into the new scheduler and searcher
    state = None
    if fs.exists(state_file):
        state = jsonutil.read(state_file, STATE_FIX)
        scheduler.load_state_dict(state["scheduler"])
        searcher.load_state_dict(state["searcher"])
        # version 1 was written after every event: nothing to replay
        start = state["journal_offset"] if state.get("version") == 2 else journal.size(path)
    points = {k: v for k, v in ((state or {}).get("points") or {}).items() if v is not None}
    replay = ComponentReplay(scheduler, searcher, start, stopper, points=points)
    if not fs.is_uri(path):
        replay.last_write = os.path.getmtime(journal.journal_path(path))  # before this driver writes to it
    # read once: the earlier run's lineage comes with it; markers before the snapshot are not decoded
    replayed = journal.replay(path, observer=replay, markers_from=start, metrics=metric_names(metric))
    replay.trials, replay.lineage = replayed.trials, replayed.lineage
    if stopper is not None and state is not None and state.get("stopper") is not None:
        stopper.load_state_dict(state["stopper"])
    replay.callback_states = (state or {}).get("callbacks") or {}
    return replay


def _time_used(path: str, previous: ComponentReplay, stale_lock: dict[str, Any] | None) -> float:
    """Seconds the earlier runs of the experiment took (``time_budget_s`` counts across resumes): the
    previous resume recorded what came before it; the last run went from its start (its resume, or
    ``tune.run`` for the first) to its last sign of life: its last journal write or lock refresh."""
    if previous.resumed is not None:
        start, used = previous.resumed.time, previous.resumed.time_used or 0.0
    else:
        try:
            start = float(jsonutil.read(fs.join(path, "experiment.json")).get("start_time"))
        except (OSError, ValueError, TypeError):
            return 0.0
        used = 0.0
    end = max(previous.last_write or 0.0, float((stale_lock or {}).get("refreshed") or 0.0))
    return used + max(0.0, end - start)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "experiment"


def _check_runtime_env(runtime_env: Any) -> dict[str, Any] | None:
    """A dict Ray understands, with a local ``working_dir`` made absolute (resume ships the same code)."""
    if runtime_env is None:
        return None
    if not isinstance(runtime_env, Mapping):
        raise ValueError(f"The value of `runtime_env` is {runtime_env!r}, but must be a dict such as "
                         "{'working_dir': '.', 'pip': ['torch==2.13.0']}.")
    env = dict(runtime_env)
    wd = env.get("working_dir")
    if isinstance(wd, str) and "://" not in wd:
        if not os.path.isdir(os.path.expanduser(wd)):
            raise ValueError(f"runtime_env['working_dir'] is {wd!r}, which is not a directory here "
                             f"(relative paths start from {os.getcwd()}).")
        env["working_dir"] = os.path.abspath(os.path.expanduser(wd))
    return env


def _spec(trainable, trainable_name, config, settings: RunSettings, scheduler, searcher) -> dict[str, Any]:
    from tuner.space import config as space

    return {
        "version": 1, "trainable": trainable_name, "trainable_import": import_path(trainable),
        "metric": settings.metric, "mode": settings.mode,
        "num_samples": settings.num_samples, "space": space.space_to_json(config),
        "stop": describe_stop(settings.stop),
        "resources_per_trial": settings.resources.to_json(), "seed": settings.seed,
        "max_concurrent_trials": settings.max_concurrent_trials, "time_budget_s": settings.time_budget_s,
        "max_failures": settings.max_failures, "checkpoint_freq": settings.checkpoint_freq,
        "checkpoint_at_end": settings.checkpoint_at_end, "keep_checkpoints_num": settings.keep_checkpoints_num,
        "checkpoint_score_attr": settings.checkpoint_score_attr,
        "scheduler": components.describe(scheduler, searcher), "searcher": components.describe(searcher),
        "start_time": time.time(),
    }
