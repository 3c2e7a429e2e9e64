"""Storage state carried from one day to the next (rolling days).

A day-ahead schedule is made before the previous day is realised, so the state a day
starts from is what the previous day's schedule expects at midnight:

* **batteries**: the probability-weighted mean of the scenarios' energy at the end of the
  previous day (each scenario ends at least at ``soc_end_min``);
* **EV pools**: EVs still plugged in at midnight got, before it, the share of their
  as-early-as-possible energy that the previous day's schedule delivered to such EVs
  (``prior_charged_fraction`` of :func:`forecasts.ev.ev_scenarios`); the rest is due in
  the new day before they leave.

With ``model.storage_state: cyclic`` every day starts from :func:`initial_state`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import xarray as xr

from cases.der import DerFleet
from cases.study import StudyConfig
from cases.system import IntegratedSystem
from forecasts.generate import ScenarioForecaster
from stochastic.twostage import DayData, TwoStageModel, TwoStageOptions, day_data
from workbench.scenarios import add_ev_sessions, study_scenarios

__all__ = ["DayState", "day_inputs", "initial_state", "next_state", "state_from_results"]


@dataclass(frozen=True)
class DayState:
    """Storage state at the start of a day.

    Attributes
    ----------
    battery_e_mwh : ndarray (battery,) [MWh]
    ev_charged_fraction : ndarray (ev,) [-]
        Share of their as-early-as-possible energy that EVs plugged in before the day got.
    """

    battery_e_mwh: np.ndarray
    ev_charged_fraction: np.ndarray

    def dataset(self, fleet: DerFleet) -> xr.Dataset:
        """The state on the results' ``der`` dimension (missing where it does not apply)."""
        npv = len(fleet.pv)
        e = np.concatenate(
            [np.full(npv, np.nan), self.battery_e_mwh, np.full(len(fleet.ev), np.nan)]
        )
        f = np.concatenate([np.full(npv + len(fleet.battery), np.nan), self.ev_charged_fraction])
        return xr.Dataset(
            {
                "storage_start_energy_mwh": (
                    "der",
                    e,
                    {"units": "MWh", "long_name": "battery energy at the start of the day"},
                ),
                "ev_prior_charged_fraction": (
                    "der",
                    f,
                    {
                        "units": "1",
                        "long_name": "share of their as-early-as-possible energy that EVs "
                        "plugged in before the day got before it",
                    },
                ),
            }
        )


def initial_state(fleet: DerFleet) -> DayState:
    """State at the start of a study: ``soc_init`` and uncontrolled charging before it."""
    return DayState(
        (fleet.battery.soc_init * fleet.battery.e_mwh).to_numpy(dtype=float),
        np.ones(len(fleet.ev)),
    )


def next_state(tsm: TwoStageModel, data: DayData, scenarios: xr.Dataset) -> DayState:
    """The state the next day starts from, after ``tsm`` was solved on ``data``.

    Parameters
    ----------
    tsm : TwoStageModel
        Solved (variable values loaded).
    data : DayData
        The day's data (weights, EV envelopes).
    scenarios : xarray.Dataset
        The day's scenario set with ``ev_e_continuing_mwh`` (scenario, ev) from
        :func:`workbench.scenarios.add_ev_sessions`.
    """
    w = data.weight
    fleet = tsm.system.fleet
    cap = fleet.battery.e_mwh.to_numpy(dtype=float)
    battery = np.zeros(len(cap))
    if len(cap):
        end = tsm.var("der", "battery_energy_mwh").values()[:, -1, :]
        battery = np.clip(w @ end, 0.0, cap)
    fraction = np.ones(len(fleet.ev))
    if len(fraction):
        energy = tsm.var("der", "ev_energy_mwh").values()[:, -1, :]
        unserved = tsm.var("der", "ev_unserved_mwh").values()[:, -1, :]
        continuing = scenarios["ev_e_continuing_mwh"].transpose("scenario", "ev").to_numpy()
        # e_max at the end = energy of departed EVs + continuing (as early as possible)
        departed = data.ev_e_max_mwh[:, -1, :] - continuing
        delivered = np.clip(energy + unserved - departed, 0.0, continuing)
        total = w @ continuing
        fraction = np.where(total > 1e-9, (w @ delivered) / np.maximum(total, 1e-12), 1.0)
        fraction = np.clip(fraction, 0.0, 1.0)
    return DayState(battery, fraction)


def state_from_results(results: xr.Dataset, fleet: DerFleet) -> DayState:
    """The start state recorded in one model-day of a results dataset."""
    nbat, npv = len(fleet.battery), len(fleet.pv)
    if "storage_start_energy_mwh" not in results:
        return initial_state(fleet)
    e = results["storage_start_energy_mwh"].to_numpy()[npv : npv + nbat]
    f = results["ev_prior_charged_fraction"].to_numpy()[npv + nbat :]
    return DayState(np.asarray(e, dtype=float), np.asarray(f, dtype=float))


def day_inputs(
    system: IntegratedSystem,
    study: StudyConfig,
    day: dt.date,
    seed: int,
    forecaster: ScenarioForecaster | None,
    state: DayState,
    options: TwoStageOptions,
    n_scenarios: int | None = None,
    stream: int = 0,
) -> tuple[xr.Dataset, DayData]:
    """A day's scenario set (PV, load, wind and EV sessions) and model data from a state.

    Parameters
    ----------
    n_scenarios : int, optional
        Scenarios to draw (default: the study's).
    stream : int
        Random stream (0: the study's own scenarios; others: fresh ones).
    """
    scenarios = add_ev_sessions(
        study_scenarios(study, day, seed, forecaster, n_scenarios, stream),
        system.fleet,
        study,
        day,
        seed,
        stream,
        charged_fraction=state.ev_charged_fraction,
    )
    return scenarios, day_data(system, scenarios, options, state.battery_e_mwh)
