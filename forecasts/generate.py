"""Forecast-based scenario sets: quantile forecasts -> Gaussian copula -> reduction.

:func:`fit_scenario_forecaster` fits one :class:`~forecasts.models.QuantileForecaster`
per resource on the history before a study; :func:`forecast_scenarios` then issues, for
one day, ``n_samples`` copula trajectories of all resources and reduces them to
``n_scenarios`` weighted scenarios by fast-forward selection, at every requested
resolution. Resources fitted on the same calendar days (e.g. all SimBench series)
get correlated innovations estimated from their joint calibration PIT values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from forecasts.copula import fit_cross_correlation, sample_uniform
from forecasts.errors import ForecastError
from forecasts.history import Source, load_history, source_info
from forecasts.models import DEFAULT_LEVELS, MIN_HISTORY_DAYS, QuantileForecaster
from forecasts.reduction import energy_selection, fast_forward_selection
from forecasts.resolution import check_minutes, from_quarter_hours

__all__ = [
    "REDUCTIONS",
    "ScenarioForecaster",
    "fit_scenario_forecaster",
    "forecast_scenarios",
    "scenario_samples",
]

STEPS_PER_DAY = 96
REDUCTIONS = ("energy", "fast_forward", "none")
#: quantile levels stored with every scenario set (for fan charts) [-]
FAN_LEVELS = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)


@dataclass(frozen=True, eq=False)
class ScenarioForecaster:
    """Fitted forecasters of several resources, ready to issue scenario sets.

    Attributes
    ----------
    resources : tuple of str
        Resource names, in output order.
    sources : tuple of str
        Data source of each resource (:data:`forecasts.history.SOURCES`).
    forecasters : tuple of QuantileForecaster
    histories : tuple of pandas.Series
    cross_correlation : numpy.ndarray
        Contemporaneous correlation of the copula innovations, (n, n).
    covariates : dict of str to pandas.DataFrame or None
        The covariate tables the forecasters were fitted with, used again for the
        forecast days unless others are given.
    """

    resources: tuple[str, ...]
    sources: tuple[str, ...]
    forecasters: tuple[QuantileForecaster, ...]
    histories: tuple[pd.Series, ...]
    cross_correlation: np.ndarray
    covariates: dict[str, pd.DataFrame] | None = None


def fit_scenario_forecaster(
    sources: Mapping[str, str | Source],
    train_days: Mapping[str, Sequence[dt.date]] | None = None,
    *,
    before: dt.date | None = None,
    until: dt.date | None = None,
    levels: Sequence[float] = DEFAULT_LEVELS,
    issue_hour: int = 12,
    max_iter: int = 100,
    random_state: int = 0,
    covariates: Mapping[str, pd.DataFrame] | None = None,
    field: str = "forecast.sources",
    progress: Callable[[str], None] | None = None,
) -> ScenarioForecaster:
    """Fit day-ahead forecasters of several resources.

    Parameters
    ----------
    sources : mapping of str to str or Source
        Resource name -> data source name (:data:`forecasts.history.SOURCES`) or user
        series (:func:`forecasts.history.user_source`).
    train_days : mapping of str to sequence of datetime.date, optional
        Training days per resource; default every day of the source before ``before``.
    before : datetime.date, optional
        First day that must not be trained on (the first forecast day).
    until : datetime.date, optional
        Last day to be forecast; with ``before`` it selects the days a typical-year source
        is laid on (:func:`forecasts.history.load_history`).
    levels, issue_hour, max_iter : see :class:`QuantileForecaster`
    random_state : int
    covariates : mapping of str to pandas.DataFrame, optional
        Extra features per resource.
    field : str
        Configuration field for error messages.
    progress : callable, optional
        Called with each resource's name once its forecaster is fitted.

    Returns
    -------
    ScenarioForecaster
    """
    fitted, histories = [], []
    for resource, source in sources.items():
        days_used = None if before is None or until is None else (before, until)
        history = load_history(source, field=f"{field}.{resource}", days=days_used)
        name = source_info(source).name
        if train_days is not None and resource in train_days:
            days = pd.DatetimeIndex(train_days[resource])
        else:
            days = pd.DatetimeIndex(history.index[::STEPS_PER_DAY])[MIN_HISTORY_DAYS:]
            if before is not None:
                days = days[days < pd.Timestamp(before)]
        if len(days) < 28:
            raise ForecastError(
                f"{field}.{resource}: source {name!r} ({history.index[0].date()} .. "
                f"{history.index[-1].date()}) leaves {len(days)} training day(s) before "
                f"{before}; at least 28 are needed: start later or choose another source"
            )
        model = QuantileForecaster.for_source(
            source,
            levels=tuple(levels),
            issue_hour=issue_hour,
            max_iter=max_iter,
            random_state=random_state,
        )
        cov = None if covariates is None else covariates.get(resource)
        fitted.append(model.fit(history, days, cov))
        histories.append(history)
        if progress is not None:
            progress(resource)
    return ScenarioForecaster(
        resources=tuple(sources),
        sources=tuple(source_info(s).name for s in sources.values()),
        forecasters=tuple(fitted),
        histories=tuple(histories),
        cross_correlation=_cross(fitted),
        covariates=dict(covariates) if covariates else None,
    )


def _cross(fitted: Sequence[QuantileForecaster]) -> np.ndarray:
    """Block correlation: resources with identical calibration days are correlated."""
    n = len(fitted)
    c = np.eye(n)
    groups: dict[tuple, list[int]] = {}
    for i, f in enumerate(fitted):
        groups.setdefault(tuple(f.calibration_days_.asi8), []).append(i)
    for members in groups.values():
        if len(members) > 1:
            block = fit_cross_correlation([fitted[i].calibration_z_ for i in members])
            c[np.ix_(members, members)] = block
    return c


def scenario_samples(
    fc: ScenarioForecaster,
    day: dt.date,
    n_samples: int,
    rng: np.random.Generator,
    *,
    independent: bool = False,
    covariates: Mapping[str, pd.DataFrame] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Copula samples of all resources over the whole day, quarter-hourly.

    Returns
    -------
    samples : numpy.ndarray
        (n_samples, n_resources, 96) [pu].
    quantiles : numpy.ndarray
        Model quantiles (n_resources, 96, n_levels) [pu].
    """
    qs = []
    covariates = fc.covariates if covariates is None else covariates
    for resource, f, h in zip(fc.resources, fc.forecasters, fc.histories, strict=True):
        cov = None if covariates is None else covariates.get(resource)
        qs.append(f.predict_quantiles(h, [day], cov)[0])
    rho = np.stack([f.autocorrelation_ for f in fc.forecasters])
    u = sample_uniform(
        n_samples, STEPS_PER_DAY, rho, rng, fc.cross_correlation, independent=independent
    )
    out = np.empty((n_samples, len(qs), STEPS_PER_DAY))
    for i, (f, q) in enumerate(zip(fc.forecasters, qs, strict=True)):
        out[:, i, :] = f.quantiles_at(q, u[:, i, :].T).T
    return out, np.stack(qs)


def forecast_scenarios(
    fc: ScenarioForecaster,
    day: dt.date,
    n_scenarios: int,
    *,
    seed: int,
    n_samples: int = 500,
    reduction: str = "energy",
    resolutions_minutes: Sequence[int] = (15,),
    start_hour: int = 0,
    horizon_hours: int = 24,
    independent: bool = False,
    covariates: Mapping[str, pd.DataFrame] | None = None,
    stream: int = 0,
) -> xr.Dataset:
    """A weighted scenario set of one day from the fitted forecasters.

    Parameters
    ----------
    fc : ScenarioForecaster
    day : datetime.date
        Day forecast (issued at ``issue_hour`` the day before).
    n_scenarios : int
        Scenarios kept (1..n_samples); with ``reduction="none"`` it must equal
        ``n_samples`` or be smaller (the first ``n_scenarios`` samples, equal weights).
    seed : int
        The samples come from ``default_rng(SeedSequence([seed, day.toordinal()]))``.
    n_samples : int
        Copula trajectories drawn before reduction.
    reduction : {"energy", "fast_forward", "none"}
        ``energy``: equally weighted subset closest to the sample in energy distance
        (keeps the spread); ``fast_forward``: representative scenarios carrying the
        probability of their neighbours (:mod:`forecasts.reduction`).
    resolutions_minutes : sequence of int
        Resolutions to return (5, 15, 30, 60); the finest is ``value_pu`` on ``time``, the
        others ``value_{m}min_pu`` on ``time_{m}min``; hourly means are always
        ``value_hourly_pu`` on ``period``.
    start_hour, horizon_hours : int
        Window of the day returned [h].
    independent : bool
        Sample every step independently instead of through the copula (for scoring).
    covariates : mapping of str to pandas.DataFrame, optional
        Covariates per resource for the day; default those the forecasters were fitted with.
    stream : int
        Independent random stream (>= 0): stream ``k > 0`` draws from
        ``SeedSequence([seed, day.toordinal(), k])`` (fresh samples for an out-of-sample
        evaluation).

    Returns
    -------
    xarray.Dataset
        ``value_pu`` (scenario, time, resource) [pu], ``value_hourly_pu``, one
        ``value_{m}min_pu`` per other resolution, ``weight`` (scenario) summing to 1,
        ``expected_pu`` (time, resource), the mean of all samples, and
        ``quantile_pu`` (quantile, time, resource), calibrated fan-chart quantiles.
    """
    minutes = sorted({check_minutes(int(m)) for m in resolutions_minutes})
    if reduction not in REDUCTIONS:
        raise ForecastError(f"reduction: unknown {reduction!r}; allowed: {', '.join(REDUCTIONS)}")
    if not 1 <= n_scenarios <= n_samples:
        raise ForecastError(f"n_scenarios must be in 1..n_samples ({n_samples}), got {n_scenarios}")
    if not 1 <= horizon_hours <= 24 or not 0 <= start_hour <= 24 - horizon_hours:
        raise ForecastError(
            f"horizon {start_hour}:00 + {horizon_hours} h must lie within the day "
            "(start_hour in 0..23, start_hour + horizon_hours <= 24)"
        )
    entropy = [seed, day.toordinal()] + ([stream] if stream else [])
    rng = np.random.default_rng(np.random.SeedSequence(entropy))
    samples, qs = scenario_samples(
        fc, day, n_samples, rng, independent=independent, covariates=covariates
    )
    window = slice(4 * start_hour, 4 * (start_hour + horizon_hours))
    samples = samples[:, :, window]
    if reduction in ("energy", "fast_forward"):
        select = energy_selection if reduction == "energy" else fast_forward_selection
        # each resource in units of its own spread, so that the selection keeps the
        # spread of every resource, not only of the widest (wind and PV in pu of capacity
        # against load in pu of peak): without it the energy selection of 10 of 500
        # samples kept 77 % of the aggregate load's spread
        scale = samples.std(axis=0).mean(axis=-1, keepdims=True)
        scaled = samples / np.where(scale > 0, scale, 1.0)
        idx, weight = select(scaled.reshape(n_samples, -1), n_scenarios)
    else:
        idx, weight = np.arange(n_scenarios), np.full(n_scenarios, 1.0 / n_scenarios)
    upper = [f.upper_pu for f in fc.forecasters]
    if reduction in ("energy", "fast_forward"):
        kept = _keep_spread(samples, samples[idx], weight, upper)
    else:
        kept = samples[idx]
    kept = kept.transpose(0, 2, 1)  # (scenario, time15, resource)
    levels = np.broadcast_to(np.asarray(FAN_LEVELS), (horizon_hours * 4, len(FAN_LEVELS)))
    fan = np.stack(
        [f.quantiles_at(q[window], levels) for f, q in zip(fc.forecasters, qs, strict=True)],
        axis=-1,
    ).transpose(1, 0, 2)  # (quantile, time15, resource)
    start = pd.Timestamp(day) + pd.Timedelta(hours=start_hour)

    finest = minutes[0]
    time = pd.date_range(start, periods=horizon_hours * 60 // finest, freq=f"{finest}min")
    period = pd.date_range(start, periods=horizon_hours, freq="60min")
    ds = xr.Dataset(
        {
            "value_pu": (("scenario", "time", "resource"), _at_axis(kept, finest, upper)),
            "value_hourly_pu": (("scenario", "period", "resource"), _at_axis(kept, 60, upper)),
            "weight": ("scenario", weight),
            "expected_pu": (
                ("time", "resource"),
                _at_axis(samples.mean(axis=0).T[None], finest, upper)[0],
            ),
            "quantile_pu": (("quantile", "time_15min", "resource"), fan),
        },
        coords={
            "scenario": np.arange(n_scenarios),
            "time": time,
            "period": period,
            "resource": list(fc.resources),
            "quantile": list(FAN_LEVELS),
            "time_15min": pd.date_range(start, periods=horizon_hours * 4, freq="15min"),
        },
    )
    for m in minutes[1:]:
        ds[f"value_{m}min_pu"] = (
            ("scenario", f"time_{m}min", "resource"),
            _at_axis(kept, m, upper),
        )
        ds = ds.assign_coords(
            {f"time_{m}min": pd.date_range(start, periods=horizon_hours * 60 // m, freq=f"{m}min")}
        )
        ds[f"value_{m}min_pu"].attrs = {"units": "pu", "long_name": f"scenario value, {m} min"}
    ds["value_pu"].attrs = {
        "units": "pu",
        "long_name": f"scenario value at {finest} min (load: of peak, PV/wind: of capacity)",
    }
    ds["value_hourly_pu"].attrs = {"units": "pu", "long_name": "hourly mean of value_pu"}
    ds["weight"].attrs = {"units": "1", "long_name": "scenario probability"}
    ds["expected_pu"].attrs = {"units": "pu", "long_name": f"mean of the {n_samples} samples"}
    ds["quantile_pu"].attrs = {"units": "pu", "long_name": "calibrated forecast quantiles"}
    ds.attrs = {
        "generator": "quantile_forecast_copula" if not independent else "quantile_independent",
        "seed": seed,
        "day": str(day),
        "resolution_minutes": finest,
        "n_samples": n_samples,
        "reduction": reduction,
        "sources": ", ".join(f"{r}={s}" for r, s in zip(fc.resources, fc.sources, strict=True)),
    }
    return ds


def _keep_spread(
    samples: np.ndarray, kept: np.ndarray, weight: np.ndarray, upper: Sequence[float | None]
) -> np.ndarray:
    """The reduced set with each resource's deviations scaled to the samples' spread.

    A reduction to few scenarios shrinks the spread (measured: energy selection of 10 of
    500 samples kept 80 % of the aggregate load's mean absolute deviation, fast forward
    47 %). Per resource, the deviations of ``kept`` from its weighted mean are scaled by
    the ratio of the samples' mean absolute deviation to the reduced set's (the same
    factor at every step, so the shape of each trajectory and the mean are kept), then
    clipped to the resource's bounds.

    Parameters
    ----------
    samples : numpy.ndarray
        (n_samples, resource, time) equally likely samples [pu].
    kept : numpy.ndarray
        (n_scenarios, resource, time) the reduced set [pu].
    weight : numpy.ndarray
        (n_scenarios,) probabilities of ``kept`` [-].
    upper : sequence of float or None
        Upper bound of each resource [pu] (lower bound 0).
    """
    mean = np.einsum("s,srt->rt", weight, kept)
    dev = kept - mean
    target = np.abs(samples - samples.mean(axis=0)).mean(axis=(0, 2))
    held = np.einsum("s,srt->r", weight, np.abs(dev)) / kept.shape[2]
    factor = np.where(held > 0, target / np.where(held > 0, held, 1.0), 1.0)
    out = mean + dev * factor[None, :, None]
    hi = np.array([np.inf if u is None else u for u in upper])[None, :, None]
    return np.clip(out, 0.0, hi)


def _at_axis(values: np.ndarray, minutes: int, upper: Sequence[float | None]) -> np.ndarray:
    """(scenario, time15, resource) values at ``minutes``, respecting each resource's bounds."""
    cols = [
        from_quarter_hours(values[..., r], minutes, lower=0.0, upper=upper[r], axis=1)
        for r in range(values.shape[-1])
    ]
    return np.stack(cols, axis=-1)
