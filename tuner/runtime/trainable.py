"""The two trainable forms and how a worker runs them.

A function ``train(config)`` that calls ``tune.report``, or a subclass of
``tune.Trainable`` whose ``step()`` returns a result dict. Both end up in the
same session, so everything downstream sees one kind of trial.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

from tuner.storage import checkpoint as ckpt_lib
from tuner.runtime import session as session_lib
from tuner.runtime.messages import Command
class Trainable:
    """Class API: subclass and implement ``setup`` and ``step``.

    Example::

        class Counter(tune.Trainable):
            def setup(self, config):
                self.count, self.lr = 0, config["lr"]

            def step(self):
                self.count += 1
                return {"score": self.count * self.lr}

            def save_checkpoint(self, checkpoint_dir):
                return {"count": self.count}

            def load_checkpoint(self, checkpoint):
                self.count = checkpoint["count"]
    """

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config = dict(config or {})
        self.setup(self.config)

    def setup(self, config: dict[str, Any]) -> None:
        """Build the model, data, optimizer. Called once per trial, in the worker."""

    def step(self) -> dict[str, Any]:
        """Train one iteration and return its metrics (``"done": True`` to finish)."""
        raise NotImplementedError(f"{type(self).__name__} must implement step().")

    def save_checkpoint(self, checkpoint_dir: str) -> dict[str, Any] | str | None:
        """Return a picklable state, or write files into ``checkpoint_dir`` and return None
        (or ``checkpoint_dir`` itself, as Ray Tune code does)."""
        return None

    def load_checkpoint(self, checkpoint: Any) -> None:
        """Restore from what ``save_checkpoint`` produced (the object, or a directory path)."""

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        """Switch to ``new_config`` in place (PBT); return True if supported."""
        return False

    def cleanup(self) -> None:
        """Release resources at the end of the trial."""

    @property
    def trial_id(self) -> str:
        return session_lib.current().trial_id

    @property
    def trial_dir(self) -> str:
        return session_lib.current().context.trial_dir

    @property
    def iteration(self) -> int:
        return session_lib.current().iteration


def is_class_trainable(obj: Any) -> bool:
    return inspect.isclass(obj) and issubclass(obj, Trainable)


def validate_trainable(obj: Any) -> str:
    """Raise a clear error for something tune.run cannot train; return its display name."""
    if is_class_trainable(obj):
        return obj.__name__
    if inspect.isclass(obj):
        raise TypeError(
            f"The trainable {obj!r} is a class but not a subclass of tune.Trainable; subclass it, "
            "or pass a function train(config) that calls tune.report(...)."
        )
    if not callable(obj):
        raise TypeError(
            f"The trainable {obj!r} is not callable; pass a function train(config) that calls "
            "tune.report(...) or a tune.Trainable subclass."
        )
    try:
        inspect.signature(obj).bind({})
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"The trainable {getattr(obj, '__name__', obj)!r} cannot be called with one config dict ({exc}); "
            "its signature must be train(config)."
        ) from None
    return getattr(obj, "__name__", type(obj).__name__)


@contextlib.contextmanager
def _saved(obj: Trainable) -> Iterator[Any]:
    """What ``save_checkpoint`` produced (its object, or the directory it filled), while in use."""
    directory = tempfile.mkdtemp(prefix="tuner_save_")
    try:
        state = obj.save_checkpoint(directory)
        if state is None or _is_inside(state, directory):  # files written there (Ray Tune lets it return the path)
            yield ckpt_lib.Checkpoint.from_directory(directory)
        else:
            yield state
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _save_now(obj: Trainable, session: session_lib.Session) -> str:
    """Checkpoint ``obj`` at the session's iteration (unless that was done); returns its path in storage."""
    path = session.saved_path()
    if path is not None:
        return path
    with _saved(obj) as state:
        return session.save(state)


def _is_inside(state: Any, directory: str) -> bool:
    """Whether ``state`` is ``directory`` or a path in it."""
    if not isinstance(state, (str, os.PathLike)):
        return False
    path = os.path.realpath(os.fspath(state))
    root = os.path.realpath(directory)
    return path == root or path.startswith(root + os.sep)


def _loadable(state: Any) -> Any:
    """What ``load_checkpoint`` gets: a directory checkpoint's path, a dict checkpoint's dict, else the object."""
    if isinstance(state, ckpt_lib.Checkpoint):
        return state.to_directory() if state.path is not None else state.data
    return state


def _exploit_in_place(cls: type[Trainable], obj: Trainable, config: dict[str, Any], path: str,
                      session: session_lib.Session) -> Trainable:
    """PBT on a warm worker: ``reset_config`` keeps the object (and its set-up work); when it
    returns False a fresh object is built. Either way the donor's state (copied to this
    trial's ``path`` in storage) is loaded."""
    if obj.reset_config(dict(config)):
        obj.config = dict(config)
    else:
        obj.cleanup()
        obj = cls(config)
    donor = session.restore(path)
    try:
        obj.load_checkpoint(_loadable(donor))
    finally:
        ckpt_lib.discard(donor)  # a copy downloaded from an object store; storage itself is left alone
    return obj


def run_function(fn: Any, config: dict[str, Any], session: session_lib.Session) -> None:
    """Drive a function trainable. Besides calling ``tune.report``, it may ``yield`` result
    dicts (a generator: each is reported) or ``return`` one (its final result), as Ray Tune's
    function API allows; anything else returned or yielded is an error naming it."""
    name = getattr(fn, "__name__", type(fn).__name__)
    out = fn(config)
    if inspect.isgenerator(out):
        for item in out:
            if not isinstance(item, dict):
                raise TypeError(f"The generator trainable {name!r} yielded {item!r} ({type(item).__name__}); "
                                "yield a dict of metrics, one per result.")
            if session.report(item) == "pause":
                raise session_lib.StopTrial()
    elif isinstance(out, dict):
        session.report(out)
    elif out is not None:
        raise TypeError(f"The trainable {name!r} returned {out!r} ({type(out).__name__}); return nothing, or a dict "
                        "of metrics (reported as its final result).")


def run_class(cls: type[Trainable], config: dict[str, Any], session: session_lib.Session,
              checkpoint_freq: int = 0, checkpoint_at_end: bool = False) -> Any:
    """Drive a class trainable; returns the path of a final checkpoint when paused, or when it
    ends with ``checkpoint_at_end`` and none was saved at its last step; else None."""
    obj = cls(config)
    try:
        if session.checkpoint is not None:
            obj.load_checkpoint(_loadable(session.checkpoint))
        while True:
            result = obj.step()
            if not isinstance(result, dict):
                raise TypeError(f"{cls.__name__}.step() must return a dict of metrics, got {result!r}")
            done = bool(result.get("done"))
            due = (checkpoint_freq and (session.iteration + 1) % checkpoint_freq == 0) or result.get("should_checkpoint")
            saving = bool(due or (done and checkpoint_at_end))
            try:
                if saving:
                    with _saved(obj) as state:
                        command = session.report(result, checkpoint=state)
                else:
                    command = session.report(result)
                if command is Command.CHECKPOINT:  # a callback asked for one at this result
                    command = session.checkpointed(_save_now(obj, session))
            except session_lib.StopTrial:
                # Ended here (done, a stop criterion, the scheduler): checkpoint_at_end still applies.
                return _save_now(obj, session) if checkpoint_at_end and not saving else None
            if command is Command.PAUSE:
                return _save_now(obj, session)
            if command is Command.EXPLOIT:
                obj = _exploit_in_place(cls, obj, *session.payload, session)
    finally:
        obj.cleanup()
