"""The search space: domains, their validation and JSON form, and config resolution (no Ray)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tuner.space import config as space
from tuner.space.config import (
    Categorical,
    Domain,
    Float,
    Function,
    Grid,
    Integer,
    Normal,
    choice,
    domain_from_json,
    flatten_dict,
    generate_variants,
    grid_search,
    has_domains,
    lograndint,
    loguniform,
    qloguniform,
    qrandint,
    quniform,
    randint,
    randn,
    resolve,
    sample_from,
    space_from_json,
    space_to_json,
    uniform,
    walk,
)


def draws(domain: Domain, n: int = 2000, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [domain.sample(rng) for _ in range(n)]


ALL_DOMAINS = [
    uniform(-1.0, 2.0), quniform(0.0, 1.0, 0.1), loguniform(1e-4, 1e-1), qloguniform(1e-3, 1.0, 1e-3),
    randn(2.0, 0.5), Normal(0.0, 1.0, q=0.25), randint(-3, 4), qrandint(0, 20, 5), lograndint(1, 1000),
    Integer(1, 64, log=True, q=4, upper_inclusive=True), choice(["a", 2, None, [1, 2]]), grid_search([1, 2, 3]),
]


# --- domains --------------------------------------------------------------------------------


def test_constructors_store_ray_semantics_and_kinds():
    assert (uniform(0, 1).kind, uniform(0, 1).log, uniform(0, 1).q) == ("float", False, None)
    assert (loguniform(1e-3, 1).log, qloguniform(1e-3, 1, 1e-3).q) == (True, 1e-3)
    r = randint(0, 5)
    assert (r.kind, r.lower, r.upper, r.upper_inclusive, r.log) == ("int", 0, 5, False, False)
    assert (qrandint(0, 10, 2).upper_inclusive, qrandint(0, 10, 2).q) == (True, 2)
    assert lograndint(1, 10).log and not lograndint(1, 10).upper_inclusive
    assert (randn().kind, randn().mean, randn().sd) == ("normal", 0.0, 1.0)
    assert (choice([1, 2]).kind, choice((1, 2)).categories) == ("categorical", [1, 2])
    assert (grid_search([1]).kind, grid_search([1]).values) == ("grid", [1])
    assert (sample_from(len).kind, sample_from(len).fn) == ("function", len)


def test_float_draws_stay_in_bounds_and_log_spreads_over_decades():
    values = draws(uniform(-1.0, 2.0))
    assert all(-1.0 <= v < 2.0 for v in values) and all(type(v) is float for v in values)
    logs = np.log10(draws(loguniform(1e-4, 1e-1)))
    assert logs.min() >= -4 and logs.max() < -1
    assert 0.25 < np.mean(logs < -2.5) < 0.75  # half the mass below the middle decade


def test_quantized_floats_are_clean_multiples_within_bounds():
    values = draws(quniform(0.05, 0.95, 0.1))
    assert set(values) <= {round(0.1 * k, 10) for k in range(1, 10)}
    assert 0.1 in values and 0.9 in values  # 0.3 not 0.30000000000000004
    assert all(1e-3 <= v <= 1.0 for v in draws(qloguniform(1e-3, 1.0, 1e-3)))


def test_integers_respect_inclusive_and_exclusive_upper_bounds():
    assert set(draws(randint(-3, 4))) == set(range(-3, 4))
    assert set(draws(qrandint(0, 20, 5))) == {0, 5, 10, 15, 20}
    assert set(draws(qrandint(1, 3))) == {1, 2, 3}
    logs = draws(lograndint(1, 1000))
    assert min(logs) >= 1 and max(logs) <= 999 and all(type(v) is int for v in logs)
    assert np.mean(np.array(logs) < 32) > 0.4  # log scale: small values are as likely as large ones
    assert set(draws(Integer(1, 64, log=True, q=4, upper_inclusive=True))) <= set(range(4, 65, 4))


def test_normal_and_categorical_draws():
    values = np.array(draws(randn(2.0, 0.5)))
    assert abs(values.mean() - 2.0) < 0.05 and abs(values.std() - 0.5) < 0.05
    assert set(draws(Normal(0.0, 1.0, q=0.25))) <= {k / 4 for k in range(-40, 41)}
    assert {repr(v) for v in draws(choice(["a", 2, None]))} == {"'a'", "2", "None"}


def test_grid_cannot_be_sampled():
    with pytest.raises(ValueError, match="grid_search is expanded by generate_variants"):
        grid_search([1]).sample(np.random.default_rng(0))


@pytest.mark.parametrize("make, match", [
    (lambda: uniform(1.0, 1.0), r"The value of `lower` is 1.0, but must be `lower < upper` \(upper=1.0\)"),
    (lambda: uniform(0, float("inf")), r"The value of `upper` is inf, but must be a finite number"),
    (lambda: uniform("0", 1), r"The value of `lower` is '0', but must be a finite number"),
    (lambda: loguniform(0.0, 1.0), r"The value of `lower` is 0.0, but must be `lower > 0` on a log scale"),
    (lambda: loguniform(1e-3, 1.0, base=1), r"The value of `base` is 1, but must be `base > 0` and `base != 1`"),
    (lambda: quniform(0, 1, 0), r"The value of `q` is 0, but must be `q > 0`"),
    (lambda: quniform(0.1, 0.2, 1.0), r"The value of `q` is 1.0, but must have a multiple in \[0.1, 0.2\]"),
    (lambda: randint(3, 3), r"The value of `lower` is 3, but must be `lower < upper` \(upper=3, excluded\)"),
    (lambda: randint(0, 2.5), r"The value of `upper` is 2.5, but must be an integer"),
    (lambda: qrandint(4, 3), r"The value of `lower` is 4, but must be `lower <= upper` \(upper=3\)"),
    (lambda: qrandint(0, 10, 0), r"The value of `q` is 0, but must be an integer `q > 0`"),
    (lambda: qrandint(1, 3, 5), r"The value of `q` is 5, but must have a multiple in \[1, 3\]"),
    (lambda: lograndint(0, 10), r"The value of `lower` is 0, but must be `lower > 0` on a log scale"),
    (lambda: randn(0, 0), r"The value of `sd` is 0, but must be `sd > 0`"),
    (lambda: choice([]), r"The value of `categories` is \[\], but must be a non-empty list"),
    (lambda: choice("abc"), r"The value of `categories` is 'abc', but must be a non-empty list"),
    (lambda: grid_search([]), r"The value of `values` is \[\], but must be a non-empty list"),
    (lambda: sample_from(3), r"The value of `fn` is 3, but must be callable"),
])
def test_bad_arguments_are_clear_value_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("domain", ALL_DOMAINS, ids=repr)
def test_domain_json_round_trip(domain):
    data = domain.to_json()
    back = domain_from_json(json.loads(json.dumps(data)))
    assert type(back) is type(domain) and back == domain and back.kind == domain.kind
    assert back.to_json() == data


def test_json_types_are_readable():
    assert loguniform(1e-4, 0.1).to_json() == {"type": "loguniform", "lower": 1e-4, "upper": 0.1}
    assert choice([1, {"a": uniform(0, 1)}]).to_json() == {
        "type": "choice", "categories": [1, {"a": {"__domain__": {"type": "uniform", "lower": 0, "upper": 1}}}]}
    assert sample_from(len).to_json() == {"type": "sample_from", "repr": "builtins.len"}


def test_sample_from_read_back_from_json_says_why_it_cannot_run():
    back = domain_from_json(sample_from(len).to_json())
    assert isinstance(back, Function) and repr(back) == "sample_from(builtins.len)"
    with pytest.raises(ValueError, match="sample_from function builtins.len was read back from JSON"):
        resolve({"x": back}, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"The value of `type` is 'beta', but must be one of uniform"):
        domain_from_json({"type": "beta"})


def test_reprs_read_like_the_constructors():
    assert repr(loguniform(1e-4, 0.1)) == "loguniform(lower=0.0001, upper=0.1)"
    assert repr(choice([1, "a"])) == "choice([1, 'a'])"
    assert repr(grid_search([1])) == "grid_search([1])"


# --- configs --------------------------------------------------------------------------------


NESTED = {
    "lr": loguniform(1e-4, 1e-1), "const": 3,
    "model": {"act": choice(["relu", "tanh"]), "depth": {"grid_search": [1, 2]}},
    "layers": [randint(8, 64), 16], "opt": ("sgd", 0.9), "width": grid_search([32, 64, 128]),
}


def test_walk_lists_every_domain_with_its_path_in_config_order():
    paths = [(p, d.kind) for p, d in walk(NESTED)]
    assert paths == [(("lr",), "float"), (("model", "act"), "categorical"), (("model", "depth"), "grid"),
                     (("layers", 0), "int"), (("width",), "grid")]
    assert walk(NESTED)[2][1] == Grid([1, 2])  # the literal {"grid_search": [...]} dict
    assert has_domains(NESTED) and not has_domains({"a": 1, "b": {"c": [2]}, "d": {"grid_search": 1, "x": 2}})


def test_flatten_dict_joins_nested_keys_with_slashes():
    assert flatten_dict({"a": {"b": 1, "c": {"d": 2}}, "e": [1], "f": {}}) == {"a/b": 1, "a/c/d": 2, "e": [1], "f": {}}
    assert flatten_dict({"a": {"b": 1}}, sep=".") == {"a.b": 1}


def test_space_json_round_trip_keeps_constants():
    data = space_to_json(NESTED)
    back = space_from_json(json.loads(json.dumps(data)))
    assert back["const"] == 3 and back["opt"] == ["sgd", 0.9] and back["layers"][1] == 16
    assert back["lr"] == NESTED["lr"] and back["model"]["act"] == NESTED["model"]["act"]
    assert back["model"]["depth"] == {"grid_search": [1, 2]} and back["width"] == grid_search([32, 64, 128])
    # a constant dict that merely has a "type" key is not taken for a domain
    assert space_from_json(space_to_json({"m": {"type": "uniform", "lower": 0, "upper": 1}})) == {
        "m": {"type": "uniform", "lower": 0, "upper": 1}}


def test_grid_expands_as_cross_product_first_grid_fastest_repeated_num_samples_times():
    config = {"a": grid_search([1, 2]), "b": {"grid_search": ["x", "y", "z"]}, "c": 0}
    got = [(v["a"], v["b"]) for v in generate_variants(config, 2, np.random.default_rng(0))]
    one = [(1, "x"), (2, "x"), (1, "y"), (2, "y"), (1, "z"), (2, "z")]
    assert got == one + one
    assert space.count_variants(config) == 6 and space.count_variants({"a": 1}) == 1


def test_variants_sample_every_other_domain_and_leave_the_space_untouched():
    variants = list(generate_variants(NESTED, 3, np.random.default_rng(1)))
    assert len(variants) == 18
    for v in variants:
        assert 1e-4 <= v["lr"] < 1e-1 and v["model"]["act"] in ("relu", "tanh") and 8 <= v["layers"][0] < 64
        assert v["const"] == 3 and v["opt"] == ("sgd", 0.9) and not has_domains(v)
    assert len({v["lr"] for v in variants}) == 18
    assert isinstance(NESTED["lr"], Float) and NESTED["model"]["depth"] == {"grid_search": [1, 2]}


def test_same_seed_same_sequence_other_seed_other_sequence():
    def run(seed):
        return list(generate_variants(NESTED, 4, np.random.default_rng(seed)))

    assert run(7) == run(7)
    assert run(7) != run(8)
    assert resolve(NESTED | {"width": 1, "model": {}}, np.random.default_rng(3)) == resolve(
        NESTED | {"width": 1, "model": {}}, np.random.default_rng(3))


def test_num_samples_must_be_a_non_negative_integer():
    assert list(generate_variants({"a": 1}, 0, np.random.default_rng(0))) == []
    assert list(generate_variants({"a": 1}, 2, np.random.default_rng(0))) == [{"a": 1}, {"a": 1}]
    with pytest.raises(ValueError, match=r"The value of `num_samples` is -1, but must be an integer `num_samples >= 0"):
        list(generate_variants({}, -1, np.random.default_rng(0)))


def test_resolve_draws_one_config_and_rejects_grids():
    config = resolve({"a": uniform(0, 1), "b": [choice([1, 2])]}, np.random.default_rng(0))
    assert 0 <= config["a"] < 1 and config["b"][0] in (1, 2)
    with pytest.raises(ValueError, match="The parameter `m/g` is a grid_search, which resolve"):
        resolve({"m": {"g": grid_search([1, 2])}}, np.random.default_rng(0))


def test_choice_of_sub_spaces_draws_the_chosen_branch():
    config = {"opt": choice([{"name": "sgd", "lr": uniform(0.1, 1.0)}, {"name": "adam", "beta": choice([0.9])}])}
    seen = {}
    for v in generate_variants(config, 40, np.random.default_rng(0)):
        seen[v["opt"]["name"]] = v["opt"]
        assert not has_domains(v)
    assert 0.1 <= seen["sgd"]["lr"] < 1.0 and seen["adam"]["beta"] == 0.9
    with pytest.raises(ValueError, match="The parameter `opt/x` is a grid_search inside a sampled value"):
        resolve({"opt": choice([{"x": grid_search([1, 2])}])}, np.random.default_rng(0))


def test_sample_from_sees_resolved_config_by_key_and_attribute_nested_too():
    config = {
        "model": {"width": grid_search([4, 8])},
        "lr": uniform(0.0, 1.0),
        "double": sample_from(lambda spec: spec.config.model.width * 2),
        "shifted": sample_from(lambda spec: spec.config["lr"] + spec.config.get("missing", 10)),
        "const": sample_from(lambda: "no-arg functions work too"),
        "noise": sample_from(lambda spec: spec.rng.integers(1000)),
    }
    variants = list(generate_variants(config, 1, np.random.default_rng(0)))
    assert [v["double"] for v in variants] == [8, 16]
    assert all(v["shifted"] == v["lr"] + 10 and v["const"] == "no-arg functions work too" for v in variants)
    again = list(generate_variants(config, 1, np.random.default_rng(0)))
    assert [v["noise"] for v in variants] == [v["noise"] for v in again]


def test_sample_from_functions_resolve_in_dependency_order():
    config = {
        "c": sample_from(lambda spec: spec.config.b + 1),  # reads b, which comes later in the config
        "b": sample_from(lambda spec: spec.config.a * 10),
        "a": randint(1, 3),
        "items": [sample_from(lambda spec: spec.config.c), 5],
    }
    v = resolve(config, np.random.default_rng(0))
    assert v["b"] == v["a"] * 10 and v["c"] == v["b"] + 1 and v["items"] == [v["c"], 5]


def test_sample_from_cycle_is_a_clear_error():
    config = {"x": sample_from(lambda s: s.config.y), "y": sample_from(lambda s: s.config.x), "z": 1}
    with pytest.raises(ValueError, match=r"The sample_from parameters `x`, `y` read each other in a cycle"):
        resolve(config, np.random.default_rng(0))


def test_constructors_build_the_documented_classes():
    assert isinstance(uniform(0, 1), Float) and isinstance(randint(0, 2), Integer)
    assert isinstance(randn(), Normal) and isinstance(choice([1]), Categorical)
    assert isinstance(grid_search([1]), Grid) and isinstance(sample_from(len), Function)


def test_config_changes_name_nested_keys():
    assert space.config_changes({"a": {"b": 1}, "c": 2}, {"a": {"b": 3}, "c": 2}) == ({"a/b": 1}, {"a/b": 3})
