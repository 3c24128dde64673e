"""What a sweep shows while it runs and when it ends, by ``verbose`` level (rich).

The levels are Ray Tune's:

* 0: silent.
* 1: a one-line status every ``line_every_s`` seconds, and the summary (best
  trial and the final table) at the end.
* 2 (default): the live table, and the summary. On a terminal the table is
  redrawn in place at most every ``refresh_s``; in Jupyter it is one output
  updated in place (an IPython display handle) at most every ``jupyter_refresh_s``;
  elsewhere (CI logs, pipes) the one-line status stands in for it, so long
  sweeps show progress without flooding the log.
* 3: level 2, plus one line per result as it arrives and one per trial that ends.
"""

from __future__ import annotations

import io
import itertools
import math
import time
from collections.abc import Iterable
from typing import Any

from rich.console import Console, Group
from rich.jupyter import JUPYTER_HTML_FORMAT
from rich.live import Live
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from tuner.validation import is_number
from tuner.callbacks import Callback
from tuner.execution.resources import resources_worth_showing
from tuner.execution.status_index import StatusIndex
from tuner.storage.experiment import flatten
from tuner.trial import Trial, TrialStatus

SILENT, SUMMARY, TABLE, RESULTS = 0, 1, 2, 3
# Keys every result carries; a result line shows what the trainable reported instead.
_AUTO_KEYS = frozenset({"training_iteration", "time_this_iter_s", "time_total_s", "timestamp", "trial_id", "done"})

_LIVE_ORDER = (TrialStatus.RUNNING, TrialStatus.PAUSED, TrialStatus.PENDING, TrialStatus.ERROR,
               TrialStatus.TERMINATED)
STATUS_STYLE = {"RUNNING": "cyan", "PENDING": "dim", "PAUSED": "yellow", "TERMINATED": "green", "ERROR": "red"}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


class ProgressReporter(Callback):
    """Shows the sweep while it runs and a summary when it ends, as ``verbose`` asks
    (see the module docstring). The run loop calls ``update`` every turn; as a
    callback it sees each result (printed at level 3)."""

    def __init__(self, metric: Any, mode: Any, verbose: int = TABLE, max_rows: int = 20,
                 refresh_s: float = 0.5, line_every_s: float = 15.0, jupyter_refresh_s: float = 1.0,
                 console: Console | None = None) -> None:
        self.metric = metric if isinstance(metric, str) else None
        self.mode = mode if isinstance(mode, str) else None
        self.verbose = verbose
        self.max_rows = max_rows
        self.refresh_s = refresh_s
        self.line_every_s = line_every_s
        self.jupyter_refresh_s = jupyter_refresh_s
        self.console = console or Console()
        self._live: Live | None = None
        self._jupyter: Any = None  # IPython display handle of the table
        self._last = -math.inf
        self._last_line = time.monotonic()
        self._param_keys: list[str] = []
        self._finished_seen = False
        self._best_finished: Trial | None = None

    def _surface(self) -> str:
        """Where the table goes at level 2: "jupyter", "terminal", or "lines" (logs)."""
        if self.verbose < TABLE:
            return "lines"
        if self.console.is_jupyter:
            return "jupyter"
        return "terminal" if self.console.is_terminal else "lines"

    def update(self, runner: Any, force: bool = False) -> None:
        """Redraw the table or print the status line, throttled (``force`` skips the throttle)."""
        if self.verbose < SUMMARY:
            return
        now = time.monotonic()
        surface = self._surface()
        every = {"jupyter": self.jupyter_refresh_s, "terminal": self.refresh_s}.get(surface, self.line_every_s)
        last = self._last_line if surface == "lines" else self._last
        if not force and now - last < every:
            return
        if surface == "terminal":
            if self._live is None:
                self._live = Live(console=self.console, auto_refresh=False, transient=True)
                self._live.start()
            self._live.update(self.render(runner), refresh=True)
        elif surface == "jupyter":
            self._show_in_jupyter(self.render(runner))
        elif not force:
            self.console.print(self.status_line(runner), highlight=False)
        self._last = self._last_line = now

    def _show_in_jupyter(self, renderable: Any) -> None:
        from IPython.display import display

        output = _JupyterOutput(renderable, self.console.width)
        if self._jupyter is None:
            self._jupyter = display(output, display_id=True)
        else:
            self._jupyter.update(output)

    def close(self, runner: Any) -> None:
        """Remove the live table on a terminal (the summary takes its place); in Jupyter
        show the sweep's final state in it until ``summary`` replaces it."""
        if self._live is not None:
            self._live.stop()
            self._live = None
        if self._jupyter is not None:
            self.update(runner, force=True)  # the final state, until the summary takes its place

    # --- level 3: each result as it arrives ----------------------------------------------------
    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> None:
        if self.verbose >= RESULTS:
            self.console.print(self.result_line(trial, result), highlight=False, soft_wrap=True)

    def on_trial_complete(self, trial: Trial) -> None:
        if self._finished_seen:
            self._best_finished = self._best([trial] + ([self._best_finished] if self._best_finished else []))
        if self.verbose >= RESULTS:
            reason = f" ({trial.stop_reason})" if trial.stop_reason else ""
            self.console.print(f"{trial.trial_id} ended{reason}", highlight=False, soft_wrap=True)

    def on_trial_error(self, trial: Trial) -> None:
        if self._finished_seen:
            self._best_finished = self._best([trial] + ([self._best_finished] if self._best_finished else []))
        if self.verbose >= RESULTS:
            last_line = (trial.error or "").strip().splitlines()[-1:] or ["?"]
            self.console.print(Text(f"{trial.trial_id} failed: {last_line[0]}", style="red"))

    def result_line(self, trial: Trial, result: dict[str, Any]) -> str:
        """``trial_00003 iter 4: acc=0.9132 val_loss=0.3012``: the metric first, then the
        other keys the trainable reported (nested ones as ``a/b``)."""
        flat = {k: v for k, v in flatten(result).items() if k not in _AUTO_KEYS}
        keys = sorted(flat, key=lambda k: (k != self.metric, k))
        values = " ".join(f"{k}={_fmt(flat[k])}" for k in keys)
        return f"{trial.trial_id} iter {result.get('training_iteration', '?')}: {values}"

    # --- rendering -------------------------------------------------------------------------
    # The live views cost the same at 100 trials and at 100,000: counts come from the run
    # loop's status index, the best finished trial is kept as trials end, and only the
    # trials not finished yet (a few per CPU) are looked at on each refresh.
    def status_line(self, runner: Any) -> str:
        index = _status_index(runner)
        best = self._live_best(runner, index)
        elapsed = time.time() - runner.start_time
        parts = [f"[{elapsed:6.1f}s]", ", ".join(f"{n} {s.lower()}" for s, n in index.counts().items())]
        if best is not None:
            parts.append(f"best {self.metric}={_fmt(best.metric(self.metric))} ({best.trial_id})")
        return "  ".join(parts)

    def render(self, runner: Any) -> Group:
        used = runner.executor.resources_in_use()
        total = runner.executor.cluster_resources()
        res = ", ".join(f"{k} {used.get(k, 0):g}/{total[k]:g}" for k in ("CPU", "GPU") if total.get(k))
        header = Text(f"{self.status_line(runner)}   resources: {res}")
        index = _status_index(runner)
        shown: list[Trial] = []
        for status in _LIVE_ORDER:  # running first; of the finished ones the latest
            if len(shown) < self.max_rows:
                shown += _some(index, status, self.max_rows - len(shown))
        self._keys(itertools.islice(runner.trials.values(), 50))
        table = self.trial_table(shown, by_status=False)
        hidden = len(runner.trials) - len(shown)
        if hidden > 0:
            table.caption = f"... and {hidden} more trials"
        return Group(header, table)

    def trial_table(self, trials: list[Trial], limit: int | None = None, by_status: bool = True) -> Table:
        """Trials as rows: id, status, the hyperparameters that vary, resources (when they vary or
        are gangs), iteration, metric, best so far."""
        keys = self._keys(trials[:50])
        table = Table(show_edge=False, pad_edge=False, header_style="bold")
        metric_cols = [self.metric, f"best {self.metric}"] if self.metric and self.mode else []
        show_resources = resources_worth_showing([t.resources for t in trials])
        for col in ["trial", "status", *keys, *(["resources"] if show_resources else []), "iter", *metric_cols]:
            table.add_column(col, justify="left" if col in ("trial", "status") else "right")
        shown = self._order(trials) if by_status else trials
        for trial in shown[:limit]:
            config = flatten(trial.config)
            status = trial.status.value
            row = [trial.trial_id, Text(status, style=STATUS_STYLE.get(status, ""))]
            row += [_fmt(config.get(k, "")) for k in keys]
            if show_resources:
                row.append(str(trial.resources))
            row.append(_fmt(trial.metric("training_iteration", "")))
            if metric_cols:
                best = trial.best_value(self.metric, self.mode)
                row += [_fmt(trial.metric(self.metric, "")), "" if math.isnan(best) else _fmt(best)]
            table.add_row(*row)
        if limit is not None and len(shown) > limit:
            table.caption = f"... and {len(shown) - limit} more trials"
        return table

    def _keys(self, trials: Iterable[Trial]) -> list[str]:
        """Hyperparameters that differ between trials (the first 50): the interesting columns."""
        if not self._param_keys:
            flat = [flatten(t.config) for t in trials]
            keys = dict.fromkeys(k for f in flat for k in f)
            if len(flat) > 1:
                self._param_keys = [k for k in keys if len({repr(f.get(k)) for f in flat}) > 1][:6]
        return self._param_keys

    def _order(self, trials: list[Trial]) -> list[Trial]:
        rank = {"RUNNING": 0, "PAUSED": 1, "PENDING": 2, "ERROR": 3, "TERMINATED": 4}
        return sorted(trials, key=lambda t: (rank[t.status.value], t.trial_id))

    def _counts(self, trials: list[Trial]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for t in trials:
            counts[t.status.value] = counts.get(t.status.value, 0) + 1
        return counts

    def _live_best(self, runner: Any, index: StatusIndex) -> Trial | None:
        """The best trial: the best finished one (kept as trials end) against the unfinished."""
        if not self.metric or not self.mode:
            return None
        if not self._finished_seen:  # first refresh (or a resumed sweep): the finished trials once
            self._finished_seen = True
            self._best_finished = self._best(index.of(TrialStatus.TERMINATED) + index.of(TrialStatus.ERROR))
        active = [t for s in _LIVE_ORDER[:3] for t in index.of(s)]
        return self._best(active + ([self._best_finished] if self._best_finished else []))

    def _best(self, trials: list[Trial]) -> Trial | None:
        if not self.metric or not self.mode:
            return None
        scored = [t for t in trials if is_number(t.metric(self.metric))]
        if not scored:
            return None
        pick = max if self.mode == "max" else min
        return pick(scored, key=lambda t: t.metric(self.metric))

    def summary(self, results: Any, elapsed: float) -> None:
        """One screen at the end: counts, the best trial, the top trials, errors. In Jupyter it
        takes the live table's place in the same output, as it does on a terminal."""
        if self.verbose < SUMMARY:
            return
        parts = self._summary(results, elapsed)
        if self._jupyter is not None:
            self._jupyter.update(_JupyterOutput(Group(*(Text(p) if isinstance(p, str) else p for p in parts)),
                                                self.console.width))
            self._jupyter = None
            return
        with self.console:  # one output: in Jupyter each print would otherwise be a cell output of its own
            for part in parts:
                self.console.print(part, highlight=False, soft_wrap=isinstance(part, str))

    def _summary(self, results: Any, elapsed: float) -> list[Any]:
        trials = results.trials
        counts = ", ".join(f"{n} {s.lower()}" for s, n in self._counts(trials).items())
        parts: list[Any] = [Rule(f"Sweep finished in {elapsed:.1f}s: {len(trials)} trials ({counts})")]
        ranked = trials
        best = self._best(trials)
        if best is not None:
            sign = -1 if self.mode == "max" else 1
            # Trials whose metric is not a number (None, a string, NaN) rank last instead of breaking the sort.
            ranked = sorted((t for t in trials if t.last_result and self.metric in t.last_result),
                            key=lambda t: (0, sign * t.metric(self.metric)) if is_number(t.metric(self.metric))
                            else (1, 0))
            parts += [f"Best trial {best.trial_id}: {self.metric}={_fmt(best.metric(self.metric))}",
                      f"  config: {best.config}"]
            if best.checkpoint_path:
                parts.append(f"  checkpoint: {best.checkpoint_path}")
        parts.append(self.trial_table(ranked, limit=10, by_status=best is None))
        parts += self._problem_lines(results.problems())
        for trial in results.errors:
            last_line = (trial.error or "").strip().splitlines()[-1:] or ["?"]
            parts.append(Text(f"{trial.trial_id} failed: {last_line[0]}  (traceback: {trial.path}/error.txt)",
                              style="red"))
        parts.append(f"Results: {results.experiment_path}")
        return parts

    @staticmethod
    def _problem_lines(problems: dict[str, list[str]], limit: int = 10) -> list[Text]:
        lines = [f"{tid} {p}" for tid, found in problems.items() for p in found]
        out = [Text(f"Warning: {line}", style="yellow") for line in lines[:limit]]
        if len(lines) > limit:
            out.append(Text(f"Warning: {len(lines) - limit} more problem(s): results.problems() lists them all",
                            style="yellow"))
        return out


class _JupyterOutput:
    """A rich renderable as Jupyter shows it: HTML with the table's colours, plain text too."""

    def __init__(self, renderable: Any, width: int) -> None:
        recorder = Console(record=True, width=max(width, 100), file=io.StringIO(), force_jupyter=False)
        recorder.print(renderable)
        self.text = recorder.export_text(clear=False)
        self.html = recorder.export_html(inline_styles=True, code_format=JUPYTER_HTML_FORMAT)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": self.text, "text/html": self.html}


def _status_index(runner: Any) -> StatusIndex:
    """The run loop's index of trials by status (built here for a runner that has none)."""
    index = getattr(runner, "by_status", None)
    if index is None:
        index = StatusIndex()
        for trial in runner.trials.values():
            index.add(trial)
    return index


def _some(index: StatusIndex, status: TrialStatus, n: int) -> list[Trial]:
    """Up to ``n`` trials in ``status``: unfinished ones oldest first, finished ones latest first."""
    return index.of(status)[:n] if not status.is_finished() else index.recent(status, n)
