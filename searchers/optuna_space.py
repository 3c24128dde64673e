"""``tuner.space.config`` -> Optuna distributions, exactly or not at all.

Each domain of the config becomes one Optuna parameter named by its path
(``"opt/lr"``). What Optuna cannot express (normal draws, log scale with a
step, grids, ``sample_from``, sub-spaces inside a choice) is a ValueError naming
the parameter, never a silent approximation.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

from tuner.space import config as sp
from tuner.space.domains import quantize

BACKEND = "OptunaSearch"
_PRIMITIVE = (type(None), bool, int, float, str)


def import_optuna() -> Any:
    """Optuna, or an ImportError naming the extra that installs it."""
    try:
        import optuna
    except ImportError as exc:  # pragma: no cover - exercised only where optuna is absent
        raise ImportError("OptunaSearch needs the `optuna` package: pip install 'tuner[optuna]'.") from exc
    return optuna


@dataclasses.dataclass
class OptunaParam:
    """One parameter: where it lives in the config and how its values convert."""

    path: tuple
    name: str
    distribution: Any
    decode: Callable[[Any], Any]  # Optuna's value -> the config's value
    encode: Callable[[Any], Any]  # a config value (points_to_evaluate) -> Optuna's value


def _unsupported(name: str, domain: Any, why: str, fix: str) -> ValueError:
    return ValueError(f"The parameter `{name}` is {domain!r}, which {BACKEND} cannot express: {why}. {fix}")


def _numeric_encoder(name: str, low: float, high: float, cast: type) -> Callable[[Any], Any]:
    def encode(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise ValueError(f"The value of `{name}` in points_to_evaluate is {value!r}, but must be a number "
                             f"in [{low}, {high}].")
        return cast(value)

    return encode


def _categorical(name: str, categories: list[Any], distributions: Any) -> tuple[Any, Callable, Callable]:
    """Plain, distinct values go to Optuna as they are; anything else (lists,
    dicts, objects, ``1`` beside ``True``) as its index."""
    plain = all(type(c) in _PRIMITIVE and not (isinstance(c, float) and math.isnan(c)) for c in categories)
    if plain and len(set(categories)) == len(categories):
        choices = list(categories)
        dist = distributions.CategoricalDistribution(choices)

        def encode(value: Any) -> Any:
            for c in choices:
                if type(c) is type(value) and c == value:
                    return c
            raise ValueError(f"The value of `{name}` in points_to_evaluate is {value!r}, but must be one of "
                             f"{choices!r}.")

        return dist, lambda v: v, encode
    dist = distributions.CategoricalDistribution(list(range(len(categories))))

    def encode_index(value: Any) -> int:
        for i, c in enumerate(categories):
            if type(c) is type(value) and c == value:
                return i
        raise ValueError(f"The value of `{name}` in points_to_evaluate is {value!r}, but must be one of "
                         f"{categories!r}.")

    return dist, lambda i: sp.fill(categories[int(i)], {}), encode_index


def to_optuna(config: Any) -> list[OptunaParam]:
    """One ``OptunaParam`` per domain of ``config`` (and per Optuna distribution
    placed in it directly), in config order."""
    optuna = import_optuna()
    distributions = optuna.distributions
    params = []
    for path, domain in sp.walk(config):
        name = sp.path_name(path)
        kind = domain.kind
        if kind == "float":
            if domain.log and domain.q is not None:
                raise _unsupported(name, domain, "Optuna has no log scale with a step",
                                   "Use tune.loguniform (no q) or tune.quniform.")
            if domain.q is None:
                dist = distributions.FloatDistribution(domain.lower, domain.upper, log=domain.log)
                decode = float
            else:
                q = domain.q
                low = quantize(domain.lower, q, domain.lower, domain.upper)
                high = quantize(domain.upper, q, domain.lower, domain.upper)
                dist = distributions.FloatDistribution(low, high, step=q)
                decode = (lambda q_, lo, hi: lambda v: quantize(float(v), q_, lo, hi))(q, domain.lower, domain.upper)
            params.append(OptunaParam(path, name, dist, decode,
                                      _numeric_encoder(name, dist.low, dist.high, float)))
        elif kind == "int":
            if domain.log and domain.q not in (None, 1):
                raise _unsupported(name, domain, "Optuna has no log scale with a step",
                                   "Use tune.lograndint (no q) or tune.qrandint.")
            dist = distributions.IntDistribution(domain.grid_low, domain.grid_high, log=domain.log,
                                                 step=domain.q or 1)
            params.append(OptunaParam(path, name, dist, int, _numeric_encoder(name, dist.low, dist.high, int)))
        elif kind == "categorical":
            for i, category in enumerate(domain.categories):
                if sp.has_domains(category):
                    raise _unsupported(name, domain, f"category {i} holds a sub-space (a conditional space)",
                                       "Write the space as a define-by-run function, space=fn(trial), "
                                       "or use HyperOptSearch.")
            dist, decode, encode = _categorical(name, domain.categories, distributions)
            params.append(OptunaParam(path, name, dist, decode, encode))
        elif kind == "normal":
            raise _unsupported(name, domain, "Optuna has no normal distribution",
                               "Use tune.uniform over the range you expect, or HyperOptSearch.")
        elif kind == "grid":
            raise _unsupported(name, domain, "a grid_search is not a distribution",
                               "Use tune.choice, or optuna.samplers.GridSampler with a define-by-run space.")
        else:
            raise _unsupported(name, domain, "sample_from computes a value from code Optuna cannot see",
                               "Write the space as a define-by-run function, space=fn(trial).")
    params.extend(_native(config, (), distributions))
    return params


def _native(node: Any, path: tuple, distributions: Any) -> list[OptunaParam]:
    """Optuna distributions placed directly in the config are used as they are."""
    if isinstance(node, distributions.BaseDistribution):
        name = sp.path_name(path)
        return [OptunaParam(path, name, node, lambda v: v, lambda v: v)]
    if isinstance(node, dict) and not isinstance(node, sp.Domain):
        return [p for k, v in node.items() for p in _native(v, path + (k,), distributions)]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _native(v, path + (i,), distributions)]
    return []
