"""Runs trials on Ray: a pool of warm worker actors per resource shape.

Public methods keep the books (which trial holds which actor, what resources
are taken); the Ray calls sit in small private methods, so the run loop never
sees Ray and can be tested against a fake executor.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import time
from typing import Any

from tuner.execution.resources import Resources, check_feasible
from tuner.runtime.session import ERROR, Batch
from tuner.runtime.worker import TrialWorker

logger = logging.getLogger(__name__)
_EPS = 1e-9


@functools.lru_cache(maxsize=1)
def _actor_class() -> Any:
    """The Ray actor class, made once per process (each new one is exported to the cluster again)."""
    import ray

    return ray.remote(TrialWorker)


@dataclasses.dataclass
class _Worker:
    actor: Any
    resources: Resources
    placement_group: Any = None
    killed: bool = False


class RayExecutor:
    """Places trials on worker actors and collects their batches."""

    def __init__(self, address: str | None = None, reuse_workers: bool = True) -> None:
        import ray

        self._ray = ray
        if not ray.is_initialized():
            # No address anywhere: a fresh local Ray (not a stale one a killed driver left behind).
            address = address or os.environ.get("RAY_ADDRESS") or "local"
            ray.init(address=address, include_dashboard=False, log_to_driver=True, configure_logging=False)
        self._actor_cls = _actor_class()
        self.reuse_workers = reuse_workers
        self._idle: dict[Resources, list[_Worker]] = {}
        self._busy: dict[str, _Worker] = {}
        self._pending: dict[Any, str] = {}  # outstanding ObjectRef -> trial_id
        self._total = {k: float(v) for k, v in ray.cluster_resources().items()}
        self._nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
        self._held: dict[str, float] = {}

    # --- resources --------------------------------------------------------------------------
    def check_feasible(self, resources: Resources) -> None:
        check_feasible(resources, self._nodes)

    def cluster_resources(self) -> dict[str, float]:
        return dict(self._total)

    def resources_in_use(self) -> dict[str, float]:
        return {k: v for k, v in self._held.items() if v > _EPS}

    def has_resources_for(self, resources: Resources) -> bool:
        """True when a trial of this shape can start now (a warm idle worker, or free room)."""
        if self._idle.get(resources):
            return True
        return self._fits(resources) or self._fits_after_evicting(resources)

    def _fits(self, resources: Resources) -> bool:
        return all(self._held.get(k, 0.0) + v <= self._total.get(k, 0.0) + _EPS for k, v in resources.total().items())

    def _fits_after_evicting(self, resources: Resources) -> bool:
        idle = [w for workers in self._idle.values() for w in workers]
        freed: dict[str, float] = {}
        for worker in idle:
            for k, v in worker.resources.total().items():
                freed[k] = freed.get(k, 0.0) + v
        return all(self._held.get(k, 0.0) - freed.get(k, 0.0) + v <= self._total.get(k, 0.0) + _EPS
                   for k, v in resources.total().items())

    def _take(self, resources: Resources, sign: float) -> None:
        for k, v in resources.total().items():
            self._held[k] = self._held.get(k, 0.0) + sign * v

    # --- trials -----------------------------------------------------------------------------
    def start(self, trial_id: str, resources: Resources, spec: dict[str, Any], trainable_ref: Any,
              checkpoint: Any) -> None:
        """Start a trial on a warm worker of its shape (or a new one)."""
        if trial_id in self._busy:
            raise RuntimeError(f"Trial {trial_id} is already running.")
        worker = self._acquire(resources)
        self._busy[trial_id] = worker
        ref = worker.actor.start.remote(spec, trainable_ref, checkpoint)
        self._pending[ref] = trial_id

    def poll(self, trial_id: str) -> None:
        self._pending[self._busy[trial_id].actor.poll.remote()] = trial_id

    def decide(self, trial_id: str, command: str, next_point: float | None, payload: Any = None) -> None:
        self._pending[self._busy[trial_id].actor.decide.remote(command, next_point, payload)] = trial_id

    def request_stop(self, trial_id: str) -> None:
        worker = self._busy.get(trial_id)
        if worker is not None:
            worker.actor.request_stop.remote(trial_id)

    def abort(self, trial_id: str) -> None:
        """Kill the worker of a trial that does not stop when asked; its batch comes back as an error."""
        worker = self._busy.get(trial_id)
        if worker is not None:
            self._kill(worker)

    def release(self, trial_id: str, healthy: bool = True) -> None:
        """The trial is over on its worker: keep the worker warm, or drop it."""
        worker = self._busy.pop(trial_id, None)
        if worker is None:
            return
        if healthy and self.reuse_workers:
            self._idle.setdefault(worker.resources, []).append(worker)
        else:
            self._kill(worker)

    def wait(self, timeout: float) -> list[tuple[str, Batch]]:
        """Every batch that is ready, waiting up to ``timeout`` for the first."""
        if not self._pending:
            time.sleep(min(timeout, 0.05))
            return []
        refs = list(self._pending)
        ready, _ = self._ray.wait(refs, num_returns=1, timeout=timeout)
        if not ready:
            return []
        ready, _ = self._ray.wait(refs, num_returns=len(refs), timeout=0)
        out = []
        for ref in ready:
            trial_id = self._pending.pop(ref)
            try:
                batch = self._ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - a dead worker is the trial's error
                batch = Batch([], ERROR, error=f"The worker running trial {trial_id} died: {exc!r}")
                self.release(trial_id, healthy=False)
            out.append((trial_id, batch))
        return out

    def running(self) -> int:
        return len(self._busy)

    def shutdown(self) -> None:
        for worker in list(self._busy.values()) + [w for ws in self._idle.values() for w in ws]:
            self._kill(worker)
        self._busy.clear()
        self._idle.clear()
        self._pending.clear()

    # --- Ray specifics ------------------------------------------------------------------------
    def _acquire(self, resources: Resources) -> _Worker:
        idle = self._idle.get(resources)
        if idle:
            return idle.pop()
        if not self._fits(resources):
            self._evict_idle()
        self._take(resources, +1)
        return self._create(resources)

    def _evict_idle(self) -> None:
        for workers in self._idle.values():
            while workers:
                self._kill(workers.pop())

    def _create(self, resources: Resources) -> _Worker:
        head = resources.head
        custom = {k: v for k, v in head.items() if k not in ("CPU", "GPU", "memory")}
        options: dict[str, Any] = {
            "num_cpus": head.get("CPU", 0), "num_gpus": head.get("GPU", 0), "resources": custom,
            "max_concurrency": 3, "max_restarts": 0,
        }
        if head.get("memory"):
            options["memory"] = head["memory"]
        pg = None
        if resources.uses_placement_group:
            from ray.util.placement_group import placement_group
            from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

            pg = placement_group(resources.as_bundles(), strategy="PACK")
            options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
                pg, placement_group_bundle_index=0, placement_group_capture_child_tasks=False)
        return _Worker(self._actor_cls.options(**options).remote(), resources, pg)

    def _kill(self, worker: _Worker) -> None:
        if worker.killed:
            return
        worker.killed = True
        self._take(worker.resources, -1)
        try:
            self._ray.kill(worker.actor, no_restart=True)
            if worker.placement_group is not None:
                from ray.util.placement_group import remove_placement_group

                remove_placement_group(worker.placement_group)
        except Exception:  # noqa: BLE001 - already gone is fine
            logger.debug("worker already gone", exc_info=True)
