"""The default searcher: random sampling plus grid expansion of ``tune.run``'s config."""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from searchers._util import check_points, resolve_seed
from searchers.base import FINISHED, Searcher
from tuner.space import config as sp
from tuner.validation import check_int, check_seed
from tuner.components import check_state_version


class BasicVariantGenerator(Searcher):
    """Random search with ``grid_search`` expanded as a cross product (the default).

    Each ``grid_search`` combination is produced ``num_samples`` times (the
    ``tune.run`` argument), every other domain drawn anew each time. Known good
    configs in ``points_to_evaluate`` come first; a partial one keeps drawing
    the keys it does not set (and expands the grids it does not fix), and each
    one takes the place of one of the ``num_samples`` repetitions, as in Ray Tune.

    Args:
        points_to_evaluate: configs (full or partial, nested like the space) to try first.
        seed: seeds the draws; when None, ``tune.run``'s ``seed`` is used, and
            when that is None too, a random seed (kept in ``state_dict``).
        max_concurrent: at most this many of its trials run at once (0: no limit).

    Example:
        >>> import tuner as tune
        >>> gen = BasicVariantGenerator(points_to_evaluate=[{"lr": 0.01}], seed=0)
        >>> gen.set_search_properties(None, None, {"lr": tune.loguniform(1e-4, 1e-1)}, num_samples=3)
        >>> [round(gen.suggest(f"t{i}")["lr"], 4) for i in range(2)]
        [0.01, 0.0081]
    """

    learns_from_results = False  # its draws are fixed by the seed, whatever the trials report

    def __init__(self, points_to_evaluate: list[dict[str, Any]] | None = None, seed: int | None = None,
                 max_concurrent: int = 0) -> None:
        super().__init__()
        check_seed(seed)
        check_int(max_concurrent, "max_concurrent", 0, "an integer `max_concurrent >= 0` (0: no limit)")
        self.points_to_evaluate = check_points(points_to_evaluate)
        self.seed = seed
        self.max_concurrent = max_concurrent
        self._num_samples = 1
        self._spec_seed: int | None = None
        self._seed: int | None = None  # the seed in use, resolved at the first suggest
        self._given = 0
        self._live: set[str] = set()
        self._variants: Iterator[Any] | None = None
        self._rng: np.random.Generator | None = None
        self._rng_state: dict[str, Any] | None = None  # from a snapshot: where the stream stood

    def set_search_properties(self, metric: Any, mode: Any, space: dict[str, Any] | None, **spec: Any) -> None:
        super().set_search_properties(metric, mode, space, **spec)
        self._num_samples = int(spec.get("num_samples", 1))
        self._spec_seed = spec.get("seed")

    def max_trials(self, num_samples: int) -> int | None:
        return None  # it enumerates grid x samples itself and answers FINISHED

    def _stream(self, skip: int = 0) -> Iterator[Any]:
        """The variants from number ``skip`` on; ``self._rng`` is where the first ``skip`` left it."""
        rng = self._rng
        config = self.space or {}
        for point in self.points_to_evaluate:
            merged = sp.merge(config, point)
            count = sp.count_variants(merged)
            if skip >= count:
                skip -= count
                continue
            yield from sp.generate_variants(merged, 1, rng, start=skip)
            skip = 0
        yield from sp.generate_variants(config, max(self._num_samples - len(self.points_to_evaluate), 0), rng,
                                        start=skip)

    def suggest(self, trial_id: str) -> dict[str, Any] | None | Any:
        if self.max_concurrent and len(self._live) >= self.max_concurrent:
            return None
        if self._variants is None:
            if self._seed is None:
                self._seed = resolve_seed(self.seed, {"seed": self._spec_seed})
            self._rng = np.random.default_rng(self._seed)
            if self._rng_state is not None:  # resumed: the stream goes on where it stood, nothing redrawn
                self._rng.bit_generator.state = self._rng_state
                self._variants = self._stream(self._given)
            else:
                self._variants = self._stream()
                for _ in range(self._given):  # a state without the stream's position: draw up to it again
                    next(self._variants, None)
        config = next(self._variants, FINISHED)
        if config is FINISHED:
            return FINISHED
        self._given += 1
        self._live.add(trial_id)
        return config

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        self._live.discard(trial_id)

    def state_dict(self) -> dict[str, Any]:
        """The seed, how many configs were handed out and the random stream's state there (a resume
        goes on from it instead of drawing every earlier config again)."""
        rng = self._rng.bit_generator.state if self._rng is not None else self._rng_state
        return {"version": 1, "seed": self._seed, "given": self._given, "live": sorted(self._live), "rng": rng}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_state_version(self, state)
        self._seed = state["seed"]
        self._given = int(state["given"])
        self._live = set(state.get("live", []))
        self._rng_state = state.get("rng")
        self._rng = None
        self._variants = None
