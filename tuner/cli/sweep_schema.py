"""The sweep file: YAML (safe loader), checked against a schema, turned into ``tune.run`` arguments.

    name: mlp-asha
    trainable: examples.mlp:train        # module:function, imported from the working directory
    metric: acc
    mode: max
    num_samples: 32
    config:
      lr: {loguniform: [1.0e-4, 1.0e-1]}
      layers: {choice: [2, 3, 4]}
    scheduler: {asha: {max_t: 20, grace_period: 1, reduction_factor: 3}}
    search: {optuna: {seed: 0}}

Every error names the file, the key path and what was expected, e.g.
``sweep.yaml: scheduler.asha.reduction_factor: expected a number > 1, got "three"``.
Unknown keys are errors, never silently ignored. Nothing here imports the
trainable or starts Ray: ``tuner.cli.main`` does that.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tuner.cli.sweep_objects import (  # noqa: F401 - DOMAINS, SCHEDULERS, SEARCHERS re-exported
    DOMAINS, SCHEDULERS, SEARCHERS, SweepError, build, show, to_space)


class _Loader(yaml.SafeLoader):
    """The safe loader, also reading ``1e-4`` as a float (YAML 1.1 wants ``1.0e-4``)."""


class DuplicateKeyError(yaml.YAMLError):
    """The same key twice in one mapping: YAML would silently keep the last value."""


def _mapping_without_duplicates(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    first_line: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in first_line:
            raise DuplicateKeyError(f"the key {key!r} appears twice in one mapping, on line {first_line[key]} and "
                                    f"line {line}; YAML would silently keep the last one. Remove one of them.")
        first_line[key] = line
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d[\d_]*)?(?:\.[\d_]*)?[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def _str_or_list(value: Any, what: str, allowed: tuple[str, ...] | None = None) -> Any:
    items = value if isinstance(value, list) else [value]
    if value is None or (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
        pass
    elif not isinstance(value, str):
        raise ValueError(f"expected {what} or a list of them, got {show(value)}")
    for item in items:
        if allowed is not None and item is not None and item not in allowed:
            raise ValueError(f"expected {' or '.join(map(show, allowed))}, got {show(item)}")
    return value


class SweepFile(BaseModel):
    """The schema of ``sweep.yaml``: the keys of ``tune.run`` plus ``trainable`` and ``search``.

    Strict: a string is never read as a number (``max_t: "20"`` is an error).
    ``scheduler`` and ``search`` are checked by ``build`` against the classes'
    own constructors, ``config`` by ``to_space``.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    trainable: str
    name: str | None = None
    metric: Any = None
    mode: Any = None
    num_samples: int = Field(default=1, ge=1)
    config: dict[str, Any] = Field(default_factory=dict)
    scheduler: Any = None
    search: Any = None
    resources_per_trial: dict[str, float] | list[dict[str, float]] | None = None
    stop: dict[str, float] | None = None
    max_concurrent_trials: int | None = Field(default=None, ge=1)
    time_budget_s: float | None = Field(default=None, gt=0)
    max_failures: int = Field(default=0, ge=0)
    seed: int | None = None
    checkpoint_freq: int = Field(default=0, ge=0)
    checkpoint_at_end: bool = False
    keep_checkpoints_num: int | None = Field(default=None, ge=1)
    checkpoint_score_attr: str | None = None
    log_to_tensorboard: bool = True
    reuse_actors: bool = True
    in_process: bool = False  # trials in threads of the driver, no Ray (docs/in_process.md)
    storage_path: str | None = None
    runtime_env: dict[str, Any] | None = None  # Ray's: working_dir, pip, py_modules, env_vars

    @field_validator("trainable")
    @classmethod
    def _import_path(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", value):
            raise ValueError(f"expected an import path 'package.module:function', got {show(value)}")
        return value

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: Any) -> Any:
        return _str_or_list(value, "a result key (string)")

    @field_validator("mode")
    @classmethod
    def _mode(cls, value: Any) -> Any:
        return _str_or_list(value, '"min" or "max"', allowed=("min", "max"))

    @field_validator("scheduler", "search")
    @classmethod
    def _component(cls, value: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        if not isinstance(value, dict) or len(value) != 1:
            raise ValueError(f"expected a name, or one name mapped to its parameters, got {show(value)}")
        params = next(iter(value.values()))
        if params is not None and not isinstance(params, dict):
            raise ValueError(f"expected the parameters as a mapping, got {show(params)}")
        return value


# --- reading -----------------------------------------------------------------------------------


def read_yaml(path: str) -> dict[str, Any]:
    """The file's top-level mapping; errors name the file."""
    try:
        with open(path, encoding="utf-8") as f:
            raw = yaml.load(f, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader subclass
    except FileNotFoundError:
        raise SweepError(f"{path}: no such sweep file") from None
    except OSError as exc:
        raise SweepError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except DuplicateKeyError as exc:
        raise SweepError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise SweepError(f"{path}: not valid YAML: {exc}") from None
    if raw is None:
        raise SweepError(f"{path}: the file is empty; expected a mapping of sweep settings (trainable, config...)")
    if not isinstance(raw, dict):
        raise SweepError(f"{path}: expected a mapping of sweep settings at the top, got {show(raw)}")
    return raw


def load_sweep(path: str, overrides: list[str] = ()) -> tuple[SweepFile, dict[str, Any]]:
    """Read, override (``key.path=value``), validate; returns the model and ``tune.run`` kwargs."""
    raw = read_yaml(path)
    for item in overrides:
        apply_override(raw, item)
    return validate(raw, path)


def apply_override(raw: dict[str, Any], item: str) -> None:
    """``--set scheduler.asha.max_t=30``: the value is read as YAML (``--set config.lr='{choice: [0.1, 0.2]}'``)."""
    key, sep, text = item.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(re.fullmatch(r"[\w-]+", p) for p in parts):
        raise SweepError(f"--set {item}: expected key.path=value, e.g. --set num_samples=8 or "
                         "--set scheduler.asha.max_t=30")
    try:
        value = yaml.load(text, Loader=_Loader) if text.strip() else None  # noqa: S506
    except yaml.YAMLError as exc:
        raise SweepError(f"--set {item}: the value is not valid YAML: {exc}") from None
    node = raw
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif isinstance(child, str) and i == 0 and part in ("scheduler", "search"):
            child = node[part] = {child: {}}  # `scheduler: asha` plus `--set scheduler.asha.max_t=9`
        if not isinstance(child, dict):
            raise SweepError(f"--set {item}: {'.'.join(parts[:i + 1])} is {show(child)}, not a mapping")
        node = child
    node[parts[-1]] = value


# --- validating ----------------------------------------------------------------------------------


def validate(raw: Mapping[str, Any], label: str) -> tuple[SweepFile, dict[str, Any]]:
    """The checked sweep and the ``tune.run`` keyword arguments it stands for (scheduler and
    searcher built, domains made); ``label`` starts every error message."""
    try:
        sweep = SweepFile.model_validate(dict(raw))
    except ValidationError as exc:
        raise SweepError("\n".join(_describe(label, err) for err in _one_branch(exc.errors(), raw))) from None
    kwargs = {k: v for k, v in sweep.model_dump(exclude={"trainable", "config", "scheduler", "search"}).items()
              if v is not None}
    if sweep.stop is not None:  # checked as numbers; kept as written, so 20 stays 20 in experiment.json
        kwargs["stop"] = dict(raw["stop"])
    kwargs["config"] = to_space(sweep.config, label, "config")
    if sweep.scheduler is not None:
        kwargs["scheduler"] = build("scheduler", sweep.scheduler, SCHEDULERS, label)
    if sweep.search is not None:
        kwargs["search_alg"] = build("search", sweep.search, SEARCHERS, label)
    return sweep, kwargs


_EXPECTED = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number", "string_type": "a string", "bool_type": "true or false",
    "dict_type": "a mapping", "list_type": "a list", "finite_number": "a finite number",
}


def _is_branch_tag(part: Any) -> bool:
    return isinstance(part, str) and bool(re.fullmatch(r"(list|dict)\[.*\]", part))


_BRANCH_WORDS = {"dict": "a mapping", "list": "a list"}


def _one_branch(errors: list[Any], raw: Mapping[str, Any]) -> list[Any]:
    """A union field (``resources_per_trial``: a mapping or a list of them) fails once per
    branch; keep the branch of the value's own type, or say it once when none fits."""
    out: list[Any] = []
    said: set[Any] = set()
    for err in errors:
        loc = err["loc"]
        if len(loc) < 2 or not _is_branch_tag(loc[1]):
            out.append(err)
            continue
        value = raw.get(loc[0])
        own = "dict" if isinstance(value, dict) else "list" if isinstance(value, list) else None
        if own is not None and loc[1].startswith(own):
            out.append(err)
        elif own is None and loc[0] not in said:
            said.add(loc[0])
            kinds = dict.fromkeys(_BRANCH_WORDS[str(e["loc"][1]).split("[")[0]] for e in errors
                                  if e["loc"][:1] == loc[:1] and len(e["loc"]) > 1 and _is_branch_tag(e["loc"][1]))
            out.append({"type": "union", "loc": loc[:1], "input": value,
                        "msg": f"Input should be {' or '.join(kinds)}"})
    return out


def _describe(label: str, err: Mapping[str, Any]) -> str:
    loc = [p for p in err["loc"] if not _is_branch_tag(p)]  # union members show up as type names
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    loc = [str(p) for p in loc]
    got = show(err.get("input"))
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "extra_forbidden":
        known = list(SweepFile.model_fields) if len(loc) == 1 else []
        near = difflib.get_close_matches(loc[-1], known, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        return f"{label}: {where}: unknown key{hint} (known keys: {', '.join(known)})" if known \
            else f"{label}: {where}: unknown key"
    if kind == "missing":
        return f"{label}: {where}: required key is missing"
    if kind == "value_error":
        return f"{label}: {where}: {err['msg'].removeprefix('Value error, ')}"
    if kind in ("greater_than_equal", "greater_than"):
        op, bound = (">=", ctx.get("ge")) if kind == "greater_than_equal" else (">", ctx.get("gt"))
        number = "an integer" if isinstance(bound, int) and not isinstance(err.get("input"), float) else "a number"
        return f"{label}: {where}: expected {number} {op} {bound:g}, got {got}"
    expected = _EXPECTED.get(kind)
    if expected is None:
        expected = re.sub(r"^input should be ", "", err["msg"][:1].lower() + err["msg"][1:])
    return f"{label}: {where}: expected {expected}, got {got}"
