"""The journal: the one owner of ``journal.jsonl``, the experiment's source of truth.

One JSON object a line, appended and flushed before anything taken from it is
applied. The first line is the schema header (``{"event":"schema","version":1}``);
every other line is one of the records below, ``{"event": <Event>, <fields>}``.
This module holds the event enum, a dataclass per event, the writer, the reader
and the replay that rebuilds trials from the records (``tune.load``, resume,
``tuner show`` and PBT's lineage all read through it), side by side as Optuna's
journal storage keeps its operations and ``apply_logs``.

A torn last line (the driver killed mid-write) is ignored by the reader and cut
off by the next writer; an unreadable line anywhere else is an error.

The experiment directory may be a local path or a URI (``s3://bucket/prefix``).
Locally every record is flushed to the OS as it is written. On an object store
the file is a folder of segments (``tuner.storage.append``): records are
buffered and ``sync()`` makes them durable in one PUT; the run loop syncs once
per pass (one PUT for a whole batch of results, not one per record), before it
deletes anything in storage, before a snapshot records the journal position,
and when it ends.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import gc
import json
import math
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, ClassVar

from tuner.storage import append, fs, jsonio
from tuner.result_history import ResultBudget, ResultHistory
from tuner.trial import Trial, TrialStatus

JOURNAL = "journal.jsonl"
_json_decode = json.JSONDecoder().decode
SCHEMA_VERSION = 1


class JournalError(ValueError):
    """A journal this tuner cannot read: another schema version, or a damaged line."""


class Event(str, enum.Enum):
    """Every kind of line in the journal (the ``event`` key)."""

    SCHEMA = "schema"                            # first line: the schema version
    TRIAL_ADDED = "trial_added"                  # a new trial and its first config
    RESULT = "result"                            # one reported result
    STATUS = "status"                            # a trial's status changed
    CHECKPOINT = "checkpoint"                    # a checkpoint was persisted
    CHECKPOINT_DELETED = "checkpoint_deleted"    # one was removed (keep_checkpoints_num)
    ROLLBACK = "rollback"                        # results past an iteration are forgotten (restart)
    CONFIG = "config"                            # a new current config (PBT exploit): the lineage
    DECISION = "decision"                        # a scheduler decision other than CONTINUE
    RETRY = "retry"                              # a failed trial goes back to PENDING
    RESUMED = "resumed"                          # a new driver took the experiment over
    INTERRUPTED = "interrupted"                  # the driver stopped on an exception (Ctrl-C...)
    TIME_BUDGET_REACHED = "time_budget_reached"  # time_budget_s ran out
    STOPPER_ENDED_EXPERIMENT = "stopper_ended_experiment"  # a driver-side Stopper's stop_all() said so
    LOCK_TAKEN_OVER = "lock_taken_over"          # this driver took a stale driver.lock over
    EXPERIMENT_END = "experiment_end"            # the run loop finished normally
    # Markers for scheduler calls no other record implies, so a resume can make them again
    # between two snapshots (``tuner.execution.replay``):
    DECISION_POINT = "decision_point"            # on_trial_result at a decision point
    CHOSEN = "chosen"                            # choose_trial_to_run (trial_id None: nothing to run)
    STOPS_POLLED = "stops_polled"                # trials_to_stop returned trials
    STOPPER_CALLED = "stopper_called"            # a driver-side Stopper saw the trial's latest result


#: The resume replay's markers: nothing in them for the trials.
MARKERS = (Event.DECISION_POINT, Event.CHOSEN, Event.STOPS_POLLED, Event.STOPPER_CALLED)


# --- the records ------------------------------------------------------------------------------


@dataclasses.dataclass
class Record:
    """Base of every journal record: its ``event`` and its fields, in file order."""

    event: ClassVar[Event]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.event.value}
        for name in _FIELDS[type(self)]:
            out[name] = getattr(self, name)
        return out


@dataclasses.dataclass
class SchemaHeader(Record):
    event: ClassVar[Event] = Event.SCHEMA
    version: int = SCHEMA_VERSION


@dataclasses.dataclass
class TrialAdded(Record):
    event: ClassVar[Event] = Event.TRIAL_ADDED
    trial_id: str
    config: dict[str, Any]
    seed: int | None = None
    resources: str | None = None  # as the trial asked for them, for reading (not rebuilt)
    name: str | None = None  # trial_name_creator's display name
    dirname: str | None = None  # trial_dirname_creator's directory name (None: the trial id)


@dataclasses.dataclass
class Result(Record):
    event: ClassVar[Event] = Event.RESULT
    trial_id: str
    result: dict[str, Any]


@dataclasses.dataclass
class Status(Record):
    event: ClassVar[Event] = Event.STATUS
    trial_id: str
    status: str  # a TrialStatus value
    error: str | None = None
    stop_reason: str | None = None
    num_failures: int = 0


@dataclasses.dataclass
class Checkpoint(Record):
    event: ClassVar[Event] = Event.CHECKPOINT
    trial_id: str
    iteration: int  # the trial's training_iteration the checkpoint holds (its directory name, too)
    path: str  # a local path or a URI: the worker published it there (the driver never held its bytes)
    metrics: dict[str, Any] | None = None  # the numbers reported with it (a PBT clone: its donor's)


@dataclasses.dataclass
class CheckpointDeleted(Record):
    event: ClassVar[Event] = Event.CHECKPOINT_DELETED
    trial_id: str
    path: str


@dataclasses.dataclass
class Rollback(Record):
    event: ClassVar[Event] = Event.ROLLBACK
    trial_id: str
    iteration: int  # results after this training_iteration are forgotten


@dataclasses.dataclass
class ConfigChanged(Record):
    """A PBT exploit: ``trial_id`` took ``donor_id``'s checkpoint (from the donor's
    ``donor_iteration``) at its own ``iteration`` and now trains with ``config``; with per-trial
    resources that give the new config another shape, ``resources`` is it (as TrialAdded keeps it)."""

    event: ClassVar[Event] = Event.CONFIG
    trial_id: str
    config: dict[str, Any]
    time: float | None = None
    iteration: int | None = None
    donor_id: str | None = None
    old_config: dict[str, Any] | None = None
    donor_checkpoint: str | None = None
    donor_iteration: int | None = None
    info: dict[str, Any] | None = None
    resources: str | None = None


@dataclasses.dataclass
class DecisionMade(Record):
    event: ClassVar[Event] = Event.DECISION
    trial_id: str
    action: str  # a schedulers.base.Decision value
    reason: str = ""
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    iteration: int | None = None


@dataclasses.dataclass
class Retry(Record):
    event: ClassVar[Event] = Event.RETRY
    trial_id: str
    attempt: int
    error: str | None = None


@dataclasses.dataclass
class Resumed(Record):
    event: ClassVar[Event] = Event.RESUMED
    time: float
    trials: int
    time_used: float | None = None  # seconds of the experiment's time budget the earlier runs used


@dataclasses.dataclass
class Interrupted(Record):
    event: ClassVar[Event] = Event.INTERRUPTED
    reason: str
    running: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class TimeBudgetReached(Record):
    event: ClassVar[Event] = Event.TIME_BUDGET_REACHED
    time_budget_s: float


@dataclasses.dataclass
class StopperEndedExperiment(Record):
    event: ClassVar[Event] = Event.STOPPER_ENDED_EXPERIMENT
    stopper: str  # its class name
    time: float


@dataclasses.dataclass
class LockTakenOver(Record):
    """The previous holder of ``driver.lock`` (``tuner.storage.lock``) and why its lock was stale."""

    event: ClassVar[Event] = Event.LOCK_TAKEN_OVER
    host: str | None
    pid: int | None
    reason: str
    time: float


@dataclasses.dataclass
class ExperimentEnd(Record):
    event: ClassVar[Event] = Event.EXPERIMENT_END
    time: float


@dataclasses.dataclass
class DecisionPoint(Record):
    event: ClassVar[Event] = Event.DECISION_POINT
    trial_id: str


@dataclasses.dataclass
class Chosen(Record):
    event: ClassVar[Event] = Event.CHOSEN
    trial_id: str | None


@dataclasses.dataclass
class StopsPolled(Record):
    event: ClassVar[Event] = Event.STOPS_POLLED


@dataclasses.dataclass
class StopperCalled(Record):
    """``stopper(trial_id, result)`` was called with the trial's latest result (a resume calls
    it again on a fresh stopper, so a stateful one is where it was)."""

    event: ClassVar[Event] = Event.STOPPER_CALLED
    trial_id: str


RECORDS: dict[Event, type[Record]] = {cls.event: cls for cls in (
    SchemaHeader, TrialAdded, Result, Status, Checkpoint, CheckpointDeleted, Rollback, ConfigChanged,
    DecisionMade, Retry, Resumed, Interrupted, TimeBudgetReached, StopperEndedExperiment, ExperimentEnd,
    DecisionPoint, Chosen, StopsPolled, StopperCalled, LockTakenOver)}
_FIELDS: dict[type[Record], tuple[str, ...]] = {
    cls: tuple(f.name for f in dataclasses.fields(cls)) for cls in RECORDS.values()}
_RECORD_OF: dict[Any, type[Record]] = {event.value: cls for event, cls in RECORDS.items()}
# The experiment-level events that say how a run of the driver ended (``tuner ls``).
ENDINGS = (Event.EXPERIMENT_END, Event.INTERRUPTED, Event.RESUMED)


def journal_path(experiment_dir: str) -> str:
    return fs.join(experiment_dir, JOURNAL)


def exists(experiment_dir: str) -> bool:
    return append.exists(journal_path(experiment_dir))


def size(experiment_dir: str) -> int:
    """The journal's length in bytes (the offsets ``read_with_offsets`` gives)."""
    return append.size(journal_path(experiment_dir))


# --- writing ------------------------------------------------------------------------------------


class JournalWriter:
    """Appends records to one experiment's journal. Locally each write is flushed to the OS
    (a SIGKILL of the driver loses nothing written); on an object store writes are buffered
    until ``sync()`` (one PUT). Creating it on a new file writes the schema header; on an
    existing one it checks the header and cuts a torn tail."""

    def __init__(self, experiment_dir: str) -> None:
        self.path = journal_path(experiment_dir)
        self._experiment = experiment_dir
        self.remote = fs.is_uri(self.path)
        if self.remote:
            fresh = not append.exists(self.path)
            if not fresh:
                _check_header_remote(self.path)  # segments hold whole lines only: nothing torn
        else:
            if os.path.exists(self.path) and os.path.getsize(self.path):
                _check_header(self.path)
                _cut_torn_tail(self.path)
            fresh = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
        self._out = append.Appender(self.path)
        self._end = self._out.size()  # where the next line starts (a local journal's lines are ASCII)
        self.records_written = 0  # by this writer
        if fresh:
            self.write(SchemaHeader())
            self.sync()

    def write(self, record: Record) -> None:
        line = jsonio.dumps(record.to_dict()) + "\n"
        self._append(line)
        self._end += len(line) if line.isascii() else len(line.encode())
        self.records_written += 1

    def write_many(self, records: Iterable[Record]) -> list[tuple[int, int]] | None:
        """Several records in one write (a batch of results). Returns where each line lies in a
        local journal, (offset, length without the newline), for ``ResultReader``; None on an
        object store (its segments are not read back one line at a time)."""
        lines = [jsonio.dumps(r.to_dict()) + "\n" for r in records]
        self._append("".join(lines))
        self.records_written += len(lines)
        if self.remote:
            return None
        where = []
        for line in lines:
            size = len(line) if line.isascii() else len(line.encode())  # json.dumps escapes: ASCII
            where.append((self._end, size - 1))
            self._end += size
        return where

    def _append(self, text: str) -> None:
        failure = None
        try:
            self._out.write(text)
            if not self.remote:
                self._out.flush()
        except OSError as exc:
            failure = exc
        if failure is not None:  # a full or read-only storage: the journal's path and the fix
            raise fs.write_failed(self.path, failure, self._experiment)

    def sync(self) -> None:
        """Make every record written so far durable (on an object store: one PUT, if any is new)."""
        failure = None
        try:
            self._out.flush()
        except OSError as exc:
            failure = exc
        if failure is not None:
            raise fs.write_failed(self.path, failure, self._experiment)

    def offset(self) -> int:
        """The journal's size in bytes, synced: records written from here on start at or after it
        (a snapshot stores it; ``read`` gives each record's offset)."""
        self.sync()
        return self._out.size()

    def close(self) -> None:
        self._out.close()


def _cut_torn_tail(path: str) -> None:
    """Drop a last line without its newline: it was never completely written."""
    with open(path, "rb+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 1))
        if f.read(1) == b"\n":
            return
        f.seek(0)
        data = f.read()
        f.truncate(data.rfind(b"\n") + 1)


def _check_header(path: str) -> None:
    with open(path, encoding="utf-8") as f:
        first = f.readline()
    _header_version(path, first, complete=first.endswith("\n"))


def _check_header_remote(path: str) -> None:
    first = append.read_segment(path, next(iter(append.segment_sizes(path)))).split(b"\n", 1)[0]
    _header_version(path, first.decode("utf-8", "replace"), complete=True)


def _header_version(path: str, line: str, complete: bool) -> None:
    try:
        header = json.loads(line)
    except json.JSONDecodeError:
        if not complete:
            return  # the header itself is being written (or was torn): nothing to read yet
        header = None
    if not isinstance(header, dict) or header.get("event") != Event.SCHEMA.value:
        raise JournalError(f"{path}: the first line is not the journal's schema header "
                           f"({{\"event\":\"schema\",\"version\":{SCHEMA_VERSION}}}); it was written by an older "
                           "tuner or is not a tuner journal. Run the experiment again with this version.")
    if header.get("version") != SCHEMA_VERSION:
        raise JournalError(f"{path}: journal schema version {header.get('version')!r}, but this tuner reads "
                           f"version {SCHEMA_VERSION}; open it with the tuner version that wrote it.")


# --- reading ------------------------------------------------------------------------------------


def decode(line: dict[str, Any], where: str = "journal") -> Record:
    """One record from its JSON object (which it takes: ``event`` is removed from it)."""
    cls = _RECORD_OF.get(line.get("event"))  # a dict lookup: Event(value) costs a micro-second per line
    if cls is None:
        raise JournalError(f"{where}: unknown event {line.get('event')!r}; known: "
                           f"{', '.join(e.value for e in Event)}.")
    fields = line
    del fields["event"]
    try:
        return cls(**fields)
    except TypeError as exc:
        raise JournalError(f"{where}: a {cls.event.value!r} record with fields {sorted(fields)} does not match "
                           f"the schema ({', '.join(_FIELDS[cls])}): {exc}.") from None


def read(experiment_dir: str) -> list[Record]:
    """Every record of the journal in ``experiment_dir``, in order, the schema header checked
    (and left out). A torn last line is ignored; any other unreadable line raises JournalError."""
    return [record for _, record in read_with_offsets(experiment_dir)]


def read_with_offsets(experiment_dir: str, skip: Iterable[Event] = (),
                      skip_before: int | None = None) -> list[tuple[int, Record]]:
    """``read``, each record with the byte offset where its line starts; lines of the events in
    ``skip`` are passed over undecoded (``tune.load`` has no use for the resume markers), those
    lines before byte ``skip_before`` only, when it is given (a resume needs the markers past
    its snapshot)."""
    return [(start, record) for start, _, record in _records(experiment_dir, skip, skip_before)]


def _records(experiment_dir: str, skip: Iterable[Event] = (),
             skip_before: int | None = None) -> Iterator[tuple[int, int, Record]]:
    """``read_with_offsets``, one record at a time, each with its line's length (without the newline)."""
    skipped = tuple(b'{"event":"%s"' % e.value.encode() for e in skip)
    skip_until = len(skipped) and (math.inf if skip_before is None else skip_before)
    path = journal_path(experiment_dir)
    try:
        data = append.read_bytes(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{experiment_dir} is not an experiment directory (no {JOURNAL} in it).") from None
    offset, number = 0, 0
    while offset < len(data):
        end = data.find(b"\n", offset)
        complete = end >= 0
        end = end if complete else len(data)
        line, start, offset = data[offset:end], offset, end + 1
        number += 1
        if number == 1:
            _header_version(path, line.decode("utf-8", "replace"), complete)
            continue
        if not line or (start < skip_until and line.startswith(skipped)):
            continue
        try:
            obj = _json_decode(line.decode())  # str: json.loads spends a third of its time detecting bytes' encoding
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            if not complete:
                break  # torn tail: the driver was killed while writing it
            raise JournalError(f"{path}, line {number}: not a JSON record ({exc}); the journal is damaged. "
                               f"`tuner repair {experiment_dir}` drops the damaged lines (it keeps a backup and "
                               "says what it drops); then load or resume it again.") from None
        yield start, end - start, decode(obj, f"{path}, line {number}")


class ResultReader:
    """Reads a trial's results back from a local journal, by where their lines lie (the source of a
    ``tuner.result_history.ResultHistory``): the driver and ``tune.load`` keep each result's offset
    and length, not the result. Lines close together are read in one ``pread``."""

    #: Lines at most this far apart are read in one go (what lies between is read and skipped).
    GAP = 1 << 16

    def __init__(self, experiment_dir: str) -> None:
        self.experiment_dir = experiment_dir
        self.path = journal_path(experiment_dir)

    def read(self, trial_id: str, offsets: Sequence[int], lengths: Sequence[int]) -> list[dict[str, Any]]:
        """The results of ``trial_id`` whose lines start at ``offsets`` (ascending), ``lengths`` bytes long."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"{self.path}: the journal is gone, so the results of trial {trial_id} cannot be read back (only "
                "each trial's latest result is kept in memory). Keep the experiment directory while its results "
                "object is in use, or load it again where it now is: tune.load(<new path>).") from None
        out: list[dict[str, Any]] = []
        try:
            i, n = 0, len(offsets)
            while i < n:
                start, j = offsets[i], i
                while j + 1 < n and offsets[j + 1] - (offsets[j] + lengths[j]) <= self.GAP:
                    j += 1
                data = os.pread(fd, offsets[j] + lengths[j] - start, start)
                for k in range(i, j + 1):
                    at = offsets[k] - start
                    out.append(self._result(data[at:at + lengths[k]], trial_id, offsets[k]))
                i = j + 1
        finally:
            os.close(fd)
        return out

    def _result(self, line: bytes, trial_id: str, offset: int) -> dict[str, Any]:
        try:
            obj = _json_decode(line.decode())
        except (json.JSONDecodeError, UnicodeDecodeError):
            obj = None
        if not isinstance(obj, dict) or obj.get("event") != Event.RESULT.value or obj.get("trial_id") != trial_id:
            raise JournalError(
                f"{self.path}: no result of trial {trial_id} at byte {offset} any more; the journal was rewritten "
                "(`tuner repair`) or replaced since it was read. Load the experiment again: "
                f"tune.load({self.experiment_dir!r}).")
        return obj["result"]


def last_ending(experiment_dir: str) -> Event | None:
    """``ending`` read from the journal's tail in growing chunks (a 100,000-trial journal is
    tens of MB, and ``tuner ls`` asks for every experiment)."""
    path = journal_path(experiment_dir)
    if fs.is_uri(path):  # the segments from the last one back
        for name in reversed(list(append.segment_sizes(path))):
            for line in reversed(append.read_segment(path, name).split(b"\n")):
                kind = _event_of(line)
                if kind in ENDINGS:
                    return kind
        return None
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        chunk = 1 << 16
        while True:
            start = max(0, size - chunk)
            f.seek(start)
            lines = f.read(size - start).split(b"\n")
            for line in reversed(lines[1:] if start else lines):  # the first may be cut
                kind = _event_of(line)
                if kind in ENDINGS:
                    return kind
            if not start:
                return None
            chunk *= 4


def _event_of(line: bytes) -> Event | None:
    """The event of one line without decoding the rest: the writer puts ``event`` first."""
    prefix = b'{"event":"'
    if not line.startswith(prefix):
        return None
    try:
        return Event(line[len(prefix):line.find(b'"', len(prefix))].decode())
    except ValueError:
        return None


# --- replay -------------------------------------------------------------------------------------


@dataclasses.dataclass
class Replay:
    """What the journal rebuilds: the trials as the run loop last knew them, the lineage
    (PBT config changes and scheduler decisions, in order), and how the last run ended."""

    trials: dict[str, Trial]
    lineage: list[ConfigChanged | DecisionMade]
    ending: Event | None


def apply(record: Record, trials: dict[str, Trial], experiment_dir: str, at: tuple[int, int] | None = None,
          results: ResultReader | None = None, budget: ResultBudget | None = None) -> None:
    """Apply one record to ``trials`` exactly as the run loop changed them when it wrote it. With
    ``results`` (a local journal's reader) a trial's history keeps where each result lies, ``at``
    (offset, length of its line), holds results while ``budget`` allows and reads the others back from
    the journal (``tuner.result_history``); without, it holds them all."""
    kind = type(record)  # the common records first, by type: this runs once per journal line
    if kind is Result:
        trial = trials.get(record.trial_id)
        if trial is not None:
            trial.history.append(record.result, at)
            trial.last_result = record.result
        return
    if kind is TrialAdded:
        trials[record.trial_id] = Trial(record.trial_id, record.config, record.resources, seed=record.seed,
                                        name=record.name,
                                        path=_trials_dir(experiment_dir) + (record.dirname or record.trial_id),
                                        history=ResultHistory(results, record.trial_id, budget=budget))
        return
    trial = trials.get(getattr(record, "trial_id", None) or "")
    if trial is None:
        return
    if kind is Status:
        trial.status = _STATUS_OF[record.status]
        trial.error = record.error
        trial.stop_reason = record.stop_reason
        trial.num_failures = record.num_failures
    elif isinstance(record, Checkpoint):
        trial.add_checkpoint(record.path, record.iteration, record.metrics)
    elif isinstance(record, CheckpointDeleted):
        trial.remove_checkpoint(record.path)
    elif isinstance(record, Rollback):
        trial.rollback(record.iteration)
    elif isinstance(record, ConfigChanged):
        trial.config = record.config
        if record.resources is not None:
            trial.resources = record.resources


_STATUS_OF = {status.value: status for status in TrialStatus}


@functools.lru_cache(maxsize=16)
def _trials_dir(experiment_dir: str) -> str:
    """``<experiment>/trials/`` with its separator, joined once per experiment, not per trial."""
    return fs.join(experiment_dir, "trials", "")


def replay(experiment_dir: str, observer: Callable[[Record, dict[str, Trial], int], None] | None = None,
           markers_from: int = 0, metrics: Iterable[str] = ()) -> Replay:
    """Rebuild every trial of ``experiment_dir`` from its journal.

    ``observer(record, trials, offset)`` is called after each record was applied
    (``offset``: where its line starts), for the resume replay of scheduler and
    searcher calls (``tuner.execution.replay``); it sees the markers from byte
    ``markers_from`` on (``stopper_called`` from the start). ``metrics``: the names whose summary each
    trial's history keeps in memory (``tuner.result_history.MetricSummary``).

    The garbage collector is paused while the trials are rebuilt: what they keep is kept, so
    its passes over a growing heap find nothing and cost a third of a large journal's replay.
    """
    experiment_dir = fs.normalize(experiment_dir)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _replay(experiment_dir, observer, markers_from, tuple(metrics))
    finally:
        if was_enabled:
            gc.enable()


def _replay(experiment_dir: str, observer: Any, markers_from: int, metrics: tuple[str, ...]) -> Replay:
    if observer is None:
        records = _records(experiment_dir, skip=MARKERS)
    else:
        records = _records(experiment_dir, skip=[m for m in MARKERS if m is not Event.STOPPER_CALLED],
                           skip_before=markers_from)
    # One record at a time, and the trials' results held up to a budget only: a load of a large
    # journal holds the latest result of each trial, not every result (``tuner.result_history``).
    reader = None if fs.is_uri(experiment_dir) else ResultReader(experiment_dir)
    budget = ResultBudget(watch=metrics)
    trials: dict[str, Trial] = {}
    lineage: list[ConfigChanged | DecisionMade] = []
    ended = None
    for offset, length, record in records:
        apply(record, trials, experiment_dir, (offset, length) if reader is not None else None, reader, budget)
        if isinstance(record, (ConfigChanged, DecisionMade)) and record.trial_id in trials:
            lineage.append(record)
        elif record.event in ENDINGS:
            ended = record.event
        if observer is not None:
            observer(record, trials, offset)
    return Replay(trials, lineage, ended)


# --- trial ids and repair ---------------------------------------------------------------------

_TRIAL_INDEX = re.compile(r"trial_(\d+)$")


def next_trial_index(experiment_dir: str, trial_ids: Iterable[str]) -> int:
    """The index of the next new trial: past every id in the journal and every trial directory on
    disk, so an id is never reused (a trial whose records were lost keeps its directory)."""
    names = list(trial_ids) + fs.listdir(fs.join(experiment_dir, "trials"))
    indexes = [int(m.group(1)) for m in map(_TRIAL_INDEX.match, names) if m]
    return max(indexes, default=-1) + 1


@dataclasses.dataclass
class RepairReport:
    """What ``repair`` did: the lines it dropped (number, why, the line's start), where the backup is,
    and the trials whose ``trial_added`` record was among them (their other records are ignored)."""

    journal: str
    kept: int
    dropped: list[tuple[int, str, str]]
    backup: str | None
    orphaned: list[str]


def repair(experiment_dir: str) -> RepairReport:
    """Drop every line of the journal that is not a complete, valid record (a torn tail, a damaged
    line in the middle), after copying the journal to ``journal.jsonl.bak-<time>``; the rest is
    rewritten atomically. Nothing is changed when every line is fine."""
    path = journal_path(experiment_dir)
    if fs.is_uri(path):
        raise JournalError(f"{path}: `tuner repair` rewrites a local journal only. Copy the experiment to a local "
                           "directory (its journal.jsonl.d/ segments concatenated in order are the journal), repair "
                           "it there and copy it back; or resume it as it is (a resume skips a torn tail).")
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    torn = lines[-1] != b""
    lines = lines if torn else lines[:-1]
    kept: list[bytes] = []
    dropped: list[tuple[int, str, str]] = []
    for number, line in enumerate(lines, start=1):
        why = None
        if number == len(lines) and torn:
            why = "torn (no newline: the driver was killed while writing it)"
        elif number > 1 and line:
            try:
                decode(json.loads(line), f"line {number}")
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                why = f"not JSON ({exc})"
            except JournalError as exc:
                why = str(exc)
        if why is None:
            kept.append(line)
        else:
            dropped.append((number, why, line[:80].decode("utf-8", "replace")))
    if not dropped:
        return RepairReport(path, len(kept), [], None, [])
    backup = f"{path}.bak-{time.strftime('%Y%m%d-%H%M%S')}"
    shutil.copy2(path, backup)
    tmp = f"{path}.repair.tmp"
    with open(tmp, "wb") as f:
        f.write(b"".join(line + b"\n" for line in kept))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    added = {r.trial_id for r in read(experiment_dir) if isinstance(r, TrialAdded)}
    referenced = {getattr(r, "trial_id", None) for r in read(experiment_dir)} - {None}
    trials_dir = os.path.join(experiment_dir, "trials")
    on_disk = set(os.listdir(trials_dir)) if os.path.isdir(trials_dir) else set()
    return RepairReport(path, len(kept), dropped, backup, sorted((referenced | on_disk) - added))
