"""The names a sweep file uses, made into objects: ``tune.*`` domains, schedulers, searchers.

``{loguniform: [1e-4, 0.1]}`` becomes ``tune.loguniform(1e-4, 0.1)``, ``{asha: {max_t: 20}}``
becomes ``ASHAScheduler(max_t=20)``; parameters are checked against the classes' own
constructors and type hints, and every error names the file and the key path.
"""

from __future__ import annotations

import difflib
import inspect
import json
import math
import re
import typing
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError
from tuner.validation import BadValueError

SCHEDULERS = {
    "fifo": "schedulers.fifo:FIFOScheduler", "asha": "schedulers.asha:ASHAScheduler",
    "hyperband": "schedulers.hyperband:HyperBandScheduler", "median": "schedulers.median_stopping:MedianStoppingRule",
    "pbt": "schedulers.pbt:PopulationBasedTraining", "pb2": "schedulers.pb2:PB2",
}
SEARCHERS = {
    "random": "searchers.basic_variant:BasicVariantGenerator", "optuna": "searchers.optuna:OptunaSearch",
    "hyperopt": "searchers.hyperopt:HyperOptSearch",
}
DOMAINS = ("uniform", "quniform", "loguniform", "qloguniform", "randn", "randint", "qrandint", "lograndint",
           "choice", "grid_search", "sample_from")
# Parameters that hold a search space (PBT's mutations), written in the same domain notation as `config`.
_SPACE_PARAMS = ("hyperparam_mutations",)


class SweepError(ValueError):
    """A sweep file (or command line) that cannot be run; the message says where and why."""


def show(value: Any) -> str:
    """A value as the user wrote it (JSON spelling: strings in double quotes)."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


# --- the search space ------------------------------------------------------------------------------


def to_space(value: Any, label: str, where: str) -> Any:
    """Domain notation (``{loguniform: [1e-4, 0.1]}``) into ``tune.*`` domains; constants pass.

    A domain is a one-key mapping from a ``tune.*`` name to its arguments: a list
    (positional), a mapping (keywords), or a scalar (``{randn: null}``).
    ``choice`` and ``grid_search`` take the list of values itself;
    ``sample_from`` takes an import path ``module:function``.
    """
    from tuner.space import config as space
    if isinstance(value, dict):
        if len(value) == 1:
            (key, args), = value.items()
            if key in DOMAINS:
                return _domain(space, key, args, label, f"{where}.{key}")
            near = difflib.get_close_matches(str(key), DOMAINS, n=1, cutoff=0.8)
            if near and key not in DOMAINS:
                raise SweepError(f"{label}: {where}.{key}: unknown domain; did you mean {near[0]!r}? "
                                 f"(domains: {', '.join(DOMAINS)})")
        return {k: to_space(v, label, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [to_space(v, label, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _domain(space: Any, name: str, args: Any, label: str, where: str) -> Any:
    make = getattr(space, name)
    try:
        if name == "sample_from":
            if not isinstance(args, str):
                raise SweepError(f"{label}: {where}: expected an import path 'module:function', got {show(args)}")
            from tuner.import_path import import_object

            try:
                return make(import_object(args))
            except (ImportError, AttributeError) as exc:
                raise SweepError(f"{label}: {where}: cannot import {args!r}: {exc}") from None
        if name in ("choice", "grid_search"):
            if not isinstance(args, list):
                raise SweepError(f"{label}: {where}: expected a list of values, got {show(args)}")
            return make(to_space(args, label, where))
        if isinstance(args, dict):
            return make(**args)
        if isinstance(args, list):
            return make(*args)
        return make() if args is None else make(args)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, SweepError):
            raise
        raise SweepError(f"{label}: {where}: {exc}") from None


# --- schedulers and searchers -------------------------------------------------------------------


def build(kind: str, spec: str | dict[str, Any], known: Mapping[str, str], label: str) -> Any:
    """``{asha: {max_t: 20}}`` (or just ``asha``) into the object; errors named by key path."""
    from tuner.import_path import import_object

    if isinstance(spec, str):
        spec = {spec: {}}
    (name, params), = spec.items()
    params = dict(params or {})
    if name not in known:
        near = difflib.get_close_matches(str(name), list(known), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise SweepError(f"{label}: {kind}.{name}: unknown {kind}{hint} (known: {', '.join(known)})")
    try:
        cls = import_object(known[name])
    except (ImportError, AttributeError) as exc:
        raise SweepError(f"{label}: {kind}.{name}: not available here ({exc})") from None
    accepted = inspect.signature(cls).parameters
    hints = _type_hints(cls)
    for key, value in params.items():
        where = f"{label}: {kind}.{name}.{key}"
        if key not in accepted or key in ("self", "space"):
            takes = [p for p in accepted if p not in ("self", "space")]
            near = difflib.get_close_matches(key, takes, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise SweepError(f"{where}: unknown parameter{hint} ({cls.__name__} takes: {', '.join(takes)})")
        if key in hints:
            try:
                TypeAdapter(hints[key]).validate_python(value, strict=True)
            except ValidationError:
                raise SweepError(_type_error(cls, kind, name, key, params, hints, label)) from None
            except Exception:  # noqa: BLE001 - a hint pydantic cannot check: the constructor will
                pass
        if key in _SPACE_PARAMS:
            params[key] = to_space(value, label, f"{kind}.{name}.{key}")
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise SweepError(_constructor_error(exc, kind, name, params, hints, label)) from None


def _type_error(cls: type, kind: str, name: str, key: str, params: dict[str, Any], hints: dict[str, Any],
                label: str) -> str:
    """A value of the wrong type; the constructor's own rule, when it states one, says more."""
    try:
        cls(**params)
    except (TypeError, ValueError) as exc:
        message = _constructor_error(exc, kind, name, params, hints, label)
        if message.startswith(f"{label}: {kind}.{name}.{key}: expected"):
            return message
    except Exception:  # noqa: BLE001 - the constructor choked on the value: the type is enough
        pass
    return f"{label}: {kind}.{name}.{key}: expected {_type_words(hints[key])}, got {show(params[key])}"


def _type_hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls.__init__)
    except Exception:  # noqa: BLE001 - unresolvable annotations: check nothing up front
        return {}


def _type_words(hint: Any) -> str:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    optional = len(args) < len(typing.get_args(hint))
    if typing.get_origin(hint) is Literal:
        return " or ".join(show(a) for a in typing.get_args(hint))
    if args and typing.get_origin(hint) not in (list, dict, tuple):
        words = " or ".join(dict.fromkeys(_type_words(a) for a in args))
        return f"{words} or null" if optional else words
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            list: "a list", dict: "a mapping"}.get(typing.get_origin(hint) or hint, str(hint))


def _constructor_error(exc: Exception, kind: str, name: str, params: dict[str, Any], hints: dict[str, Any],
                       label: str) -> str:
    """A constructor's BadValueError names the key and its rule: point at the key and say it shortly.
    Any other error is shown whole, at the component."""
    if not isinstance(exc, BadValueError) or exc.name not in params:
        return f"{label}: {kind}.{name}: {exc}"
    key, rule = exc.name, exc.rule
    what = _type_words(hints[key]).split(" or ")[0] if key in hints else ""
    simple = re.fullmatch(rf"`{key} (.+)`", rule)
    if simple and what in ("a number", "an integer"):
        expected = f"{what} {simple.group(1)}"
    else:
        expected = rule.strip("`") if rule.startswith("`") else rule
    value = params[key]
    if isinstance(value, float) and not math.isfinite(value):
        value = str(value)
    return f"{label}: {kind}.{name}.{key}: expected {expected}, got {show(value)}"
