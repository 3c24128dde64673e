"""What ``tuner ls`` and ``tuner show`` read and print: experiments as tables, CSV or JSON.

Everything comes from ``experiment.json`` and ``journal.jsonl`` (JSON): listing
or showing an experiment never unpickles anything, not even a checkpoint.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import math
import os
from typing import Any

import click

from tuner.storage import jsonio as jsonutil
from tuner.execution.resources import resources_worth_showing
from tuner.results import load
from tuner.space.config import config_changes
from tuner.storage import fs, journal
from tuner.storage.experiment import SPEC, SPEC_FIX, flatten
from tuner.storage.journal import JOURNAL, Event
from tuner.storage.lock import read_holder, stale_reason
from tuner.trial import TrialStatus
from tuner.validation import MODES

# The journal's last experiment-level event says how the experiment ended.
_ENDINGS = {Event.EXPERIMENT_END: "finished", Event.INTERRUPTED: "interrupted", Event.RESUMED: "unfinished"}


class InspectError(ValueError):
    """A directory or column that does not exist; the message says what does."""


# --- reading ------------------------------------------------------------------------------------


def is_experiment(path: str) -> bool:
    return journal.exists(path)


def find_experiments(root: str) -> list[str]:
    """The experiment directories in ``root`` (or ``root`` itself when it is one)."""
    root = fs.normalize(root)
    if is_experiment(root):
        return [root]
    if not fs.isdir(root):
        raise InspectError(f"{root}: no such directory")
    return sorted(fs.join(root, d) for d in fs.listdir(root) if is_experiment(fs.join(root, d)))


def ending(path: str) -> str:
    """finished, interrupted, or unfinished (still running, or its driver was killed)."""
    return _ENDINGS.get(journal.last_ending(path), "unfinished")


def summarize(path: str) -> dict[str, Any]:
    """``Experiment(path).summary()``, or for a damaged experiment a row that says what is damaged
    (one bad directory must not hide the others from ``tuner ls``)."""
    try:
        return Experiment(path).summary()
    except (ValueError, OSError) as exc:  # DamagedFileError, JournalError, an unreadable file
        return {"name": fs.basename(path), "path": path, "status": "damaged", "problem": str(exc),
                "trainable": None, "metric": None, "mode": None, "scheduler": None, "searcher": None,
                "trials": None, "counts": {}, "start_time": "", "best_trial": None, "best_value": None}


class Experiment:
    """One experiment directory, read from its JSON files."""

    def __init__(self, path: str, metric: str | None = None, mode: str | None = None) -> None:
        path = fs.normalize(path)
        if not is_experiment(path):
            raise InspectError(f"{path} is not an experiment directory (no {JOURNAL} in it); "
                               "`tuner ls DIR` lists the experiments in DIR")
        self.path = path
        self.spec: dict[str, Any] = jsonutil.read(fs.join(path, SPEC), SPEC_FIX) if fs.exists(
            fs.join(path, SPEC)) else {}
        self.results = load(path, metric, mode)
        self.metric, self.mode = self.results.metric, self.results.mode
        self.status = ending(path)
        holder = read_holder(path)
        if holder and stale_reason(holder) is None:
            self.status = "running"

    @property
    def name(self) -> str:
        return fs.basename(self.path)

    def counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in TrialStatus}
        for trial in self.results.trials:
            counts[trial.status.value] += 1
        return {k: v for k, v in counts.items() if v}

    def best(self):
        """The best trial by the experiment's metric (None without a single metric/mode)."""
        if not isinstance(self.metric, str) or self.mode not in MODES:
            return None
        return self.results.get_best_trial(self.metric, self.mode)

    def start_time(self) -> str:
        start = self.spec.get("start_time")
        return datetime.datetime.fromtimestamp(start).strftime("%Y-%m-%d %H:%M:%S") if start else ""

    def summary(self) -> dict[str, Any]:
        best = self.best()
        return {
            "name": self.name, "path": self.path, "status": self.status, "trainable": self.spec.get("trainable_import")
            or self.spec.get("trainable"), "metric": self.metric, "mode": self.mode,
            "scheduler": (self.spec.get("scheduler") or {}).get("class"),
            "searcher": (self.spec.get("searcher") or {}).get("class"),
            "trials": len(self.results.trials), "counts": self.counts(), "start_time": self.start_time(),
            "best_trial": best.trial_id if best else None,
            "best_value": best.metric(self.metric) if best else None,
        }

    def rows(self, first: int | None = None) -> list[dict[str, Any]]:
        """One flat row per trial (the ``first`` ones only, when given): id, status, config/*, the
        last result, stop reason, checkpoint, error."""
        rows = self.results.rows(first=first)
        for row, trial in zip(rows, self.results.trials):
            row["resources"] = str(trial.resources) if trial.resources is not None else None
            row["stop_reason"] = trial.stop_reason
            row["checkpoint"] = trial.checkpoint_path
            row["error"] = (trial.error or "").strip().splitlines()[-1] if trial.error else None
        return rows

    def default_columns(self, rows: list[dict[str, Any]]) -> list[str]:
        """id, status, the hyperparameters that differ, the iteration, the metric(s), why a trial stopped."""
        keys = list(dict.fromkeys(k for row in rows for k in row if k.startswith("config/")))
        varying = [k for k in keys if len({repr(r.get(k)) for r in rows}) > 1] or keys[:6]
        metrics = self.metric if isinstance(self.metric, list) else [self.metric] if self.metric else []
        extra = [c for c in ("stop_reason", "error") if any(r.get(c) for r in rows)]
        shapes = ["resources"] if resources_worth_showing([r.get("resources") for r in rows]) else []
        return ["trial_id", "status", *varying[:8], *shapes, "training_iteration", *metrics, *extra]

    def best_record(self) -> dict[str, Any]:
        best = self.best()
        if best is None:
            raise InspectError(
                f"{self.path}: no best trial: " + ("no trial has reported "
                                                   f"{self.metric!r} yet" if isinstance(self.metric, str)
                                                   and self.mode in MODES
                                                   else "the experiment has no single metric/mode; pass --metric "
                                                        "KEY --mode min|max"))
        return {"trial_id": best.trial_id, "status": best.status.value, "metric": self.metric, "mode": self.mode,
                "value": best.metric(self.metric), "config": best.config, "last_result": best.last_result,
                "checkpoint": best.checkpoint_path, "path": best.path}

    def lineage(self) -> list[dict[str, Any]]:
        return self.results.pbt_lineage()


def sort_rows(rows: list[dict[str, Any]], key: str, descending: bool) -> list[dict[str, Any]]:
    """Rows by ``key``, missing values and NaN last whatever the direction."""
    if rows and not any(key in r for r in rows):
        raise InspectError(f"cannot sort by {key!r}: no trial has it; columns: {', '.join(columns_of(rows))}")

    def missing(row: dict[str, Any]) -> bool:
        v = row.get(key)
        return v is None or (isinstance(v, float) and math.isnan(v))

    present = [r for r in rows if not missing(r)]
    try:
        present.sort(key=lambda r: r[key], reverse=descending)
    except TypeError:  # mixed types: compare as text
        present.sort(key=lambda r: str(r[key]), reverse=descending)
    return present + [r for r in rows if missing(r)]


def columns_of(rows: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(k for row in rows for k in row))


def pick_columns(rows: list[dict[str, Any]], wanted: list[str]) -> list[str]:
    known = columns_of(rows)
    unknown = [c for c in wanted if c not in known]
    if unknown and rows:
        raise InspectError(f"unknown column {unknown[0]!r}; columns: {', '.join(known)}")
    return wanted


# --- writing --------------------------------------------------------------------------------------


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, (dict, list)):
        return json.dumps(jsonable(value))
    return str(value)


def jsonable(value: Any) -> Any:
    """Strict JSON: NaN and infinities become null."""
    value = jsonutil.to_jsonable(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


def to_json(value: Any) -> str:
    return json.dumps(jsonable(value), indent=2)


def to_csv(rows: list[dict[str, Any]], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(row.get(c)) for c in columns])
    return out.getvalue()


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    return json.dumps(jsonable(value)) if isinstance(value, (dict, list)) else value


def table(rows: list[dict[str, Any]], columns: list[str], title: str | None = None):
    from rich.table import Table
    from rich.text import Text

    from tuner.progress import STATUS_STYLE

    styles = {**STATUS_STYLE, "finished": "green", "interrupted": "yellow", "unfinished": "cyan"}
    t = Table(title=title, show_edge=False, pad_edge=False, header_style="bold", title_justify="left")
    for col in columns:
        t.add_column(col, justify="left" if col in ("trial_id", "status", "name", "error", "stop_reason",
                                                    "checkpoint", "config", "old_config") else "right",
                     overflow="fold")
    for row in rows:
        t.add_row(*[Text(cell(row.get(c)), style=styles.get(row.get(c), "")) if c == "status" else cell(row.get(c))
                    for c in columns])
    return t


def lineage_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Exploits for the table: the config keys that changed, old and new; scores as they were recorded."""
    rows = []
    for rec in records:
        old, new = config_changes(rec.get("old_config") or {}, rec.get("config") or {})
        if not new:  # nothing changed: show the whole config
            old = new = flatten(rec.get("config") or {})
        changed = list(new)
        when = rec.get("time")
        row = {"time": datetime.datetime.fromtimestamp(when).strftime("%H:%M:%S") if when else "",
               "iteration": rec.get("iteration"), "trial_id": rec.get("trial_id"), "donor_id": rec.get("donor_id"),
               "old_config": ", ".join(f"{k}={cell(old.get(k))}" for k in changed),
               "config": ", ".join(f"{k}={cell(new.get(k))}" for k in changed)}
        row.update({k: v for k, v in rec.items() if k not in ("time", "iteration", "trial_id", "donor_id",
                                                                  "old_config", "config")})
        rows.append(row)
    return rows


# --- tuner show ---------------------------------------------------------------------------------


def render(exp: Experiment, view: str | None, sort_key: str | None, columns: list[str], fmt: str,
           console: Any, limit: int = 0) -> None:
    """What `tuner show` prints: the trials (with a header unless view="trials"), the best trial, or the lineage.
    A table shows the first ``limit`` trials (0: all); csv and json have every one."""
    if view == "best":
        best = exp.best_record()
        if fmt == "json":
            click.echo(to_json(best))
        elif fmt == "csv":
            row = {k: v for k, v in best.items() if k not in ("config", "last_result")}
            row.update({f"config/{k}": v for k, v in best["config"].items()})
            click.echo(to_csv([row], list(row)), nl=False)
        else:
            click.echo(f"Best trial {best['trial_id']} ({best['status']}): {best['metric']}="
                       f"{cell(best['value'])} ({best['mode']})")
            click.echo(f"  config:      {json.dumps(best['config'])}")
            click.echo(f"  last result: {json.dumps(best['last_result'])}")
            click.echo(f"  checkpoint:  {best['checkpoint'] or 'none'}")
            click.echo(f"  directory:   {best['path']}")
        return
    if view == "lineage":
        records = exp.lineage()
        if fmt == "json":
            click.echo(to_json(records))
            return
        rows = lineage_rows(records) if fmt == "table" else [
            {**r, "old_config": r.get("old_config"), "config": r.get("config")} for r in records]
        cols = pick_columns(rows, columns) if columns else (
            columns_of(rows) or ["time", "iteration", "trial_id", "donor_id", "old_config", "config"])
        if fmt == "csv":
            click.echo(to_csv(rows, cols), nl=False)
        elif not rows:
            console.print(f"No PBT exploits in {exp.path}.")
        else:
            console.print(table(rows, cols, title=f"PBT lineage of {exp.name}: {len(rows)} exploits"))
        return

    # A table without --sort shows the first `limit` trials: only their rows are built (and their
    # columns chosen), not 100,000 of them.
    first = limit if fmt == "table" and not sort_key and limit else None
    rows = exp.rows(first)
    if sort_key:
        descending = sort_key.startswith("-")
        key = sort_key.lstrip("-")
        if key == exp.metric and exp.mode == "max":
            descending = not descending
        rows = sort_rows(rows, key, descending)
    cols = pick_columns(rows, columns) if columns else exp.default_columns(rows)
    if fmt == "json":
        payload = [{c: r.get(c) for c in cols} for r in rows] if columns else rows
        click.echo(to_json(payload if view == "trials" else {"experiment": exp.summary(), "trials": payload}))
    elif fmt == "csv":
        click.echo(to_csv(rows, cols), nl=False)
    else:
        if view != "trials":
            s = exp.summary()
            console.print(f"[bold]{s['name']}[/bold]  {s['status']}  started {s['start_time']}  ({s['path']})")
            console.print(f"  trainable {s['trainable']}, metric {s['metric']} ({s['mode']}), scheduler "
                          f"{s['scheduler']}, searcher {s['searcher']}")
            counts = ", ".join(f"{n} {k.lower()}" for k, n in s["counts"].items())
            best = f"; best {s['metric']}={cell(s['best_value'])} ({s['best_trial']})" if s["best_trial"] \
                else ""
            console.print(f"  {s['trials']} trials ({counts}){best}")
        shown = table(rows[:limit] if limit else rows, cols)
        total = len(exp.results.trials)
        if limit and total > limit:  # drawing 100,000 rows takes minutes and fills no screen
            shown.caption = f"... and {total - limit} more trials (--limit 0 shows all; --format csv lists all)"
        console.print(shown)

