"""JSON in and out for metadata: numpy scalars become numbers, the rest strings.

Metadata is JSON so that listing an experiment never unpickles anything.
"""

from __future__ import annotations

import json
import os
from typing import Any


def to_jsonable(value: Any) -> Any:
    """A JSON-friendly version of ``value`` (numpy scalars and arrays, paths, sets...)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", 1) == 0:
        return to_jsonable(item())
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return to_jsonable(tolist())
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return repr(value)


def dumps(value: Any) -> str:
    """One compact JSON line; NaN and infinities are written as JSON extensions (Python reads them)."""
    try:
        return _ENCODER.encode(value)
    except (TypeError, ValueError):
        return _ENCODER.encode(to_jsonable(value))


_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=True)  # one, not one per call (every journal line)


def write_atomic(path: str, value: Any, parent_exists: bool = False) -> None:
    """Write JSON to ``path`` (a local path or a URI), never half a file: a temp file and
    ``os.replace`` locally, one PUT on an object store (``tuner.storage.fs``).
    ``parent_exists``: the caller just made the directory (saves a system call per file)."""
    from tuner.storage import fs

    fs.write_bytes(path, dumps(value).encode("utf-8"), parent_exists=parent_exists)


class DamagedFileError(ValueError):
    """A metadata file that is not the JSON it should be; the message names the file and the spot."""


def read(path: str, fix: str = "") -> Any:
    """The JSON in ``path`` (a local path or a URI); a damaged file is a DamagedFileError naming it
    (``fix``: what to do)."""
    from tuner.storage import fs

    data = fs.read_bytes(path)
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}: {exc.msg}"
    except UnicodeDecodeError as exc:
        where = f"byte {exc.start}: not UTF-8 text"
    empty = " (the file is empty)" if not data.strip() else ""
    raise DamagedFileError(f"{path} is damaged: not valid JSON ({where}){empty}.{' ' + fix if fix else ''}")
