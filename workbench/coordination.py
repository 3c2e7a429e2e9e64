"""TSO-DSO coordination models as pipelines of the stochastic building blocks.

TSO-managed (centralised): DER send their bids to the TSO; the DSO sends its network
data (topology, impedances, limits) and its demand/PV scenarios to the TSO, which
schedules TER and DER in one two-stage problem containing the transmission network and
every feeder. The volume of data crossing the TSO-DSO boundary is counted in numbers
(float values) per day.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from cases.study import StudyConfig
from cases.system import IntegratedSystem
from forecasts.covariates import read_covariates
from forecasts.generate import ScenarioForecaster, fit_scenario_forecaster, forecast_scenarios
from forecasts.scenarios import generate_scenarios
from stochastic.extract import extract_two_stage
from stochastic.solve import PersistentSolver, SolverError
from stochastic.twostage import DayData, TwoStageOptions, build_two_stage, day_data

__all__ = [
    "DayOutcome",
    "data_exchange_tso_managed",
    "fit_study_forecaster",
    "fitted_forecaster",
    "forecast_day",
    "solve_days",
    "study_scenarios",
]


@dataclass(frozen=True, eq=False)
class DayOutcome:
    """Result of one coordination model on one day.

    Attributes
    ----------
    model : str
    day : datetime.date
    schedule : xarray.Dataset or None
        ``None`` when no optimal schedule was found.
    data : DayData
    status : str
    message : str
    wall_seconds : float [s]
    """

    model: str
    day: dt.date
    schedule: xr.Dataset | None
    data: DayData
    status: str
    message: str
    wall_seconds: float


def study_covariates(study: StudyConfig) -> dict[str, pd.DataFrame]:
    """The covariate tables of the study's scheduling resources (``forecast.covariates``)."""
    fcfg = study.forecast
    return {
        resource: read_covariates(path, field=f"forecast.covariates.{resource}")
        for resource, path in fcfg.covariates.items()
        if resource in type(fcfg.sources).model_fields
    }


def fit_study_forecaster(study: StudyConfig, seed: int) -> ScenarioForecaster | None:
    """The study's fitted forecasters (``scenarios.method: forecast``), else None."""
    if study.scenarios.method != "forecast":
        return None
    return fitted_forecaster(study, seed)


def fitted_forecaster(study: StudyConfig, seed: int) -> ScenarioForecaster:
    """Fit the study's forecasters (``forecast``) on the history before its first day.

    The fitted forecasters of the last few (forecast settings, start date, seed) are kept
    in memory, so repeated calls in one process fit once. Covariate files are read when
    the key is built, so an edited file is refitted; the fitted forecasters keep the
    tables for the forecast days.
    """
    covariates = study_covariates(study)
    key = json.dumps(
        {
            "forecast": study.forecast.model_dump(mode="json", exclude={"evaluation"}),
            "start_date": str(study.start_date),
            "seed": seed,
            "covariates": {k: v.to_json() for k, v in sorted(covariates.items())},
        },
        sort_keys=True,
    )
    if key not in _FITTED:
        fcfg = study.forecast
        _FITTED[key] = fit_scenario_forecaster(
            fcfg.sources.model_dump(),
            before=study.start_date,
            issue_hour=fcfg.issue_hour,
            max_iter=fcfg.max_iter,
            random_state=seed,
            covariates=covariates or None,
        )
        while len(_FITTED) > _FITTED_KEEP:
            _FITTED.pop(next(iter(_FITTED)))
    return _FITTED[key]


#: fitted forecasters by settings key, oldest first
_FITTED: dict[str, ScenarioForecaster] = {}
_FITTED_KEEP = 4


def forecast_day(
    study: StudyConfig,
    day: dt.date,
    seed: int,
    forecaster: ScenarioForecaster,
    resolutions_minutes: tuple[int, ...],
) -> xr.Dataset:
    """The forecast scenario set of one study day, at ``resolutions_minutes``."""
    fcfg = study.forecast
    return forecast_scenarios(
        forecaster,
        day,
        study.scenarios.n_scenarios,
        seed=seed,
        n_samples=max(fcfg.n_samples, study.scenarios.n_scenarios),
        reduction=fcfg.reduction,
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
) -> xr.Dataset:
    """The scenario set of one day of a study.

    With ``scenarios.method: forecast`` the fitted ``forecaster``
    (:func:`fit_study_forecaster`) issues it; it is fitted here if not given.
    """
    sc = study.scenarios
    if sc.method == "forecast":
        fc = forecaster if forecaster is not None else fitted_forecaster(study, seed)
        return forecast_day(study, day, seed, fc, (study.resolution.second_stage_minutes,))
    return generate_scenarios(
        day,
        sc.n_scenarios,
        seed=seed,
        resolution_minutes=study.resolution.second_stage_minutes,
        horizon_hours=study.horizon_hours,
        start_hour=study.start_hour,
        pv_sigma=sc.pv_sigma,
        load_sigma=sc.load_sigma,
        wind_sigma=sc.wind_sigma,
        correlation_hours=sc.correlation_hours,
    )


def data_exchange_tso_managed(system: IntegratedSystem, data: DayData) -> dict[str, int]:
    """Numbers exchanged per day under the TSO-managed model.

    * DSO -> TSO: per feeder branch its endpoints, r, x and rating (5), per feeder bus its
      voltage limits (2), and per scenario, step and bus the active and reactive demand and
      PV availability forecast (3).
    * DER -> TSO: per DER and first-stage period the energy, up and down bids (3).
    * TSO -> DER: per DER and second-stage step the dispatch set-point (1).
    * TSO -> DSO: nothing (the DSO is not involved in the schedule).
    """
    s, t = data.n_scenarios, data.n_steps
    n_der = system.fleet.n_units
    p = len(data.period)
    dso = sum(
        5 * f.arrays.n_branch + 2 * f.arrays.n_bus + 3 * s * t * f.arrays.n_bus
        for f in system.feeders
    )
    return {
        "dso_to_tso": int(dso),
        "tso_to_dso": 0,
        "der_to_tso": int(3 * n_der * p),
        "tso_to_der": int(n_der * t),
    }


def solve_days(
    system: IntegratedSystem,
    study: StudyConfig,
    model_name: str,
    days: list[dt.date],
    seed: int,
    threads: int = 1,
    forecaster: ScenarioForecaster | None = None,
) -> list[DayOutcome]:
    """Schedule consecutive days with one coordination model, re-using one built model.

    The first day builds the Pyomo model and hands it to HiGHS; later days only change
    the mutable parameters (scenario data) and re-solve (from presolve: another day's
    basis is a poor start, measured in ``benchmarks/bench_default_study.py``). Each day starts
    and ends with the batteries' initial energy, so days are independent work units.

    Parameters
    ----------
    system : IntegratedSystem
    study : StudyConfig
    model_name : str
        Coordination model (``tso_managed``).
    days : list of datetime.date
    seed : int
        Study seed; day ``d`` draws its scenarios from ``(seed, d)``.
    threads : int
        HiGHS threads.
    forecaster : ScenarioForecaster, optional
        Fitted forecasters (``scenarios.method: forecast``); fitted here if missing.
    """
    if forecaster is None:
        forecaster = fit_study_forecaster(study, seed)
    if model_name != "tso_managed":
        raise ValueError(f"unknown coordination model '{model_name}'; available: tso_managed")
    options = TwoStageOptions.from_study(study)
    out: list[DayOutcome] = []
    tsm = solver = None
    for day in days:
        tick = time.perf_counter()
        data = day_data(system, study_scenarios(study, day, seed, forecaster), options)
        if tsm is None:
            tsm = build_two_stage(system, data, options)
            solver = PersistentSolver(tsm.model, threads=threads)
            build_s = tsm.build_seconds
        else:
            tsm.set_data(data)
            solver.update_parameters(warm_start=False)
            build_s = 0.0
        try:
            result = solver.solve()
        except SolverError as exc:
            out.append(
                DayOutcome(
                    model_name, day, None, data, "failed", str(exc), time.perf_counter() - tick
                )
            )
            continue
        ds = extract_two_stage(tsm, data, result)
        ds["build_seconds"] = ds["build_seconds"].copy(data=build_s)
        for key, value in data_exchange_tso_managed(system, data).items():
            ds[f"exchange_{key}_values"] = xr.DataArray(
                value,
                attrs={
                    "units": "1",
                    "long_name": f"numbers exchanged {key.replace('_', ' ')} per day",
                },
            )
        out.append(
            DayOutcome(
                model_name, day, ds, data, result.status.value, "", time.perf_counter() - tick
            )
        )
    return out


def failed_like(template: xr.Dataset) -> xr.Dataset:
    """A dataset shaped like ``template`` with every numeric value missing."""
    out = template.copy(deep=True)
    for name, var in out.data_vars.items():
        if np.issubdtype(var.dtype, np.floating):
            out[name] = var.copy(data=np.full(var.shape, np.nan))
        elif np.issubdtype(var.dtype, np.integer):
            out[name] = var.copy(data=np.full(var.shape, -1))
    out["solver_status"] = xr.DataArray("failed", attrs=template["solver_status"].attrs)
    return out
