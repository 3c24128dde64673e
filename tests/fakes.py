"""An in-process executor: the real TrialWorker in threads, no Ray.

It lets the run loop, schedulers and decision points be tested exactly and
fast, without a cluster (ARCHITECTURE: unit tests stay free of Ray).
"""

from __future__ import annotations

import concurrent.futures as cf
from typing import Any

from tuner.runtime.session import ERROR, Batch
from tuner.runtime.worker import TrialWorker


class InProcessExecutor:
    """Same public methods as RayExecutor; ``slots`` plays the cluster's CPUs."""

    def __init__(self, slots: int = 2) -> None:
        self.slots = slots
        self._pool = cf.ThreadPoolExecutor(max_workers=4 * slots + 4)
        self._busy: dict[str, TrialWorker] = {}
        self._idle: list[TrialWorker] = []
        self._pending: dict[cf.Future, str] = {}
        self.workers_created = 0
        self.max_running = 0

    def check_feasible(self, resources: Any) -> None:
        pass

    def cluster_resources(self) -> dict[str, float]:
        return {"CPU": float(self.slots)}

    def resources_in_use(self) -> dict[str, float]:
        return {"CPU": float(len(self._busy))}

    def has_resources_for(self, resources: Any) -> bool:
        return len(self._busy) < self.slots

    def start(self, trial_id, resources, spec, trainable_ref, checkpoint) -> None:
        if self._idle:
            worker = self._idle.pop()
        else:
            worker = TrialWorker(chdir=False)
            self.workers_created += 1
        self._busy[trial_id] = worker
        self.max_running = max(self.max_running, len(self._busy))
        self._submit(trial_id, worker.start, spec, trainable_ref, checkpoint)

    def poll(self, trial_id: str) -> None:
        self._submit(trial_id, self._busy[trial_id].poll)

    def decide(self, trial_id: str, command: str, next_point, payload=None) -> None:
        self._submit(trial_id, self._busy[trial_id].decide, command, next_point, payload)

    def request_stop(self, trial_id: str) -> None:
        if trial_id in self._busy:
            self._busy[trial_id].request_stop(trial_id)

    def abort(self, trial_id: str) -> None:
        self.request_stop(trial_id)

    def release(self, trial_id: str, healthy: bool = True) -> None:
        worker = self._busy.pop(trial_id, None)
        if worker is not None and healthy:
            self._idle.append(worker)

    def wait(self, timeout: float) -> list[tuple[str, Batch]]:
        if not self._pending:
            return []
        done, _ = cf.wait(list(self._pending), timeout=timeout, return_when=cf.FIRST_COMPLETED)
        out = []
        for fut in done:
            trial_id = self._pending.pop(fut)
            try:
                out.append((trial_id, fut.result()))
            except Exception as exc:  # noqa: BLE001
                out.append((trial_id, Batch([], ERROR, error=repr(exc))))
        return out

    def running(self) -> int:
        return len(self._busy)

    def shutdown(self) -> None:
        for trial_id, worker in self._busy.items():
            worker.request_stop(trial_id)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _submit(self, trial_id: str, fn, *args) -> None:
        self._pending[self._pool.submit(fn, *args)] = trial_id
