"""Search algorithms: where new trial configs come from.

``BasicVariantGenerator`` (random + grid) is the default; ``OptunaSearch`` and
``HyperOptSearch`` import their libraries only when built; ``ConcurrencyLimiter``
and ``Repeater`` wrap any searcher.
"""

from searchers.base import FINISHED, Searcher
from searchers.basic_variant import BasicVariantGenerator
from searchers.concurrency import ConcurrencyLimiter
from searchers.hyperopt import HyperOptSearch
from searchers.optuna import OptunaSearch
from searchers.repeater import TRIAL_INDEX, Repeater

__all__ = [
    "FINISHED", "BasicVariantGenerator", "ConcurrencyLimiter", "HyperOptSearch", "OptunaSearch", "Repeater",
    "Searcher", "TRIAL_INDEX",
]
