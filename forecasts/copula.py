"""Gaussian copula over time (and across series) for scenario generation.

Pinson et al. (2009): marginal predictive distributions are turned into temporally
correlated trajectories by drawing a multivariate Gaussian ``z`` with the dependence of
the forecast errors, mapping it to uniform ``u = Phi(z)`` and through each step's
quantile function. The temporal covariance is the exponential model
``corr(z_t, z_{t+h}) = exp(-h / nu)``, which is exactly a stationary Gaussian AR(1) with
``rho = exp(-1 / nu)``; ``nu`` is fitted to the Gaussianised PIT values of calibration
days. Several series observed on the same days (e.g. PV at two sites) share correlated
innovations with contemporaneous correlation ``C``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

__all__ = ["fit_cross_correlation", "fit_time_correlation", "sample_uniform"]

#: lags used to fit the correlation length [quarter-hours]
_FIT_LAGS = range(1, 9)


def fit_time_correlation(z: np.ndarray) -> float:
    """Fit ``nu`` of ``exp(-h / nu)`` to the lagged correlation of ``z`` within days.

    Parameters
    ----------
    z : numpy.ndarray
        Gaussianised PIT values, shape (days, steps), NaN where undefined (night PV).

    Returns
    -------
    float
        Correlation length [steps]; a small value (0.1) if no lag is correlated.
    """
    estimates = []
    for h in _FIT_LAGS:
        a, b = z[:, :-h].ravel(), z[:, h:].ravel()
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() < 30:
            continue
        rho = float(np.corrcoef(a[ok], b[ok])[0, 1])
        if 0.01 < rho < 0.9999:
            estimates.append(-h / np.log(rho))
    return float(np.median(estimates)) if estimates else 0.1


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
    correlation_steps: np.ndarray,
    rng: np.random.Generator,
    cross: np.ndarray | None = None,
    *,
    independent: bool = False,
) -> np.ndarray:
    """Uniform copula samples ``u = Phi(z)``.

    Parameters
    ----------
    n_samples, n_steps : int
    correlation_steps : numpy.ndarray
        ``nu`` per series [steps], shape (n_series,).
    rng : numpy.random.Generator
    cross : numpy.ndarray, optional
        Contemporaneous correlation, (n_series, n_series); identity by default.
    independent : bool
        Draw every step and series independently (the reference the copula is scored
        against).

    Returns
    -------
    numpy.ndarray
        Shape (n_samples, n_series, n_steps), values in (0, 1).
    """
    nu = np.atleast_1d(np.asarray(correlation_steps, dtype=float))
    n_series = len(nu)
    if independent:
        return ndtr(rng.standard_normal((n_samples, n_series, n_steps)))
    chol = np.linalg.cholesky(cross) if cross is not None else np.eye(n_series)
    rho = np.exp(-1.0 / nu)
    eps = rng.standard_normal((n_samples, n_steps, n_series)) @ chol.T
    z = np.empty((n_samples, n_series, n_steps))
    z[:, :, 0] = eps[:, 0]
    scale = np.sqrt(1.0 - rho**2)
    for t in range(1, n_steps):
        z[:, :, t] = rho * z[:, :, t - 1] + scale * eps[:, t]
    return ndtr(z)
