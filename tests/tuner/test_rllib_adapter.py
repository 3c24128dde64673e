"""RLlib algorithms turned into trainables, without Ray running: names through RLlib's registry,
AlgorithmConfig fields holding domains, resources from default_resource_request, and the errors."""

from __future__ import annotations

import pytest

import tuner as tune
from tuner.execution.resources import PlacementGroupFactory, check_feasible, normalize_resources
from tuner.integrations.adapted import is_rllib, resolve_trainable

rllib = pytest.importorskip("tuner.integrations.rllib")
pytest.importorskip("ray.rllib")
pytestmark = pytest.mark.slow  # importing RLlib takes 10-40 s here


def test_a_registered_name_keeps_the_config_dict_as_the_search_space():
    space = {"env": "CartPole-v1", "lr": tune.grid_search([1e-3, 1e-4]), "num_env_runners": 0}
    cls, config, resources = resolve_trainable("rllib:PPO", space, None)
    assert issubclass(cls, tune.Trainable) and cls.__name__ == "PPO" and cls.tuner_import == "rllib:PPO"
    assert config == space and resources is None
    assert cls.default_resources_per_trial == {"CPU": 1.0}
    assert resolve_trainable("PPO", space, None)[0].tuner_import == "rllib:PPO"
    from ray.rllib.algorithms.ppo import PPO

    assert is_rllib(PPO)
    by_class = resolve_trainable(PPO, space, None)[0]
    assert by_class.algorithm_class is PPO and by_class.tuner_import is None


def test_env_runners_become_one_bundle_each_of_one_gang():
    cls, _, _ = resolve_trainable("PPO", {"env": "CartPole-v1", "num_env_runners": 2}, None)
    assert cls.default_resources_per_trial == PlacementGroupFactory([{"CPU": 1.0}] * 3, strategy="PACK")
    with pytest.raises(ValueError, match=r"cannot hold its 3 bundles at once with the PACK strategy"):
        check_feasible(normalize_resources(cls.default_resources_per_trial), [{"CPU": 2.0}])


def test_a_tuned_number_of_env_runners_makes_the_request_per_trial():
    cls, _, _ = resolve_trainable("PPO", {"env": "CartPole-v1", "num_env_runners": tune.choice([0, 1])}, None)
    per_trial = cls.default_resources_per_trial
    assert per_trial({"env": "CartPole-v1", "num_env_runners": 0}) == {"CPU": 1.0}
    assert per_trial({"env": "CartPole-v1", "num_env_runners": 1}).bundles == [{"CPU": 1.0}] * 2


def test_an_algorithm_config_with_domains_gives_its_domains_as_the_space():
    from ray.rllib.algorithms.ppo import PPOConfig

    lr = tune.loguniform(1e-5, 1e-3)
    algo_config = (PPOConfig().environment("CartPole-v1").env_runners(num_env_runners=1)
                   .training(lr=lr, model={"fcnet_hiddens": tune.choice([[16], [32]])}, train_batch_size=128))
    assert is_rllib(algo_config)
    cls, config, _ = resolve_trainable(algo_config, {"gamma": tune.uniform(0.9, 0.99)}, None)
    assert config["lr"] == lr and set(config) == {"lr", "model", "gamma"}
    assert cls.tuner_import is None  # tune.resume needs the config object again
    assert cls.base_config.train_batch_size == 128 and cls.base_config.env == "CartPole-v1"
    assert cls.default_resources_per_trial.bundles == [{"CPU": 1.0}, {"CPU": 1.0}]


def test_mistakes_name_the_fix():
    with pytest.raises(ValueError, match=r"'PPPO' is not an RLlib algorithm; RLlib's registry has: .*PPO.*"
                                         r"Did you mean 'PPO'\?"):
        resolve_trainable("PPPO", {}, None)
    with pytest.raises(ValueError, match=r"The config key 'lrr' is not a field of PPOConfig, so RLlib would ignore "
                                         r"it\. Did you mean 'lr'\?"):
        resolve_trainable("PPO", {"env": "CartPole-v1", "lrr": 0.1}, None)


def test_results_are_flattened_without_the_echoed_config():
    flat = rllib.flatten_result({"env_runners": {"episode_return_mean": 20.0, "num_episodes": 3},
                                 "config": {"lr": 0.1}, "training_iteration": 2})
    assert flat == {"env_runners/episode_return_mean": 20.0, "env_runners/num_episodes": 3, "training_iteration": 2}


def test_other_trainables_pass_through():
    def train(config):
        pass

    assert resolve_trainable(train, {"x": 1}, {"cpu": 1}) == (train, {"x": 1}, {"cpu": 1})
    assert not is_rllib(train) and not is_rllib(tune.Trainable)
