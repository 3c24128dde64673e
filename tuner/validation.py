"""Argument checks shared by tune.run, the schedulers and the searchers: one wording everywhere."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any


def is_finite_number(value: Any) -> bool:
    """An int or float that is not a bool, NaN or infinite."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_real_number(value: Any) -> bool:
    """An int or float that is not a bool (NaN and infinities included)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def show_value(value: Any) -> str:
    """A reported value in a message: numbers as ``%g``, anything else (None, a string, a list) as its repr."""
    return f"{value:g}" if is_real_number(value) else repr(value)


def check_number(value: Any, name: str, rule: str, ok: Callable[[float], bool]) -> None:
    """Raise the standard ValueError unless ``value`` is a finite real number (not a bool) with ``ok(value)``."""
    if not is_finite_number(value) or not ok(value):
        raise ValueError(f"The value of `{name}` is {value!r}, but must be `{rule}`.")


def check_seed(seed: Any) -> None:
    """A seed is an integer or None (a bool is not a seed)."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"The value of `seed` is {seed!r}, but must be an integer or None.")
