"""The ``workbench forecast`` job: scenario sets of a study's days, or the out-of-sample scores.

Scenario sets (:func:`study_forecast`) come from the same fitted forecasters the scheduling
runs use (:func:`workbench.scenarios.fit_study_forecaster`), at 60, 30, 15 and 5 min.
Scores (:func:`study_evaluation`) come from :func:`forecasts.evaluate.evaluate_all` with the
study's ``forecast.evaluation`` settings; :func:`scores_dataset` turns them into a Dataset.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from cases.study import StudyConfig
from forecasts.covariates import read_covariates
from forecasts.evaluate import (
    SKILL_INTERVAL_LEVEL,
    SKILL_INTERVAL_RESAMPLES,
    SKILL_SCORES,
    ResourceScores,
    evaluate_all,
)
from forecasts.history import FORECAST_HISTORY_DAYS, check_coverage
from workbench.scenarios import data_description, fitted_forecaster, forecast_day, study_sources

__all__ = ["FORECAST_RESOLUTIONS_MINUTES", "scores_dataset", "study_evaluation", "study_forecast"]

#: resolutions of the scenario file [min]
FORECAST_RESOLUTIONS_MINUTES = (5, 15, 30, 60)


def study_forecast(
    study: StudyConfig, seed: int, progress: Callable[[str], None] | None = None
) -> xr.Dataset:
    """Weighted scenario sets of every day of a study, at 5, 15, 30 and 60 min.

    The forecasters are fitted once on the history before ``start_date`` (whatever
    ``scenarios.method`` says), so every source must cover the study's days and the
    :data:`~forecasts.history.FORECAST_HISTORY_DAYS` before them. Times are times of day
    (``timedelta``) so that the days stack on a ``day`` dimension.

    Returns
    -------
    xarray.Dataset
        ``value_pu`` (day, scenario, time, resource) at 5 min, ``value_{m}min_pu`` at 15, 30
        and 60 min, ``value_hourly_pu``, ``weight`` (day, scenario), ``expected_pu`` and
        ``quantile_pu``; values in pu of capacity (PV, wind) or of peak (load).
    """
    check_coverage(
        study_sources(study),
        study.days[0],
        study.days[-1],
        history_days=FORECAST_HISTORY_DAYS,
    )
    if progress is not None:
        progress("fitting forecasters")
    fc = fitted_forecaster(study, seed)
    days = pd.date_range(study.start_date, periods=study.n_days, freq="D")
    sets = []
    for day in days:
        if progress is not None:
            progress(f"scenarios of {day.date()}")
        ds = forecast_day(study, day.date(), seed, fc, FORECAST_RESOLUTIONS_MINUTES)
        time_dims = [d for d in ds.coords if d == "period" or str(d).startswith("time")]
        sets.append(ds.assign_coords({d: ds.indexes[d] - day for d in time_dims}))
    out = xr.concat(sets, dim=pd.Index(days, name="day"), combine_attrs="drop_conflicts")
    out.attrs.update(
        study=study.name,
        seed=seed,
        start_date=str(study.start_date),
        n_days=study.n_days,
        resolutions_minutes=", ".join(str(m) for m in FORECAST_RESOLUTIONS_MINUTES),
        trained_before=str(study.start_date),
        data_sources=data_description(study),
        time_convention="time coordinates are offsets from 00:00 of 'day' (UTC+1 clock)",
    )
    return out


def study_evaluation(
    study: StudyConfig,
    seed: int,
    *,
    test_day_step: int | None = None,
    keep_forecasts: bool = False,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, ResourceScores], dict[str, dict[str, Any]]]:
    """Out-of-sample scores of the study's forecast settings (``forecast.evaluation``)."""
    fcfg = study.forecast
    ecfg = fcfg.evaluation
    covariates = {
        resource: read_covariates(
            fcfg.covariates[f"evaluation_{resource}"],
            field=f"forecast.covariates.evaluation_{resource}",
        )
        for resource in ("pv", "load")
        if f"evaluation_{resource}" in fcfg.covariates
    }
    return evaluate_all(
        pv_source=ecfg.pv,
        load_source=ecfg.load,
        ev_charger_type=ecfg.ev.charger_type,
        ev_n_chargers=ecfg.ev.n_chargers,
        test_day_step=ecfg.test_day_step if test_day_step is None else test_day_step,
        n_samples=ecfg.n_samples,
        ev_n_samples=ecfg.ev.n_samples,
        reduced_scenarios=ecfg.reduced_scenarios,
        max_iter=fcfg.max_iter,
        issue_hour=fcfg.issue_hour,
        covariates=covariates,
        seed=seed,
        keep_forecasts=keep_forecasts,
        progress=progress,
        scheduler_sources=dict(study_sources(study)),
        calibration_minutes=study.resolution.second_stage_minutes,
    )


_SCORE_UNITS = {
    "crps": "unit of the series",
    "crps_climatology": "unit of the series",
    "crps_persistence": "unit of the series",
    "crps_skill_vs_climatology": "1",
    "crps_skill_vs_persistence": "1",
    "energy_score_skill_vs_climatology": "1",
    "coverage_10_90": "1",
    "energy_score": "unit of the series",
    "energy_score_independent": "unit of the series",
    "energy_score_climatology": "unit of the series",
    "energy_score_reduced": "unit of the series",
    "variogram_score": "(unit of the series)",
    "variogram_score_independent": "(unit of the series)",
    "error_spread": "1",
    "scenario_spread": "1",
    "error_lag1": "1",
    "scenario_lag1": "1",
}


def scores_dataset(scores: dict[str, ResourceScores], attrs: dict[str, Any]) -> xr.Dataset:
    """The scores as a Dataset on a ``resource`` dimension (``pv``, ``load``, ``pv_1h``, ...).

    Scores that do not apply (scenario scores of the one-hour-ahead forecasts) are NaN.
    """
    keys = list(scores)
    data: dict[str, Any] = {}
    for name, unit in _SCORE_UNITS.items():
        values = [s.as_dict().get(name) for s in scores.values()]
        data[name] = xr.DataArray(
            np.array([np.nan if v is None else v for v in values], dtype=float),
            dims="resource",
            attrs={"units": unit},
        )
    for name in SKILL_SCORES:
        for end, i in (("low", 0), ("high", 1)):
            values = [s.skill_intervals.get(name, (np.nan, np.nan))[i] for s in scores.values()]
            data[f"{name}_{end}"] = xr.DataArray(
                np.array(values, dtype=float),
                dims="resource",
                attrs={
                    "units": "1",
                    "long_name": f"{end} end of the {SKILL_INTERVAL_LEVEL:.0%} interval of "
                    f"{name} (block bootstrap over held-out days, "
                    f"{SKILL_INTERVAL_RESAMPLES} resamples)",
                },
            )
    data["n_days"] = xr.DataArray([s.n_days for s in scores.values()], dims="resource")
    data["pit_histogram"] = xr.DataArray(
        np.array([s.pit_histogram for s in scores.values()]),
        dims=("resource", "pit_bin"),
        attrs={"units": "1", "long_name": "share of PIT values per decile"},
    )
    data["series_units"] = xr.DataArray(
        [s.extra.get("units", "pu") for s in scores.values()], dims="resource"
    )
    data["source"] = xr.DataArray(
        [str(s.extra.get("source", "")) for s in scores.values()], dims="resource"
    )
    data["test_days"] = xr.DataArray(
        [str(s.extra.get("test_days", "")) for s in scores.values()], dims="resource"
    )
    ds = xr.Dataset(
        data,
        coords={"resource": keys, "pit_bin": np.arange(0.05, 1.0, 0.1)},
        attrs=attrs,
    )
    ds["variogram_score"].attrs["long_name"] = "variogram score, p = 0.5"
    calibration_names = {
        "error_spread": "held-out day-ahead errors: mean |observed - predictive mean| / "
        "mean observed",
        "scenario_spread": "scenarios: mean |scenario - scenario mean| / mean level",
        "error_lag1": "held-out errors: correlation of adjacent steps",
        "scenario_lag1": "scenarios: correlation of adjacent steps' deviations",
    }
    for name, long_name in calibration_names.items():
        ds[name].attrs["long_name"] = f"{long_name} (at the study's second-stage resolution)"
    ds["pit_bin"].attrs = {"units": "1", "long_name": "centre of the PIT decile"}
    return ds
