"""Append-only text files (the journal, per-trial result logs) on every backend.

A local path or a shared mount: one file opened in append mode, flushed to the
OS on every ``flush()``, so a SIGKILL of the writer loses nothing written
before it (a torn last line at worst, which readers skip).

An object store has no append, and an object is only ever replaced whole (one
PUT is atomic: readers see the old or the new object, never half). So the file
``<name>`` becomes a folder of segments ``<name>.d/00000000``, ``00000001``...:
``flush()`` rewrites the current segment with everything written to it so far
(one PUT), and a segment that reached ``SEGMENT_BYTES`` is closed and a new
one started. Each flush costs at most one segment's size, whatever the length
of the experiment, and what was flushed is durable once ``flush()`` returns.
A writer that reopens the file (a resumed experiment) starts a new segment
after the last one and never rewrites older ones. Readers concatenate the
segments in order.
"""

from __future__ import annotations

import io

from tuner.storage import fs

SEGMENT_BYTES = 1 << 20
_SUFFIX = ".d"


class Appender:
    """Write text at the end of ``path``; ``flush()`` makes it durable."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._remote = fs.is_uri(path)
        self._pending: list[str] = []
        if self._remote:
            names = [n for n in fs.listdir(path + _SUFFIX) if n.isdigit()]
            self._segment = int(max(names)) + 1 if names else 0
            self._current = io.StringIO()
            self._file = None
        else:
            fs.makedirs(fs.dirname(path))
            self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, text: str) -> None:
        if self._file is not None:
            self._file.write(text)
        else:
            self._pending.append(text)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()
            return
        if not self._pending:
            return
        self._current.write("".join(self._pending))
        self._pending.clear()
        fs.write_text(f"{self.path}{_SUFFIX}/{self._segment:08d}", self._current.getvalue())
        if self._current.tell() >= SEGMENT_BYTES:
            self._segment += 1
            self._current = io.StringIO()

    def close(self) -> None:
        self.flush()
        if self._file is not None:
            self._file.close()


def exists(path: str) -> bool:
    if not fs.is_uri(path):
        return fs.exists(path)
    return bool(fs.listdir(path + _SUFFIX))


def read_text(path: str) -> str:
    """Everything appended to ``path`` so far (raises FileNotFoundError when nothing was)."""
    if not fs.is_uri(path):
        return fs.read_text(path)
    names = sorted(n for n in fs.listdir(path + _SUFFIX) if n.isdigit())
    if not names:
        raise FileNotFoundError(path)
    return "".join(fs.read_text(f"{path}{_SUFFIX}/{n}") for n in names)
