"""TensorBoard HParams export: a live parallel-coordinates view of every trial.

Layout under ``<experiment>/tensorboard/`` (or ``logdir``)::

    _experiment/v<N>/       the experiment config: every hyperparameter with its
                            domain, every metric (tuned metric first)
    <trial_id>/             one run (= one HParams session) per trial: session
                            start, one scalar event per result, session end
    <trial_id>/pbt_<k>/     PBT only: segment k of the trial, after its k-th exploit

TensorBoard keeps only the *first* metadata of a tag in a run, so an HParams
summary can never be rewritten in place. Hence:

* a new metric (or a hyperparameter first seen in a trial's config) is declared
  by writing the config to ``_experiment/v<N+1>`` and deleting ``v<N>``;
  TensorBoard drops a run whose directory disappears;
* a PBT exploit ends the trial's current session and starts a new one,
  ``<trial_id>/pbt_<k>``, holding the trial's new hyperparameters, with
  ``pbt/donor`` = the donor's session (e.g. ``"00003_ab12"`` or
  ``"00003_ab12/pbt_1"``) and ``pbt/segment`` = k; a Markdown summary
  ``pbt/lineage`` in the Text tab says what changed. The superseded session
  ends with status success and the metric ``pbt/superseded`` = 1: filtering
  ``pbt/superseded`` to [0, 0.5] shows each trial once, with its current config.

Statuses: a finished trial ends with ``STATUS_SUCCESS``, an errored one with
``STATUS_FAILURE``. TensorBoard has no "pruned" status, so a trial stopped early
(``trial.stop_reason`` set by a scheduler, a stop criterion or the time budget)
ends with success and the metric ``tuner/stopped_early`` = 1 (else 0): filter on
it in the HParams tab. A running trial has no session end yet, which TensorBoard
reports as ``STATUS_UNKNOWN``.

The parallel-coordinates view draws no line for a session that misses a value
of a shown column, so every session carries the bookkeeping values from its
start: hparams ``pbt/donor`` ("" for an initial config) and ``pbt/segment``
(0), scalars ``tuner/stopped_early`` and ``pbt/superseded`` (0). They are
declared in the experiment only once they mean something (first finished
trial, first exploit), so a sweep without PBT shows no ``pbt/*`` column. A
metric that only some trials report hides the other trials' lines while its
axis is shown: that is TensorBoard's rule.

Liveness and cost: a result only builds and serializes one event on the run
loop (about 10 µs); a daemon thread frames, checksums (one batch for every
open run) and writes what is pending every ``flush_secs``, creating a run's
directory and file at its first flush. A session end is handed to that thread
too, which writes every run ended since its last turn in one batch, off the
run loop. So TensorBoard (which reloads every 5 s by default) shows a running
sweep and every ended trial within ``flush_secs``, and a trial that ends before
its first flush costs one directory, one open and one write, none of them on
the run loop's thread.

How each kind of domain is declared, and how values are flattened: see
``tuner.tensorboard.hparams``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import numbers
import os
import re
import shutil
import threading
import time
from typing import Any, Iterable

from tensorboard.plugins.hparams import api_pb2

from tuner.tensorboard import event_file as tbw
from tuner.callbacks import Callback
from tuner.storage import fs
from tuner.tensorboard.hparams import (
    domain_hparam_info,
    flatten_config,
    hparam_value,
    inner_paths,
    lineage_text,
    numeric_metrics,
    space_leaves,
    value_hparam_info,
)
from tuner.trial import Trial

logger = logging.getLogger(__name__)

EXPERIMENT_DIR = "_experiment"
#: A URI storage: changed event files are uploaded at most this often (and at the end): with the
#: default flush_secs, at each flush, so a killed driver loses no more of the view on a bucket than
#: on a disk (the unflushed last seconds; the journal has every result).
UPLOAD_EVERY_S = 2.0
STOPPED_EARLY = "tuner/stopped_early"
SUPERSEDED = "pbt/superseded"
PBT_DONOR = "pbt/donor"
PBT_SEGMENT = "pbt/segment"


def _guarded(hook):
    """Runs a hook under the callback's lock; a failing disk (OSError) turns the
    export off with one warning instead of stopping the sweep."""

    @functools.wraps(hook)
    def wrapper(self: TensorBoardCallback, *args: Any) -> None:
        if self._failure is not None:
            return
        with self._lock:
            try:
                hook(self, *args)
            except OSError as exc:
                self._stop_exporting(exc)

    return wrapper


class TensorBoardCallback(Callback):
    """Writes the sweep for TensorBoard's HParams tab while it runs.

    Args:
        logdir: where to write; default ``<experiment_path>/tensorboard``.
        flush_secs: events, session ends included, reach the disk at least
            this often, so a running sweep is visible live;
            TensorBoard itself reloads every 5 s by default.
        exclude_metrics: numeric result keys not exported (``timestamp`` is a
            wall-clock time, not a metric).

    ``tune.run`` adds one by default when ``tensorboard`` is installed
    (``log_to_tensorboard=False`` turns it off); pass your own to change its
    arguments.

    Example:
        >>> tune.run(train, config=space, callbacks=[TensorBoardCallback(flush_secs=5)])  # doctest: +SKIP
        $ tensorboard --logdir <experiment>/tensorboard --host 127.0.0.1
    """

    def __init__(self, logdir: str | None = None, flush_secs: float = 2.0,
                 exclude_metrics: tuple[str, ...] = ("timestamp",)) -> None:
        if not isinstance(flush_secs, (int, float)) or not flush_secs > 0:
            raise ValueError(f"The value of `flush_secs` is {flush_secs!r}, but must be `flush_secs > 0`.")
        self.logdir = logdir
        self.flush_secs = flush_secs
        self.exclude_metrics = tuple(exclude_metrics)
        self._dir: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self._hparams: dict[str, api_pb2.HParamInfo] = {}
        self._leaves: set[tuple[str, ...]] = set()
        self._inner: frozenset[tuple[str, ...]] = frozenset()
        self._metrics: list[str] = []
        self._metric_set: set[str] = set()
        self._metric_notes: dict[str, str] = {}
        self._version = 0
        self._dirty_experiment = False
        self._runs: dict[str, _Run] = {}
        self._open: dict[str, _Run] = {}  # runs with an open writer: what a flush looks at
        # Ended sessions, written and closed by the flush thread: at 100k one-result trials their
        # files (a mkdir, an open, a write each) were a quarter of the run loop's time.
        self._ended: list[tbw.EventFileWriter] = []
        self._resumed = False  # an earlier process wrote here: trials may have PBT segments on disk
        self._failure: OSError | None = None
        self._mirror: Any = None  # a URI storage: event files are written here and uploaded (tuner.storage.fs)
        self._next_upload = 0.0

    # --- Callback hooks ---------------------------------------------------------------------

    @_guarded
    def setup(self, experiment_path: str, space: dict[str, Any], metric: Any, mode: Any) -> None:
        self._dir = self.logdir or fs.join(experiment_path, "tensorboard")
        if fs.is_uri(self._dir):
            self._mirror = fs.Mirror(self._dir)
            self._mirror.pull()  # a resumed sweep continues the files an earlier driver uploaded
            self._dir = self._mirror.local
        os.makedirs(self._dir, exist_ok=True)
        for path, value in space_leaves(space or {}):
            self._leaves.add(path)
            info = domain_hparam_info("/".join(path), value)
            if info is not None:
                self._hparams[info.name] = info
        self._inner = inner_paths(self._leaves)
        metrics = [metric] if isinstance(metric, str) else list(metric or [])
        modes = [mode] if isinstance(mode, str) else list(mode or [])
        for i, name in enumerate(metrics):
            self._add_metric(name)
            self._metric_notes[name] = f"tuned metric (mode={modes[i]})" if i < len(modes) else "tuned metric"
        self._resume_experiment()
        self._write_experiment()
        self._stop.clear()
        self._flusher = threading.Thread(target=self._flush_loop, name="tensorboard-flush", daemon=True)
        self._flusher.start()

    @_guarded
    def on_trial_start(self, trial: Trial) -> None:
        # Reaches the disk at the next flush (within flush_secs), or with the trial's end if that
        # comes first: a short trial costs one directory, one open and one write.
        run = self._run(trial)
        self._ensure_started(trial, run)

    @_guarded
    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> None:
        run = self._run(trial)
        self._ensure_started(trial, run)
        values = numeric_metrics(result, self.exclude_metrics)
        self._declare_metrics(values)
        self._write_scalars(run, values, result.get("training_iteration"))

    @_guarded
    def on_trial_config_change(self, trial: Trial, old_config: dict[str, Any], donor_id: str | None) -> None:
        run = self._run(trial)
        self._ensure_started(trial, run, config=old_config)
        for name, dtype in ((PBT_DONOR, tbw.STRING), (PBT_SEGMENT, tbw.FLOAT64)):
            if name not in self._hparams:
                self._hparams[name] = tbw.hparam_info(name, dtype, description="PBT lineage")
                self._dirty_experiment = True
        self._declare_metrics([SUPERSEDED])
        self._write_scalars(run, {SUPERSEDED: 1.0}, run.step)
        self._end(run, api_pb2.STATUS_SUCCESS)
        donor = self._runs.get(donor_id) if donor_id else None
        donor_name = donor.name if donor is not None else (donor_id or "")
        segment = run.segment + 1
        self._runs[trial.trial_id] = _Run(trial.trial_id, segment, donor=donor_name, step=run.step)
        new = self._run(trial)
        self._ensure_started(trial, new)
        new.writer.write(tbw.text_event("pbt/lineage", lineage_text(
            trial.trial_id, segment, donor_id, donor_name, run.step,
            self._flatten(old_config), self._flatten(trial.config)), run.step))
        new.writer.flush()

    @_guarded
    def on_trial_complete(self, trial: Trial) -> None:
        run = self._run(trial)
        self._ensure_started(trial, run)
        self._declare_metrics([STOPPED_EARLY])
        if trial.stop_reason:
            self._write_scalars(run, {STOPPED_EARLY: 1.0}, run.step)
            run.writer.write(tbw.text_event("tuner/end", f"Stopped early: {trial.stop_reason}", run.step))
        self._end(run, api_pb2.STATUS_SUCCESS)

    @_guarded
    def on_trial_error(self, trial: Trial) -> None:
        run = self._run(trial)
        self._ensure_started(trial, run)
        last_line = (trial.error or "").strip().splitlines()[-1:] or ["unknown error"]
        run.writer.write(tbw.text_event("tuner/end", f"Error: {last_line[0][:500]}", run.step))
        self._end(run, api_pb2.STATUS_FAILURE)

    def flush(self) -> None:
        """Write everything pending now, ended sessions included, instead of within ``flush_secs``."""
        self._write_ended()
        self._flush_all()

    def on_experiment_end(self, trials: list[Trial]) -> None:
        """Flushes and closes every file; a trial still running keeps no session end
        (it shows as running/unknown, and a resumed sweep continues it)."""
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join()
            self._flusher = None
        self._close_all()
        self._upload(force=True)

    # --- internals --------------------------------------------------------------------------

    @_guarded
    def _close_all(self) -> None:
        ended, self._ended = self._ended, []
        _close_writers(ended)
        for run in self._open.values():
            run.writer.close()
            run.writer = None
        self._open.clear()

    def _run(self, trial: Trial) -> _Run:
        run = self._runs.get(trial.trial_id)
        if run is None:
            # A resumed sweep continues the trial's latest PBT segment on disk.
            segment = latest_segment(os.path.join(self._dir, trial.trial_id)) if self._resumed else 0
            run = _Run(trial.trial_id, segment)
            self._runs[trial.trial_id] = run
        if run.writer is None:
            run.writer = tbw.EventFileWriter(os.path.join(self._dir, run.name), lazy=True)
            self._open[run.name] = run
        return run

    def _ensure_started(self, trial: Trial, run: _Run, config: dict[str, Any] | None = None) -> None:
        """Writes the session start once per run and process (TensorBoard ignores a repeat)."""
        if run.started:
            return
        values = self._flatten(trial.config if config is None else config)
        for name, value in values.items():
            if name not in self._hparams:
                self._hparams[name] = value_hparam_info(name, value)
                self._dirty_experiment = True
        hparams = {name: hparam_value(value, self._hparams[name].type) for name, value in values.items()}
        # Every session carries the bookkeeping values, declared or not yet: the
        # parallel-coordinates view draws no line for a session missing a column.
        hparams[PBT_DONOR] = run.donor
        hparams[PBT_SEGMENT] = run.segment
        if self._dirty_experiment:
            self._write_experiment()
        run.writer.write(tbw.session_start_event(hparams, group_name=run.name))
        self._write_scalars(run, {STOPPED_EARLY: 0.0, SUPERSEDED: 0.0}, run.step)
        run.started = True

    def _declare_metrics(self, names: Iterable[str]) -> None:
        for name in names:
            if name not in self._metric_set:
                self._add_metric(name)
                self._dirty_experiment = True
        if self._dirty_experiment:
            self._write_experiment()

    def _write_scalars(self, run: _Run, values: dict[str, float], step: Any) -> None:
        if not values:
            return
        if type(step) is not int:  # the common case first: isinstance on numbers.Integral is slow
            step = int(step) if isinstance(step, numbers.Integral) and not isinstance(step, bool) else run.step + 1
        run.step = step
        run.writer.write(tbw.scalars_event(values, step))

    def _end(self, run: _Run, status: int) -> None:
        run.writer.write(tbw.session_end_event(status))
        self._ended.append(run.writer)
        run.writer = None
        self._open.pop(run.name, None)

    def _add_metric(self, name: str) -> None:
        if name not in self._metric_set:
            self._metric_set.add(name)
            self._metrics.append(name)

    def _flatten(self, config: dict[str, Any]) -> dict[str, Any]:
        return flatten_config(config or {}, self._leaves, self._inner)

    def _resume_experiment(self) -> None:
        """Keeps what an earlier process of this sweep declared (resume)."""
        versions = experiment_versions(self._dir)
        if not versions:
            return
        self._resumed = True
        self._version = max(versions)
        old = tbw.read_experiment(os.path.join(self._dir, EXPERIMENT_DIR, f"v{self._version}"))
        if old is None:
            return
        for info in old.hparam_infos:
            self._hparams.setdefault(info.name, info)
        for info in old.metric_infos:
            self._add_metric(info.name.tag)

    def _write_experiment(self) -> None:
        """Writes the config to a new version directory, then deletes the older ones."""
        self._dirty_experiment = False
        self._version += 1
        root = os.path.join(self._dir, EXPERIMENT_DIR)
        writer = tbw.EventFileWriter(os.path.join(root, f"v{self._version}"))
        writer.write(tbw.experiment_event(list(self._hparams.values()), self._metrics, self._metric_notes))
        writer.close()
        for version in experiment_versions(self._dir):
            if version != self._version:
                if self._mirror is not None:
                    self._mirror.sync()  # the new version is up before the old one goes
                    self._mirror.delete_dir(os.path.join(EXPERIMENT_DIR, f"v{version}"))
                shutil.rmtree(os.path.join(root, f"v{version}"), ignore_errors=True)

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.flush_secs):
            self._write_ended()
            self._flush_all()

    def _write_ended(self) -> None:
        """The sessions ended since the last flush, written outside the lock: the run loop's
        hooks go on meanwhile (file creation mostly waits on the disk, not on the GIL)."""
        if self._failure is not None:
            return
        with self._lock:
            ended, self._ended = self._ended, []
        try:
            _close_writers(ended)
        except OSError as exc:
            with self._lock:
                self._stop_exporting(exc)

    def _stop_exporting(self, exc: OSError) -> None:
        """A failing disk turns the export off, with one warning (the caller holds the lock)."""
        if self._failure is None:
            self._failure = exc
            logger.warning("TensorBoard export to %s stopped, the sweep goes on: %s", self._dir, exc)

    @_guarded
    def _flush_all(self) -> None:
        """Every open run (a few per CPU), not every trial the sweep has seen; one checksum batch."""
        tbw.flush_all([run.writer for run in self._open.values()])
        self._upload()

    def _upload(self, force: bool = False) -> None:
        """A URI storage: the event files changed since the last upload, at most every UPLOAD_EVERY_S."""
        if self._mirror is None or (not force and time.monotonic() < self._next_upload):
            return
        self._next_upload = time.monotonic() + UPLOAD_EVERY_S
        self._mirror.sync()


def _close_writers(writers: list[tbw.EventFileWriter]) -> None:
    tbw.flush_all(writers)  # one checksum batch for all of them
    for writer in writers:
        writer.close()


@dataclasses.dataclass
class _Run:
    """The session (TensorBoard run) a trial currently writes to."""

    trial_id: str
    segment: int
    donor: str = ""
    step: int = 0
    started: bool = False
    writer: tbw.EventFileWriter | None = None

    @property
    def name(self) -> str:
        return self.trial_id if self.segment == 0 else f"{self.trial_id}/pbt_{self.segment}"


def latest_segment(trial_dir: str) -> int:
    """The highest ``pbt_<k>`` segment already on disk for a trial (0 if none)."""
    try:
        names = os.listdir(trial_dir)
    except OSError:
        return 0
    return max((int(m.group(1)) for n in names if (m := re.fullmatch(r"pbt_(\d+)", n))), default=0)


def experiment_versions(tb_dir: str) -> list[int]:
    try:
        names = os.listdir(os.path.join(tb_dir, EXPERIMENT_DIR))
    except OSError:
        return []
    return [int(m.group(1)) for n in names if (m := re.fullmatch(r"v(\d+)", n))]
