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
import pandas as pd
import pyomo.environ as pyo
import xarray as xr

from cases.study import StudyConfig
from cases.system import IntegratedSystem
from stochastic.linear import (
    ParamArray,
    Terms,
    VarArray,
    add_param,
    add_rows,
    add_var,
    linear_sum,
    terms,
)
from stochastic.network import (
    DcNetwork,
    LinDistFlow,
    add_dc_network,
    add_lindistflow,
    dc_shift_injection_mw,
    root_branches,
)
from stochastic.risk import Cvar, add_cvar, check_risk_parameters, check_weights

#: largest scenario load relative to nominal accepted by :func:`day_data`
LOAD_FACTOR_MAX = 10.0

__all__ = ["DayData", "TwoStageModel", "TwoStageOptions", "build_two_stage", "day_data"]


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
    voll_eur_per_mwh, balancing_premium_eur_per_mwh, ter_reserve_eur_per_mw_h,
    der_flexibility_eur_per_mw_h, der_activation_eur_per_mwh, pv_curtailment_eur_per_mwh,
    battery_degradation_eur_per_mwh : float
        Prices [EUR/MWh] or capacity prices [EUR/MW per hour].
    """

    alpha: float = 0.9
    beta: float = 0.0
    first_stage_minutes: int = 60
    second_stage_minutes: int = 15
    horizon_hours: int = 24
    polygon_sides: int = 8
    voltage_margin_pu: float = 0.0
    cost_segments: int = 8
    voll_eur_per_mwh: float = 3000.0
    balancing_premium_eur_per_mwh: float = 15.0
    ter_reserve_eur_per_mw_h: float = 2.0
    der_flexibility_eur_per_mw_h: float = 1.0
    der_activation_eur_per_mwh: float = 5.0
    pv_curtailment_eur_per_mwh: float = 30.0
    battery_degradation_eur_per_mwh: float = 2.0

    def __post_init__(self) -> None:
        check_risk_parameters(self.alpha, self.beta)
        if self.first_stage_minutes % self.second_stage_minutes:
            raise ValueError(
                "the first-stage resolution must be a multiple of the second's "
                f"({self.first_stage_minutes} vs {self.second_stage_minutes} min)"
            )
        if (self.horizon_hours * 60) % self.first_stage_minutes:
            raise ValueError("horizon_hours must hold a whole number of first-stage periods")

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
    transmission_rhs_mw : (S, T, bus) [MW]  demand + feeder root loads + phase-shift terms
    feeder_load_p_mw, feeder_load_q_mvar : list of (S, T, fbus) [MW], [Mvar]
    feeder_p_rhs_mw, feeder_q_rhs_mvar : list of (S, T, fbus - 1)
        Net demand at non-root buses (load - available PV - fixed units).
    pv_available_mw : (S, T, pv) [MW]
    fixed_p_mw : (S, T, fixed) [MW]
    battery_e_init_mwh : (battery,) [MWh]
    ev_energy_mwh : (ev,) [MWh]  energy to deliver within the horizon
    ev_available : (T, ev) [-]  1 while plugged in
    time : (T,) datetime64, period : (P,) datetime64
    """

    weight: np.ndarray
    transmission_load_mw: np.ndarray
    transmission_rhs_mw: np.ndarray
    feeder_load_p_mw: list
    feeder_load_q_mvar: list
    feeder_p_rhs_mw: list
    feeder_q_rhs_mvar: list
    pv_available_mw: np.ndarray
    fixed_p_mw: np.ndarray
    battery_e_init_mwh: np.ndarray
    ev_energy_mwh: np.ndarray
    ev_available: np.ndarray
    time: np.ndarray
    period: np.ndarray

    @property
    def n_scenarios(self) -> int:
        return len(self.weight)

    @property
    def n_steps(self) -> int:
        return len(self.time)


def _ev_window(arrival_h: float, departure_h: float, hours: np.ndarray) -> np.ndarray:
    """1 where the step starting at ``hours`` [h of day] lies in the charging window."""
    h = np.mod(hours, 24.0)
    if arrival_h < departure_h:
        return ((h >= arrival_h) & (h < departure_h)).astype(float)
    return ((h >= arrival_h) | (h < departure_h)).astype(float)


def _clean(x: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """Round-off (|x| < tol) to exact zeros: keeps the LP's numbers well scaled."""
    return np.where(np.abs(x) < tol, 0.0, x)


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
    lp, lq, prhs, qrhs = [], [], [], []
    for f_i, feeder in enumerate(system.feeders):
        a = feeder.arrays
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
        t_rhs[..., feeder.bus] += net_p[..., 0]  # anything at the root is interface demand
        lp.append(p)
        lq.append(q)
        prhs.append(net_p[..., 1:])
        qrhs.append(q[..., 1:])
    start = pd.Timestamp(scenarios["time"].to_numpy()[0])
    hours = start.hour + start.minute / 60.0 + np.arange(options.n_steps) * options.dt_h
    ev_av = (
        np.stack(
            [_ev_window(r.arrival_hour, r.departure_hour, hours) for r in fleet.ev.itertuples()],
            axis=-1,
        )
        if len(fleet.ev)
        else np.zeros((options.n_steps, 0))
    )
    full_day = np.arange(int(24 / options.dt_h)) * options.dt_h
    ev_full = np.array(
        [
            _ev_window(r.arrival_hour, r.departure_hour, full_day).sum()
            for r in fleet.ev.itertuples()
        ]
    )
    ev_energy = (
        (fleet.ev.energy_mwh.to_numpy(dtype=float) * ev_av.sum(axis=0) / np.maximum(ev_full, 1))
        if len(fleet.ev)
        else np.zeros(0)
    )
    e0 = (
        (fleet.battery.soc_init * fleet.battery.e_mwh).to_numpy(dtype=float)
        if battery_e_init_mwh is None
        else np.asarray(battery_e_init_mwh, dtype=float)
    )
    return DayData(
        weight=weight,
        transmission_load_mw=_clean(t_load),
        transmission_rhs_mw=_clean(t_rhs),
        feeder_load_p_mw=[_clean(x) for x in lp],
        feeder_load_q_mvar=[_clean(x) for x in lq],
        feeder_p_rhs_mw=[_clean(x) for x in prhs],
        feeder_q_rhs_mvar=[_clean(x) for x in qrhs],
        pv_available_mw=_clean(pv_av),
        fixed_p_mw=_clean(fixed),
        battery_e_init_mwh=e0,
        ev_energy_mwh=ev_energy,
        ev_available=ev_av,
        time=scenarios["time"].to_numpy(),
        period=scenarios["period"].to_numpy(),
    )


@dataclass(frozen=True, eq=False)
class _Params:
    """Mutable parameters of the model (everything that changes from day to day)."""

    t_load: ParamArray
    t_rhs: ParamArray
    f_load: list
    f_p_rhs: list
    f_q_rhs: list
    pv_avail: ParamArray | None
    bat_rhs: ParamArray | None
    bat_end: ParamArray | None
    ev_energy: ParamArray | None


@dataclass(frozen=True, eq=False)
class TwoStageModel:
    """A built two-stage model: the Pyomo model and handles to its arrays.

    Attributes
    ----------
    model : pyomo ConcreteModel
    options : TwoStageOptions
    system : IntegratedSystem
    shape : (S, T)
    build_seconds : float [s]
    v : dict of VarArray
        Named variable arrays (see :func:`build_two_stage`).
    dc : DcNetwork
    feeders : list of LinDistFlow
    risk : Cvar
    first_stage_cost : pyomo expression [EUR]
    """

    model: pyo.ConcreteModel
    options: TwoStageOptions
    system: IntegratedSystem
    shape: tuple[int, int]
    build_seconds: float
    v: dict
    dc: DcNetwork
    feeders: list
    risk: Cvar
    first_stage_cost: object
    params: _Params

    def set_data(self, data: DayData) -> None:
        """Load another day's scenario data (same shape) into the mutable parameters."""
        if (data.n_scenarios, data.n_steps) != self.shape:
            raise ValueError(
                f"day data of shape {(data.n_scenarios, data.n_steps)} for a model "
                f"of shape {self.shape}; build a new model"
            )
        p = self.params
        p.t_load.set(data.transmission_load_mw)
        p.t_rhs.set(data.transmission_rhs_mw)
        for i in range(len(self.feeders)):
            p.f_load[i].set(data.feeder_load_p_mw[i][..., 1:])
            p.f_p_rhs[i].set(data.feeder_p_rhs_mw[i])
            p.f_q_rhs[i].set(data.feeder_q_rhs_mvar[i])
        if p.pv_avail is not None:
            p.pv_avail.set(data.pv_available_mw)
        if p.bat_rhs is not None:
            p.bat_rhs.set(_battery_rhs(data, self.shape))
            p.bat_end.set(np.broadcast_to(data.battery_e_init_mwh, p.bat_end.shape))
        if p.ev_energy is not None:
            p.ev_energy.set(np.broadcast_to(data.ev_energy_mwh, p.ev_energy.shape))
        self.risk.weight.set(data.weight)

    def set_risk(self, alpha: float, beta: float) -> None:
        """Change the CVaR parameters (then re-solve with ``update_parameters``)."""
        check_risk_parameters(alpha, beta)
        self.risk.alpha.set(alpha)
        self.risk.beta.set(beta)


def _battery_rhs(data: DayData, shape: tuple[int, int]) -> np.ndarray:
    s, t = shape
    rhs = np.zeros((s, t, len(data.battery_e_init_mwh)))
    rhs[:, 0, :] = data.battery_e_init_mwh
    return rhs


def build_two_stage(
    system: IntegratedSystem, data: DayData, options: TwoStageOptions
) -> TwoStageModel:
    """Build the TSO-managed (centralised) two-stage model of ``system``.

    Variable arrays in ``TwoStageModel.v`` (first stage: (period, unit); second stage:
    (scenario, time, unit)):
    ``ter_p``, ``ter_up``, ``ter_dn``, ``ter_cost``, ``ter_bal_up``, ``ter_bal_dn``,
    ``t_shed``, ``f_shed_<i>``, ``pv_flex_dn``, ``pv_curt``, ``pv_q``, ``bat_da``, ``bat_up``,
    ``bat_dn``, ``bat_pc``, ``bat_pd``, ``bat_e``, ``bat_aup``, ``bat_adn``, ``ev_da``,
    ``ev_up``, ``ev_dn``, ``ev_c``, ``ev_aup``, ``ev_adn``.
    """
    tick = time.perf_counter()
    o = options
    S, T, P = data.n_scenarios, data.n_steps, o.n_periods
    if T != o.n_steps:
        raise ValueError(f"day data has {T} steps, options need {o.n_steps}")
    k = o.steps_per_period
    hmap = np.arange(T) // k  # period of each step
    tarr = system.transmission
    fleet = system.fleet
    G, NB = tarr.n_gen, tarr.n_bus
    m = pyo.ConcreteModel(name="two_stage_tso_managed")
    v: dict[str, VarArray] = {}
    sst = (S, T)
    sdims = ("scenario", "time")
    dt, ph = o.dt_h, o.period_h
    first_cost: list[Terms] = []  # rows ignored, EUR
    second_cost: list[Terms] = []  # rows = scenario, EUR

    def st_rows(n: int) -> np.ndarray:
        return np.arange(S * T * n).reshape(S, T, n)

    def first_cols(var: VarArray) -> np.ndarray:
        """Flat positions of a first-stage (period, unit) variable seen from (S, T, unit)."""
        return np.broadcast_to(var.index()[hmap][None], (S, T, var.shape[1]))

    def first_terms(var: VarArray, rows: np.ndarray, coef=1.0) -> Terms:
        """Terms of a first-stage variable in second-stage rows (S, T, unit)."""
        return terms(var, rows, first_cols(var), coef)

    def scen_rows(n: int) -> np.ndarray:
        """Cost rows (one per scenario and step) seen from (S, T, unit)."""
        return np.broadcast_to(np.arange(S * T).reshape(S, T, 1), (S, T, n))

    # ---------------- TER: first stage ----------------
    m.ter = pyo.Block()
    pmin, pmax = tarr.gen_pmin_mw, tarr.gen_pmax_mw
    span = np.maximum(pmax - pmin, 0.0)
    v["ter_p"] = add_var(m.ter, "schedule_mw", (P, G), ("period", "gen"), pmin, pmax)
    v["ter_up"] = add_var(m.ter, "reserve_up_mw", (P, G), ("period", "gen"), 0.0, span)
    v["ter_dn"] = add_var(m.ter, "reserve_down_mw", (P, G), ("period", "gen"), 0.0, span)
    pg = np.arange(P * G).reshape(P, G)
    add_rows(
        m.ter,
        "headroom",
        (P, G),
        ("period", "gen"),
        [terms(v["ter_p"], pg, pg), terms(v["ter_up"], pg, pg)],
        None,
        pmax,
    )
    add_rows(
        m.ter,
        "footroom",
        (P, G),
        ("period", "gen"),
        [terms(v["ter_p"], pg, pg), terms(v["ter_dn"], pg, pg, -1.0)],
        pmin,
        None,
    )
    v["ter_cost"] = add_var(m.ter, "cost_eur_per_h", (P, G), ("period", "gen"))
    nseg = o.cost_segments
    c0, c1, c2 = (
        tarr.gen_cost_c0_eur_per_h,
        tarr.gen_cost_c1_eur_per_mwh,
        tarr.gen_cost_c2_eur_per_mw2h,
    )
    brk = pmin[:, None] + span[:, None] * np.linspace(0.0, 1.0, nseg + 1)[None, :]  # (G, K)
    brk = np.where(c2[:, None] > 0, brk, brk[:, :1])  # linear costs need one cut
    slope = c1[:, None] + 2.0 * c2[:, None] * brk
    icpt = c0[:, None] - c2[:, None] * brk**2
    K = nseg + 1
    crow = np.arange(P * G * K).reshape(P, G, K)
    add_rows(
        m.ter,
        "cost_cut",
        (P, G, K),
        ("period", "gen", "cut"),
        [
            terms(v["ter_cost"], crow, pg[:, :, None]),
            terms(v["ter_p"], crow, pg[:, :, None], -slope[None]),
        ],
        np.broadcast_to(icpt[None], (P, G, K)),
        None,
    )
    first_cost.append(terms(v["ter_cost"], 0, pg, ph))
    first_cost.append(terms(v["ter_up"], 0, pg, o.ter_reserve_eur_per_mw_h * ph))
    first_cost.append(terms(v["ter_dn"], 0, pg, o.ter_reserve_eur_per_mw_h * ph))

    # ---------------- TER: second stage ----------------
    v["ter_bal_up"] = add_var(m.ter, "balancing_up_mw", (S, T, G), (*sdims, "gen"), 0.0, None)
    v["ter_bal_dn"] = add_var(m.ter, "balancing_down_mw", (S, T, G), (*sdims, "gen"), 0.0, None)
    r = st_rows(G)
    add_rows(
        m.ter,
        "balancing_up_limit",
        (S, T, G),
        (*sdims, "gen"),
        [terms(v["ter_bal_up"], r, r), first_terms(v["ter_up"], r, -1.0)],
        None,
        0.0,
    )
    add_rows(
        m.ter,
        "balancing_down_limit",
        (S, T, G),
        (*sdims, "gen"),
        [terms(v["ter_bal_dn"], r, r), first_terms(v["ter_dn"], r, -1.0)],
        None,
        0.0,
    )
    # balancing energy: upward at the unit's highest marginal cost plus the premium, downward
    # refunded at its lowest marginal cost minus the premium, so that re-dispatch never
    # earns money against the day-ahead schedule (no arbitrage between the stages)
    prem = o.balancing_premium_eur_per_mwh
    mc_hi = c1 + 2.0 * c2 * pmax
    mc_lo = c1 + 2.0 * c2 * pmin
    second_cost.append(terms(v["ter_bal_up"], scen_rows(G), r, (mc_hi + prem) * dt))
    second_cost.append(terms(v["ter_bal_dn"], scen_rows(G), r, (prem - mc_lo) * dt))

    # ---------------- transmission network ----------------
    m.transmission = pyo.Block()
    params_t_load = add_param(m.transmission, "load_mw", data.transmission_load_mw, (*sdims, "bus"))
    params_t_rhs = add_param(m.transmission, "rhs_mw", data.transmission_rhs_mw, (*sdims, "bus"))
    v["t_shed"] = add_var(
        m.transmission, "shed_mw", (S, T, NB), (*sdims, "bus"), 0.0, params_t_load
    )
    rb = st_rows(NB)
    gbus_rows = rb[:, :, tarr.gen_bus]  # (S, T, G)
    t_inj = [
        first_terms(v["ter_p"], gbus_rows),
        terms(v["ter_bal_up"], gbus_rows, r),
        terms(v["ter_bal_dn"], gbus_rows, r, -1.0),
        terms(v["t_shed"], rb, rb),
    ]
    second_cost.append(terms(v["t_shed"], scen_rows(NB), rb, o.voll_eur_per_mwh * dt))

    # ---------------- DER: first stage ----------------
    m.der = pyo.Block()
    npv, nbat, nev = len(fleet.pv), len(fleet.battery), len(fleet.ev)
    flex = o.der_flexibility_eur_per_mw_h * ph
    pv_p = fleet.pv.p_mw.to_numpy(dtype=float)
    pv_s = fleet.pv.s_mva.to_numpy(dtype=float)
    v["pv_flex_dn"] = add_var(m.der, "pv_flex_down_mw", (P, npv), ("period", "pv"), 0.0, pv_p)
    first_cost.append(terms(v["pv_flex_dn"], 0, v["pv_flex_dn"].index(), flex))

    def der_bids(kind: str, key: str, lo: np.ndarray, hi: np.ndarray, flex_max: np.ndarray):
        """First stage of schedulable DER: a schedule in ``[lo, hi]`` and up/down flexibility
        with ``schedule + up <= hi`` and ``schedule - down >= lo`` [MW], per period."""
        n = len(lo)
        shape, dims = (P, n), ("period", kind)
        v[f"{key}_da"] = add_var(
            m.der,
            f"{kind}_schedule_mw",
            shape,
            dims,
            lo,
            hi,
        )
        v[f"{key}_up"] = add_var(m.der, f"{kind}_flex_up_mw", shape, dims, 0.0, flex_max)
        v[f"{key}_dn"] = add_var(m.der, f"{kind}_flex_down_mw", shape, dims, 0.0, flex_max)
        rows = np.arange(P * n).reshape(shape)
        da, up, dn = v[f"{key}_da"], v[f"{key}_up"], v[f"{key}_dn"]
        add_rows(
            m.der,
            f"{kind}_bid_up",
            shape,
            dims,
            [terms(da, rows, rows), terms(up, rows, rows)],
            None,
            hi,
        )
        add_rows(
            m.der,
            f"{kind}_bid_down",
            shape,
            dims,
            [terms(da, rows, rows), terms(dn, rows, rows, -1.0)],
            lo,
            None,
        )
        first_cost.append(terms(up, 0, rows, flex))
        first_cost.append(terms(dn, 0, rows, flex))

    def der_activation(kind: str, key: str, power: list[Terms], n: int) -> None:
        """Second stage of schedulable DER: injection - schedule = activated up - activated
        down, each within the accepted flexibility, priced per MWh activated."""
        shape, dims = (S, T, n), (*sdims, kind)
        aup = v[f"{key}_aup"] = add_var(m.der, f"{kind}_activated_up_mw", shape, dims, 0.0, None)
        adn = v[f"{key}_adn"] = add_var(m.der, f"{kind}_activated_down_mw", shape, dims, 0.0, None)
        rows = st_rows(n)
        add_rows(
            m.der,
            f"{kind}_activation",
            shape,
            dims,
            [
                *power,
                terms(aup, rows, rows, -1.0),
                terms(adn, rows, rows),
                first_terms(v[f"{key}_da"], rows, -1.0),
            ],
            0.0,
            0.0,
        )
        add_rows(
            m.der,
            f"{kind}_activated_up_limit",
            shape,
            dims,
            [terms(aup, rows, rows), first_terms(v[f"{key}_up"], rows, -1.0)],
            None,
            0.0,
        )
        add_rows(
            m.der,
            f"{kind}_activated_down_limit",
            shape,
            dims,
            [terms(adn, rows, rows), first_terms(v[f"{key}_dn"], rows, -1.0)],
            None,
            0.0,
        )
        for var in (aup, adn):
            second_cost.append(terms(var, scen_rows(n), rows, o.der_activation_eur_per_mwh * dt))

    bp = fleet.battery.p_mw.to_numpy(dtype=float)
    be = fleet.battery.e_mwh.to_numpy(dtype=float)
    beff = fleet.battery.efficiency.to_numpy(dtype=float)
    der_bids("battery", "bat", -bp, bp, 2.0 * bp)
    ep = fleet.ev.p_mw.to_numpy(dtype=float)
    eeff = fleet.ev.efficiency.to_numpy(dtype=float)
    der_bids("ev", "ev", -ep, np.zeros(nev), ep)

    # ---------------- DER: second stage ----------------
    pv_avail = (
        add_param(m.der, "pv_available_mw", data.pv_available_mw, (*sdims, "pv")) if npv else None
    )
    v["pv_curt"] = add_var(
        m.der, "pv_curtailment_mw", (S, T, npv), (*sdims, "pv"), 0.0, pv_avail if npv else None
    )
    qmax = np.sqrt(np.maximum(pv_s**2 - pv_p**2, 0.0))
    v["pv_q"] = add_var(
        m.der,
        "pv_q_mvar",
        (S, T, npv),
        (*sdims, "pv"),
        -qmax,
        qmax,
    )
    rp = st_rows(npv)
    add_rows(
        m.der,
        "pv_curtailment_within_bid",
        (S, T, npv),
        (*sdims, "pv"),
        [
            terms(v["pv_curt"], rp, rp),
            first_terms(v["pv_flex_dn"], rp, -1.0),
        ],
        None,
        0.0,
    )
    second_cost.append(terms(v["pv_curt"], scen_rows(npv), rp, o.pv_curtailment_eur_per_mwh * dt))

    v["bat_pc"] = add_var(
        m.der,
        "battery_charge_mw",
        (S, T, nbat),
        (*sdims, "battery"),
        0.0,
        bp,
    )
    v["bat_pd"] = add_var(
        m.der,
        "battery_discharge_mw",
        (S, T, nbat),
        (*sdims, "battery"),
        0.0,
        bp,
    )
    v["bat_e"] = add_var(
        m.der,
        "battery_energy_mwh",
        (S, T, nbat),
        (*sdims, "battery"),
        0.0,
        be,
    )
    rbt = st_rows(nbat)
    der_activation(
        "battery", "bat", [terms(v["bat_pd"], rbt, rbt), terms(v["bat_pc"], rbt, rbt, -1.0)], nbat
    )
    bat_rhs = (
        add_param(m.der, "battery_energy_rhs_mwh", _battery_rhs(data, (S, T)), (*sdims, "battery"))
        if nbat
        else None
    )
    prev = rbt[:, :-1, :]
    add_rows(
        m.der,
        "battery_energy_balance",
        (S, T, nbat),
        (*sdims, "battery"),
        [
            terms(v["bat_e"], rbt, rbt),
            terms(v["bat_e"], rbt[:, 1:, :], prev, -1.0),
            terms(v["bat_pc"], rbt, rbt, -dt * beff),
            terms(v["bat_pd"], rbt, rbt, dt / beff),
        ],
        bat_rhs if nbat else 0.0,
        bat_rhs if nbat else 0.0,
    )
    bat_end = (
        add_param(
            m.der,
            "battery_end_min_mwh",
            np.broadcast_to(data.battery_e_init_mwh, (S, nbat)),
            ("scenario", "battery"),
        )
        if nbat
        else None
    )
    add_rows(
        m.der,
        "battery_end_energy",
        (S, nbat),
        ("scenario", "battery"),
        [terms(v["bat_e"], np.arange(S * nbat).reshape(S, nbat), rbt[:, -1, :])],
        bat_end if nbat else 0.0,
        None,
    )
    second_cost.append(
        terms(v["bat_pc"], scen_rows(nbat), rbt, o.battery_degradation_eur_per_mwh * dt)
    )
    second_cost.append(
        terms(v["bat_pd"], scen_rows(nbat), rbt, o.battery_degradation_eur_per_mwh * dt)
    )

    v["ev_c"] = add_var(
        m.der,
        "ev_charge_mw",
        (S, T, nev),
        (*sdims, "ev"),
        0.0,
        ep * data.ev_available,
    )
    rev = st_rows(nev)
    der_activation("ev", "ev", [terms(v["ev_c"], rev, rev, -1.0)], nev)
    ev_energy = (
        add_param(
            m.der,
            "ev_energy_mwh",
            np.broadcast_to(data.ev_energy_mwh, (S, nev)),
            ("scenario", "ev"),
        )
        if nev
        else None
    )
    se = np.broadcast_to(np.arange(S * nev).reshape(S, 1, nev), (S, T, nev))
    add_rows(
        m.der,
        "ev_energy_delivered",
        (S, nev),
        ("scenario", "ev"),
        [terms(v["ev_c"], se, rev, dt * eeff)],
        ev_energy if nev else 0.0,
        ev_energy if nev else 0.0,
    )

    # ---------------- feeders (LinDistFlow) and interfaces ----------------
    ldfs: list[LinDistFlow] = []
    f_load, f_prhs, f_qrhs = [], [], []
    for fi, feeder in enumerate(system.feeders):
        a = feeder.arrays
        nbr = a.n_branch
        blk = pyo.Block()
        m.add_component(f"feeder_{fi}", blk)
        load = add_param(
            blk, "load_mw", data.feeder_load_p_mw[fi][..., 1:], (*sdims, "bus_nonroot")
        )
        prhs = add_param(blk, "p_rhs_mw", data.feeder_p_rhs_mw[fi], (*sdims, "bus_nonroot"))
        qrhs = add_param(blk, "q_rhs_mvar", data.feeder_q_rhs_mvar[fi], (*sdims, "bus_nonroot"))
        shed = add_var(blk, "shed_mw", (S, T, nbr), (*sdims, "bus_nonroot"), 0.0, load)
        v[f"f_shed_{fi}"] = shed
        rows = st_rows(nbr)
        tan_phi = np.divide(
            a.load_q_mvar[1:], a.load_p_mw[1:], out=np.zeros(nbr), where=a.load_p_mw[1:] > 0
        )
        p_inj = [terms(shed, rows, rows)]
        q_inj = [terms(shed, rows, rows, tan_phi)]
        second_cost.append(terms(shed, scen_rows(nbr), rows, o.voll_eur_per_mwh * dt))
        for units, kinds in (
            (fleet.pv, ("pv_curt", "pv_q")),
            (fleet.battery, ("bat",)),
            (fleet.ev, ("ev_c",)),
        ):
            sel = np.flatnonzero((units.feeder == fi).to_numpy())
            if not len(sel):
                continue
            bus = units.bus.to_numpy()[sel]
            if (bus == 0).any():
                raise ValueError(f"feeder '{a.name}': DER on the root bus is not supported")
            urow = rows[:, :, bus - 1]
            if kinds[0] == "pv_curt":
                ucol = st_rows(npv)[:, :, sel]
                p_inj.append(terms(v["pv_curt"], urow, ucol, -1.0))
                q_inj.append(terms(v["pv_q"], urow, ucol, 1.0))
            elif kinds[0] == "bat":
                ucol = st_rows(nbat)[:, :, sel]
                p_inj.append(terms(v["bat_pd"], urow, ucol, 1.0))
                p_inj.append(terms(v["bat_pc"], urow, ucol, -1.0))
            else:
                ucol = st_rows(nev)[:, :, sel]
                p_inj.append(terms(v["ev_c"], urow, ucol, -1.0))
        bound = _flow_bound_mva(a, fleet, fi)
        ldf = add_lindistflow(
            blk,
            a,
            sst,
            sdims,
            p_inj,
            q_inj,
            prhs,
            qrhs,
            polygon_sides=o.polygon_sides,
            voltage_margin_pu=o.voltage_margin_pu,
            flow_bound_mva=bound,
        )
        # interface: the feeder draws the flow of its root branches from transmission
        roots = root_branches(a)
        brow = rb[:, :, [feeder.bus] * len(roots)]
        t_inj.append(terms(ldf.p_mw, brow, st_rows(nbr)[:, :, roots], -1.0))
        ldfs.append(ldf)
        f_load.append(load)
        f_prhs.append(prhs)
        f_qrhs.append(qrhs)
    dc = add_dc_network(m.transmission, tarr, sst, sdims, t_inj, params_t_rhs)

    # ---------------- risk and objective ----------------
    m.risk = pyo.Block()
    risk = add_cvar(m.risk, S, second_cost, data.weight, o.alpha, o.beta, n_steps=T)
    first = linear_sum(first_cost)
    m.first_stage_cost_eur = pyo.Expression(expr=first)
    pairs = risk.objective_terms()
    m.objective = pyo.Objective(expr=m.first_stage_cost_eur + sum(c * x for c, x in pairs))
    params = _Params(
        params_t_load, params_t_rhs, f_load, f_prhs, f_qrhs, pv_avail, bat_rhs, bat_end, ev_energy
    )
    return TwoStageModel(
        m,
        o,
        system,
        (S, T),
        time.perf_counter() - tick,
        v,
        dc,
        ldfs,
        risk,
        m.first_stage_cost_eur,
        params,
    )


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
