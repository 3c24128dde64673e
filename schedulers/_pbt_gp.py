"""A small Gaussian process in numpy and the UCB choice PB2 makes with it.

Inputs are scaled to the unit box before they get here; targets are
standardized inside ``posterior``. The RBF length-scale is picked from a short
grid by the log marginal likelihood: simple, deterministic and cheap for the
few hundred points PB2 keeps.
"""

from __future__ import annotations

import numpy as np

LENGTH_SCALES = (0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 2.0)
NOISE = 0.05  # variance of the observation noise, on standardized targets


def rbf(a: np.ndarray, b: np.ndarray, length_scale: float) -> np.ndarray:
    """``exp(-|a - b|^2 / (2 l^2))`` for every pair of rows."""
    sq = np.sum(a**2, 1)[:, None] + np.sum(b**2, 1)[None, :] - 2.0 * a @ b.T
    return np.exp(-0.5 * np.maximum(sq, 0.0) / length_scale**2)


def log_marginal_likelihood(x: np.ndarray, y: np.ndarray, length_scale: float, noise: float = NOISE) -> float:
    """log p(y | x) of a zero-mean GP with unit signal variance (``y`` standardized)."""
    k = rbf(x, x, length_scale) + noise * np.eye(len(x))
    chol = np.linalg.cholesky(k)
    alpha = np.linalg.solve(chol.T, np.linalg.solve(chol, y))
    return float(-0.5 * y @ alpha - np.sum(np.log(np.diag(chol))) - 0.5 * len(x) * np.log(2 * np.pi))


def fit_length_scale(x: np.ndarray, y: np.ndarray) -> float:
    """The length-scale of ``LENGTH_SCALES`` with the highest marginal likelihood."""
    return max(LENGTH_SCALES, key=lambda ls: log_marginal_likelihood(x, y, ls))


def posterior(x: np.ndarray, y: np.ndarray, candidates: np.ndarray,
              length_scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and standard deviation at ``candidates`` (in standardized units of ``y``)."""
    y = (y - y.mean()) / (y.std() or 1.0)
    length_scale = length_scale or fit_length_scale(x, y)
    k = rbf(x, x, length_scale) + NOISE * np.eye(len(x))
    chol = np.linalg.cholesky(k)
    k_star = rbf(x, candidates, length_scale)
    alpha = np.linalg.solve(chol.T, np.linalg.solve(chol, y))
    v = np.linalg.solve(chol, k_star)
    mean = k_star.T @ alpha
    var = np.maximum(1.0 - np.sum(v**2, 0), 1e-12)
    return mean, np.sqrt(var)


def ucb_argmax(x: np.ndarray, y: np.ndarray, candidates: np.ndarray, kappa: float) -> int:
    """Index of the candidate with the highest upper confidence bound ``mean + kappa * sd``."""
    mean, sd = posterior(x, y, candidates)
    return int(np.argmax(mean + kappa * sd))
