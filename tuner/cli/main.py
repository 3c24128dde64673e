"""``tuner``: launch, list, inspect, resume and visualize sweeps from the shell.

    tuner sweep examples/quadratic_asha.yaml
    tuner ls
    tuner show ~/tuner_results/quadratic-asha --best
    tuner tensorboard ~/tuner_results/quadratic-asha
    tuner submit sweep.yaml --address http://HEAD:8265   # the driver runs on the cluster

Exit codes: 0 success, 1 some trials failed (``--raise-on-failed``, the
default), 2 bad usage or a bad sweep file, 130 interrupted (Ctrl-C). ``ls`` and
``show`` read JSON only: they never unpickle anything.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from typing import Any

import click

from tuner import __version__
from tuner.cli.launch import EXIT_INTERRUPTED, BadInput

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="tuner")
def main() -> None:
    """Hyperparameter sweeps on Ray, from the shell.

    \b
    Examples:
      tuner sweep examples/quadratic_asha.yaml --dry-run
      tuner sweep examples/quadratic_asha.yaml --set num_samples=4
      tuner run examples.quadratic:train --config '{"x": {"uniform": [-5, 5]}, "y": 0, "steps": 10}' \\
          --metric loss --mode min --num-samples 8
      tuner ls
      tuner show ~/tuner_results/quadratic-asha --best
      tuner resume ~/tuner_results/quadratic-asha
      tuner tensorboard ~/tuner_results/quadratic-asha

    Exit codes: 0 success, 1 some trials failed, 2 bad usage or sweep file, 130 interrupted.
    """


_ADDRESS = click.option("--address", help="Ray cluster to join ('auto': the running one). Default: start a local Ray.")
_RAISE_ON_FAILED = click.option("--raise-on-failed/--no-raise-on-failed", default=True, show_default=True,
                                help="Exit with code 1 when some trials failed.")
_QUIET = click.option("-q", "--quiet", is_flag=True, help="No live table and summary.")


def _launch_options(fn):
    options = [
        _ADDRESS,
        click.option("--name", help="Experiment name (default: the file's `name`, else trainable and time)."),
        click.option("--storage", type=click.Path(file_okay=False),
                     help="Where experiments go (default: $TUNER_STORAGE_PATH or ~/tuner_results)."),
        click.option("--num-samples", type=click.IntRange(min=1), help="Samples drawn (times the grid)."),
        click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                     help="Override a setting by key path, value read as YAML; repeatable "
                          "(--set scheduler.asha.max_t=30 --set 'config.lr={choice: [0.1, 0.01]}')."),
        click.option("--dry-run", is_flag=True, help="Validate and print the first configs; run nothing."),
        _RAISE_ON_FAILED,
        _QUIET,
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@main.command(context_settings=CONTEXT)
@click.argument("sweep_file", metavar="SWEEP.yaml", type=click.Path(dir_okay=False))
@_launch_options
def sweep(sweep_file: str, **options: Any) -> None:
    """Run the sweep described in SWEEP.yaml.

    The trainable (`module:function`) is imported from the working directory.
    Settings on the command line override the file's.

    \b
    Examples:
      tuner sweep examples/quadratic_asha.yaml
      tuner sweep examples/mlp_asha.yaml --dry-run
      tuner sweep examples/mlp_asha.yaml --name mlp-small --set num_samples=4 --set config.epochs=3
      tuner sweep sweep.yaml --address auto --storage /shared/results

    \b
    The file (every key but `trainable` is optional):
      name: mlp-asha
      trainable: examples.mlp:train
      metric: acc
      mode: max
      num_samples: 32
      config:
        lr: {loguniform: [1.0e-4, 1.0e-1]}
        layers: {choice: [2, 3, 4]}
        batch_size: {choice: [32, 64]}
        epochs: 20
      scheduler: {asha: {max_t: 20, grace_period: 1, reduction_factor: 3}}
      search: {optuna: {seed: 0}}
      resources_per_trial: {cpu: 1, gpu: 0.25}
      stop: {training_iteration: 20}

    \b
    Schedulers: fifo, asha, hyperband, median, pbt, pb2; searchers: random, optuna,
    hyperopt; domains: uniform, quniform, loguniform, qloguniform, randn, randint,
    qrandint, lograndint, choice, grid_search, sample_from (`module:function`).
    Also tune.run's max_concurrent_trials, time_budget_s, max_failures, seed, checkpoint_freq,
    checkpoint_at_end, keep_checkpoints_num, checkpoint_score_attr, log_to_tensorboard,
    reuse_actors, storage_path, runtime_env, and in_process (`in_process: true` runs the
    trials in threads of this process, without Ray).
    """
    from tuner.cli.launch import launch
    from tuner.cli.sweep_schema import SweepError, read_yaml

    try:
        raw = read_yaml(sweep_file)
    except SweepError as exc:
        raise BadInput(str(exc)) from None
    launch(raw, sweep_file, options)


def _json_option(value: str | None, option: str, expect: type = dict) -> Any:
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{option}: not valid JSON: {exc}") from None
    if not isinstance(parsed, expect):
        raise BadInput(f"{option}: expected a JSON object, got {value}")
    return parsed


def _yaml_option(value: str | None, option: str) -> Any:
    import yaml

    if value is None:
        return None
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError as exc:
        raise BadInput(f"{option}: not valid YAML or JSON: {exc}") from None


@main.command("run", context_settings=CONTEXT)
@click.argument("trainable", metavar="MODULE:FUNCTION|rllib:ALGO")
@click.option("--config", "config_json", metavar="JSON", default="{}",
              help='The search space as JSON, domains as in sweep files: \'{"lr": {"loguniform": [1e-4, 0.1]}}\'.')
@click.option("--metric", help="The result key to optimize.")
@click.option("--mode", type=click.Choice(["min", "max"]), help="Minimize or maximize the metric.")
@click.option("--scheduler", metavar="SPEC", help="A name, or YAML/JSON: 'asha' or '{asha: {max_t: 20}}'.")
@click.option("--search", metavar="SPEC", help="A name, or YAML/JSON: 'optuna' or '{optuna: {seed: 0}}'.")
@click.option("--stop", metavar="JSON", help='Stop criteria: \'{"training_iteration": 10}\'.')
@click.option("--resources", metavar="JSON", help='Resources per trial: \'{"cpu": 1, "gpu": 0.5}\'.')
@click.option("--seed", type=int, help="Makes the configs and the trials' seeds reproducible.")
@_launch_options
def run_command(trainable: str, config_json: str, metric: str | None, mode: str | None, scheduler: str | None,
                search: str | None, stop: str | None, resources: str | None, seed: int | None,
                **options: Any) -> None:
    """A quick sweep of MODULE:FUNCTION (or an RLlib algorithm, rllib:PPO) without a sweep file.

    \b
    Examples:
      tuner run examples.quadratic:train --metric loss --mode min --num-samples 8 \\
          --config '{"x": {"uniform": [-5, 5]}, "y": {"uniform": [-5, 5]}, "steps": 10}'
      tuner run examples.quadratic:train --metric loss --mode min --scheduler asha \\
          --set scheduler.asha.max_t=10 --config '{"x": {"choice": [1, 2, 3]}, "y": 0, "steps": 10}'
      tuner run rllib:PPO --config '{"env": "CartPole-v1", "lr": {"loguniform": [1e-5, 1e-3]}}' \\
          --stop '{"training_iteration": 30}' --metric env_runners/episode_return_mean --mode max
    """
    from tuner.cli.launch import launch

    raw: dict[str, Any] = {"trainable": trainable, "config": _json_option(config_json, "--config")}
    for key, value in (("metric", metric), ("mode", mode), ("scheduler", _yaml_option(scheduler, "--scheduler")),
                       ("search", _yaml_option(search, "--search")), ("stop", _json_option(stop, "--stop")),
                       ("resources_per_trial", _json_option(resources, "--resources")), ("seed", seed)):
        if value is not None:
            raw[key] = value
    launch(raw, "tuner run", options)


@main.command(context_settings=CONTEXT)
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False))
@_ADDRESS
@_RAISE_ON_FAILED
@_QUIET
@click.option("--errored", type=click.Choice(["keep", "resume", "restart"]), default="keep", show_default=True,
              help="Failed trials: keep them failed, run them again from their latest checkpoint, or from scratch.")
@click.option("--skip-unfinished", is_flag=True,
              help="End the unfinished trials as they are (TERMINATED) instead of continuing them.")
def resume(directory: str, **options: Any) -> None:
    """Continue the interrupted sweep in DIR.

    Finished trials stay finished; the others restart from their latest
    checkpoint; the scheduler and searcher pick up where they were. Run it from
    the directory the sweep was started in (the trainable is imported again).
    --errored and --skip-unfinished are Ray Tune's Tuner.restore(resume_errored=,
    restart_errored=, resume_unfinished=).

    \b
    Examples:
      tuner resume ~/tuner_results/mlp-asha
      tuner resume results/mlp-asha --address auto
      tuner resume results/mlp-asha --errored restart
    """
    from tuner.cli.launch import resume as resume_sweep

    resume_sweep(directory, options)


@main.command(context_settings=CONTEXT)
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False))
def repair(directory: str) -> None:
    """Drop the damaged lines of DIR's journal so it can be loaded and resumed again.

    A line that is not a complete, valid record (a torn last line, bytes
    damaged in the middle) is dropped; the journal is first copied to
    journal.jsonl.bak-<time>. Prints every line dropped and the trials whose
    records were lost (their ids are never given to new trials).

    \b
    Examples:
      tuner repair ~/tuner_results/mlp-asha
    """
    from tuner.storage import journal
    from tuner.storage.lock import ExperimentLock, ExperimentLockedError

    path = os.path.abspath(os.path.expanduser(directory))
    if not journal.exists(path):
        raise BadInput(f"{path} is not an experiment directory (no {journal.JOURNAL} in it)")
    try:
        with ExperimentLock(path):
            report = journal.repair(path)
    except (ExperimentLockedError, journal.JournalError) as exc:
        raise BadInput(str(exc)) from None
    if not report.dropped:
        click.echo(f"{report.journal}: all {report.kept} lines are valid records; nothing to repair.")
        return
    click.echo(f"{report.journal}: kept {report.kept} lines, dropped {len(report.dropped)} "
               f"(backup: {report.backup}):")
    for number, why, start in report.dropped:
        click.echo(f"  line {number}: {why}: {start!r}")
    if report.orphaned:
        click.echo(f"Trials whose creation record was dropped (their other records are ignored, their ids are "
                   f"not reused): {', '.join(report.orphaned)}")


@main.command("ls", context_settings=CONTEXT)
@click.argument("storage", required=False, type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def ls_command(storage: str | None, fmt: str) -> None:
    """List the experiments in STORAGE.

    One line each: status, trials per status, best metric, start time.
    STORAGE defaults to $TUNER_STORAGE_PATH, else ~/tuner_results. Status is
    running (a live driver holds its lock), finished, interrupted, unfinished
    (its driver was killed), or damaged (a file cannot be read; the message names it).

    \b
    Examples:
      tuner ls
      tuner ls results/ --format json
    """
    from tuner.cli.show import InspectError, cell, find_experiments, summarize, table, to_json
    from tuner.storage import fs
    from tuner.storage.experiment import storage_root

    root = storage_root(storage)
    try:
        summaries = [summarize(path) for path in find_experiments(root)]
    except InspectError as exc:
        raise BadInput(str(exc)) from None
    summaries.sort(key=lambda s: s["start_time"])
    if fmt == "json":
        click.echo(to_json(summaries))
        return
    if not summaries:
        click.echo(f"No experiments in {fs.normalize(root)}.")
        return
    rows = [{"name": s["name"], "status": s["status"], "trials": "" if s["trials"] is None else s["trials"],
             "per status": ", ".join(f"{n} {k.lower()}" for k, n in s["counts"].items()),
             "best": "" if s["best_value"] is None else f"{s['metric']}={cell(s['best_value'])} ({s['mode']})",
             "best trial": s["best_trial"], "started": s["start_time"]} for s in summaries]
    _console().print(table(rows, list(rows[0]), title=fs.normalize(root)))
    for s in summaries:
        if s["status"] == "damaged":
            click.secho(f"{s['name']}: {s['problem']}", fg="yellow", err=True)


@main.command(context_settings=CONTEXT)
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False))
@click.option("--trials", "view", flag_value="trials", help="Only the trials (the default adds a header).")
@click.option("--best", "view", flag_value="best", help="The best trial: config, last result, checkpoint.")
@click.option("--lineage", "view", flag_value="lineage", help="PBT exploits: time, recipient, donor, configs, scores.")
@click.option("--sort", "sort_key", metavar="COLUMN",
              help="Sort trials by a column, best first for the metric, ascending otherwise (-COLUMN: descending).")
@click.option("--columns", multiple=True, metavar="A,B,...", help="Columns to show (trial_id,status,config/lr,acc).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--metric", help="Rank by this result key instead of the experiment's metric.")
@click.option("--mode", type=click.Choice(["min", "max"]), help="With --metric.")
@click.option("--limit", type=click.IntRange(min=0), default=100, show_default=True,
              help="Rows of the table (0: all); csv and json list every trial.")
def show(directory: str, view: str | None, sort_key: str | None, columns: tuple[str, ...], fmt: str,
         metric: str | None, mode: str | None, limit: int) -> None:
    """One experiment's trials, its best trial, or its PBT lineage.

    \b
    Examples:
      tuner show ~/tuner_results/mlp-asha
      tuner show ~/tuner_results/mlp-asha --best --format json
      tuner show ~/tuner_results/mlp-asha --trials --sort acc --columns trial_id,config/lr,acc
      tuner show ~/tuner_results/pbt-cartpole --lineage --format csv
    """
    from tuner.cli.show import Experiment, InspectError, render
    from tuner.storage.journal import JournalError
    from tuner.storage.jsonio import DamagedFileError

    try:
        render(Experiment(directory, metric, mode), view, sort_key, _split(columns), fmt, _console(), limit)
    except (InspectError, DamagedFileError, JournalError) as exc:
        raise BadInput(str(exc)) from None


def _split(columns: tuple[str, ...]) -> list[str]:
    return [c.strip() for item in columns for c in item.split(",") if c.strip()]


def _console():
    from rich.console import Console

    # Off a terminal (pipes, CI logs) rich would squeeze tables into 80 columns.
    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=max(console.width, 160))
    return console


# --- tensorboard ----------------------------------------------------------------------------------


@main.command(context_settings=CONTEXT)
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(0, 65535), default=6006, show_default=True,
              help="Port; when it is taken (or 0), a free one.")
def tensorboard(directory: str, host: str, port: int) -> None:
    """Serve TensorBoard on the experiment in DIR.

    Prints the address of its HParams view once it is up; stops with Ctrl-C.

    \b
    Examples:
      tuner tensorboard ~/tuner_results/mlp-asha
      tuner tensorboard ~/tuner_results/mlp-asha --port 6007 --host 0.0.0.0
    """
    from tuner.storage import fs

    path = fs.normalize(directory)
    logdir = fs.join(path, "tensorboard")
    if not fs.isdir(logdir):
        raise BadInput(f"{path}: no TensorBoard logs ({logdir} does not exist); sweeps write them when the "
                       "`tensorboard` package is installed and log_to_tensorboard is on")
    if fs.is_uri(logdir):  # TensorBoard reads files: a local copy of the event files, refreshed at each start
        mirror = fs.Mirror(logdir, fs.local_staging_dir(logdir) + "_view")
        mirror.pull()
        click.echo(f"Copied the event files of {logdir} to {mirror.local}.")
        logdir = mirror.local
    try:
        import tensorboard as _tb  # noqa: F401
    except ImportError:
        raise BadInput("TensorBoard is not installed: pip install 'tuner[tensorboard]'") from None
    port = _free_port(host, port)
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", logdir, "--host", host, "--port", str(port)]
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL)  # its own log goes to our stderr
    try:
        if not _wait_for_port(host, port, proc):
            raise click.ClickException(f"TensorBoard exited with code {proc.returncode} before serving")
        shown = "localhost" if host in ("0.0.0.0", "::") else host
        click.echo(f"TensorBoard: http://{shown}:{port}/#hparams   (logdir {logdir}; Ctrl-C to stop)")
        code = proc.wait()
        if code:
            raise click.ClickException(f"TensorBoard exited with code {code}")
    except KeyboardInterrupt:
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _free_port(host: str, port: int) -> int:
    """``port`` if it can be bound on ``host``, else one the OS picks."""
    for candidate in ([port] if port else []) + [0]:
        with socket.socket() as sock:
            try:
                sock.bind((host, candidate))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise BadInput(f"--host {host}: cannot bind any port on it")


def _wait_for_port(host: str, port: int, proc: subprocess.Popen, timeout: float = 120.0) -> bool:
    target = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection((target, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.2)
    return proc.poll() is None


def _register_job_commands() -> None:
    from tuner.cli import jobs  # click and the tuner only; Ray is imported when a job command runs

    for command in jobs.COMMANDS:
        main.add_command(command)


_register_job_commands()

if __name__ == "__main__":
    main()
