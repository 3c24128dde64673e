"""How a search space and trial configs become TensorBoard HParams
declarations and values; pure functions, used by ``tuner.tensorboard.export``.

Mapping (TensorBoard's HParams know float64, string and bool, with an interval
or a list of discrete values):

* ``uniform``/``loguniform`` (kind "float"): float64, interval [lower, upper];
* ``randint``, ``qrandint``, ``lograndint`` (kind "int"): float64 interval with
  the smallest and largest values that can be drawn (TensorBoard has no integer
  type; a discrete list would turn a wide range into hundreds of checkboxes);
* ``choice`` and ``grid_search``: discrete values, typed bool if all are bools,
  float64 if all are numbers, else string (``None`` -> ``"None"``,
  ``[1, 2]`` -> ``"[1, 2]"``; the trial's value is written the same way);
* ``randn``: float64 without bounds;
* ``sample_from``: not declared by the space; declared with the type of the first
  value a trial gets, like any key that appears only in trial configs;
* constants: declared with their single value (``differs`` false).

Nested dicts are flattened with ``/``; lists only where the space holds domains
inside a list (``layers/0``); values that are not numbers, strings or bools are
written as their ``str`` rather than dropped.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, Iterator

from tensorboard.plugins.hparams import api_pb2

from tuner.space.config import values_differ
from tuner.tensorboard import event_file as tbw
_DOMAIN_KINDS = frozenset({"float", "int", "categorical", "normal", "grid", "function"})


def is_domain(value: Any) -> bool:
    """A ``tuner.space.config`` Domain (recognized by its ``kind``), not a constant."""
    return not isinstance(value, dict) and getattr(value, "kind", None) in _DOMAIN_KINDS


def _holds_domain(value: Any) -> bool:
    if is_domain(value):
        return True
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    return any(_holds_domain(v) for v in items)


def space_leaves(space: dict[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every (path, Domain or constant) of a nested search space, depth first.

    Dicts are walked; a list or tuple only if it holds a Domain (its items are
    then named by index, ``"layers/0"``), else it is one constant.
    """
    items = space.items() if isinstance(space, dict) else enumerate(space)
    for key, value in items:
        path = prefix + (str(key),)
        if (isinstance(value, dict) and value) or (isinstance(value, (list, tuple)) and _holds_domain(value)):
            yield from space_leaves(value, path)
        else:
            yield path, value


def inner_paths(leaves: Iterable[tuple[str, ...]]) -> frozenset[tuple[str, ...]]:
    """The containers above the leaves of a space (where ``flatten_config`` descends into lists)."""
    return frozenset(path[:i] for path in leaves for i in range(1, len(path)))


def flatten_config(config: dict[str, Any], leaves: Iterable[tuple[str, ...]] = frozenset(),
                   inner: Iterable[tuple[str, ...]] = frozenset(), prefix: tuple[str, ...] = ()) -> dict[str, Any]:
    """``{"opt": {"lr": 0.1}}`` -> ``{"opt/lr": 0.1}``.

    Nested dicts are flattened, except one that is a single value of the space
    (a path in ``leaves``, e.g. a ``choice`` of dicts); lists only where the
    space had a list of domains (a path in ``inner``); any other value stays whole.
    """
    out: dict[str, Any] = {}
    items = config.items() if isinstance(config, dict) else enumerate(config)
    for key, value in items:
        path = prefix + (str(key),)
        if ((isinstance(value, dict) and value and path not in leaves)
                or (isinstance(value, (list, tuple)) and path in inner)):
            out.update(flatten_config(value, leaves, inner, path))
        else:
            out["/".join(path)] = value
    return out


def numeric_metrics(result: dict[str, Any], exclude: tuple[str, ...] = (), prefix: str = "") -> dict[str, float]:
    """Every int/float of a result (nested dicts flattened with ``/``) as float; bools skipped."""
    out: dict[str, float] = {}
    for key, value in result.items():
        name = f"{prefix}{key}"
        kind = type(value)
        if kind is float or kind is int:
            if name not in exclude:
                out[name] = float(value)
        elif kind is dict:
            out.update(numeric_metrics(value, exclude, f"{name}/"))
        elif isinstance(value, numbers.Real) and not isinstance(value, bool) and name not in exclude:
            try:
                out[name] = float(value)
            except (TypeError, ValueError):
                pass
    return out


def _python(value: Any) -> Any:
    """numpy scalars -> Python scalars."""
    item = getattr(value, "item", None)
    if item is not None and getattr(value, "shape", None) == ():
        return item()
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def discrete(values: list[Any]) -> tuple[int, list[Any]]:
    """The HParams type and domain values of a list of choices, duplicates dropped."""
    values = [_python(v) for v in values]
    if values and all(isinstance(v, bool) for v in values):
        dtype, converted = tbw.BOOL, values
    elif values and all(_is_number(v) for v in values):
        dtype, converted = tbw.FLOAT64, [float(v) for v in values]
    else:
        dtype, converted = tbw.STRING, [v if isinstance(v, str) else str(v) for v in values]
    unique: list[Any] = []
    for v in converted:  # keeps the order of the choices, as the HParams tab lists them
        if v not in unique:
            unique.append(v)
    return dtype, unique


def domain_hparam_info(name: str, value: Any) -> api_pb2.HParamInfo | None:
    """How one leaf of the search space is declared; None for ``sample_from``
    (declared with the type of its first value instead)."""
    if not is_domain(value):
        dtype, values = discrete([value])
        return tbw.hparam_info(name, dtype, values=values, differs=False, description="constant")
    kind = value.kind
    if kind == "float":
        scale = "log-uniform" if getattr(value, "log", False) else "uniform"
        return tbw.hparam_info(name, tbw.FLOAT64, interval=(value.lower, value.upper), description=scale)
    if kind == "int":
        # The smallest and largest values that can be drawn (upper excluded unless
        # upper_inclusive, multiples of q), as tuner.space.domains.Integer computes them.
        high = value.upper if getattr(value, "upper_inclusive", False) else value.upper - 1
        interval = (getattr(value, "grid_low", value.lower), getattr(value, "grid_high", high))
        return tbw.hparam_info(name, tbw.FLOAT64, interval=interval, description="integer")
    if kind in ("categorical", "grid"):
        dtype, values = discrete(list(value.categories if kind == "categorical" else value.values))
        return tbw.hparam_info(name, dtype, values=values, differs=len(values) > 1, description=kind)
    if kind == "normal":
        return tbw.hparam_info(name, tbw.FLOAT64, description=f"normal(mean={value.mean}, sd={value.sd})")
    return None


def value_hparam_info(name: str, value: Any) -> api_pb2.HParamInfo:
    """Declares a hyperparameter first seen in a trial's config (no domain known)."""
    value = _python(value)
    dtype = tbw.BOOL if isinstance(value, bool) else tbw.FLOAT64 if _is_number(value) else tbw.STRING
    return tbw.hparam_info(name, dtype)


def hparam_value(value: Any, dtype: int) -> bool | float | str:
    """A concrete value in the form its declared type asks for (never dropped)."""
    value = _python(value)
    if dtype == tbw.STRING:
        return value if isinstance(value, str) else str(value)
    if isinstance(value, bool):
        return value if dtype == tbw.BOOL else str(value)
    if _is_number(value) and dtype == tbw.FLOAT64:
        return value if isinstance(value, (int, float)) else float(value)
    return value if isinstance(value, str) else str(value)


def lineage_text(trial_id: str, segment: int, donor_id: str | None, donor_run: str, step: int,
                 old: dict[str, Any], new: dict[str, Any]) -> str:
    """Markdown for the Text tab: where a PBT segment came from and what changed."""
    source = f"the checkpoint of `{donor_run}` (trial `{donor_id}`)" if donor_id else "its own checkpoint"
    lines = [f"Segment {segment} of trial `{trial_id}` continues at iteration {step} from {source}.", ""]
    changed = [k for k in sorted(set(old) | set(new)) if values_differ(old.get(k, _MISSING), new.get(k, _MISSING))]
    lines += [f"* `{k}`: {_fmt(old.get(k, _MISSING))} → {_fmt(new.get(k, _MISSING))}" for k in changed]
    return "\n".join(lines if changed else lines + ["No hyperparameter changed."])


_MISSING = object()


def _fmt(value: Any) -> str:
    if value is _MISSING:
        return "(unset)"
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.6g}"
    return repr(value)
