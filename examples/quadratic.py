"""The smallest real sweep: a noisy quadratic whose optimum is known (x=3, y=-1).

    python examples/quadratic.py
"""

from __future__ import annotations

import random

import tuner as tune


def train(config):
    """A curve that improves with steps towards (x - 3)^2 + (y + 1)^2."""
    rng = random.Random(tune.get_context().seed)
    for step in range(1, config["steps"] + 1):
        distance = (config["x"] - 3) ** 2 + (config["y"] + 1) ** 2
        loss = distance + 10.0 / step + rng.gauss(0, 0.01)
        tune.report({"loss": loss, "distance": distance})


SPACE = {
    "x": tune.uniform(-5, 5),
    "y": tune.uniform(-5, 5),
    "steps": 20,
}

if __name__ == "__main__":
    results = tune.run(train, config=SPACE, num_samples=16, metric="loss", mode="min", seed=0)
    print("best config:", results.best_config)
