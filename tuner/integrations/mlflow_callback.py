"""``MLflowCallback``: one MLflow run per trial, under one MLflow experiment."""

from __future__ import annotations

import os
import time
from typing import Any

from tuner.integrations._shared import TrackerCallback, import_extra, metrics_of
from tuner.storage.experiment import flatten
from tuner.trial import Trial


def import_mlflow() -> Any:
    return import_extra("mlflow", "MLflowCallback", "mlflow")


class MLflowCallback(TrackerCallback):
    """Sends the sweep to MLflow: one run per trial (named by its trial id) under one
    experiment (the sweep's directory name unless ``experiment_name``).

    Each run gets the trial's config as params, every numeric result as metrics
    at ``step=training_iteration``, a PBT exploit as params ``<key>:<iteration>``
    with the new values (MLflow params cannot change) and the tags
    ``exploit:<iteration> = <donor id>``, and, when ``log_checkpoints``, the
    trial's latest checkpoint directory as artifacts when it ends. Runs end
    FINISHED, FAILED (errored) or KILLED (the sweep ended first).

    Calls go through a background thread: a slow or dead tracking server never
    stalls or fails the sweep; failures are logged (logger ``tuner.integrations``)
    and the journal keeps everything.

    Args:
        tracking_uri: the MLflow tracking URI (``http://127.0.0.1:5000``, a path, ...);
            default: MLflow's own (``MLFLOW_TRACKING_URI``).
        experiment_name: the MLflow experiment, created when missing.
        tags: tags for every run.
        log_checkpoints: upload each trial's latest checkpoint when it ends.
        metrics_every_s: a trial's metrics are sent in one batch at most this often (and when
            it ends or changes config), so a fast trainable does not cost a request per result.
        flush_timeout_s: at the end of the sweep, wait at most this long for calls still queued.

    Example::

        from tuner.integrations import MLflowCallback

        tune.run(train, config=space, metric="acc", mode="max",
                 callbacks=[MLflowCallback("http://127.0.0.1:5000", experiment_name="mlp")])
    """

    def __init__(self, tracking_uri: str | None = None, experiment_name: str | None = None,
                 tags: dict[str, str] | None = None, log_checkpoints: bool = False,
                 metrics_every_s: float = 2.0, flush_timeout_s: float = 60.0) -> None:
        import_mlflow()
        super().__init__()
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.tags = dict(tags or {})
        self.log_checkpoints = log_checkpoints
        self.metrics_every_s = metrics_every_s
        self.flush_timeout_s = flush_timeout_s
        self._unsent: dict[str, list[tuple[str, float, int, int]]] = {}  # trial id -> (key, value, ms, step)
        self._sent_at: dict[str, float] = {}
        self._client: Any = None
        self._experiment_id: str | None = None

    # --- the run loop's hooks: each only enqueues ------------------------------------------------
    def setup(self, experiment_path: str, space: dict[str, Any], metric: Any, mode: Any) -> None:
        self._open_outbox()
        name = self.experiment_name or os.path.basename(os.path.normpath(experiment_path))
        self._put(f"opening MLflow experiment {name!r} at {self.tracking_uri or 'the default URI'}",
                         self._open_experiment, name, experiment_path)

    def on_trial_start(self, trial: Trial) -> None:
        if trial.trial_id not in self._started:
            self._started.add(trial.trial_id)
            self._put(f"creating the run of {trial.trial_id}", self._create_run, trial.trial_id, dict(trial.config))

    def on_trial_result(self, trial: Trial, result: dict[str, Any]) -> None:
        step = int(result.get("training_iteration", 0))
        stamp = int(1000 * result.get("timestamp", 0))
        unsent = self._unsent.setdefault(trial.trial_id, [])
        unsent.extend((k, v, stamp, step) for k, v in metrics_of(result).items())
        if time.monotonic() - self._sent_at.get(trial.trial_id, -float("inf")) >= self.metrics_every_s:
            self._send_metrics(trial.trial_id)

    def _send_metrics(self, trial_id: str) -> None:
        unsent = self._unsent.pop(trial_id, None)
        self._sent_at[trial_id] = time.monotonic()
        if unsent:
            self._put(f"logging {trial_id}'s metrics up to step {unsent[-1][3]}", self._log_metrics, trial_id, unsent)

    def on_trial_config_change(self, trial: Trial, old_config: dict[str, Any], donor_id: str | None) -> None:
        self._send_metrics(trial.trial_id)
        step = int(trial.metric("training_iteration", 0))
        old, new = flatten(old_config), flatten(trial.config)
        changed = {f"{k}:{step}": v for k, v in new.items() if old.get(k) != v}
        self._put(f"logging {trial.trial_id}'s new config at step {step}", self._log_exploit, trial.trial_id,
                  changed, {f"exploit:{step}": donor_id or ""})

    def on_trial_complete(self, trial: Trial) -> None:
        self._end(trial, "FINISHED")

    def on_trial_error(self, trial: Trial) -> None:
        self._end(trial, "FAILED")

    def on_experiment_end(self, trials: list[Trial]) -> None:
        for trial in trials:
            if trial.trial_id in self._started and trial.trial_id not in self._ended:
                self._end(trial, "KILLED")
        self._close_outbox()

    def _end(self, trial: Trial, status: str) -> None:
        self._ended.add(trial.trial_id)
        self._send_metrics(trial.trial_id)
        if self.log_checkpoints and trial.checkpoint_path:
            self._put(f"uploading {trial.trial_id}'s checkpoint", self._log_checkpoint, trial.trial_id,
                      trial.checkpoint_path)
        self._put(f"ending the run of {trial.trial_id}", self._terminate, trial.trial_id, status)

    # --- on the background thread ----------------------------------------------------------------
    def _open_experiment(self, name: str, experiment_path: str) -> None:
        mlflow = import_mlflow()
        self._client = mlflow.tracking.MlflowClient(tracking_uri=self.tracking_uri)
        found = self._client.get_experiment_by_name(name)
        self._experiment_id = (found.experiment_id if found is not None else
                               self._client.create_experiment(name, tags={"tuner.experiment_path": experiment_path}))

    def _create_run(self, trial_id: str, config: dict[str, Any]) -> None:
        if self._experiment_id is None:
            raise RuntimeError("the MLflow experiment could not be opened (see the first failure)")
        tags = {**self.tags, "tuner.trial_id": trial_id}
        run = self._client.create_run(self._experiment_id, run_name=trial_id, tags=tags)
        self._runs[trial_id] = run.info.run_id  # MLflow's client takes run ids
        self._log_params(trial_id, flatten(config))

    def _log_params(self, trial_id: str, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow takes at most 100 params a batch
            self._client.log_batch(self._run(trial_id), params=items[i:i + 100])

    def _log_metrics(self, trial_id: str, metrics: list[tuple[str, float, int, int]]) -> None:
        from mlflow.entities import Metric

        for i in range(0, len(metrics), 1000):  # MLflow takes at most 1000 metrics a batch
            self._client.log_batch(self._run(trial_id), metrics=[Metric(*m) for m in metrics[i:i + 1000]])

    def _log_exploit(self, trial_id: str, params: dict[str, Any], tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        self._log_params(trial_id, params)
        self._client.log_batch(self._run(trial_id), tags=[RunTag(k, v) for k, v in tags.items()])

    def _log_checkpoint(self, trial_id: str, directory: str) -> None:
        name = os.path.basename(os.path.normpath(directory))
        self._client.log_artifacts(self._run(trial_id), directory, artifact_path=f"checkpoints/{name}")

    def _terminate(self, trial_id: str, status: str) -> None:
        self._client.set_terminated(self._run(trial_id), status=status)
