"""A simple, seeded scenario generator for PV, load and wind.

This generator is deliberately simple: it takes the *observed* profile of the requested
day (by default the embedded SimBench 2016 data of ``cases/data``; a caller may pass the
day of other sources, e.g. ``workbench.scenarios.observed_day``) as the central forecast
and multiplies it by ``1 + sigma * e_t``, where ``e_t`` is a stationary Gaussian AR(1)
process with correlation time ``correlation_hours`` (temporally correlated forecast
errors). PV and wind are clipped to ``[0, 1]`` per unit of capacity, loads to ``>= 0``.
It is not a forecast model (it knows the day's realised shape); it exists so the whole
pipeline runs on plausible scenarios. Probabilistic forecasting replaces it.

Resolutions: the data are quarter-hourly; 30 and 60 min values are averages of them and
5 min values repeat them, so every resolution is consistent by aggregation, and the
hourly (first-stage) values are the averages of the second-stage values of each hour.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import xarray as xr

from cases.profiles import day_profiles
from forecasts.errors import ForecastError

__all__ = ["RESOURCES", "ScenarioError", "generate_scenarios", "hourly"]

#: resource name -> embedded profile column
RESOURCES: dict[str, str] = {
    "load_residential": "load_residential_p_pu",
    "load_commercial": "load_commercial_p_pu",
    "load_transmission": "load_transmission_p_pu",
    "pv": "pv_p_pu",
    "wind": "wind_p_pu",
}
_BOUNDED = {"pv", "wind"}
_VALID_MINUTES = (5, 15, 30, 60)


class ScenarioError(ForecastError):
    """Invalid scenario-generation request (a :class:`ForecastError`, so a ``ValueError``)."""


def _resample(values: np.ndarray, minutes: int) -> np.ndarray:
    """Quarter-hourly (time, resource) values to ``minutes`` resolution."""
    if minutes == 15:
        return values
    if minutes == 5:
        return np.repeat(values, 3, axis=0)
    k = minutes // 15
    return values.reshape(values.shape[0] // k, k, *values.shape[1:]).mean(axis=1)


def _ar1(rng: np.random.Generator, n_steps: int, n_series: int, rho: float) -> np.ndarray:
    """Stationary AR(1) paths with unit variance, shape (n_steps, n_series)."""
    out = np.empty((n_steps, n_series))
    out[0] = rng.standard_normal(n_series)
    scale = np.sqrt(1.0 - rho**2)
    for t in range(1, n_steps):
        out[t] = rho * out[t - 1] + scale * rng.standard_normal(n_series)
    return out


def _check_request(
    n_scenarios: int, resolution_minutes: int, horizon_hours: int, start_hour: int
) -> None:
    """Raise :class:`ScenarioError` for an invalid resolution, count or horizon."""
    if resolution_minutes not in _VALID_MINUTES:
        raise ScenarioError(
            f"resolution_minutes must be one of {_VALID_MINUTES}, got {resolution_minutes}"
        )
    if n_scenarios < 1:
        raise ScenarioError(f"n_scenarios must be at least 1, got {n_scenarios}")
    if not 1 <= horizon_hours <= 24 or not 0 <= start_hour <= 24 - horizon_hours:
        raise ScenarioError(
            f"horizon {start_hour}:00 + {horizon_hours} h must lie within the "
            "day (start_hour in 0..23, start_hour + horizon_hours <= 24)"
        )


def _central_profile(
    day: dt.date, horizon_hours: int, start_hour: int, observed: pd.DataFrame | None
) -> pd.DataFrame:
    """The quarter-hours of the horizon [pu], one column per resource (embedded or given)."""
    if observed is None:
        return day_profiles(day, horizon_hours, start_hour)[list(RESOURCES.values())]
    missing = [r for r in RESOURCES if r not in observed.columns]
    if missing or len(observed) != 4 * horizon_hours:
        raise ScenarioError(
            f"observed profiles need the columns {list(RESOURCES)} and "
            f"{4 * horizon_hours} quarter-hours; got columns {list(observed.columns)} "
            f"and {len(observed)} rows"
        )
    return observed[list(RESOURCES)]


def _noisy_values(
    base: np.ndarray,
    n_scenarios: int,
    entropy: list[int],
    sigma: np.ndarray,
    rho: float,
) -> np.ndarray:
    """``base`` (time, resource) [pu] times ``1 + sigma * AR(1)`` per scenario, clipped.

    Returns
    -------
    numpy.ndarray
        (scenario, time, resource) [pu]; PV and wind in [0, 1], loads >= 0.
    """
    n_t, n_r = base.shape
    children = np.random.SeedSequence(entropy).spawn(n_scenarios)
    values = np.empty((n_scenarios, n_t, n_r))
    for s, child in enumerate(children):
        noise = _ar1(np.random.default_rng(child), n_t, n_r, rho)
        values[s] = base * (1.0 + sigma * noise)
    bounded = np.array([r in _BOUNDED for r in RESOURCES])
    values[..., bounded] = values[..., bounded].clip(0.0, 1.0)
    values[..., ~bounded] = values[..., ~bounded].clip(min=0.0)
    return values


def _scenario_dataset(
    values: np.ndarray,
    base: np.ndarray,
    start: pd.Timestamp,
    horizon_hours: int,
    resolution_minutes: int,
) -> xr.Dataset:
    """The scenario values [pu], their hourly means, weights and the central profile."""
    n_scenarios, n_t, _ = values.shape
    time = pd.date_range(start, periods=n_t, freq=f"{resolution_minutes}min")
    period = pd.date_range(start, periods=horizon_hours, freq="60min")
    ds = xr.Dataset(
        {
            "value_pu": (("scenario", "time", "resource"), values),
            "expected_pu": (("time", "resource"), base),
            "weight": ("scenario", np.full(n_scenarios, 1.0 / n_scenarios)),
        },
        coords={
            "scenario": np.arange(n_scenarios),
            "time": time,
            "period": period,
            "resource": list(RESOURCES),
        },
    )
    ds["value_hourly_pu"] = hourly(ds["value_pu"], period)
    return ds


def _label(ds: xr.Dataset, seed: int, day: dt.date, resolution_minutes: int) -> xr.Dataset:
    """Units and descriptions of the variables, and the generator's attributes."""
    ds["value_pu"].attrs = {
        "units": "pu",
        "long_name": "scenario value (load: of peak, PV/wind: of capacity)",
    }
    ds["value_hourly_pu"].attrs = {"units": "pu", "long_name": "hourly mean of value_pu"}
    ds["expected_pu"].attrs = {"units": "pu", "long_name": "central profile"}
    ds["weight"].attrs = {"units": "1", "long_name": "scenario probability"}
    ds.attrs = {
        "generator": "profile_noise",
        "seed": seed,
        "day": str(day),
        "resolution_minutes": resolution_minutes,
    }
    return ds


def generate_scenarios(
    day: dt.date,
    n_scenarios: int,
    *,
    seed: int,
    resolution_minutes: int = 15,
    horizon_hours: int = 24,
    start_hour: int = 0,
    pv_sigma: float = 0.25,
    load_sigma: float = 0.05,
    wind_sigma: float = 0.2,
    correlation_hours: float = 3.0,
    stream: int = 0,
    observed: pd.DataFrame | None = None,
) -> xr.Dataset:
    """Equiprobable PV, load and wind scenarios for one day.

    Parameters
    ----------
    day : datetime.date
        Day (of the embedded profile year 2016 unless ``observed`` is given).
    n_scenarios : int
        Number of scenarios (>= 1).
    seed : int
        Scenario ``s`` uses the stream ``SeedSequence([seed, day.toordinal()]).spawn(n)[s]``,
        so the same seed gives the same numbers whatever runs them.
    resolution_minutes : int
        Second-stage resolution: 5, 15, 30 or 60 [min].
    horizon_hours : int
        Length of the horizon (1..24) [h].
    start_hour : int
        First hour of the horizon (0..23) [h]; ``start_hour + horizon_hours <= 24``.
    pv_sigma, load_sigma, wind_sigma : float
        Relative standard deviation of the multiplicative error [-].
    correlation_hours : float
        Correlation time of the errors [h].
    stream : int
        Independent random stream (>= 0): stream ``k > 0`` uses
        ``SeedSequence([seed, day.toordinal(), k])`` instead (fresh scenarios for an
        out-of-sample evaluation).
    observed : pandas.DataFrame, optional
        The observed quarter-hours of the horizon [pu], one column per resource of
        :data:`RESOURCES`; default the embedded 2016 profiles of ``day``.

    Returns
    -------
    xarray.Dataset
        ``value_pu`` (scenario, time, resource) [pu of peak load / of capacity],
        ``value_hourly_pu`` (scenario, period, resource) [pu], ``weight`` (scenario) [-]
        summing to 1, and ``expected_pu`` (time, resource) [pu], the central profile.
    """
    _check_request(n_scenarios, resolution_minutes, horizon_hours, start_hour)
    prof = _central_profile(day, horizon_hours, start_hour, observed)
    base = _resample(prof.to_numpy(dtype=float), resolution_minutes)
    dt_h = resolution_minutes / 60.0
    rho = float(np.exp(-dt_h / correlation_hours))
    sigma = np.array(
        [pv_sigma if r == "pv" else wind_sigma if r == "wind" else load_sigma for r in RESOURCES]
    )
    entropy = [seed, day.toordinal()] + ([stream] if stream else [])
    values = _noisy_values(base, n_scenarios, entropy, sigma, rho)
    start = pd.Timestamp(day) + pd.Timedelta(hours=start_hour)
    ds = _scenario_dataset(values, base, start, horizon_hours, resolution_minutes)
    return _label(ds, seed, day, resolution_minutes)


def hourly(da: xr.DataArray, period: pd.DatetimeIndex) -> xr.DataArray:
    """Average a (..., time, ...) array over each hour, onto dimension ``period``."""
    per_hour = da.sizes["time"] // len(period)
    out = da.coarsen(time=per_hour).mean()
    return out.rename(time="period").assign_coords(period=period)
