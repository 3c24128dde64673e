"""The part every searcher that wraps another shares: it checks and holds the inner searcher
and hands it the sweep's metric, mode and space."""

from __future__ import annotations

from typing import Any

from searchers.base import Searcher
from tuner.validation import BadValueError


class WrapperSearcher(Searcher):
    """A searcher around ``searcher`` (ConcurrencyLimiter, Repeater): the inner one owns the
    space and the metric; the wrapper decides when and how often its suggestions go out."""

    def __init__(self, searcher: Searcher) -> None:
        if not isinstance(searcher, Searcher):
            raise BadValueError("searcher", searcher, "a Searcher instance")
        super().__init__(searcher.metric, searcher.mode)
        self.searcher = searcher

    def set_search_properties(self, metric: Any, mode: Any, space: dict[str, Any] | None, **spec: Any) -> None:
        self.searcher.set_search_properties(metric, mode, space, **spec)
        self.metric, self.mode, self.space = self.searcher.metric, self.searcher.mode, self.searcher.space

    def max_trials(self, num_samples: int) -> int | None:
        return self.searcher.max_trials(num_samples)

    @property
    def learns_from_results(self) -> bool:  # type: ignore[override]
        return self.searcher.learns_from_results
