"""Per-trial problems worth a warning: what a trial reported that no scheduler can use.

Derived from the trials themselves (their history and status, as the journal
rebuilds them), so ``tune.run``'s summary, ``tune.load(...).problems()`` and
``tuner show`` agree without anything extra written to disk.
"""

from __future__ import annotations

from typing import Any

from tuner.validation import is_number
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
    for name in metric if isinstance(metric, (list, tuple)) else [metric] if metric else []:
        bad = [r for r in trial.history if name in r and not is_number(r[name])]
        missing = sum(1 for r in trial.history if name not in r)
        if bad:
            first = bad[0]
            more = f" (and {len(bad) - 1} later result(s))" if len(bad) > 1 else ""
            problems.append(f"reported {name}={_short(first[name])} at iteration {first.get('training_iteration')}"
                            f"{more}: not a number, so schedulers and searchers ranked it as the worst value")
        if missing == len(trial.history):
            problems.append(f"never reported the metric {name!r}; it reported: "
                            f"{', '.join(sorted(trial.last_result))}")
    return problems


def _short(value: Any) -> str:
    text = show_value(value)
    return text if len(text) <= 60 else text[:57] + "..."
