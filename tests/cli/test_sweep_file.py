"""The sweep file schema: what a valid file becomes, and one message per kind of mistake
(file, key path, what was expected). No Ray, no trainable import."""

from __future__ import annotations

import re
import textwrap

import pytest

from schedulers import ASHAScheduler, HyperBandScheduler, MedianStoppingRule
from searchers import BasicVariantGenerator, OptunaSearch
from tuner.space.domains import Categorical, Float, Grid, Integer, Normal
from tuner.cli.sweep_schema import SCHEDULERS, SweepError, apply_override, load_sweep, validate

SWEEP = """\
name: mlp-asha
trainable: examples.mlp:train
metric: acc
mode: max
num_samples: 32
config:
  lr: {loguniform: [1e-4, 1.0e-1]}
  layers: {choice: [2, 3, 4]}
  width: {randint: {lower: 16, upper: 64}}
  noise: {randn: null}
  batch_size: {grid_search: [32, 64]}
  model: {act: {choice: [relu, tanh]}, bias: true}
  epochs: 20
scheduler: {asha: {max_t: 20, grace_period: 1, reduction_factor: 3}}
search: {random: {seed: 0}}
resources_per_trial: {cpu: 1, gpu: 0.25}
stop: {training_iteration: 20}
"""


def write(tmp_path, text: str, name: str = "sweep.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def error(tmp_path, text: str = SWEEP, overrides=()) -> str:
    path = write(tmp_path, text)
    with pytest.raises(SweepError) as info:
        load_sweep(path, list(overrides))
    return str(info.value)


def test_a_valid_file_becomes_tune_run_arguments(tmp_path):
    sweep, kwargs = load_sweep(write(tmp_path, SWEEP))
    assert sweep.trainable == "examples.mlp:train"
    config = kwargs.pop("config")
    assert isinstance(config["lr"], Float) and (config["lr"].lower, config["lr"].upper) == (1e-4, 0.1)
    assert isinstance(config["layers"], Categorical) and list(config["layers"].categories) == [2, 3, 4]
    assert isinstance(config["width"], Integer) and isinstance(config["noise"], Normal)
    assert isinstance(config["batch_size"], Grid)
    assert isinstance(config["model"]["act"], Categorical) and config["model"]["bias"] is True
    assert config["epochs"] == 20
    scheduler, searcher = kwargs.pop("scheduler"), kwargs.pop("search_alg")
    assert isinstance(scheduler, ASHAScheduler) and scheduler.get_params()["reduction_factor"] == 3
    assert isinstance(searcher, BasicVariantGenerator) and searcher.seed == 0
    assert kwargs["name"] == "mlp-asha" and kwargs["num_samples"] == 32
    assert kwargs["metric"] == "acc" and kwargs["mode"] == "max"
    assert kwargs["resources_per_trial"] == {"cpu": 1, "gpu": 0.25}
    assert kwargs["stop"] == {"training_iteration": 20}


def test_names_alone_and_every_registered_component(tmp_path):
    for name, cls in (("fifo", None), ("hyperband", HyperBandScheduler), ("median", MedianStoppingRule)):
        _, kwargs = validate({"trainable": "m:f", "scheduler": name}, "s.yaml")
        assert cls is None or isinstance(kwargs["scheduler"], cls)
    _, kwargs = validate({"trainable": "m:f", "search": {"optuna": {"seed": 1}}}, "s.yaml")
    assert isinstance(kwargs["search_alg"], OptunaSearch)
    assert {"fifo", "asha", "hyperband", "median", "pbt", "pb2"} == set(SCHEDULERS)


def test_overrides_by_key_path(tmp_path):
    raw = {"trainable": "m:f", "scheduler": "asha"}
    for item in ("num_samples=4", "scheduler.asha.max_t=9", "config.lr={choice: [0.1, 0.01]}", "config.deep.x=1e-3"):
        apply_override(raw, item)
    assert raw["num_samples"] == 4 and raw["scheduler"] == {"asha": {"max_t": 9}}
    assert raw["config"] == {"lr": {"choice": [0.1, 0.01]}, "deep": {"x": 0.001}}


@pytest.mark.parametrize("text, expected", [
    ("trainable: m:f\nconfig: {a: [1, 2\n", r"sweep\.yaml: not valid YAML: while parsing"),
    ("", r"sweep\.yaml: the file is empty"),
    ("- trainable\n", r"sweep\.yaml: expected a mapping of sweep settings at the top, got \[\"trainable\"\]"),
    ("trainable: m:f\nnum_sample: 3\n", r"sweep\.yaml: num_sample: unknown key; did you mean 'num_samples'\?"),
    ("config: {}\n", r"sweep\.yaml: trainable: required key is missing"),
    ("trainable: train\n", r"sweep\.yaml: trainable: expected an import path 'package.module:function', got \"train\""),
    ("trainable: m:f\nnum_samples: \"8\"\n", r"sweep\.yaml: num_samples: expected an integer, got \"8\""),
    ("trainable: m:f\nnum_samples: 0\n", r"sweep\.yaml: num_samples: expected an integer >= 1, got 0"),
    ("trainable: m:f\nmode: maximum\n", r"sweep\.yaml: mode: expected \"min\" or \"max\", got \"maximum\""),
    ("trainable: m:f\nresources_per_trial: {cpu: one}\n",
     r"sweep\.yaml: resources_per_trial\.cpu: expected a number, got \"one\""),
    ("trainable: m:f\nresources_per_trial: [{cpu: 1}, {gpu: x}]\n",
     r"sweep\.yaml: resources_per_trial\[1\]\.gpu: expected a number, got \"x\""),
    ("trainable: m:f\nresources_per_trial: 2\n",
     r"sweep\.yaml: resources_per_trial: expected a mapping or a list, got 2"),
    ("trainable: m:f\ncheckpoint_at_end: 3\n", r"sweep\.yaml: checkpoint_at_end: expected true or false, got 3"),
    ("trainable: m:f\nscheduler: {ashaa: {}}\n",
     r"sweep\.yaml: scheduler\.ashaa: unknown scheduler; did you mean 'asha'\? \(known: fifo, asha, hyperband, median"),
    ("trainable: m:f\nscheduler: {asha: {max_t: 20, reduction_factor: three}}\n",
     r"sweep\.yaml: scheduler\.asha\.reduction_factor: expected a number > 1, got \"three\"$"),
    ("trainable: m:f\nscheduler: {asha: {reduction_factor: 1}}\n",
     r"sweep\.yaml: scheduler\.asha\.reduction_factor: expected a number > 1, got 1$"),
    ("trainable: m:f\nscheduler: {hyperband: {max_t: many}}\n",
     r"sweep\.yaml: scheduler\.hyperband\.max_t: expected a number >= 1, got \"many\"$"),
    ("trainable: m:f\nscheduler: {asha: {max_tt: 20}}\n",
     r"sweep\.yaml: scheduler\.asha\.max_tt: unknown parameter; did you mean 'max_t'\? \(ASHAScheduler takes: "),
    ("trainable: m:f\nscheduler: {asha: 20}\n",
     r"sweep\.yaml: scheduler: expected the parameters as a mapping, got 20"),
    ("trainable: m:f\nscheduler: {asha: {}, median: {}}\n",
     r"sweep\.yaml: scheduler: expected a name, or one name mapped to its parameters"),
    ("trainable: m:f\nsearch: {optuna: {seed: zero}}\n",
     r"sweep\.yaml: search\.optuna\.seed: expected an integer or None, got \"zero\""),
    ("trainable: m:f\nsearch: bayes\n",
     r"sweep\.yaml: search\.bayes: unknown search \(known: random, optuna, hyperopt\)"),
    ("trainable: m:f\nconfig: {lr: {loguniform: [0.1, 0.0001]}}\n",
     r"sweep\.yaml: config\.lr\.loguniform: The value of `lower` is 0\.1, but must be `lower < upper`"),
    ("trainable: m:f\nconfig: {lr: {log_uniform: [0.1, 1]}}\n",
     r"sweep\.yaml: config\.lr\.log_uniform: unknown domain; did you mean 'loguniform'\?"),
    ("trainable: m:f\nconfig: {nested: {layers: {choice: 3}}}\n",
     r"sweep\.yaml: config\.nested\.layers\.choice: expected a list of values, got 3"),
    ("trainable: m:f\nconfig: {lr: {uniform: [0, 1, 2, 3]}}\n", r"sweep\.yaml: config\.lr\.uniform: .*argument"),
])
def test_each_mistake_is_named_by_file_and_key_path(tmp_path, text, expected):
    message = error(tmp_path, text)
    assert re.search(expected, message), message


@pytest.mark.parametrize("item, expected", [
    ("num_samples", r"--set num_samples: expected key\.path=value"),
    ("=3", r"--set =3: expected key\.path=value"),
    ("a..b=1", r"--set a\.\.b=1: expected key\.path=value"),
    ("config.lr=[1, 2", r"--set config\.lr=\[1, 2: the value is not valid YAML"),
    ("name.first=x", r"--set name\.first=x: name is \"mlp-asha\", not a mapping"),
    ("num_samples=many", r"sweep\.yaml: num_samples: expected an integer, got \"many\""),
])
def test_bad_overrides(tmp_path, item, expected):
    message = error(tmp_path, SWEEP, [item])
    assert re.search(expected, message), message


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(SweepError, match=r"nope\.yaml: no such sweep file"):
        load_sweep(str(tmp_path / "nope.yaml"))
    with pytest.raises(SweepError, match=r": cannot read it"):
        load_sweep(str(tmp_path))


def test_yaml_is_loaded_safely(tmp_path):
    text = "trainable: m:f\nconfig: {x: !!python/object/apply:os.system [echo owned]}\n"
    with pytest.raises(SweepError, match=r"not valid YAML: could not determine a constructor"):
        load_sweep(write(tmp_path, text))


def test_pbt_and_pb2_by_name_with_mutations_in_domain_notation():
    """PBT and PB2 live in schedulers/pbt.py and pb2.py: checked only where they exist."""
    pbt = pytest.importorskip("schedulers.pbt")
    _, kwargs = validate({"trainable": "m:f", "scheduler": {"pbt": {
        "perturbation_interval": 2, "seed": 0,
        "hyperparam_mutations": {"lr": {"loguniform": [1e-4, 0.1]}, "layers": [2, 3, 4]}}}}, "pbt.yaml")
    scheduler = kwargs["scheduler"]
    assert isinstance(scheduler, pbt.PopulationBasedTraining)
    assert isinstance(scheduler.hyperparam_mutations["lr"], Float)
    with pytest.raises(SweepError, match=r"^pbt\.yaml: scheduler\.pbt\.perturbation_interval: expected a number > 0, "
                                         r"got 0$"):
        validate({"trainable": "m:f", "scheduler": {"pbt": {"perturbation_interval": 0}}}, "pbt.yaml")
    pb2 = pytest.importorskip("schedulers.pb2")
    _, kwargs = validate({"trainable": "m:f", "scheduler": {"pb2": {
        "perturbation_interval": 2, "hyperparam_bounds": {"lr": [1e-4, 0.1]}}}}, "pb2.yaml")
    assert isinstance(kwargs["scheduler"], pb2.PB2)
