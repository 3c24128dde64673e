"""tuner.space.config -> Optuna and Hyperopt: every domain type round-trips, or is a clear error."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest

import tuner as tune
from searchers import HyperOptSearch, OptunaSearch
from searchers.optuna_space import to_optuna
from tuner.space.config import Integer, Normal
from tests.searchers.helpers import drive


class Opaque:
    """A category Optuna cannot store as is (compared by identity)."""

    def __repr__(self) -> str:
        return "Opaque()"


OPAQUE = Opaque()

# name -> domain; every one of them expressible by both backends
COMMON = {
    "uniform": tune.uniform(-1.5, 2.5),
    "quniform": tune.quniform(0.05, 0.95, 0.1),
    "loguniform": tune.loguniform(1e-4, 1e-1),
    "randint": tune.randint(-3, 4),
    "qrandint": tune.qrandint(0, 20, 5),
    "lograndint": tune.lograndint(1, 1000),
    "choice": tune.choice(["a", 1, 2.5, None, False]),
    "choice_objects": tune.choice([[1, 2], {"depth": 3}, OPAQUE, 1, True]),
}
HYPEROPT_ONLY = {
    "qloguniform": tune.qloguniform(1e-3, 1.0, 1e-3),
    "qlograndint": Integer(2, 64, log=True, q=2, upper_inclusive=True),
    "randn": tune.randn(1.0, 2.0),
    "qrandn": Normal(0.0, 1.0, q=0.25),
    "nested_choice": tune.choice([{"opt": "sgd", "lr": tune.loguniform(1e-3, 1.0)},
                                  {"opt": "adam", "betas": [tune.uniform(0.8, 0.99), 0.999]}]),
}


def in_support(domain, value) -> bool:
    kind = domain.kind
    if kind == "float":
        ok = isinstance(value, float) and domain.lower <= value <= domain.upper
        return ok and (domain.q is None or abs(value / domain.q - round(value / domain.q)) < 1e-9)
    if kind == "int":
        return type(value) is int and domain.grid_low <= value <= domain.grid_high and value % (domain.q or 1) == 0
    if kind == "normal":
        return isinstance(value, float) and (domain.q is None or abs(value / domain.q - round(value / domain.q)) < 1e-9)
    if kind == "categorical":
        for category in domain.categories:
            if tune.space.has_domains(category):
                if isinstance(value, dict) and value.get("opt") == category["opt"]:
                    return all(in_support(d, tune.space.lookup(value, p)[1]) for p, d in tune.space.walk(category))
            elif type(category) is type(value) and category == value:
                return True
    return False


def searcher_for(backend: str, seed: int = 0, **kwargs):
    if backend == "optuna":
        return OptunaSearch(sampler=optuna.samplers.RandomSampler(seed=seed), **kwargs)
    return HyperOptSearch(seed=seed, n_initial_points=100, **kwargs)


@pytest.mark.parametrize("backend, name", [(b, n) for b in ("optuna", "hyperopt") for n in COMMON]
                         + [("hyperopt", n) for n in HYPEROPT_ONLY])
def test_drawn_values_stay_in_the_domain_and_cover_it(backend, name):
    domain = {**COMMON, **HYPEROPT_ONLY}[name]
    searcher = searcher_for(backend)
    searcher.set_search_properties("loss", "min", {"p": domain, "const": "kept"})
    configs = drive(searcher, 60, objective=lambda c: 0.0)
    assert all(c["const"] == "kept" and in_support(domain, c["p"]) for c in configs), configs
    assert len({repr(c["p"]) for c in configs}) > 1
    if domain.kind == "categorical" and not name.startswith("nested"):
        assert any(c["p"] is OPAQUE for c in configs) or OPAQUE not in domain.categories
        assert {repr(c["p"]) for c in configs} == {repr(c) for c in domain.categories}


@pytest.mark.parametrize("backend, name", [(b, n) for b in ("optuna", "hyperopt") for n in COMMON]
                         + [("hyperopt", n) for n in HYPEROPT_ONLY if not n.startswith("nested")])
def test_a_value_of_the_space_round_trips_through_the_backend(backend, name):
    """points_to_evaluate hands the backend a config value; the config it suggests back is the same value."""
    domain = {**COMMON, **HYPEROPT_ONLY}[name]
    rng = np.random.default_rng(1)
    values = [domain.sample(rng) for _ in range(5)]
    searcher = searcher_for(backend, points_to_evaluate=[{"p": v} for v in values])
    searcher.set_search_properties("loss", "min", {"p": domain})
    got = [c["p"] for c in drive(searcher, 5, objective=lambda c: 0.0)]
    assert [repr(v) for v in got] == [repr(v) for v in values]
    assert [type(v) for v in got] == [type(v) for v in values]


def test_optuna_distributions_are_the_exact_translation():
    params = {p.name: p.distribution for p in to_optuna({**COMMON, "n": {"q": tune.quniform(0.0, 1.0, 0.25)}})}
    d = optuna.distributions
    assert params["uniform"] == d.FloatDistribution(-1.5, 2.5)
    assert params["quniform"] == d.FloatDistribution(0.1, 0.9, step=0.1)  # the multiples inside the bounds
    assert params["loguniform"] == d.FloatDistribution(1e-4, 1e-1, log=True)
    assert params["randint"] == d.IntDistribution(-3, 3)  # upper excluded
    assert params["qrandint"] == d.IntDistribution(0, 20, step=5)  # upper included
    assert params["lograndint"] == d.IntDistribution(1, 999, log=True)
    assert params["choice"] == d.CategoricalDistribution(["a", 1, 2.5, None, False])
    assert params["choice_objects"] == d.CategoricalDistribution([0, 1, 2, 3, 4])  # by index (1 == True too)
    assert params["n/q"] == d.FloatDistribution(0.0, 1.0, step=0.25)


def test_optuna_distributions_placed_in_the_space_are_used_as_they_are():
    searcher = OptunaSearch(seed=0)
    searcher.set_search_properties("loss", "min", {"x": optuna.distributions.FloatDistribution(2.0, 3.0), "k": 1})
    config = searcher.suggest("t0")
    assert 2.0 <= config["x"] <= 3.0 and config["k"] == 1


@pytest.mark.parametrize("domain, match", [
    (tune.randn(), r"The parameter `p` is randn\(mean=0.0, sd=1.0\), which OptunaSearch cannot express: Optuna has "
                   r"no normal distribution"),
    (tune.qloguniform(1e-3, 1.0, 1e-3), r"The parameter `p` is qloguniform\(.*\), which OptunaSearch cannot express: "
                                        r"Optuna has no log scale with a step"),
    (Integer(2, 64, log=True, q=2), r"`p` is lograndint\(.*\), which OptunaSearch cannot express"),
    (tune.grid_search([1, 2]), r"The parameter `p` is grid_search\(\[1, 2\]\), which OptunaSearch cannot express: "
                               r"a grid_search is not a distribution. Use tune.choice"),
    (tune.sample_from(lambda spec: 1), r"The parameter `p` is sample_from\(.*\), which OptunaSearch cannot express: "
                                       r"sample_from computes a value .* define-by-run function"),
    (tune.choice([{"lr": tune.uniform(0, 1)}, {}]), r"The parameter `p` is choice\(.*\), which OptunaSearch cannot "
                                                    r"express: category 0 holds a sub-space"),
])
def test_optuna_rejects_what_it_cannot_express_naming_parameter_and_backend(domain, match):
    with pytest.raises(ValueError, match=match):  # before any trial starts: when tune.run hands over the space
        OptunaSearch(seed=0).set_search_properties("loss", "min", {"p": domain})
    with pytest.raises(ValueError, match=match):
        OptunaSearch(space={"p": domain})


@pytest.mark.parametrize("domain, match", [
    (tune.grid_search([1, 2]), r"The parameter `m/p` is grid_search\(\[1, 2\]\), which HyperOptSearch cannot "
                               r"express: Hyperopt has no grid"),
    (tune.sample_from(lambda spec: 1), r"The parameter `m/p` is sample_from\(.*\), which HyperOptSearch cannot "
                                       r"express: sample_from computes"),
    (tune.choice([{"g": tune.grid_search([1])}]), r"The parameter `m/p/0/g` is grid_search\(\[1\]\), which "
                                                  r"HyperOptSearch cannot express"),
])
def test_hyperopt_rejects_what_it_cannot_express_naming_parameter_and_backend(domain, match):
    with pytest.raises(ValueError, match=match):  # before any trial starts: when tune.run hands over the space
        HyperOptSearch(seed=0).set_search_properties("loss", "min", {"m": {"p": domain}})
    with pytest.raises(ValueError, match=match):
        HyperOptSearch(space={"m": {"p": domain}})


def test_hyperopt_nested_choices_draw_each_branch_with_its_own_parameters():
    searcher = HyperOptSearch(seed=0, n_initial_points=5)
    searcher.set_search_properties("loss", "min", {"model": HYPEROPT_ONLY["nested_choice"]})
    configs = [c["model"] for c in drive(searcher, 40, objective=lambda c: c["model"].get("lr", 1.0))]
    sgd = [c for c in configs if c["opt"] == "sgd"]
    adam = [c for c in configs if c["opt"] == "adam"]
    assert sgd and adam
    assert all(set(c) == {"opt", "lr"} and 1e-3 <= c["lr"] <= 1.0 for c in sgd)
    assert all(set(c) == {"opt", "betas"} and 0.8 <= c["betas"][0] <= 0.99 and c["betas"][1] == 0.999
               and isinstance(c["betas"], list) for c in adam)
    assert list(adam[0]) == ["opt", "betas"]  # the space's key order, not Hyperopt's


def test_quantized_values_are_clean_floats():
    searcher = searcher_for("hyperopt")
    searcher.set_search_properties("loss", "min", {"q": tune.quniform(0.0, 1.0, 0.1)})
    values = {c["q"] for c in drive(searcher, 50, objective=lambda c: 0.0)}
    assert values <= {round(0.1 * k, 10) for k in range(11)} and not any(math.isnan(v) for v in values)
