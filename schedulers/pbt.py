"""Population Based Training (Jaderberg et al. 2017), asynchronous and synchronous."""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable, Sequence
from typing import Any

from schedulers import _pbt_explore as _explore
from schedulers import _rungs
from schedulers._pbt_lineage import ancestry, config_at, replay
from schedulers.base import Decision, TrialDecision, TrialScheduler
from tuner.space.config import config_changes
from tuner.trial import Trial, TrialStatus
from tuner.validation import BadValueError, check_number, check_seed, is_finite_number
from tuner.components import check_state_version

__all__ = ["PopulationBasedTraining", "ancestry", "config_at", "replay"]


class PopulationBasedTraining(TrialScheduler):
    """Trains a population; at every perturbation point a trial in the bottom
    quantile takes the state (latest checkpoint) of a trial drawn from the top
    quantile and goes on with an explored copy of that trial's config.

    The answer is ``TrialDecision.exploit(donor_id, new_config, ...)``; the run loop
    copies the donor's latest checkpoint in and records the lineage (see
    ``results.pbt_lineage()`` and ``replay``). A trial without a checkpoint is
    never a donor, so the trainable must checkpoint (``tune.report(...,
    checkpoint=...)``, or ``checkpoint_freq`` for class trainables).

    Perturbation points: a trial is perturbed at the first result where
    ``time_attr`` has grown by ``perturbation_interval`` since its last
    perturbation and is at least ``burn_in_period``. The trainable waits in
    ``report()`` only there (``next_decision_point``).

    Asynchronous (default): each trial is compared, at its own points, with the
    latest scores of the trials still training. When trials are waiting for a
    turn (a population larger than what runs at once), a trial at its point
    PAUSEs (carrying out its exploit when it restarts) and the least advanced
    waiting trial runs next, so the population advances together instead of in
    waves. Synchronous (``synch=True``):
    trials PAUSE at the generation's point until the whole population has
    reached it; then the bottom quantile is exploited as those trials restart
    (``on_trial_resume``) and everyone goes on to the next point.

    Args:
        time_attr, metric, mode: see ``TrialScheduler``.
        perturbation_interval: ``time_attr`` between perturbations (> 0).
        burn_in_period: no perturbation before ``time_attr`` reaches this (>= 0).
        hyperparam_mutations: what explore may change, by config key (nested dicts
            for nested keys): a list of choices, a ``tune.*`` domain, or a callable
            returning a new value (called with the scheduler's ``random.Random``
            when it takes an argument).
        quantile_fraction: the share of the population in each of the bottom and
            top quantiles (0 < fraction <= 0.5).
        resample_probability: the chance that explore draws a value afresh instead
            of perturbing it.
        perturbation_factors: numeric values are multiplied by one of these.
        custom_explore_fn: ``fn(new_config) -> config`` applied after explore.
        synch: synchronous generations (see above).
        seed: seeds donor choice and explore (the scheduler's own ``random.Random``).

    Example::

        pbt = PopulationBasedTraining(perturbation_interval=4, hyperparam_mutations={
            "lr": tune.loguniform(1e-4, 1e-1), "batch": [16, 32, 64]}, seed=0)
        tune.run(train, config=space, num_samples=8, metric="acc", mode="max", scheduler=pbt,
                 stop={"training_iteration": 40})
    """

    def __init__(self, time_attr: str = "training_iteration", metric: str | None = None, mode: str | None = None,
                 perturbation_interval: float = 60.0, burn_in_period: float = 0.0,
                 hyperparam_mutations: dict[str, Any] | None = None, quantile_fraction: float = 0.25,
                 resample_probability: float = 0.25, perturbation_factors: Sequence[float] = (1.2, 0.8),
                 custom_explore_fn: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                 synch: bool = False, seed: int | None = None) -> None:
        super().__init__(metric, mode, time_attr)
        check_number(perturbation_interval, "perturbation_interval", "perturbation_interval > 0", lambda v: v > 0)
        check_number(burn_in_period, "burn_in_period", "burn_in_period >= 0", lambda v: v >= 0)
        check_number(quantile_fraction, "quantile_fraction", "0 < quantile_fraction <= 0.5", lambda v: 0 < v <= 0.5)
        check_number(resample_probability, "resample_probability", "0 <= resample_probability <= 1",
               lambda v: 0 <= v <= 1)
        if (isinstance(perturbation_factors, (str, bytes)) or not isinstance(perturbation_factors, Sequence)
                or not perturbation_factors or not all(is_finite_number(f) and f > 0 for f in perturbation_factors)):
            raise BadValueError("perturbation_factors", perturbation_factors, "a "
                                "non-empty sequence of numbers > 0")
        if custom_explore_fn is not None and not callable(custom_explore_fn):
            raise BadValueError("custom_explore_fn", custom_explore_fn, "callable "
                                "or None")
        mutations = _explore.parse_mutations(hyperparam_mutations or {})
        if not mutations and custom_explore_fn is None:
            raise ValueError(f"The value of `hyperparam_mutations` is {hyperparam_mutations!r}, but must name at "
                             "least one hyperparameter when `custom_explore_fn` is None (explore needs something "
                             "to change).")
        if not isinstance(synch, bool):
            raise BadValueError("synch", synch, "True or False")
        check_seed(seed)
        self.perturbation_interval = perturbation_interval
        self.burn_in_period = burn_in_period
        self.hyperparam_mutations = hyperparam_mutations
        self.quantile_fraction = quantile_fraction
        self.resample_probability = resample_probability
        self.perturbation_factors = perturbation_factors
        self.custom_explore_fn = custom_explore_fn
        self.synch = synch
        self.seed = seed
        self._mutations = mutations
        self._rng = random.Random(seed)
        # id -> {"last_point", "score", "time", "config", "checkpoint": has one}, in the order added; kept in
        # state_dict so that a restored scheduler still knows every donor's config and checkpoint
        self._trials: dict[str, dict[str, Any]] = {}
        self._finished: set[str] = set()
        self._num_exploits = 0
        # synchronous generations
        self._point = max(float(perturbation_interval), float(burn_in_period))
        self._generation = 0
        self._waiting: dict[str, float] = {}  # id -> score at the current point
        self._resume: list[str] = []  # paused ids to restart, recipients first
        self._planned: dict[str, dict[str, Any]] = {}  # id -> the exploit applied when it restarts
        self._objects: dict[str, Trial] = {}  # the run loop's trials, to see which wait for a turn

    wants_waiting_trial = True  # a trial waiting for a turn is what makes a running one yield

    # --- lifecycle ----------------------------------------------------------------------------------
    def on_trial_add(self, trial: Trial) -> None:
        self._require_metric()
        self._seen(trial)

    def _entry(self, trial_id: str) -> dict[str, Any]:
        return self._trials.setdefault(trial_id, {"last_point": 0.0, "score": None, "time": None, "config": None,
                                                  "checkpoint": False})

    def _seen(self, trial: Trial) -> dict[str, Any]:
        entry = self._entry(trial.trial_id)
        self._objects[trial.trial_id] = trial
        entry["config"] = trial.config
        entry["checkpoint"] = trial.checkpoint_path is not None
        return entry

    def next_decision_point(self, trial: Trial, after: float) -> float | None:
        point = self._point if self.synch else self._due(self._entry(trial.trial_id))
        # A trial already past its point (restored, or a coarse time_attr) decides at its next result.
        return point if point > after else math.nextafter(after, math.inf)

    def _due(self, entry: dict[str, Any]) -> float:
        return max(entry["last_point"] + self.perturbation_interval, float(self.burn_in_period))

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> Decision | TrialDecision:
        _, t = self._metric_and_time(result)
        tid = trial.trial_id
        entry = self._seen(trial)
        entry["score"], entry["time"] = _rungs.score(result[self.metric], self.mode), t
        self._observe(tid, t, entry["score"], trial.config)
        if self.synch:
            if t < self._point:
                return Decision.CONTINUE
            self._waiting[tid] = entry["score"]
            return TrialDecision.pause(
                f"generation {self._generation}: waits at {self.time_attr}={t:g} for the population to reach "
                f"{self._point:g}", generation=self._generation, point=self._point)
        if t < self._due(entry):
            return Decision.CONTINUE
        entry["last_point"] = t
        scores = {k: e["score"] for k, e in self._trials.items() if e["score"] is not None and k not in self._finished}
        bottom, top = _explore.quantiles(scores, self.quantile_fraction)
        donors = [d for d in top if self._trials[d]["checkpoint"]]
        decision = (self._exploit(trial, self._rng.choice(donors), t, scores, len(bottom))
                    if tid in bottom and donors else None)
        waiting = self._waiting_for_a_turn(tid)
        if not waiting:
            return decision or Decision.CONTINUE
        if decision is not None:
            self._plan(tid, decision)
        return TrialDecision.pause(
            f"{self.time_attr}={t:g}: yields to {len(waiting)} waiting trial(s)"
            + (f"; then {decision.reason}" if decision is not None else ""),
            at=t, waiting=len(waiting))

    def _waiting_for_a_turn(self, trial_id: str) -> list[str]:
        return [tid for tid, t in self._objects.items() if tid != trial_id and tid not in self._finished
                and t.status in (TrialStatus.PENDING, TrialStatus.PAUSED)]

    def on_trial_complete(self, trial: Trial, result: dict[str, Any] | None) -> None:
        self._ended(trial.trial_id)

    def on_trial_error(self, trial: Trial) -> None:
        self._ended(trial.trial_id)

    def _ended(self, trial_id: str) -> None:
        self._finished.add(trial_id)
        self._waiting.pop(trial_id, None)
        self._planned.pop(trial_id, None)

    # --- exploit and explore --------------------------------------------------------------------------
    def _exploit(self, trial: Trial, donor_id: str, t: float, scores: dict[str, float],
                 num_bottom: int) -> TrialDecision:
        """The EXPLOIT decision for ``trial`` copying ``donor_id``; updates this scheduler's books."""
        donor_config = self._trials[donor_id]["config"]
        new_config = self._new_config(donor_config, t)
        old, new = config_changes(trial.config, new_config)
        was, now = config_changes(donor_config, new_config)
        score, donor_score = scores[trial.trial_id], scores[donor_id]
        # The recipient keeps its own score until its next decision point, as in Ray Tune. Taking the
        # donor's (an old one: scores are read at decision points only) made a fresh clone look like a
        # top trial, and the next bottom trial copied the clone's state, still its own pre-exploit
        # checkpoint or a worse one: on Acrobot the population converged on one bad model.
        self._trials[trial.trial_id]["config"] = new_config
        self._after_exploit(trial.trial_id, t, donor_score, new_config)
        self._num_exploits += 1
        explored = ", ".join(f"{k} {was[k]!r} -> {now[k]!r}" for k in now) or "nothing changed"
        info = {"at": t, "score": self._shown(score), "donor_score": self._shown(donor_score), "old": old, "new": new}
        if self.synch:
            info["generation"] = self._generation
        return TrialDecision.exploit(
            donor_id, new_config,
            f"{self.metric}={self._shown(score):g} in the bottom {num_bottom} of {len(scores)} at "
            f"{self.time_attr}={t:g}: cloned {donor_id} ({self.metric}={self._shown(donor_score):g}), "
            f"explored {explored}", **info)

    def _new_config(self, donor_config: dict[str, Any], t: float) -> dict[str, Any]:
        new = self._explore_config(donor_config, t)
        if self.custom_explore_fn is not None:
            new = self.custom_explore_fn(new)
            if not isinstance(new, dict):
                raise TypeError(f"custom_explore_fn must return the new config dict, but returned {new!r}.")
        return new

    def _explore_config(self, donor_config: dict[str, Any], t: float) -> dict[str, Any]:
        """A new config explored from the donor's (PB2 overrides this)."""
        return _explore.explore(donor_config, self._mutations, self._rng, self.resample_probability,
                                self.perturbation_factors)

    def _observe(self, trial_id: str, t: float, score: float, config: dict[str, Any]) -> None:
        """Every result the scheduler sees (PB2 collects its data here)."""

    def _after_exploit(self, trial_id: str, t: float, donor_score: float, new_config: dict[str, Any]) -> None:
        """``trial_id`` continues from a donor's state with ``new_config`` (PB2 hook)."""

    def _shown(self, score: float) -> float:
        return score if self.mode == "max" else -score

    # --- synchronous generations ----------------------------------------------------------------------
    def choose_trial_to_run(self, trials: Sequence[Trial]) -> Trial | None:
        """Synchronous: restarts the paused population once the generation is complete
        (recipients first, so every donor is still at the point when it is copied)."""
        if not self.synch:  # the least advanced first, so the population moves together
            waiting = [t for t in trials if t.status in (TrialStatus.PENDING, TrialStatus.PAUSED)]
            for trial in waiting:
                self._seen(trial)
            return min(waiting, key=lambda t: self._trials[t.trial_id]["time"] or 0.0, default=None)
        by_id = {t.trial_id: t for t in trials}
        for trial in trials:
            self._seen(trial)
        if not self._resume and self._generation_complete(by_id):
            self._next_generation(by_id)
        while self._resume:
            trial = by_id.get(self._resume.pop(0))
            if trial is not None and trial.status is TrialStatus.PAUSED:
                return trial
        return super().choose_trial_to_run(trials)

    def _generation_complete(self, by_id: dict[str, Trial]) -> bool:
        live = [tid for tid in self._trials if tid not in self._finished]
        return bool(live) and all(
            tid in self._waiting and tid in by_id and by_id[tid].status is TrialStatus.PAUSED for tid in live)

    def _next_generation(self, by_id: dict[str, Trial]) -> None:
        scores = dict(self._waiting)
        bottom, top = _explore.quantiles(scores, self.quantile_fraction)
        donors = [d for d in top if self._trials[d]["checkpoint"]]
        self._planned = {}
        for tid in bottom:
            if donors:
                self._plan(tid, self._exploit(by_id[tid], self._rng.choice(donors), self._trials[tid]["time"],
                                              scores, len(bottom)))
        for tid in scores:
            self._trials[tid]["last_point"] = self._trials[tid]["time"]
        self._resume = [tid for tid in scores if tid in self._planned] + [
            tid for tid in scores if tid not in self._planned]
        reached = max(self._trials[tid]["time"] for tid in scores)
        steps = math.floor((reached - self._point) / self.perturbation_interval) + 1
        self._point += max(1, steps) * self.perturbation_interval
        self._generation += 1
        self._waiting = {}

    def _plan(self, trial_id: str, exploit: TrialDecision) -> None:
        """Keep an exploit for when the paused trial restarts (plain JSON, for state_dict)."""
        self._planned[trial_id] = {"donor_id": exploit.donor_id, "config": exploit.config,
                                   "reason": exploit.reason, "info": exploit.info}

    def on_trial_resume(self, trial: Trial) -> TrialDecision | None:
        plan = self._planned.pop(trial.trial_id, None)
        if plan is None:
            return None
        return TrialDecision.exploit(plan["donor_id"], plan["config"], plan["reason"], **plan["info"])

    # --- state ------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        version, internal, gauss = self._rng.getstate()
        return {
            "version": 1, "rng": [version, list(internal), gauss],
            "trials": copy.deepcopy(self._trials),
            "finished": sorted(self._finished), "num_exploits": self._num_exploits, "point": self._point,
            "generation": self._generation, "waiting": dict(self._waiting),
            "resume": list(self._resume), "planned": copy.deepcopy(self._planned),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_state_version(self, state)
        version, internal, gauss = state["rng"]
        self._rng.setstate((version, tuple(internal), gauss))
        self._trials = copy.deepcopy(state["trials"])
        self._finished = set(state["finished"])
        self._num_exploits = state["num_exploits"]
        self._point = float(state["point"])
        self._generation = state["generation"]
        self._waiting = dict(state["waiting"])
        self._resume = list(state["resume"])
        self._planned = copy.deepcopy(state["planned"])

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments; domains in their JSON form so that ``tune.resume`` rebuilds them."""
        from tuner.space.config import space_to_json

        params = super().get_params()
        params["hyperparam_mutations"] = space_to_json(self.hyperparam_mutations)
        return params

    def debug_string(self) -> str:
        where = f"generation {self._generation}, next point {self._point:g}, " if self.synch else ""
        return f"{type(self).__name__}: {where}{self._num_exploits} exploits"
