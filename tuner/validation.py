"""Argument checks shared by tune.run, the schedulers and the searchers: one wording everywhere."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

#: The two directions a metric is optimised in.
MODES = ("min", "max")


class BadValueError(ValueError):
    """The standard "The value of `name` is V, but must be RULE." error, its parts kept: the CLI
    points at the sweep file's key and states the rule from them, without parsing the message."""

    def __init__(self, name: str, value: Any, rule: str) -> None:
        self.name, self.value, self.rule = name, value, rule
        super().__init__(f"The value of `{name}` is {value!r}, but must be {rule}.")


def is_real_number(value: Any) -> bool:
    """A real number that is not a bool (numpy scalars included; NaN and infinities included)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A real number a metric can be ranked by: not a bool and not NaN (infinities included)."""
    return is_real_number(value) and not math.isnan(value)


def is_finite_number(value: Any) -> bool:
    """A real number that is not a bool, NaN or infinite."""
    return is_real_number(value) and math.isfinite(value)


def check_mode(mode: Any) -> None:
    """None (taken from tune.run) or one of ``MODES``."""
    if mode is not None and mode not in MODES:
        raise BadValueError("mode", mode, f"one of {MODES}")


def show_value(value: Any) -> str:
    """A reported value in a message: numbers as ``%g``, anything else (None, a string, a list) as its repr."""
    return f"{value:g}" if is_real_number(value) else repr(value)


def check_number(value: Any, name: str, rule: str, ok: Callable[[float], bool]) -> None:
    """Raise the standard ValueError unless ``value`` is a finite real number (not a bool) with ``ok(value)``."""
    if not is_finite_number(value) or not ok(value):
        raise BadValueError(name, value, f"`{rule}`")


def check_int(value: Any, name: str, low: int, rule: str | None = None) -> None:
    """Raise the standard error unless ``value`` is an int (not a bool) ``>= low``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise BadValueError(name, value, rule or f"an integer >= {low}")


def check_seed(seed: Any) -> None:
    """A seed is an integer or None (a bool is not a seed)."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise BadValueError("seed", seed, "an integer or None")
