"""The experiment on disk: spec, state, journal and per-trial files.

    <storage_path>/<experiment>/
      experiment.json    the sweep's arguments, space, scheduler and searcher (written once)
      journal.jsonl      every event (``tuner.storage.journal``): the source of truth
      state.json         the latest scheduler and searcher snapshots (for resume)
      driver.lock        the driver that holds the experiment (``tuner.storage.lock``)
      tensorboard/       the HParams view (``tuner.tensorboard``)
      trials/<trial_id>/ params.json result.jsonl progress.csv error.txt decisions.jsonl
                         checkpoints/<iteration, 6 digits>/

The journal is the source of truth: every result is appended (and flushed to
the OS, so a SIGKILL of the driver loses nothing) before any decision taken
from it is applied. The per-trial files are convenient views of the same data.

``path`` may be a URI (``s3://bucket/prefix``): every file goes through
``tuner.storage.fs``. There the journal is made durable once per pass of the
run loop (``sync``, one PUT), and a trial's appended views (result.jsonl,
progress.csv, decisions.jsonl) are written whole when the trial ends and when
the experiment closes, instead of one PUT per result and file: while a trial
runs, its results are in the journal (``tune.load``, ``tuner show``).
"""

from __future__ import annotations

import csv
import io
import os
import time
from typing import Any

from tuner.storage import checkpoint as ckpt_lib
from tuner.storage import fs, journal
from tuner.storage import jsonio as jsonutil
from tuner.storage import relay as relay_lib
from tuner.result_history import ResultBudget, ResultHistory
from tuner.trial import Trial
from tuner.validation import is_number
from tuner.space.config import flatten_dict

#: Where experiments go when neither ``storage_path`` nor $TUNER_STORAGE_PATH says.
DEFAULT_STORAGE = "~/tuner_results"
SPEC = "experiment.json"
STATE = "state.json"
# What to do about a damaged file, for the errors that name it.


def storage_root(storage_path: str | None) -> str:
    """The directory (or URI) experiments go under: the argument, else $TUNER_STORAGE_PATH, else
    ``DEFAULT_STORAGE``; a local path made absolute, ``~`` expanded."""
    return fs.normalize(storage_path or os.environ.get("TUNER_STORAGE_PATH", DEFAULT_STORAGE))


SPEC_FIX = ("It holds the sweep's settings (trainable, metric, mode, search space); restore it from a backup or "
            "write it again by hand: the results themselves are in journal.jsonl, untouched.")
STATE_FIX = ("It holds the scheduler's and searcher's snapshot; delete it and resume: the snapshot is rebuilt "
             "from journal.jsonl.")


def flatten(d: dict[str, Any], sep: str = "/") -> dict[str, Any]:
    """Nested dicts become "a/b" keys (``tuner.space.flatten_dict``); the common flat result
    is returned as is, without a copy (this runs for every result)."""
    if not any(isinstance(v, dict) for v in d.values()):
        return d
    return flatten_dict(d, sep)


def metric_names(metric: Any) -> list[str]:
    """The sweep's metric(s) as a list of names (none when it has none)."""
    if isinstance(metric, str):
        return [metric]
    return [m for m in metric if isinstance(m, str)] if isinstance(metric, (list, tuple)) else []


def write_spec(path: str, spec: dict[str, Any]) -> None:
    """``experiment.json`` (atomically), written before the journal is created: a journal always has
    its spec beside it (a driver killed in between left an experiment nothing could resume)."""
    fs.makedirs(path)
    jsonutil.write_atomic(fs.join(path, SPEC), spec)


class ExperimentStorage:
    """Appends events and writes trial files for one experiment directory.

    ``trial_files=False`` is the compact layout for very large sweeps: the per-trial
    views (params.json, result.jsonl, progress.csv, decisions.jsonl) are not written,
    which saves a directory and three files per trial; the journal holds the same data
    and ``tune.load`` / ``tuner show`` read it. Checkpoints and error.txt are still
    written under ``trials/<trial_id>/``.
    """

    def __init__(self, path: str, trial_files: bool = True, metrics: Any = None) -> None:
        self.path = fs.normalize(path)
        self.remote = fs.is_uri(self.path)
        self.trial_files = trial_files
        fs.makedirs(fs.join(self.path, "trials"))
        self.journal = journal.JournalWriter(self.path)
        # Trials' results: held up to a budget, then read back from a local journal (``tuner.result_history``).
        self._results = None if self.remote else journal.ResultReader(self.path)
        self._budget = ResultBudget(watch=metric_names(metrics))  # summarised per trial for problems()
        self.token = relay_lib.write_token(self.path)  # lets a worker tell whether it sees this directory
        self._files: dict[str, tuple[io.TextIOBase, io.TextIOBase]] = {}
        self._csv_fields: dict[str, list[str]] = {}
        self._unwritten: dict[str, Trial] = {}  # object store: trials whose views are written at their end
        self._decisions: dict[str, list[str]] = {}  # object store: each trial's decisions.jsonl lines
        self._current: set[str] = set()  # trials whose local views this driver wrote or rewrote (= the journal)
        self.lineage: list[journal.ConfigChanged | journal.DecisionMade] = []  # as the journal's replay has it

    # --- experiment level ---------------------------------------------------------------
    def write_state(self, state: dict[str, Any]) -> None:
        """Scheduler and searcher snapshots for resume (atomic: never half a file)."""
        jsonutil.write_atomic(fs.join(self.path, STATE), state)

    def event(self, record: journal.Record) -> None:
        """Append one record to the journal."""
        self.journal.write(record)

    def sync(self) -> None:
        """Make every record so far durable (a no-op locally, where each is flushed as written)."""
        self.journal.sync()

    def trial_dir(self, trial_id: str) -> str:
        return fs.join(self.path, "trials", trial_id)

    # --- trial level --------------------------------------------------------------------
    def add_trial(self, trial: Trial, dirname: str | None = None) -> None:
        """Record a new trial; its directory is ``trials/<dirname or trial_id>``.

        The journal first, then the directory: a driver killed in between leaves a journaled trial
        whose files ``restore_trial_files`` makes on resume. The other order left a directory with no
        record, whose id a resume never reuses (``journal.next_trial_index``), so the resumed sweep
        gave the next config another id (and a seeded searcher that had noted the id, another config)."""
        trial.path = self.trial_dir(dirname or trial.trial_id)
        trial.history = ResultHistory(self._results, trial.trial_id, budget=self._budget)
        self.event(journal.TrialAdded(trial.trial_id, trial.config, trial.seed, str(trial.resources),
                                      name=trial.name, dirname=dirname))
        if self.trial_files:
            fs.makedirs(trial.path)
            jsonutil.write_atomic(fs.join(trial.path, "params.json"), trial.config, parent_exists=True)

    def restore_trial_files(self, trial: Trial) -> None:
        """The directory and params.json of a journaled trial whose driver died before making them
        (``add_trial``); the resume calls it for the last trial added, the only one that can lack them."""
        if self.trial_files and trial.path is not None and not fs.exists(fs.join(trial.path, "params.json")):
            fs.makedirs(trial.path)
            jsonutil.write_atomic(fs.join(trial.path, "params.json"), trial.config, parent_exists=True)

    def config_changed(self, trial: Trial, donor: Trial, old_config: dict[str, Any], info: dict[str, Any],
                       checkpoint: tuple[str, int, dict[str, Any]] | None = None,
                       resources: str | None = None) -> None:
        """A new current config adopted from ``donor``'s latest checkpoint (PBT exploit); the
        lineage lives in these events. ``checkpoint``: (path, iteration, metrics) of the donor's state
        copied to the trial, journaled in the same write (a crash never leaves one without the other).
        ``resources``: the trial's new shape, when per-trial resources re-shaped it."""
        if self.trial_files:
            jsonutil.write_atomic(fs.join(trial.path, "params.json"), trial.config)
        record = journal.ConfigChanged(
            trial.trial_id, trial.config, time=time.time(), iteration=_iteration(trial), donor_id=donor.trial_id,
            old_config=old_config, donor_checkpoint=donor.checkpoint_path,
            donor_iteration=donor.checkpoint_iteration, info=info, resources=resources)
        records: list[journal.Record] = [record]
        if checkpoint is not None:
            path, iteration, metrics = checkpoint
            records.append(journal.Checkpoint(trial.trial_id, iteration, path, metrics))
        self.journal.write_many(records)
        self.lineage.append(record)

    def append_results(self, trial: Trial, results: list[dict[str, Any]],
                       checkpoints: list[str | None] | None = None) -> list[dict[str, Any] | None]:
        """Journal first (the truth), then the trial's history (where each result lies in the journal)
        and its own views. ``checkpoints``: the path each result was published with (or None); their
        records go into the same write as the results, so a crash never leaves a result journaled
        without the checkpoint saved with it. Returns each checkpoint's metrics (see ``checkpoint_saved``)."""
        tid = trial.trial_id
        records: list[journal.Record] = []
        saved: list[dict[str, Any] | None] = []
        for result, path in zip(results, checkpoints or [None] * len(results)):
            records.append(journal.Result(tid, result))
            metrics = None
            if path is not None:
                metrics = {k: v for k, v in result.items() if is_number(v)}
                records.append(journal.Checkpoint(tid, int(result.get("training_iteration", 0)), path, metrics))
            saved.append(metrics)
        where = self.journal.write_many(records)
        if where is not None and len(where) > len(results):  # a checkpoint's record follows its result's
            where = [w for w, r in zip(where, records) if type(r) is journal.Result]
        trial.history.extend(results, where if trial.history.in_journal else None)
        self._views(trial, results)
        return saved

    def _views(self, trial: Trial, results: list[dict[str, Any]]) -> None:
        tid = trial.trial_id
        if not self.trial_files:
            return
        if self.remote:
            self._unwritten[tid] = trial
            return
        failure = None
        try:
            self._append_views(trial, results)
        except OSError as exc:
            failure = exc
        if failure is not None:  # raised outside the except block: not "while handling" the original
            raise fs.write_failed(fs.join(trial.path, "result.jsonl / progress.csv"), failure, self.path)

    def _append_views(self, trial: Trial, results: list[dict[str, Any]]) -> None:
        tid = trial.trial_id
        earlier = len(trial.history) > len(results)  # results before this batch (no copy of the history)
        if tid not in self._current and earlier:
            self.rewrite_views(trial)  # this driver's first write: the files may lag the journal (a crash)
            return
        self._current.add(tid)
        jsonl, progress = self._open(trial)
        jsonl.write("".join(jsonutil.dumps(r) + "\n" for r in results))
        rows = [flatten(r) for r in results]
        fields = self._csv_fields.get(tid)
        if fields is None and not earlier:
            fields = self._csv_fields[tid] = list(dict.fromkeys(k for row in rows for k in row))
            csv.writer(progress).writerow(fields)
        if fields is None or any(k not in fields for row in rows for k in row):
            self._rewrite_csv(trial)
        else:
            csv.writer(progress).writerows([row.get(k, "") for k in fields] for row in rows)
        # To the OS after each batch, as the journal is: a SIGKILL of the driver loses no row.
        jsonl.flush()
        self._files[tid][1].flush()

    def rollback(self, trial: Trial, iteration: int) -> None:
        """``trial`` forgot its results past ``iteration`` (``Trial.rollback``, already applied): journal it,
        and make its result.jsonl and progress.csv say the same (the rows come again)."""
        self.event(journal.Rollback(trial.trial_id, iteration))
        self.rewrite_views(trial)

    def rewrite_views(self, trial: Trial) -> None:
        """result.jsonl and progress.csv rewritten from the trial's history (the journal's view), atomically;
        on an object store they are written whole when the trial ends, from its history, anyway."""
        if not self.trial_files or trial.path is None:
            return
        if self.remote:
            self._unwritten[trial.trial_id] = trial
            return
        self.close_trial(trial.trial_id)
        os.makedirs(trial.path, exist_ok=True)
        rows = [flatten(r) for r in trial.history]
        fields = list(dict.fromkeys(k for row in rows for k in row))
        buf = io.StringIO(newline="")
        if rows:
            writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\r\n")
            writer.writeheader()
            writer.writerows(rows)
        for name, text in (("result.jsonl", "".join(jsonutil.dumps(r) + "\n" for r in trial.history)),
                           ("progress.csv", buf.getvalue())):
            target = os.path.join(trial.path, name)
            tmp = f"{target}.{os.getpid()}.tmp"
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, target)
        if rows:
            self._csv_fields[trial.trial_id] = fields
        else:
            self._csv_fields.pop(trial.trial_id, None)
        self._current.add(trial.trial_id)

    def _open(self, trial: Trial) -> tuple[io.TextIOBase, io.TextIOBase]:
        files = self._files.get(trial.trial_id)
        if files is None:
            files = (open(os.path.join(trial.path, "result.jsonl"), "a", encoding="utf-8"),
                     open(os.path.join(trial.path, "progress.csv"), "a", newline="", encoding="utf-8"))
            self._files[trial.trial_id] = files
        return files

    def _rewrite_csv(self, trial: Trial) -> None:
        """New columns appeared: rewrite progress.csv from the trial's history."""
        rows = [flatten(r) for r in trial.history]
        fields: list[str] = []
        for row in rows:
            fields.extend(k for k in row if k not in fields)
        self._csv_fields[trial.trial_id] = fields
        old = self._files.pop(trial.trial_id)
        old[1].close()
        with open(os.path.join(trial.path, "progress.csv"), "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        self._files[trial.trial_id] = (old[0], open(os.path.join(trial.path, "progress.csv"), "a", newline=""))

    def checkpoint_saved(self, trial: Trial, path: str, iteration: int, result: dict[str, Any]) -> dict[str, Any]:
        """A worker published a checkpoint of ``iteration`` at ``path``: journal its path, iteration and
        the metrics reported with it (numbers only); returns those metrics."""
        metrics = {k: v for k, v in result.items() if is_number(v)}
        self.event(journal.Checkpoint(trial.trial_id, iteration, path, metrics))
        return metrics

    def delete_checkpoint(self, trial: Trial, path: str) -> None:
        if self.remote:  # durable first: the journal never lists a checkpoint it has seen deleted
            self.event(journal.CheckpointDeleted(trial.trial_id, path))
            self.sync()
            ckpt_lib.delete(path)
            return
        ckpt_lib.delete(path)
        self.event(journal.CheckpointDeleted(trial.trial_id, path))

    def decision(self, trial: Trial, action: str, reason: str, info: dict[str, Any]) -> None:
        record = journal.DecisionMade(trial.trial_id, action, reason, info, _iteration(trial))
        self.event(record)
        self.lineage.append(record)
        if not self.trial_files:
            return
        line = record.to_dict()
        del line["event"]
        if self.remote:
            lines = self._decisions.get(trial.trial_id)
            if lines is None:  # an earlier run's, kept
                earlier = fs.join(trial.path, "decisions.jsonl")
                lines = self._decisions[trial.trial_id] = [fs.read_text(earlier)] if fs.exists(earlier) else []
            lines.append(jsonutil.dumps(line) + "\n")
            self._unwritten[trial.trial_id] = trial
            return
        with open(os.path.join(trial.path, "decisions.jsonl"), "a", encoding="utf-8") as f:
            f.write(jsonutil.dumps(line) + "\n")

    def status(self, trial: Trial) -> None:
        """Record a status change; an error also writes error.txt with the full traceback."""
        if trial.error and trial.status.value == "ERROR":
            fs.write_text(fs.join(trial.path, "error.txt"), trial.error)
        self.event(journal.Status(trial.trial_id, trial.status.value, trial.error, trial.stop_reason,
                                  trial.num_failures))
        if trial.status.is_finished():
            self.close_trial(trial.trial_id)

    def close_trial(self, trial_id: str) -> None:
        for f in self._files.pop(trial_id, ()):
            f.close()
        trial = self._unwritten.pop(trial_id, None)
        if trial is not None:
            self._write_views(trial)

    def _write_views(self, trial: Trial) -> None:
        """Object store: a trial's result.jsonl, progress.csv and decisions.jsonl, whole (3 PUTs)."""
        history = trial.history
        fs.write_text(fs.join(trial.path, "result.jsonl"), "".join(jsonutil.dumps(r) + "\n" for r in history))
        rows = [flatten(r) for r in history]
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(dict.fromkeys(k for row in rows for k in row)))
        writer.writeheader()
        writer.writerows(rows)
        fs.write_text(fs.join(trial.path, "progress.csv"), out.getvalue())
        if trial.trial_id in self._decisions:
            fs.write_text(fs.join(trial.path, "decisions.jsonl"), "".join(self._decisions[trial.trial_id]))

    def close(self) -> None:
        """Close every file, even when one fails (a full disk fails each flush); then raise the first error."""
        first: OSError | None = None
        files = [f for pair in self._files.values() for f in pair]
        self._files.clear()
        views = [lambda t=t: self._write_views(t) for t in self._unwritten.values()]
        self._unwritten.clear()
        for close in [f.close for f in files] + views + [self.journal.close]:
            try:
                close()
            except OSError as exc:
                first = first or exc
        if first is not None:
            raise first


def _iteration(trial: Trial) -> int | None:
    return trial.last_result.get("training_iteration") if trial.last_result else None
