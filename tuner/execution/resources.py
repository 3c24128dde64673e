"""What a trial asks for, in one normalized, hashable shape.

``resources_per_trial`` is a dict (one bundle), a list of bundles, a
``PlacementGroupFactory`` (bundles plus a placement strategy), or a callable of
the trial's config returning one of those (a bigger model asks for more).
Workers are pooled by shape, so two trials with the same single-bundle request
share warm actors. A request that the cluster could never hold is rejected
before its trial starts, so it never waits forever.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

_STANDARD = {"cpu", "gpu", "memory"}
_RAY_NAMES = {"cpu": "CPU", "gpu": "GPU", "memory": "memory"}
STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")
_STRATEGY_RULE = {
    "PACK": "bundles packed onto as few nodes as possible",
    "SPREAD": "bundles spread over as many nodes as possible",
    "STRICT_PACK": "all bundles on one node",
    "STRICT_SPREAD": "every bundle on a different node",
}
_SEARCH_STEPS = 20_000  # backtracking budget of the feasibility check; beyond it Ray decides


class PlacementGroupFactory:
    """A trial's gang: resource bundles reserved together, placed by ``strategy``.

    The first bundle holds the trial's own actor; the others are for the workers
    it starts (``tune.distributed`` starts one rank per bundle). Ray reserves all
    bundles atomically, and tasks or actors the trainable starts land in the
    group unless they ask otherwise. Any object with ``bundles`` and
    ``strategy`` attributes (Ray Tune's ``PlacementGroupFactory``) is accepted
    the same way.

    Example::

        tune.run(train, resources_per_trial=tune.PlacementGroupFactory(
            [{"cpu": 1, "gpu": 1}] * 4, strategy="SPREAD"))

    Args:
        bundles: dicts like ``{"cpu": 1, "gpu": 1}``, at least one.
        strategy: ``"PACK"`` (default), ``"SPREAD"``, ``"STRICT_PACK"`` or ``"STRICT_SPREAD"``.
    """

    def __init__(self, bundles: Sequence[Mapping[str, float]], strategy: str = "PACK") -> None:
        self.bundles = [dict(b) for b in bundles] if isinstance(bundles, Sequence) else bundles
        self.strategy = strategy
        normalize_resources(self)  # the checks, with their messages, before anything runs

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, PlacementGroupFactory) and self.bundles == other.bundles
                and self.strategy == other.strategy)

    def __repr__(self) -> str:
        return f"PlacementGroupFactory({self.bundles!r}, strategy={self.strategy!r})"


@dataclasses.dataclass(frozen=True)
class Resources:
    """A normalized resource request.

    ``bundles`` is a tuple of Ray-style bundles (``{"CPU": 1, "GPU": 1}``); one
    bundle is the common case (the actor itself), several mean a placement group
    whose first bundle holds the trial's actor and the rest are for the workers
    the trial starts itself.
    """

    bundles: tuple[tuple[tuple[str, float], ...], ...]
    strategy: str | None = None  # None: a single bundle without a placement group, or PACK for several

    @property
    def head(self) -> dict[str, float]:
        """The bundle the trial's own actor runs in."""
        return dict(self.bundles[0])

    @property
    def uses_placement_group(self) -> bool:
        return len(self.bundles) > 1 or self.strategy is not None

    @property
    def placement_strategy(self) -> str:
        return self.strategy or "PACK"

    def total(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for bundle in self.bundles:
            for key, value in bundle:
                out[key] = out.get(key, 0.0) + value
        return out

    def as_bundles(self) -> list[dict[str, float]]:
        return [dict(b) for b in self.bundles]

    def to_json(self) -> Any:
        """For experiment.json: a bundle list, or ``{"bundles", "strategy"}`` with a strategy."""
        if self.strategy is None:
            return self.as_bundles()
        return {"bundles": self.as_bundles(), "strategy": self.strategy}

    def __str__(self) -> str:
        """``{CPU=1, GPU=1}``; a gang as ``{CPU=1} x2 PACK`` or ``{CPU=1} + {CPU=1, GPU=1} SPREAD``."""
        runs: list[list] = []  # consecutive equal bundles, counted
        for bundle in self.bundles:
            if runs and runs[-1][0] == bundle:
                runs[-1][1] += 1
            else:
                runs.append([bundle, 1])
        text = " + ".join("{" + ", ".join(f"{k}={_fmt(v)}" for k, v in b) + "}" + (f" x{n}" if n > 1 else "")
                          for b, n in runs)
        return f"{text} {self.placement_strategy}" if self.uses_placement_group else text


@dataclasses.dataclass(frozen=True)
class PerTrialResources:
    """``resources_per_trial`` given as a callable: each trial's shape comes from its config.

    Called when the trial is created, and again when a PBT exploit gives it a new
    config: the next launch reserves the new config's shape.
    """

    function: Callable[[dict[str, Any]], Any]

    def resolve(self, config: dict[str, Any]) -> Resources:
        name = getattr(self.function, "__name__", repr(self.function))
        try:
            request = self.function(config)
        except Exception as exc:  # noqa: BLE001 - re-raised with the config that caused it
            raise ValueError(f"`resources_per_trial` ({name}) raised {exc!r} for the config {config!r}; it must "
                             "return a dict, a list of bundles or a PlacementGroupFactory for every config.") from exc
        if _is_per_trial(request):
            raise ValueError(f"`resources_per_trial` ({name}) returned the callable {request!r}; it must return a "
                             "dict, a list of bundles or a PlacementGroupFactory.")
        return normalize_resources(request)

    def to_json(self) -> dict[str, Any]:
        module, qualname = getattr(self.function, "__module__", None), getattr(self.function, "__qualname__", "")
        importable = module and module != "__main__" and "<" not in qualname
        return {"per_trial": f"{module}:{qualname}" if importable else None}

    def __str__(self) -> str:
        return f"per trial ({getattr(self.function, '__name__', self.function)!s})"


ResourceRequest = Resources | PerTrialResources


def resource_request(request: Any) -> ResourceRequest:
    """Check ``resources_per_trial``: a fixed request is normalized now, a callable kept for each config."""
    if _is_per_trial(request):
        return PerTrialResources(request)
    return normalize_resources(request)


TRAINABLE_RESOURCES = "default_resources_per_trial"


def trainable_resources(trainable: Any, resources_per_trial: Any = None) -> Any:
    """What a trial of ``trainable`` asks for: ``resources_per_trial`` when given, else the request the
    trainable carries in its ``default_resources_per_trial`` attribute, else None (one CPU).

    That attribute is the one path for a trainable's own request: ``tune.with_resources`` sets it,
    ``tune.distributed`` and the RLlib adapter set it, and a Trainable class may declare it.
    Wrappers (``tune.with_parameters``) carry it over. ``tune.run``, ``Tuner`` and the sweep-file
    launcher all read it here."""
    if resources_per_trial is not None:
        return resources_per_trial
    return getattr(trainable, TRAINABLE_RESOURCES, None)


def resources_for(request: ResourceRequest, config: dict[str, Any]) -> Resources:
    """The shape of the trial with ``config``."""
    return request.resolve(config) if isinstance(request, PerTrialResources) else request


def resources_worth_showing(shapes: list[Any]) -> bool:
    """A resources column earns its width when trials differ in shape or each is a gang
    (``shapes`` are Resources, or their text as the journal keeps it)."""
    texts = {str(s) for s in shapes if s is not None}
    return len(texts) > 1 or any(t.endswith(STRATEGIES) for t in texts)


def _is_per_trial(request: Any) -> bool:
    # Ray Tune's PlacementGroupFactory is callable too; its bundles make it a fixed request.
    return callable(request) and not isinstance(request, Mapping) and not hasattr(request, "bundles")


def _fmt(value: float) -> str:
    return f"{value:g}" if value < 1e6 else f"{value / 2**30:.1f}GiB"


def normalize_resources(request: Any) -> Resources:
    """Turn a fixed ``resources_per_trial`` into ``Resources``.

    Accepts ``{"cpu": 1, "gpu": 0.5, "memory": bytes, "<custom>": n}``, a list of
    such dicts (a placement group, PACK), a ``PlacementGroupFactory``-like object,
    or its JSON form ``{"bundles": [...], "strategy": "SPREAD"}``. Raises
    ValueError naming the bad key or value.
    """
    if request is None:
        request = {"cpu": 1}
    if isinstance(request, Mapping) and set(request) == {"bundles", "strategy"}:
        return _with_strategy(request["bundles"], request["strategy"])
    if hasattr(request, "bundles") and hasattr(request, "strategy") and not isinstance(request, Mapping):
        return _with_strategy(request.bundles, request.strategy)
    if isinstance(request, Mapping):
        bundles = [request]
    elif isinstance(request, Sequence) and not isinstance(request, (str, bytes)) and request:
        bundles = list(request)
    else:
        raise ValueError(
            f"The value of `resources_per_trial` is {request!r}, but must be a dict like "
            "{'cpu': 1, 'gpu': 0.5} or a non-empty list of such dicts (a placement group)."
        )
    return Resources(tuple(_normalize_bundle(b, i) for i, b in enumerate(bundles)))


def _with_strategy(bundles: Any, strategy: Any) -> Resources:
    if strategy not in STRATEGIES:
        raise ValueError(f"The placement strategy is {strategy!r}, but must be one of {', '.join(STRATEGIES)}.")
    if isinstance(bundles, Mapping) or isinstance(bundles, (str, bytes)) or not isinstance(bundles, Sequence) \
            or not bundles:
        raise ValueError(f"The bundles of the placement group are {bundles!r}, but must be a non-empty list of "
                         "dicts like {'cpu': 1, 'gpu': 1}.")
    return dataclasses.replace(normalize_resources(list(bundles)), strategy=strategy)


def _normalize_bundle(bundle: Any, index: int) -> tuple[tuple[str, float], ...]:
    if not isinstance(bundle, Mapping):
        raise ValueError(f"Bundle {index} of `resources_per_trial` is {bundle!r}, but must be a dict.")
    out: dict[str, float] = {}
    for key, value in bundle.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"`resources_per_trial` has the key {key!r}, but keys must be non-empty strings.")
        lower = key.lower()
        if lower in ("cpus", "num_cpus", "gpus", "num_gpus"):
            raise ValueError(
                f"`resources_per_trial` has the key {key!r}; use 'cpu' or 'gpu' "
                "(keys are 'cpu', 'gpu', 'memory' or a custom resource name)."
            )
        if lower in ("extra_cpu", "extra_gpu", "placement_group", "bundles"):
            raise ValueError(
                f"`resources_per_trial` has the key {key!r}, which is not supported; pass a list of "
                "bundle dicts for a trial that starts its own workers."
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(
                f"The value of resources_per_trial[{key!r}] is {value!r}, but must be a number >= 0."
            )
        name = _RAY_NAMES.get(lower, key) if lower in _STANDARD else key
        if lower == "gpu" and value > 1 and value != int(value):
            raise ValueError(
                f"The value of resources_per_trial['gpu'] is {value!r}, but must be a whole number "
                "when above 1 (fractions pack several trials on one GPU)."
            )
        if value:
            out[name] = float(value)
    if not out and index == 0:
        raise ValueError(
            "`resources_per_trial` asks for nothing; a trial needs at least some CPU, GPU or custom resource."
        )
    return tuple(sorted(out.items()))


def check_feasible(resources: Resources, nodes: list[dict[str, float]]) -> None:
    """Raise ValueError at once when the cluster could never hold the request.

    ``nodes`` is each alive node's total resources. Each bundle must fit some
    node, and the whole gang must fit under its strategy (STRICT_PACK: one node
    holds every bundle; STRICT_SPREAD: each bundle on its own node). Without
    this check such a trial would wait forever for resources that never come.
    """
    for bundle in resources.as_bundles():
        if not any(_fits(bundle, node) for node in nodes):
            short = [k for k, v in bundle.items() if not any(n.get(k, 0.0) + 1e-9 >= v for n in nodes)]
            lacking = f" ({', '.join(short)}: not enough on any node)" if short else ""
            raise ValueError(
                f"The trial resource request {resources} can never be met: no node has "
                f"{_describe(bundle)}{lacking}. The cluster's nodes have: [{_describe_nodes(nodes)}]. "
                "Lower `resources_per_trial`, or add nodes with those resources."
            )
    if resources.uses_placement_group and not _placeable(resources, nodes):
        strategy = resources.placement_strategy
        fix = {"STRICT_PACK": "use strategy PACK, smaller bundles, or a bigger node",
               "STRICT_SPREAD": "use strategy SPREAD, fewer bundles, or add nodes"}.get(
                   strategy, "ask for less, or add nodes")
        raise ValueError(
            f"The trial resource request {resources} can never be met: the cluster cannot hold its "
            f"{len(resources.bundles)} bundles at once with the {strategy} strategy "
            f"({_STRATEGY_RULE[strategy]}). The cluster's nodes have: [{_describe_nodes(nodes)}]. "
            f"Change `resources_per_trial`: {fix}."
        )


def _placeable(resources: Resources, nodes: list[dict[str, float]]) -> bool:
    """Whether some assignment of the bundles to nodes respects capacities and the strategy.

    A small backtracking search (gangs have a few bundles, clusters a few node
    shapes); past its step budget it answers True and leaves the wait to Ray.
    """
    bundles = resources.as_bundles()
    if resources.placement_strategy == "STRICT_PACK":
        bundles = [resources.total()]
    distinct = resources.placement_strategy == "STRICT_SPREAD"
    free = [dict(node) for node in nodes]
    bundles.sort(key=lambda b: -sum(b.values()))
    steps = [0]

    def place(k: int, used: frozenset[int]) -> bool:
        steps[0] += 1
        if k == len(bundles) or steps[0] > _SEARCH_STEPS:
            return True
        for j, node in enumerate(free):
            if (distinct and j in used) or not _fits(bundles[k], node):
                continue
            for key, value in bundles[k].items():
                node[key] = node.get(key, 0.0) - value
            placed = place(k + 1, used | {j})
            for key, value in bundles[k].items():
                node[key] += value
            if placed:
                return True
        return False

    return place(0, frozenset())


def _fits(bundle: Mapping[str, float], node: Mapping[str, float]) -> bool:
    return all(node.get(k, 0.0) + 1e-9 >= v for k, v in bundle.items())


def _describe(bundle: Mapping[str, float]) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in bundle.items())


def _describe_nodes(nodes: list[dict[str, float]]) -> str:
    return "; ".join(
        ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(n.items()) if not k.startswith("node:")
                  and "accelerator_type" not in k and k != "object_store_memory")
        for n in nodes
    )
