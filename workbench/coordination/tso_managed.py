"""TSO-DSO coordination models as pipelines of the stochastic building blocks.

TSO-managed (centralised): DER send their bids to the TSO; the DSO sends its network
data (topology, impedances, limits) and its demand/PV scenarios to the TSO, which
schedules TER and DER in one two-stage problem containing the transmission network and
every feeder. The data crossing the TSO-DSO boundary is counted as typed messages per
day (:mod:`workbench.coordination.messages`).
"""

from __future__ import annotations

import datetime as dt

import xarray as xr

from cases.study import StudyConfig
from cases.system import IntegratedSystem
from forecasts.generate import ScenarioForecaster
from stochastic.bids import apply_bids, bid_variables, der_bids
from stochastic.extract import extract_two_stage
from stochastic.twostage import DayData, TwoStageOptions, build_two_stage
from workbench.ac_correction import correct_against_ac
from workbench.coordination.common import DayOutcome, DaySolve, run_days, shared_slot
from workbench.coordination.messages import Message
from workbench.state import DayState

__all__ = ["data_exchange", "schedule_days"]

MODEL = "tso_managed"


def data_exchange(system: IntegratedSystem, data: DayData) -> list[Message]:
    """The messages of a day under the TSO-managed model (two rounds).

    1. DSO -> TSO network data: per feeder branch its endpoints, r, x and rating (5),
       per feeder bus its voltage limits (2); DSO -> TSO forecast: per scenario, step and
       feeder bus the active and reactive demand and PV availability (3); DER -> TSO
       bids: per DER and period the schedule, up and down volumes (3), two prices per DER.
    2. TSO -> DER dispatch: per DER and second-stage step its set-point (1).

    The DSO takes no part in the schedule.
    """
    s, t = data.n_scenarios, data.n_steps
    n_der = system.fleet.n_units
    p = len(data.period)
    feeders = [f.arrays for f in system.feeders]
    network = sum(5 * a.n_branch + 2 * a.n_bus for a in feeders)
    return [
        Message("dso", "tso", "network_data", network, 1),
        Message("dso", "tso", "forecast", sum(3 * s * t * a.n_bus for a in feeders), 1),
        Message("der", "tso", "bids", 3 * n_der * p + 2 * n_der, 1),
        Message("tso", "der", "dispatch", n_der * t, 2),
    ]


def schedule_days(
    system: IntegratedSystem,
    study: StudyConfig,
    days: list[dt.date],
    seed: int,
    threads: int = 1,
    forecaster: ScenarioForecaster | None = None,
    state: DayState | None = None,
) -> list[DayOutcome]:
    """Schedule consecutive days with one coordination model, re-using one built model.

    The first day builds the Pyomo model and hands it to HiGHS; later days only change
    the mutable parameters (scenario data) and re-solve (from presolve: another day's
    basis is a poor start, measured in ``benchmarks/bench_default_study.py``). With
    ``model.storage_state: carried`` each day starts from the state the previous day's
    schedule ends with (:mod:`workbench.state`; a failed day passes on the state it
    started from); with ``cyclic`` every day starts from the initial state.

    Parameters
    ----------
    system : IntegratedSystem
    study : StudyConfig
    days : list of datetime.date
    seed : int
        Study seed; day ``d`` draws its scenarios from ``(seed, d)``.
    threads : int
        HiGHS threads.
    forecaster : ScenarioForecaster, optional
        Fitted forecasters (``scenarios.method: forecast``); fitted here if missing.
    state : DayState, optional
        State at the start of the first day (default: the initial state).
    """
    options = TwoStageOptions.from_study(study)
    slot = shared_slot(
        (MODEL, "centralised"),
        system,
        study,
        lambda data: build_two_stage(system, data, options),
        threads,
        study.model.lp_method,
    )

    def solve_day(day: dt.date, scenarios, data: DayData) -> DaySolve:
        build_s = slot.load(data)
        tsm, solver = slot.tsm, slot.solver
        bids = der_bids(system, data, options)
        apply_bids(solver, tsm, bids)  # the TSO accepts flexibility around the DER schedules
        result = solver.solve()
        rounds = study.model.ac_correction_iterations
        if rounds:
            result, ds, errors, losses = correct_against_ac(
                system, tsm, solver, data, result, rounds
            )
            ds["ac_correction_max_vm_error_pu"] = xr.DataArray(
                errors,
                dims="correction_round",
                attrs={
                    "units": "pu",
                    "long_name": "largest |V_AC - V_linear| on feeder buses before each "
                    "correction round (last: after the last round)",
                },
            )
            ds["ac_correction_losses_mwh"] = xr.DataArray(
                losses,
                dims="correction_round",
                attrs={"units": "MWh", "long_name": "expected feeder losses in the AC check"},
            )
        else:
            ds = extract_two_stage(tsm, data, result)
        ds["build_seconds"] = ds["build_seconds"].copy(data=build_s)
        ds = ds.assign(bid_variables(bids))
        return DaySolve(ds, tsm, data, data_exchange(system, data), 1 + rounds)

    return run_days(MODEL, system, study, days, seed, forecaster, state, solve_day)
