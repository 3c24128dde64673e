"""Trial schedulers: decide, from streamed results, which trials continue, pause or stop."""

from schedulers.asha import ASHAScheduler
from schedulers.base import Decision, TrialDecision, TrialScheduler
from schedulers.fifo import FIFOScheduler
from schedulers.hyperband import HyperBandScheduler
from schedulers.median_stopping import MedianStoppingRule
from schedulers.pb2 import PB2
from schedulers.pbt import PopulationBasedTraining
from schedulers.searcher_pruning import SearcherPruningScheduler

AsyncHyperBandScheduler = ASHAScheduler  # Ray Tune's name for the same scheduler

__all__ = [
    "ASHAScheduler", "AsyncHyperBandScheduler", "Decision", "FIFOScheduler", "HyperBandScheduler", "MedianStoppingRule", "PB2",
    "PopulationBasedTraining", "SearcherPruningScheduler", "TrialDecision", "TrialScheduler",
]
