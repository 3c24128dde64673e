"""``tuner submit / logs / status / stop``: a sweep's driver run on the cluster as a Ray job.

The laptop submits and may close: the driver runs on the cluster through Ray's Job
Submission API (the dashboard's HTTP address, ``http://HEAD:8265``), with the working
directory (where the trainable's module lives) and the tuner itself shipped through
Ray's ``runtime_env``. Clusters started with ``ray start`` (Ray 2.60) ask for a token:
it is read from ``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``,
and a missing one is named with the fix. Ray is imported only here, only when asked.
"""

from __future__ import annotations

import datetime
import os
import shlex
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from tuner.cli.launch import BadInput

ADDRESS_ENV = ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS")
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


def _token_available() -> bool:
    if os.environ.get("RAY_AUTH_TOKEN"):
        return True
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or str(Path.home() / ".ray" / "auth_token")
    return os.path.isfile(path)


def dashboard_address(address: str | None) -> str:
    """The dashboard's HTTP address: the option, else $RAY_API_SERVER_ADDRESS or an http $RAY_ADDRESS."""
    for candidate in (address, *(os.environ.get(name) for name in ADDRESS_ENV)):
        if candidate and candidate.startswith(("http://", "https://")):
            return candidate.rstrip("/")
        if candidate and address:
            raise BadInput(f"--address {address!r}: jobs are submitted to the Ray dashboard's HTTP address, "
                           "e.g. --address http://HEAD:8265 (not the GCS address host:6379)")
    raise BadInput("no cluster given: pass --address http://HEAD:8265 (the Ray dashboard) or set "
                   "RAY_API_SERVER_ADDRESS")


def client(address: str | None) -> Any:
    """A JobSubmissionClient, with token authentication switched on when a token is at hand."""
    url = dashboard_address(address)
    if "RAY_AUTH_MODE" not in os.environ and _token_available():
        os.environ["RAY_AUTH_MODE"] = "token"  # read by Ray when it is imported, just below
    try:
        from ray.exceptions import AuthenticationError
        from ray.job_submission import JobSubmissionClient
    except ImportError as exc:
        raise BadInput(f"tuner submit needs Ray's job submission client: pip install 'tuner[jobs]' ({exc})") from None
    try:
        return JobSubmissionClient(url)
    except AuthenticationError:
        raise BadInput(
            f"the cluster at {url} asks for an authentication token and none was found. Set RAY_AUTH_TOKEN "
            "to the cluster's token (on the head node: `ray get-auth-token`), or write it to ~/.ray/auth_token "
            "(or a file named by RAY_AUTH_TOKEN_PATH), then run this again.") from None
    except ConnectionError as exc:
        raise BadInput(f"no Ray dashboard answers at {url}: {exc}. Is the cluster up, and started with "
                       "the dashboard (ray[default] installed, `ray start --head --dashboard-host ...`)?") from None


def _experiment_name(raw: Mapping[str, Any], sweep_file: str, name: str | None) -> str:
    if name or raw.get("name"):
        return str(name or raw["name"])
    return f"{Path(sweep_file).stem}-{datetime.datetime.now():%Y%m%d-%H%M%S}"


def _storage(raw: Mapping[str, Any], storage: str | None) -> str:
    """Where the experiment goes on the cluster: absolute or a URI (a relative path would land
    in the job's temporary copy of the working directory and vanish with it)."""
    value = storage or raw.get("storage_path") or "~/tuner_results"
    if "://" not in value and not value.startswith(("/", "~")):
        raise BadInput(f"storage {value!r} is relative: on the cluster it would be inside the job's temporary "
                       "working directory. Pass --storage /shared/results (reachable from every node) or a URI.")
    return value


def _tuner_modules() -> list[str]:
    """The tuner's own packages, shipped so the cluster runs the same version as the submitter."""
    import schedulers
    import searchers
    import tuner

    return [os.path.dirname(m.__file__) for m in (tuner, schedulers, searchers)]


def submit_sweep(sweep_file: str | None, resume_dir: str | None, options: Mapping[str, Any]) -> None:
    """Check the sweep here, then submit its driver as a Ray job and return at once."""
    from tuner.cli.sweep_schema import SweepError, apply_override, read_yaml, validate

    if (sweep_file is None) == (resume_dir is None):
        raise BadInput("give a sweep file to start (tuner submit sweep.yaml) or --resume DIR to continue one")
    working_dir = os.path.abspath(options.get("working_dir") or ".")
    runtime_env: dict[str, Any] = {}
    if sweep_file is not None:
        try:
            raw = read_yaml(sweep_file)
            for item in options.get("overrides") or ():
                apply_override(raw, item)
            validate(dict(raw, runtime_env=None), sweep_file)  # every error before anything is sent
        except SweepError as exc:
            raise BadInput(str(exc)) from None
        rel = os.path.relpath(os.path.abspath(sweep_file), working_dir)
        if rel.startswith(".."):
            raise BadInput(f"{sweep_file} is outside the working directory {working_dir} that is shipped to the "
                           "cluster: move it there or pass --working-dir")
        runtime_env.update(raw.get("runtime_env") or {})
        name, storage = _experiment_name(raw, sweep_file, options.get("name")), _storage(raw, options.get("storage"))
        experiment = f"{storage.rstrip('/')}/{name}"
        command = ["python", "-m", "tuner.cli", "sweep", rel, "--address", "auto", "--name", name,
                   "--storage", storage, "--set", "runtime_env=null"]
        command += [arg for item in options.get("overrides") or () for arg in ("--set", item)]
    else:
        experiment = resume_dir
        command = ["python", "-m", "tuner.cli", "resume", resume_dir, "--address", "auto"]
    runtime_env["working_dir"] = working_dir
    if options.get("pip"):
        runtime_env["pip"] = list(runtime_env.get("pip") or []) + list(options["pip"])
    if options.get("ship_tuner", True):
        runtime_env["py_modules"] = list(runtime_env.get("py_modules") or []) + _tuner_modules()
    jobs = client(options.get("address"))
    entrypoint = " ".join(shlex.quote(part) for part in command)
    job_id = _submit(jobs, entrypoint=entrypoint, runtime_env=runtime_env, metadata={"tuner_experiment": experiment})
    address = dashboard_address(options.get("address"))
    click.echo(f"Submitted job {job_id}")
    click.echo(f"Experiment: {experiment}  (on the cluster)")
    click.echo("\nNext:")
    for line in (f"tuner logs {job_id} --address {address} --follow",
                 f"tuner status {job_id} --address {address}",
                 f"tuner stop {job_id} --address {address}       # resumable: tuner submit --resume {experiment}"):
        click.echo(f"  {line}")


def _submit(jobs: Any, timeout_s: float = 300.0, **job: Any) -> str:
    """Submit, waiting out a cluster whose job agent is still starting (Ray answers 500 then)."""
    deadline = time.monotonic() + timeout_s
    told = False
    while True:
        try:
            return jobs.submit_job(**job)
        except RuntimeError as exc:
            if "No available agent" not in str(exc) or time.monotonic() > deadline:
                raise BadInput(f"the cluster refused the job: {exc}") from None
            if not told:
                click.echo("The cluster's job agent is not up yet; waiting for it...", err=True)
                told = True
            time.sleep(2.0)


def logs(job_id: str, address: str | None, follow: bool) -> None:
    jobs = client(address)
    _known(jobs, job_id)
    if not follow:
        click.echo(jobs.get_job_logs(job_id), nl=False)
        return
    import asyncio

    async def tail() -> None:
        async for chunk in jobs.tail_job_logs(job_id):
            click.echo(chunk, nl=False)

    asyncio.run(tail())


def status(job_id: str, address: str | None) -> str:
    jobs = client(address)
    info = _known(jobs, job_id)
    status_name = str(getattr(info.status, "value", info.status))
    click.echo(f"Job {job_id}: {status_name}")
    if (info.metadata or {}).get("tuner_experiment"):
        click.echo(f"Experiment: {info.metadata['tuner_experiment']}")
    if info.message:
        click.echo(f"Message: {info.message}")
    click.echo(f"Entrypoint: {info.entrypoint}")
    return status_name


def stop(job_id: str, address: str | None, timeout_s: float = 60.0) -> None:
    jobs = client(address)
    info = _known(jobs, job_id)
    jobs.stop_job(job_id)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = str(getattr(jobs.get_job_status(job_id), "value", ""))
        if state in TERMINAL:
            break
        time.sleep(0.5)
    else:
        state = "STOPPING"
    experiment = (info.metadata or {}).get("tuner_experiment")
    click.echo(f"Job {job_id}: {state}")
    if experiment:
        click.echo(f"Continue it with:\n  tuner submit --resume {experiment} --address {dashboard_address(address)}")


def _known(jobs: Any, job_id: str) -> Any:
    try:
        return jobs.get_job_info(job_id)
    except RuntimeError as exc:  # the client raises RuntimeError for an unknown job
        raise BadInput(f"no job {job_id!r} on this cluster ({exc}); `ray job list` shows the jobs") from None


# --- the commands (registered on the `tuner` group by tuner.cli.main) ------------------------------

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
_ADDRESS = click.option("--address", metavar="URL",
                        help="The cluster's dashboard, http://HEAD:8265 (default: $RAY_API_SERVER_ADDRESS).")


@click.command("submit", context_settings=CONTEXT)
@click.argument("sweep_file", metavar="[SWEEP.yaml]", required=False, type=click.Path(dir_okay=False))
@click.option("--resume", "resume_dir", metavar="DIR", help="Continue the experiment DIR (a path on the cluster).")
@_ADDRESS
@click.option("--working-dir", type=click.Path(file_okay=False, exists=True), default=".", show_default=True,
              help="Shipped to the cluster; the trainable's module is imported from it.")
@click.option("--pip", multiple=True, metavar="REQ", help="A requirement installed for the job; repeatable.")
@click.option("--name", help="Experiment name (default: the file's `name`, else file name and time).")
@click.option("--storage", help="Where the experiment goes on the cluster: an absolute path every node "
                                "reaches, or a URI (default: the file's storage_path, else ~/tuner_results).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a setting, as for sweep.")
@click.option("--ship-tuner/--no-ship-tuner", default=True, show_default=True,
              help="Ship this tuner's own packages with the job (off: use the one installed on the cluster).")
def submit_command(sweep_file: str | None, resume_dir: str | None, **options: Any) -> None:
    """Run SWEEP.yaml's driver on a Ray cluster as a job, and return.

    The working directory and the tuner are shipped through Ray's runtime_env,
    the job id and the experiment's path are printed; close the laptop if you like.

    \b
    Examples:
      tuner submit sweep.yaml --address http://head:8265 --storage /shared/results
      tuner logs raysubmit_XYZ --address http://head:8265 --follow
      tuner stop raysubmit_XYZ --address http://head:8265
      tuner submit --resume /shared/results/mlp-asha --address http://head:8265
    """
    submit_sweep(sweep_file, resume_dir, options)


@click.command("logs", context_settings=CONTEXT)
@click.argument("job_id", metavar="JOB")
@_ADDRESS
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the job ends.")
def logs_command(job_id: str, address: str | None, follow: bool) -> None:
    """Print the output of a submitted sweep (its progress lines)."""
    logs(job_id, address, follow)


@click.command("status", context_settings=CONTEXT)
@click.argument("job_id", metavar="JOB")
@_ADDRESS
def status_command(job_id: str, address: str | None) -> None:
    """The state of a submitted sweep and where its experiment is."""
    status(job_id, address)


@click.command("stop", context_settings=CONTEXT)
@click.argument("job_id", metavar="JOB")
@_ADDRESS
def stop_command(job_id: str, address: str | None) -> None:
    """Stop a submitted sweep; its experiment stays resumable (tuner submit --resume)."""
    stop(job_id, address)


COMMANDS = (submit_command, logs_command, status_command, stop_command)
