"""Trials in threads of the driver's own process (``tune.run(..., in_process=True)``).

Why: a Ray worker is a new process, and before its first result it imports what the
trainable imports (torch and scikit-learn take 2-3 s on 2 CPUs). When one trial lasts
seconds, that start is most of the sweep, and Optuna, which runs trials in the driver,
has its first result in well under a second. Running in the driver also lets a debugger
stop in the trainable. What it gives up: isolation. A trial that crashes the interpreter
ends the sweep (which ``tune.resume`` continues), concurrent trials share the process's
global random state, working directory and output, and a trial cannot be killed, only
asked to stop at its next report.

Implements ``tuner.execution.protocol.Executor`` with the same ``TrialWorker`` as the
Ray actors; ``tests/integration/test_executor_contract.py`` holds both to one contract.
"""

from __future__ import annotations

import os
import queue
import threading
from typing import Any

from tuner.execution.resources import Resources
from tuner.runtime.messages import Batch, Command, LaunchSpec, SessionState
from tuner.runtime.worker import TrialWorker

_SHAREABLE = {"CPU", "memory"}  # what threads of one process can share out; a GPU or a custom resource cannot


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity, where the platform says)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


class ThreadExecutor:
    """Runs each trial in a thread of this process, as many at once as ``cpus`` holds."""

    def __init__(self, cpus: float | None = None) -> None:
        self.cpus = float(cpus if cpus is not None else available_cpus())
        self._busy: dict[str, tuple[TrialWorker, float]] = {}  # trial id -> (worker, CPUs it holds)
        self._idle: list[TrialWorker] = []
        self._done: queue.SimpleQueue = queue.SimpleQueue()  # (trial id, Batch) as calls return
        self._outstanding = 0
        self._aborted: set[str] = set()

    # --- resources: the CPUs of this machine, counted, nothing else --------------------------------

    def check_feasible(self, resources: Any) -> None:
        if not isinstance(resources, Resources):
            return
        if resources.uses_placement_group:
            raise ValueError(f"resources_per_trial {resources} asks for a placement group, for workers the trial "
                             "starts itself; in_process=True runs each trial in a thread of this process. "
                             "Use Ray workers (in_process=False) for such trials.")
        other = sorted(k for k, v in resources.head.items() if v > 0 and k not in _SHAREABLE)
        if other:
            raise ValueError(f"resources_per_trial {resources} asks for {', '.join(other)}; in_process=True runs "
                             "trials in threads of this process and cannot give each its own. Use Ray workers "
                             "(in_process=False), which place trials on GPUs and custom resources.")
        if _cpus(resources) > self.cpus:
            raise ValueError(f"resources_per_trial {resources} asks for more CPUs than this machine has "
                             f"({self.cpus:g}) for trials in threads (in_process=True). Ask for at most "
                             f"{self.cpus:g}, or run on a Ray cluster (in_process=False, address=...).")

    def cluster_resources(self) -> dict[str, float]:
        return {"CPU": self.cpus}

    def resources_in_use(self) -> dict[str, float]:
        return {"CPU": sum(cpus for _, cpus in self._busy.values())}

    def has_resources_for(self, resources: Any) -> bool:
        return self.resources_in_use()["CPU"] + _cpus(resources) <= self.cpus + 1e-9

    def running(self) -> int:
        return len(self._busy)

    # --- one trial's calls -------------------------------------------------------------------------

    def start(self, trial_id: str, resources: Any, spec: LaunchSpec, trainable_ref: Any, checkpoint: Any) -> None:
        worker = self._idle.pop() if self._idle else self._new_worker()
        self._busy[trial_id] = (worker, _cpus(resources))
        self._call(trial_id, worker.start, spec, trainable_ref, checkpoint)

    def poll(self, trial_id: str) -> None:
        self._call(trial_id, self._busy[trial_id][0].poll, trial_id)

    def decide(self, trial_id: str, command: Command, next_point: float | None, payload: Any = None) -> None:
        self._call(trial_id, self._busy[trial_id][0].decide, trial_id, command, next_point, payload)

    def request_stop(self, trial_id: str) -> None:
        if trial_id in self._busy:
            self._busy[trial_id][0].request_stop(trial_id)

    def abort(self, trial_id: str) -> None:
        """A thread cannot be killed: the trial is asked to stop, its next batch comes back as ERROR,
        and its worker is not used again (the thread may still be running the trainable)."""
        self.request_stop(trial_id)
        self._aborted.add(trial_id)

    def release(self, trial_id: str, healthy: bool = True) -> None:
        worker, _ = self._busy.pop(trial_id, (None, 0.0))
        if worker is not None and healthy and trial_id not in self._aborted:
            self._idle.append(worker)
        self._aborted.discard(trial_id)

    def wait(self, timeout: float) -> list[tuple[str, Batch]]:
        if not self._outstanding:
            return []
        try:
            out = [self._done.get(timeout=timeout)]
        except queue.Empty:
            return []
        while True:
            try:
                out.append(self._done.get_nowait())
            except queue.Empty:
                break
        self._outstanding -= len(out)
        return [(trial_id, self._aborted_batch(trial_id, batch)) for trial_id, batch in out]

    def shutdown(self) -> None:
        for trial_id, (worker, _) in self._busy.items():
            worker.request_stop(trial_id)

    # --- internals ---------------------------------------------------------------------------------

    def _new_worker(self) -> TrialWorker:
        return TrialWorker(chdir=False)  # one working directory for the whole process

    def _call(self, trial_id: str, fn, *args) -> None:
        """Run one worker call in a daemon thread (a trainable that never returns does not keep the
        interpreter from exiting); its batch is queued for ``wait``."""

        def call() -> None:
            try:
                batch = fn(*args)
            except Exception as exc:  # noqa: BLE001 - the run loop gets every failure as the trial's error
                batch = Batch([], SessionState.ERROR, error=repr(exc))
            self._done.put((trial_id, batch))

        self._outstanding += 1
        threading.Thread(target=call, daemon=True, name=f"tuner-call-{trial_id}").start()

    def _aborted_batch(self, trial_id: str, batch: Batch) -> Batch:
        """An aborted trial's next batch is its last (the run loop gives it the time budget's stop reason)."""
        if trial_id not in self._aborted or batch.state in (SessionState.DONE, SessionState.ERROR):
            return batch
        return Batch(batch.results, SessionState.ERROR, error="abandoned: a thread cannot be killed")


def _cpus(resources: Any) -> float:
    if isinstance(resources, Resources):
        return float(resources.head.get("CPU", 0.0))
    return 1.0
