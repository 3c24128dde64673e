"""Checkpoints: what a trainable saves so that it can resume or be cloned.

A checkpoint is either any picklable object (a state dict) or a directory. The
worker process that reports it writes it straight into the experiment's
storage (``fs``: a local path, a shared mount or an object store) under
``trials/<id>/checkpoints/<iteration>/``: ``data.pkl`` for an object, the
directory's own files otherwise. The driver only records the path, so no
checkpoint byte crosses the driver or Ray's object store, whatever its size.

Published atomically: a local one is written under a temporary name and
renamed; on an object store the marker file ``.tuner_checkpoint`` is written
last. A checkpoint without its marker is half written (its writer died) and is
never restored from. Restores read from storage in the worker that needs them.

``pack``/``unpack`` keep the old travelling form (tar or pickle bytes) for the
one case where a worker cannot see the storage (see ``tuner.storage.relay``).
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import shutil
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any

from tuner.storage import fs

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




def directory_for(trial_path: str, iteration: int) -> str:
    """Where the checkpoint of ``iteration`` lives in a trial's storage."""
    return fs.join(trial_path, "checkpoints", f"{iteration:06d}")


def iteration_of(path: str) -> int:
    return int(fs.basename(path))


def _pickle_error(exc: Exception) -> TypeError:
    return TypeError(
        f"The checkpoint passed to tune.report could not be pickled ({exc}). Report a state dict of "
        "plain values and tensors, or tune.Checkpoint.from_directory(path).")


def save(checkpoint: Any, destination: str) -> str:
    """Publish what the trainable reported at ``destination`` (replacing what was there)."""
    source = checkpoint.path if isinstance(checkpoint, Checkpoint) else None
    data = checkpoint  # a from_dict checkpoint is stored as itself: the trainable gets a Checkpoint back
    if fs.is_uri(destination):
        fs.delete_dir(destination)
        if source is not None:
            fs.upload_dir(source, destination, skip=(_MARKER,))
        else:
            try:
                payload = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as exc:  # noqa: BLE001 - re-raised with the fix
                raise _pickle_error(exc) from exc
            fs.write_bytes(fs.join(destination, _DATA_FILE), payload)
        fs.write_bytes(fs.join(destination, _MARKER), b"")
        return destination
    tmp = f"{destination}.tmp-{uuid.uuid4().hex[:8]}"
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    try:
        if source is not None:
            shutil.copytree(source, tmp, ignore=shutil.ignore_patterns(_MARKER))
        else:
            os.makedirs(tmp)
            with open(os.path.join(tmp, _DATA_FILE), "wb") as f:
                try:
                    pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)
                except OSError:
                    raise  # the storage refused the bytes (full, read-only): not a pickling problem
                except Exception as exc:  # noqa: BLE001 - re-raised with the fix
                    raise _pickle_error(exc) from exc
        open(os.path.join(tmp, _MARKER), "w").close()
        shutil.rmtree(destination, ignore_errors=True)
        os.replace(tmp, destination)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return destination


def is_complete(path: str) -> bool:
    """True when the checkpoint at ``path`` was published whole (its marker exists)."""
    return fs.exists(fs.join(path, _MARKER))


def load(path: str) -> Any:
    """Restore a published checkpoint: the object, or a Checkpoint on a local directory (the
    storage directory itself when local, a fresh download from an object store)."""
    if not is_complete(path):
        raise FileNotFoundError(
            f"The checkpoint {path} is missing or was never completely written (no {_MARKER} in it: its "
            "writer died mid-write, or it was deleted).")
    data_file = fs.join(path, _DATA_FILE)
    if fs.exists(data_file):
        return pickle.loads(fs.read_bytes(data_file))
    if not fs.is_uri(path):
        return Checkpoint.from_directory(path)
    target = fs.download_dir(path, tempfile.mkdtemp(prefix="tuner_ckpt_"))
    os.remove(os.path.join(target, _MARKER))
    return Checkpoint.from_directory(target)


def copy(source: str, destination: str) -> str:
    """Copy a published checkpoint within storage (a PBT clone becomes the recipient's own)."""
    if not is_complete(source):
        raise FileNotFoundError(f"The checkpoint {source} to copy is missing or half written.")
    if fs.is_uri(destination):
        fs.delete_dir(destination)
        fs.copy_dir(source, destination, skip=(_MARKER,))
        fs.write_bytes(fs.join(destination, _MARKER), b"")
        return destination
    tmp = f"{destination}.tmp-{uuid.uuid4().hex[:8]}"
    shutil.copytree(source, tmp)
    shutil.rmtree(destination, ignore_errors=True)
    os.replace(tmp, destination)
    return destination


def delete(path: str) -> None:
    """Remove a checkpoint: its marker first, so a crash midway never leaves a listed half one."""
    fs.delete_file(fs.join(path, _MARKER))
    fs.delete_dir(path)


def pack(checkpoint: Any) -> tuple[str, bytes]:
    """The travelling form, for a worker that cannot see the storage: ("obj"|"dir", bytes)."""
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
        raise _pickle_error(exc) from exc


def unpack(packed: tuple[str, bytes]) -> Any:
    """Back from the travelling form: the object, or a Checkpoint on a fresh local directory."""
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

