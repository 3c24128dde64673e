"""``with_parameters`` and ``with_resources``: trainables that carry data or a resource request.

``with_parameters`` puts each large object into Ray's object store once, on the
driver; every trial fetches it from there (a zero-copy read for numpy arrays on
the same node) instead of unpickling its own copy with the trainable.
``with_resources`` attaches what ``resources_per_trial`` would say as the
trainable's ``default_resources_per_trial`` (the attribute ``tune.distributed``
and Trainable classes use too), so the trainable carries it into ``tune.run``,
``Tuner`` or a sweep file.
"""

from __future__ import annotations

import inspect
from typing import Any

from tuner.execution.resources import TRAINABLE_RESOURCES, resource_request, trainable_resources


def with_resources(trainable: Any, resources: Any) -> Any:
    """``trainable`` with a resource request: a dict (``{"cpu": 2, "gpu": 1}``), a list of
    bundles, a ``PlacementGroupFactory``, or a callable ``config -> request`` for each trial.
    It replaces the trainable's own ``default_resources_per_trial`` (``tune.distributed``'s gang, a
    Trainable class's attribute); ``resources_per_trial`` given to ``tune.run`` still wins."""
    resource_request(resources)  # a bad request fails here, naming its key
    if inspect.isclass(trainable):
        return type(trainable.__name__, (trainable,), {
            TRAINABLE_RESOURCES: resources, "__module__": trainable.__module__,
            "__qualname__": f"with_resources.<{trainable.__qualname__}>"})

    def with_resources_of(config):
        return trainable(config)

    _rename(with_resources_of, trainable, "with_resources")
    setattr(with_resources_of, TRAINABLE_RESOURCES, resources)
    return with_resources_of


def with_parameters(trainable: Any, **parameters: Any) -> Any:
    """``trainable`` called with ``parameters`` as keyword arguments: ``train(config, data=...)``,
    or ``setup(config, data=...)`` for a ``tune.Trainable``. Each object is put into Ray's
    object store once; trials read it from there.

    Example::

        def train(config, data):
            ...
        tune.run(tune.with_parameters(train, data=big_array), config=space)
    """
    import ray

    if not parameters:
        raise ValueError("with_parameters needs at least one keyword argument to pass to the trainable.")
    if not ray.is_initialized():
        ray.init(include_dashboard=False, configure_logging=False)
    refs = {name: ray.put(value) for name, value in parameters.items()}
    resources = trainable_resources(trainable)
    if inspect.isclass(trainable):
        def setup(self, config):
            trainable.setup(self, config, **_fetch(refs))

        wrapped = type(trainable.__name__, (trainable,), {"setup": setup, "__module__": trainable.__module__,
                                                          "__qualname__": f"with_parameters.<{trainable.__qualname__}>"})
    else:
        def wrapped(config):
            return trainable(config, **_fetch(refs))

        _rename(wrapped, trainable, "with_parameters")
    if resources is not None and not inspect.isclass(trainable):  # a subclass inherits it
        setattr(wrapped, TRAINABLE_RESOURCES, resources)
    return wrapped


def _fetch(refs: dict[str, Any]) -> dict[str, Any]:
    import ray

    return {name: ray.get(ref) for name, ref in refs.items()}


def _rename(wrapper: Any, trainable: Any, how: str) -> None:
    """The trainable's own name for display; a qualname that cannot be imported again, so
    ``tune.resume`` asks for the wrapped trainable instead of importing the bare one."""
    name = getattr(trainable, "__name__", type(trainable).__name__)
    wrapper.__name__ = name
    wrapper.__qualname__ = f"{how}.<{name}>"
    wrapper.__module__ = getattr(trainable, "__module__", wrapper.__module__)
