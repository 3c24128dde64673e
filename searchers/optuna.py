"""Optuna's samplers (TPE, CMA-ES, GP, QMC, NSGA-II...) through its ask/tell interface."""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

from searchers._util import (
    adopt_space,
    as_list,
    check_metric_mode,
    check_points,
    objective,
    point_values,
    require_metric_mode,
    require_space,
    resolve_seed,
)
from searchers.base import Searcher
from searchers.optuna_journal import STUDY_FILE, journal_backend
from searchers.optuna_space import import_optuna, to_optuna
from tuner.space import config as sp
from tuner.validation import BadValueError, check_seed
from tuner.components import check_state_version


class OptunaSearch(Searcher):
    """Suggests configs with an Optuna sampler, told every finished trial.

    The space is ``tune.run``'s config (or ``space=``), translated exactly into
    Optuna distributions; or a define-by-run function ``space=fn(trial)`` that
    calls ``trial.suggest_*`` as Optuna users write it and may return a dict of
    constants. Several metrics (``metric=["acc", "ms"], mode=["max", "min"]``)
    make it multi-objective, NSGA-II by default.

    Args:
        space: a config of ``tune.*`` domains, or a define-by-run function.
        metric: the metric(s) to optimize; from ``tune.run`` when None.
        mode: "min"/"max" (one per metric); from ``tune.run`` when None.
        points_to_evaluate: configs (full or partial) to try first; Optuna's
            sampler draws what a partial one leaves out.
        sampler: any ``optuna.samplers.BaseSampler``; TPE (NSGA-II for several
            metrics) seeded with ``seed`` by default.
        seed: seeds the default sampler; ``tune.run``'s ``seed`` when None.
            Seed a sampler you pass yourself.
        evaluated_rewards: the known results of ``points_to_evaluate`` (one per
            point, a list per point when multi-objective): told to Optuna
            without running them.
        use_pruner: True (Optuna's MedianPruner) or an ``optuna.pruners``
            instance: intermediate results are reported to it, and
            ``should_prune(trial_id)`` says what it decided.

    Example:
        >>> import tuner as tune
        >>> search = OptunaSearch(seed=0)
        >>> search.set_search_properties("loss", "min", {"x": tune.uniform(-1, 1)})
        >>> config = search.suggest("t0")
        >>> search.on_trial_complete("t0", {"loss": config["x"] ** 2})
    """

    def __init__(self, space: dict[str, Any] | Callable[[Any], Any] | None = None,
                 metric: str | list[str] | None = None,
                 mode: str | list[str] | None = None, points_to_evaluate: list[dict[str, Any]] | None = None,
                 sampler: Any = None, seed: int | None = None, evaluated_rewards: list[Any] | None = None,
                 use_pruner: Any = False) -> None:
        optuna = import_optuna()
        check_metric_mode(metric, mode)
        check_seed(seed)
        points = check_points(points_to_evaluate)
        if space is not None and not isinstance(space, dict) and not callable(space):
            raise BadValueError("space", space, "a dict of tune.* domains or a "
                                "define-by-run function fn(trial)")
        if sampler is not None and not isinstance(sampler, optuna.samplers.BaseSampler):
            raise BadValueError("sampler", sampler, "an optuna.samplers sampler")
        if sampler is not None and seed is not None:
            raise BadValueError("seed", seed, "None when `sampler` is given; "
                                "seed the sampler itself")
        if evaluated_rewards is not None and len(evaluated_rewards) != len(points):
            raise ValueError(f"The value of `evaluated_rewards` has {len(evaluated_rewards)} entries, but must have "
                             f"one per point of `points_to_evaluate` ({len(points)}).")
        if evaluated_rewards is not None and callable(space):
            raise ValueError("The value of `evaluated_rewards` is given, but must be None with a define-by-run "
                             "space (its distributions are only known when it runs).")
        if not isinstance(use_pruner, (bool, optuna.pruners.BasePruner)):
            raise BadValueError("use_pruner", use_pruner, "a bool or an "
                                "optuna.pruners pruner")
        super().__init__(metric, mode)
        self.space = space
        self.points_to_evaluate = points
        self.sampler = sampler
        self.seed = seed
        self.evaluated_rewards = evaluated_rewards
        self.use_pruner = use_pruner
        self._optuna = optuna
        self._constants: dict[str, Any] | None = None
        self._spec: dict[str, Any] = {}
        self._study: Any = None
        self._params: list[Any] = []
        self._seed: int | None = None
        self._live: dict[str, Any] = {}  # trial id -> optuna.Trial asked and not told yet
        self._asked: dict[str, int] = {}  # trial id -> Optuna trial number
        self._stored = False  # the study lives in the experiment directory (optuna_journal.jsonl)
        self._steps: dict[str, set[int]] = {}  # trial id -> steps already reported to the pruner
        self._pruned: set[str] = set()
        self._restore: dict[str, Any] | None = None
        self._check_space()

    # --- setup ------------------------------------------------------------------------------
    def set_search_properties(self, metric: Any, mode: Any, space: dict[str, Any] | None, **spec: Any) -> None:
        adopt_space(self, metric, mode, space, spec)
        self._spec = spec
        self._check_space()

    def _check_space(self) -> None:
        """A space Optuna cannot express, or a bad point, fails before any trial starts."""
        if isinstance(self.space, dict):
            params = to_optuna(self.space)
            for i, point in enumerate(self.points_to_evaluate):
                point_values(point, params, i)

    @property
    def study(self) -> Any:
        """The Optuna study the searcher asks and tells (for Optuna's own analysis: plots,
        importance, ``trials_dataframe``); created on the first suggestion."""
        self._ensure_study()
        return self._study

    @property
    def _multi(self) -> bool:
        return isinstance(self.metric, (list, tuple))

    def _ensure_study(self) -> None:
        if self._study is not None:
            return
        optuna = self._optuna
        require_metric_mode(self)
        require_space(self)
        metrics = as_list(self.metric)
        modes = as_list(self.mode) if isinstance(self.mode, (list, tuple)) else [self.mode] * len(metrics)
        if self._multi and self.use_pruner:
            raise BadValueError("use_pruner", self.use_pruner, "False with several "
                                "metrics: Optuna's pruners rank one objective")
        self._params = [] if callable(self.space) else to_optuna(self.space)
        self._seed = (self._restore or {}).get("seed")
        if self._seed is None:
            self._seed = resolve_seed(self.seed, self._spec)
        sampler = self.sampler
        if sampler is None:
            cls = optuna.samplers.NSGAIISampler if self._multi else optuna.samplers.TPESampler
            sampler = cls(seed=self._seed)
        pruner = (self.use_pruner if isinstance(self.use_pruner, optuna.pruners.BasePruner)
                  else optuna.pruners.MedianPruner() if self.use_pruner else optuna.pruners.NopPruner())
        if optuna.logging.get_verbosity() == optuna.logging.INFO:
            optuna.logging.set_verbosity(optuna.logging.WARNING)  # one log line per trial drowns the progress table
        journal_storage = self._storage()
        self._stored = journal_storage is not None
        # The storage object is kept: the study's system attributes are read through its public API.
        self._study_storage = journal_storage or optuna.storages.InMemoryStorage()
        self._study = optuna.create_study(
            directions=["minimize" if m == "min" else "maximize" for m in modes], sampler=sampler, pruner=pruner,
            storage=self._study_storage, study_name="tuner", load_if_exists=True)
        if self._stored and self._study.get_trials(deepcopy=False):
            self._adopt_stored_trials()
        elif self._restore is not None and self._restore.get("started") and "trials" in self._restore:
            self._replay(self._restore)
        else:
            self._enqueue_points()
        if self._restore is not None and self.sampler is not None:
            set_rng_states(self._study.sampler, self._restore.get("rng", {}))
        self._restore = None

    def _storage(self) -> Any:
        """Optuna's journal storage in the experiment directory, when ``tune.run`` gave one."""
        directory = self._spec.get("experiment_path")
        if not directory or not os.path.isdir(directory):
            return None
        return self._optuna.storages.JournalStorage(journal_backend(os.path.join(directory, STUDY_FILE)))

    def _adopt_stored_trials(self) -> None:
        """A resumed study: its running trials wait for their results again; an ask the
        driver died before handing out is failed."""
        TrialState = self._optuna.trial.TrialState
        for frozen in self._study.get_trials(deepcopy=False):
            trial_id = frozen.user_attrs.get("trial_id")
            if trial_id is None:
                if frozen.state is TrialState.RUNNING:
                    self._study.tell(frozen.number, state=TrialState.FAIL)
                continue
            self._asked[trial_id] = frozen.number
            if frozen.state is TrialState.RUNNING:
                self._live[trial_id] = self._optuna.trial.Trial(self._study, frozen._trial_id)
                self._steps[trial_id] = set(frozen.intermediate_values)
                if frozen.user_attrs.get("pruned"):
                    self._pruned.add(trial_id)

    def _reseed(self) -> None:
        """The default sampler draws from streams seeded by (seed, trial number), so the
        study alone decides the next suggestion: a resumed sweep goes on exactly."""
        if self.sampler is None:
            for j, (_, rng) in enumerate(_random_states(self._study.sampler, "")):
                rng.seed(int(np.random.SeedSequence([self._seed, len(self._asked), j]).generate_state(1)[0]))

    def _enqueue_points(self) -> None:
        optuna = self._optuna
        for i, point in enumerate(self.points_to_evaluate):
            fixed = dict(point) if callable(self.space) else point_values(point, self._params, i)
            if self.evaluated_rewards is None:
                self._study.enqueue_trial(fixed)
                continue
            self._study.add_trial(optuna.trial.create_trial(
                values=[float(v) for v in as_list(self.evaluated_rewards[i])], params=fixed,
                distributions={p.name: p.distribution for p in self._params if p.name in fixed}))

    # --- ask / tell -------------------------------------------------------------------------
    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        """A new config; the same one again for a trial id already asked (a resume replays it)."""
        self._ensure_study()
        if trial_id in self._asked:
            return self._config(self._study.get_trials(deepcopy=False)[self._asked[trial_id]].params, {})
        self._reseed()
        if callable(self.space):
            trial = self._study.ask()
            extra = self.space(trial)
            if extra is not None and not isinstance(extra, dict):
                raise ValueError(f"The define-by-run space returned {extra!r}, but must return None or a dict "
                                 "of constants.")
        else:
            trial, extra = self._study.ask(fixed_distributions={p.name: p.distribution for p in self._params}), None
        self._live[trial_id] = trial
        self._asked[trial_id] = trial.number
        trial.set_user_attr("trial_id", trial_id)
        return self._config(trial.params, extra or {})

    def _config(self, params: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
        if callable(self.space):
            config = sp.merge(sp.unflatten(params), extra)
        else:
            config = sp.fill(self.space, {p.path: p.decode(params[p.name]) for p in self._params})
        return sp.merge(self._constants, config) if self._constants else config

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if self._restore is not None:
            self._ensure_study()
        trial = self._live.get(trial_id)
        if not self.use_pruner or trial is None:
            return
        value = objective(result, self.metric)
        steps = self._steps.setdefault(trial_id, set())
        step = int(result.get("training_iteration", len(steps) + 1))
        if value is None or step in steps:
            return
        steps.add(step)
        trial.report(value, step)
        if trial.should_prune():
            self._pruned.add(trial_id)
            if self._stored:
                trial.set_user_attr("pruned", True)

    def should_prune(self, trial_id: str) -> bool:
        """Whether the pruner (``use_pruner``) asked to stop ``trial_id`` at its latest result."""
        return trial_id in self._pruned

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if self._restore is not None:
            self._ensure_study()  # trials that were running before a resume are known again
        trial = self._live.pop(trial_id, None)
        self._steps.pop(trial_id, None)
        pruned = trial_id in self._pruned
        self._pruned.discard(trial_id)
        if trial is None:
            return  # not one of its trials
        values = [objective(result, m) for m in as_list(self.metric)]
        if error or any(v is None for v in values):
            self._study.tell(trial, state=self._optuna.trial.TrialState.FAIL)
        elif pruned:
            self._study.tell(trial, state=self._optuna.trial.TrialState.PRUNED)
        else:
            self._study.tell(trial, values if self._multi else values[0])

    def pareto_front(self) -> list[str]:
        """Trial ids on the Pareto front (the best trial for one metric), told trials only."""
        if self._study is None:
            return []
        return [t.user_attrs["trial_id"] for t in self._study.best_trials if "trial_id" in t.user_attrs]

    # --- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The seed, and the sampler's streams for a sampler given by the user. The study itself:
        in the experiment directory (``optuna_journal.jsonl``), or else every Optuna trial
        (told, running, queued) in order."""
        if self._study is None:
            return {"version": 1, "started": False, "seed": self._seed}
        if self._stored:
            own = {} if self.sampler is None else {"rng": rng_states(self._study.sampler)}  # own: reseeded per ask
            return {"version": 1, "started": True, "seed": self._seed, "study": STUDY_FILE, **own}
        distributions = self._optuna.distributions
        trials = [{
            "state": t.state.name, "values": t.values, "params": t.params,
            "distributions": {k: distributions.distribution_to_json(d) for k, d in t.distributions.items()},
            "intermediate": {str(k): v for k, v in t.intermediate_values.items()},
            "user_attrs": t.user_attrs, "system_attrs": t.system_attrs,
        } for t in self._study.get_trials(deepcopy=False)]
        return {"version": 1, "started": True, "seed": self._seed, "trials": trials,
                "rng": rng_states(self._study.sampler), "study_attrs": study_system_attrs(self._study_storage, self._study)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Keeps ``state``; the study is rebuilt from it (or read back from the experiment
        directory) at the next suggest."""
        check_state_version(self, state)
        self._restore = state
        self._study = None
        self._live = {}
        self._asked = {}

    def _replay(self, state: dict[str, Any]) -> None:
        """Rebuilds the study trial by trial, in the original order, so that the
        sampler sees what it saw; trials that were running are asked again with
        their old params and wait for their results."""
        optuna = self._optuna
        TrialState = optuna.trial.TrialState
        for record in state["trials"]:
            dists = {k: optuna.distributions.json_to_distribution(d) for k, d in record["distributions"].items()}
            steps = {int(k): v for k, v in record["intermediate"].items()}
            status = TrialState[record["state"]]
            if status.is_finished():
                self._study.add_trial(optuna.trial.create_trial(
                    state=status, values=record["values"], params=record["params"], distributions=dists,
                    intermediate_values=steps, user_attrs=record["user_attrs"], system_attrs=record["system_attrs"]))
            elif status is TrialState.WAITING:
                self._study.enqueue_trial(record["params"])
            else:
                self._study.enqueue_trial(record["params"])
                trial = self._study.ask(fixed_distributions=dists)
                trial_id = record["user_attrs"].get("trial_id")
                trial.set_user_attr("trial_id", trial_id)
                for step, value in steps.items():
                    trial.report(value, step)
                self._live[trial_id] = trial
                self._steps[trial_id] = set(steps)
        self._asked = {t.user_attrs["trial_id"]: t.number for t in self._study.get_trials(deepcopy=False)
                       if "trial_id" in t.user_attrs}
        set_study_system_attrs(self._study_storage, self._study, state.get("study_attrs", {}))
        if not set_rng_states(self._study.sampler, state.get("rng", {})):
            self._study.sampler.reseed_rng()  # unknown sampler internals: a fresh stream rather than a repeated one


def study_system_attrs(storage: Any, study: Any) -> dict[str, Any]:
    """The study-level bookkeeping some samplers keep (QMC's sequence position), through the
    storage's public API."""
    return dict(storage.get_study_system_attrs(storage.get_study_id_from_name(study.study_name)))


def set_study_system_attrs(storage: Any, study: Any, attrs: dict[str, Any]) -> None:
    study_id = storage.get_study_id_from_name(study.study_name)
    for key, value in attrs.items():
        storage.set_study_system_attr(study_id, key, value)


def rng_states(sampler: Any) -> dict[str, Any]:
    """The state of every random stream of an Optuna sampler, as JSON.

    Optuna keeps each in an attribute holding a ``numpy.random.RandomState`` as ``.rng``
    (the sampler's own and those of the samplers it wraps); without them a resumed seeded
    sampler would draw its first configs again.
    """
    out: dict[str, Any] = {}
    for path, rng in _random_states(sampler, ""):
        name, keys, pos, has_gauss, gauss = rng.get_state()
        out[path] = [name, [int(k) for k in keys], int(pos), int(has_gauss), float(gauss)]
    return out


def set_rng_states(sampler: Any, states: dict[str, Any]) -> bool:
    """Restores what ``rng_states`` saved; False when the streams do not match."""
    found = dict(_random_states(sampler, ""))
    if not states or set(found) != set(states):
        return False
    for path, (name, keys, pos, has_gauss, gauss) in states.items():
        found[path].set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    return True


def _random_states(obj: Any, prefix: str, depth: int = 0) -> list[tuple[str, np.random.RandomState]]:
    out = []
    for key, value in sorted(vars(obj).items()):
        if isinstance(getattr(value, "rng", None), np.random.RandomState):
            out.append((prefix + key, value.rng))
        elif depth < 2 and type(value).__module__.startswith("optuna.samplers") and hasattr(value, "__dict__"):
            out.extend(_random_states(value, f"{prefix}{key}.", depth + 1))
    return out
