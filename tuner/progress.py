"""The live progress table on the terminal, and the summary at the end (rich).

On a terminal the table is redrawn in place at most twice a second; elsewhere
(CI logs, pipes) a one-line status is printed every ``line_every_s`` seconds,
so long sweeps show progress without flooding the log.
"""

from __future__ import annotations

import math
import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from tuner.storage.experiment import flatten
from tuner.trial import Trial

STATUS_STYLE = {"RUNNING": "cyan", "PENDING": "dim", "PAUSED": "yellow", "TERMINATED": "green", "ERROR": "red"}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


class ProgressReporter:
    """Shows the sweep while it runs (``verbose >= 1``) and a summary when it ends."""

    def __init__(self, metric: Any, mode: Any, verbose: int = 1, max_rows: int = 20,
                 refresh_s: float = 0.5, line_every_s: float = 15.0, console: Console | None = None) -> None:
        self.metric = metric if isinstance(metric, str) else None
        self.mode = mode if isinstance(mode, str) else None
        self.verbose = verbose
        self.max_rows = max_rows
        self.refresh_s = refresh_s
        self.line_every_s = line_every_s
        self.console = console or Console()
        self._live: Live | None = None
        self._last = 0.0
        self._last_line = time.monotonic()
        self._param_keys: list[str] = []

    def update(self, runner: Any) -> None:
        if self.verbose < 1:
            return
        now = time.monotonic()
        if now - self._last < self.refresh_s:
            return
        self._last = now
        if self.console.is_terminal:
            if self._live is None:
                self._live = Live(console=self.console, auto_refresh=False, transient=True)
                self._live.start()
            self._live.update(self.render(runner), refresh=True)
        elif now - self._last_line >= self.line_every_s:
            self._last_line = now
            self.console.print(self.status_line(runner), highlight=False)

    def close(self, runner: Any) -> None:
        """Remove the live table; the summary takes its place."""
        if self._live is not None:
            self._live.stop()
            self._live = None

    # --- rendering -------------------------------------------------------------------------
    def status_line(self, runner: Any) -> str:
        trials = list(runner.trials.values())
        counts = self._counts(trials)
        best = self._best(trials)
        elapsed = time.time() - runner.start_time
        parts = [f"[{elapsed:6.1f}s]", ", ".join(f"{n} {s.lower()}" for s, n in counts.items())]
        if best is not None:
            parts.append(f"best {self.metric}={_fmt(best.metric(self.metric))} ({best.trial_id})")
        return "  ".join(parts)

    def render(self, runner: Any) -> Group:
        trials = list(runner.trials.values())
        used = runner.executor.resources_in_use()
        total = runner.executor.cluster_resources()
        res = ", ".join(f"{k} {used.get(k, 0):g}/{total[k]:g}" for k in ("CPU", "GPU") if total.get(k))
        header = Text(f"{self.status_line(runner)}   resources: {res}")
        return Group(header, self.trial_table(trials, limit=self.max_rows))

    def trial_table(self, trials: list[Trial], limit: int | None = None, by_status: bool = True) -> Table:
        """Trials as rows: id, status, the hyperparameters that vary, iteration, metric, best so far."""
        keys = self._keys(trials)
        table = Table(show_edge=False, pad_edge=False, header_style="bold")
        metric_cols = [self.metric, f"best {self.metric}"] if self.metric and self.mode else []
        for col in ["trial", "status", *keys, "iter", *metric_cols]:
            table.add_column(col, justify="left" if col in ("trial", "status") else "right")
        shown = self._order(trials) if by_status else trials
        for trial in shown[:limit]:
            config = flatten(trial.config)
            status = trial.status.value
            row = [trial.trial_id, Text(status, style=STATUS_STYLE.get(status, ""))]
            row += [_fmt(config.get(k, "")) for k in keys]
            row.append(_fmt(trial.metric("training_iteration", "")))
            if metric_cols:
                best = trial.best_value(self.metric, self.mode)
                row += [_fmt(trial.metric(self.metric, "")), "" if math.isnan(best) else _fmt(best)]
            table.add_row(*row)
        if limit is not None and len(shown) > limit:
            table.caption = f"... and {len(shown) - limit} more trials"
        return table

    def _keys(self, trials: list[Trial]) -> list[str]:
        """Hyperparameters that differ between trials: those are the interesting columns."""
        if not self._param_keys and len(trials) > 1:
            flat = [flatten(t.config) for t in trials[:50]]
            keys = dict.fromkeys(k for f in flat for k in f)
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

    def _best(self, trials: list[Trial]) -> Trial | None:
        if not self.metric or not self.mode:
            return None
        scored = [t for t in trials if isinstance(t.metric(self.metric), (int, float))
                  and not math.isnan(t.metric(self.metric))]
        if not scored:
            return None
        pick = max if self.mode == "max" else min
        return pick(scored, key=lambda t: t.metric(self.metric))

    def summary(self, results: Any, elapsed: float) -> None:
        """One screen at the end: counts, the best trial, the top trials, errors."""
        if self.verbose < 1:
            return
        trials = results.trials
        counts = ", ".join(f"{n} {s.lower()}" for s, n in self._counts(trials).items())
        self.console.rule(f"Sweep finished in {elapsed:.1f}s: {len(trials)} trials ({counts})")
        ranked = trials
        best = self._best(trials)
        if best is not None:
            sign = -1 if self.mode == "max" else 1
            ranked = sorted((t for t in trials if t.last_result and self.metric in t.last_result),
                            key=lambda t: sign * t.metric(self.metric))
            self.console.print(f"Best trial {best.trial_id}: {self.metric}={_fmt(best.metric(self.metric))}",
                               highlight=False, soft_wrap=True)
            self.console.print(f"  config: {best.config}", highlight=False, soft_wrap=True)
            if best.checkpoint_path:
                self.console.print(f"  checkpoint: {best.checkpoint_path}", highlight=False, soft_wrap=True)
        self.console.print(self.trial_table(ranked, limit=10, by_status=best is None))
        for trial in results.errors:
            last_line = (trial.error or "").strip().splitlines()[-1:] or ["?"]
            self.console.print(Text(f"{trial.trial_id} failed: {last_line[0]}  (traceback: "
                                    f"{trial.path}/error.txt)", style="red"))
        self.console.print(f"Results: {results.experiment_path}", highlight=False, soft_wrap=True)
