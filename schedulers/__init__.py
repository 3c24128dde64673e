"""Trial schedulers: decide, from streamed results, which trials continue, pause or stop."""

from schedulers.base import Decision, TrialDecision, TrialScheduler
from schedulers.fifo import FIFOScheduler

__all__ = ["Decision", "TrialDecision", "TrialScheduler", "FIFOScheduler"]
