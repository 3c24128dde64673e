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

import os

from tuner.storage import fs

SEGMENT_BYTES = 1 << 20
_SUFFIX = ".d"


class Appender:
    """Write text at the end of ``path``; ``flush()`` makes it durable.

    ``size()`` is the byte length of everything written so far (flushed or not), the
    offsets readers see in ``read_bytes``: a local file's size, or the segments' sizes
    summed on an object store.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._remote = fs.is_uri(path)
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        if self._remote:
            sizes = segment_sizes(path)
            self._segment = int(max(sizes)) + 1 if sizes else 0
            self._base = sum(sizes.values())  # bytes in the closed segments
            self._current = bytearray()
            self._file = None
        else:
            fs.makedirs(fs.dirname(path))
            self._file = open(path, "ab")  # noqa: SIM115 - closed in close()

    def write(self, text: str) -> None:
        data = text.encode("utf-8")
        if self._file is not None:
            self._file.write(data)
        else:
            self._pending.append(data)
            self._pending_bytes += len(data)

    @property
    def dirty(self) -> bool:
        """Written but not yet durable (object stores only; a local file is flushed on each ``flush``)."""
        return bool(self._pending)

    def size(self) -> int:
        if self._file is not None:
            return self._file.tell()
        return self._base + len(self._current) + self._pending_bytes

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()
            return
        if not self._pending:
            return
        self._current += b"".join(self._pending)
        fs.write_bytes(f"{self.path}{_SUFFIX}/{self._segment:08d}", bytes(self._current))
        self._pending.clear()
        self._pending_bytes = 0
        if len(self._current) >= SEGMENT_BYTES:
            self._segment += 1
            self._base += len(self._current)
            self._current = bytearray()

    def close(self) -> None:
        self.flush()
        if self._file is not None:
            self._file.close()


def segment_sizes(path: str) -> dict[str, int]:
    """An object-store file's segments, in order, with their sizes (one listing)."""
    from pyarrow import fs as pafs

    store, inner = fs.resolve(path + _SUFFIX)
    infos = store.get_file_info(pafs.FileSelector(inner, allow_not_found=True))
    return dict(sorted((fs.basename(i.path), i.size) for i in infos
                       if i.type == pafs.FileType.File and fs.basename(i.path).isdigit()))


def read_segment(path: str, name: str) -> bytes:
    return fs.read_bytes(f"{path}{_SUFFIX}/{name}")


def exists(path: str) -> bool:
    if not fs.is_uri(path):
        return os.path.isfile(path)
    return bool(segment_sizes(path))


def size(path: str) -> int:
    """Bytes appended to ``path`` so far (0 when nothing was)."""
    if not fs.is_uri(path):
        return os.path.getsize(path) if os.path.exists(path) else 0
    return sum(segment_sizes(path).values())


def read_bytes(path: str) -> bytes:
    """Everything appended to ``path`` so far (raises FileNotFoundError when nothing was)."""
    if not fs.is_uri(path):
        return fs.read_bytes(path)
    names = segment_sizes(path)
    if not names:
        raise FileNotFoundError(path)
    return b"".join(read_segment(path, n) for n in names)


def read_text(path: str) -> str:
    return read_bytes(path).decode("utf-8")
