"""Search-space domains: one hyperparameter's set of values, how to draw from
it, and its JSON form. ``tuner.space.config`` builds the ``tune.*`` constructors and
the config resolution on top; everything is re-exported from there.
"""

from __future__ import annotations

import abc
import inspect
import math
from typing import Any, Callable, Sequence

import numpy as np

_DOMAIN_KEY = "__domain__"  # how space_to_json marks a domain (a plain dict may have a "type" key)


# --- domains ----------------------------------------------------------------------------------


class Domain(abc.ABC):
    """One hyperparameter's set of values and how to draw from it.

    ``kind`` ("float", "int", "categorical", "normal", "grid", "function") lets
    adapters and exporters dispatch without importing every class.
    """

    kind: str = ""

    @abc.abstractmethod
    def sample(self, rng: np.random.Generator) -> Any:
        """One value drawn with ``rng`` (the only source of randomness)."""

    @abc.abstractmethod
    def to_json(self) -> dict[str, Any]:
        """A plain JSON description with a ``type`` key; ``domain_from_json`` reads it back."""

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.to_json() == self.to_json()

    def __hash__(self) -> int:
        return hash(repr(self))

    def __repr__(self) -> str:
        fields = {k: v for k, v in self.to_json().items() if k != "type"}
        return f"{self.to_json()['type']}({', '.join(f'{k}={v!r}' for k, v in fields.items())})"


def _check_q(q: Any, name: str = "q") -> None:
    if q is not None and (isinstance(q, bool) or not isinstance(q, (int, float)) or not q > 0):
        raise ValueError(f"The value of `{name}` is {q!r}, but must be `{name} > 0` (or None).")


def _check_bounds(lower: Any, upper: Any, log: bool) -> None:
    for name, value in (("lower", lower), ("upper", upper)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"The value of `{name}` is {value!r}, but must be a finite number.")
    if not lower < upper:
        raise ValueError(f"The value of `lower` is {lower!r}, but must be `lower < upper` (upper={upper!r}).")
    if log and lower <= 0:
        raise ValueError(f"The value of `lower` is {lower!r}, but must be `lower > 0` on a log scale.")


def _clean(x: float) -> float:
    """``3 * 0.1`` -> ``0.3``: drops the representation noise of a multiple of q."""
    return float(f"{x:.12g}")


def quantize(value: float, q: float, lower: float, upper: float) -> float:
    """The multiple of ``q`` nearest to ``value`` that lies in ``[lower, upper]``."""
    k = round(value / q)
    k = min(max(k, math.ceil(lower / q - 1e-9)), math.floor(upper / q + 1e-9))
    return _clean(k * q)


def _has_multiple(q: float, lower: float, upper: float) -> bool:
    return math.ceil(lower / q - 1e-9) <= math.floor(upper / q + 1e-9)


class Float(Domain):
    """A real number in ``[lower, upper)``, uniform or log-uniform, optionally
    rounded to the nearest multiple of ``q`` inside the bounds."""

    kind = "float"

    def __init__(self, lower: float, upper: float, log: bool = False, q: float | None = None) -> None:
        _check_bounds(lower, upper, log)
        _check_q(q)
        if q is not None and not _has_multiple(q, lower, upper):
            raise ValueError(f"The value of `q` is {q!r}, but must have a multiple in [{lower}, {upper}].")
        self.lower, self.upper, self.log, self.q = lower, upper, log, q

    def sample(self, rng: np.random.Generator) -> float:
        if self.log:
            value = math.exp(rng.uniform(math.log(self.lower), math.log(self.upper)))
        else:
            value = rng.uniform(self.lower, self.upper)
        return quantize(value, self.q, self.lower, self.upper) if self.q is not None else float(value)

    def to_json(self) -> dict[str, Any]:
        out = {"type": ("q" if self.q is not None else "") + ("loguniform" if self.log else "uniform"),
               "lower": self.lower, "upper": self.upper}
        if self.q is not None:
            out["q"] = self.q
        return out


class Integer(Domain):
    """An integer between ``lower`` and ``upper`` (excluded unless
    ``upper_inclusive``), uniform or log-uniform, optionally a multiple of ``q``.

    With ``q``, the values are the multiples of ``q`` within the bounds, each
    equally likely (log: the log-uniform draw rounded to the nearest one).
    """

    kind = "int"

    def __init__(self, lower: int, upper: int, log: bool = False, q: int | None = None,
                 upper_inclusive: bool = False) -> None:
        for name, value in (("lower", lower), ("upper", upper)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"The value of `{name}` is {value!r}, but must be an integer.")
        if upper_inclusive and not lower <= upper:
            raise ValueError(f"The value of `lower` is {lower!r}, but must be `lower <= upper` (upper={upper!r}).")
        if not upper_inclusive and not lower < upper:
            raise ValueError(f"The value of `lower` is {lower!r}, but must be `lower < upper` (upper={upper!r}, "
                             "excluded).")
        if log and lower <= 0:
            raise ValueError(f"The value of `lower` is {lower!r}, but must be `lower > 0` on a log scale.")
        if q is not None and (isinstance(q, bool) or not isinstance(q, (int, np.integer)) or q <= 0):
            raise ValueError(f"The value of `q` is {q!r}, but must be an integer `q > 0` (or None).")
        self.lower, self.upper, self.log, self.q, self.upper_inclusive = lower, upper, log, q, upper_inclusive
        if q is not None and self.grid_low > self.high:
            raise ValueError(f"The value of `q` is {q!r}, but must have a multiple in [{lower}, {self.high}].")

    @property
    def high(self) -> int:
        """The largest value that can be drawn."""
        return int(self.upper if self.upper_inclusive else self.upper - 1)

    @property
    def grid_low(self) -> int:
        """The smallest value that can be drawn (the first multiple of ``q`` with ``q``)."""
        return int(self.lower if self.q is None else -(-self.lower // self.q) * self.q)

    @property
    def grid_high(self) -> int:
        return int(self.high if self.q is None else (self.high // self.q) * self.q)

    def sample(self, rng: np.random.Generator) -> int:
        if self.log:
            value = math.exp(rng.uniform(math.log(self.lower), math.log(self.high + 1)))
            if self.q is None:
                return int(min(max(math.floor(value), self.lower), self.high))
            return int(min(max(round(value / self.q) * self.q, self.grid_low), self.grid_high))
        if self.q is None:
            return int(rng.integers(self.lower, self.high + 1))
        return int(rng.integers(self.grid_low // self.q, self.grid_high // self.q + 1) * self.q)

    def to_json(self) -> dict[str, Any]:
        out = {"type": "lograndint" if self.log else "randint", "lower": int(self.lower), "upper": int(self.upper),
               "upper_inclusive": self.upper_inclusive}
        if self.q is not None:
            out["q"] = int(self.q)
        return out


class Normal(Domain):
    """A normal draw with ``mean`` and ``sd``, optionally rounded to a multiple of ``q``."""

    kind = "normal"

    def __init__(self, mean: float = 0.0, sd: float = 1.0, q: float | None = None) -> None:
        if isinstance(mean, bool) or not isinstance(mean, (int, float)) or not math.isfinite(mean):
            raise ValueError(f"The value of `mean` is {mean!r}, but must be a finite number.")
        if isinstance(sd, bool) or not isinstance(sd, (int, float)) or not 0 < sd < math.inf:
            raise ValueError(f"The value of `sd` is {sd!r}, but must be `sd > 0`.")
        _check_q(q)
        self.mean, self.sd, self.q = mean, sd, q

    def sample(self, rng: np.random.Generator) -> float:
        value = float(rng.normal(self.mean, self.sd))
        return _clean(round(value / self.q) * self.q) if self.q is not None else value

    def to_json(self) -> dict[str, Any]:
        out = {"type": "randn", "mean": self.mean, "sd": self.sd}
        if self.q is not None:
            out["q"] = self.q
        return out


class Categorical(Domain):
    """One of ``categories``, each equally likely. A category may itself hold
    domains (a nested space); they are drawn after the category is chosen."""

    kind = "categorical"

    def __init__(self, categories: Sequence[Any]) -> None:
        if isinstance(categories, (str, bytes, dict)) or not isinstance(categories, Sequence) or not categories:
            raise ValueError(f"The value of `categories` is {categories!r}, but must be a non-empty list.")
        self.categories = list(categories)

    def sample(self, rng: np.random.Generator) -> Any:
        return self.categories[int(rng.integers(len(self.categories)))]

    def to_json(self) -> dict[str, Any]:
        return {"type": "choice", "categories": space_to_json(self.categories)}

    def __repr__(self) -> str:
        return f"choice({self.categories!r})"


class Grid(Domain):
    """Every one of ``values``, in order: expanded by ``generate_variants``, never sampled."""

    kind = "grid"

    def __init__(self, values: Sequence[Any]) -> None:
        if isinstance(values, (str, bytes, dict)) or not isinstance(values, Sequence) or not values:
            raise ValueError(f"The value of `values` is {values!r}, but must be a non-empty list.")
        self.values = list(values)

    def sample(self, rng: np.random.Generator) -> Any:
        raise ValueError("A grid_search is expanded by generate_variants, it cannot be sampled; "
                         "use tune.choice for a random pick.")

    def to_json(self) -> dict[str, Any]:
        return {"type": "grid_search", "values": space_to_json(self.values)}

    def __repr__(self) -> str:
        return f"grid_search({self.values!r})"


class Spec:
    """What a ``sample_from`` function receives: ``spec.config`` is the config
    resolved so far (``spec.config["a"]`` and ``spec.config.a`` both work),
    ``spec.rng`` the sweep's generator, for draws that stay reproducible."""

    def __init__(self, config: Any, rng: np.random.Generator) -> None:
        self.config = config
        self.rng = rng


class Function(Domain):
    """A value computed by ``fn(spec)`` (or ``fn()``) after every other domain
    of the config is resolved."""

    kind = "function"

    def __init__(self, fn: Callable[..., Any]) -> None:
        if not callable(fn):
            raise ValueError(f"The value of `fn` is {fn!r}, but must be callable.")
        self.fn = fn

    def sample(self, rng: np.random.Generator, spec: Spec | None = None) -> Any:
        try:
            takes_spec = bool(inspect.signature(self.fn).parameters)
        except (TypeError, ValueError):
            takes_spec = True
        return self.fn(spec if spec is not None else Spec(_AttrDict(), rng)) if takes_spec else self.fn()

    def to_json(self) -> dict[str, Any]:
        name = getattr(self.fn, "__qualname__", None)
        module = getattr(self.fn, "__module__", None)
        return {"type": "sample_from", "repr": f"{module}.{name}" if name and module else repr(self.fn)}

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.fn is self.fn

    def __repr__(self) -> str:
        return f"sample_from({self.to_json()['repr']})"

    def __hash__(self) -> int:
        return hash(id(self.fn))


class _Unavailable:
    """Stands for a ``sample_from`` function read back from JSON: code is not stored."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __call__(self, spec: Any = None) -> Any:
        raise ValueError(f"The sample_from function {self.text} was read back from JSON, where functions are "
                         "not stored; pass the config with the function again.")

    def __repr__(self) -> str:
        return self.text


def domain_from_json(d: dict[str, Any]) -> Domain:
    """The Domain that ``Domain.to_json`` described."""
    kind = d.get("type")
    if kind in ("uniform", "quniform", "loguniform", "qloguniform"):
        return Float(d["lower"], d["upper"], log="log" in kind, q=d.get("q"))
    if kind in ("randint", "lograndint"):
        return Integer(d["lower"], d["upper"], log=kind == "lograndint", q=d.get("q"),
                       upper_inclusive=d.get("upper_inclusive", False))
    if kind == "randn":
        return Normal(d["mean"], d["sd"], q=d.get("q"))
    if kind == "choice":
        return Categorical(space_from_json(d["categories"]))
    if kind == "grid_search":
        return Grid(space_from_json(d["values"]))
    if kind == "sample_from":
        return Function(_Unavailable(d.get("repr", "?")))
    raise ValueError(f"The value of `type` is {kind!r}, but must be one of uniform, quniform, loguniform, "
                     "qloguniform, randint, lograndint, randn, choice, grid_search, sample_from.")




# --- JSON form of a whole space -----------------------------------------------------------------


def space_to_json(config: Any) -> Any:
    """``config`` with every Domain replaced by ``{"__domain__": domain.to_json()}``;
    constants are kept as they are (for experiment.json)."""
    if isinstance(config, Domain):
        return {_DOMAIN_KEY: config.to_json()}
    if isinstance(config, dict):
        return {k: space_to_json(v) for k, v in config.items()}
    if isinstance(config, (list, tuple)):
        return [space_to_json(v) for v in config]
    return config


def space_from_json(obj: Any) -> Any:
    """The config that ``space_to_json`` wrote (tuples come back as lists;
    ``sample_from`` functions as placeholders that raise when called)."""
    if isinstance(obj, dict):
        if len(obj) == 1 and _DOMAIN_KEY in obj:
            return domain_from_json(obj[_DOMAIN_KEY])
        return {k: space_from_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [space_from_json(v) for v in obj]
    return obj


# --- what sample_from functions see -------------------------------------------------------------


class NotResolvedYet(Exception):
    """Raised inside a sample_from function that reads a value still to be computed."""


PENDING = object()  # marks a sample_from value not computed yet


class _AttrDict(dict):
    """A dict whose keys read as attributes too (``spec.config.opt.lr``); reading
    a value another sample_from function has not computed yet defers the caller."""

    def __getitem__(self, key: Any) -> Any:
        value = super().__getitem__(key)
        if value is PENDING:
            raise NotResolvedYet(key)
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        return self[key] if key in self else default

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class _PendingList(list):
    def __getitem__(self, index: Any) -> Any:
        value = super().__getitem__(index)
        if value is PENDING:
            raise NotResolvedYet(index)
        return value


def view(config: Any) -> Any:
    """The read-only-by-convention copy of a partly resolved config given to ``spec.config``."""
    if isinstance(config, dict):
        return _AttrDict({k: view(v) for k, v in config.items()})
    if isinstance(config, list):
        return _PendingList(view(v) for v in config)
    return config
