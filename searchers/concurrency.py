"""Caps how many of a searcher's trials run at once."""

from __future__ import annotations

from typing import Any

from searchers._wrapper import WrapperSearcher
from searchers.base import Searcher
from tuner.components import check_state_version
from tuner.validation import check_int


class ConcurrencyLimiter(WrapperSearcher):
    """Wraps ``searcher`` so that at most ``max_concurrent`` of its trials are live.

    Sequential model-based searchers (TPE, GP) learn only from finished trials:
    suggesting 64 configs at once makes the first 64 random. The limiter answers
    None ("ask again later") while the limit is reached, so the run loop waits
    for a trial to end first.

    Args:
        searcher: the searcher whose suggestions are limited.
        max_concurrent: the most trials from ``searcher`` running at one time.

    Example:
        >>> from searchers import BasicVariantGenerator
        >>> limited = ConcurrencyLimiter(BasicVariantGenerator(seed=0), max_concurrent=2)
        >>> limited.set_search_properties(None, None, {"x": 1}, num_samples=5)
        >>> [limited.suggest(t) for t in ("a", "b", "c")]
        [{'x': 1}, {'x': 1}, None]
    """

    def __init__(self, searcher: Searcher, max_concurrent: int) -> None:
        check_int(max_concurrent, "max_concurrent", 1, "an integer `max_concurrent >= 1`")
        super().__init__(searcher)
        self.max_concurrent = max_concurrent
        self._live: set[str] = set()

    def suggest(self, trial_id: str) -> Any:
        if len(self._live) >= self.max_concurrent:
            return None
        config = self.searcher.suggest(trial_id)
        if isinstance(config, dict):
            self._live.add(trial_id)
        return config

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        self._live.discard(trial_id)
        self.searcher.on_trial_complete(trial_id, result, error=error)

    @property
    def live_trials(self) -> int:
        """How many of its trials were suggested and have not completed yet."""
        return len(self._live)

    def state_dict(self) -> dict[str, Any]:
        return {"version": 1, "live": sorted(self._live), "searcher": self.searcher.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_state_version(self, state)
        self._live = set(state.get("live", []))
        self.searcher.load_state_dict(state["searcher"])
