"""A Ray cluster made of real ``ray start`` processes on loopback: a head with the dashboard
(job submission) and two worker nodes with fake GPUs. Started once per module that asks for
it, torn down by PID; it never touches another session's Ray (its own ports, and its own
temp dir, which also holds the ``ray_current_cluster`` pointer that a plain ``ray.init()``
would otherwise follow)."""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RayStartCluster:
    gcs: str  # host:port, for drivers that join with address=
    dashboard: str  # http://host:port, for tuner submit
    temp_dir: str
    env: dict[str, str]  # the token and PYTHONPATH every client needs
    worker_raylet_ports: list[int] = field(default_factory=list)

    def pids(self, head_only: bool = False) -> list[int]:
        """Every process of this cluster (their command lines name its temp dir or its GCS port), or
        only the head's (the processes started under its temp dir: GCS, raylet, dashboard, workers)."""
        pattern = self.temp_dir if head_only else f"{self.temp_dir}|{self.gcs}"
        out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout
        return [int(p) for p in out.split() if int(p) != os.getpid()]


def can_hide_directories() -> bool:
    """Whether this machine lets a process start in a mount namespace of its own and mount a
    tmpfs there (root with CAP_SYS_ADMIN; a plain container may refuse)."""
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                            "mount -t tmpfs -o size=1m tmpfs /mnt"], capture_output=True, text=True)
    return probe.returncode == 0


def _ray(args: list[str], env: dict[str, str], attempts: int = 2, hide: tuple[str, ...] = ()) -> None:
    """``ray start``; once more if a node misses Ray's fixed 30 s registration window (busy machine).
    ``hide``: directories this node's processes must not see: the node starts in a mount namespace of
    its own (``unshare -m``, root only) where an empty tmpfs is mounted over each."""
    command = [sys.executable, "-m", "ray.scripts.scripts", "start", *args]
    if hide:
        mounts = " && ".join(f"mount -t tmpfs -o size=1m tmpfs {shlex.quote(d)}" for d in hide)
        command = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                   f"{mounts} && exec {shlex.join(command)}"]
    for attempt in range(attempts):
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
        if proc.returncode == 0:
            return
    raise AssertionError(proc.stdout[-2000:] + proc.stderr[-2000:])


def stop(cluster: RayStartCluster) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in cluster.pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        time.sleep(1.0)


def add_worker(cluster: RayStartCluster, name: str, shape: dict) -> None:
    """One more ``ray start`` worker node (``shape`` as in ``ray_start``'s ``workers``)."""
    raylet = free_port()
    cluster.worker_raylet_ports.append(raylet)
    _ray([f"--address={cluster.gcs}", "--node-ip-address=127.0.0.1", f"--num-cpus={shape['cpus']}",
          f"--num-gpus={shape['gpus']}", f"--resources={{\"node_{name}\": 1}}",
          f"--node-manager-port={raylet}", f"--dashboard-agent-listen-port={free_port()}", "--disable-usage-stats"],
         cluster.env, hide=tuple(shape.get("hide", ())))


@contextlib.contextmanager
def ray_start(workers: dict[str, dict] | None = None, head_cpus: int = 1):
    """A head with the dashboard plus one ``ray start`` worker node per entry of ``workers``
    (name -> {"cpus": n, "gpus": n, "hide": [directories it must not see]}), each with a custom resource
    ``node_<name>``; torn down by PID."""
    workers = {"a": {"cpus": 2, "gpus": 2}, "b": {"cpus": 2, "gpus": 2}} if workers is None else workers
    temp_dir = tempfile.mkdtemp(prefix="tnr", dir="/tmp")  # short: Ray's socket paths must fit
    port, dash = free_port(), free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16),
           "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), "RAY_ADDRESS": ""}
    cluster = RayStartCluster(gcs=f"127.0.0.1:{port}", dashboard=f"http://127.0.0.1:{dash}", temp_dir=temp_dir,
                              env=env)
    try:
        _ray(["--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--include-dashboard=true",
              "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}", f"--num-cpus={head_cpus}", "--num-gpus=0",
              # Not Ray's default 52365: any other Ray on the machine (the test session's own, a benchmark)
              # holds that one, and then this head's job agent never comes up ("No available agent").
              f"--dashboard-agent-listen-port={free_port()}",
              f"--temp-dir={temp_dir}", "--disable-usage-stats"], env)
        for name, shape in workers.items():
            add_worker(cluster, name, shape)
        yield cluster
    finally:
        stop(cluster)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def ray_start_cluster():
    with ray_start() as cluster:
        yield cluster
