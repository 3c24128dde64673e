"""``tuner.space.config`` -> Hyperopt ``hp.*`` expressions, nested choices included.

Each domain keeps its own law: the ``hp`` node draws what ``Domain.sample``
would draw and small ``pyll`` functions apply the same rounding and clipping,
so a config from Hyperopt could have come from the space itself. ``grid_search``
and ``sample_from`` have no Hyperopt form and are errors naming the parameter.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

from tuner.space import config as sp
from tuner.space.domains import quantize

BACKEND = "HyperOptSearch"


def import_hyperopt() -> Any:
    """Hyperopt, or an ImportError naming the extra that installs it."""
    try:
        import hyperopt
        import hyperopt.base
        import hyperopt.pyll
        import hyperopt.rand
        import hyperopt.tpe
        import hyperopt.utils
    except ImportError as exc:  # pragma: no cover - exercised only where hyperopt is absent
        raise ImportError("HyperOptSearch needs the `hyperopt` package: pip install 'tuner[hyperopt]'.") from exc
    _define_scope(hyperopt.pyll.scope)
    return hyperopt


def _as_float(x: Any) -> float:
    return float(x)


def _quantize(x: Any, q: float, lower: float, upper: float) -> float:
    return quantize(float(x), q, lower, upper)


def _round_to(x: Any, q: float) -> float:
    return float(f"{round(float(x) / q) * q:.12g}")


def _int_grid(x: Any, low: int, high: int) -> int:
    return int(min(max(round(float(x)), low), high))


def _int_log(x: Any, q: Any, low: int, high: int) -> int:
    value = math.floor(float(x)) if q is None else round(float(x) / q) * q
    return int(min(max(value, low), high))


_SCOPE_FUNCTIONS = {"tuner_float": _as_float, "tuner_quantize": _quantize, "tuner_round_to": _round_to,
                    "tuner_int_grid": _int_grid, "tuner_int_log": _int_log}


def _define_scope(scope: Any) -> None:
    for name, fn in _SCOPE_FUNCTIONS.items():
        if not hasattr(scope, name):
            fn.__name__ = name
            scope.define(fn)


@dataclasses.dataclass
class HyperoptParam:
    """A top-level parameter: where it goes in the config and how a config value
    becomes the value Hyperopt records for its label (for points_to_evaluate)."""

    path: tuple
    name: str
    domain: sp.Domain
    encode: Callable[[Any], Any]


def _number_encoder(label: str, low: float, high: float) -> Callable[[Any], Any]:
    def encode(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise ValueError(f"The value of `{label}` in points_to_evaluate is {value!r}, but must be a number "
                             f"in [{low}, {high}].")
        return value

    return encode


def _choice_encoder(label: str, categories: list[Any]) -> Callable[[Any], int]:
    def encode(value: Any) -> int:
        if any(sp.has_domains(c) for c in categories):
            raise ValueError(f"The value of `points_to_evaluate` sets `{label}`, a choice of sub-spaces, which "
                             f"{BACKEND} can only draw; leave it out of the point.")
        for i, c in enumerate(categories):
            if type(c) is type(value) and c == value:
                return i
        raise ValueError(f"The value of `{label}` in points_to_evaluate is {value!r}, but must be one of "
                         f"{categories!r}.")

    return encode


def _unsupported(label: str, domain: Any, why: str, fix: str) -> ValueError:
    return ValueError(f"The parameter `{label}` is {domain!r}, which {BACKEND} cannot express: {why}. {fix}")


def _expr(label: str, domain: sp.Domain, hp: Any, scope: Any) -> tuple[Any, Callable[[Any], Any]]:
    """The ``hp`` expression of one domain and its points_to_evaluate encoder."""
    kind = domain.kind
    if kind == "float":
        lo, hi, q = domain.lower, domain.upper, domain.q
        if domain.log:
            raw = hp.loguniform(label, math.log(lo), math.log(hi))
        else:
            raw = hp.uniform(label, lo, hi)
        node = scope.tuner_float(raw) if q is None else scope.tuner_quantize(raw, q, lo, hi)
        return node, _number_encoder(label, lo, hi)
    if kind == "int":
        low, high, q = domain.grid_low, domain.grid_high, domain.q or 1
        if domain.log:
            raw = hp.loguniform(label, math.log(domain.lower), math.log(domain.high + 1))
            return scope.tuner_int_log(raw, domain.q, low, high), _number_encoder(label, low, high)
        raw = hp.quniform(label, low - q / 2, high + q / 2, q)  # each multiple of q equally likely
        return scope.tuner_int_grid(raw, low, high), _number_encoder(label, low, high)
    if kind == "normal":
        raw = hp.normal(label, domain.mean, domain.sd)
        node = scope.tuner_float(raw) if domain.q is None else scope.tuner_round_to(raw, domain.q)
        return node, _number_encoder(label, -math.inf, math.inf)
    if kind == "categorical":
        options = [_nested(c, f"{label}/{i}", hp, scope) for i, c in enumerate(domain.categories)]
        return hp.choice(label, options), _choice_encoder(label, domain.categories)
    if kind == "grid":
        raise _unsupported(label, domain, "Hyperopt has no grid", "Use tune.choice, or BasicVariantGenerator.")
    raise _unsupported(label, domain, "sample_from computes a value from code Hyperopt cannot see",
                       "Use tune.choice with nested sub-spaces for a conditional space.")


def _nested(node: Any, prefix: str, hp: Any, scope: Any) -> Any:
    """A choice's category with every domain inside replaced by its ``hp`` expression."""
    domain = sp.as_domain(node)
    if domain is not None:
        return _expr(prefix, domain, hp, scope)[0]
    if isinstance(node, dict):
        return {k: _nested(v, f"{prefix}/{k}", hp, scope) for k, v in node.items()}
    if isinstance(node, list):
        return [_nested(v, f"{prefix}/{i}", hp, scope) for i, v in enumerate(node)]
    return node


def to_hyperopt(config: Any) -> tuple[dict[str, Any], list[HyperoptParam]]:
    """``({label: hp expression}, params)`` for every top-level domain of ``config``."""
    hyperopt = import_hyperopt()
    exprs: dict[str, Any] = {}
    params = []
    for path, domain in sp.walk(config):
        label = sp.path_name(path)
        node, encode = _expr(label, domain, hyperopt.hp, hyperopt.pyll.scope)
        exprs[label] = node
        params.append(HyperoptParam(path, label, domain, encode))
    return exprs, params


def reshape(template: Any, value: Any, label: str, vals: dict[str, list]) -> Any:
    """The config value for one label, in the shape of the space.

    Hyperopt's graph hands back lists as tuples and dicts in its own key order;
    the chosen category (known from ``vals``, the trial's recorded indexes) is
    the template, its constants are taken from the space as they are, and only
    the drawn values come from Hyperopt.
    """
    domain = sp.as_domain(template)
    if isinstance(domain, sp.Categorical):
        index = int(vals[label][0])
        return reshape(domain.categories[index], value, f"{label}/{index}", vals)
    if domain is not None:
        return value
    if isinstance(template, dict):
        return {k: reshape(v, value[k], f"{label}/{k}", vals) for k, v in template.items()}
    if isinstance(template, list):
        return [reshape(v, value[i], f"{label}/{i}", vals) for i, v in enumerate(template)]
    return template
