"""Hyperopt's TPE through its ``Domain``/``Trials`` ask-tell interface.

With ``tune.run``'s experiment directory the trial docs live in an append-only log
there, ``hyperopt_docs.jsonl`` (one line per ask and per tell, flushed to the OS, one
writer: the driver), and the state snapshot holds the seed, the random stream and the
log's length: constant-size, however many trials. A resume reads the log up to that
length and cuts what follows (the resume replay asks and tells those again, the same
way). Driven by hand (no directory), ``state_dict`` lists every doc instead.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

import numpy as np

from searchers._util import (
    adopt_space,
    check_metric_mode,
    check_points,
    objective,
    point_values,
    require_metric_mode,
    require_space,
    resolve_seed,
)
from searchers.base import Searcher
from searchers.hyperopt_native import from_native, is_native
from searchers.hyperopt_space import import_hyperopt, reshape, to_hyperopt
from tuner.space import config as sp
from tuner.validation import BadValueError, check_int, check_seed
from tuner.components import check_state_version

DOCS_FILE = "hyperopt_docs.jsonl"


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
        check_int(n_initial_points, "n_initial_points", 0, "an integer `n_initial_points >= 0`")
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
        self._log: Any = None  # the docs log in the experiment directory, when tune.run gave one
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
        require_space(self)
        exprs, self._params = to_hyperopt(self.space)
        self._domain = hyperopt.Domain(lambda config: config, exprs)
        self._trials = hyperopt.Trials()
        restore = self._restore or {}
        self._seed = restore.get("seed")
        if self._seed is None:
            self._seed = resolve_seed(self.seed, self._spec)
        self._rng = np.random.default_rng(self._seed)
        path = self._log_path()
        if path is not None:
            stored = _read_log(path, int(restore.get("docs_offset", 0)))  # cut past the snapshot's position
            docs = restore["docs"] if "docs" in restore else stored
            self._log = open(path, "w" if "docs" in restore else "a", encoding="utf-8")  # noqa: SIM115
            if "docs" in restore:  # a snapshot that listed its docs: they start the log
                self._append([{"ask": d["trial_id"], "vals": d["vals"]} for d in docs] +
                             [{"tell": d["trial_id"], "loss": d["loss"], "state": d["state"]}
                              for d in docs if d["state"] != "live"])
            self._replay(docs)
        elif "docs" in restore:
            self._replay(restore["docs"])
        elif restore.get("docs_file"):
            raise ValueError(f"This HyperOptSearch state keeps its trials in {restore['docs_file']} of its experiment "
                             "directory, but the searcher has none: resume it with tune.resume(path).")
        self._asked = int(restore.get("asked", self._asked))
        if restore.get("rng") is not None:
            self._rng.bit_generator.state = restore["rng"]
        self._restore = None

    def _log_path(self) -> str | None:
        directory = self._spec.get("experiment_path")
        return os.path.join(directory, DOCS_FILE) if directory and os.path.isdir(directory) else None

    def _append(self, lines: list[dict[str, Any]]) -> None:
        if self._log is not None and lines:
            self._log.write("".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines))
            self._log.flush()

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
        self._append([{"ask": trial_id, "vals": _vals(doc)}])
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
        loss = None if value is None else (value if self.mode == "min" else -value)
        self._finish(doc, loss)
        self._trials.refresh()
        self._append([{"tell": trial_id, "loss": doc["result"].get("loss"), "state": doc["result"]["status"]}])

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
        """The seed, the random stream, and the docs: the docs log's length when it is in the
        experiment directory (constant-size), else every trial doc (told or running) in order."""
        if self._restore is not None:
            return self._restore  # loaded, not replayed yet: still the whole state
        rng = self._rng.bit_generator.state if self._rng is not None else None
        if self._log is not None:
            self._log.flush()
            return {"version": 1, "seed": self._seed, "asked": self._asked, "docs_file": DOCS_FILE,
                    "docs_offset": self._log.tell(), "rng": rng}
        docs = [{"trial_id": trial_id, "vals": _vals(doc), "loss": doc["result"].get("loss"),
                 "state": "live" if trial_id in self._live else doc["result"]["status"]}
                for trial_id, doc in self._docs]
        return {"version": 1, "seed": self._seed, "asked": self._asked, "docs": docs, "rng": rng}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Keeps ``state``; the trials are replayed into Hyperopt at the next suggest."""
        check_state_version(self, state)
        self._restore = state
        self._domain = None
        self._live = {}
        self._docs = []
        if self._log is not None:
            self._log.close()
            self._log = None

    def _replay(self, docs: list[dict[str, Any]]) -> None:
        """Rebuilds the Trials doc by doc in the original order (inserted in one batch); running
        ones wait for their results."""
        new = []
        for record in docs:
            tid = self._trials.new_trial_ids(1)[0]
            vals = record["vals"]
            misc = {"tid": tid, "cmd": self._domain.cmd, "workdir": self._domain.workdir,
                    "idxs": {k: [tid] if v else [] for k, v in vals.items()},
                    "vals": {k: list(v) for k, v in vals.items()}}
            doc = self._trials.new_trial_docs([tid], [None], [self._domain.new_result()], [misc])[0]
            if record["state"] != "live":
                self._finish(doc, record["loss"] if record["state"] == self._hyperopt.STATUS_OK else None)
            new.append(doc)
        if new:
            self._trials.insert_trial_docs(new)
            self._trials.refresh()
        inserted = {d["tid"]: d for d in self._trials.trials}
        for record, doc in zip(docs, new):
            doc = inserted.get(doc["tid"], doc)
            self._docs.append((record["trial_id"], doc))
            if record["state"] == "live":
                self._live[record["trial_id"]] = doc


def _read_log(path: str, offset: int) -> list[dict[str, Any]]:
    """The docs the log held at byte ``offset`` (state-dict form, in ask order); what follows
    (written after the snapshot, or a torn line) is cut off."""
    size = os.path.getsize(path) if os.path.exists(path) else 0
    fix = (f"The searcher's trials are in {path}; state.json says it held {offset} bytes. Delete state.json in the "
           "same directory and resume: the searcher is then rebuilt from journal.jsonl.")
    if size < offset:
        raise ValueError(f"{path} holds {size} bytes, fewer than the snapshot's {offset}. {fix}")
    if not size:
        return []
    with open(path, "rb") as f:
        data = f.read(offset)
    if size != offset:
        with open(path, "r+b") as f:
            f.truncate(offset)
    docs: dict[str, dict[str, Any]] = {}
    for number, line in enumerate(data.splitlines(), 1):
        try:
            entry = json.loads(line)
            if "ask" in entry:
                docs[entry["ask"]] = {"trial_id": entry["ask"], "vals": entry["vals"], "loss": None, "state": "live"}
            else:
                docs[entry["tell"]].update(loss=entry["loss"], state=entry["state"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}, line {number}, is damaged ({exc!r}). {fix}") from None
    return list(docs.values())


def _vals(doc: dict[str, Any]) -> dict[str, list]:
    return {k: [_plain(x) for x in v] for k, v in doc["misc"]["vals"].items()}


def _check_single(metric: Any, mode: Any) -> None:
    if isinstance(metric, (list, tuple)) or isinstance(mode, (list, tuple)):
        raise BadValueError("metric", metric, "a single metric: HyperOptSearch "
                            "optimizes one objective (use OptunaSearch for several)")
