"""Launching a sweep from the shell: the trainable imported from the working directory,
``--dry-run`` previews, ``tune.run`` / ``tune.resume``, exit codes, what to run next.

Exit codes: 0 success, 1 some trials failed (``--raise-on-failed``), 2 bad usage
or bad sweep file, 130 interrupted.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import shlex
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import click

from tuner.cli.sweep_schema import SweepError, show

EXIT_FAILED_TRIALS, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


class BadInput(click.ClickException):
    """Bad usage or a bad sweep file: ``Error: <message>`` on stderr, exit code 2."""

    exit_code = EXIT_USAGE


def cwd_on_path() -> None:
    """Trainables are imported relative to the working directory, as ``python -m`` would."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def import_trainable(path: str, label: str) -> Any:
    """The trainable at ``module:function`` (``rllib:NAME`` stays the name of an RLlib algorithm); any
    failure is a BadInput naming the file and key."""
    from tuner.integrations.adapted import is_rllib
    from tuner.import_path import import_object
    from tuner.runtime.trainable import validate_trainable

    cwd_on_path()
    try:
        trainable = import_object(path)
    except ModuleNotFoundError as exc:
        raise BadInput(f"{label}: trainable: cannot import {path!r}: {exc} (imports are resolved from the "
                       f"working directory {os.getcwd()})") from None
    except AttributeError as exc:
        raise BadInput(f"{label}: trainable: cannot import {path!r}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the module itself raised while importing
        raise BadInput(f"{label}: trainable: importing {path!r} raised {type(exc).__name__}: {exc}") from None
    if is_rllib(trainable):
        return trainable
    try:
        validate_trainable(trainable)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"{label}: trainable: {exc}") from None
    return trainable


def resolve_adapted(trainable: Any, kwargs: dict[str, Any], label: str) -> Any:
    """An RLlib algorithm named in the file becomes its trainable, search space and resources now, so that
    --dry-run shows them and a mistake is a BadInput."""
    from tuner.integrations.adapted import resolve_trainable

    try:
        trainable, kwargs["config"], resources = resolve_trainable(
            trainable, kwargs.get("config"), kwargs.get("resources_per_trial"))
    except (ValueError, TypeError, ImportError) as exc:
        raise BadInput(f"{label}: trainable: {exc}") from None
    from tuner.execution.resources import trainable_resources

    resources = trainable_resources(trainable, resources)
    if resources is not None:
        kwargs["resources_per_trial"] = resources
    return trainable


def experiment_path(kwargs: dict[str, Any], trainable: Any) -> str:
    """Fix the experiment's directory now, so an interruption can say what to resume."""
    from tuner.api import _experiment_path

    storage, name = kwargs.pop("storage_path", None), kwargs.pop("name", None)
    try:
        path = _experiment_path(storage, name, getattr(trainable, "__name__", "experiment"))
    except ValueError:
        from tuner.storage import fs
        from tuner.storage.experiment import storage_root

        existing = fs.join(storage_root(storage), name)
        raise BadInput(f"the experiment {existing} already exists; pass another --name, or continue it: "
                       f"tuner resume {shlex.quote(existing)}") from None
    from tuner.storage import fs

    path = fs.normalize(path)
    kwargs["storage_path"], kwargs["name"] = fs.dirname(path), fs.basename(path)
    return path


@contextlib.contextmanager
def exit_codes(path: str, label: str) -> Iterator[None]:
    """tune.run's outcomes as exit codes; what to run next is printed either way."""
    from tuner.api import TuneError
    from tuner.storage.lock import ExperimentLockedError, StorageNotWritableError

    _terminate_as_interrupt()
    _second_interrupt_exits(path)
    try:
        yield
    except KeyboardInterrupt:
        click.echo(f"\nInterrupted. Continue the sweep with:\n  tuner resume {shlex.quote(path)}", err=True)
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    except TuneError as exc:
        click.secho(f"Error: {exc}", fg="red", err=True)
        next_steps(path)
        raise click.exceptions.Exit(EXIT_FAILED_TRIALS) from None
    except (ValueError, TypeError) as exc:  # tune.run checks everything before it starts
        raise BadInput(f"{label}: {exc}") from None
    except (ExperimentLockedError, StorageNotWritableError) as exc:
        raise BadInput(str(exc)) from None


def _terminate_as_interrupt() -> None:
    """SIGTERM (``tuner stop`` of a job, ``kill``, a scheduler's preemption) ends the sweep as
    Ctrl-C does: trials are stopped, the experiment stays resumable, the exit code is 130."""
    import signal
    import threading

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


def _second_interrupt_exits(path: str) -> None:
    """Ctrl-C once: the sweep stops gracefully (KeyboardInterrupt: trials stopped, files closed). Ctrl-C
    again while that runs: stop now. The processes this driver started (a local Ray: its raylet, GCS,
    agents, workers) are killed and it exits 130, without a traceback; the journal is flushed record by
    record and the next driver takes the lock over, so the experiment stays resumable."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    interrupts = {"n": 0}

    def on_interrupt(signum: int, frame: Any) -> None:
        interrupts["n"] += 1
        if interrupts["n"] == 1:
            raise KeyboardInterrupt
        with contextlib.suppress(Exception):
            sys.stderr.write(f"\nInterrupted again: stopping now. Continue the sweep with:\n"
                             f"  tuner resume {shlex.quote(path)}\n")
            sys.stderr.flush()
            sys.stdout.flush()
        kill_descendants()
        os._exit(EXIT_INTERRUPTED)

    signal.signal(signal.SIGINT, on_interrupt)


def kill_descendants() -> None:
    """SIGKILL every process below this one (read from /proc; nothing to do where there is none)."""
    import signal

    children: dict[int, list[int]] = {}
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            ppid = int(stat[stat.rfind(b")") + 2:].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    todo, found = [os.getpid()], []
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    for pid in found:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def next_steps(path: str) -> None:
    quoted = shlex.quote(path)
    click.echo("\nNext:")
    click.echo(f"  tuner show {quoted} --best     # the best trial, its config and checkpoint")
    click.echo(f"  tuner tensorboard {quoted}     # TensorBoard's HParams view of the sweep")
    click.echo(f"  tuner resume {quoted}          # continue it, if it was interrupted")


def launch(raw: dict[str, Any], label: str, options: Mapping[str, Any]) -> None:
    """Validate ``raw`` (a sweep file's mapping) with the command line applied, then run or preview it."""
    from tuner.cli import sweep_schema as sweep_file
    for key, option in (("name", "name"), ("storage_path", "storage"), ("num_samples", "num_samples")):
        if options.get(option) is not None:
            raw[key] = options[option]
    try:
        for item in options.get("overrides") or ():
            sweep_file.apply_override(raw, item)
        sweep, kwargs = sweep_file.validate(raw, label)
    except SweepError as exc:
        raise BadInput(str(exc)) from None
    trainable = import_trainable(sweep.trainable, label)
    trainable = resolve_adapted(trainable, kwargs, label)
    path = experiment_path(kwargs, trainable)
    if options.get("dry_run"):
        preview(sweep.trainable, kwargs, path, label)
        return
    import tuner as tune

    with exit_codes(path, label):
        tune.run(trainable, address=options.get("address"), verbose=0 if options.get("quiet") else 2,
                 raise_on_failed_trial=options.get("raise_on_failed", True), **kwargs)
    click.echo(f"\nExperiment: {path}")
    next_steps(path)


def resume(directory: str, options: Mapping[str, Any]) -> None:
    from tuner.resuming import resume as resume_experiment

    from tuner.storage import fs

    cwd_on_path()
    path = fs.normalize(directory)
    with exit_codes(path, path):
        try:
            errored = options.get("errored") or "keep"
            resume_experiment(path, address=options.get("address"), verbose=0 if options.get("quiet") else 2,
                              raise_on_failed_trial=options.get("raise_on_failed", True),
                              resume_unfinished=not options.get("skip_unfinished"),
                              resume_errored=errored == "resume", restart_errored=errored == "restart")
        except FileNotFoundError as exc:
            raise BadInput(str(exc)) from None
        except (ImportError, AttributeError) as exc:
            raise BadInput(f"{path}: cannot import the trainable again: {exc} (it is imported from the "
                           f"working directory {os.getcwd()}: run `tuner resume` where the sweep was "
                           "started)") from None
    click.echo(f"\nExperiment: {path}")
    next_steps(path)


# --- --dry-run ----------------------------------------------------------------------------------


def preview(trainable: str, kwargs: dict[str, Any], path: str, label: str, count: int = 5) -> None:
    """What the sweep would do, and its first configs drawn by its own searcher; nothing runs."""
    from rich.console import Console
    from rich.table import Table

    from tuner.run_arguments import check_arguments, scheduler_or_default, searcher_or_default
    from tuner.space import config as space
    from tuner.storage.experiment import flatten

    try:
        check_arguments(**{**kwargs, "verbose": 1})
        scheduler = scheduler_or_default(kwargs.get("scheduler"))
        searcher = searcher_or_default(kwargs.get("search_alg"))
        scheduler.set_search_properties(kwargs.get("metric"), kwargs.get("mode"))
        searcher.set_search_properties(kwargs.get("metric"), kwargs.get("mode"), kwargs["config"],
                                       num_samples=kwargs.get("num_samples", 1), seed=kwargs.get("seed"))
        total = searcher.max_trials(kwargs.get("num_samples", 1))
        if total is None:
            total = kwargs.get("num_samples", 1) * space.count_variants(kwargs["config"])
        configs = []
        for i in range(min(count, total)):
            config = searcher.suggest(f"preview_{i:05d}")
            if not isinstance(config, dict):
                break
            configs.append(config)
    except (ValueError, TypeError) as exc:
        raise BadInput(f"{label}: {exc}") from None

    console = Console(highlight=False, soft_wrap=True)
    metric = kwargs.get("metric")
    console.print(f"{label}: valid; nothing was run (--dry-run).")
    for key, value in (("trainable", trainable), ("trials", total),
                       ("metric", f"{metric} ({kwargs.get('mode')})" if metric else "none"),
                       ("scheduler", _component(scheduler)), ("searcher", _component(searcher)),
                       ("resources", show(kwargs.get("resources_per_trial") or {"cpu": 1}) + " per trial"),
                       ("stop", show(kwargs.get("stop"))), ("experiment", path)):
        console.print(f"  {key:<11}{value}")
    flat = [flatten(c) for c in configs]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    table = Table(title=f"First {len(configs)} of {total} configs", title_justify="left", show_edge=False,
                  pad_edge=False, header_style="bold")
    for key in ["#", *keys]:
        table.add_column(key, justify="right")
    for i, f in enumerate(flat):
        table.add_row(str(i), *[f"{f[k]:.4g}" if isinstance(f.get(k), float) else str(f.get(k, "")) for k in keys])
    console.print(table)


def _component(obj: Any) -> str:
    """``ASHAScheduler(max_t=20, reduction_factor=3)``: the arguments that differ from the defaults."""
    try:
        defaults = {k: p.default for k, p in inspect.signature(type(obj)).parameters.items()}
    except (TypeError, ValueError):
        defaults = {}
    empty = (None, [], {}, ())
    params = {k: v for k, v in obj.get_params().items() if k in defaults and defaults[k] != v
              and not (v in empty and defaults[k] in empty) and k not in ("metric", "mode")}
    return f"{type(obj).__name__}({', '.join(f'{k}={v!r}' for k, v in params.items())})"
