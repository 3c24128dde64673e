"""The searcher interface the run loop calls: where new configs come from."""

from __future__ import annotations

import abc
from typing import Any

from tuner.objective import inherit_objective


class _Finished:
    """Marker returned by ``suggest`` when the searcher has nothing more to offer."""

    _instance: _Finished | None = None

    def __new__(cls) -> _Finished:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "FINISHED"

    def __reduce__(self) -> str:
        return "FINISHED"


FINISHED = _Finished()


class Searcher(abc.ABC):
    """Base of every searcher. Subclasses implement ``suggest``.

    The run loop calls ``set_search_properties`` once before the sweep, then
    ``suggest`` whenever it wants a new trial, and reports back through
    ``on_trial_result`` / ``on_trial_complete``.

    Args:
        metric: the result key to optimize (or a list for multi-objective);
            inherited from ``tune.run`` when None.
        mode: "min"/"max" (or a list); inherited from ``tune.run`` when None.
    """

    def __init__(self, metric: str | list[str] | None = None, mode: str | list[str] | None = None) -> None:
        self.metric = metric
        self.mode = mode
        self.space: dict[str, Any] | None = None

    def set_search_properties(self, metric: str | list[str] | None, mode: str | list[str] | None,
                              space: dict[str, Any] | None, **spec: Any) -> None:
        """Called by ``tune.run`` before the first ``suggest``.

        Fills in ``metric``/``mode`` where the searcher has none, and hands over
        ``tune.run``'s ``config`` (the search space). ``spec`` carries further
        sweep settings such as ``num_samples`` and ``seed``; most searchers
        ignore it. Raises ValueError on a conflicting metric or mode.
        """
        inherit_objective(self, metric, mode)
        if space:
            if self.space:
                raise ValueError(
                    f"{type(self).__name__} already has a search space, and tune.run got `config` with "
                    "search domains too; define the space in one place only."
                )
            self.space = space

    #: Whether ``suggest`` depends on the results reported so far. When it does not (random and
    #: grid search), the executor may hand a worker its next trial before the current one has
    #: ended (start-ahead, for very short trials): the suggestions come out the same.
    learns_from_results: bool = True

    def max_trials(self, num_samples: int) -> int | None:
        """How many trials the run loop asks this searcher for at most.

        The default is ``num_samples``; a searcher that enumerates its own
        trials (grid x samples) returns None and answers FINISHED itself.
        """
        return num_samples

    @abc.abstractmethod
    def suggest(self, trial_id: str) -> dict[str, Any] | None | _Finished:
        """A new concrete config for ``trial_id``, None for "nothing right now,
        ask again later", or ``FINISHED`` when the search is over."""

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        """Called for every intermediate result."""

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        """Called once when a trial ends; ``result`` is its last result."""

    def replay_suggest(self, trial_id: str, config: dict[str, Any]) -> bool:
        """Resume: ``suggest(trial_id)`` returned ``config`` after the last state snapshot;
        bring the state to where that call left it. Returns False when that is not possible
        exactly (the sweep goes on from the journal's config all the same).

        Called by the resume replay (``tuner.execution.replay``). The default suggests
        again, which lands a seeded searcher in the same state; a searcher whose
        suggestions are not reproducible overrides it to record ``config`` instead.
        """
        return self.suggest(trial_id) == config

    def state_dict(self) -> dict[str, Any]:
        """Plain JSON-able state for resume, with a ``version`` key."""
        return {"version": 1}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned (overrides check the version the same way)."""
        from tuner.components import check_state_version

        check_state_version(self, state)

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments, read back from the attributes of the same names (experiment.json,
        repr, ``tuner.components.rebuild``); ``space`` is the experiment's, recorded once beside them."""
        from tuner.components import constructor_params

        return constructor_params(self, skip=("space",))
