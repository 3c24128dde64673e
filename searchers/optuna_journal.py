"""Optuna's study, kept in the experiment directory as an append-only log.

Snapshotting an Optuna study means writing every trial again; over a long sweep
that cost grows with every trial. Instead the study lives in Optuna's own
``JournalStorage`` on this backend: each ask, report and tell appends one line
to ``<experiment>/optuna_journal.jsonl`` (flushed to the OS, like the tuner's
journal), and a resume reads the study back from it. One writer (the driver),
so no file lock and no fsync: Optuna's file backend takes both on every write,
which costs more than the sampling itself at a thousand trials.
"""

from __future__ import annotations

import json
import os
from typing import Any

from searchers.optuna_space import import_optuna

STUDY_FILE = "optuna_journal.jsonl"


def journal_backend(path: str) -> Any:
    """A ``BaseJournalBackend`` on the file ``path`` (created when missing)."""
    optuna = import_optuna()

    class DriverJournal(optuna.storages.journal.BaseJournalBackend):
        """Appends logs to ``path`` and hands each back once to the storage's reader."""

        def __init__(self) -> None:
            self._unread: list[dict[str, Any]] = _read_complete_lines(path)
            self._unread_from = 0
            self._file = open(path, "a", encoding="utf-8")

        def read_logs(self, log_number_from: int) -> list[dict[str, Any]]:
            logs = self._unread[log_number_from - self._unread_from:]
            self._unread_from += len(self._unread)
            self._unread = []
            return logs

        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            self._file.write("".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs))
            self._file.flush()
            self._unread.extend(logs)

    return DriverJournal()


def _read_complete_lines(path: str) -> list[dict[str, Any]]:
    """The logs already in ``path``; a torn last line (the driver died mid-write) is cut off."""
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        data = f.read()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        with open(path, "r+b") as f:
            f.truncate(end)
    return [json.loads(line) for line in data[:end].splitlines() if line]
