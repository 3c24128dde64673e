"""Kill a driver subprocess with SIGKILL once its journal has grown to a chosen size, then
resume: the crash tests and the soak share this."""

from __future__ import annotations

import os
import signal
import time

from tests.reliability.helpers import driver, kill_group, wait_for  # noqa: F401 - the tests take them from here
from tuner.storage import journal


def journal_lines(path: str) -> int:
    try:
        with open(journal.journal_path(path), "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


def finished(path: str) -> bool:
    return journal.exists(path) and journal.last_ending(path) is journal.Event.EXPERIMENT_END


def kill_at(script: str, path: str, lines: int, timeout: float = 300.0) -> bool:
    """Run ``script`` (a driver) and SIGKILL it as soon as the journal of ``path`` holds at least
    ``lines`` lines. True when it was killed; False when it ended first (nothing left to kill)."""
    proc = driver(script)
    deadline = time.time() + timeout
    try:
        while proc.poll() is None:
            if journal_lines(path) >= lines:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return True
            if time.time() > deadline:
                raise AssertionError(f"the driver neither reached {lines} journal lines nor ended in {timeout:.0f} s")
            time.sleep(0.005)
        out, err = proc.communicate()
        if proc.returncode != 0:
            raise AssertionError(f"the driver failed (exit {proc.returncode}):\n{err[-3000:]}")
        return False
    finally:
        kill_group(proc)


def sweep_script(kind: str, storage: str, name: str, resume: bool, die_after: int = 0) -> str:
    """A driver running (or resuming) the sweep ``kind`` of ``tests.reliability.sweeps``; with
    ``die_after`` it SIGKILLs itself after writing that many journal records."""
    path = os.path.join(storage, name) if resume else None
    return f"from tests.reliability.sweeps import main; main({kind!r}, {storage!r}, {name!r}, {path!r}, {die_after})"
