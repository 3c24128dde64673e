"""Runs trials on Ray: a pool of warm worker actors per resource shape.

Public methods keep the books (which trial holds which actor, what resources
are taken); the Ray calls sit in small private methods, so the run loop never
sees Ray and can be tested against a fake executor.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import logging
import os
import re
import time
from typing import Any

from tuner.execution.resources import Resources, check_feasible
from tuner.runtime.messages import Batch, Command, LaunchSpec, SessionState, Shared, TrainableNotLoadedError
from tuner.runtime.worker import TrialWorker

logger = logging.getLogger(__name__)
_EPS = 1e-9
REFRESH_S = 10.0  # how often the cluster's nodes are re-read (nodes join, die, autoscale)
AUTOSCALING_ENV = "TUNER_AUTOSCALING"  # "1": requests no node holds yet wait for the autoscaler


class WorkerImportError(ImportError):
    """A worker could not load what a trial was sent (its trainable or config): a module it needs
    cannot be imported there. Every trial would fail alike, so the run ends at the first one."""


#: Ray's words when a task's arguments (the trial's spec and config) could not be unpickled in the worker.
_ARGS_NOT_LOADED = "input arguments for this task could not be computed"


def _import_failure(exc: BaseException) -> str | None:
    """The import error that kept a worker from loading a trial's trainable or config, or None."""
    if not isinstance(exc, TrainableNotLoadedError) and _ARGS_NOT_LOADED not in str(exc):
        return None
    failure = TrainableNotLoadedError.found_in(exc)
    return str(failure.args[0]) if failure is not None and failure.args else None


def not_loadable_message(trial_id: str, failure: str) -> str:
    return (f"Trial {trial_id} could not start: its worker could not load the trainable or the config it was "
            f"sent ({failure}). Workers import the modules these come from by name, so every trial would fail "
            f"the same way; no more trials were started. Make the module importable in the workers: install "
            f"its package (`pip install -e .`), start Ray from the directory that holds it, ship it with "
            f"ray.init(runtime_env={{'working_dir': ...}}) or ray.cloudpickle.register_pickle_by_value(module); "
            f"then tune.resume(...) the experiment.")


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
    where: Any = None  # ObjectRef of the worker's ping(): its node, once it has started


class RayExecutor:
    """Places trials on worker actors and collects their batches."""

    def __init__(self, address: str | None = None, reuse_workers: bool = True,
                 runtime_env: dict[str, Any] | None = None, env_vars: dict[str, str] | None = None) -> None:
        """``env_vars``: given to every worker and never recorded (the storage's endpoint and credentials,
        for workers of a Ray that did not inherit them from this process)."""
        import ray

        self._ray = ray
        self._runtime_env = None
        own_local_ray = False  # a Ray this process starts: its workers inherit this process's environment
        if not ray.is_initialized():
            # No address anywhere: a fresh local Ray (not a stale one a killed driver left behind).
            address = address or os.environ.get("RAY_ADDRESS") or "local"
            own_local_ray = address == "local"
            ray.init(address=address, include_dashboard=False, log_to_driver=True, configure_logging=False,
                     runtime_env=copy.deepcopy(runtime_env))  # Ray rewrites it in place
        elif runtime_env:
            self._runtime_env = copy.deepcopy(runtime_env)  # Ray was started elsewhere: ship per worker
        if env_vars and not own_local_ray:
            env = copy.deepcopy(self._runtime_env or {})
            env["env_vars"] = {**env_vars, **env.get("env_vars", {})}
            self._runtime_env = env
        self._actor_cls = _actor_class()
        self.reuse_workers = reuse_workers
        self._idle: dict[Resources, list[_Worker]] = {}
        self._busy: dict[str, _Worker] = {}
        self._pending: dict[Any, str] = {}  # outstanding ObjectRef -> trial_id
        self._held: dict[str, float] = {}
        self._wanted: dict[Resources, None] = {}  # shapes that did not fit at the last look
        self._refreshed = 0.0
        self._refresh()

    # --- resources --------------------------------------------------------------------------
    def _refresh(self) -> None:
        """Re-read the live nodes: a lost node's resources stop counting, a new node's start to.

        Shapes that did not fit since the last look are handed to Ray's autoscaler as a
        standing request (with the running trials' shapes), so pending trials drive scale-up.
        """
        nodes = [n for n in self._ray.nodes() if n.get("Alive")]
        self._alive = {n["NodeID"] for n in nodes}
        self._nodes = [n["Resources"] for n in nodes]
        self._total = {}
        for node in self._nodes:
            for k, v in node.items():
                self._total[k] = self._total.get(k, 0.0) + float(v)
        if self._wanted:
            self._request_capacity()
        self._refreshed = time.monotonic()

    def _request_capacity(self) -> None:
        from ray.autoscaler.sdk import request_resources

        busy = [w.resources for w in self._busy.values()]
        bundles = [b for shape in busy + list(self._wanted) for b in shape.as_bundles()]
        try:
            request_resources(bundles=bundles)
        except Exception:  # noqa: BLE001 - a cluster without an autoscaler simply ignores it
            logger.debug("request_resources failed", exc_info=True)
        self._wanted.clear()

    def check_feasible(self, resources: Resources) -> None:
        try:
            check_feasible(resources, self._nodes)
        except ValueError:
            if os.environ.get(AUTOSCALING_ENV) != "1":
                raise
            logger.warning("No node can hold %s yet; waiting for the autoscaler (%s=1).", resources, AUTOSCALING_ENV)
            self._wanted[resources] = None
            self._request_capacity()

    def cluster_resources(self) -> dict[str, float]:
        return dict(self._total)

    def resources_in_use(self) -> dict[str, float]:
        return {k: v for k, v in self._held.items() if v > _EPS}

    def has_resources_for(self, resources: Resources) -> bool:
        """True when a trial of this shape can start now (a warm idle worker, or free room)."""
        if self._idle.get(resources):
            return True
        if self._fits(resources) or self._fits_after_evicting(resources):
            return True
        self._wanted[resources] = None
        return False

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
    def start(self, trial_id: str, resources: Resources, spec: LaunchSpec, trainable_ref: Any,
              checkpoint: Any) -> None:
        """Start a trial on a warm worker of its shape (or a new one)."""
        if trial_id in self._busy:
            raise RuntimeError(f"Trial {trial_id} is already running.")
        worker = self._acquire(resources)
        self._busy[trial_id] = worker
        # By reference: a warm worker fetches the trainable at its first trial of the run only.
        shared = Shared(trainable_ref) if isinstance(trainable_ref, self._ray.ObjectRef) else trainable_ref
        ref = worker.actor.start.remote(spec, shared, checkpoint)
        self._pending[ref] = trial_id

    def poll(self, trial_id: str) -> None:
        self._pending[self._busy[trial_id].actor.poll.remote()] = trial_id

    def decide(self, trial_id: str, command: Command, next_point: float | None, payload: Any = None) -> None:
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
        # A gang's worker is not kept: its placement group would stay reserved for nobody.
        if healthy and self.reuse_workers and not worker.resources.uses_placement_group:
            self._idle.setdefault(worker.resources, []).append(worker)
        else:
            self._kill(worker)

    def wait(self, timeout: float) -> list[tuple[str, Batch]]:
        """Every batch that is ready, waiting up to ``timeout`` for the first."""
        if time.monotonic() - self._refreshed > REFRESH_S:
            self._refresh()
        if not self._pending:
            time.sleep(min(timeout, 0.05))
            return []
        refs = list(self._pending)
        # Whatever is ready now, in one call: when the run loop is the busy side (many short
        # trials) something usually is. Only otherwise block until the first one comes.
        ready, _ = self._ray.wait(refs, num_returns=len(refs), timeout=0)
        if not ready:
            ready, _ = self._ray.wait(refs, num_returns=1, timeout=timeout)
            if not ready:
                return []
        try:
            batches = self._ray.get(ready)  # one call for all: the common case, every worker alive
        except Exception:  # noqa: BLE001 - one of them died: fetched one by one below
            batches = None
        out = []
        for i, ref in enumerate(ready):
            trial_id = self._pending.pop(ref)
            if batches is not None:
                out.append((trial_id, batches[i]))
                continue
            try:
                batch = self._ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - a dead worker is the trial's error
                failure = _import_failure(exc)
                if failure is not None:
                    raise WorkerImportError(not_loadable_message(trial_id, failure)) from None
                batch = Batch([], SessionState.ERROR, error=self._death_cause(trial_id, exc))
                self.release(trial_id, healthy=False)
            out.append((trial_id, batch))
        return out

    def _death_cause(self, trial_id: str, exc: BaseException) -> str:
        """Why a trial's worker is gone: a lost node is named as such (not the user's code); else how the
        process ended (``tuner.runtime.exit_note``: its exit code, a fatal signal, an out-of-memory kill)."""
        worker = self._busy.get(trial_id)
        where: dict[str, Any] = {}
        if worker is not None and worker.where is not None:
            try:
                where = self._ray.get(worker.where, timeout=1.0) or {}
            except Exception:  # noqa: BLE001 - the worker died before it answered
                where = {}
        node, pid = where.get("node_id"), where.get("pid")
        if node is not None:
            self._refresh()
            if node not in self._alive:
                return (f"The worker running trial {trial_id} was lost with its node {node} (the node died or "
                        f"was removed); the trial restarts from its latest checkpoint if max_failures allows. "
                        f"Ray said: {exc!r}")
        said = " ".join(str(exc).split())
        ip = re.search(r"\bip: ([^\s,)]+)", str(exc), re.IGNORECASE)  # "ip: x" (connection), "IP: x," (memory)
        return (f"The worker running trial {trial_id} (PID {pid or '?'} on node "
                f"{ip.group(1) if ip else '?'} {node or ''}) died: {self._how_it_ended(pid, node, exc)}. "
                f"Ray said: {type(exc).__name__}: {said[:600]}")

    def _discard_exit_note(self, worker: _Worker) -> None:
        """A worker the driver ends itself leaves its (empty) exit note behind: remove it (on this node)."""
        from tuner.runtime import exit_note

        try:
            if worker.where is None or not self._ray.wait([worker.where], timeout=0)[0]:
                return
            where = self._ray.get(worker.where) or {}
            if where.get("pid") and where.get("node_id") == self._ray.get_runtime_context().get_node_id():
                exit_note.discard(where["pid"])
        except Exception:  # noqa: BLE001 - a dead worker's ping may raise: nothing to tidy then
            return

    def _how_it_ended(self, pid: int | None, node: str | None, exc: BaseException) -> str:
        from tuner.runtime import exit_note

        if "OutOfMemoryError" in type(exc).__name__ or "memory monitor" in str(exc).lower():
            return "Ray's memory monitor killed it: its node ran out of memory"
        here = node is not None and node == self._ray.get_runtime_context().get_node_id()
        if not (here and pid):
            return ("it ended without a word (on another node its own note cannot be read here: see that "
                    "node's logs)")
        noted = exit_note.read(pid)
        if noted:
            return noted
        oom = exit_note.kernel_oom_kill(pid)
        if oom:
            return f"the kernel's OOM killer killed it (out of memory): {oom}"
        return ("it was killed by a signal it could not note: SIGKILL (`kill -9`, the kernel's OOM killer "
                "where dmesg cannot be read, or `ray stop --force`)")

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
        if self._runtime_env:
            options["runtime_env"] = self._runtime_env
        pg = None
        if resources.uses_placement_group:
            from ray.util.placement_group import placement_group
            from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

            # Reserved atomically by Ray; tasks and actors the trainable starts land in it by default.
            pg = placement_group(resources.as_bundles(), strategy=resources.placement_strategy)
            options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
                pg, placement_group_bundle_index=0, placement_group_capture_child_tasks=True)
        actor = self._actor_cls.options(**options).remote()
        return _Worker(actor, resources, pg, where=actor.ping.remote())

    def _kill(self, worker: _Worker) -> None:
        if worker.killed:
            return
        worker.killed = True
        self._take(worker.resources, -1)
        self._discard_exit_note(worker)
        try:
            self._ray.kill(worker.actor, no_restart=True)
            if worker.placement_group is not None:
                from ray.util.placement_group import remove_placement_group

                remove_placement_group(worker.placement_group)
        except Exception:  # noqa: BLE001 - already gone is fine
            logger.debug("worker already gone", exc_info=True)
