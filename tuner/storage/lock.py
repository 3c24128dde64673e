"""One driver per experiment: a lock file in the experiment directory.

Two drivers appending to one journal interleave histories and reuse trial ids,
so ``tune.run`` takes ``driver.lock`` before it reads or writes anything. The
file is published atomically (written aside, then hard-linked: exclusive) and holds who owns it (host,
PID, the PID's start time) and when the owner last refreshed it; a thread
refreshes it while the driver lives. A lock is stale, and is taken over, when
its owner is a dead process on this host, or when it was not refreshed for
``stale_after_s`` (owners on other hosts: their clocks must agree within that).
A takeover goes through a second exclusive file so that two drivers finding
the same stale lock cannot both take it.

On an object store (a URI ``storage_path``) there is no exclusive create or
hard link, so the lock is advisory: ``driver.lock`` is read, refused when a
live holder refreshed it recently, else written (one PUT). Two drivers started
within the same second on one URI are not kept apart; anything later is.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from typing import Any

from tuner.storage import fs

LOCK = "driver.lock"
REFRESH_S = 5.0
STALE_AFTER_S = 60.0


class StorageNotWritableError(OSError):
    """The experiment directory cannot be created or written; found before anything starts."""


class ExperimentLockedError(RuntimeError):
    """Another live driver holds the experiment; the message names it."""

    def __init__(self, message: str, holder: dict[str, Any]) -> None:
        super().__init__(message)
        self.holder = holder


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused PID apart."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int, start_time: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return start_time is None or _start_time(pid) in (None, start_time)


def describe(holder: dict[str, Any]) -> str:
    age = time.time() - float(holder.get("refreshed", 0))
    return (f"PID {holder.get('pid')} on host {holder.get('host')!r} (since "
            f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(holder.get('acquired', 0)))}, "
            f"last refreshed {age:.0f} s ago)")


def read_holder(path: str) -> dict[str, Any] | None:
    """The owner recorded in ``path``'s lock file (None when unlocked; {} when unreadable)."""
    try:
        text = fs.read_bytes(fs.join(path, LOCK))
    except FileNotFoundError:
        return None
    try:
        holder = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return holder if isinstance(holder, dict) else {}


def stale_reason(holder: dict[str, Any], stale_after_s: float = STALE_AFTER_S) -> str | None:
    """Why ``holder`` no longer owns the lock (None: it does)."""
    if not holder:
        return "its lock file is empty or unreadable (a driver died while writing it)"
    age = time.time() - float(holder.get("refreshed", 0))
    if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
        if not _alive(holder["pid"], holder.get("start_time")):
            return f"PID {holder['pid']} is no longer running on this host"
        return None
    if age > stale_after_s:
        return f"it was not refreshed for {age:.0f} s (more than {stale_after_s:.0f} s)"
    return None


class ExperimentLock:
    """Held by the one driver of an experiment, from ``acquire()`` to ``release()``."""

    def __init__(self, path: str, refresh_s: float = REFRESH_S, stale_after_s: float = STALE_AFTER_S) -> None:
        self.path = path
        self.file = fs.join(path, LOCK)
        self.remote = fs.is_uri(path)
        self.refresh_s = refresh_s
        self.stale_after_s = stale_after_s
        self.token = uuid.uuid4().hex
        self.taken_over: dict[str, Any] | None = None  # the stale owner replaced, with the reason
        self.lost = False
        self._acquired = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _record(self) -> dict[str, Any]:
        pid = os.getpid()
        return {"host": socket.gethostname(), "pid": pid, "start_time": _start_time(pid), "token": self.token,
                "acquired": self._acquired, "refreshed": time.time()}

    def acquire(self) -> ExperimentLock:
        """Take the lock or raise ExperimentLockedError naming the live holder."""
        self._acquired = time.time()
        if self.remote:
            return self._acquire_remote()
        try:
            os.makedirs(self.path, exist_ok=True)
            created = self._create()
        except OSError as exc:
            raise StorageNotWritableError(
                f"Cannot write the experiment directory {self.path}: {exc.strerror or exc}. Pass a "
                "`storage_path` (tuner --storage) where this user can create files, or free space on it.") from exc
        for attempt in range(5):
            if attempt and not created:
                created = self._create()
            if created:
                self._start_refresh()
                return self
            holder = read_holder(self.path)
            if holder is None:
                continue  # released in between: try again
            reason = stale_reason(holder, self.stale_after_s)
            if reason is None:
                raise ExperimentLockedError(
                    f"The experiment {self.path} is in use by another driver: {describe(holder)}. "
                    f"Wait for it to end or stop it; if it is dead on another host, its lock "
                    f"({self.file}) is taken over {self.stale_after_s:.0f} s after its last refresh.", holder)
            if self._take_over(holder, reason):
                self._start_refresh()
                return self
            time.sleep(0.2)
        holder = read_holder(self.path) or {}
        raise ExperimentLockedError(f"The experiment {self.path} is being taken over by another driver "
                                    f"({describe(holder)}); try again.", holder)

    def _acquire_remote(self) -> ExperimentLock:
        """The advisory lock of an object store (see the module's docstring)."""
        try:
            holder = read_holder(self.path)
        except OSError as exc:  # no such bucket, no access
            raise StorageNotWritableError(
                f"Cannot read the experiment {self.path}: {exc}. Check the bucket exists and that the credentials "
                "(AWS_ACCESS_KEY_ID..., AWS_ENDPOINT_URL) may use it, or pass another `storage_path`.") from exc
        if holder is not None:
            reason = stale_reason(holder, self.stale_after_s)
            if reason is None:
                raise ExperimentLockedError(
                    f"The experiment {self.path} is in use by another driver: {describe(holder)}. Wait for it to "
                    f"end or stop it; if it is dead, its lock ({self.file}) is taken over {self.stale_after_s:.0f} s "
                    "after its last refresh.", holder)
            self.taken_over = {**holder, "reason": reason}
        try:
            fs.write_text(self.file, json.dumps(self._record()))
        except OSError as exc:
            raise StorageNotWritableError(
                f"Cannot write the experiment {self.path}: {exc}. Check the bucket exists and that the credentials "
                "(AWS_ACCESS_KEY_ID..., AWS_ENDPOINT_URL) may write to it, or pass another `storage_path`.") from exc
        self._start_refresh()
        return self

    def _create(self) -> bool:
        """Publish a complete lock file or nothing: written aside, then hard-linked into place
        (a link fails when the name exists, so this is as exclusive as O_EXCL, on NFS too)."""
        tmp = f"{self.file}.{self.token}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps(self._record()))
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, self.file)
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)
        return True

    def _take_over(self, holder: dict[str, Any], reason: str) -> bool:
        """Replace a stale lock; only one of several drivers doing so at once wins."""
        gate = f"{self.file}.takeover"
        try:
            fd = os.open(gate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:  # a takeover whose driver died half-way must not block forever
                if time.time() - os.path.getmtime(gate) > self.stale_after_s:
                    os.unlink(gate)
            except FileNotFoundError:
                pass
            return False
        os.close(fd)
        try:
            if read_holder(self.path) != holder:
                return False  # it changed under us: judge again
            os.unlink(self.file)
            if not self._create():
                return False
            self.taken_over = {**holder, "reason": reason}
            return True
        finally:
            os.unlink(gate)

    def _start_refresh(self) -> None:
        self._thread = threading.Thread(target=self._refresh_loop, daemon=True, name="tuner-lock-refresh")
        self._thread.start()

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self.refresh_s):
            self.refresh()

    def refresh(self) -> None:
        """Rewrite the lock with a new timestamp, unless another driver took it (then ``lost``)."""
        holder = read_holder(self.path)
        if not holder or holder.get("token") != self.token:
            self.lost = True
            self._stop.set()
            return
        if self.remote:
            try:
                fs.write_text(self.file, json.dumps(self._record()))
            except OSError:  # as below: the lock just ages
                pass
            return
        tmp = f"{self.file}.{self.token}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(json.dumps(self._record()))
            os.replace(tmp, self.file)
        except OSError:  # a full disk must not kill the driver: the lock just ages
            pass

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.refresh_s + 1)
        holder = read_holder(self.path)
        if holder and holder.get("token") == self.token:
            fs.delete_file(self.file)

    def __enter__(self) -> ExperimentLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
