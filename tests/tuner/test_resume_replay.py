"""Resume replays the journal past the last snapshot into the scheduler and searcher:
an interrupted sweep, resumed, decides what the uninterrupted one decides. No Ray."""

from __future__ import annotations

import pytest

import tuner as tune
from schedulers import ASHAScheduler
from searchers import OptunaSearch
from tests.fakes import InProcessExecutor


def nine_steps(config):
    for step in range(1, 10):
        tune.report({"loss": (config["x"] - 1) ** 2 + 1 / step})


class InterruptAt(tune.Callback):
    """Ctrl-C as the ``n``-th trial (a new one or a promoted one) starts."""

    def __init__(self, n):
        self.n, self.started = n, 0

    def on_trial_start(self, trial):
        self.started += 1
        if self.started == self.n:
            raise KeyboardInterrupt


def sweep(storage, name, variant, callbacks=()):
    return tune.run(nine_steps, config={"x": tune.uniform(-2, 4)}, num_samples=24, metric="loss", mode="min",
                    scheduler=ASHAScheduler(max_t=9, grace_period=1, reduction_factor=3, stop_or_promote=variant),
                    search_alg=OptunaSearch(seed=1), max_concurrent_trials=1, seed=1, storage_path=storage,
                    name=name, verbose=0, log_to_tensorboard=False, callbacks=list(callbacks),
                    _executor=InProcessExecutor())


def decided(results):
    trials = [(t.trial_id, t.config, t.status.value, t.stop_reason, len(t.history)) for t in results.trials]
    return trials, [(d["trial_id"], d["action"], d["reason"]) for d in results.decisions()]


@pytest.mark.parametrize("variant", ["stop", "promote"])
@pytest.mark.parametrize("snapshot_every_s", ["0", "1e9"], ids=["snapshot-every-loop", "journal-only"])
def test_interrupted_then_resumed_decides_as_the_uninterrupted_sweep(storage, monkeypatch, variant,
                                                                        snapshot_every_s):
    whole = sweep(storage, "whole", variant)
    monkeypatch.setenv("TUNER_SNAPSHOT_EVERY_S", snapshot_every_s)
    with pytest.raises(KeyboardInterrupt):
        sweep(storage, "cut", variant, [InterruptAt(14)])
    assert len(tune.load(f"{storage}/cut").trials) < 24
    resumed = tune.resume(f"{storage}/cut", verbose=0, log_to_tensorboard=False, _executor=InProcessExecutor())
    assert decided(resumed) == decided(whole)
    assert any(action != "CONTINUE" for _, action, _ in decided(whole)[1])
