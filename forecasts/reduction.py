"""Scenario reduction: fast-forward selection (Heitsch and Roemisch, 2003) and energy
(support-point) selection (Mak and Joseph, 2018).

Fast-forward selection minimises the transport (Kantorovich) distance between the
reduced, re-weighted set and the sample; it keeps representative scenarios but shrinks the
spread. Energy selection greedily minimises the energy distance between an equally weighted
subset and the sample, which keeps the spread and so the energy score of the set.
"""

from __future__ import annotations

import numpy as np

from forecasts.errors import ForecastError

__all__ = ["energy_selection", "fast_forward_selection"]


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
    dist, p = _distances(scenarios, n_keep, weights)
    n = len(p)
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


def _distances(
    scenarios: np.ndarray, n_keep: int, weights: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(scenarios, dtype=float)
    n = len(x)
    if not 1 <= n_keep <= n:
        raise ForecastError(f"n_scenarios must be in 1..{n} (the sample size), got {n_keep}")
    p = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, dtype=float)
    sq = (x**2).sum(axis=1)
    return np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)), p


def energy_selection(
    scenarios: np.ndarray, n_keep: int, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Select ``n_keep`` equally weighted scenarios close to the sample in energy distance.

    Greedy: adds the scenario that most reduces
    ``2 mean_{i in S, j} p_j |x_i - x_j| - mean_{i, k in S} |x_i - x_k|``.

    Parameters and returns as :func:`fast_forward_selection`; the weights are ``1/n_keep``.
    """
    dist, p = _distances(scenarios, n_keep, weights)
    to_sample = dist @ p  # E|x_i - X| under the sample
    selected: list[int] = []
    free = np.ones(len(p), dtype=bool)
    a_sum = 0.0  # sum over S of to_sample
    d_sum = 0.0  # sum over S x S of distances
    d_to_sel = np.zeros(len(p))  # sum over S of distance to each candidate
    for k in range(1, n_keep + 1):
        obj = 2.0 * (a_sum + to_sample) / k - (d_sum + 2.0 * d_to_sel) / k**2
        obj[~free] = np.inf
        u = int(np.argmin(obj))
        selected.append(u)
        free[u] = False
        a_sum += to_sample[u]
        d_sum += 2.0 * d_to_sel[u]
        d_to_sel += dist[:, u]
    idx = np.asarray(selected)
    return idx, np.full(n_keep, 1.0 / n_keep)
