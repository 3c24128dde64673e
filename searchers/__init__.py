"""Search algorithms: where new trial configs come from."""

from searchers.base import FINISHED, Searcher

__all__ = ["FINISHED", "Searcher"]
