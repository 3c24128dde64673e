"""Trainables shared by the integration tests (module level, so workers import them)."""

from __future__ import annotations

import os
import random
import time

import tuner as tune

_LEAK = {"count": 0}


def quadratic(config):
    """loss = (x - 3)^2 shrinking with steps; reports `steps` results."""
    for step in range(config.get("steps", 3)):
        tune.report({"loss": (config["x"] - 3) ** 2 / (step + 1), "step": step})


def introspect(config):
    """Reports what the trial can see of itself, to check isolation."""
    _LEAK["count"] += 1
    ctx = tune.get_context()
    tune.report({
        "pid": os.getpid(), "cwd": os.getcwd(), "trial_dir": ctx.trial_dir, "ctx_trial_id": ctx.trial_id,
        "gpu_ids": ",".join(ctx.gpu_ids), "cuda": os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"),
        "rand": random.random(), "seed": ctx.seed, "module_calls": _LEAK["count"],
        "start": time.time(),
    })
    time.sleep(config.get("sleep", 0.0))
    tune.report({"end": time.time()})


def fail_on_odd(config):
    tune.report({"score": config["i"]})
    if config["i"] % 2:
        raise ValueError(f"odd trial {config['i']} fails on purpose")
    tune.report({"score": config["i"] + 10})


def flaky(config):
    """Fails on its first attempt in each trial dir, succeeds after (a retry)."""
    marker = os.path.join(tune.get_context().trial_dir, "attempted")
    tune.report({"attempt_marker": os.path.exists(marker)})
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("first attempt fails")
    tune.report({"ok": 1})


def endless(config):
    step = 0
    while True:
        step += 1
        tune.report({"acc": min(1.0, step * config["rate"]), "loss": 1.0 / step})
        time.sleep(config.get("sleep", 0.0))


class Counter(tune.Trainable):
    """A class trainable whose state is a counter, so restores are checkable exactly."""

    def setup(self, config):
        self.count = 0
        self.inc = config["inc"]

    def step(self):
        self.count += self.inc
        return {"count": self.count, "done": self.count >= 5 * self.inc}

    def save_checkpoint(self, checkpoint_dir):
        return {"count": self.count}

    def load_checkpoint(self, checkpoint):
        self.count = checkpoint["count"]


def slow_counter(config):
    """Counts to config["n"], checkpointing every step, so a restart is checkable exactly."""
    state = tune.get_checkpoint() or {"step": 0}
    for step in range(state["step"] + 1, config["n"] + 1):
        time.sleep(config.get("sleep", 0.05))
        tune.report({"step": step, "score": step * config["w"]}, checkpoint={"step": step})


def never_reports_again(config):
    tune.report({"started": 1})
    while True:
        time.sleep(0.05)


def tb_sweep(config):
    """For the TensorBoard server test: trial 3 fails, trials 2, 5, 8... would run past the stop."""
    index = int(tune.get_context().trial_id[-5:])
    if index == 3:
        raise RuntimeError("trial 3 diverged")
    for step in range(1, 3 + index % 3):
        tune.report({"acc": config["lr"] * 10 * step, "loss": 1.0 / step})


def two_objectives(config):
    """acc rises and latency rises with size: a trade-off with a known front."""
    tune.report({"acc": config["size"] / 10, "latency": config["size"] ** 2 + config["waste"]})


def slow_quadratic(config):
    for step in range(1, config.get("steps", 10) + 1):
        time.sleep(config.get("sleep", 0.02))
        tune.report({"loss": (config["x"] - 3) ** 2 + 10 / step, "start": time.time()})


def learning_curve(config):
    """The synthetic curve of the ASHA benchmark; resumes from a checkpointed step."""
    start = (tune.get_checkpoint() or {"step": 0})["step"]
    for step in range(start + 1, 101):
        loss = 1.0 / (0.1 + config["width"] * step / 100) + 0.1 * config["height"]
        tune.report({"loss": loss}, checkpoint={"step": step})


def wait_side_by_side(config):
    """With ``config["side_by_side"] = n``: wait until n trials of the sweep have started, so that
    a population that all fits at once trains together however late Ray starts a worker."""
    if not config.get("side_by_side"):
        return
    ctx = tune.get_context()
    open(os.path.join(ctx.experiment_path, f"started_{ctx.trial_id}"), "w").close()
    deadline = time.time() + 60
    while time.time() < deadline and sum(
            name.startswith("started_") for name in os.listdir(ctx.experiment_path)) < config["side_by_side"]:
        time.sleep(0.05)


def pbt_counter(config):
    """PBT: count += config["inc"] every step, checkpointed every step, so an exploit is checkable exactly.
    Also reports the Ray node it runs on (multi-node tests)."""
    count = (tune.get_checkpoint() or {"count": 0})["count"]
    node = tune.get_context().node_id or ""
    wait_side_by_side(config)
    while True:
        time.sleep(config.get("sleep", 0.0))
        count += config["inc"]
        tune.report({"count": count, "inc": config["inc"], "node": node}, checkpoint={"count": count})


def pbt_counter_shaped(config):
    """``pbt_counter`` that also reports the CPUs its trial was given (per-trial resources)."""
    count = (tune.get_checkpoint() or {"count": 0})["count"]
    cpus = tune.get_context().resources.get("CPU")
    wait_side_by_side(config)
    while True:
        time.sleep(config.get("sleep", 0.0))
        count += config["inc"]
        tune.report({"count": count, "inc": config["inc"], "cpus_given": cpus}, checkpoint={"count": count})


class PBTCounter(tune.Trainable):
    """``pbt_counter`` as a class; ``reset_config`` switches ``inc`` in place (PBT's fast path)."""

    def setup(self, config):
        self.count, self.resets = 0, 0
        wait_side_by_side(config)

    def step(self):
        time.sleep(self.config.get("sleep", 0.0))
        self.count += self.config["inc"]
        return {"count": self.count, "inc": self.config["inc"], "resets": self.resets}

    def save_checkpoint(self, checkpoint_dir):
        return {"count": self.count}

    def load_checkpoint(self, checkpoint):
        self.count = checkpoint["count"]

    def reset_config(self, new_config):
        self.resets += 1
        return True


class PBTCounterShaped(PBTCounter):
    """``PBTCounter`` that also reports the CPUs its trial was given (per-trial resources)."""

    def step(self):
        return {**super().step(), "cpus_given": tune.get_context().resources.get("CPU")}


def _where() -> dict:
    import ray

    pg = ray.util.get_current_placement_group()
    return {"pg": pg.id.hex() if pg else None, "node": ray.get_runtime_context().get_node_id()}


def placement_probe(config):
    """Starts a task and an actor without placement options: both must land in the trial's group."""
    import ray

    ctx = tune.get_context()
    task = ray.remote(num_cpus=1)(_where)
    actor = ray.remote(num_cpus=1)(type("Probe", (), {"where": lambda self: _where()}))
    # With two 1-CPU bundles on a 2-CPU Ray, nothing outside the group is free: a child
    # that escaped the group could never run, so the timeouts turn that into a failure.
    seen_task = ray.get(task.remote(), timeout=60)
    probe = actor.remote()
    seen_actor = ray.get(probe.where.remote(), timeout=60)
    ray.kill(probe)
    tune.report({"own_pg": _where()["pg"], "task_pg": seen_task["pg"], "actor_pg": seen_actor["pg"],
                 "bundles": len(ctx.bundles), "strategy": ctx.placement_strategy})


def shaped(config):
    """Reports the resources it was given and the span it ran in (for per-trial shapes)."""
    start = time.time()
    for step in range(3):
        time.sleep(config.get("sleep", 0.2))
        tune.report({"score": config["cpus"] * 10 + step, "cpus_given": tune.get_context().resources.get("CPU"),
                     "start": start, "end": time.time()})


def cpus_of(config):
    return {"cpu": config["cpus"]}


def directory_checkpoints(config):
    """Reports a directory checkpoint of ``mb`` MB each iteration (score peaks at ``peak``), and
    checks that the worker published it before ``report`` returned. Restores from its checkpoint."""
    import tempfile

    ckpt = tune.get_checkpoint()
    start = 0
    if ckpt is not None:
        with open(os.path.join(ckpt.to_directory(), "state.txt")) as f:
            start = int(f.read())
    ctx = tune.get_context()
    with open(os.path.join(ctx.trial_dir, "notes.txt"), "a") as f:  # an artifact in the working directory
        f.write(f"started at {start}\n")
    print(f"stdout of {ctx.trial_id} from {start}")
    for step in range(start + 1, config["steps"] + 1):
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, "state.txt"), "w") as f:
                f.write(str(step))
            with open(os.path.join(tmp, "weights.bin"), "wb") as f:
                f.write(os.urandom(int(config.get("mb", 0.01) * 2**20)))
            tune.report({"score": -abs(step - config["peak"]), "step": step, "restored_from": start,
                         "node": ctx.node_id or ""}, checkpoint=tune.Checkpoint.from_directory(tmp))
        if step == config.get("fail_at") and start == 0:
            raise RuntimeError(f"fails at step {step} on purpose")
        time.sleep(config.get("sleep", 0.0))


def fails_once(config):
    """Counts to ``steps`` with a checkpoint every step; fails once at ``crash_at`` (a marker file
    remembers it did). Reports where it restarted from (``restored_from``: 0 on a fresh start)."""
    checkpoint = tune.get_checkpoint()
    start = checkpoint["step"] if checkpoint is not None else 0
    for step in range(start + 1, config["steps"] + 1):
        if step == config.get("crash_at") and not os.path.exists(config["marker"]):
            open(config["marker"], "w").close()
            raise RuntimeError(f"failing once at {step}")
        time.sleep(config.get("sleep", 0.0))
        tune.report({"step": step, "restored_from": start}, checkpoint={"step": step})


class ResultBudget(tune.Stopper):
    """Stateful across trials: the whole experiment gets ``budget`` results (rebuilt by a resume
    from its constructor argument, its count replayed from the journal)."""

    def __init__(self, budget):
        self.budget = budget
        self.seen = 0

    def __call__(self, trial_id, result):
        self.seen += 1
        return False

    def stop_all(self):
        return self.seen >= self.budget


class CountingCallable:
    """A callable object as trainable that remembers how often it was called (in its own state)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, config):
        import os

        import tuner as tune

        self.calls += 1
        tune.report({"calls": self.calls, "pid": os.getpid()})
