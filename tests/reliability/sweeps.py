"""Seeded sweeps that the crash tests run, kill and resume: one per scheduler whose decisions
a resume must repeat exactly (ASHA promotion, HyperBand, median stopping, PBT).

Drivers run them in subprocesses (``python -c "from tests.reliability.sweeps import main; ..."``)
with the in-process executor: trials are threads of the driver, so a SIGKILL of the driver
ends everything at once, as a driver's death ends its Ray actors. No Ray, so each start
costs well under a second and a test can kill and resume many times.
"""

from __future__ import annotations

import os
import time

import tuner as tune
from schedulers import PB2, ASHAScheduler, HyperBandScheduler, MedianStoppingRule, PopulationBasedTraining
from searchers import OptunaSearch
from tests.fakes import InProcessExecutor
from tuner.stopper import TrialPlateauStopper

STEPS = 9


def curve(config):
    """A learning curve that resumes from its checkpointed step; a short sleep per step leaves
    a killer time to land mid-trial."""
    start = (tune.get_checkpoint() or {"step": 0})["step"]
    for step in range(start + 1, STEPS + 1):
        time.sleep(config.get("sleep", 0.002))
        loss = (config["x"] - 1) ** 2 + 1.0 / step
        tune.report({"loss": loss}, checkpoint={"step": step})


def counter(config):
    """PBT: count grows by ``lr`` each step; the checkpoint holds it, so an exploit is exact."""
    count = (tune.get_checkpoint() or {"count": 0.0})["count"]
    while True:
        time.sleep(config.get("sleep", 0.002))
        count += config["lr"]
        tune.report({"count": count}, checkpoint={"count": count})


def fails_once(config):
    """Checkpoints every ``config["every"]`` steps and fails once, between two checkpoints."""
    start = (tune.get_checkpoint() or {"step": 0})["step"]
    marker = os.path.join(tune.get_context().trial_dir, "failed_once")
    for step in range(start + 1, 9):
        if step == 5 and not os.path.exists(marker):
            open(marker, "w").close()
            raise RuntimeError("fails once at step 5")
        tune.report({"loss": 1.0 / step}, checkpoint={"step": step} if step % config["every"] == 0 else None)


def endless(config):
    """Reports every 0.05 s forever (until the time budget ends the sweep)."""
    step = (tune.get_checkpoint() or {"step": 0})["step"]
    while True:
        step += 1
        time.sleep(0.05)
        tune.report({"loss": 1.0 / step}, checkpoint={"step": step})


def endless_run(storage: str, name: str, **kwargs):
    return tune.run(endless, storage_path=storage, name=name, verbose=0, log_to_tensorboard=False,
                    _executor=InProcessExecutor(slots=1), **kwargs)


def endless_resume(path: str, **overrides):
    return tune.resume(path, verbose=0, log_to_tensorboard=False, _executor=InProcessExecutor(slots=1), **overrides)


def _common(storage: str, name: str) -> dict:
    return dict(max_concurrent_trials=1, seed=0, storage_path=storage, name=name, verbose=0,
                log_to_tensorboard=False, raise_on_failed_trial=False)


SWEEPS = {
    "asha_promote": lambda: dict(
        trainable=curve, config={"x": tune.uniform(-2, 4)}, num_samples=12, metric="loss", mode="min",
        scheduler=ASHAScheduler(max_t=STEPS, grace_period=1, reduction_factor=3, stop_or_promote="promote"),
        search_alg=OptunaSearch(seed=0)),
    "hyperband": lambda: dict(
        trainable=curve, config={"x": tune.uniform(-2, 4)}, num_samples=10, metric="loss", mode="min",
        scheduler=HyperBandScheduler(max_t=STEPS, reduction_factor=3)),
    "median": lambda: dict(
        trainable=curve, config={"x": tune.uniform(-2, 4)}, num_samples=10, metric="loss", mode="min",
        scheduler=MedianStoppingRule(grace_period=2, min_samples_required=2)),
    # A driver-side Stopper beside the scheduler: it sees every result first, the scheduler its points.
    "median_stopper": lambda: dict(
        trainable=curve, config={"x": tune.uniform(-2, 4)}, num_samples=10, metric="loss", mode="min",
        stop=TrialPlateauStopper("loss", std=0.05, num_results=3, grace_period=3),
        scheduler=MedianStoppingRule(grace_period=2, min_samples_required=2)),
    "pbt": lambda: dict(
        trainable=counter, config={"lr": tune.choice([0.5, 1.0, 2.0, 3.0])}, num_samples=4, metric="count",
        mode="max", stop={"training_iteration": 12},
        scheduler=PopulationBasedTraining(perturbation_interval=3, quantile_fraction=0.5, seed=0,
                                          hyperparam_mutations={"lr": [0.5, 1.0, 2.0, 3.0]})),
    "pb2": lambda: dict(
        trainable=counter, config={"lr": tune.uniform(0.5, 3.0)}, num_samples=4, metric="count",
        mode="max", stop={"training_iteration": 12},
        scheduler=PB2(perturbation_interval=3, quantile_fraction=0.5, seed=0,
                      hyperparam_bounds={"lr": [0.5, 3.0]})),
}


def run(kind: str, storage: str, name: str, **overrides):
    kwargs = {**SWEEPS[kind](), **_common(storage, name), "_executor": InProcessExecutor(slots=1), **overrides}
    return tune.run(kwargs.pop("trainable"), **kwargs)


def resume(path: str, **overrides):
    return tune.resume(path, verbose=0, log_to_tensorboard=False, raise_on_failed_trial=False,
                       _executor=InProcessExecutor(slots=1), **overrides)


def decisions(results) -> dict:
    """Everything the scheduler and searcher decided, comparable between two runs."""
    trials = [(t.trial_id, t.config, t.status.value, t.stop_reason,
               [r["training_iteration"] for r in t.history]) for t in results.trials]
    made = [(d["trial_id"], d["action"], d["reason"], d.get("iteration")) for d in results.decisions()]
    return {"trials": trials, "decisions": made}


def die_after_record(n: int) -> None:
    """SIGKILL this process right after its journal writer has written its ``n``-th record
    (a crash at an exact point of the run loop, between two records)."""
    import signal

    from tuner.storage import journal

    written = {"n": 0}
    write, write_many = journal.JournalWriter.write, journal.JournalWriter.write_many

    def counted(count, real):
        def wrapper(self, records):
            records = list(records) if count is None else records
            out = real(self, records)  # write_many says where the lines lie (trial histories keep it)
            written["n"] += len(records) if count is None else 1
            if written["n"] >= n:
                os.kill(os.getpid(), signal.SIGKILL)
            return out
        return wrapper

    journal.JournalWriter.write = counted(1, write)
    journal.JournalWriter.write_many = counted(None, write_many)


def die_after_result(n: int) -> None:
    """SIGKILL this process right after the journal write that holds its ``n``-th result: the driver
    dies before any Stopper, searcher or scheduler saw that result."""
    import signal

    from tuner.storage import journal

    seen = {"n": 0}
    write_many = journal.JournalWriter.write_many

    def dying(self, records):
        records = list(records)
        out = write_many(self, records)  # where the lines lie (trial histories keep it)
        seen["n"] += sum(isinstance(r, journal.Result) for r in records)
        if seen["n"] >= n:
            os.kill(os.getpid(), signal.SIGKILL)
        return out

    journal.JournalWriter.write_many = dying


def die_at_ask(n: int) -> None:
    """SIGKILL this process inside OptunaSearch's ``n``-th suggestion, between Optuna's ask and the note of
    the tuner's trial id on it (two writes to Optuna's own journal)."""
    import signal

    import optuna

    calls = {"n": 0}
    note = optuna.trial.Trial.set_user_attr

    def dying_note(self, key, value):
        calls["n"] += 1
        if key == "trial_id" and calls["n"] >= n:
            os.kill(os.getpid(), signal.SIGKILL)
        note(self, key, value)

    optuna.trial.Trial.set_user_attr = dying_note


def die_at_params(n: int) -> None:
    """SIGKILL this process as it writes the ``n``-th new trial's params.json: after the searcher
    suggested (and OptunaSearch noted the trial id in its own journal), between the trial's journal
    record and its files."""
    import signal

    from tuner.storage import jsonio

    calls = {"n": 0}
    write = jsonio.write_atomic

    def dying_write(path, value, parent_exists=False):
        if path.endswith("params.json"):
            calls["n"] += 1
            if calls["n"] >= n:
                os.kill(os.getpid(), signal.SIGKILL)
        write(path, value, parent_exists)

    jsonio.write_atomic = dying_write


def main(kind: str, storage: str, name: str, resume_path: str | None = None, die_after: int = 0,
         die_at_optuna_ask: int = 0, die_at_trial_files: int = 0, die_at_result: int = 0) -> None:
    """A driver: start the sweep, or resume the one at ``resume_path``; with ``die_after``, it
    SIGKILLs itself after writing that many journal records (``die_at_*``: at other points)."""
    if die_after:
        die_after_record(die_after)
    if die_at_optuna_ask:
        die_at_ask(die_at_optuna_ask)
    if die_at_trial_files:
        die_at_params(die_at_trial_files)
    if die_at_result:
        die_after_result(die_at_result)
    if resume_path:
        resume(resume_path)
    else:
        run(kind, storage, name)




def soak_curve(config):
    """The soak's trainable: resumes from its checkpointed step, checkpoints every step and reports
    its worker's PID (the soak kills workers by it)."""
    start = (tune.get_checkpoint() or {"step": 0})["step"]
    for step in range(start + 1, 10):
        time.sleep(0.05)
        tune.report({"loss": (config["x"] - 1) ** 2 + 1.0 / step, "pid": os.getpid()}, checkpoint={"step": step})


def soak_run(storage: str, name: str, resume: bool) -> None:
    """A soak driver on the shared Ray (RAY_ADDRESS): ASHA + OptunaSearch, max_failures=3."""
    path = os.path.join(storage, name)
    if resume:
        tune.resume(path, verbose=0, log_to_tensorboard=False, raise_on_failed_trial=False)
        return
    tune.run(soak_curve, config={"x": tune.uniform(-2, 4)}, num_samples=24, metric="loss", mode="min",
             scheduler=ASHAScheduler(max_t=9, grace_period=1, reduction_factor=3), search_alg=OptunaSearch(seed=0),
             max_concurrent_trials=2, max_failures=3, seed=0, storage_path=storage, name=name, verbose=0,
             log_to_tensorboard=False, raise_on_failed_trial=False)


def dies(config):
    """Reports its PID, then its worker process ends the way ``config["how"]`` says."""
    tune.report({"pid": os.getpid()})
    if config["how"] == "exit":
        os._exit(3)
    if config["how"] == "segfault":
        import ctypes

        ctypes.string_at(0)  # reads address 0: SIGSEGV
    time.sleep(600)  # "sigkill": the test kills it by its PID


def memory_hog(config):
    """Reports its PID, then takes memory in 50 MB steps (each page written) up to ``config["mb"]``
    (bounded: the machine is shared); a memory monitor or OOM killer should end it before that."""
    import numpy as np

    tune.report({"pid": os.getpid()})
    chunks = []
    for _ in range(config["mb"] // 50):
        chunks.append(np.ones(50 * 2**20, dtype=np.uint8))
        time.sleep(0.05)
    time.sleep(5)  # the monitor's time to notice the last step


def memory_monitor_run(storage: str, threshold: float, mb: int) -> None:
    """A driver with a Ray of its own whose memory monitor kills workers once the node uses more than
    ``threshold`` of its memory (checked every 100 ms); runs ``memory_hog`` and prints how its trial ended."""
    import json
    import shutil
    import tempfile

    os.environ["RAY_memory_usage_threshold"] = str(threshold)  # read by the raylet this driver starts
    os.environ["RAY_memory_monitor_refresh_ms"] = "100"
    import ray

    temp = tempfile.mkdtemp(prefix="tuner_oom_")
    ray.init(num_cpus=1, include_dashboard=False, _temp_dir=temp, configure_logging=False)
    try:
        results = tune.run(memory_hog, config={"mb": mb}, storage_path=storage, name="oom", verbose=0,
                           raise_on_failed_trial=False, log_to_tensorboard=False)
        (trial,) = results.trials
        print(json.dumps({"status": trial.status.value, "error": trial.error}))
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
