"""Checkpoints: what a trainable saves so that it can resume or be cloned.

A checkpoint is either any picklable object (a state dict) or a directory.
Between processes it travels as bytes (through Ray's object store, so donor and
recipient may sit on different nodes); on disk it lives under
``trials/<id>/checkpoints/<iteration>/``: ``data.pkl`` for an object, the
directory's own files otherwise.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from typing import Any

_DATA_FILE = "data.pkl"
_MARKER = ".tuner_checkpoint"


class Checkpoint:
    """A checkpoint held as a directory or as an in-memory object.

    Example::

        tune.report({"loss": loss}, checkpoint=tune.Checkpoint.from_directory(tmpdir))
        ckpt = tune.get_checkpoint()
        if ckpt is not None:
            state = torch.load(os.path.join(ckpt.to_directory(), "model.pt"))
    """

    def __init__(self, path: str | None = None, data: Any = None) -> None:
        if (path is None) == (data is None):
            raise ValueError("A Checkpoint holds exactly one of `path` (a directory) or `data` (an object).")
        if path is not None and not os.path.isdir(path):
            raise ValueError(f"The checkpoint path {path!r} is not a directory.")
        self.path = path
        self.data = data

    @classmethod
    def from_directory(cls, path: str | os.PathLike) -> Checkpoint:
        return cls(path=os.fspath(path))

    @classmethod
    def from_dict(cls, data: dict) -> Checkpoint:
        return cls(data=data)

    def to_directory(self, path: str | None = None) -> str:
        """A directory holding the checkpoint (the original one when no path is given)."""
        if self.path is not None and path is None:
            return self.path
        target = path or tempfile.mkdtemp(prefix="tuner_ckpt_")
        os.makedirs(target, exist_ok=True)
        if self.path is not None:
            shutil.copytree(self.path, target, dirs_exist_ok=True)
        else:
            with open(os.path.join(target, _DATA_FILE), "wb") as f:
                pickle.dump(self.data, f)
        return target

    @contextlib.contextmanager
    def as_directory(self) -> Iterator[str]:
        """``with ckpt.as_directory() as path:`` a directory holding the checkpoint; a temporary
        one (removed afterwards) for an object checkpoint, the original directory otherwise."""
        if self.path is not None:
            yield self.path
            return
        target = self.to_directory()
        try:
            yield target
        finally:
            shutil.rmtree(target, ignore_errors=True)

    def to_dict(self) -> dict:
        """The dict of a ``from_dict`` checkpoint (also one written to disk and read back)."""
        data = self.data
        if self.path is not None:
            data_file = os.path.join(self.path, _DATA_FILE)
            if not os.path.exists(data_file):
                raise ValueError(f"The checkpoint {self.path} holds files, not a dict; read them through "
                                 "as_directory() or to_directory().")
            with open(data_file, "rb") as f:
                data = pickle.load(f)
            data = data.data if isinstance(data, Checkpoint) else data
        if not isinstance(data, dict):
            raise ValueError(f"The checkpoint holds a {type(data).__name__}, not a dict; use load().")
        return data

    def load(self) -> Any:
        """The checkpoint's object (for an object checkpoint), else its directory path."""
        return self.data if self.path is None else self.path

    def __repr__(self) -> str:
        return f"Checkpoint(path={self.path!r})" if self.path else f"Checkpoint(data={type(self.data).__name__})"


class Packed:
    """A checkpoint already in its travelling form, passed through ``pack`` unchanged."""

    def __init__(self, packed: tuple[str, bytes]) -> None:
        self.packed = packed


def pack(checkpoint: Any) -> tuple[str, bytes]:
    """Turn what the trainable gave ``report`` into bytes that travel: ("obj"|"dir", payload)."""
    if isinstance(checkpoint, Packed):
        return checkpoint.packed
    if isinstance(checkpoint, Checkpoint) and checkpoint.path is not None:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(checkpoint.path, arcname=".")
        return "dir", buf.getvalue()
    # A from_dict checkpoint travels as itself, so the trainable gets a Checkpoint back (.to_dict()).
    data = checkpoint
    try:
        return "obj", pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # noqa: BLE001 - re-raised with the fix
        raise TypeError(
            f"The checkpoint passed to tune.report could not be pickled ({exc}). Report a state dict of "
            "plain values and tensors, or tune.Checkpoint.from_directory(path)."
        ) from exc


def write(packed: tuple[str, bytes], directory: str) -> None:
    """Persist a packed checkpoint into ``directory`` (created)."""
    kind, payload = packed
    tmp = directory + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    if kind == "dir":
        with tarfile.open(fileobj=io.BytesIO(payload), mode="r") as tar:
            tar.extractall(tmp, filter="data")
    else:
        with open(os.path.join(tmp, _DATA_FILE), "wb") as f:
            f.write(payload)
    open(os.path.join(tmp, _MARKER), "w").close()
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(tmp, directory)


def read(directory: str) -> tuple[str, bytes]:
    """Load a persisted checkpoint back into its travelling form."""
    data_file = os.path.join(directory, _DATA_FILE)
    if os.path.exists(data_file):
        with open(data_file, "rb") as f:
            return "obj", f.read()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in sorted(os.listdir(directory)):
            if name != _MARKER:
                tar.add(os.path.join(directory, name), arcname=name)
    return "dir", buf.getvalue()


def unpack(packed: tuple[str, bytes]) -> Any:
    """What ``tune.get_checkpoint()`` returns: the object, or a Checkpoint on a local directory."""
    kind, payload = packed
    if kind == "obj":
        return pickle.loads(payload)
    target = tempfile.mkdtemp(prefix="tuner_ckpt_")
    with tarfile.open(fileobj=io.BytesIO(payload), mode="r") as tar:
        tar.extractall(target, filter="data")
    return Checkpoint.from_directory(target)


def discard(unpacked: Any) -> None:
    """Remove the temporary directory ``unpack`` extracted a directory checkpoint into (once the
    trial is done with it); anything else is left alone."""
    path = getattr(unpacked, "path", None) if isinstance(unpacked, Checkpoint) else None
    if path and os.path.dirname(os.path.abspath(path)) == os.path.abspath(tempfile.gettempdir()) \
            and os.path.basename(path).startswith("tuner_ckpt_"):
        shutil.rmtree(path, ignore_errors=True)


def load(directory: str) -> Any:
    """Load a persisted checkpoint: the object, or a Checkpoint on the directory itself."""
    data_file = os.path.join(directory, _DATA_FILE)
    if os.path.exists(data_file):
        with open(data_file, "rb") as f:
            return pickle.load(f)
    return Checkpoint.from_directory(directory)
