"""Schedulers and searchers as JSON, and back: the one place that describes a
component for ``experiment.json`` and rebuilds it for ``tune.resume``.

A component describes itself by its constructor arguments (``get_params``, read
from the constructor's signature as scikit-learn does), so rebuilding is calling
the constructor again. Nested components (``ConcurrencyLimiter(OptunaSearch())``)
are described and rebuilt recursively; a scheduler that holds the sweep's own
searcher (``SearcherPruningScheduler``) records a reference to it. An argument
JSON cannot hold (a function, a sampler instance) is recorded by its repr and
flagged: ``tune.run`` warns at the start and ``tune.resume`` asks for it by name.
"""

from __future__ import annotations

import inspect
from typing import Any
from tuner.import_path import import_object

COMPONENT = "__component__"  # a nested scheduler or searcher
SEARCH_ALG = "__search_alg__"  # the sweep's own searcher (shared, not a copy)
NOT_JSON = "__not_json__"  # an argument JSON cannot hold: its repr, for the message


class NotRebuildableError(ValueError):
    """A recorded component argument that JSON could not hold; the message says what to pass."""


def constructor_params(obj: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The constructor's arguments, read back from the attributes of the same names; a
    ``*name`` argument kept as ``self.name`` is recorded as ``"*name"`` (a list)."""
    out: dict[str, Any] = {}
    for name, param in inspect.signature(type(obj)).parameters.items():
        if param.kind is param.VAR_POSITIONAL and name not in skip and hasattr(obj, name):
            out["*" + name] = list(getattr(obj, name))
            continue
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or name in skip:
            continue
        if not hasattr(obj, name):
            raise AttributeError(f"{type(obj).__name__} does not keep its constructor argument {name!r} as "
                                 f"self.{name}; get_params() reads it there (or override get_params).")
        out[name] = getattr(obj, name)
    return out


def _is_component(value: Any) -> bool:
    """A scheduler or searcher held by another one, known by the contract both bases keep
    (``get_params`` and ``load_state_dict``), so this module never imports the bases that
    import it (that made a circle: components -> schedulers.base -> components)."""
    return not isinstance(value, type) and all(
        callable(getattr(value, name, None)) for name in ("get_params", "state_dict", "load_state_dict"))


def describe(obj: Any, search_alg: Any = None) -> dict[str, Any]:
    """``{"class", "module", "params"}`` for experiment.json; ``search_alg`` is the sweep's
    searcher, recorded as a reference where another component holds it."""
    cls = type(obj)
    return {"class": cls.__name__, "module": cls.__module__,
            "params": {k: _encode(v, search_alg) for k, v in obj.get_params().items()}}


def _encode(value: Any, search_alg: Any) -> Any:
    if search_alg is not None and value is search_alg:
        return {SEARCH_ALG: True}
    if _is_component(value):
        return {COMPONENT: describe(value, search_alg)}
    if isinstance(value, (list, tuple)) and any(_is_component(v) for v in value):
        return [_encode(v, search_alg) for v in value]
    plain = _plain(value)
    return {NOT_JSON: repr(value)} if plain is _NOT_PLAIN else plain


_NOT_PLAIN = object()


def _plain(value: Any) -> Any:
    """``value`` as JSON values (numpy scalars as numbers, tuples as lists), or _NOT_PLAIN."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value  # infinities and NaN too: the project's JSON writes them
    if isinstance(value, (list, tuple)):
        items = [_plain(v) for v in value]
        return _NOT_PLAIN if any(v is _NOT_PLAIN for v in items) else items
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            return _NOT_PLAIN
        items = {k: _plain(v) for k, v in value.items()}
        return _NOT_PLAIN if any(v is _NOT_PLAIN for v in items.values()) else items
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:
        return _plain(item())
    return _NOT_PLAIN


def not_rebuildable(record: dict[str, Any], where: str) -> list[str]:
    """Dotted paths of the arguments in ``record`` that JSON could not hold."""
    out = []
    for key, value in record.get("params", {}).items():
        if isinstance(value, dict) and NOT_JSON in value:
            out.append(f"{where}.{key}")
        elif isinstance(value, dict) and COMPONENT in value:
            out += not_rebuildable(value[COMPONENT], f"{where}.{key}")
    return out


def rebuild(record: dict[str, Any], where: str, search_alg: Any = None) -> Any:
    """The component ``record`` describes, its nested components rebuilt too.

    Args:
        record: ``describe``'s output, as read back from experiment.json.
        where: the ``tune.run`` argument it was (``"scheduler"``, ``"search_alg"``), for messages.
        search_alg: the sweep's searcher, for components that held it.

    Raises:
        NotRebuildableError: an argument was not JSON; the message names it and what to pass.
        ValueError: the record names an argument the constructor does not take (it is never dropped).
    """
    return _rebuild(record, where, where, search_alg)


def _rebuild(record: dict[str, Any], path: str, where: str, search_alg: Any) -> Any:
    cls = import_object(f"{record['module']}:{record['class']}")
    signature = inspect.signature(cls).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.values())
    params, args = {}, []
    for key, value in record.get("params", {}).items():
        if key.startswith("*") and key[1:] in signature:  # the constructor's *args
            args = [_decode(v, f"{path}.{key[1:]}[{i}]", where, search_alg) for i, v in enumerate(value)]
            continue
        if key not in signature and not takes_any:
            raise ValueError(f"experiment.json records {path} argument {key!r}, which {cls.__name__} does not "
                             f"take (it takes {', '.join(signature)}); pass the {where} again: "
                             f"tune.resume(path, {where}=...).")
        params[key] = _decode(value, f"{path}.{key}", where, search_alg)
    return cls(*args, **params)


def _decode(value: Any, path: str, where: str, search_alg: Any) -> Any:
    if isinstance(value, list) and any(isinstance(v, dict) and COMPONENT in v for v in value):
        return [_decode(v, f"{path}[{i}]", where, search_alg) for i, v in enumerate(value)]
    if not isinstance(value, dict) or len(value) != 1:
        return value
    if COMPONENT in value:
        return _rebuild(value[COMPONENT], path, where, search_alg)
    if SEARCH_ALG in value:
        if search_alg is None:
            raise NotRebuildableError(f"{path} was the sweep's searcher; rebuild the search_alg first.")
        return search_alg
    if NOT_JSON in value:
        raise NotRebuildableError(
            f"tune.resume cannot rebuild {path} from experiment.json: it was {value[NOT_JSON]}, which JSON "
            f"does not hold. Pass the {where} again with it: tune.resume(path, {where}=...).")
    return value


def check_state_version(component: Any, state: dict[str, Any], supported: int = 1) -> None:
    """Every ``load_state_dict`` starts here: a snapshot of another format is an error, not a guess."""
    if not isinstance(state, dict) or state.get("version") != supported:
        got = state.get("version") if isinstance(state, dict) else state
        raise ValueError(f"{type(component).__name__} state version {got!r} is not supported (this version reads "
                         f"{supported}); the state.json was written by another version of the tuner.")
