"""What a trial asks for, in one normalized, hashable shape.

Workers are pooled by shape, so two trials with the same request share warm
actors. A request that no node could ever hold is rejected before the sweep.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

_STANDARD = {"cpu", "gpu", "memory"}
_RAY_NAMES = {"cpu": "CPU", "gpu": "GPU", "memory": "memory"}


@dataclasses.dataclass(frozen=True)
class Resources:
    """A normalized resource request.

    ``bundles`` is a tuple of Ray-style bundles (``{"CPU": 1, "GPU": 1}``); one
    bundle is the common case (the actor itself), several mean a placement group
    whose first bundle holds the trial's actor and the rest are for the workers
    the trial starts itself.
    """

    bundles: tuple[tuple[tuple[str, float], ...], ...]

    @property
    def head(self) -> dict[str, float]:
        """The bundle the trial's own actor runs in."""
        return dict(self.bundles[0])

    @property
    def uses_placement_group(self) -> bool:
        return len(self.bundles) > 1

    def total(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for bundle in self.bundles:
            for key, value in bundle:
                out[key] = out.get(key, 0.0) + value
        return out

    def as_bundles(self) -> list[dict[str, float]]:
        return [dict(b) for b in self.bundles]

    def __str__(self) -> str:
        parts = [", ".join(f"{k}={_fmt(v)}" for k, v in b) for b in self.bundles]
        return " + ".join(f"{{{p}}}" for p in parts)


def _fmt(value: float) -> str:
    return f"{value:g}" if value < 1e6 else f"{value / 2**30:.1f}GiB"


def normalize_resources(request: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None) -> Resources:
    """Turn ``resources_per_trial`` into ``Resources``.

    Accepts ``{"cpu": 1, "gpu": 0.5, "memory": bytes, "<custom>": n}`` or a list of
    such dicts (a placement group). Raises ValueError naming the bad key or value.
    """
    if request is None:
        request = {"cpu": 1}
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
    """Raise ValueError at once when no node could ever hold a bundle of the request.

    ``nodes`` is each alive node's total resources. Without this check such a
    trial would wait forever for resources that never come.
    """
    for bundle in resources.as_bundles():
        if not any(all(node.get(k, 0.0) + 1e-9 >= v for k, v in bundle.items()) for node in nodes):
            have = "; ".join(
                ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(n.items()) if not k.startswith("node:")
                          and "accelerator_type" not in k and k != "object_store_memory")
                for n in nodes
            )
            short = [k for k, v in bundle.items() if not any(n.get(k, 0.0) + 1e-9 >= v for n in nodes)]
            lacking = f" ({', '.join(short)}: not enough on any node)" if short else ""
            raise ValueError(
                f"The trial resource request {resources} can never be met: no node has "
                f"{', '.join(f'{k}={_fmt(v)}' for k, v in bundle.items())}{lacking}. The cluster's nodes have: "
                f"[{have}]. Lower `resources_per_trial`, or add nodes with those resources."
            )
