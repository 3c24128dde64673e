"""Per-trial problems worth a warning: what a trial reported that no scheduler can use.

Derived from the trials themselves (their history and status, as the journal
rebuilds them), so ``tune.run``'s summary, ``tune.load(...).problems()`` and
``tuner show`` agree without anything extra written to disk.
"""

from __future__ import annotations

from typing import Any

from tuner.storage.experiment import metric_names
from tuner.trial import Trial, TrialStatus
from tuner.validation import show_value


def trial_problems(trial: Trial, metric: Any) -> list[str]:
    """What is wrong with ``trial``'s results: it never reported, or its metric was not a number."""
    if not trial.history:
        if trial.status is TrialStatus.TERMINATED:
            return ["ended without reporting any result: call tune.report({...}) in the trainable, "
                    "yield result dicts, or return one"]
        return []
    problems = []
    for name in metric_names(metric):
        summary = trial.history.summary(name)  # kept in memory for the sweep's metric: nothing read back
        if summary.not_numbers:
            value, iteration = summary.first
            more = f" (and {summary.not_numbers - 1} later result(s))" if summary.not_numbers > 1 else ""
            problems.append(f"reported {name}={_short(value)} at iteration {iteration}"
                            f"{more}: not a number, so schedulers and searchers ranked it as the worst value")
        if summary.missing == len(trial.history):
            problems.append(f"never reported the metric {name!r}; it reported: "
                            f"{', '.join(sorted(trial.last_result))}")
    return problems


def _short(value: Any) -> str:
    text = show_value(value)
    return text if len(text) <= 60 else text[:57] + "..."
