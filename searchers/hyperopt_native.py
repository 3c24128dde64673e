"""Native Hyperopt spaces (``hp.uniform("lr", ...)``) read as ``tune.*`` domains.

Ray Tune's ``HyperOptSearch(space)`` takes a space written with ``hp.*``; this
reads such a space into the tuner's own domains, so the rest of the searcher
(points to evaluate, resume, the journal) has one kind of space to handle.
Labels are dropped: the dict key names a parameter, as in ``tune.*`` spaces.
"""

from __future__ import annotations

import math
from typing import Any

from tuner.space import config as sp
from tuner.space.domains import Float, Integer, Normal


def is_native(node: Any) -> bool:
    """Whether ``node`` is (or holds) a Hyperopt ``pyll`` expression."""
    if type(node).__module__.startswith("hyperopt.pyll"):
        return True
    if isinstance(node, dict):
        return any(is_native(v) for v in node.values())
    if isinstance(node, (list, tuple)):
        return any(is_native(v) for v in node)
    return False


def from_native(node: Any, key: str = "space") -> Any:
    """The same space with every ``hp.*`` expression replaced by its ``tune.*`` domain."""
    if isinstance(node, dict):
        return {k: from_native(v, f"{key}[{k!r}]") for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return type(node)(from_native(v, f"{key}[{i}]") for i, v in enumerate(node))
    if not type(node).__module__.startswith("hyperopt.pyll"):
        return node
    return _domain(node, key)


def _literal(node: Any) -> Any:
    return node.obj if node.name == "literal" else node


def _domain(node: Any, key: str) -> Any:
    name = node.name
    if name == "literal":
        return node.obj
    if name in ("float", "int") and node.pos_args and node.pos_args[0].name in ("float", "hyperopt_param"):
        inner = node.pos_args[0]
        if inner.name == "float":  # hp.uniformint: int(float(quniform(low, high, q=1)))
            law, args, kwargs = _param(inner.pos_args[0], key)
            if law == "quniform":
                return Integer(int(args[0]), int(args[1]), q=int(kwargs.get("q", args[2] if len(args) > 2 else 1)),
                               upper_inclusive=True)
            raise _unsupported(key, law)
        law, args, kwargs = _param(inner, key)
        return _law(law, list(args) + [kwargs[k] for k in ("q",) if k in kwargs], key)
    if name == "hyperopt_param":
        law, args, kwargs = _param(node, key)
        return _law(law, list(args), key)
    if name == "switch":  # hp.choice(label, options)
        return sp.choice([from_native(_literal(option), f"{key}/{i}") for i, option in enumerate(node.pos_args[1:])])
    if name == "dict":
        return {k: from_native(_literal(v), f"{key}[{k!r}]") for k, v in node.named_args}
    if name == "pos_args":
        return [from_native(_literal(v), f"{key}[{i}]") for i, v in enumerate(node.pos_args)]
    raise _unsupported(key, name)


def _param(node: Any, key: str) -> tuple[str, list[Any], dict[str, Any]]:
    if node.name != "hyperopt_param":
        raise _unsupported(key, node.name)
    law = node.pos_args[1]
    args = [_literal(a) for a in law.pos_args]
    kwargs = {k: _literal(v) for k, v in law.named_args}
    return law.name, args, kwargs


def _law(law: str, args: list[Any], key: str) -> Any:
    if law == "uniform":
        return Float(args[0], args[1])
    if law == "quniform":
        return Float(args[0], args[1], q=args[2])
    if law == "loguniform":  # hyperopt's bounds are natural logs
        return Float(math.exp(args[0]), math.exp(args[1]), log=True)
    if law == "qloguniform":
        return Float(math.exp(args[0]), math.exp(args[1]), log=True, q=args[2])
    if law == "normal":
        return Normal(args[0], args[1])
    if law == "qnormal":
        return Normal(args[0], args[1], q=args[2])
    if law == "randint":  # hp.randint(label, upper) or (label, low, high), upper excluded
        low, high = (0, args[0]) if len(args) == 1 else (args[0], args[1])
        return Integer(int(low), int(high))
    raise _unsupported(key, law)


def _unsupported(key: str, law: str) -> ValueError:
    return ValueError(f"The parameter {key} is a Hyperopt `{law}` expression, which HyperOptSearch cannot read; "
                      "write it with tune.* domains instead (tune.uniform, tune.loguniform, tune.choice, "
                      "tune.randint, tune.randn and their q* variants).")
