"""Ray Tune's Tuner API on the shared local Ray: fit, the result grid, restore,
with_parameters / with_resources, failures and fail_fast, as Ray Tune code uses them."""

from __future__ import annotations

import os

import numpy as np
import pytest

import tuner as tune
from schedulers import AsyncHyperBandScheduler

pytestmark = pytest.mark.usefixtures("ray_local")


def train(config):
    start = 0
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as path:
            start = int(open(os.path.join(path, "step.txt")).read())
    for step in range(start + 1, config["steps"] + 1):
        loss = (config["x"] - 2) ** 2 + 1.0 / step
        if config.get("crash_at") == step:
            raise RuntimeError(f"crash at {step}")
        directory = os.path.join(tune.get_context().get_trial_dir(), f"tmp_{step}")
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "step.txt"), "w") as f:
            f.write(str(step))
        tune.report({"loss": loss, "step": step}, checkpoint=tune.Checkpoint.from_directory(directory))


def test_fit_returns_a_result_grid(storage):
    tuner = tune.Tuner(
        train,
        param_space={"x": tune.grid_search([0.0, 2.0, 5.0]), "steps": 4},
        tune_config=tune.TuneConfig(metric="loss", mode="min",
                                    scheduler=AsyncHyperBandScheduler(max_t=4, grace_period=2, reduction_factor=2)),
        run_config=tune.RunConfig(name="grid", storage_path=storage, verbose=False,
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=2)),
    )
    grid = tuner.fit()
    assert len(grid) == 3 and grid.num_errors == 0 and grid.errors == []
    best = grid.get_best_result()
    assert best.config["x"] == 2.0 and best.metrics["loss"] == pytest.approx(0.25)
    assert best.metrics["config"] == best.config
    assert best.path == os.path.join(storage, "grid", "trials", best.metrics["trial_id"])
    with best.checkpoint.as_directory() as path:
        assert open(os.path.join(path, "step.txt")).read() == "4"
    assert len(best.best_checkpoints) == 2
    assert list(best.metrics_dataframe["step"]) == [1, 2, 3, 4]
    assert grid.get_best_result(metric="loss", mode="max").config["x"] == 5.0
    assert grid.get_best_result(metric="step", mode="max", scope="all").metrics["step"] == 4
    frame = grid.get_dataframe(filter_metric="loss", filter_mode="min")
    assert sorted(frame["config/x"]) == [0.0, 2.0, 5.0] and "logdir" in frame
    assert [r.config["x"] for r in grid] == [grid[i].config["x"] for i in range(3)]
    assert tune.Tuner.can_restore(os.path.join(storage, "grid"))
    assert not tune.Tuner.can_restore(storage)


def test_failed_trials_are_in_the_grid_and_restore_continues_them(storage, monkeypatch):
    run_config = tune.RunConfig(name="crashy", storage_path=storage, verbose=0,
                                failure_config=tune.FailureConfig(max_failures=0))
    grid = tune.Tuner(train, param_space={"x": 1.0, "steps": 5, "crash_at": tune.grid_search([3, None])},
                      tune_config=tune.TuneConfig(metric="loss", mode="min"), run_config=run_config).fit()
    assert grid.num_errors == 1 and "crash at 3" in str(grid.errors[0])
    failed = next(r for r in grid if r.error is not None)
    assert failed.metrics["step"] == 2

    path = os.path.join(storage, "crashy")
    restored = tune.Tuner.restore(path, train)
    assert restored.get_results().num_errors == 1
    again = restored.fit()  # nothing left to run: finished trials stay finished, failed ones failed
    assert len(again) == 2 and again.num_errors == 1 and again.num_terminated == 1
    with pytest.raises(FileNotFoundError, match="is not an experiment directory"):
        tune.Tuner.restore(storage, train)


def test_fail_fast_raise_from_failure_config(storage):
    tuner = tune.Tuner(train, param_space={"x": 1.0, "steps": 5, "crash_at": 2},
                       run_config=tune.RunConfig(storage_path=storage, verbose=0,
                                                 failure_config=tune.FailureConfig(fail_fast="raise")))
    with pytest.raises(tune.TuneError, match="1 trial\\(s\\) failed"):
        tuner.fit()


def uses_data(config, data, offset):
    tune.report({"total": float(data.sum()) + offset, "cpus": tune.get_context().resources.get("CPU")})


class UsesData(tune.Trainable):
    default_resources_per_trial = {"cpu": 2}  # the class's own request, carried through with_parameters

    def setup(self, config, data=None):
        self.total = float(data.sum())

    def step(self):
        return {"total": self.total, "done": True, "cpus": tune.get_context().resources.get("CPU")}


def test_with_parameters_and_with_resources(storage):
    data = np.arange(1000.0)
    trainable = tune.with_resources(tune.with_parameters(uses_data, data=data, offset=1), {"cpu": 2})
    results = tune.run(trainable, num_samples=2, storage_path=storage, verbose=0)
    assert [t.last_result["total"] for t in results.trials] == [data.sum() + 1] * 2
    assert [t.last_result["cpus"] for t in results.trials] == [2.0, 2.0]
    grid = tune.Tuner(tune.with_parameters(UsesData, data=data),
                      run_config=tune.RunConfig(storage_path=storage, verbose=0)).fit()
    assert grid[0].metrics["total"] == data.sum()
    assert grid[0].metrics["cpus"] == 2.0, "the class attribute is the trial's request under the Tuner"
    # with_parameters keeps the request of what it wraps, whichever way round: with_resources' or a gang's
    outer = tune.with_parameters(tune.with_resources(uses_data, {"cpu": 2}), data=data, offset=0)
    assert outer.default_resources_per_trial == {"cpu": 2}
    gang = tune.with_parameters(tune.distributed(uses_data, num_workers=2), data=data, offset=0)
    assert [dict(b) for b in gang.default_resources_per_trial.bundles] == [{"cpu": 1}, {"cpu": 1}]
