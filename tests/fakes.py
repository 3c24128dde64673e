"""Executors without Ray, both implementing ``tuner.execution.protocol.Executor``:
``InProcessExecutor`` is the tuner's ThreadExecutor counted in slots, ``SimulatedExecutor``
plays trials as arithmetic in a drawn arrival order.

They let the run loop, schedulers and decision points be tested exactly and
fast, without a cluster (ARCHITECTURE: unit tests stay free of Ray);
``tests/integration/test_executor_contract.py`` holds them to RayExecutor's behaviour.
"""

from __future__ import annotations

from typing import Any

from tuner.runtime.messages import Batch, Command, LaunchSpec, SessionState
from tuner.execution.threads import ThreadExecutor
from tuner.runtime.worker import TrialWorker


class InProcessExecutor(ThreadExecutor):
    """The tuner's ThreadExecutor counted in ``slots`` (one trial each, whatever it asks for),
    and counting the workers it made and the most trials it ran at once."""

    def __init__(self, slots: int = 2) -> None:
        super().__init__(cpus=slots)
        self.slots = slots
        self.workers_created = 0
        self.max_running = 0

    def check_feasible(self, resources: Any) -> None:
        pass

    def has_resources_for(self, resources: Any) -> bool:
        return self.running() < self.slots

    def start(self, trial_id: str, resources: Any, spec: LaunchSpec, trainable_ref: Any, checkpoint: Any) -> None:
        super().start(trial_id, resources, spec, trainable_ref, checkpoint)
        self.max_running = max(self.max_running, self.running())

    def _new_worker(self) -> TrialWorker:
        self.workers_created += 1
        return super()._new_worker()


class SimulatedExecutor:
    """Trials as arithmetic, no threads, with the arrival order of batches drawn from ``rng``.

    Each running trial reports ``{"score": config["quality"] * iteration}`` with a checkpoint
    (written to storage) every ``checkpoint_every`` iterations, streams until its decision point, waits there for
    ``decide``, and ends after ``length`` iterations. ``wait`` hands over one batch of a
    trial picked at random, so a paused trial's final batch can arrive after other trials'
    results: the orders a real cluster produces, reproducibly.
    """

    def __init__(self, rng: Any, slots: int = 3, length: int = 30, checkpoint_every: int = 1) -> None:
        self.rng = rng
        self.slots = slots
        self.length = length
        self.checkpoint_every = checkpoint_every
        self._live: dict[str, dict[str, Any]] = {}
        self._ready: set[str] = set()

    def check_feasible(self, resources: Any) -> None:
        pass

    def has_resources_for(self, resources: Any) -> bool:
        return len(self._live) < self.slots

    def cluster_resources(self) -> dict[str, float]:
        return {"CPU": float(self.slots)}

    def resources_in_use(self) -> dict[str, float]:
        return {"CPU": float(len(self._live))}

    def running(self) -> int:
        return len(self._live)

    def start(self, trial_id: str, resources: Any, spec: LaunchSpec, trainable_ref: Any, checkpoint: Any) -> None:
        from tuner.storage import checkpoint as ckpt_lib

        restored = ckpt_lib.load(checkpoint)["iteration"] if checkpoint is not None else 0
        if restored != spec.start_iteration:
            raise AssertionError(f"{trial_id} restarts from {restored} but the run loop says {spec.start_iteration}")
        self._live[trial_id] = {"spec": spec, "iteration": restored, "next_point": spec.next_point,
                                "ending": False}
        self._ready.add(trial_id)

    def poll(self, trial_id: str) -> None:
        self._ready.add(trial_id)

    def decide(self, trial_id: str, command: Command, next_point: float | None, payload: Any = None) -> None:
        live = self._live[trial_id]
        live["next_point"] = next_point
        live["ending"] = Command(command).ends_trial
        self._ready.add(trial_id)

    def request_stop(self, trial_id: str) -> None:
        if trial_id in self._live:
            self._live[trial_id]["ending"] = True

    abort = request_stop

    def release(self, trial_id: str, healthy: bool = True) -> None:
        self._live.pop(trial_id, None)
        self._ready.discard(trial_id)

    def shutdown(self) -> None:
        self._live.clear()

    def wait(self, timeout: float) -> list[tuple[str, Batch]]:
        if not self._ready:
            return []
        trial_id = self.rng.choice(sorted(self._ready))
        self._ready.discard(trial_id)
        return [(trial_id, self._step(trial_id))]

    def _step(self, trial_id: str) -> Batch:
        from tuner.storage import checkpoint as ckpt_lib

        live = self._live[trial_id]
        if live["ending"]:
            return Batch([], SessionState.DONE)
        spec, results = live["spec"], []
        for _ in range(self.rng.randint(1, 4)):
            live["iteration"] += 1
            it = live["iteration"]
            result = {"score": spec.config["quality"] * it, "training_iteration": it, "trial_id": trial_id}
            saved = None
            if it % self.checkpoint_every == 0:  # written "by the worker", as a real one does
                saved = ckpt_lib.save({"iteration": it}, ckpt_lib.directory_for(spec.trial_dir, it))
            results.append((result, saved))
            point = live["next_point"]
            if it >= self.length:
                return Batch(results, SessionState.DONE)
            if point is None or it >= point:
                return Batch(results, SessionState.WAITING)
        return Batch(results, SessionState.RUNNING)
