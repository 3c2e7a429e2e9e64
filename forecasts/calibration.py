"""Is a scenario set as wide and as smooth as the forecast errors it stands for?

Two figures describe both a forecast's held-out errors and a scenario set's deviations
from its mean, at one resolution (the block means of the quarter-hours):

* **spread** [-]: the mean absolute error (errors) or the probability-weighted mean
  absolute deviation from the scenario mean (scenarios), divided by the mean level. For a
  calibrated forecast both are the same number: if the observation is a draw of the
  predictive distribution, its mean distance from the predictive mean is the
  distribution's mean absolute deviation.
* **lag-1 autocorrelation** [-]: the correlation of the errors (deviations) of adjacent
  steps within a day, pooled over days (scenarios).

Steps where the quantity is undefined or zero in every scenario (PV at night) are left
out. :func:`forecaster_calibration` gives the figures of a fitted forecaster's held-out
calibration days; :func:`scenario_calibration` those of a scenario set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from forecasts.resolution import check_minutes

if TYPE_CHECKING:
    from forecasts.generate import ScenarioForecaster

__all__ = [
    "CALIBRATION_FIGURES",
    "block_means",
    "error_calibration",
    "forecaster_calibration",
    "mean_figures",
    "scenario_calibration",
    "scenario_deviation_calibration",
]

#: figures of every calibration record, in order
CALIBRATION_FIGURES = ("spread", "lag1")
#: a scenario mean below this share of the largest is a step without the quantity (night PV)
_ACTIVE_SHARE = 1e-6


def block_means(values: np.ndarray, minutes: int) -> np.ndarray:
    """Means of ``minutes``-long blocks of quarter-hours along the last axis.

    NaN in a block makes the block NaN. ``minutes`` 5 and 15 return the quarter-hours.
    """
    check_minutes(minutes)
    v = np.asarray(values, dtype=float)
    k = max(minutes // 15, 1)
    if k == 1:
        return v.copy()
    return v.reshape(*v.shape[:-1], v.shape[-1] // k, k).mean(axis=-1)


def _lag1(a: np.ndarray, b: np.ndarray, w: np.ndarray | None, centred: bool) -> float:
    """Correlation of paired values (weights ``w`` per pair) [-]; NaN without pairs."""
    if a.size < 2:
        return float("nan")
    w = np.ones_like(a) if w is None else w
    if centred:
        a = a - np.average(a, weights=w)
        b = b - np.average(b, weights=w)
    den = np.sqrt(np.sum(w * a * a) * np.sum(w * b * b))
    return float(np.sum(w * a * b) / den) if den > 0 else float("nan")


def error_calibration(
    observed: np.ndarray, predicted: np.ndarray, minutes: int = 15
) -> dict[str, float]:
    """Spread and lag-1 autocorrelation of forecast errors at ``minutes`` resolution.

    Parameters
    ----------
    observed, predicted : numpy.ndarray
        Quarter-hourly observations and point forecasts (predictive means), (days, 96)
        [any unit], NaN where undefined.
    minutes : int
        Resolution of the figures (15, 30, 60; 5 is taken as 15) [min].

    Returns
    -------
    dict
        ``spread`` (mean |error| / mean observation) [-], ``lag1`` (Pearson correlation
        of adjacent steps' errors within days) [-], ``n_days``, and ``level``: the mean
        observation [unit of ``observed``].
    """
    y = block_means(observed, minutes)
    e = y - block_means(predicted, minutes)
    ok = np.isfinite(e)
    pair = ok[:, :-1] & ok[:, 1:]
    level = float(np.abs(y[ok]).mean()) if ok.any() else float("nan")
    spread = float(np.abs(e[ok]).mean() / level) if ok.any() else float("nan")
    lag1 = _lag1(e[:, :-1][pair], e[:, 1:][pair], None, centred=True)
    return {"spread": spread, "lag1": lag1, "n_days": len(e), "level": level}


def scenario_deviation_calibration(
    values: np.ndarray, weight: np.ndarray, level: float | None = None
) -> dict[str, float]:
    """Spread and lag-1 autocorrelation of a scenario set's deviations from its mean.

    Parameters
    ----------
    values : numpy.ndarray
        (scenario, time) at the resolution to judge [any unit].
    weight : numpy.ndarray
        (scenario,) probabilities summing to 1 [-].
    level : float, optional
        The level the spread is relative to [unit of ``values``]; default the mean of
        the scenario mean over the active steps. Against held-out errors, give the
        observed mean level, so that both spreads share one denominator.

    Returns
    -------
    dict
        ``spread``: weighted mean |value - mean| over the active steps / ``level`` [-];
        ``lag1``: weighted correlation of adjacent steps' deviations pooled over
        scenarios [-] (the deviations have mean zero at every step).
    """
    v = np.asarray(values, dtype=float)
    w = np.asarray(weight, dtype=float)
    mean = w @ v
    dev = v - mean
    scale = np.abs(mean).max() if v.size else 0.0
    active = np.abs(mean) > _ACTIVE_SHARE * scale
    if not active.any():
        return {"spread": float("nan"), "lag1": float("nan")}
    level = float(np.abs(mean[active]).mean()) if level is None else float(level)
    spread = float((w @ np.abs(dev[:, active])).mean() / level)
    pair = active[:-1] & active[1:]
    a, b = dev[:, :-1][:, pair], dev[:, 1:][:, pair]
    weights = np.broadcast_to(w[:, None], a.shape)
    return {"spread": spread, "lag1": _lag1(a.ravel(), b.ravel(), weights.ravel(), False)}


def forecaster_calibration(fc: ScenarioForecaster, minutes: int) -> dict[str, dict[str, float]]:
    """Held-out error figures of each resource of fitted forecasters, at ``minutes``.

    The errors are those of the calibration days (every ``calibration_every``-th
    training day, held out of the regressions), against the calibrated predictive mean.
    """
    return {
        resource: error_calibration(f.calibration_observed_pu_, f.calibration_mean_pu_, minutes)
        for resource, f in zip(fc.resources, fc.forecasters, strict=True)
    }


def scenario_calibration(scenarios: xr.Dataset) -> dict[str, dict[str, float]]:
    """Scenario figures of each resource of a scenario set, at its own resolution.

    Parameters
    ----------
    scenarios : xarray.Dataset
        ``value_pu`` (scenario, time, resource) and ``weight`` (scenario); with EV
        sessions (:func:`workbench.scenarios.add_ev_sessions`) also ``ev``: the total
        uncontrolled charging power of all pools, ``ev_p_uncontrolled_mw``.

    Returns
    -------
    dict
        Resource -> :func:`scenario_deviation_calibration`.
    """
    w = scenarios["weight"].to_numpy()
    v = scenarios["value_pu"].transpose("scenario", "time", "resource")
    out = {
        str(r): scenario_deviation_calibration(v.sel(resource=r).to_numpy(), w)
        for r in v["resource"].to_numpy()
    }
    if "ev_p_uncontrolled_mw" in scenarios and scenarios.sizes.get("ev", 0):
        ev = scenarios["ev_p_uncontrolled_mw"].transpose("scenario", "time", "ev").to_numpy()
        out["ev"] = scenario_deviation_calibration(ev.sum(axis=-1), w)
    return out


def mean_figures(records: list[Mapping[str, Mapping[str, float]]]) -> dict[str, dict[str, float]]:
    """The mean of each figure of each resource over several records (days) [-]."""
    keys = dict.fromkeys(k for r in records for k in r)
    out: dict[str, dict[str, float]] = {}
    for key in keys:
        rows = [r[key] for r in records if key in r]
        out[key] = {
            name: float(np.nanmean([row.get(name, np.nan) for row in rows]))
            for name in CALIBRATION_FIGURES
        }
    return out
