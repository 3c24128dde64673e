"""Evaluates each config several times and tells the searcher the mean: for noisy objectives."""

from __future__ import annotations

from typing import Any

from searchers._util import as_list, objective
from searchers._wrapper import WrapperSearcher
from searchers.base import Searcher
from tuner.components import check_state_version
from tuner.validation import check_int

TRIAL_INDEX = "__trial_index__"


def mean_result(results: list[dict[str, Any]], metrics: list[str]) -> dict[str, Any] | None:
    """The last result of the group with each metric replaced by its mean over the
    results that have it; None when no result has any of them."""
    out: dict[str, Any] = dict(results[-1]) if results else {}
    found = False
    for metric in metrics:
        values = [v for v in (objective(r, metric) for r in results) if v is not None]
        if values:
            out[metric] = sum(values) / len(values)
            found = True
    return out if found else None


class Repeater(WrapperSearcher):
    """Hands out each of ``searcher``'s configs ``repeat`` times.

    Every repetition is its own trial (the run loop gives each trial a distinct
    seed); with ``set_index`` the config also carries ``"__trial_index__"``
    (0 .. repeat-1) so the trainable can vary its data split. When all
    repetitions of a config have ended, the inner searcher learns the mean of
    the metric over those that succeeded (an error only if all failed).

    ``tune.run``'s ``num_samples`` counts trials, repetitions included: use a
    multiple of ``repeat``.

    Args:
        searcher: the searcher that proposes the configs.
        repeat: how many trials per config (>= 1).
        set_index: add ``"__trial_index__"`` to each config.
    """

    def __init__(self, searcher: Searcher, repeat: int = 1, set_index: bool = True) -> None:
        check_int(repeat, "repeat", 1, "an integer `repeat >= 1`")
        super().__init__(searcher)
        self.repeat = repeat
        self.set_index = set_index
        self._groups: dict[str, dict[str, Any]] = {}  # inner id -> {"config", "trials", "results", "errors"}
        self._open: str | None = None  # the group still handing out repetitions
        self._group_of: dict[str, str] = {}  # trial id -> inner id

    def suggest(self, trial_id: str) -> Any:
        if self._open is None:
            config = self.searcher.suggest(trial_id)
            if not isinstance(config, dict):
                return config  # None or FINISHED
            self._groups[trial_id] = {"config": config, "trials": [], "results": [], "errors": 0}
            self._open = trial_id
        group_id = self._open
        group = self._groups[group_id]
        index = len(group["trials"])
        group["trials"].append(trial_id)
        self._group_of[trial_id] = group_id
        if len(group["trials"]) == self.repeat:
            self._open = None
        config = dict(group["config"])
        if self.set_index:
            config[TRIAL_INDEX] = index
        return config

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        pass  # intermediate results of one repetition say little about the config's mean

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        group_id = self._group_of.pop(trial_id, None)
        if group_id is None:
            return
        group = self._groups[group_id]
        if error or result is None:
            group["errors"] += 1
        else:
            group["results"].append(result)
        if group_id != self._open and len(group["results"]) + group["errors"] == len(group["trials"]):
            del self._groups[group_id]
            mean = mean_result(group["results"], [m for m in as_list(self.metric) if m is not None])
            self.searcher.on_trial_complete(group_id, mean, error=mean is None)

    def state_dict(self) -> dict[str, Any]:
        return {"version": 1, "groups": self._groups, "open": self._open, "group_of": self._group_of,
                "searcher": self.searcher.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_state_version(self, state)
        self._groups = {k: dict(v) for k, v in state["groups"].items()}
        self._open = state["open"]
        self._group_of = dict(state["group_of"])
        self.searcher.load_state_dict(state["searcher"])

