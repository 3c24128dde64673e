"""``WandbCallback``: one Weights & Biases run per trial, grouped by experiment."""

from __future__ import annotations

import os
from typing import Any

from tuner.integrations._shared import TrackerCallback, import_extra, metrics_of
from tuner.trial import Trial


def import_wandb() -> Any:
    return import_extra("wandb", "WandbCallback", "wandb")


class WandbCallback(TrackerCallback):
    """Sends the sweep to W&B: one run per trial (named by its trial id, job type
    "trial"), all of a sweep in one group (the sweep's directory name unless ``group``).

    Each run starts with the trial's config, logs every numeric result at
    ``step=training_iteration``, and on a PBT exploit updates its config to the
    new one, with ``exploited_from`` (the donor) and ``exploited_at`` (the step).
    Runs finish with exit code 0, or 1 when the trial errored.

    Calls go through a background thread (``wandb.init`` starts a process; a dead
    server must not stall the sweep); failures are logged (logger
    ``tuner.integrations``) and the journal keeps everything.

    Args:
        project, entity, tags: as for ``wandb.init``.
        group: the W&B group; default: the experiment's directory name.
        mode: "online", "offline" (runs written under ``dir`` for ``wandb sync``) or "disabled";
            default: W&B's (``WANDB_MODE``).
        dir: where W&B writes its files; default: the experiment directory.
        flush_timeout_s: at the end of the sweep, wait at most this long for calls still queued.
        init_kwargs: anything else for ``wandb.init``.

    Example::

        from tuner.integrations import WandbCallback

        tune.run(train, config=space, metric="acc", mode="max", callbacks=[WandbCallback(project="mlp")])
    """

    def __init__(self, project: str | None = None, group: str | None = None, entity: str | None = None,
                 tags: list[str] | None = None, mode: str | None = None, dir: str | None = None,
                 flush_timeout_s: float = 60.0, **init_kwargs: Any) -> None:
        import_wandb()
        super().__init__()
        if mode not in (None, "online", "offline", "disabled"):
            raise ValueError(f"The value of `mode` is {mode!r}, but must be 'online', 'offline', 'disabled' or None.")
        self.project = project
        self.group = group
        self.entity = entity
        self.tags = list(tags or [])
        self.mode = mode
        self.dir = dir
        self.flush_timeout_s = flush_timeout_s
        self.init_kwargs = init_kwargs
        self._group: str | None = None
        self._dir: str | None = None

    # --- the run loop's hooks: each only enqueues ------------------------------------------------
    def setup(self, experiment_path: str, space: dict[str, Any], metric: Any, mode: Any) -> None:
        self._open_outbox()
        self._group = self.group or os.path.basename(os.path.normpath(experiment_path))
        self._dir = self.dir or experiment_path

    def on_trial_start(self, trial: Trial) -> None:
        if trial.trial_id not in self._started:
            self._started.add(trial.trial_id)
            self._put(f"starting the W&B run of {trial.trial_id}", self._init, trial.trial_id, dict(trial.config))

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> None:
        step = int(result.get("training_iteration", 0))
        self._put(f"logging {trial.trial_id}'s result at step {step}", self._log, trial.trial_id,
                  metrics_of(result), step)

    def on_trial_config_change(self, trial: Trial, old_config: dict[str, Any], donor_id: str | None) -> None:
        update = {**trial.config, "exploited_from": donor_id, "exploited_at": int(trial.metric("training_iteration", 0))}
        self._put(f"updating {trial.trial_id}'s config", self._update_config, trial.trial_id, update)

    def on_trial_complete(self, trial: Trial) -> None:
        self._end(trial, 0)

    def on_trial_error(self, trial: Trial) -> None:
        self._end(trial, 1)

    def on_experiment_end(self, trials: list[Trial]) -> None:
        for trial in trials:
            if trial.trial_id in self._started and trial.trial_id not in self._ended:
                self._end(trial, 0)
        self._close_outbox()

    def _end(self, trial: Trial, exit_code: int) -> None:
        self._ended.add(trial.trial_id)
        self._put(f"finishing the W&B run of {trial.trial_id}", self._finish, trial.trial_id, exit_code)

    # --- on the background thread ----------------------------------------------------------------
    def _init(self, trial_id: str, config: dict[str, Any]) -> None:
        wandb = import_wandb()
        os.makedirs(self._dir, exist_ok=True)
        self._runs[trial_id] = wandb.init(
            project=self.project or "tuner", entity=self.entity, group=self._group, name=trial_id,
            job_type="trial", tags=self.tags or None, config=config, mode=self.mode, dir=self._dir,
            reinit="create_new", **self.init_kwargs)

    def _log(self, trial_id: str, metrics: dict[str, float], step: int) -> None:
        self._run(trial_id).log(metrics, step=step)

    def _update_config(self, trial_id: str, update: dict[str, Any]) -> None:
        self._run(trial_id).config.update(update, allow_val_change=True)

    def _finish(self, trial_id: str, exit_code: int) -> None:
        self._run(trial_id).finish(exit_code=exit_code)
