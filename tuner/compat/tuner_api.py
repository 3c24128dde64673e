"""``Tuner``: Ray Tune's entry point, one ``tune.run`` (or ``tune.resume``) call per ``fit()``."""

from __future__ import annotations

import os
from typing import Any

from tuner.compat.configs import RunConfig, TuneConfig
from tuner.compat.result_grid import ResultGrid
from tuner.execution.resources import trainable_resources
from tuner.storage import fs, journal
from tuner.storage.experiment import SPEC
from tuner.storage.journal import JOURNAL


class Tuner:
    """Configure a sweep the way Ray Tune code does, then ``fit()`` it.

    Example::

        tuner = tune.Tuner(train, param_space={"lr": tune.loguniform(1e-4, 1e-1)},
                           tune_config=tune.TuneConfig(metric="loss", mode="min", num_samples=8),
                           run_config=tune.RunConfig(name="lr", stop={"training_iteration": 10}))
        best = tuner.fit().get_best_result()

    Failed trials do not raise (they are in ``ResultGrid.errors``) unless
    ``FailureConfig(fail_fast="raise")``.
    """

    def __init__(self, trainable: Any, *, param_space: dict[str, Any] | None = None,
                 tune_config: TuneConfig | None = None, run_config: RunConfig | None = None,
                 _resume: dict[str, Any] | None = None) -> None:
        for label, value, cls in (("tune_config", tune_config, TuneConfig), ("run_config", run_config, RunConfig)):
            if value is not None and not isinstance(value, cls):
                raise ValueError(f"The value of `{label}` is {value!r}, but must be a tune.{cls.__name__}.")
        self.trainable = trainable
        self.param_space = param_space
        self.tune_config = tune_config or TuneConfig()
        self.run_config = run_config or RunConfig()
        self._resume = _resume
        self._results: ResultGrid | None = None

    def _run_kwargs(self) -> dict[str, Any]:
        kwargs = {**self.tune_config.run_kwargs(), **self.run_config.run_kwargs(), "raise_on_failed_trial": False}
        resources = trainable_resources(self.trainable)
        if resources is not None:
            kwargs["resources_per_trial"] = resources
        return kwargs

    def fit(self) -> ResultGrid:
        """Run the sweep (or continue it, after ``Tuner.restore``) and return its results."""
        from tuner.api import run
        from tuner.resuming import resume

        if self._resume is not None:
            overrides = {k: v for k, v in self._run_kwargs().items()
                         if k in ("callbacks", "verbose", "raise_on_failed_trial", "fail_fast", "stop",
                                  "resources_per_trial") and v is not None}
            for key in ("scheduler", "search_alg"):  # objects given again replace the rebuilt ones
                if getattr(self.tune_config, key) is not None:
                    overrides[key] = getattr(self.tune_config, key)
            results = resume(self._resume["path"], trainable=self.trainable, config=self.param_space,
                             **self._resume["flags"], **overrides)
        else:
            results = run(self.trainable, self.param_space, **self._run_kwargs())
        self._results = ResultGrid(results)
        return self._results

    def get_results(self) -> ResultGrid:
        """The results of the last ``fit()``, or of the restored experiment as it is on disk."""
        if self._results is not None:
            return self._results
        if self._resume is not None:
            from tuner.results import load

            return ResultGrid(load(self._resume["path"]))
        raise RuntimeError("This Tuner has not been fitted; call fit() first.")

    @classmethod
    def restore(cls, path: str, trainable: Any, *, param_space: dict[str, Any] | None = None,
                resume_unfinished: bool = True, resume_errored: bool = False, restart_errored: bool = False,
                tune_config: TuneConfig | None = None, run_config: RunConfig | None = None) -> Tuner:
        """A Tuner that continues the experiment in ``path``: finished trials stay finished;
        unfinished ones continue from their latest checkpoints (``resume_unfinished=False``: they
        end TERMINATED as they are); failed ones stay failed unless ``resume_errored`` (run again
        from their latest checkpoints) or ``restart_errored`` (from scratch, their checkpoints
        deleted). The searcher may still add new trials. ``param_space`` is needed only when the
        space holds ``sample_from`` functions; ``run_config`` gives callbacks, stop, verbose again."""
        from tuner.resume_policy import resume_pair

        flags = {"resume_unfinished": resume_unfinished, "resume_errored": resume_errored,
                 "restart_errored": restart_errored}
        resume_pair(**flags)  # both errored flags: refused now, not at fit()
        if not cls.can_restore(path):
            raise FileNotFoundError(f"{path} is not an experiment directory (no {JOURNAL} and {SPEC} in it).")
        return cls(trainable, param_space=param_space, tune_config=tune_config, run_config=run_config,
                   _resume={"path": fs.normalize(path), "flags": flags})

    @staticmethod
    def can_restore(path: str | os.PathLike) -> bool:
        """Whether ``path`` holds an experiment that ``Tuner.restore`` can continue."""
        path = fs.normalize(path)
        return journal.exists(path) and fs.exists(fs.join(path, SPEC))
