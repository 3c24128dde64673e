"""What a sweep optimizes (``metric``/``mode``), shared by schedulers and searchers."""

from __future__ import annotations

from typing import Any


def inherit_objective(component: Any, metric: Any, mode: Any) -> None:
    """Fill ``component.metric``/``.mode`` from ``tune.run`` where it has none.

    Raises ValueError when the component was built with a different value: the
    objective must be stated in one place, or both places must agree.
    """
    for name, given in (("metric", metric), ("mode", mode)):
        own = getattr(component, name)
        if own is not None and given is not None and own != given:
            raise ValueError(
                f"{type(component).__name__} was built with {name}={own!r} but tune.run got {name}={given!r}; "
                f"pass `{name}` in one place only."
            )
        if own is None:
            setattr(component, name, given)
