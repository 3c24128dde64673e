"""Hyperopt's TPE through its ``Domain``/``Trials`` ask-tell interface."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from searchers._util import (
    adopt_space,
    check_metric_mode,
    check_points,
    objective,
    point_values,
    require_metric_mode,
    resolve_seed,
)
from searchers.base import Searcher
from searchers.hyperopt_native import from_native, is_native
from searchers.hyperopt_space import import_hyperopt, reshape, to_hyperopt
from tuner.space import config as sp
from tuner.validation import BadValueError, check_seed
from tuner.components import check_state_version


def _plain(value: Any) -> Any:
    """numpy scalars -> Python numbers (trial docs go into JSON state)."""
    return value.item() if hasattr(value, "item") else value


class HyperOptSearch(Searcher):
    """Suggests configs with Hyperopt's Tree-structured Parzen Estimator.

    The space is ``tune.run``'s config (or ``space=``), translated into ``hp.*``
    expressions; a ``tune.choice`` whose categories hold domains becomes a
    nested ``hp.choice`` (a conditional space). One metric only.

    Args:
        space: a config of ``tune.*`` domains, or a native Hyperopt space of ``hp.*``
            expressions (read into ``tune.*`` domains); ``tune.run``'s config when None.
        metric: the metric to optimize; from ``tune.run`` when None.
        mode: "min" or "max"; from ``tune.run`` when None.
        points_to_evaluate: configs (full or partial) to try first; what a
            partial one leaves out is drawn at random.
        n_initial_points: random trials before TPE starts modelling.
        seed: seeds every draw; ``tune.run``'s ``seed`` when None.

    Example:
        >>> import tuner as tune
        >>> search = HyperOptSearch(seed=0, n_initial_points=2)
        >>> search.set_search_properties("loss", "min", {"x": tune.uniform(-1, 1)})
        >>> config = search.suggest("t0")
        >>> search.on_trial_complete("t0", {"loss": config["x"] ** 2})
    """

    def __init__(self, space: dict[str, Any] | None = None, metric: str | None = None, mode: str | None = None,
                 points_to_evaluate: list[dict[str, Any]] | None = None, n_initial_points: int = 20,
                 seed: int | None = None) -> None:
        self._hyperopt = import_hyperopt()
        check_metric_mode(metric, mode)
        _check_single(metric, mode)
        check_seed(seed)
        if space is not None and not isinstance(space, dict):
            raise BadValueError("space", space, "a dict of tune.* domains")
        if isinstance(n_initial_points, bool) or not isinstance(n_initial_points, int) or n_initial_points < 0:
            raise BadValueError("n_initial_points", n_initial_points, "an integer "
                                "`n_initial_points >= 0`")
        super().__init__(metric, mode)
        self.space = from_native(space) if is_native(space) else space
        self.points_to_evaluate = check_points(points_to_evaluate)
        self.n_initial_points = n_initial_points
        self.seed = seed
        self._constants: dict[str, Any] | None = None
        self._spec: dict[str, Any] = {}
        self._domain: Any = None
        self._trials: Any = None
        self._params: list[Any] = []
        self._rng: np.random.Generator | None = None
        self._seed: int | None = None
        self._asked = 0
        self._live: dict[str, dict[str, Any]] = {}  # trial id -> its Hyperopt trial doc, not told yet
        self._docs: list[tuple[str | None, dict[str, Any]]] = []  # every (trial id, doc), in tid order
        self._restore: dict[str, Any] | None = None
        self._check_space()

    def set_search_properties(self, metric: Any, mode: Any, space: dict[str, Any] | None, **spec: Any) -> None:
        adopt_space(self, metric, mode, space, spec)
        _check_single(self.metric, self.mode)
        self._spec = spec
        self._check_space()

    def _check_space(self) -> None:
        """A space Hyperopt cannot express, or a bad point, fails before any trial starts."""
        if self.space is not None:
            _, params = to_hyperopt(self.space)
            for i, point in enumerate(self.points_to_evaluate):
                point_values(point, params, i)

    def _ensure_domain(self) -> None:
        if self._domain is not None:
            return
        hyperopt = self._hyperopt
        require_metric_mode(self)
        if self.space is None:
            raise ValueError("HyperOptSearch has no search space: pass `space=` or tune.run(config=...).")
        exprs, self._params = to_hyperopt(self.space)
        self._domain = hyperopt.Domain(lambda config: config, exprs)
        self._trials = hyperopt.Trials()
        restore = self._restore or {}
        self._seed = restore.get("seed")
        if self._seed is None:
            self._seed = resolve_seed(self.seed, self._spec)
        self._rng = np.random.default_rng(self._seed)
        if self._restore is not None:
            self._replay(self._restore)
        self._restore = None

    # --- ask / tell -------------------------------------------------------------------------
    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        self._ensure_domain()
        hyperopt = self._hyperopt
        tid = self._trials.new_trial_ids(1)
        self._trials.refresh()
        seed = int(self._rng.integers(2**31 - 1))
        if self._asked < len(self.points_to_evaluate):
            docs = hyperopt.rand.suggest(tid, self._domain, self._trials, seed)
            fixed = point_values(self.points_to_evaluate[self._asked], self._params, self._asked)
            for label, value in fixed.items():
                docs[0]["misc"]["vals"][label] = [value]
                docs[0]["misc"]["idxs"][label] = list(tid)
        else:
            algo = functools.partial(hyperopt.tpe.suggest, n_startup_jobs=self.n_initial_points)
            docs = algo(tid, self._domain, self._trials, seed)
        self._trials.insert_trial_docs(docs)
        self._trials.refresh()
        doc = next(d for d in reversed(self._trials.trials) if d["tid"] == tid[0])
        self._asked += 1
        self._live[trial_id] = doc
        self._docs.append((trial_id, doc))
        values = self._evaluate(doc)
        vals = doc["misc"]["vals"]
        config = sp.fill(self.space, {p.path: reshape(p.domain, values[p.name], p.name, vals) for p in self._params})
        return sp.merge(self._constants, config) if self._constants else config

    def _evaluate(self, doc: dict[str, Any]) -> dict[str, Any]:
        """The concrete value of every label for one trial doc (nested choices resolved)."""
        hyperopt = self._hyperopt
        ctrl = hyperopt.base.Ctrl(self._trials, current_trial=doc)
        memo = self._domain.memo_from_config(hyperopt.base.spec_from_misc(doc["misc"]))
        hyperopt.utils.use_obj_for_literal_in_memo(self._domain.expr, ctrl, hyperopt.base.Ctrl, memo)
        return hyperopt.pyll.rec_eval(self._domain.expr, memo=memo)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if self._restore is not None:
            self._ensure_domain()  # trials that were running before a resume are known again
        doc = self._live.pop(trial_id, None)
        if doc is None:
            return  # not one of its trials
        value = None if error else objective(result, self.metric)
        self._finish(doc, None if value is None else (value if self.mode == "min" else -value))
        self._trials.refresh()

    def _finish(self, doc: dict[str, Any], loss: float | None) -> None:
        hyperopt = self._hyperopt
        if loss is None:
            doc["result"] = {"status": hyperopt.STATUS_FAIL}
            doc["state"] = hyperopt.JOB_STATE_ERROR
        else:
            doc["result"] = {"loss": loss, "status": hyperopt.STATUS_OK}
            doc["state"] = hyperopt.JOB_STATE_DONE

    # --- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Every trial doc (told or running) in order, and the random stream."""
        docs = [{"trial_id": trial_id, "vals": _vals(doc), "loss": doc["result"].get("loss"),
                 "state": "live" if trial_id in self._live else doc["result"]["status"]}
                for trial_id, doc in self._docs]
        return {"version": 1, "seed": self._seed, "asked": self._asked, "docs": docs,
                "rng": self._rng.bit_generator.state if self._rng is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Keeps ``state``; the trials are replayed into Hyperopt at the next suggest."""
        check_state_version(self, state)
        self._restore = state
        self._domain = None
        self._live = {}
        self._docs = []

    def _replay(self, state: dict[str, Any]) -> None:
        """Rebuilds the Trials doc by doc in the original order; running ones wait for their results."""
        self._asked = int(state["asked"])
        for record in state["docs"]:
            tid = self._trials.new_trial_ids(1)[0]
            vals = record["vals"]
            misc = {"tid": tid, "cmd": self._domain.cmd, "workdir": self._domain.workdir,
                    "idxs": {k: [tid] if v else [] for k, v in vals.items()},
                    "vals": {k: list(v) for k, v in vals.items()}}
            doc = self._trials.new_trial_docs([tid], [None], [self._domain.new_result()], [misc])[0]
            if record["state"] != "live":
                self._finish(doc, record["loss"] if record["state"] == self._hyperopt.STATUS_OK else None)
            self._trials.insert_trial_docs([doc])
            self._trials.refresh()
            doc = next((d for d in reversed(self._trials.trials) if d["tid"] == tid), doc)
            self._docs.append((record["trial_id"], doc))
            if record["state"] == "live":
                self._live[record["trial_id"]] = doc
        if state.get("rng") is not None:
            self._rng.bit_generator.state = state["rng"]


def _vals(doc: dict[str, Any]) -> dict[str, list]:
    return {k: [_plain(x) for x in v] for k, v in doc["misc"]["vals"].items()}


def _check_single(metric: Any, mode: Any) -> None:
    if isinstance(metric, (list, tuple)) or isinstance(mode, (list, tuple)):
        raise BadValueError("metric", metric, "a single metric: HyperOptSearch "
                            "optimizes one objective (use OptunaSearch for several)")
