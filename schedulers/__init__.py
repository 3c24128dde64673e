"""Trial schedulers: decide, from streamed results, which trials continue, pause or stop."""

from schedulers.base import Decision, TrialDecision, TrialScheduler
from schedulers.fifo import FIFOScheduler

__all__ = ["Decision", "TrialDecision", "TrialScheduler", "FIFOScheduler"]
from schedulers.asha import ASHAScheduler
from schedulers.median_stopping import MedianStoppingRule
from schedulers.searcher_pruning import SearcherPruningScheduler

__all__ += ["ASHAScheduler", "MedianStoppingRule", "SearcherPruningScheduler"]
