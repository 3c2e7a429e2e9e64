"""Quantile forecasts as piecewise-linear quantile functions: pure functions.

A forecast of one quarter-hour is a set of quantiles ``q`` at fixed levels ``levels``
(0 < level < 1). It defines a quantile function ``Q(u)``, ``u`` in [0, 1], linear between
the knots and extended linearly to ``u = 0`` and ``u = 1`` by the slope of the outermost
knots, clipped to the physical bounds. Everything here is vectorised over leading axes.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "coverage",
    "quantile_function",
    "randomized_pit",
    "recalibration_map",
    "sort_quantiles",
]


def sort_quantiles(q: np.ndarray) -> np.ndarray:
    """Non-crossing quantiles by rearrangement (Chernozhukov et al., 2010): sort the last axis."""
    return np.sort(q, axis=-1)


def _knots(
    q: np.ndarray, levels: np.ndarray, lower: float | None, upper: float | None
) -> tuple[np.ndarray, np.ndarray]:
    levels = np.asarray(levels, dtype=float)
    lo = q[..., :1] - (q[..., 1:2] - q[..., :1]) * levels[0] / (levels[1] - levels[0])
    hi = q[..., -1:] + (q[..., -1:] - q[..., -2:-1]) * (1 - levels[-1]) / (levels[-1] - levels[-2])
    values = np.concatenate([lo, q, hi], axis=-1)
    if lower is not None or upper is not None:
        values = np.clip(values, lower, upper)
    return np.concatenate([[0.0], levels, [1.0]]), values


def quantile_function(
    q: np.ndarray,
    levels: np.ndarray,
    u: np.ndarray,
    *,
    lower: float | None = None,
    upper: float | None = None,
) -> np.ndarray:
    """Evaluate the quantile functions at probabilities ``u``.

    Parameters
    ----------
    q : numpy.ndarray
        Non-crossing quantiles, shape (..., L) [any unit].
    levels : numpy.ndarray
        Increasing levels in (0, 1), shape (L,) [-], L >= 2.
    u : numpy.ndarray
        Probabilities in [0, 1], shape (..., M) (leading axes broadcast with ``q``) [-].
    lower, upper : float, optional
        Physical bounds of the variable [same unit as ``q``].

    Returns
    -------
    numpy.ndarray
        Shape broadcast(q[..., :1], u) [same unit as ``q``].
    """
    ku, kv = _knots(q, levels, lower, upper)
    u = np.clip(np.asarray(u, dtype=float), 0.0, 1.0)
    idx = np.clip(np.searchsorted(ku, u, side="right") - 1, 0, len(ku) - 2)
    w = (u - ku[idx]) / (ku[idx + 1] - ku[idx])
    shape = np.broadcast_shapes(kv.shape[:-1], u.shape[:-1])
    kv = np.broadcast_to(kv, (*shape, kv.shape[-1]))
    idx = np.broadcast_to(idx, (*shape, idx.shape[-1]))
    w = np.broadcast_to(w, idx.shape)
    v0 = np.take_along_axis(kv, idx, axis=-1)
    v1 = np.take_along_axis(kv, idx + 1, axis=-1)
    return v0 + w * (v1 - v0)


def randomized_pit(
    y: np.ndarray,
    q: np.ndarray,
    levels: np.ndarray,
    rng: np.random.Generator,
    *,
    lower: float | None = None,
    upper: float | None = None,
    grid_size: int = 1001,
    chunk: int = 20000,
) -> np.ndarray:
    """Probability integral transform ``F(y)`` of observations under the forecasts.

    Where the forecast has a point mass (e.g. PV clipped at zero) the PIT is drawn
    uniformly over the mass, so a calibrated forecast has uniform PIT values.

    Parameters
    ----------
    y : numpy.ndarray
        Observations, shape (N,) [unit of ``q``].
    q : numpy.ndarray
        Quantiles, shape (N, L).
    levels : numpy.ndarray
        Shape (L,) [-].
    rng : numpy.random.Generator
    grid_size : int
        Resolution of the probability grid [-].

    Returns
    -------
    numpy.ndarray
        PIT values in [0, 1], shape (N,).
    """
    grid = np.linspace(0.0, 1.0, grid_size)
    out = np.empty(len(y))
    for start in range(0, len(y), chunk):
        sl = slice(start, start + chunk)
        qg = quantile_function(q[sl], levels, grid[None, :], lower=lower, upper=upper)
        below = (qg < y[sl, None]).mean(axis=1)
        at_or_below = (qg <= y[sl, None]).mean(axis=1)
        out[sl] = below + rng.random(len(below)) * (at_or_below - below)
    return out


def recalibration_map(pit: np.ndarray, grid_size: int = 101) -> tuple[np.ndarray, np.ndarray]:
    """Map nominal probabilities to the model's levels that achieve them (Kuleshov et al., 2018).

    If the PIT values of a calibration set are ``p``, the model's level with empirical
    probability ``u`` is the ``u``-quantile of ``p``.

    Returns
    -------
    nominal, model_level : numpy.ndarray
        Both increasing from 0 to 1, shape (grid_size,) [-].
    """
    nominal = np.linspace(0.0, 1.0, grid_size)
    model = np.quantile(pit, nominal)
    model[0], model[-1] = 0.0, 1.0
    return nominal, np.maximum.accumulate(model)


def coverage(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """Fraction of observations inside ``[lo, hi]`` [-]."""
    return float(np.mean((y >= lo) & (y <= hi)))
