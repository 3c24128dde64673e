"""Pure maths of Population Based Training: who is in which quantile, and how a
config is explored. Scores, configs and an RNG in, values out; no trials, no state.

Scores are "higher is better" (``mode="min"`` metrics are negated before they
get here) and ``-inf`` is the worst score (NaN metrics).
"""

from __future__ import annotations

import copy
import inspect
import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tuner.space.domains import Domain, quantize, space_from_json
from tuner.space.config import assign, lookup
from tuner.validation import is_finite_number

Path = tuple  # nested keys from the root of the config


def quantiles(scores: Mapping[str, float], fraction: float) -> tuple[list[str], list[str]]:
    """The bottom and top quantiles of ``scores`` (trial id -> score), worst first.

    Trials are ranked by ``(score, id)`` so ties break the same way every time.
    Each quantile holds ``ceil(n * fraction)`` trials, never more than half of
    them (no trial is in both); fewer than two trials give two empty quantiles.
    A bottom trial whose score ties the worst score of the top quantile is left
    out of the bottom: it is as good as a donor, so copying one gains nothing.

        >>> quantiles({"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}, 0.25)
        (['a'], ['d'])
    """
    ranked = sorted(scores, key=lambda tid: (scores[tid], tid))
    n = len(ranked)
    if n < 2:
        return [], []
    k = min(math.ceil(n * fraction), n // 2)
    top = ranked[n - k:]
    worst_top = min(scores[tid] for tid in top)
    return [tid for tid in ranked[:k] if scores[tid] < worst_top], top


# --- the mutation spec ------------------------------------------------------------------------------


def parse_mutations(spec: Any, path: Path = ()) -> dict[str, Any]:
    """A checked copy of ``hyperparam_mutations``: nested dicts kept, list values as
    lists, JSON-encoded domains (as experiment.json stores them) decoded.

    Raises:
        ValueError: naming the key, the value and what it must be.
    """
    name = "hyperparam_mutations" + "".join(f"[{k!r}]" for k in path)
    if not isinstance(spec, Mapping):
        raise ValueError(f"The value of `{name}` is {spec!r}, but must be a dict of hyperparameter names to "
                         "lists, tune.* domains, callables or nested dicts.")
    out: dict[str, Any] = {}
    for key, value in space_from_json(dict(spec)).items():
        where = f"{name}[{key!r}]"
        if isinstance(value, Mapping):
            if not value:
                raise ValueError(f"The value of `{where}` is {{}}, but must be a non-empty dict.")
            out[key] = parse_mutations(value, path + (key,))
        elif isinstance(value, (list, tuple)):
            if not value:
                raise ValueError(f"The value of `{where}` is {value!r}, but must be a non-empty list of choices.")
            out[key] = list(value)
        elif isinstance(value, Domain) or callable(value):
            out[key] = value
        else:
            raise ValueError(f"The value of `{where}` is {value!r}, but must be a list of choices, a tune.* "
                             "domain, a callable that returns a new value, or a nested dict.")
    return out


def mutation_leaves(mutations: Mapping[str, Any], path: Path = ()) -> list[tuple[Path, Any]]:
    """``(path, spec)`` for every hyperparameter of a parsed mutation spec, in order."""
    out: list[tuple[Path, Any]] = []
    for key, value in mutations.items():
        if isinstance(value, dict):
            out.extend(mutation_leaves(value, path + (key,)))
        else:
            out.append((path + (key,), value))
    return out


# --- explore ----------------------------------------------------------------------------------------


def explore(config: Mapping[str, Any], mutations: Mapping[str, Any], rng: random.Random,
            resample_probability: float, perturbation_factors: Sequence[float]) -> dict[str, Any]:
    """A copy of ``config`` with every hyperparameter of ``mutations`` explored.

    Nested mutation keys follow nested config keys; a key missing from the config
    is drawn from its spec. Every draw comes from ``rng``.
    """
    new = copy.deepcopy(dict(config))
    for path, spec in mutation_leaves(mutations):
        present, value = lookup(new, path)
        assign(new, path, explore_value(value, present, spec, rng, resample_probability, perturbation_factors))
    return new


def explore_value(value: Any, present: bool, spec: Any, rng: random.Random, resample_probability: float,
                  perturbation_factors: Sequence[float]) -> Any:
    """One explored value.

    * a list (or ``tune.choice`` / ``grid_search``): with ``resample_probability``
      (or when ``value`` is not in it) a new draw from the list, else a move to a
      neighbouring index (the only neighbour at either end): always in the list;
    * a numeric domain: with ``resample_probability`` a new draw, else ``value``
      times a factor drawn from ``perturbation_factors``, clipped to the domain's
      bounds, an int for integer domains, a multiple of ``q`` for quantized ones;
    * a callable or ``sample_from``: with ``resample_probability`` (or when
      ``value`` is not a number) its new value, else the value times a factor
      (ints stay ints).
    """
    resample = rng.random() < resample_probability or not present
    choices = _choices(spec)
    if choices is not None:
        return explore_choice(value, choices, rng, resample)
    if not resample and is_finite_number(value):
        factor = rng.choice(list(perturbation_factors))
        return perturb(value, factor, spec if isinstance(spec, Domain) else None)
    return draw(spec, rng)


def explore_choice(value: Any, choices: Sequence[Any], rng: random.Random, resample: bool) -> Any:
    """A new draw when ``resample`` or ``value`` is not a choice, else a neighbouring choice."""
    if resample or value not in choices:
        return copy.deepcopy(rng.choice(list(choices)))
    if len(choices) == 1:
        return choices[0]
    index = list(choices).index(value)
    step = rng.choice((-1, 1))
    if not 0 <= index + step < len(choices):
        step = -step
    return choices[index + step]


def perturb(value: float, factor: float, domain: Domain | None) -> float | int:
    """``value * factor``, kept inside ``domain`` (bounds, integer-ness, ``q``); ints stay ints."""
    kind = getattr(domain, "kind", None)
    new = value * factor
    if kind == "float":
        new = min(max(new, domain.lower), domain.upper)
        return quantize(new, domain.q, domain.lower, domain.upper) if domain.q is not None else float(new)
    if kind == "int":
        if domain.q is not None:
            new = round(new / domain.q) * domain.q
        return int(min(max(round(new), domain.grid_low), domain.grid_high))
    if kind == "normal" and domain.q is not None:
        return float(f"{round(new / domain.q) * domain.q:.12g}")
    return int(round(new)) if isinstance(value, int) else float(new)


def draw(spec: Any, rng: random.Random) -> Any:
    """A fresh value from a domain (through a numpy generator seeded from ``rng``) or a callable.

    A callable taking one argument gets ``rng`` (reproducible draws); one taking
    none is simply called.
    """
    if isinstance(spec, Domain):
        return spec.sample(np.random.default_rng(rng.getrandbits(63)))
    try:
        takes_rng = bool(inspect.signature(spec).parameters)
    except (TypeError, ValueError):
        takes_rng = False
    return spec(rng) if takes_rng else spec()


def _choices(spec: Any) -> list[Any] | None:
    if isinstance(spec, list):
        return spec
    kind = getattr(spec, "kind", None)
    if kind == "categorical":
        return spec.categories
    if kind == "grid":
        return spec.values
    return None
