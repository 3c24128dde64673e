"""Every read and write of experiment files goes through here: a local path, a
shared mount or a URI (``s3://bucket/prefix``, ``gs://...``) is one code path.

Built on ``pyarrow.fs``, not fsspec: pyarrow is already installed with Ray (no
new dependency, while fsspec's S3 needs s3fs/aiobotocore), its S3 client is
native C++ with multi-threaded multipart uploads (a 300 MB checkpoint does not
go through the GIL), and ``FileSystem.from_uri`` maps a URI to a file system
and a path in one call. Endpoint and credentials come from the library's own
environment variables (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``...), never from experiment
files.

Paths here are strings: an absolute local path or a URI. Joining uses "/", so
``join(uri, "trials", tid)`` works for both.
"""

from __future__ import annotations

import functools
import os
import shutil
import uuid
from typing import Any


def is_uri(path: str) -> bool:
    return "://" in str(path)


def normalize(path: str | os.PathLike) -> str:
    """A local path made absolute (``~`` expanded); a URI without its trailing slash."""
    path = os.fspath(path)
    if is_uri(path):
        return path.rstrip("/")
    return os.path.abspath(os.path.expanduser(path))


def join(base: str, *parts: str) -> str:
    if is_uri(base):
        return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])
    return os.path.join(base, *parts)


def basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def dirname(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[0] if is_uri(path) else os.path.dirname(path)


@functools.lru_cache(maxsize=16)
def _filesystem(root: str) -> Any:
    from pyarrow import fs as pafs

    try:
        return pafs.FileSystem.from_uri(root)[0]
    except Exception as exc:  # noqa: BLE001 - re-raised with the fix
        raise ValueError(f"The storage URI {root!r} cannot be opened ({exc}). Use a local path or a URI that "
                         "pyarrow.fs supports (s3://bucket/prefix, gs://..., hdfs://...); endpoint and credentials "
                         "come from the usual environment variables (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID...).") \
            from exc


def resolve(path: str) -> tuple[Any, str]:
    """The pyarrow file system and the path inside it (bucket/key for S3)."""
    if not is_uri(path):
        from pyarrow import fs as pafs

        return pafs.LocalFileSystem(), normalize(path)
    scheme, rest = path.split("://", 1)
    bucket = rest.split("/", 1)[0]
    return _filesystem(f"{scheme}://{bucket}"), rest.rstrip("/")


# --- small files ------------------------------------------------------------------------
def exists(path: str) -> bool:
    if not is_uri(path):
        return os.path.exists(path)
    from pyarrow import fs as pafs

    fs, inner = resolve(path)
    return fs.get_file_info(inner).type != pafs.FileType.NotFound


def read_bytes(path: str) -> bytes:
    if not is_uri(path):
        with open(path, "rb") as f:
            return f.read()
    fs, inner = resolve(path)
    try:
        with fs.open_input_stream(inner) as f:
            return f.read()
    except FileNotFoundError:
        raise
    except OSError as exc:
        if "NoSuchKey" in str(exc) or "not found" in str(exc).lower() or "does not exist" in str(exc).lower():
            raise FileNotFoundError(path) from exc
        raise


def read_text(path: str) -> str:
    return read_bytes(path).decode("utf-8")


def write_bytes(path: str, data: bytes, parent_exists: bool = False) -> None:
    """Whole-file write that never leaves half a file: temp name then rename (local), one PUT (object store).
    The parent directory is made unless the caller says it exists."""
    if not is_uri(path):
        if not parent_exists:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        return
    fs, inner = resolve(path)
    with fs.open_output_stream(inner) as f:
        f.write(data)


def write_text(path: str, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def makedirs(path: str) -> None:
    if not is_uri(path):
        try:
            os.mkdir(path)  # the common case, the parent exists: one system call (os.makedirs also stats it)
        except FileExistsError:
            if not os.path.isdir(path):
                raise
        except FileNotFoundError:
            os.makedirs(path, exist_ok=True)
    # object stores have no directories: a prefix exists once something is written under it


def listdir(path: str) -> list[str]:
    """Names directly under ``path`` (empty when it does not exist)."""
    if not is_uri(path):
        return sorted(os.listdir(path)) if os.path.isdir(path) else []
    from pyarrow import fs as pafs

    fs, inner = resolve(path)
    infos = fs.get_file_info(pafs.FileSelector(inner, allow_not_found=True))
    return sorted(basename(i.path) for i in infos)


def isdir(path: str) -> bool:
    if not is_uri(path):
        return os.path.isdir(path)
    from pyarrow import fs as pafs

    fs, inner = resolve(path)
    return fs.get_file_info(inner).type == pafs.FileType.Directory


def delete_dir(path: str) -> None:
    """Remove a directory (prefix) and everything under it; a missing one is fine."""
    if not is_uri(path):
        shutil.rmtree(path, ignore_errors=True)
        return
    fs, inner = resolve(path)
    try:
        fs.delete_dir(inner)
    except FileNotFoundError:
        pass


def delete_file(path: str) -> None:
    if not is_uri(path):
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
        return
    fs, inner = resolve(path)
    try:
        fs.delete_file(inner)
    except FileNotFoundError:
        pass


class StorageWriteError(OSError):
    """A write to the experiment's storage failed (full, read-only, refused): names the file and the fix."""


def write_failed(path: str, exc: OSError, experiment: str) -> StorageWriteError:
    """The error to raise (outside the ``except`` block, so it is not "raised while handling" the
    original, which stays its ``__cause__``) when writing ``path`` of ``experiment`` failed."""
    error = StorageWriteError(exc.errno, f"Cannot write {path}: {exc.strerror or exc}. Free space on (or grant "
                              f"write access to) the storage, then resume the experiment: tune.resume({experiment!r}) "
                              f"or `tuner resume {experiment}` (everything written before is intact; a torn last "
                              "journal line is cut)")
    error.__cause__ = exc
    return error


def credentials_env() -> dict[str, str]:
    """The driver's variables that tell pyarrow.fs where object stores are and how to sign in
    (AWS_*, GOOGLE_*): handed to the trials' workers, never written to experiment files."""
    return {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "GOOGLE_"))}


# --- trees --------------------------------------------------------------------------------
def upload_dir(local_dir: str, path: str, skip: tuple[str, ...] = ()) -> None:
    """Copy a local directory's files to ``path`` (object store), threads for big files."""
    from pyarrow import fs as pafs

    fs, inner = resolve(path)
    local = pafs.LocalFileSystem()
    for root, _, files in os.walk(local_dir):
        rel = os.path.relpath(root, local_dir)
        for name in files:
            if name in skip:
                continue
            src = os.path.join(root, name)
            dst = inner + "/" + (name if rel == "." else f"{rel.replace(os.sep, '/')}/{name}")
            pafs.copy_files(src, dst, source_filesystem=local, destination_filesystem=fs, use_threads=True)


def upload_file(local_file: str, path: str) -> None:
    """Copy one local file to ``path`` (streamed, not read into memory)."""
    if not is_uri(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        shutil.copyfile(local_file, path)
        return
    from pyarrow import fs as pafs

    fs, inner = resolve(path)
    pafs.copy_files(local_file, inner, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)


def download_dir(path: str, local_dir: str) -> str:
    """Copy the files under ``path`` into ``local_dir`` (created); returns ``local_dir``."""
    os.makedirs(local_dir, exist_ok=True)
    if not is_uri(path):
        shutil.copytree(path, local_dir, dirs_exist_ok=True)
        return local_dir
    from pyarrow import fs as pafs

    fs, inner = resolve(path)
    pafs.copy_files(inner, local_dir, source_filesystem=fs, destination_filesystem=pafs.LocalFileSystem(),
                    use_threads=True)
    return local_dir


def copy_dir(src: str, dst: str, skip: tuple[str, ...] = ()) -> None:
    """Copy a tree within one storage (server-side copies on an object store)."""
    if not is_uri(src):
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns(*skip) if skip else None, dirs_exist_ok=True)
        return
    from pyarrow import fs as pafs

    fs, inner_src = resolve(src)
    _, inner_dst = resolve(dst)
    for info in fs.get_file_info(pafs.FileSelector(inner_src, recursive=True)):
        if info.type == pafs.FileType.File and basename(info.path) not in skip:
            fs.copy_file(info.path, inner_dst + info.path[len(inner_src):])


def local_staging_dir(path: str) -> str:
    """A local directory that mirrors ``path`` (a URI) on this machine, for tools that need files."""
    import hashlib
    import tempfile

    digest = hashlib.sha1(path.encode()).hexdigest()[:12]
    return os.path.join(tempfile.gettempdir(), "tuner_storage", f"{basename(path)}_{digest}")


class Mirror:
    """A local directory standing in for ``remote`` (a URI) for writers that need real files
    (TensorBoard's event files): ``sync()`` uploads the files changed since the last call,
    each whole (one PUT per changed file). ``pull()`` first brings an earlier run's files down."""

    def __init__(self, remote: str, local: str | None = None) -> None:
        self.remote = remote
        self.local = local or local_staging_dir(remote)
        self._synced: dict[str, tuple[int, int]] = {}

    def pull(self) -> None:
        """The local copy made equal to ``remote`` (files only there, from a killed writer, are dropped)."""
        shutil.rmtree(self.local, ignore_errors=True)
        if isdir(self.remote):
            download_dir(self.remote, self.local)
        os.makedirs(self.local, exist_ok=True)
        self._synced = dict(_stat_tree(self.local))

    def sync(self) -> None:
        for rel, stat in _stat_tree(self.local):
            if self._synced.get(rel) != stat:
                upload_file(os.path.join(self.local, rel), join(self.remote, *rel.split(os.sep)))
                self._synced[rel] = stat

    def delete_dir(self, rel: str) -> None:
        """Remove ``rel`` here and in ``remote``."""
        shutil.rmtree(os.path.join(self.local, rel), ignore_errors=True)
        delete_dir(join(self.remote, *rel.split(os.sep)))
        self._synced = {k: v for k, v in self._synced.items() if not k.startswith(rel + os.sep)}


def _stat_tree(root: str):
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            try:
                stat = os.stat(path)
            except FileNotFoundError:
                continue
            yield os.path.relpath(path, root), (stat.st_size, stat.st_mtime_ns)
