"""What every coordination model shares: the day loop and one outcome per day."""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import xarray as xr

from stochastic.risk import cvar
from stochastic.solve import PersistentSolver, SolverError, highs_settings
from stochastic.twostage import DayData, TwoStageOptions
from stochastic.validation import limit_violations
from workbench.coordination.messages import Message, ledger_variables
from workbench.threads import limit_threads

__all__ = [
    "DayOutcome",
    "DaySolve",
    "ModelSlot",
    "add_scenario_cost",
    "clear_slots",
    "feeder_check",
    "run_days",
    "shared_slot",
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
    end_state : DayState or None
        The state the next day starts from (``carried``: what this day's schedule ends
        with, or its start state when it failed; ``cyclic``: the initial state).
    peak_memory_mb : float [MB]
        Peak resident memory of the process that scheduled the day (0: not measured).
    calibration : dict or None
        Spread and lag-1 autocorrelation of the day's scenarios beside the forecasters'
        held-out errors, per resource (:func:`workbench.scenarios.scenario_set_calibration`).
    """

    model: str
    day: dt.date
    schedule: xr.Dataset | None
    data: DayData
    status: str
    message: str
    wall_seconds: float
    end_state: object = None
    peak_memory_mb: float = 0.0
    calibration: dict | None = None


class ModelSlot:
    """One two-stage model built on the first day and re-used for the next ones.

    Parameters
    ----------
    build : callable
        ``DayData -> TwoStageModel`` (builds, never solves).
    threads : int
        HiGHS threads.
    lp_method : str
        HiGHS ``solver`` option (``ipm``, ``simplex``, ``choose``).
    options : dict, optional
        HiGHS options replacing ``{"solver": lp_method}`` (see :func:`highs_settings`).
    time_limit_s : float, optional [s]
    """

    def __init__(
        self,
        build: Callable,
        threads: int,
        lp_method: str,
        options: dict | None = None,
        time_limit_s: float | None = None,
    ) -> None:
        self._build, self._threads, self._method = build, threads, lp_method
        self._options = options if options is not None else {"solver": lp_method}
        self._time_limit_s = time_limit_s
        self.tsm = None
        self.solver: PersistentSolver | None = None

    def load(self, data: DayData, prepare: Callable | None = None) -> float:
        """Put ``data`` into the model (building it the first time), run ``prepare(tsm)``
        for any further parameters, and hand the changes to HiGHS (another day's basis
        is a poor start: the next solve starts from presolve).

        Returns the build time [s] (0 after the first day).
        """
        if self.tsm is None:
            self.tsm = self._build(data)
            if prepare is not None:
                prepare(self.tsm)
            self.solver = PersistentSolver(
                self.tsm.model,
                threads=self._threads,
                time_limit_s=self._time_limit_s,
                options=self._options,
            )
            return self.tsm.build_seconds
        self.tsm.set_data(data)
        if prepare is not None:
            prepare(self.tsm)
        self.solver.update_parameters(warm_start=False)
        return 0.0


#: built models a process keeps for the next unit of the same shape (0: none)
MODEL_CACHE_SIZE = int(os.environ.get("WORKBENCH_MODEL_CACHE", "4"))
_SLOTS: OrderedDict[tuple, tuple] = OrderedDict()


def shared_slot(
    key: tuple, system, study, build: Callable, threads: int, lp_method: str
) -> ModelSlot:
    """The :class:`ModelSlot` of ``key`` kept by this process, or a new one.

    A worker that solves one unit (a model-day) keeps the built model and, for the next
    unit of the same coordination model, system and study, only changes its parameters
    and re-solves. The last :data:`MODEL_CACHE_SIZE` slots are kept per process (set
    ``WORKBENCH_MODEL_CACHE`` to change it; 0 builds every unit's model anew). Slots are
    kept per thread, so Dask's threaded scheduler never shares one.

    Parameters
    ----------
    key : tuple
        The model and its role, e.g. ``("dso_managed", "tso")``.
    system, study
        Objects the model was built from (held, so their identity stays valid).
    build, threads, lp_method
        As for :class:`ModelSlot`.
    """
    full = (*key, id(system), id(study), threads, lp_method, threading.get_ident())
    options, limit = highs_settings(study, lp_method)
    if MODEL_CACHE_SIZE <= 0:
        return ModelSlot(build, threads, lp_method, options, limit)
    if full in _SLOTS:
        _SLOTS.move_to_end(full)
        return _SLOTS[full][2]
    slot = ModelSlot(build, threads, lp_method, options, limit)
    _SLOTS[full] = (system, study, slot)
    while len(_SLOTS) > MODEL_CACHE_SIZE:
        _SLOTS.popitem(last=False)
    return slot


def clear_slots() -> None:
    """Forget every kept model (the next unit builds its own)."""
    _SLOTS.clear()


def add_scenario_cost(
    ds: xr.Dataset, items: dict[str, np.ndarray], weight: np.ndarray, alpha: float, beta: float
) -> xr.Dataset:
    """Add costs per scenario outside the solved model (a DSO's own use of DER, a missed
    set-point) to a schedule: as cost items ``items`` (name ``<owner>/<stage>/<kind>`` ->
    (scenario,) [EUR]) and in the scenario costs, expected cost, CVaR and objective
    (``(1 - beta) E + beta CVaR``)."""
    old = ds.scenario_cost_eur.values
    total = old + sum(items.values())

    def risk(x: np.ndarray) -> float:
        return (1.0 - beta) * float(weight @ x) + beta * cvar(x, weight, alpha)

    book = ds.cost_item_eur.drop_vars("cost_owner")
    extra = xr.DataArray(
        np.stack([np.asarray(v, dtype=float) for v in items.values()], axis=1),
        dims=("scenario", "cost_item"),
        coords={"cost_item": list(items)},
    )
    book = xr.concat([book, extra], dim="cost_item", combine_attrs="override")
    ds = ds.drop_vars(["cost_item_eur", "cost_item", "cost_owner"])
    ds["cost_item_eur"] = book
    ds = ds.assign_coords(
        cost_owner=("cost_item", [str(c).split("/")[0] for c in book.cost_item.values])
    )
    ds["scenario_cost_eur"] = ds.scenario_cost_eur.copy(data=total)
    ds["expected_cost_eur"] = ds.expected_cost_eur.copy(data=float(weight @ total))
    ds["cvar_eur"] = ds.cvar_eur.copy(data=cvar(total, weight, alpha))
    ds["objective_eur"] = ds.objective_eur.copy(
        data=float(ds.objective_eur) + risk(total) - risk(old)
    )
    return ds


def feeder_check(system, tsm, polygon_sides: int) -> dict[str, xr.DataArray]:
    """The final dispatch's LinDistFlow state of every feeder against its limits (no
    margin), as result variables: what a DSO checks after the TSO's clearing."""
    steps, worst_v, worst_f = 0, 0.0, 0.0
    for i, feeder in enumerate(system.feeders):
        part = tsm.parts[f"feeder_{i}"]
        out = limit_violations(
            feeder.arrays,
            part.vars["p_mw"].values(),
            part.vars["q_mvar"].values(),
            tsm.feeders[i].vm_pu(),
            polygon_sides,
        )
        steps += out["steps"]
        worst_v = max(worst_v, out["worst_vm_pu"])
        worst_f = max(worst_f, out["worst_flow_mva"])
    return {
        "feeder_violation_steps": xr.DataArray(
            steps,
            attrs={
                "units": "1",
                "long_name": "scenario-steps of a feeder breaking a LinDistFlow limit",
            },
        ),
        "feeder_worst_vm_violation_pu": xr.DataArray(
            worst_v, attrs={"units": "pu", "long_name": "largest voltage outside the band"}
        ),
        "feeder_worst_flow_violation_mva": xr.DataArray(
            worst_f, attrs={"units": "MVA", "long_name": "largest branch flow above its rating"}
        ),
    }


@dataclass
class DaySolve:
    """What a model's day step returns to :func:`run_days`.

    Attributes
    ----------
    schedule : xarray.Dataset
    tsm : TwoStageModel
        The solved model whose storage state the next day inherits.
    data : DayData
        The data the schedule was made for (the AC check uses it).
    messages : list of Message
        The day's exchange between the actors.
    problems_solved : int
    """

    schedule: xr.Dataset
    tsm: object
    data: DayData
    messages: list[Message]
    problems_solved: int


def run_days(
    model: str,
    system,
    study,
    days: list[dt.date],
    seed: int,
    forecaster,
    state,
    solve_day: Callable,
) -> list[DayOutcome]:
    """The day loop every coordination model shares.

    For each day: the scenario set and model data from the carried state, the model's
    ``solve_day(day, scenarios, data) -> DaySolve``, the start state and the message
    ledger written into the schedule, and the next day's state (``carried``). A day
    whose solve fails is recorded with its message and passes its start state on.
    """
    from workbench.scenarios import fit_study_forecaster, scenario_set_calibration
    from workbench.state import day_inputs, initial_state, next_state

    limit_threads()
    if forecaster is None:
        forecaster = fit_study_forecaster(study, seed)
    options = TwoStageOptions.from_study(study)
    state = initial_state(system.fleet) if state is None else state
    carried = study.model.storage_state == "carried"
    out: list[DayOutcome] = []
    for day in days:
        tick = time.perf_counter()
        scenarios, data = day_inputs(system, study, day, seed, forecaster, state, options)
        calibration = scenario_set_calibration(scenarios, data, forecaster, options)
        try:
            solved = solve_day(day, scenarios, data)
        except SolverError as exc:
            elapsed = time.perf_counter() - tick
            out.append(
                DayOutcome(
                    model,
                    day,
                    None,
                    data,
                    "failed",
                    str(exc),
                    elapsed,
                    state,
                    calibration=calibration,
                )
            )
            continue
        ds = solved.schedule.merge(state.dataset(system.fleet))
        if carried:
            state = next_state(solved.tsm, solved.data, scenarios)
        ds["problems_solved"] = xr.DataArray(
            int(solved.problems_solved),
            attrs={"units": "1", "long_name": "optimisation problems solved for the day"},
        )
        ds = ds.assign(ledger_variables(solved.messages))
        ds = ds.assign(feeder_check(system, solved.tsm, options.polygon_sides))
        out.append(
            DayOutcome(
                model,
                day,
                ds,
                solved.data,
                str(ds["solver_status"].values),
                "",
                time.perf_counter() - tick,
                state,
                calibration=calibration,
            )
        )
    return out
