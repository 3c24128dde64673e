"""The search space: domains (``tune.uniform``, ``tune.choice``...) and how a
config holding them becomes concrete trial configs.

A config is a nested structure of dicts and lists mixing constants and
``Domain`` objects (a tuple is a constant, like any other value). ``generate_variants`` expands ``grid_search`` as a
cross product and samples every other domain, ``resolve`` draws one sample.
Every draw comes from the ``numpy.random.Generator`` handed in, never from a
global RNG, so the same seed always gives the same sequence of configs.

    >>> import numpy as np
    >>> space = {"lr": loguniform(1e-4, 1e-1), "layers": grid_search([2, 3])}
    >>> [c["layers"] for c in generate_variants(space, 2, np.random.default_rng(0))]
    [2, 3, 2, 3]
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from tuner.space.domains import (
    PENDING,
    Categorical,
    Domain,
    Float,
    Function,
    Grid,
    Integer,
    Normal,
    NotResolvedYet,
    Spec,
    domain_from_json,
    space_from_json,
    space_to_json,
    view,
)

Path = tuple  # dict keys and list indexes from the root of the config


# --- constructors (re-exported as tune.*) -------------------------------------------------------


def uniform(lower: float, upper: float) -> Float:
    """A real number drawn uniformly from ``[lower, upper)``."""
    return Float(lower, upper)


def quniform(lower: float, upper: float, q: float) -> Float:
    """``uniform`` rounded to the nearest multiple of ``q`` within the bounds."""
    return Float(lower, upper, q=q)


def loguniform(lower: float, upper: float, base: float = 10) -> Float:
    """A real number whose logarithm is uniform in ``[log lower, log upper)``.

    ``base`` is checked for compatibility but does not change the distribution:
    a log-uniform law is the same in every base.
    """
    if isinstance(base, bool) or not isinstance(base, (int, float)) or base <= 0 or base == 1:
        raise ValueError(f"The value of `base` is {base!r}, but must be `base > 0` and `base != 1`.")
    return Float(lower, upper, log=True)


def qloguniform(lower: float, upper: float, q: float) -> Float:
    """``loguniform`` rounded to the nearest multiple of ``q`` within the bounds."""
    return Float(lower, upper, log=True, q=q)


def randn(mean: float = 0.0, sd: float = 1.0) -> Normal:
    """A normal draw with ``mean`` and standard deviation ``sd``."""
    return Normal(mean, sd)


def randint(lower: int, upper: int) -> Integer:
    """An integer in ``[lower, upper)`` (upper excluded, like ``range``)."""
    return Integer(lower, upper)


def qrandint(lower: int, upper: int, q: int = 1) -> Integer:
    """A multiple of ``q`` in ``[lower, upper]`` (upper included)."""
    return Integer(lower, upper, q=q, upper_inclusive=True)


def lograndint(lower: int, upper: int) -> Integer:
    """An integer in ``[lower, upper)`` drawn on a log scale (upper excluded)."""
    return Integer(lower, upper, log=True)


def qrandn(mean: float, sd: float, q: float) -> Normal:
    """``randn`` rounded to the nearest multiple of ``q``."""
    return Normal(mean, sd, q=q)


def qlograndint(lower: int, upper: int, q: int) -> Integer:
    """An integer in ``[lower, upper]`` (upper included) drawn on a log scale, rounded to a multiple of ``q``."""
    return Integer(lower, upper, log=True, q=q, upper_inclusive=True)


def choice(categories: Sequence[Any]) -> Categorical:
    """One of ``categories``, each equally likely."""
    return Categorical(categories)


def grid_search(values: Sequence[Any]) -> Grid:
    """Every one of ``values``: the grids of a config expand as a cross product."""
    return Grid(values)


def sample_from(fn: Callable[..., Any]) -> Function:
    """A value computed by ``fn(spec)`` (or ``fn()``) from the rest of the config.

    ``spec.config`` is the config with every other domain already drawn, read
    as ``spec.config["a"]["b"]`` or ``spec.config.a.b``; ``spec.rng`` is the
    sweep's generator, for draws that stay reproducible. sample_from values are
    computed last, in config order, except that one reading another that is not
    computed yet waits for it (dependency order); a cycle is a ValueError.

        >>> import numpy as np
        >>> space = {"width": grid_search([4, 8]), "hidden": sample_from(lambda spec: spec.config.width * 2)}
        >>> [c["hidden"] for c in generate_variants(space, 1, np.random.default_rng(0))]
        [8, 16]
    """
    return Function(fn)




# --- walking and resolving configs --------------------------------------------------------------


def as_domain(node: Any) -> Domain | None:
    """A Domain, or the Grid that a literal ``{"grid_search": [...]}`` dict stands for; None for a constant."""
    if isinstance(node, Domain):
        return node
    if isinstance(node, dict) and len(node) == 1 and "grid_search" in node:
        return Grid(node["grid_search"])
    return None


_as_domain = as_domain


def walk(config: Any) -> list[tuple[Path, Domain]]:
    """Every domain of ``config`` with its path (dict keys, list indexes), depth
    first in config order. Domains inside a ``choice``'s categories belong to
    that choice and are not listed."""
    out: list[tuple[Path, Domain]] = []

    def visit(node: Any, path: Path) -> None:
        domain = _as_domain(node)
        if domain is not None:
            out.append((path, domain))
        elif isinstance(node, dict):
            for key, value in node.items():
                visit(value, path + (key,))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                visit(value, path + (index,))

    visit(config, ())
    return out


def constants(config: Any) -> list[tuple[Path, Any]]:
    """Every leaf of ``config`` that is not a domain, with its path (what workers receive as is)."""
    out: list[tuple[Path, Any]] = []

    def visit(node: Any, path: Path) -> None:
        if _as_domain(node) is not None:
            return
        if isinstance(node, dict) and node:
            for key, value in node.items():
                visit(value, path + (key,))
        elif isinstance(node, list) and node:
            for index, value in enumerate(node):
                visit(value, path + (index,))
        else:
            out.append((path, node))

    visit(config, ())
    return out


def check_keys(config: Any, path: Path = ()) -> None:
    """Refuse a key holding "/": nested keys are joined with "/" (tables, the dataframe's
    ``config/a/b`` columns, TensorBoard, searchers' parameter names), so ``{"e/f": 1}`` and
    ``{"e": {"f": 2}}`` would be one parameter."""
    if _as_domain(config) is not None:
        return
    if isinstance(config, dict):
        for key, value in config.items():
            if isinstance(key, str) and "/" in key:
                where = f" (under {path_name(path)!r})" if path else ""
                raise ValueError(
                    f"The config key {key!r}{where} contains '/', which the tuner uses to join nested keys: it "
                    f"would collide with {{{key.split('/')[0]!r}: {{{'/'.join(key.split('/')[1:])!r}: ...}}}}. "
                    f"Rename it (for example {key.replace('/', '_')!r}) or nest it.")
            check_keys(value, path + (key,))
    elif isinstance(config, list):
        for index, value in enumerate(config):
            check_keys(value, path + (index,))


def has_domains(config: Any) -> bool:
    """True when ``config`` holds at least one domain (or literal grid)."""
    return bool(walk(config))


def flatten_dict(d: dict[str, Any], sep: str = "/") -> dict[str, Any]:
    """``{"opt": {"lr": 0.1}}`` -> ``{"opt/lr": 0.1}`` (for display and TensorBoard);
    lists and empty dicts stay values."""
    out: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, dict) and value:
            for sub, inner in flatten_dict(value, sep).items():
                out[f"{key}{sep}{sub}"] = inner
        else:
            out[str(key)] = value
    return out


def values_differ(a: Any, b: Any) -> bool:
    """``a != b`` for any two values, arrays included (their ``!=`` is elementwise)."""
    if a is b:
        return False
    try:
        return bool(a != b)
    except (TypeError, ValueError):  # an array's elementwise result has no single truth value
        return repr(a) != repr(b)


def config_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The keys (nested ones as ``"a/b"``) whose value differs: ``(old values, new values)``."""
    flat_old, flat_new = flatten_dict(dict(old)), flatten_dict(dict(new))
    keys = [k for k in dict.fromkeys([*flat_old, *flat_new]) if values_differ(flat_old.get(k), flat_new.get(k))]
    return {k: flat_old.get(k) for k in keys}, {k: flat_new.get(k) for k in keys}


def path_name(path: Path) -> str:
    """``("opt", "lr")`` -> ``"opt/lr"``, the name errors use for a parameter."""
    return "/".join(str(p) for p in path) or "<root>"


def _copy(node: Any) -> Any:
    """A copy of the dict/list structure (so the variant can be filled in); domains and constants shared."""
    if _as_domain(node) is not None:
        return node
    if isinstance(node, dict):
        return {k: _copy(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_copy(v) for v in node]
    return node


def assign(config: Any, path: Path, value: Any) -> Any:
    """Sets ``value`` at ``path`` in place, creating missing dict keys on the way, and returns
    the config (the value itself for the root)."""
    if not path:
        return value
    node = config
    for key in path[:-1]:
        node = node.setdefault(key, {}) if isinstance(node, dict) else node[key]
    node[path[-1]] = value
    return config


def fill(config: Any, values: dict[Path, Any]) -> Any:
    """A copy of ``config`` with the value at each path replaced: how a searcher
    that draws the domains itself turns its draws into a trial config."""
    out = _copy(config)
    for path, value in values.items():
        out = assign(out, path, value)
    return out


def merge(config: Any, point: Any) -> Any:
    """``point`` laid over ``config``, nested dicts merged key by key: a partial
    ``points_to_evaluate`` entry keeps every domain it does not set."""
    if isinstance(point, dict) and isinstance(config, dict) and _as_domain(config) is None:
        out = _copy(config)
        for key, value in point.items():
            out[key] = merge(config[key], value) if key in config else value
        return out
    return point


def lookup(point: Any, path: Path) -> tuple[bool, Any]:
    """``(True, value)`` when ``point`` (a nested dict/list) has a value at ``path``."""
    node = point
    for key in path:
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and -len(node) <= key < len(node):
            node = node[key]
        else:
            return False, None
    return True, node


def unflatten(flat: dict[str, Any], sep: str = "/") -> dict[str, Any]:
    """``{"opt/lr": 0.1}`` -> ``{"opt": {"lr": 0.1}}`` (the inverse of ``flatten_dict``)."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        parts = str(key).split(sep)
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def _grid_combinations(grids: list[tuple[Path, Domain]]) -> list[tuple[Any, ...]]:
    """The cross product of the grids' values, the first grid varying fastest (as Ray Tune)."""
    combos: list[tuple[Any, ...]] = [()]
    for _, grid in grids:
        combos = [combo + (value,) for value in grid.values for combo in combos]
    return combos


def _sample_rest(config: Any, rng: np.random.Generator) -> Any:
    """Draws every domain but the sample_from ones, in config order, then computes those.

    A drawn value may hold domains itself (a ``choice`` of sub-spaces): they are
    drawn in a further pass. sample_from functions run last, in config order; one
    that reads a value another function has not computed yet is retried after it
    (dependency order), and a cycle is a ValueError naming the parameters.
    """
    while True:
        todo = [(p, d) for p, d in walk(config) if d.kind != "function"]
        if not todo:
            break
        for path, domain in todo:
            if domain.kind == "grid":
                raise ValueError(f"The parameter `{path_name(path)}` is a grid_search inside a sampled value "
                                 "(a choice category); only top-level grids expand. Use tune.choice there.")
            config = assign(config, path, _copy(domain.sample(rng)))
    pending = [(p, d) for p, d in walk(config) if d.kind == "function"]
    for path, _ in pending:
        config = assign(config, path, PENDING)
    while pending:
        deferred = []
        for path, function in pending:
            try:
                value = function.sample(rng, Spec(view(config), rng))
            except NotResolvedYet:
                deferred.append((path, function))
                continue
            config = assign(config, path, value)
        if len(deferred) == len(pending):
            names = ", ".join(f"`{path_name(p)}`" for p, _ in deferred)
            raise ValueError(f"The sample_from parameters {names} read each other in a cycle; "
                             "at least one of them must not depend on the others.")
        pending = deferred
    return config


def generate_variants(config: Any, num_samples: int, rng: np.random.Generator, start: int = 0) -> Iterator[Any]:
    """Concrete configs: the grid's cross product, repeated ``num_samples`` times.

    Each variant samples every other domain anew; with the same ``rng`` seed the
    sequence is the same every time. With no grid, this yields ``num_samples``
    random configs. ``start``: begin at that variant, drawing nothing for the ones
    before it (``rng`` is already where they left it: a resumed stream).
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples < 0:
        raise ValueError(f"The value of `num_samples` is {num_samples!r}, but must be an integer `num_samples >= 0`.")
    grids = [(p, d) for p, d in walk(config) if d.kind == "grid"]
    combos = _grid_combinations(grids)
    first_round, first_combo = divmod(start, len(combos))
    for round_ in range(first_round, num_samples):
        for combo in combos[first_combo if round_ == first_round else 0:]:
            variant = _copy(config)
            for (path, _), value in zip(grids, combo):
                variant = assign(variant, path, _copy(value))
            yield _sample_rest(variant, rng)


def count_variants(config: Any) -> int:
    """How many configs one pass over the grid gives (1 without grids)."""
    return len(_grid_combinations([(p, d) for p, d in walk(config) if d.kind == "grid"]))


def resolve(config: Any, rng: np.random.Generator) -> Any:
    """One concrete config drawn from ``config``; a ``grid_search`` is an error
    (it has no single value: use ``generate_variants``)."""
    for path, domain in walk(config):
        if domain.kind == "grid":
            raise ValueError(f"The parameter `{path_name(path)}` is a grid_search, which resolve() cannot draw "
                             "one value from; use generate_variants, or tune.choice for a random pick.")
    return _sample_rest(_copy(config), rng)


__all__ = [
    "Categorical", "Domain", "Float", "Function", "Grid", "Integer", "Normal", "Spec", "as_domain", "choice",
    "count_variants", "domain_from_json", "fill", "flatten_dict", "generate_variants", "grid_search", "has_domains",
    "lograndint", "loguniform", "lookup", "merge", "path_name", "qloguniform", "qrandint", "quniform", "randint",
    "randn", "resolve", "sample_from", "space_from_json", "space_to_json", "uniform", "unflatten", "walk",
]
