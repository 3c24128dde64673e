"""The compact layout (``trial_files=False``): no per-trial views, the same results from the journal."""

from __future__ import annotations

import os

import tuner as tune
from tests.fakes import InProcessExecutor


def three_results(config):
    for step in range(1, 4):
        tune.report({"loss": config["x"] / step})


def sweep(storage, name, trial_files, **kwargs):
    return tune.run(three_results, config={"x": tune.uniform(0, 1)}, num_samples=4, metric="loss", mode="min",
                    seed=3, storage_path=storage, name=name, verbose=0, log_to_tensorboard=False,
                    trial_files=trial_files, _executor=InProcessExecutor(), **kwargs)


def files_under(path):
    return sorted(name for _, _, names in os.walk(path) for name in names)


def test_compact_layout_writes_no_trial_views_and_loads_the_same(storage):
    full = sweep(storage, "full", True)
    compact = sweep(storage, "compact", False)
    assert {"params.json", "result.jsonl", "progress.csv"} <= set(files_under(f"{storage}/full/trials"))
    assert files_under(f"{storage}/compact/trials") == []

    def seen(results):
        return [(t.config, [r["loss"] for r in t.history], t.status) for t in results.trials]

    assert seen(tune.load(f"{storage}/compact")) == seen(full) == seen(compact)
    again = tune.resume(f"{storage}/compact", verbose=0, log_to_tensorboard=False, _executor=InProcessExecutor())
    assert seen(again) == seen(full) and files_under(f"{storage}/compact/trials") == []
