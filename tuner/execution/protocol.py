"""The executor seam: what the run loop asks of whatever runs its trials.

``RayExecutor`` implements it on Ray actors; the tests' ``InProcessExecutor``
(threads) and ``SimulatedExecutor`` (arithmetic) implement it without Ray, and
``tests/integration/test_executor_contract.py`` holds every implementation to the same
checks. The run loop sees nothing else of the executor.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from tuner.runtime.messages import Batch, Command, LaunchSpec


@runtime_checkable
class Executor(Protocol):
    """Places trials on workers, forwards commands, hands batches back.

    Calls about one trial are asynchronous: ``start``, ``poll`` and ``decide``
    each schedule exactly one batch, which ``wait`` later returns as
    ``(trial_id, batch)``. A batch whose state is WAITING must be answered with
    ``decide``; RUNNING with ``poll``; after DONE or ERROR the run loop calls
    ``release``.
    """

    def check_feasible(self, resources: Any) -> None:
        """Raise ValueError naming the request when no node can ever hold ``resources``."""

    def has_resources_for(self, resources: Any) -> bool:
        """Whether a trial of this shape can start now."""

    def cluster_resources(self) -> dict[str, float]:
        """Total resources by name (``{"CPU": 8.0, ...}``), for the progress table."""

    def resources_in_use(self) -> dict[str, float]:
        """Resources held by running (and warm) workers."""

    def running(self) -> int:
        """How many trials hold a worker."""

    def start(self, trial_id: str, resources: Any, spec: LaunchSpec, trainable_ref: Any,
              checkpoint: Any) -> None:
        """Start ``trial_id`` (from the packed ``checkpoint`` when given); one batch follows."""

    def poll(self, trial_id: str) -> None:
        """Ask for the results since the last batch; one batch follows."""

    def decide(self, trial_id: str, command: Command, next_point: float | None, payload: Any = None) -> None:
        """Answer a WAITING batch; one batch follows (the last one after PAUSE or STOP)."""

    def request_stop(self, trial_id: str) -> None:
        """Ask a running trial to end at its next report (its outstanding batch says DONE)."""

    def abort(self, trial_id: str) -> None:
        """End a trial that does not stop when asked; its batch comes back as ERROR."""

    def release(self, trial_id: str, healthy: bool = True) -> None:
        """The trial is over on its worker: keep the worker for the next trial, or drop it."""

    def wait(self, timeout: float) -> list[tuple[str, Batch]]:
        """Every batch that is ready, waiting up to ``timeout`` seconds for the first."""

    def shutdown(self) -> None:
        """End every worker."""
