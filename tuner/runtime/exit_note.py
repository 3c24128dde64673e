"""How a worker process ended, told to the driver: Ray reports any worker death as the same
"SYSTEM_ERROR: connection error", whether the trainable called ``os._exit(3)``, crashed in native
code or was SIGKILLed. A worker notes what it can about its own end in a small file on its node
(``<tmp>/tuner_workers/<pid>.exit``): the code given to ``os._exit``, or the fatal signal and
traceback Python's ``faulthandler`` writes on SIGSEGV/SIGFPE/SIGABRT/SIGBUS/SIGILL. No note means
the process could not write one: a SIGKILL (``kill -9``, the kernel's OOM killer, ``ray stop
--force``). The driver reads the note when the worker is on its own node."""

from __future__ import annotations

import contextlib
import faulthandler
import os
import re
import subprocess
import tempfile

_installed: list = []


def note_path(pid: int) -> str:
    return os.path.join(tempfile.gettempdir(), "tuner_workers", f"{pid}.exit")


def install() -> None:
    """In a worker process (once): note a fatal signal and the code of ``os._exit``."""
    if _installed:
        return
    path = note_path(os.getpid())
    os.makedirs(os.path.dirname(path), exist_ok=True)
    _tidy(os.path.dirname(path))
    note = open(path, "w", encoding="utf-8")  # noqa: SIM115 - open for the process' whole life
    faulthandler.enable(file=note, all_threads=True)
    real_exit = os._exit

    def noting_exit(code: int) -> None:
        with contextlib.suppress(Exception):
            note.write(f"os._exit({code})\n")
            note.flush()
        real_exit(code)

    os._exit = noting_exit
    _installed.append(note)


def _tidy(directory: str) -> None:
    """Remove the empty notes of processes that are gone (workers ended by ``ray.kill`` or a dead driver)."""
    with contextlib.suppress(OSError):
        for name in os.listdir(directory):
            pid = name.split(".")[0]
            if not pid.isdigit() or os.path.exists(f"/proc/{pid}"):
                continue
            path = os.path.join(directory, name)
            with contextlib.suppress(OSError):
                if os.path.getsize(path) == 0:
                    os.remove(path)


def read(pid: int) -> str | None:
    """What the worker ``pid`` on this node noted about its end (and the note is removed), or None."""
    path = note_path(pid)
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    discard(pid)
    exited = re.search(r"os\._exit\((-?\d+)\)", text)
    if exited:
        return f"it exited with code {exited.group(1)} (os._exit)"
    fatal = re.search(r"Fatal Python error: (.+)", text)
    if fatal:
        return f"it crashed with a fatal signal: {fatal.group(1).strip()}{_where(text)}"
    return None


def _where(text: str) -> str:
    """" at file:line": the crashing thread's innermost frame outside Python's own library."""
    current = text.split("Current thread", 1)[-1].split("\n\n", 1)[0]
    frames = re.findall(r'File "([^"]+)", line (\d+)', current)
    own = [f for f in frames if f"{os.sep}lib{os.sep}python" not in f[0]] or frames
    return f" at {own[0][0]}:{own[0][1]}" if own else ""


def discard(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.remove(note_path(pid))


def kernel_oom_kill(pid: int) -> str | None:
    """The kernel log's line saying its OOM killer killed ``pid``, where the log can be read."""
    try:
        log = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in reversed(log.splitlines()):
        if re.search(rf"(Killed process|oom-kill:.*pid=){pid}\b", line):
            return line.strip()
    return None
