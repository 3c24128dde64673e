"""The search space: one hyperparameter's values (``domains``) and a nested config
of them turned into concrete trial configs (``config``)."""

from tuner.space.config import *  # noqa: F401,F403  (``tune.space.resolve`` etc., as before the split)
