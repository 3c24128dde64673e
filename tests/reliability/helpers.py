"""What the reliability tests share: drivers in subprocesses, read-only and full file systems."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def driver(script: str, **popen) -> subprocess.Popen:
    """A driver process running ``script`` from the repository root, in its own session
    (so that a SIGKILL of the group takes its Ray with it)."""
    env = {**os.environ, "RAY_ADDRESS": "", "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def kill_group(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    proc.wait()


def wait_for(predicate, timeout: float = 120.0, what: str = "the condition") -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def dead_pid() -> int:
    """The PID of a process that has exited (and been reaped)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@contextlib.contextmanager
def tmpfs(options: str) -> Iterator[str]:
    """A tmpfs mounted with ``options`` (``ro``, ``size=64k``); skips where mounting is not allowed."""
    path = tempfile.mkdtemp(prefix="tuner_tmpfs_")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", path], capture_output=True).returncode:
        os.rmdir(path)
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", path], capture_output=True)
        os.rmdir(path)


@contextlib.contextmanager
def read_only_dir() -> Iterator[str]:
    """A directory this process cannot write: chmod for a normal user, a read-only tmpfs for root."""
    if os.geteuid() != 0:
        path = tempfile.mkdtemp(prefix="tuner_ro_")
        os.chmod(path, 0o555)
        try:
            yield path
        finally:
            os.chmod(path, 0o755)
            os.rmdir(path)
        return
    with tmpfs("ro") as path:
        yield path
