"""PPO on gymnasium's CartPole-v1, tuned by Population Based Training (no download).

A population of PPO agents trains side by side; every few iterations PBT copies
the weights and optimizer state of a top-quartile agent into a bottom-quartile
one and perturbs its learning rate and entropy coefficient. The trainable is a
``tune.Trainable``, so an exploit happens in place on the warm worker:
``reset_config`` changes the two coefficients and ``load_checkpoint`` loads
the donor's model, with no new process and no lost set-up.

One training iteration is 2048 environment steps (8 vectorized CartPoles x 256)
plus the PPO update; each iteration then plays 10 greedy evaluation episodes.

    python examples/pbt_cartpole.py            # population 6 x 100k env steps: 2-4 minutes on 2 CPUs
    python examples/pbt_cartpole.py --quick    # a smoke run (2 trials, 3 short iterations)

Prints the best trial's final evaluation return and its lineage (the exploits
that made its final model), and exits non-zero when that return is below 475.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tuner as tune

TARGET = 475.0

#: PPO settings that are not tuned. Known-good values for CartPole (GAE, clipped
#: objective, normalized advantages, several epochs of minibatches).
PPO_DEFAULTS: dict[str, Any] = {
    "lr": 1e-3,
    "entropy_coef": 0.0,
    "num_envs": 8,
    "rollout_len": 32,  # steps per env between updates: 8 x 32 = 256 samples per update
    "steps_per_iteration": 2048,  # = 8 updates per training_iteration
    "epochs": 10,
    "minibatch_size": 128,
    "gamma": 0.98,
    "gae_lambda": 0.8,
    "clip": 0.2,
    "value_coef": 0.5,
    "max_grad_norm": 0.5,
    "hidden": 64,
    "eval_episodes": 10,
}


class PPOAgent:
    """A small actor-critic (two 64x64 tanh MLPs) trained by PPO on vectorized CartPoles.

    Framework-free: the tuner's ``PPOTrainable`` and the benchmark's Ray Tune
    wrapper both drive this object. Every random draw (weights, actions,
    minibatches, environments) comes from ``seed``; no global RNG is touched.

    Args:
        config: overrides of ``PPO_DEFAULTS``.
        seed: seeds the weights, the action sampling and the environments.
    """

    def __init__(self, config: dict[str, Any], seed: int | None = 0) -> None:
        import gymnasium as gym
        import numpy as np
        import torch
        from torch import nn

        self.cfg = {**PPO_DEFAULTS, **{k: v for k, v in config.items() if k in PPO_DEFAULTS}}
        seed = 0 if seed is None else int(seed) % (2**31)
        self.gen = torch.Generator().manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        obs_dim, hidden, n_actions = 4, self.cfg["hidden"], 2

        def mlp(out: int, gain: float) -> nn.Sequential:
            net = nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                                nn.Linear(hidden, out))
            for layer in net:
                if isinstance(layer, nn.Linear):
                    nn.init.orthogonal_(layer.weight, gain=np.sqrt(2), generator=self.gen)
                    nn.init.zeros_(layer.bias)
            nn.init.orthogonal_(net[-1].weight, gain=gain, generator=self.gen)
            return net

        self.actor, self.critic = mlp(n_actions, 0.01), mlp(1, 1.0)
        self.params = list(self.actor.parameters()) + list(self.critic.parameters())
        self.optimizer = torch.optim.Adam(self.params, lr=self.cfg["lr"], eps=1e-5)
        self.env = gym.make_vec("CartPole-v1", num_envs=self.cfg["num_envs"],
                                vectorization_mode="vector_entry_point")
        obs, _ = self.env.reset(seed=seed)
        self.obs = torch.as_tensor(obs)
        self.after_done = np.zeros(self.cfg["num_envs"], dtype=bool)  # next step is an autoreset step
        self.running_return = np.zeros(self.cfg["num_envs"])
        self.episode_returns: list[float] = []
        self.eval_seed = int(self.rng.integers(2**31))

    def set_hparams(self, lr: float | None = None, entropy_coef: float | None = None) -> None:
        """Change the tuned coefficients in place (PBT), keeping weights and Adam's moments."""
        if lr is not None:
            self.cfg["lr"] = float(lr)
            for group in self.optimizer.param_groups:
                group["lr"] = float(lr)
        if entropy_coef is not None:
            self.cfg["entropy_coef"] = float(entropy_coef)

    def state_dict(self) -> dict[str, Any]:
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Load weights and optimizer moments; the learning rate stays this agent's own."""
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.set_hparams(lr=self.cfg["lr"])

    def train_iteration(self) -> dict[str, float]:
        """``steps_per_iteration`` environment steps, in rollouts each followed by a PPO update."""
        self.episode_returns = []
        n_envs, rollout_len = self.cfg["num_envs"], self.cfg["rollout_len"]
        updates = max(1, self.cfg["steps_per_iteration"] // (n_envs * rollout_len))
        stats: dict[str, float] = {}
        for _ in range(updates):
            stats = self._update(self._rollout())
        recent = self.episode_returns[-20:]
        return {"episode_return_mean": sum(recent) / len(recent) if recent else float("nan"),
                "episodes": len(self.episode_returns), **stats}

    def _rollout(self) -> dict[str, Any]:
        import torch

        n_envs, length = self.cfg["num_envs"], self.cfg["rollout_len"]
        obs = torch.zeros(length + 1, n_envs, 4)
        actions = torch.zeros(length, n_envs, dtype=torch.long)
        logps, rewards = torch.zeros(length, n_envs), torch.zeros(length, n_envs)
        terminated, done, valid = (torch.zeros(length, n_envs, dtype=torch.bool) for _ in range(3))
        for t in range(length):
            obs[t] = self.obs
            # With gymnasium's NEXT_STEP autoreset, the step after an episode's end only resets
            # that env (its action is ignored, its reward is 0): keep it out of the update.
            valid[t] = torch.as_tensor(~self.after_done)
            with torch.no_grad():
                logits = self.actor(self.obs)
            probs = torch.softmax(logits, -1)
            action = torch.multinomial(probs, 1, generator=self.gen).squeeze(1)
            next_obs, reward, term, trunc, _ = self.env.step(action.numpy())
            actions[t], rewards[t] = action, torch.as_tensor(reward)
            logps[t] = torch.log_softmax(logits, -1).gather(1, action[:, None]).squeeze(1)
            terminated[t], done[t] = torch.as_tensor(term), torch.as_tensor(term | trunc)
            self.running_return += reward
            ended = term | trunc  # both are False on an autoreset step
            self.episode_returns.extend(self.running_return[ended].tolist())
            self.running_return[ended] = 0.0
            self.after_done = ended
            self.obs = torch.as_tensor(next_obs)
        obs[length] = self.obs
        with torch.no_grad():
            values = self.critic(obs.reshape(-1, 4)).reshape(length + 1, n_envs)
        # GAE. A truncated episode (500 steps) bootstraps from its final observation,
        # which NEXT_STEP autoreset keeps in the slot after it.
        gamma, lam = self.cfg["gamma"], self.cfg["gae_lambda"]
        advantages = torch.zeros(length, n_envs)
        running = torch.zeros(n_envs)
        for t in reversed(range(length)):
            delta = rewards[t] + gamma * values[t + 1] * (~terminated[t]) - values[t]
            running = delta + gamma * lam * (~done[t]) * running
            running = torch.where(valid[t], running, torch.zeros_like(running))
            advantages[t] = running
        keep = valid.reshape(-1)
        return {"obs": obs[:length].reshape(-1, 4)[keep], "actions": actions.reshape(-1)[keep],
                "logps": logps.reshape(-1)[keep], "advantages": advantages.reshape(-1)[keep],
                "returns": (advantages + values[:length]).reshape(-1)[keep]}

    def _update(self, batch: dict[str, Any]) -> dict[str, float]:
        import torch

        n = len(batch["actions"])
        clip, ent_coef, vf_coef = self.cfg["clip"], self.cfg["entropy_coef"], self.cfg["value_coef"]
        for _ in range(self.cfg["epochs"]):
            for idx in torch.randperm(n, generator=self.gen).split(self.cfg["minibatch_size"]):
                adv = batch["advantages"][idx]
                adv = (adv - adv.mean()) / (adv.std() + 1e-8) if len(idx) > 1 else adv
                logits = self.actor(batch["obs"][idx])
                logp_all = torch.log_softmax(logits, -1)
                logp = logp_all.gather(1, batch["actions"][idx, None]).squeeze(1)
                ratio = torch.exp(logp - batch["logps"][idx])
                policy_loss = -torch.min(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv).mean()
                value_loss = (self.critic(batch["obs"][idx]).squeeze(1) - batch["returns"][idx]).pow(2).mean()
                entropy = -(logp_all.exp() * logp_all).sum(-1).mean()
                loss = policy_loss + vf_coef * value_loss - ent_coef * entropy
                self.optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.params, self.cfg["max_grad_norm"])
                self.optimizer.step()
        return {"policy_loss": policy_loss.item(), "value_loss": value_loss.item(), "entropy": entropy.item()}

    def evaluate(self, episodes: int | None = None) -> float:
        """Mean return of greedy (argmax) episodes, played side by side, each capped at 500."""
        import gymnasium as gym
        import numpy as np
        import torch

        episodes = episodes or self.cfg["eval_episodes"]
        env = gym.make_vec("CartPole-v1", num_envs=episodes, vectorization_mode="vector_entry_point")
        obs, _ = env.reset(seed=self.eval_seed)
        self.eval_seed = (self.eval_seed + 1) % (2**31)
        returns, alive = np.zeros(episodes), np.ones(episodes, dtype=bool)
        with torch.no_grad():
            while alive.any():
                action = self.actor(torch.as_tensor(obs)).argmax(-1).numpy()
                obs, reward, term, trunc, _ = env.step(action)
                returns += reward * alive
                alive &= ~(term | trunc)
        env.close()
        return float(returns.mean())


class PPOTrainable(tune.Trainable):
    """PPO as a tuner trainable: one ``step()`` is one training iteration plus an evaluation.

    Reports ``episode_return_mean`` (training episodes), ``eval_return`` (greedy
    episodes) and ``env_steps`` (steps this trial has simulated). The checkpoint is
    the model and optimizer state; ``reset_config`` switches ``lr`` and
    ``entropy_coef`` in place, so PBT exploits on the warm worker.
    """

    def setup(self, config):
        import torch

        torch.set_num_threads(1)
        seed = config["seed"] if "seed" in config else (tune.get_context().seed or 0)
        # A paused trial restarts here (synchronous PBT): new environment and sampling streams,
        # not a replay of the ones it started with.
        self.agent = PPOAgent(config, seed=seed * 1_000_003 + self.iteration)

    def step(self):
        stats = self.agent.train_iteration()
        env_steps = (self.iteration + 1) * self.agent.cfg["steps_per_iteration"]
        return {**stats, "eval_return": self.agent.evaluate(), "env_steps": env_steps}

    def save_checkpoint(self, checkpoint_dir):
        return self.agent.state_dict()

    def load_checkpoint(self, checkpoint):
        self.agent.load_state_dict(checkpoint)

    def reset_config(self, new_config):
        self.agent.set_hparams(lr=new_config["lr"], entropy_coef=new_config["entropy_coef"])
        return True


SPACE = {
    "lr": tune.loguniform(1e-5, 1e-2),
    "entropy_coef": tune.uniform(0.0, 0.05),
}
MUTATIONS = dict(SPACE)  # PBT explores in the same ranges it starts from
#: ``--quick``: 2 trials x 3 iterations of 256 steps; synchronous generations, so that every
#: generation exploits the worse trial whatever the timing (a smoke run for the tests).
QUICK = {"population": 2, "max_steps": 3 * 256,
         "settings": {"steps_per_iteration": 256, "perturbation_interval": 1, "synch": True, "eval_episodes": 2}}


def run_pbt(population: int = 6, seed: int = 0, max_steps: int = 100_000, storage_path: str | None = None,
            perturbation_interval: int = 4, synch: bool = True, name: str | None = None, verbose: int = 2,
            **ppo: Any):
    """PBT over ``lr`` and ``entropy_coef``: ``population`` PPO trials of ``max_steps`` env steps each;
    ``ppo`` overrides ``PPO_DEFAULTS`` (constants in the config).

    Synchronous by default: every trial pauses at each perturbation point until the whole
    population is there, so each generation compares everyone at the same point and a
    seeded run makes the same decisions whatever the timing. Asynchronous PBT
    (``synch=False``) time-shares the CPUs instead: a trial at its point yields to the
    waiting ones and the least advanced runs next, and each trial is compared with the
    latest scores of the others when it gets there.
    """
    from schedulers import PopulationBasedTraining

    config = {**SPACE, **ppo}
    steps_per_iteration = config.get("steps_per_iteration", PPO_DEFAULTS["steps_per_iteration"])
    pbt = PopulationBasedTraining(perturbation_interval=perturbation_interval, hyperparam_mutations=MUTATIONS,
                                  quantile_fraction=0.25, synch=synch, seed=seed)
    return tune.run(
        PPOTrainable, config=config, num_samples=population, metric="eval_return", mode="max", scheduler=pbt,
        stop={"training_iteration": max(1, max_steps // steps_per_iteration)},
        resources_per_trial={"cpu": 1}, checkpoint_freq=1, keep_checkpoints_num=2, seed=seed,
        storage_path=storage_path, name=name or f"pbt-cartpole-seed{seed}", verbose=verbose,
        log_to_tensorboard=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=6, help="PBT population size (default 6)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=100_000, help="environment steps per trial")
    parser.add_argument("--storage", default=None, help="storage_path (default ~/tuner_results)")
    parser.add_argument("--asynchronous", action="store_true",
                        help="asynchronous PBT (no generations; trials time-share the CPUs)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 2 trials, 3 iterations of 256 steps, synchronous PBT")
    args = parser.parse_args(argv)
    kwargs: dict[str, Any] = {}
    if args.quick:
        args.population, args.max_steps, kwargs = QUICK["population"], QUICK["max_steps"], QUICK["settings"]
    started, started_at = time.perf_counter(), time.time()
    kwargs.setdefault("synch", not args.asynchronous)
    results = run_pbt(args.population, args.seed, args.max_steps, args.storage,
                      name=f"pbt-cartpole-seed{args.seed}{'-quick' if args.quick else ''}-{int(time.time())}",
                      **kwargs)
    wall = time.perf_counter() - started
    best = results.best_trial
    final = best.last_result["eval_return"]
    total_steps = sum(t.last_result["env_steps"] for t in results.trials if t.last_result)
    print(f"\nbest trial {best.trial_id}: final eval_return {final:.1f} after {best.last_result['env_steps']} "
          f"of its env steps; config lr={best.config['lr']:.3g} entropy_coef={best.config['entropy_coef']:.3g}")
    print(f"{len(results.trials)} trials, {total_steps} env steps in all, {wall:.0f} s wall")
    first = min(((r["timestamp"], t.trial_id, r) for t in results.trials for r in t.history
                 if r["eval_return"] >= TARGET), default=None, key=lambda x: x[0])
    if first:
        _, trial_id, result = first
        print(f"first eval_return >= {TARGET:g}: {trial_id} at its iteration {result['training_iteration']} "
              f"({result['env_steps']} of its env steps, {result['timestamp'] - started_at:.0f} s into the run)")
    from schedulers.pbt import ancestry

    lineage = results.pbt_lineage()
    chain = ancestry(lineage, best.trial_id)
    print(f"lineage of {best.trial_id} ({len(chain)} of {len(lineage)} exploits in the sweep):")
    for record in chain:
        old, new = record.get("old") or {}, record.get("new") or {}
        changes = ", ".join(f"{k} {_fmt(old.get(k))} -> {_fmt(new[k])}" for k in new) or "no change"
        print(f"  iteration {record.get('iteration')}: {record['trial_id']} (eval_return {record.get('score')}) "
              f"cloned {record['donor_id']} (eval_return {record.get('donor_score')}); {changes}")
    if args.quick:
        return 0
    if final < TARGET:
        print(f"FAILED: the best trial's final eval_return {final:.1f} < {TARGET:g}", file=sys.stderr)
        return 1
    return 0


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else repr(value)


if __name__ == "__main__":
    sys.exit(main())
