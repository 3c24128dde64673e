"""The worker actor: runs one trial at a time in a thread and streams its results.

The executor creates one per resource shape and reuses it across trials. Every
trial gets a fresh trainable object, a fresh trial directory and a fresh seed;
nothing of the previous trial is kept but the warm process.

Start-ahead (``tuner.execution.start_ahead``): while one trial runs, the executor
may already send the next few in one call (``start_after``), so that a worker
running very short trials goes from one to the next without waiting for a round
trip to the driver. Calls about a trial name it: several can be here at once.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import threading
import time
import traceback
from typing import Any

from tuner.runtime import session as session_lib
from tuner.runtime import trial_files
from tuner.runtime import trainable as trainable_lib
from tuner.runtime.messages import (Batch, Command, LaunchSpec, SessionState, Shared, TrainableNotLoadedError,
                                    kept_by_workers)
from tuner.storage import checkpoint as ckpt_lib
POLL_TIMEOUT_S = 10.0
#: How often a trial sent ahead checks for a stop request while the one before it still runs.
_AHEAD_CHECK_S = 0.05
#: How long a trial sent ahead may run past its first batch before the rest of its call waits for another turn.
_AHEAD_PATIENCE_S = 0.05


def seed_everything(seed: int | None) -> None:
    """Give the trial its own seed in every RNG it is likely to use."""
    if seed is None:
        return
    random.seed(seed)
    # Only libraries the trainable already imported (its module's imports run when the
    # trainable is unpickled, before this): importing numpy here would slow every worker's start.
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed(seed % 2**32)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def release_accelerator_memory() -> None:
    """Free the CUDA memory a finished trial's tensors held, so the next trial on this warm
    worker starts with the whole (share of the) GPU. Only when the trial used CUDA."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return
    import gc

    gc.collect()
    torch.cuda.empty_cache()


def _sync_quietly(files: trial_files.TrialFiles) -> None:
    """The trial's last working files to storage; a failure here must not hide the trial's own end."""
    try:
        files.sync()
    except Exception:  # noqa: BLE001
        traceback.print_exc()


@contextlib.contextmanager
def _nothing():
    yield


def _ray_placement() -> dict[str, Any]:
    """Where Ray put this worker: GPU ids, node, placement group (empty outside Ray)."""
    try:
        import ray

        if not ray.is_initialized():
            return {}
        return {"gpu_ids": [str(g) for g in ray.get_gpu_ids()],
                "node_id": ray.get_runtime_context().get_node_id(),
                "placement_group": ray.util.get_current_placement_group()}
    except Exception:  # noqa: BLE001 - outside a Ray worker there is simply no placement
        return {}


def _in_ray_actor() -> bool:
    """This process is a Ray actor's (a driver that runs trials in-process, as tests do, is not)."""
    try:
        import ray

        return ray.is_initialized() and ray.get_runtime_context().get_actor_id() is not None
    except Exception:  # noqa: BLE001
        return False


class TrialWorker:
    """One process that runs trials, one at a time (a Ray actor, made by the executor)."""

    def __init__(self, chdir: bool = True) -> None:
        # Where Ray put an actor does not change for its life: asked once (three calls into Ray otherwise).
        self._placement: dict[str, Any] | None = None
        if _in_ray_actor():  # a worker process of its own (not an in-process worker): note its end
            from tuner.runtime import exit_note

            exit_note.install()
            self._placement = _ray_placement()
        # The trials here whose last batch has not been collected: (session, thread), by trial id.
        self._trials: dict[str, tuple[session_lib.Session, threading.Thread | None]] = {}
        self._thread: threading.Thread | None = None  # the latest trial's
        self._begun = threading.Condition()  # notified when a trial's thread is set up (start_after waits on it)
        self._settled_upto = -1  # the trials sent here up to this number have begun or been passed over
        self._home = os.getcwd()
        self._chdir = chdir
        self._stopped_early: set[str] = set()  # stop requests that overtook their start call
        self._shared: tuple[bytes, Any] | None = None  # (object id, object): this run's trainable

    def _resolve(self, trainable: Any) -> Any:
        """The trainable itself: fetched from Ray's store at the first trial of a run, then kept when
        it is a function or a class (``Shared``); any other callable object is fetched for each trial."""
        if not isinstance(trainable, Shared):
            return trainable
        if self._shared is not None and self._shared[0] == trainable.key:
            return self._shared[1]
        if trainable.ref is None:
            raise RuntimeError("The executor sent the trainable's key alone before its reference.")
        import ray

        try:
            obj = ray.get(trainable.ref)
        except Exception as exc:  # noqa: BLE001 - an import failure is told apart for the driver
            failure = TrainableNotLoadedError.found_in(exc)
            if failure is None:
                raise
            raise failure from None
        if kept_by_workers(obj):
            self._shared = (trainable.key, obj)
        return obj

    def _where(self) -> dict[str, Any]:
        return self._placement if self._placement is not None else _ray_placement()

    def ping(self) -> dict[str, Any]:
        return {**self._where(), "pid": os.getpid()}

    def start(self, spec: LaunchSpec, trainable: Any, checkpoint: str | None, seq: int | None = None) -> Batch:
        """Begin a trial in a new thread and return its first batch; ``checkpoint`` is the path in
        storage to restore from (read here, in the worker), or None. ``seq``: the number of this
        trial among those sent to this worker (``start_after`` counts on it)."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("TrialWorker.start called while a trial is still running in this worker "
                               "(start_after is the call for a trial sent ahead).")
        try:
            return self._begin(spec, trainable, checkpoint)
        finally:
            self._settle(seq)  # whatever became of it, a trial sent after it may go on

    def _begin(self, spec: LaunchSpec, trainable: Any, checkpoint: str | None) -> Batch:
        trainable = self._resolve(trainable)
        release_accelerator_memory()  # the previous trial's thread has ended: its tensors are garbage
        files, restored, error = None, None, None
        try:
            files = trial_files.TrialFiles(spec)
            restored = files.load(checkpoint) if checkpoint is not None else None
        except Exception:  # noqa: BLE001 - the trial's error goes to the driver whole
            error = traceback.format_exc()
        context = session_lib.TrialContext(
            trial_id=spec.trial_id, trial_dir=files.work_dir if files else "", experiment_path=spec.experiment_path,
            seed=spec.seed, resources=spec.resources, bundles=spec.bundles or [spec.resources],
            placement_strategy=spec.placement_strategy, **self._where(),
        )
        session = session_lib.Session(
            trial_id=spec.trial_id, context=context, checkpoint=restored, time_attr=spec.time_attr,
            next_point=spec.next_point, stopper=spec.stopper,
            start_iteration=spec.start_iteration, time_offset=spec.time_offset,
            persist=files.save if files else None, restore=files.load if files else None,
        )
        if error is not None:  # a storage it cannot reach, a checkpoint it cannot read: the trial fails
            session.finish(error=error)
            return session.collect(0, None)
        if spec.trial_id in self._stopped_early:
            self._stopped_early.discard(spec.trial_id)
            session.request_stop()
        thread = threading.Thread(
            target=self._run, args=(session, trainable, dict(spec.config), spec, files), daemon=True,
            name=f"trial-{spec.trial_id}",
        )
        self._trials[spec.trial_id] = (session, thread)
        self._thread = thread
        thread.start()
        return self._collect(spec.trial_id, POLL_TIMEOUT_S)

    def start_after(self, after: int, items: list[tuple[int, LaunchSpec, Any, str | None]]) -> list[Batch]:
        """Run trials sent ahead (``tuner.execution.start_ahead``), one after the other, once the trial
        sent to this worker as number ``after`` has begun or been passed over (calls to a threaded actor
        can run out of order) and the trial running here has ended. ``items``: ``(seq, *start's
        arguments)``. One batch per trial: a trial asked to stop before it began, or behind one that
        goes on past its first report, never begins (``started=False``: the driver makes it pending)."""
        for _, _, trainable, _ in items:  # a reference is fetched first: what is sent later carries the key alone
            if isinstance(trainable, Shared) and trainable.ref is not None:
                self._resolve(trainable)
        out: list[Batch] = []
        going_on = False  # a trial of this call goes on past its first batch: the rest wait for a later call
        for seq, spec, trainable, checkpoint in items:
            if going_on:
                out.append(self._never_begins(seq))
                continue
            self._wait_for_turn(after, spec.trial_id)
            after = seq
            if spec.trial_id in self._stopped_early:
                self._stopped_early.discard(spec.trial_id)
                out.append(self._never_begins(seq))
                continue
            batch = self.start(spec, trainable, checkpoint, seq)
            deadline = time.monotonic() + _AHEAD_PATIENCE_S
            while batch.state is SessionState.RUNNING and time.monotonic() < deadline:
                batch = batch.then(self._collect(spec.trial_id, deadline - time.monotonic()))
            going_on = batch.state in (SessionState.RUNNING, SessionState.WAITING)
            out.append(batch)
        return out

    def _wait_for_turn(self, after: int, trial_id: str) -> None:
        with self._begun:
            self._begun.wait_for(lambda: self._settled_upto >= after or trial_id in self._stopped_early)
        running = self._thread
        while running is not None and running.is_alive() and trial_id not in self._stopped_early:
            running.join(_AHEAD_CHECK_S)

    def _never_begins(self, seq: int) -> Batch:
        self._settle(seq)
        return Batch([], SessionState.DONE, started=False)

    def _settle(self, seq: int | None) -> None:
        """Trial number ``seq`` sent here has begun or been passed over: the next one may go."""
        if seq is None:
            return
        with self._begun:
            self._settled_upto = max(self._settled_upto, seq)
            self._begun.notify_all()

    def _run(self, session: session_lib.Session, trainable: Any, config: dict, spec: LaunchSpec,
             files: trial_files.TrialFiles) -> None:
        final = None
        session_lib.set_current(session)
        seed_everything(spec.seed)
        if self._chdir:
            os.chdir(files.work_dir)
        try:
            with files.capture_output(echo=spec.echo_output) if self._chdir else _nothing():
                if trainable_lib.is_class_trainable(trainable):
                    final = trainable_lib.run_class(trainable, config, session, spec.checkpoint_freq,
                                                    spec.checkpoint_at_end)
                else:
                    trainable_lib.run_function(trainable, config, session)
        except session_lib.StopTrial:
            pass
        except BaseException:  # noqa: BLE001 - the trial's error goes to the driver whole
            _sync_quietly(files)
            session.finish(error=traceback.format_exc())
            return
        finally:
            if self._chdir:
                os.chdir(self._home)
            ckpt_lib.discard(session.checkpoint)  # a restored checkpoint downloaded into a temp directory
        _sync_quietly(files)
        session.finish(final_checkpoint=final)

    def poll(self, trial_id: str) -> Batch:
        """Results of ``trial_id`` since the last call (waits up to POLL_TIMEOUT_S for some)."""
        return self._collect(trial_id, POLL_TIMEOUT_S)

    def decide(self, trial_id: str, command: Command, next_point: float | None, payload: Any = None) -> Batch:
        """Answer ``trial_id``'s decision point, then return its next batch (the final one after stop/pause)."""
        session, thread = self._require(trial_id)
        command = Command(command)
        session.decide(command, next_point, payload)
        # Only a stopped or paused trainable ends; one exploited in place goes on (no join to wait out).
        if command.ends_trial and thread is not None:
            thread.join(POLL_TIMEOUT_S)
        return self._collect(trial_id, POLL_TIMEOUT_S)

    def request_stop(self, trial_id: str) -> None:
        """Ask ``trial_id`` to end at its next report (its outstanding poll then says so).

        Calls to a threaded actor may run out of order, and a trial started ahead waits for
        the one before it, so a request that arrives before its trial's start is remembered
        and applied there (a trial started ahead then never runs).
        """
        entry = self._trials.get(trial_id)
        if entry is not None:
            entry[0].request_stop()
            return
        with self._begun:
            self._stopped_early.add(trial_id)
            self._begun.notify_all()

    def _collect(self, trial_id: str, timeout: float) -> Batch:
        session, thread = self._require(trial_id)
        batch = session.collect(timeout, thread)
        if batch.state in (SessionState.DONE, SessionState.ERROR):
            self._trials.pop(trial_id, None)  # its last batch: nothing more is asked about it
        return batch

    def _require(self, trial_id: str) -> tuple[session_lib.Session, threading.Thread | None]:
        entry = self._trials.get(trial_id)
        if entry is None:
            raise RuntimeError(f"TrialWorker has no trial {trial_id!r} (never started here, or already over).")
        return entry
