"""Distributed trials: examples/ddp_mlp.py (DDP, 2 ranks per trial, gloo) under ASHA, 8 trials,
this tuner against Ray Tune + Ray Train's TorchTrainer, same 2 CPUs, same training loop.

Both sides run the same 8 configs (a grid over the learning rate), each trial from the same start
(torch seeded with 0, the same data order), with
ASHA(max_t=epochs, grace_period=1, reduction_factor=3), one gang at a time (a gang
holds both CPUs). Ray's side: a Tune function trainable (0.2 CPU) starting a
``TorchTrainer`` (2 workers x 0.9 CPU) that reports to Tune through
``ray.tune.integration.ray_train.TuneReportCallback``; it does not checkpoint (less
work for it). Measured, per framework:

- wall time of the sweep;
- gang start-up per trial: from the trial's start (the driver's on_trial_start)
  until every rank has entered the training loop (median over trials);
- prune to free: from ASHA's STOP decision until the gang's placement group is
  removed and every rank process is gone (median over pruned trials);
- best and mean final accuracy.

    python benchmarks/distributed.py [--epochs 9] [--only tuner|ray]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import sys
import threading
import time

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._common import markdown_table, ray_tune_available, scratch_dir, timed

LRS = [3e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1]
MARKS = os.environ.get("BENCH_DIST_MARKS") or scratch_dir("dist_marks")
os.environ["BENCH_DIST_MARKS"] = MARKS  # workers inherit it through Ray's runtime env below


def _config(epochs: int) -> dict:
    return {"layers": 2, "width": 64, "batch_size": 32, "epochs": epochs}


def _mark(key: str, rank: int) -> None:
    """A rank entered the training loop: when, its pid, its placement group."""
    import ray

    pg = ray.util.get_current_placement_group()
    with open(os.path.join(os.environ["BENCH_DIST_MARKS"], f"{key}_rank{rank}.json"), "w") as f:
        json.dump({"ready": time.time(), "pid": os.getpid(), "pg": pg.id.hex() if pg else None}, f)


def _marks(key: str) -> list[dict]:
    return [json.load(open(p)) for p in sorted(glob.glob(os.path.join(MARKS, f"{key}_rank*.json")))]


class Watch:
    """Driver side: trial starts, and from each STOP decision the time until its gang is gone."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.freed: dict[str, float] = {}
        self._threads: list[threading.Thread] = []

    def stop_decided(self, key: str) -> None:
        thread = threading.Thread(target=self._until_free, args=(key, time.time()), daemon=True)
        thread.start()
        self._threads.append(thread)

    def _until_free(self, key: str, decided: float) -> None:
        import ray

        deadline = time.time() + 120
        while time.time() < deadline:
            marks = _marks(key)
            table = ray.util.placement_group_table()
            removed = all(table.get(m["pg"], {}).get("state") == "REMOVED" for m in marks)
            if marks and removed and not any(_alive(m["pid"]) for m in marks):
                self.freed[key] = time.time() - decided
                return
            time.sleep(0.02)

    def join(self) -> None:
        for thread in self._threads:
            thread.join()

    def startup(self) -> list[float]:
        out = []
        for key, started in self.started.items():
            marks = _marks(key)
            if len(marks) == 2:
                out.append(max(m["ready"] for m in marks) - started)
        return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# --- this tuner ------------------------------------------------------------------------------------
def _same_start() -> None:
    """The same initial weights and data order on both sides (seed 0 for every trial), so that the
    same learning rate gives the same accuracies and ASHA the same decisions."""
    import torch

    torch.manual_seed(0)


def tuner_loop(config):
    import tuner as tune
    from examples.ddp_mlp import train_epochs

    ctx = tune.get_context()
    _mark(ctx.trial_id, ctx.world_rank)
    _same_start()
    train_epochs(config, ctx.world_rank, ctx.world_size, tune.get_checkpoint(), tune.report, seed=0)


def run_tuner(epochs: int) -> dict:
    import tuner as tune
    from schedulers import ASHAScheduler
    from schedulers.base import Decision

    watch = Watch()

    class WatchedASHA(ASHAScheduler):
        def on_trial_result(self, trial, result):
            decision = super().on_trial_result(trial, result)
            if getattr(decision, "action", decision) is Decision.STOP:
                watch.stop_decided(trial.trial_id)
            return decision

    class Starts(tune.Callback):
        def on_trial_start(self, trial):
            watch.started[trial.trial_id] = time.time()

    trainable = tune.distributed(tuner_loop, num_workers=2, resources_per_worker={"cpu": 1}, backend="gloo")
    seconds, results = timed(lambda: tune.run(
        trainable, config={**_config(epochs), "lr": tune.grid_search(LRS)}, metric="acc", mode="max",
        scheduler=WatchedASHA(max_t=epochs, grace_period=1, reduction_factor=3), callbacks=[Starts()],
        storage_path=scratch_dir("dist_tuner"), verbose=0, log_to_tensorboard=False))
    watch.join()
    finals = {t.config["lr"]: t.last_result["acc"] for t in results.trials}
    return _summary(seconds, watch, finals, [len(t.history) for t in results.trials])


# --- Ray Tune + Ray Train --------------------------------------------------------------------------
def ray_train_loop(config):
    import ray.train

    from examples.ddp_mlp import train_epochs

    ctx = ray.train.get_context()
    _mark(config["bench_key"], ctx.get_world_rank())
    _same_start()
    train_epochs(config, ctx.get_world_rank(), ctx.get_world_size(), None,
                 lambda metrics, checkpoint=None: ray.train.report(metrics), seed=0)


def ray_trial(config):
    from ray import tune as rtune
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    key = rtune.get_context().get_trial_id()
    TorchTrainer(ray_train_loop, train_loop_config={**config, "bench_key": key},
                 scaling_config=ScalingConfig(num_workers=2, resources_per_worker={"CPU": 0.9}),
                 run_config=RunConfig(name=key, storage_path=scratch_dir("dist_ray_train"),
                                      callbacks=[TuneReportCallback()])).fit()


def run_ray(epochs: int) -> dict:
    from ray import tune as rtune
    from ray.tune.schedulers import ASHAScheduler as RayASHA
    from ray.tune.schedulers import TrialScheduler

    watch = Watch()

    class WatchedASHA(RayASHA):
        def on_trial_result(self, tune_controller, trial, result):
            action = super().on_trial_result(tune_controller, trial, result)
            if action == TrialScheduler.STOP:
                watch.stop_decided(trial.trial_id)
            return action

    class Starts(rtune.Callback):
        def on_trial_start(self, iteration, trials, trial, **info):
            watch.started[trial.trial_id] = time.time()

    tuner = rtune.Tuner(
        rtune.with_resources(ray_trial, {"cpu": 0.2}),
        param_space={**_config(epochs), "lr": rtune.grid_search(LRS)},
        # One trial at a time, as the tuner's gangs run here: with 0.2-CPU heads, Ray Tune would start
        # all 8 heads at once and leave too little CPU for any trial's 1.8-CPU worker group.
        tune_config=rtune.TuneConfig(metric="acc", mode="max", reuse_actors=False, max_concurrent_trials=1,
                                     scheduler=WatchedASHA(max_t=epochs, grace_period=1, reduction_factor=3)),
        run_config=rtune.RunConfig(storage_path=scratch_dir("dist_ray"), callbacks=[Starts()], verbose=0))
    seconds, grid = timed(tuner.fit)
    watch.join()
    finals = {r.config["lr"]: r.metrics.get("acc") for r in grid if r.metrics}
    iterations = [r.metrics.get("training_iteration", 0) for r in grid if r.metrics]
    return _summary(seconds, watch, finals, iterations)


def _summary(seconds: float, watch: Watch, finals: dict[float, float], iterations: list[int]) -> dict:
    startup, freed = watch.startup(), list(watch.freed.values())
    return {"wall_s": seconds, "startup_s": statistics.median(startup) if startup else float("nan"),
            "free_s": statistics.median(freed) if freed else float("nan"), "pruned": len(freed),
            "best_acc": max(finals.values()), "mean_acc": statistics.fmean(finals.values()),
            "epochs_run": sum(iterations), "final_acc_by_lr": dict(sorted(finals.items())),
            "startup_all_s": sorted(startup), "free_all_s": sorted(freed)}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--only", choices=["tuner", "ray"])
    args = parser.parse_args()
    import ray

    os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
    # address="local": a fresh Ray, never a `ray start` cluster someone else left on this machine.
    # include_dashboard=True (Ray's default) for both sides: Ray Train V2 frees a killed trainer's
    # worker placement group through its PlacementGroupCleaner, which polls the controller's state
    # through the State API, served by the dashboard. Without it, every trial Ray Tune stops leaks its
    # 1.8-CPU worker group and the next trial's TorchTrainer waits for CPUs forever (why stop 21's run
    # never got past its second trial).
    # The cleaner's State API client finds its cluster by RAY_ADDRESS, else by scanning for running GCS
    # processes, and on this shared machine another engineer's Ray is often running too ("Found multiple
    # active Ray instances": the cleaner then never removes anything). So this Ray's GCS gets a port
    # chosen here, and every worker process of the job (detached ones included) gets RAY_ADDRESS naming it.
    from ray._private.services import get_node_ip_address

    os.environ["RAY_GCS_SERVER_PORT"] = str(_free_port())
    address = f"{get_node_ip_address()}:{os.environ['RAY_GCS_SERVER_PORT']}"
    ray.init(address="local", num_cpus=2, num_gpus=0, include_dashboard=True, log_to_driver=False,
             configure_logging=False, runtime_env={"env_vars": {"RAY_ADDRESS": address}})
    rows = []
    if args.only in (None, "tuner"):
        rows.append(("tuner (tune.distributed)", run_tuner(args.epochs)))
        print(rows[-1], flush=True)
    if args.only in (None, "ray") and ray_tune_available():
        rows.append(("Ray Tune + TorchTrainer", run_ray(args.epochs)))
        print(rows[-1], flush=True)
    print(markdown_table(
        ["framework", "wall time (s)", "gang start-up per trial (s, median)", "prune to free (s, median)",
         "ASHA STOPs (incl. at max_t)", "epochs run", "best acc", "mean final acc"],
        [[name, f"{r['wall_s']:.1f}", f"{r['startup_s']:.2f}", f"{r['free_s']:.2f}", r["pruned"], r["epochs_run"],
          f"{r['best_acc']:.3f}", f"{r['mean_acc']:.3f}"] for name, r in rows]))


if __name__ == "__main__":
    main()
