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
from tuner.execution.start_ahead import StartAhead
from tuner.runtime.messages import Batch, Command, LaunchSpec, SessionState, Shared, TrainableNotLoadedError
from tuner.runtime.worker import TrialWorker

logger = logging.getLogger(__name__)
_AHEAD_CALLS = 2  # start_after calls waiting in one worker at most (each holds one of its threads)
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
class _Died:
    """A reply that never came: the worker died (``exc`` says how)."""

    exc: BaseException


@dataclasses.dataclass
class _Worker:
    actor: Any
    resources: Resources
    placement_group: Any = None
    killed: bool = False
    where: Any = None  # ObjectRef of the worker's ping(): its node, once it has started
    trials: list[str] = dataclasses.field(default_factory=list)  # the running trial, then those sent ahead
    outbox: list[tuple[str, Any]] = dataclasses.field(default_factory=list)  # ahead, not sent yet: (id, item)
    head_since: float = 0.0  # when the running trial got the worker
    died_holding: int = 0  # how many trials it held when its death was seen (0: alive)
    sent: int = 0  # trials sent to it so far (the worker begins them in this order)
    ahead_calls: int = 0  # its start_after calls not answered yet
    holds: bytes = b""  # the key of the kept trainable sent to it (``Shared``): it fetches what it is sent


class RayExecutor:
    """Places trials on worker actors and collects their batches.

    With ``start_ahead`` (the run loop sets it when the searcher's suggestions do not depend on
    results), very short trials are also sent ahead to busy workers (``tuner.execution.start_ahead``).
    """

    def __init__(self, address: str | None = None, reuse_workers: bool = True,
                 runtime_env: dict[str, Any] | None = None, env_vars: dict[str, str] | None = None,
                 start_ahead: bool = False) -> None:
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
        self.ahead = StartAhead(start_ahead and reuse_workers)
        self._outboxes: dict[int, _Worker] = {}  # workers with trials to send ahead
        self._ahead_calls: dict[Any, _Worker] = {}  # outstanding start_after call -> its worker
        self._given_back: list[tuple[str, Batch]] = []  # never sent ahead after all: for the next wait()
        self._idle: dict[Resources, list[_Worker]] = {}
        self._busy: dict[str, _Worker] = {}
        self._pending: dict[Any, str | tuple[str, ...]] = {}  # outstanding ObjectRef -> trial_id(s)
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

        busy = [w.resources for w in {id(w): w for w in self._busy.values()}.values()]
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
        if self._ahead_slot(resources) is not None:
            return True
        self._wanted[resources] = None
        return False

    def _ahead_slot(self, resources: Resources) -> _Worker | None:
        """A busy worker of this shape that can take one more trial ahead (short trials only)."""
        depth = 0 if resources.uses_placement_group else self.ahead.depth(resources)  # a gang's worker is not kept
        if depth:
            for worker in self._busy.values():
                if len(worker.trials) <= depth and worker.resources == resources and not worker.killed:
                    return worker
        return None

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
        self.ahead.note_points(resources, spec.next_point)
        ahead = None
        if not self._idle.get(resources) and not self._fits(resources) and not self._fits_after_evicting(resources):
            ahead = self._ahead_slot(resources)
        if ahead is not None:  # sent with the others for this worker at the next wait()
            ahead.outbox.append((trial_id, (spec, trainable_ref, checkpoint)))
            ahead.trials.append(trial_id)
            self._outboxes[id(ahead)] = ahead
            self._busy[trial_id] = ahead
            return
        worker = self._acquire(resources)
        worker.trials, worker.head_since = [trial_id], time.monotonic()
        self._busy[trial_id] = worker
        worker.sent += 1
        ref = worker.actor.start.remote(spec, self._trainable_for(worker, trainable_ref), checkpoint, worker.sent)
        self._pending[ref] = trial_id

    def _send_ahead(self) -> None:
        """Each worker's trials waiting to go ahead, in one call (they begin after those sent before).
        At most ``_AHEAD_CALLS`` such calls wait in a worker at once: each holds one of its threads."""
        for key, worker in list(self._outboxes.items()):
            if worker.killed or not worker.outbox:
                del self._outboxes[key]
                continue
            if worker.ahead_calls >= _AHEAD_CALLS:
                continue  # sent when one of its calls comes back
            after = worker.sent  # the number of the last trial sent to it
            items = []
            for _, (spec, ref, ckpt) in worker.outbox:
                worker.sent += 1
                items.append((worker.sent, spec, self._trainable_for(worker, ref), ckpt))
            ref = worker.actor.start_after.remote(after, items)
            self._pending[ref] = tuple(t for t, _ in worker.outbox)
            self._ahead_calls[ref] = worker
            worker.ahead_calls += 1
            worker.outbox = []
            del self._outboxes[key]

    def _give_back(self, trial_id: str) -> None:
        """A trial waiting to be sent ahead that will not be: it comes back at the next wait() as never begun."""
        self._given_back.append((trial_id, Batch([], SessionState.DONE, started=False)))

    @staticmethod
    def _trainable_for(worker: _Worker, trainable: Any) -> Any:
        """By reference (``Shared``): a warm worker fetches the trainable at its first trial of the run
        (every call that carries the reference fetches it before anything else); once it has one it
        keeps, the key alone goes."""
        if isinstance(trainable, Shared) and trainable.kept:
            if worker.holds == trainable.key:
                return trainable.without_ref()
            worker.holds = trainable.key
        return trainable

    def poll(self, trial_id: str) -> None:
        self._pending[self._busy[trial_id].actor.poll.remote(trial_id)] = trial_id

    def decide(self, trial_id: str, command: Command, next_point: float | None, payload: Any = None) -> None:
        self._pending[self._busy[trial_id].actor.decide.remote(trial_id, command, next_point, payload)] = trial_id

    def request_stop(self, trial_id: str) -> None:
        worker = self._busy.get(trial_id)
        if worker is None:
            return
        unsent = [t for t, _ in worker.outbox]
        if trial_id in unsent:  # not sent yet: then never
            del worker.outbox[unsent.index(trial_id)]
            self._give_back(trial_id)
        else:
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
        was_head = bool(worker.trials) and worker.trials[0] == trial_id
        if trial_id in worker.trials:
            worker.trials.remove(trial_id)
        if was_head:
            now = time.monotonic()
            self.ahead.note_length(worker.resources, now - worker.head_since)
            worker.head_since = now
        if worker.trials:  # the trials sent ahead to this worker go on (or die with it)
            if not healthy:
                self._kill(worker)
            return
        # A gang's worker is not kept: its placement group would stay reserved for nobody.
        if healthy and not worker.killed and self.reuse_workers and not worker.resources.uses_placement_group:
            self._idle.setdefault(worker.resources, []).append(worker)
        else:
            self._kill(worker)

    def wait(self, timeout: float) -> list[tuple[str, Batch]]:
        """Every batch that is ready, waiting up to ``timeout`` for the first."""
        if time.monotonic() - self._refreshed > REFRESH_S:
            self._refresh()
        self._send_ahead()
        out, self._given_back = self._given_back, []
        if not self._pending:
            if not out:
                time.sleep(min(timeout, 0.05))
            return out
        refs = list(self._pending)
        # Whatever is ready now, in one call: when the run loop is the busy side (many short
        # trials) something usually is. Only otherwise block until the first one comes.
        ready, _ = self._ray.wait(refs, num_returns=len(refs), timeout=0)
        if not ready and not out:
            ready, _ = self._ray.wait(refs, num_returns=1, timeout=timeout)
        if not ready:
            return out
        try:
            replies = self._ray.get(ready)  # one call for all: the common case, every worker alive
        except Exception:  # noqa: BLE001 - one of them died: fetched one by one below
            replies = [self._reply_or_death(ref) for ref in ready]
        for ref, reply in zip(ready, replies):
            ids = self._pending.pop(ref)
            called = self._ahead_calls.pop(ref, None)
            if called is not None:
                called.ahead_calls -= 1
                if called.outbox:
                    self._outboxes[id(called)] = called
            ahead = isinstance(ids, tuple)  # a start_after call: one batch per trial sent ahead
            ids = ids if ahead else (ids,)
            if isinstance(reply, _Died):
                out += [(trial_id, self._lost(trial_id, reply)) for trial_id in ids]
                continue
            out += zip(ids, reply if ahead else [reply])
        return out

    def _reply_or_death(self, ref: Any) -> Any:
        try:
            return self._ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - a dead worker is the trial's error
            ids = self._pending[ref]
            failure = _import_failure(exc)
            if failure is not None:
                raise WorkerImportError(not_loadable_message(ids if isinstance(ids, str) else ids[0],
                                                             failure)) from None
            for trial_id in (ids,) if isinstance(ids, str) else ids:
                worker = self._busy.get(trial_id)
                if worker is not None and not worker.died_holding:
                    worker.died_holding = len(worker.trials)
            return _Died(exc)

    def _lost(self, trial_id: str, died: _Died) -> Batch:
        """The batch of a trial whose worker died: its error; or, where the worker held trials sent
        ahead, ``started=False`` once for each of them (``StartAhead.give_back``): which one killed it,
        and which ones ran to the end in a call whose reply died with it, cannot be told apart."""
        worker = self._busy.get(trial_id)
        if worker is not None and worker.died_holding > 1:
            self.ahead.worker_died(worker.resources)
            if self.ahead.give_back(trial_id):
                self.release(trial_id, healthy=False)
                return Batch([], SessionState.DONE, started=False)
        batch = Batch([], SessionState.ERROR, error=self._death_cause(trial_id, died.exc))
        self.release(trial_id, healthy=False)
        return batch

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
            "max_concurrency": _AHEAD_CALLS + 3, "max_restarts": 0,
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
        for trial_id, _ in worker.outbox:  # never sent: never begun
            self._give_back(trial_id)
        worker.outbox = []
        self._take(worker.resources, -1)
        self._discard_exit_note(worker)
        try:
            self._ray.kill(worker.actor, no_restart=True)
            if worker.placement_group is not None:
                from ray.util.placement_group import remove_placement_group

                remove_placement_group(worker.placement_group)
        except Exception:  # noqa: BLE001 - already gone is fine
            logger.debug("worker already gone", exc_info=True)
