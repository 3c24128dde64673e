"""A running trial's own files, on whatever node runs it: working directory, logs, checkpoints.

Layout in storage (``trials/<id>/``): ``artifacts/`` (the trainable's working
directory, ``tune.get_context().trial_dir``), ``stdout.log``, ``stderr.log`` (each
created at the trial's first write to it: a quiet trial leaves none, which counts
at 100,000 short trials) and ``checkpoints/<iteration>/``.

Where the worker sees the storage as a local directory (the driver's own disk,
or a shared mount), the trial works in it directly. Elsewhere (an ``s3://``
storage_path, or a node that does not see the driver's disk) it works in a
local staging directory laid out the same way, which is copied to storage at
each checkpoint and when the trial ends (only files changed since the last
copy), straight or through the storage relay.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

from tuner.storage import checkpoint as ckpt_lib
from tuner.storage import fs
from tuner.storage import relay as relay_lib

ARTIFACTS = "artifacts"
LOGS = ("stdout.log", "stderr.log")


class TrialFiles:
    """Where one trial reads and writes, and how its local files reach storage."""

    def __init__(self, spec: Any) -> None:
        """``spec``: the trial's LaunchSpec (``trial_dir`` is its directory in storage)."""
        self.trial_id = spec.trial_id
        self.trial_path = spec.trial_dir
        sees = relay_lib.sees_storage(spec.experiment_path, spec.storage_token)
        self._relay = None if sees else relay_lib.RelayClient(spec.storage_token, spec.experiment_path, self.trial_id)
        self.direct = sees and not fs.is_uri(self.trial_path)
        self.root = self.trial_path if self.direct else fs.local_staging_dir(self.trial_path)
        self.work_dir = os.path.join(self.root, ARTIFACTS)
        os.makedirs(self.work_dir, exist_ok=True)
        self._synced: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    # --- checkpoints ------------------------------------------------------------------------
    def save(self, checkpoint: Any, iteration: int) -> str:
        """Publish a checkpoint of ``iteration`` and bring the working files along."""
        destination = ckpt_lib.directory_for(self.trial_path, iteration)
        try:
            path = self._relay.save(checkpoint, destination) if self._relay else ckpt_lib.save(checkpoint, destination)
        except OSError as exc:
            raise OSError(f"Writing the checkpoint of trial {self.trial_id} to {destination} failed: {exc}. Free "
                          "space on (or grant write access to) the storage, then resume the experiment (tuner "
                          "resume / tune.resume): it restarts from the last complete checkpoint.") from exc
        self.sync()
        return path

    def load(self, path: str) -> Any:
        return self._relay.load(path) if self._relay else ckpt_lib.load(path)

    # --- working files ----------------------------------------------------------------------
    def sync(self) -> None:
        """Copy what changed in the local staging directory to storage (nothing to do when direct)."""
        if self.direct:
            return
        with self._lock:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            changed = [rel for rel, stat in _walk(self.root) if self._synced.get(rel) != stat]
            if not changed:
                return
            if self._relay:
                self._relay.upload_dir(self.root, self.trial_path)
            else:
                for rel in changed:
                    fs.upload_file(os.path.join(self.root, rel), fs.join(self.trial_path, *rel.split(os.sep)))
            self._synced.update(_walk(self.root))

    @contextlib.contextmanager
    def capture_output(self, echo: bool) -> Iterator[None]:
        """Send this process's Python-level stdout/stderr to the trial's log files (and to the
        console too when ``echo``) while the trial runs."""
        files = [_LazyLog(os.path.join(self.root, name)) for name in LOGS]
        saved = sys.stdout, sys.stderr
        sys.stdout = _Tee(files[0], saved[0] if echo else None)
        sys.stderr = _Tee(files[1], saved[1] if echo else None)
        try:
            yield
        finally:
            sys.stdout, sys.stderr = saved
            for f in files:
                f.close()


def _walk(root: str) -> Iterator[tuple[str, tuple[int, float]]]:
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            with contextlib.suppress(FileNotFoundError):
                stat = os.stat(path)
                yield os.path.relpath(path, root), (stat.st_size, stat.st_mtime)


class _LazyLog:
    """A line-buffered log file opened at its first write."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._file: io.TextIOBase | None = None
        self._lock = threading.Lock()  # sys.stdout is the whole process's: other threads may print

    def write(self, text: str) -> int:
        if self._file is None:
            if not text:
                return 0
            with self._lock:
                if self._file is None:
                    self._file = open(self._path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        return self._file.write(text)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class _Tee(io.TextIOBase):
    """A text stream that writes to a log file and, optionally, to the original stream."""

    def __init__(self, log: _LazyLog, echo: io.TextIOBase | None) -> None:
        self._log, self._echo = log, echo

    def write(self, text: str) -> int:
        self._log.write(text)
        if self._echo is not None:
            self._echo.write(text)
        return len(text)

    def flush(self) -> None:
        self._log.flush()
        if self._echo is not None:
            self._echo.flush()

    def isatty(self) -> bool:
        return False
