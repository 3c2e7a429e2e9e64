"""Two-stage, risk-averse, multi-resolution day-ahead OPF of an integrated T+D system.

First stage (here-and-now, one value per first-stage *period*, no scenario index):
  * TER (bulk generator) energy schedules and up/down reserve,
  * DER day-ahead bids accepted: battery and EV energy schedules with up/down
    flexibility, PV curtailment (down) flexibility.
Second stage (recourse, per *scenario* and second-stage *time* step):
  * TER balancing within reserve: upward at the unit's highest marginal cost plus a
    premium, downward refunded at its lowest marginal cost minus the premium,
  * DER dispatch inside the accepted bids (activated flexibility), PV curtailment within
    the PV bid, battery state of charge and EV charging at the finest resolution,
  * load shedding at every bus, priced at the value of lost load,
  * DC power flow on the transmission network, LinDistFlow on every feeder, coupled by
    the interface power at the feeder roots.
A first-stage value holds for every second-stage step inside its period.

Objective: first-stage cost + ``(1 - beta) E[C2] + beta CVaR_alpha[C2]``, where ``C2`` is
the second-stage cost of a scenario (so the CVaR of the total cost is first-stage cost +
CVaR of ``C2``). The quadratic TER cost is represented by tangent cuts at
``cost_segments + 1`` evenly spaced outputs (an outer approximation, exact at the cut
points).

The builder creates the Pyomo model from arrays and never solves; scenario data sit in
mutable parameters so that a model of the same shape is re-used for another day by
:meth:`TwoStageModel.set_data`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo
import xarray as xr

from cases.study import StudyConfig, first_stage_choices
from cases.system import IntegratedSystem
from stochastic.blocks import (
    FIRST,
    SECOND,
    CostTerm,
    DerPrices,
    Part,
    TerPrices,
    battery_rhs,
    define_der,
    define_feeder,
    define_interface,
    define_ter,
    define_transmission,
)
from stochastic.grid import StageGrid
from stochastic.linear import VarArray, linear_sum
from stochastic.network import DcNetwork, LinDistFlow, dc_shift_injection_mw, w_limits
from stochastic.own_profiles import feeder_own_load, own_unit_injections
from stochastic.risk import Cvar, add_cvar, check_risk_parameters, check_weights

#: largest scenario load relative to nominal accepted by :func:`day_data`
LOAD_FACTOR_MAX = 10.0

__all__ = [
    "DayData",
    "TwoStageModel",
    "TwoStageOptions",
    "build_two_stage",
    "day_data",
    "stage_grid",
]


@dataclass(frozen=True)
class TwoStageOptions:
    """Formulation options and prices.

    Attributes
    ----------
    alpha, beta : float
        CVaR confidence level and weight.
    first_stage_minutes, second_stage_minutes : int [min]
    horizon_hours : int [h]
    polygon_sides : int
    voltage_margin_pu : float [pu]
    cost_segments : int
        Tangent cuts of quadratic fuel costs.
    schedule_following : {"ramp", "step"}
        How TER follow their schedule within each first-stage period (see
        :meth:`stochastic.grid.StageGrid.reference_weights`).
    commitment : {"none", "relaxed", "binary"}
        TER on/off per first-stage period (:func:`stochastic.blocks.define_ter`).
    recourse_efficiency_weight : float [-]
        Weight of the expected second-stage cost added to the objective, so every
        scenario's recourse stays cost-efficient also where the CVaR ignores it (beta = 1).
    oltc_range_pu : float [pu]
        Range of the feeder root voltages around their set-points that the on-load tap
        changers of the coupling transformers may use (0: roots held at the set-point).
    ac_correction_iterations : int
        Rounds of correction of the feeder voltages and losses against an AC power flow
        (``workbench.ac_correction``); > 0 makes the voltage limits mutable.
    voll_eur_per_mwh, deviation_eur_per_mwh, spill_eur_per_mwh, ter_emergency_eur_per_mwh,
    ter_reserve_eur_per_mw_h,
    der_flexibility_eur_per_mw_h, der_activation_eur_per_mwh, pv_curtailment_eur_per_mwh,
    battery_degradation_eur_per_mwh : float
        Prices [EUR/MWh] or capacity prices [EUR/MW per hour].
    der_reactive_eur_per_mvarh : float
        Reactive power of the PV inverters, either direction [EUR/Mvarh].
    """

    alpha: float = 0.9
    beta: float = 0.0
    first_stage_minutes: int = 60
    second_stage_minutes: int = 15
    horizon_hours: int = 24
    polygon_sides: int = 8
    voltage_margin_pu: float = 0.0
    cost_segments: int = 8
    schedule_following: str = "ramp"
    commitment: str = "none"
    recourse_efficiency_weight: float = 1e-3
    ac_correction_iterations: int = 0
    oltc_range_pu: float = 0.0
    voll_eur_per_mwh: float = 3000.0
    deviation_eur_per_mwh: float = 2.0
    spill_eur_per_mwh: float = 200.0
    ter_emergency_eur_per_mwh: float = 200.0
    ter_reserve_eur_per_mw_h: float = 8.0
    der_flexibility_eur_per_mw_h: float = 4.0
    der_activation_eur_per_mwh: float = 5.0
    pv_curtailment_eur_per_mwh: float = 60.0
    battery_degradation_eur_per_mwh: float = 2.0
    der_reactive_eur_per_mvarh: float = 1.0

    def __post_init__(self) -> None:
        check_risk_parameters(self.alpha, self.beta)
        first, second = self.first_stage_minutes, self.second_stage_minutes
        if first < 1 or second < 1:
            raise ValueError(
                f"stage resolutions must be positive minutes, got {first} and {second}"
            )
        if first % second or (self.horizon_hours * 60) % first:
            valid = first_stage_choices(second, self.horizon_hours)
            raise ValueError(
                f"first_stage_minutes {first} must be a multiple of second_stage_minutes "
                f"({second}) that divides the {self.horizon_hours}-h horizon; use one of "
                f"{', '.join(map(str, valid))}"
            )
        if self.schedule_following not in ("ramp", "step"):
            raise ValueError(
                f"schedule_following must be 'ramp' or 'step', got {self.schedule_following!r}"
            )
        if self.commitment not in ("none", "relaxed", "binary"):
            raise ValueError(
                f"commitment must be 'none', 'relaxed' or 'binary', got {self.commitment!r}"
            )
        if not 0.0 <= self.recourse_efficiency_weight <= 1.0:
            raise ValueError(
                "recourse_efficiency_weight must be in [0, 1], got "
                f"{self.recourse_efficiency_weight}"
            )

    @classmethod
    def from_study(cls, study: StudyConfig) -> TwoStageOptions:
        """Options of a study (risk, resolution, model and prices sections)."""
        return cls(
            alpha=study.risk.alpha,
            beta=study.risk.beta,
            first_stage_minutes=study.resolution.first_stage_minutes,
            second_stage_minutes=study.resolution.second_stage_minutes,
            horizon_hours=study.horizon_hours,
            polygon_sides=study.model.polygon_sides,
            voltage_margin_pu=study.model.voltage_margin_pu,
            cost_segments=study.model.cost_segments,
            schedule_following=study.model.schedule_following,
            commitment=study.model.commitment,
            recourse_efficiency_weight=study.risk.recourse_efficiency_weight,
            ac_correction_iterations=study.model.ac_correction_iterations,
            oltc_range_pu=study.model.oltc_range_pu if study.model.oltc else 0.0,
            **study.prices.model_dump(),
        )

    @property
    def n_periods(self) -> int:
        return self.horizon_hours * 60 // self.first_stage_minutes

    @property
    def steps_per_period(self) -> int:
        return self.first_stage_minutes // self.second_stage_minutes

    @property
    def n_steps(self) -> int:
        return self.n_periods * self.steps_per_period

    @property
    def dt_h(self) -> float:
        """Second-stage step length [h]."""
        return self.second_stage_minutes / 60.0

    @property
    def period_h(self) -> float:
        """First-stage period length [h]."""
        return self.first_stage_minutes / 60.0


@dataclass(frozen=True, eq=False)
class DayData:
    """Scenario data of one day, in model units (shapes use S scenarios, T steps).

    Attributes
    ----------
    weight : (S,) [-]
    transmission_load_mw : (S, T, bus) [MW]  sheddable transmission demand
    transmission_rhs_mw : (S, T, bus) [MW]  demand + phase-shift terms
    feeder_load_p_mw, feeder_load_q_mvar : list of (S, T, fbus) [MW], [Mvar]
    feeder_p_rhs_mw, feeder_q_rhs_mvar : list of (S, T, fbus - 1)
        Net demand at non-root buses (load - available PV - fixed units).
    feeder_root_p_mw, feeder_root_q_mvar : list of (S, T) [MW], [Mvar]
        Net demand at each feeder's root bus (drawn through its interface).
    pv_available_mw : (S, T, pv) [MW]
    fixed_p_mw : (S, T, fixed) [MW]
    battery_e_init_mwh : (battery,) [MWh]  energy at the start
    battery_e_end_min_mwh : (battery,) [MWh]  least energy at the end
    ev_p_max_mw : (S, T, ev) [MW]  power of the EVs plugged in (step mean)
    ev_e_min_mwh, ev_e_max_mwh : (S, T, ev) [MWh]
        Cumulative energy into the EVs since the horizon start, at the end of each step,
        when charging as late / as early as possible.
    ev_p_uncontrolled_mw : (S, T, ev) [MW]  charging at full power from arrival
    time : (T,) datetime64, period : (P,) datetime64
    """

    weight: np.ndarray
    transmission_load_mw: np.ndarray
    transmission_rhs_mw: np.ndarray
    feeder_load_p_mw: list
    feeder_load_q_mvar: list
    feeder_p_rhs_mw: list
    feeder_q_rhs_mvar: list
    feeder_root_p_mw: list
    feeder_root_q_mvar: list
    pv_available_mw: np.ndarray
    fixed_p_mw: np.ndarray
    battery_e_init_mwh: np.ndarray
    battery_e_end_min_mwh: np.ndarray
    ev_p_max_mw: np.ndarray
    ev_e_min_mwh: np.ndarray
    ev_e_max_mwh: np.ndarray
    ev_p_uncontrolled_mw: np.ndarray
    time: np.ndarray
    period: np.ndarray

    @property
    def n_scenarios(self) -> int:
        return len(self.weight)

    @property
    def n_steps(self) -> int:
        return len(self.time)


def _clean(x: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """Round-off (|x| < tol) to exact zeros: keeps the LP's numbers well scaled."""
    return np.where(np.abs(x) < tol, 0.0, x)


def _feeder_demand(
    system: IntegratedSystem, res, pv_av: np.ndarray, fixed: np.ndarray, own_load
) -> tuple:
    """Per feeder: load P and Q, the LinDistFlow right-hand sides (load net of PV and
    fixed generation, root excluded) and what sits at the root, each (S, T, bus) [MW,
    Mvar]. ``own_load(feeder)`` gives the load of a feeder with its own profiles."""
    fleet = system.fleet
    lp, lq, prhs, qrhs, root_p, root_q = [], [], [], [], [], []
    for f_i, feeder in enumerate(system.feeders):
        a = feeder.arrays
        if feeder.profiles is not None:
            p, q = own_load(feeder)
        else:
            share = feeder.commercial_share
            shape = (
                res("load_residential")[..., None] * (1 - share)
                + res("load_commercial")[..., None] * share
            )
            p = shape * a.load_p_mw
            q = shape * a.load_q_mvar
        net_p = p.copy()
        for units, values in ((fleet.pv, pv_av), (fleet.fixed, fixed)):
            sel = (units.feeder == f_i).to_numpy()
            if sel.any():
                np.add.at(
                    net_p, (slice(None), slice(None), units.bus.to_numpy()[sel]), -values[..., sel]
                )
        root_p.append(net_p[..., 0])  # anything at the root is drawn through the interface
        root_q.append(q[..., 0])
        lp.append(p)
        lq.append(q)
        prhs.append(net_p[..., 1:])
        qrhs.append(q[..., 1:])
    return lp, lq, prhs, qrhs, root_p, root_q


def _ev_sessions(scenarios: xr.Dataset, nev: int, S: int, T: int) -> dict[str, np.ndarray]:
    """The EV pools' session limits (S, T, ev) from the scenario set."""
    ev = {}
    for key in ("ev_p_max_mw", "ev_e_min_mwh", "ev_e_max_mwh", "ev_p_uncontrolled_mw"):
        if nev and key not in scenarios:
            raise ValueError(
                f"the scenario set has no EV sessions ('{key}') for the {nev} EV charger "
                "pool(s); add them with workbench.scenarios.add_ev_sessions"
            )
        ev[key] = (
            scenarios[key].transpose("scenario", "time", "ev").to_numpy()
            if nev
            else np.zeros((S, T, 0))
        )
    return ev


def _battery_energy(bat, e_init_mwh, horizon_hours: float) -> tuple[np.ndarray, np.ndarray]:
    """Start energy and least end energy of each battery [MWh] (the end lowered to what
    charging at full power from the start can reach)."""
    e0 = (
        (bat.soc_init * bat.e_mwh).to_numpy(dtype=float)
        if e_init_mwh is None
        else np.asarray(e_init_mwh, dtype=float)
    )
    reachable = e0 + (bat.p_mw * bat.efficiency).to_numpy(dtype=float) * horizon_hours
    e_end = np.minimum((bat.soc_end_min * bat.e_mwh).to_numpy(dtype=float), reachable)
    return e0, e_end


def day_data(
    system: IntegratedSystem,
    scenarios: xr.Dataset,
    options: TwoStageOptions,
    battery_e_init_mwh: np.ndarray | None = None,
) -> DayData:
    """Turn a scenario set (per-unit profiles) into the model's day data.

    Parameters
    ----------
    system : IntegratedSystem
    scenarios : xarray.Dataset
        ``value_pu`` (scenario, time, resource) with resources ``load_residential``,
        ``load_commercial``, ``load_transmission``, ``pv``, ``wind``; ``weight``.
    options : TwoStageOptions
    battery_e_init_mwh : ndarray, optional
        Energy at the start of the day [MWh]; default ``soc_init * e_mwh``.

    Notes
    -----
    A feeder whose network carries its own profiles (SimBench) places its loads and own
    generators by :mod:`stochastic.own_profiles` (each element's own shape on the day,
    the resource's uncertainty from ``value_pu`` around ``expected_pu``).

    The least energy at the end is ``soc_end_min * e_mwh``, lowered to what charging at
    full power from the start energy can reach in the horizon (so that any start state
    has a second stage).
    """
    v = scenarios["value_pu"].transpose("scenario", "time", "resource")
    if v.sizes["time"] != options.n_steps:
        raise ValueError(
            f"scenarios have {v.sizes['time']} steps, the model needs "
            f"{options.n_steps} ({options.horizon_hours} h at "
            f"{options.second_stage_minutes} min)"
        )
    weight = check_weights(scenarios["weight"].to_numpy())

    def res(name: str) -> np.ndarray:
        return v.sel(resource=name).to_numpy()  # (S, T)

    loads = v.sel(resource=[r for r in v.resource.values if str(r).startswith("load")])
    if float(loads.max()) > LOAD_FACTOR_MAX:
        raise ValueError(
            f"scenario loads reach {float(loads.max()):.1f} x nominal; at most "
            f"{LOAD_FACTOR_MAX:g} x is supported"
        )
    tarr = system.transmission
    t_load = res("load_transmission")[..., None] * system.transmission_load_p_mw
    t_fixed = tarr.demand_mw - system.transmission_load_p_mw  # non-load fixed demand
    t_rhs = t_load + t_fixed + dc_shift_injection_mw(tarr)
    fleet = system.fleet
    pv_av = res("pv")[..., None] * fleet.pv.p_mw.to_numpy(dtype=float)
    prof = {"wind": res("wind"), "constant": np.ones_like(res("wind"))}
    fixed = (
        np.stack(
            [prof[p] * pmw for p, pmw in zip(fleet.fixed.profile, fleet.fixed.p_mw, strict=True)],
            axis=-1,
        )
        if len(fleet.fixed)
        else np.zeros((*res("pv").shape, 0))
    )
    minutes, hours = options.second_stage_minutes, options.horizon_hours
    if any(f.profiles is not None for f in system.feeders):
        pv_av, fixed = own_unit_injections(system, scenarios, minutes, hours, pv_av, fixed)
    lp, lq, prhs, qrhs, root_p, root_q = _feeder_demand(
        system,
        res,
        pv_av,
        fixed,
        lambda feeder: feeder_own_load(feeder, scenarios, minutes, hours),
    )
    ev = _ev_sessions(scenarios, len(fleet.ev), len(weight), options.n_steps)
    e0, e_end = _battery_energy(fleet.battery, battery_e_init_mwh, options.horizon_hours)
    return DayData(
        weight=weight,
        transmission_load_mw=_clean(t_load),
        transmission_rhs_mw=_clean(t_rhs),
        feeder_load_p_mw=[_clean(x) for x in lp],
        feeder_load_q_mvar=[_clean(x) for x in lq],
        feeder_p_rhs_mw=[_clean(x) for x in prhs],
        feeder_q_rhs_mvar=[_clean(x) for x in qrhs],
        feeder_root_p_mw=[_clean(x) for x in root_p],
        feeder_root_q_mvar=[_clean(x) for x in root_q],
        pv_available_mw=_clean(pv_av),
        fixed_p_mw=_clean(fixed),
        battery_e_init_mwh=e0,
        battery_e_end_min_mwh=e_end,
        ev_p_max_mw=_clean(ev["ev_p_max_mw"]),
        ev_e_min_mwh=_clean(ev["ev_e_min_mwh"]),
        ev_e_max_mwh=_clean(ev["ev_e_max_mwh"]),
        ev_p_uncontrolled_mw=_clean(ev["ev_p_uncontrolled_mw"]),
        time=scenarios["time"].to_numpy(),
        period=scenarios["time"].to_numpy()[:: options.steps_per_period],
    )


@dataclass(frozen=True, eq=False)
class TwoStageModel:
    """A built two-stage model: the Pyomo model and its parts.

    Attributes
    ----------
    model : pyomo ConcreteModel
    options : TwoStageOptions
    system : IntegratedSystem
    grid : StageGrid
    build_seconds : float [s]
    parts : dict of str to Part
        The blocks by name: ``ter``, ``transmission``, ``der``, ``feeder_<i>``.
    dc : DcNetwork
    feeders : list of LinDistFlow
    risk : Cvar
    first_stage_cost : pyomo expression [EUR]
    """

    model: pyo.ConcreteModel
    options: TwoStageOptions
    system: IntegratedSystem
    grid: StageGrid
    build_seconds: float
    parts: dict[str, Part]
    dc: DcNetwork
    feeders: list
    risk: Cvar
    first_stage_cost: object

    @property
    def shape(self) -> tuple[int, int]:
        """(scenario, time)."""
        return self.grid.shape

    def var(self, part: str, name: str) -> VarArray:
        """Variable array ``name`` of block ``part``."""
        return self.parts[part].vars[name]

    def costs(self) -> list[CostTerm]:
        """Every cost term of every block."""
        return [c for p in self.parts.values() for c in p.costs]

    def set_data(self, data: DayData) -> None:
        """Load another day's scenario data (same shape) into the mutable parameters."""
        if (data.n_scenarios, data.n_steps) != self.shape:
            raise ValueError(
                f"day data of shape {(data.n_scenarios, data.n_steps)} for a model "
                f"of shape {self.shape}; build a new model"
            )
        t = self.parts["transmission"].params
        t["load_mw"].set(data.transmission_load_mw)
        t["rhs_mw"].set(data.transmission_rhs_mw)
        for i in range(len(self.feeders)):
            f = self.parts[f"feeder_{i}"].params
            f["load_mw"].set(data.feeder_load_p_mw[i][..., 1:])
            f["p_rhs_mw"].set(data.feeder_p_rhs_mw[i])
            f["q_rhs_mvar"].set(data.feeder_q_rhs_mvar[i])
            f["root_p_mw"].set(data.feeder_root_p_mw[i])
            f["root_q_mvar"].set(data.feeder_root_q_mvar[i])
            if "w_min" in f:  # corrections against AC start afresh every day
                lo, hi = w_limits(
                    self.system.feeders[i].arrays,
                    self.options.voltage_margin_pu,
                    root_range_pu=self.options.oltc_range_pu,
                )
                f["w_min"].set(lo)
                f["w_max"].set(hi)
        d = self.parts["der"].params
        if "pv_available_mw" in d:
            d["pv_available_mw"].set(data.pv_available_mw)
        if "fixed_available_mw" in d:
            d["fixed_available_mw"].set(data.fixed_p_mw)
        if "battery_energy_rhs_mwh" in d:
            d["battery_energy_rhs_mwh"].set(battery_rhs(data.battery_e_init_mwh, self.grid))
            d["battery_end_min_mwh"].set(
                np.broadcast_to(data.battery_e_end_min_mwh, d["battery_end_min_mwh"].shape)
            )
        if "ev_p_max_mw" in d:
            d["ev_p_max_mw"].set(data.ev_p_max_mw)
            d["ev_e_min_mwh"].set(data.ev_e_min_mwh)
            d["ev_e_max_mwh"].set(data.ev_e_max_mwh)
        self.risk.weight.set(data.weight)

    def set_risk(self, alpha: float, beta: float) -> None:
        """Change the CVaR parameters (then re-solve with ``update_parameters``)."""
        check_risk_parameters(alpha, beta)
        self.risk.alpha.set(alpha)
        self.risk.beta.set(beta)


def stage_grid(options: TwoStageOptions, n_scenarios: int) -> StageGrid:
    """The stage grid of ``options`` with ``n_scenarios`` scenarios."""
    return StageGrid(
        n_scenarios=n_scenarios,
        n_steps=options.n_steps,
        n_periods=options.n_periods,
        step_h=options.dt_h,
        period_h=options.period_h,
    )


def build_two_stage(
    system: IntegratedSystem,
    data: DayData,
    options: TwoStageOptions,
    feeder_limits: bool = True,
) -> TwoStageModel:
    """Build the TSO-managed (centralised) two-stage model of ``system``; never solves.

    The model is a table of contents of blocks (:mod:`stochastic.blocks`): TER, DER,
    one LinDistFlow feeder per feeder, the DC transmission network joined to each feeder
    at its interface, and the risk block over every second-stage cost.

    ``feeder_limits=False`` gives the TSO's transmission-only view: the feeders' voltage
    and branch limits are left out (their flows and voltages are still computed, so the
    dispatch can be checked against them afterwards).
    """
    tick = time.perf_counter()
    o = options
    if data.n_steps != o.n_steps:
        raise ValueError(f"day data has {data.n_steps} steps, options need {o.n_steps}")
    grid = stage_grid(o, data.n_scenarios)
    m = pyo.ConcreteModel(
        name="two_stage_tso_managed" if feeder_limits else "two_stage_transmission_view"
    )
    tarr, fleet = system.transmission, system.fleet
    arrays = [f.arrays for f in system.feeders]
    parts: dict[str, Part] = {}

    ter, t_inj = define_ter(
        m,
        grid,
        tarr,
        TerPrices(
            reserve_eur_per_mw_h=o.ter_reserve_eur_per_mw_h,
            deviation_eur_per_mwh=o.deviation_eur_per_mwh,
            spill_eur_per_mwh=o.spill_eur_per_mwh,
            emergency_up_eur_per_mwh=o.ter_emergency_eur_per_mwh,
            cost_segments=o.cost_segments,
            follow=o.schedule_following,
            commitment=o.commitment,
        ),
    )
    parts["ter"] = ter
    der, der_inj = define_der(
        m,
        grid,
        fleet,
        arrays,
        data.pv_available_mw,
        data.fixed_p_mw,
        data.battery_e_init_mwh,
        data.battery_e_end_min_mwh,
        data.ev_p_max_mw,
        data.ev_e_min_mwh,
        data.ev_e_max_mwh,
        DerPrices(
            flexibility_eur_per_mw_h=o.der_flexibility_eur_per_mw_h,
            activation_eur_per_mwh=o.der_activation_eur_per_mwh,
            pv_curtailment_eur_per_mwh=o.pv_curtailment_eur_per_mwh,
            battery_degradation_eur_per_mwh=o.battery_degradation_eur_per_mwh,
            spill_eur_per_mwh=o.spill_eur_per_mwh,
            ev_unserved_eur_per_mwh=o.voll_eur_per_mwh,
            reactive_eur_per_mvarh=o.der_reactive_eur_per_mvarh,
        ),
    )
    parts["der"] = der
    ldfs = _define_feeders(m, grid, system, data, o, der_inj.p, der_inj.q, feeder_limits, parts)
    transmission, dc = define_transmission(
        m,
        grid,
        tarr,
        data.transmission_load_mw,
        data.transmission_rhs_mw,
        t_inj,
        o.voll_eur_per_mwh,
        interface_bus=np.array([f.bus for f in system.feeders], dtype=int),
    )
    parts["transmission"] = transmission
    parts["interface"] = define_interface(
        m,
        grid,
        "coupled",
        tso_p_mw=transmission.vars.get("interface_p_mw"),
        dso_p_mw=[parts[f"feeder_{i}"].vars["interface_p_mw"] for i in range(len(ldfs))],
    )

    risk = _define_objective(m, grid, parts, data.weight, o)
    return TwoStageModel(
        m,
        o,
        system,
        grid,
        time.perf_counter() - tick,
        parts,
        dc,
        ldfs,
        risk,
        m.first_stage_cost_eur,
    )


def _define_feeders(
    m, grid, system, data: DayData, o: TwoStageOptions, der_p, der_q, limits: bool, parts: dict
) -> list[LinDistFlow]:
    """One LinDistFlow feeder block per feeder (added to ``parts``)."""
    fleet = system.fleet
    ldfs: list[LinDistFlow] = []
    for fi, feeder in enumerate(system.feeders):
        part, ldf = define_feeder(
            m,
            grid,
            feeder.arrays,
            fi,
            data.feeder_load_p_mw[fi][..., 1:],
            data.feeder_p_rhs_mw[fi],
            data.feeder_q_rhs_mvar[fi],
            data.feeder_root_p_mw[fi],
            data.feeder_root_q_mvar[fi],
            der_p[fi],
            der_q[fi],
            voll_eur_per_mwh=o.voll_eur_per_mwh,
            polygon_sides=o.polygon_sides,
            voltage_margin_pu=o.voltage_margin_pu,
            flow_bound_mva=_flow_bound_mva(feeder.arrays, fleet, fi),
            mutable_voltage_limits=o.ac_correction_iterations > 0,
            limits=limits,
            root_range_pu=o.oltc_range_pu,
        )
        parts[part.name] = part
        ldfs.append(ldf)
    return ldfs


def _define_objective(m, grid, parts: dict, weight: np.ndarray, o: TwoStageOptions):
    """First-stage cost plus the risk measure ((1-beta) E + beta CVaR) of every
    second-stage cost of ``parts``; returns the risk block."""
    costs = [c for p in parts.values() for c in p.costs]
    m.risk = pyo.Block()
    risk = add_cvar(
        m.risk,
        grid.n_scenarios,
        [c.terms for c in costs if c.stage == SECOND],
        weight,
        o.alpha,
        o.beta,
        n_steps=grid.n_steps,
        efficiency_weight=o.recourse_efficiency_weight,
    )
    m.first_stage_cost_eur = pyo.Expression(
        expr=linear_sum([c.terms for c in costs if c.stage == FIRST])
    )
    m.objective = pyo.Objective(
        expr=m.first_stage_cost_eur + sum(c * x for c, x in risk.objective_terms())
    )
    return risk


def _flow_bound_mva(a, fleet, fi: int) -> float:
    """Bound on the apparent power of any branch of feeder ``fi`` [MVA].

    ``LOAD_FACTOR_MAX`` times the nominal demand plus every DER rating; polygon rows of
    branches rated above it cannot bind and are not written (placeholder ratings).
    """
    total = LOAD_FACTOR_MAX * np.hypot(a.load_p_mw, a.load_q_mvar).sum()
    for units, col in (
        (fleet.pv, "s_mva"),
        (fleet.battery, "p_mw"),
        (fleet.ev, "p_mw"),
        (fleet.fixed, "p_mw"),
    ):
        total += units.loc[units.feeder == fi, col].astype(float).sum()
    return float(total)
