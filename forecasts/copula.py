"""Gaussian copula over time (and across series) for scenario generation.

Pinson et al. (2009): marginal predictive distributions are turned into temporally
correlated trajectories by drawing a multivariate Gaussian ``z`` with the dependence of
the forecast errors, mapping it to uniform ``u = Phi(z)`` and through each step's
quantile function. The temporal correlation is the empirical autocorrelation of the
Gaussianised PIT values of calibration days (held out of the regression), at every lag
within a day (:func:`fit_autocorrelation`): a stationary Toeplitz correlation matrix,
projected onto the positive semi-definite matrices. A one-parameter model
(``exp(-h / nu)``, a Gaussian AR(1)) fitted to the first lags was measured to miss the
errors' correlation at the lags that matter for coarser steps (30 and 60 min means).
Several series observed on the same days (e.g. PV at two sites) share correlated
innovations with contemporaneous correlation ``C``.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import toeplitz
from scipy.special import ndtr

__all__ = [
    "correlation_length_steps",
    "exponential_autocorrelation",
    "fit_autocorrelation",
    "fit_cross_correlation",
    "sample_uniform",
]

#: pairs of values needed to estimate the correlation at one lag [-]
_MIN_PAIRS = 30
#: least eigenvalue kept when a correlation matrix is made positive definite [-]
_EIG_FLOOR = 1e-6


def exponential_autocorrelation(correlation_steps: float, n_steps: int) -> np.ndarray:
    """``exp(-h / nu)`` at lags ``h = 0 .. n_steps - 1`` [-] (a Gaussian AR(1))."""
    return np.exp(-np.arange(n_steps) / float(correlation_steps))


def fit_autocorrelation(z: np.ndarray) -> np.ndarray:
    """Autocorrelation of ``z`` at every lag within a day, pooled over days and steps.

    At lag ``h`` the correlation of the pairs ``(z[d, t], z[d, t + h])`` of all days and
    steps where both are defined. A lag with fewer than 30 pairs (e.g. PV lags longer
    than the day) continues the last estimated lag's decay as ``rho_H ** (h / H)``.
    Negative estimates are kept (the matrix is made positive semi-definite when sampled).

    Parameters
    ----------
    z : numpy.ndarray
        Gaussianised PIT values, shape (days, steps), NaN where undefined (night PV).

    Returns
    -------
    numpy.ndarray
        Shape (steps,), ``rho[0] = 1`` [-].
    """
    z = np.asarray(z, dtype=float)
    n_steps = z.shape[1]
    rho = np.ones(n_steps)
    last = 0
    for h in range(1, n_steps):
        a, b = z[:, :-h].ravel(), z[:, h:].ravel()
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() < _MIN_PAIRS or a[ok].std() == 0 or b[ok].std() == 0:
            break
        rho[h] = float(np.corrcoef(a[ok], b[ok])[0, 1])
        last = h
    if last < n_steps - 1:
        decay = max(rho[last], 0.0) if last else 0.0
        h = np.arange(last + 1, n_steps)
        rho[last + 1 :] = decay ** (h / max(last, 1))
    return rho


def correlation_length_steps(rho: np.ndarray) -> float:
    """First lag at which an autocorrelation falls to ``1/e`` [steps] (interpolated).

    ``len(rho)`` if it never does.
    """
    rho = np.asarray(rho, dtype=float)
    below = np.flatnonzero(rho <= np.exp(-1.0))
    if len(below) == 0:
        return float(len(rho))
    h = int(below[0])
    r0, r1 = rho[h - 1], rho[h]
    return float(h - 1 + (r0 - np.exp(-1.0)) / (r0 - r1)) if r0 != r1 else float(h)


def _correlation_matrix(rho: np.ndarray) -> np.ndarray:
    """The Toeplitz matrix of ``rho``, made positive definite with a unit diagonal."""
    c = toeplitz(rho)
    w, v = np.linalg.eigh(c)
    if w.min() < _EIG_FLOOR:
        c = (v * np.clip(w, _EIG_FLOOR, None)) @ v.T
        d = np.sqrt(np.diag(c))
        c = c / np.outer(d, d)
    return c


def fit_cross_correlation(zs: list[np.ndarray]) -> np.ndarray:
    """Contemporaneous correlation of several series' Gaussianised PIT on common days.

    Parameters
    ----------
    zs : list of numpy.ndarray
        Each (days, steps) on the same days, NaN where undefined.

    Returns
    -------
    numpy.ndarray
        Positive semi-definite correlation matrix, shape (len(zs), len(zs)).
    """
    n = len(zs)
    c = np.eye(n)
    for i in range(n):
        for j in range(i + 1, n):
            a, b = zs[i].ravel(), zs[j].ravel()
            ok = np.isfinite(a) & np.isfinite(b)
            c[i, j] = c[j, i] = float(np.corrcoef(a[ok], b[ok])[0, 1]) if ok.sum() > 30 else 0.0
    w, v = np.linalg.eigh(c)
    c = (v * np.clip(w, 1e-6, None)) @ v.T
    d = np.sqrt(np.diag(c))
    return c / np.outer(d, d)


def sample_uniform(
    n_samples: int,
    n_steps: int,
    autocorrelation: np.ndarray,
    rng: np.random.Generator,
    cross: np.ndarray | None = None,
    *,
    independent: bool = False,
) -> np.ndarray:
    """Uniform copula samples ``u = Phi(z)``.

    Parameters
    ----------
    n_samples, n_steps : int
    autocorrelation : numpy.ndarray
        Temporal correlation of ``z`` at lags ``0 .. n_steps - 1`` per series, shape
        (n_series, n_steps) [-] (:func:`fit_autocorrelation`,
        :func:`exponential_autocorrelation`).
    rng : numpy.random.Generator
    cross : numpy.ndarray, optional
        Contemporaneous correlation of the innovations, (n_series, n_series); identity
        by default.
    independent : bool
        Draw every step and series independently (the reference the copula is scored
        against).

    Returns
    -------
    numpy.ndarray
        Shape (n_samples, n_series, n_steps), values in (0, 1).
    """
    rho = np.atleast_2d(np.asarray(autocorrelation, dtype=float))
    n_series = rho.shape[0]
    if rho.shape[1] < n_steps:
        raise ValueError(
            f"autocorrelation holds {rho.shape[1]} lags, {n_steps} steps need {n_steps}"
        )
    if independent:
        return ndtr(rng.standard_normal((n_samples, n_series, n_steps)))
    chol = np.linalg.cholesky(cross) if cross is not None else np.eye(n_series)
    eps = rng.standard_normal((n_samples, n_steps, n_series)) @ chol.T
    z = np.empty((n_samples, n_series, n_steps))
    for i in range(n_series):
        lower = np.linalg.cholesky(_correlation_matrix(rho[i, :n_steps]))
        z[:, i, :] = eps[:, :, i] @ lower.T
    return ndtr(z)
