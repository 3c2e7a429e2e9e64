"""Scenario sets of a study's days: fitted forecasters or perturbed observed profiles.

:func:`fit_study_forecaster` fits the study's forecasters once (on the history before
``start_date``); the caller keeps the result and passes it on (the runner ships it
to the Dask workers once). :func:`study_scenarios` then issues one day's scenario set.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pandas as pd
import xarray as xr

from cases.der import DerFleet
from cases.study import StudyConfig
from forecasts.calibration import (
    forecaster_calibration,
    scenario_calibration,
    scenario_deviation_calibration,
)
from forecasts.covariates import read_covariates
from forecasts.ev import ev_scenarios
from forecasts.generate import ScenarioForecaster, fit_scenario_forecaster, forecast_scenarios
from forecasts.history import (
    FORECAST_HISTORY_DAYS,
    Source,
    check_coverage,
    check_source,
    load_history,
    resolve_source,
)
from forecasts.scenarios import RESOURCES, generate_scenarios

__all__ = [
    "add_ev_sessions",
    "check_forecast_sources",
    "data_description",
    "fit_study_forecaster",
    "fitted_forecaster",
    "forecast_day",
    "observed_day",
    "scenario_set_calibration",
    "study_covariates",
    "study_scenarios",
    "study_sources",
]


def study_sources(study: StudyConfig) -> dict[str, Source]:
    """The history source of each scheduling resource (``forecast.sources``).

    Raises
    ------
    ForecastError
        For a name that is not a source of the resource's kind, or a bad user series.
    """
    return {
        resource: resolve_source(spec, resource.split("_")[0], field=f"forecast.sources.{resource}")
        for resource, spec in study.forecast.sources.model_dump().items()
    }


def check_forecast_sources(study: StudyConfig, *, days: bool = True) -> None:
    """Check the history sources named in ``forecast`` and the days they cover.

    Every scheduling source must cover every study day (the observed day) and, with
    ``scenarios.method: forecast``, the :data:`~forecasts.history.FORECAST_HISTORY_DAYS`
    before the first day (the forecasters' training history). User series are read and
    checked here.

    Parameters
    ----------
    days : bool
        Also check the days (``False``: names and user series only).

    Raises
    ------
    ForecastError
        One line: a name that is not a source of the resource's kind, a bad user series,
        or days a source does not cover (with each source's range and the days allowed).
    """
    sources = study_sources(study)
    ev = study.forecast.evaluation
    check_source(ev.pv, "pv", field="forecast.evaluation.pv")
    check_source(ev.load, "load", field="forecast.evaluation.load")
    if days:
        history = FORECAST_HISTORY_DAYS if study.scenarios.method == "forecast" else 0
        check_coverage(sources, study.days[0], study.days[-1], history_days=history)


def observed_day(study: StudyConfig, day: dt.date) -> pd.DataFrame:
    """The observed quarter-hours of the study's horizon on ``day`` [pu], per resource.

    Each resource's values come from its ``forecast.sources`` entry, the same series its
    forecaster learns from: an ENTSO-E or user series on its own date, a SimBench source
    on the 2016 day that stands for ``day`` (:func:`cases.profiles.typical_year_day`).

    Returns
    -------
    pandas.DataFrame
        Index: quarter-hours (UTC+1 clock) from ``start_hour`` for ``horizon_hours``;
        columns :data:`forecasts.scenarios.RESOURCES`; load in pu of peak, PV and wind in
        pu of capacity.

    Raises
    ------
    ForecastError
        If a source does not cover ``day``.
    """
    sources = study_sources(study)
    check_coverage(sources, day, day)
    start = pd.Timestamp(day) + pd.Timedelta(hours=study.start_hour)
    index = pd.date_range(start, periods=4 * study.horizon_hours, freq="15min", name="time")
    columns = {}
    for resource in RESOURCES:
        series = load_history(
            sources[resource], field=f"forecast.sources.{resource}", days=(day, day)
        )
        columns[resource] = series.reindex(index).to_numpy(dtype=float)
    return pd.DataFrame(columns, index=index)


def data_description(study: StudyConfig) -> str:
    """Where each resource's data of the study's days come from (for results attrs).

    E.g. ``pv: entsoe_de (2019-06-15 .. 2019-06-15 measured); load_residential:
    simbench_load_residential (2016 as a typical year: 2019-06-15 -> 2016-06-18, ...)``.
    """
    from cases.profiles import PROFILE_YEAR, typical_year_day

    parts = []
    for resource, src in study_sources(study).items():
        name = f"{src.file} [{src.column}] ({src.time_zone})" if src.file else src.name
        typical = [d for d in study.days if d.year != PROFILE_YEAR]
        if src.typical_year and typical:
            shown = ", ".join(f"{d} -> {typical_year_day(d)}" for d in typical[:3])
            more = ", ..." if len(typical) > 3 else ""
            parts.append(
                f"{resource}: {name} ({PROFILE_YEAR} as a typical year, same weekday: "
                f"{shown}{more})"
            )
        else:
            parts.append(f"{resource}: {name} (measured on the study days)")
    return "; ".join(parts)


def study_covariates(study: StudyConfig) -> dict[str, pd.DataFrame]:
    """The covariate tables of the study's scheduling resources (``forecast.covariates``)."""
    fcfg = study.forecast
    return {
        resource: read_covariates(path, field=f"forecast.covariates.{resource}")
        for resource, path in fcfg.covariates.items()
        if resource in type(fcfg.sources).model_fields
    }


def fit_study_forecaster(
    study: StudyConfig, seed: int, progress: Callable[[str], None] | None = None
) -> ScenarioForecaster | None:
    """The study's fitted forecasters (``scenarios.method: forecast``), else None.

    ``progress`` is called with each resource's name once it is fitted.
    """
    if study.scenarios.method != "forecast":
        return None
    return fitted_forecaster(study, seed, progress)


def fitted_forecaster(
    study: StudyConfig, seed: int, progress: Callable[[str], None] | None = None
) -> ScenarioForecaster:
    """Fit the study's forecasters (``forecast``) on the history before its first day.

    The fitted forecasters keep the covariate tables for the forecast days; ``progress``
    is called with each resource's name once it is fitted.
    """
    fcfg = study.forecast
    covariates = study_covariates(study)
    return fit_scenario_forecaster(
        study_sources(study),
        before=study.start_date,
        until=study.days[-1],
        issue_hour=fcfg.issue_hour,
        max_iter=fcfg.max_iter,
        random_state=seed,
        covariates=covariates or None,
        progress=progress,
    )


def forecast_day(
    study: StudyConfig,
    day: dt.date,
    seed: int,
    forecaster: ScenarioForecaster,
    resolutions_minutes: tuple[int, ...],
    n_scenarios: int | None = None,
    stream: int = 0,
) -> xr.Dataset:
    """The forecast scenario set of one study day, at ``resolutions_minutes``.

    Parameters
    ----------
    n_scenarios : int, optional
        Scenarios kept (default the study's ``scenarios.n_scenarios``).
    stream : int
        ``0``: the study's scenario set (``forecast.n_samples`` copula samples reduced
        to ``n_scenarios``). ``k > 0``: ``n_scenarios`` fresh, equally weighted samples
        from an independent random stream (out-of-sample evaluation).
    """
    fcfg = study.forecast
    n = study.scenarios.n_scenarios if n_scenarios is None else n_scenarios
    fresh = stream > 0
    return forecast_scenarios(
        forecaster,
        day,
        n,
        seed=seed,
        n_samples=n if fresh else max(fcfg.n_samples, n),
        reduction="none" if fresh else fcfg.reduction,
        stream=stream,
        resolutions_minutes=resolutions_minutes,
        start_hour=study.start_hour,
        horizon_hours=study.horizon_hours,
        independent=fcfg.copula == "independent",
    )


def study_scenarios(
    study: StudyConfig,
    day: dt.date,
    seed: int,
    forecaster: ScenarioForecaster | None = None,
    n_scenarios: int | None = None,
    stream: int = 0,
) -> xr.Dataset:
    """The scenario set of one day of a study.

    With ``scenarios.method: forecast`` the fitted ``forecaster``
    (:func:`fit_study_forecaster`) issues it; it is fitted here (once per call) if not
    given, so callers that issue several days pass it in. The set is per resource; a
    feeder with its own per-element profiles (SimBench) takes only the scenarios'
    deviation from ``expected_pu`` and applies it to each element's own shape
    (:mod:`stochastic.own_profiles`).

    Parameters
    ----------
    n_scenarios : int, optional
        Scenarios of the set (default the study's ``scenarios.n_scenarios``).
    stream : int
        ``0``: the study's scenario set; ``k > 0``: fresh equiprobable scenarios from an
        independent random stream (see :func:`forecast_day`).
    """
    sc = study.scenarios
    n = sc.n_scenarios if n_scenarios is None else n_scenarios
    if sc.method == "forecast":
        fc = forecaster if forecaster is not None else fitted_forecaster(study, seed)
        return forecast_day(
            study,
            day,
            seed,
            fc,
            (study.resolution.second_stage_minutes,),
            n_scenarios=n,
            stream=stream,
        )
    return generate_scenarios(
        day,
        n,
        seed=seed,
        resolution_minutes=study.resolution.second_stage_minutes,
        horizon_hours=study.horizon_hours,
        start_hour=study.start_hour,
        pv_sigma=sc.pv_sigma,
        load_sigma=sc.load_sigma,
        wind_sigma=sc.wind_sigma,
        correlation_hours=sc.correlation_hours,
        stream=stream,
        observed=observed_day(study, day),
    )


def add_ev_sessions(
    scenarios: xr.Dataset,
    fleet: DerFleet,
    study: StudyConfig,
    day: dt.date,
    seed: int,
    stream: int = 0,
    charged_fraction: np.ndarray | None = None,
) -> xr.Dataset:
    """Add the EV charger pools' sampled sessions to a scenario set, scenario by scenario.

    Pool ``j`` draws its sessions from ``SeedSequence([seed, stream, j])`` (the day enters
    through :func:`forecasts.ev.ev_scenarios`), independently of the PV and load scenario
    it is paired with. ``charged_fraction`` (ev,) [-]: share of their as-early-as-possible
    energy that EVs plugged in before the horizon got before it (default 1; a rolling
    study carries it, see :mod:`workbench.state`).

    Returns
    -------
    xarray.Dataset
        ``scenarios`` with ``ev_p_max_mw`` (power of the connected EVs, step mean),
        ``ev_e_min_mwh`` / ``ev_e_max_mwh`` (cumulative energy since the horizon start when
        charging as late / as early as possible) and ``ev_p_uncontrolled_mw`` (charging at
        full power from arrival) on (scenario, time, ev), and ``ev_e_continuing_mwh``
        (scenario, ev): the part of ``ev_e_max_mwh`` at the end delivered to EVs still
        plugged in then.
    """
    n_s, times = scenarios.sizes["scenario"], scenarios["time"]
    n_t = len(times)
    minutes = study.resolution.second_stage_minutes
    names = ("p_max_kw", "e_min_kwh", "e_max_kwh", "p_uncontrolled_kw")
    out = {name: np.zeros((n_s, n_t, len(fleet.ev))) for name in names}
    continuing = np.zeros((n_s, len(fleet.ev)))
    fraction = np.ones(len(fleet.ev)) if charged_fraction is None else charged_fraction
    for j, unit in enumerate(fleet.ev.itertuples()):
        entropy = np.random.SeedSequence([seed, stream, j]).generate_state(1)[0]
        ev = ev_scenarios(
            day,
            n_s,
            {unit.charger_type: int(unit.n_chargers)},
            seed=int(entropy),
            resolution_minutes=minutes,
            start_hour=study.start_hour,
            horizon_hours=study.horizon_hours,
            plug_in_probability=float(unit.plug_in_probability),
            prior_charged_fraction=float(fraction[j]),
        )
        # the pool's rated power bounds what its chargers draw together
        scale = min(1.0, float(unit.p_mw) * 1000.0 / max(float(ev["p_max_kw"].max()), 1e-9))
        for name in names:
            out[name][:, :, j] = ev[name].isel(charger_type=0).to_numpy() * scale
        continuing[:, j] = ev["e_continuing_kwh"].isel(charger_type=0).to_numpy() * scale
    dims = ("scenario", "time", "ev")
    return scenarios.assign(
        ev_p_max_mw=(dims, out["p_max_kw"] / 1000.0, {"units": "MW"}),
        ev_e_min_mwh=(dims, out["e_min_kwh"] / 1000.0, {"units": "MWh"}),
        ev_e_max_mwh=(dims, out["e_max_kwh"] / 1000.0, {"units": "MWh"}),
        ev_p_uncontrolled_mw=(dims, out["p_uncontrolled_kw"] / 1000.0, {"units": "MW"}),
        ev_e_continuing_mwh=(("scenario", "ev"), continuing / 1000.0, {"units": "MWh"}),
    )


def scenario_set_calibration(
    scenarios: xr.Dataset, data, forecaster: ScenarioForecaster | None, options
) -> dict[str, dict[str, float]]:
    """How wide and smooth a day's scenarios are, beside the forecasters' held-out errors.

    Parameters
    ----------
    scenarios : xarray.Dataset
        The day's scenario set with EV sessions (:func:`add_ev_sessions`).
    data : stochastic.twostage.DayData
        The model data of the day (for the total demand).
    forecaster : ScenarioForecaster or None
        The fitted forecasters (``scenarios.method: forecast``); None: no error figures.
    options : stochastic.twostage.TwoStageOptions
        For the second-stage resolution.

    Returns
    -------
    dict
        Per resource of the scenario set, ``ev`` (total uncontrolled EV charging) and
        ``demand_total`` (transmission load plus every feeder's load, MW): the scenario
        figures ``scenario_spread`` and ``scenario_lag1`` (:mod:`forecasts.calibration`,
        at the second-stage resolution), and for each forecast resource the figures of
        its held-out errors ``error_spread`` and ``error_lag1`` at the same resolution.
    """
    minutes = options.second_stage_minutes
    figures = scenario_calibration(scenarios)
    total = data.transmission_load_mw.sum(axis=-1) + sum(
        x.sum(axis=-1) for x in data.feeder_load_p_mw
    )
    figures["demand_total"] = scenario_deviation_calibration(total, data.weight)
    out = {
        key: {f"scenario_{name}": float(v) for name, v in f.items()} for key, f in figures.items()
    }
    if forecaster is not None:
        for key, f in forecaster_calibration(forecaster, minutes).items():
            out.setdefault(key, {}).update(
                error_spread=float(f["spread"]), error_lag1=float(f["lag1"])
            )
    return out
