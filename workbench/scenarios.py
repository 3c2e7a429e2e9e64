"""Scenario sets of a study's days: fitted forecasters or perturbed observed profiles.

:func:`fit_study_forecaster` fits the study's forecasters once (on the history before
``start_date``); the caller keeps the result and passes it on (the runner scatters it
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
from forecasts.covariates import read_covariates
from forecasts.ev import ev_scenarios
from forecasts.generate import ScenarioForecaster, fit_scenario_forecaster, forecast_scenarios
from forecasts.history import check_source
from forecasts.scenarios import generate_scenarios

__all__ = [
    "add_ev_sessions",
    "check_forecast_sources",
    "fit_study_forecaster",
    "fitted_forecaster",
    "forecast_day",
    "study_covariates",
    "study_scenarios",
]


def check_forecast_sources(study: StudyConfig) -> None:
    """Check the history sources named in ``forecast`` (scheduling and evaluation).

    Raises
    ------
    ForecastError
        For a name that is not a source of the resource's kind.
    """
    for resource, name in study.forecast.sources.model_dump().items():
        check_source(name, resource.split("_")[0], field=f"forecast.sources.{resource}")
    ev = study.forecast.evaluation
    check_source(ev.pv, "pv", field="forecast.evaluation.pv")
    check_source(ev.load, "load", field="forecast.evaluation.load")


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
        fcfg.sources.model_dump(),
        before=study.start_date,
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
    given, so callers that issue several days pass it in.

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
