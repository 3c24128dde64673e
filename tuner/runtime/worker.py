"""The worker actor: runs one trial at a time in a thread and streams its results.

The executor creates one per resource shape and reuses it across trials. Every
trial gets a fresh trainable object, a fresh trial directory and a fresh seed;
nothing of the previous trial is kept but the warm process.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import threading
import traceback
import types
from typing import Any

from tuner.runtime import session as session_lib
from tuner.runtime import trial_files
from tuner.runtime import trainable as trainable_lib
from tuner.runtime.messages import Batch, Command, LaunchSpec, Shared, TrainableNotLoadedError
from tuner.storage import checkpoint as ckpt_lib
POLL_TIMEOUT_S = 10.0


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
        if _in_ray_actor():  # a worker process of its own (not an in-process worker): note its end
            from tuner.runtime import exit_note

            exit_note.install()
        self._session: session_lib.Session | None = None
        self._thread: threading.Thread | None = None
        self._home = os.getcwd()
        self._chdir = chdir
        self._stopped_early: set[str] = set()  # stop requests that overtook their start call
        self._shared: tuple[bytes, Any] | None = None  # (object id, object): this run's trainable

    def _resolve(self, trainable: Any) -> Any:
        """The trainable itself: fetched from Ray's store at the first trial of a run, then kept when
        it is a function or a class (each trial makes its own instance). Any other callable object is
        fetched again for each trial, so that no trial sees another's changes to it."""
        if not isinstance(trainable, Shared):
            return trainable
        key = trainable.ref.binary()
        if self._shared is not None and self._shared[0] == key:
            return self._shared[1]
        import ray

        try:
            obj = ray.get(trainable.ref)
        except Exception as exc:  # noqa: BLE001 - an import failure is told apart for the driver
            failure = TrainableNotLoadedError.found_in(exc)
            if failure is None:
                raise
            raise failure from None
        if isinstance(obj, (types.FunctionType, type)):
            self._shared = (key, obj)
        return obj

    def ping(self) -> dict[str, Any]:
        return {**_ray_placement(), "pid": os.getpid()}

    def start(self, spec: LaunchSpec, trainable: Any, checkpoint: str | None) -> Batch:
        """Begin a trial in a new thread and return its first batch; ``checkpoint`` is the path in
        storage to restore from (read here, in the worker), or None."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("TrialWorker.start called while a trial is still running in this worker.")
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
            placement_strategy=spec.placement_strategy, **_ray_placement(),
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
        self._session = session
        if spec.trial_id in self._stopped_early:
            self._stopped_early.discard(spec.trial_id)
            session.request_stop()
        self._thread = threading.Thread(
            target=self._run, args=(session, trainable, dict(spec.config), spec, files), daemon=True,
            name=f"trial-{spec.trial_id}",
        )
        self._thread.start()
        return session.collect(POLL_TIMEOUT_S, self._thread)

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

    def poll(self) -> Batch:
        """Results since the last call (waits up to POLL_TIMEOUT_S for some)."""
        return self._require().collect(POLL_TIMEOUT_S, self._thread)

    def decide(self, command: Command, next_point: float | None, payload: Any = None) -> Batch:
        """Answer a decision point, then return the next batch (the final one after stop/pause)."""
        session = self._require()
        command = Command(command)
        session.decide(command, next_point, payload)
        # Only a stopped or paused trainable ends; one exploited in place goes on (no join to wait out).
        if command.ends_trial and self._thread is not None:
            self._thread.join(POLL_TIMEOUT_S)
        return session.collect(POLL_TIMEOUT_S, self._thread)

    def request_stop(self, trial_id: str) -> None:
        """Ask ``trial_id`` to end at its next report (its outstanding poll then says so).

        Calls to a threaded actor may run out of order, so a request that arrives
        before its trial's ``start`` is remembered and applied there.
        """
        if self._session is not None and self._session.trial_id == trial_id:
            self._session.request_stop()
        else:
            self._stopped_early.add(trial_id)

    def _require(self) -> session_lib.Session:
        if self._session is None:
            raise RuntimeError("TrialWorker has no trial; call start() first.")
        return self._session
