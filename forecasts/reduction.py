"""Scenario reduction by fast-forward selection (Heitsch and Roemisch, 2003)."""

from __future__ import annotations

import numpy as np

from forecasts.errors import ForecastError

__all__ = ["fast_forward_selection"]


def fast_forward_selection(
    scenarios: np.ndarray, n_keep: int, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Select ``n_keep`` scenarios and redistribute the probabilities of the others.

    Greedily adds the scenario that most reduces the probability-weighted Euclidean
    distance of all scenarios to their nearest selected one; each dropped scenario then
    gives its probability to its nearest kept scenario.

    Parameters
    ----------
    scenarios : numpy.ndarray
        Shape (n, d): one flattened trajectory per row (scale the columns comparably).
    n_keep : int
        Number to keep, 1..n.
    weights : numpy.ndarray, optional
        Probabilities, shape (n,), summing to 1 (equal by default).

    Returns
    -------
    index : numpy.ndarray of int
        Kept rows, in selection order.
    weight : numpy.ndarray
        Their new probabilities, summing to 1.
    """
    x = np.asarray(scenarios, dtype=float)
    n = len(x)
    if not 1 <= n_keep <= n:
        raise ForecastError(f"n_scenarios must be in 1..{n} (the sample size), got {n_keep}")
    p = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, dtype=float)
    sq = (x**2).sum(axis=1)
    dist = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0))
    selected: list[int] = []
    cost = dist.copy()  # cost[k, u]: distance of k to the selection if u is added
    free = np.ones(n, dtype=bool)
    for _ in range(n_keep):
        score = p @ cost
        score[~free] = np.inf
        u = int(np.argmin(score))
        selected.append(u)
        free[u] = False
        cost = np.minimum(cost, cost[:, [u]])
    idx = np.asarray(selected)
    nearest = idx[np.argmin(dist[:, idx], axis=1)]
    w = np.bincount(nearest, weights=p, minlength=n)[idx]
    return idx, w / w.sum()
