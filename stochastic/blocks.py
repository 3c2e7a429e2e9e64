"""Building blocks of the two-stage model: TER, DER, networks, shedding, interfaces.

Each ``define_*`` function adds one Pyomo block to a model and returns a :class:`Part`:
its variable arrays (by their Pyomo component names), which of them are first-stage
(here-and-now, no scenario index), its mutable parameters, its named row families and its
cost terms, each tagged with the actor who pays it and its stage. Blocks that inject
power into a network return the injection terms; the network blocks take them. The
coordination models (``workbench.coordination``) compose blocks into problems:
:func:`stochastic.twostage.build_two_stage` is the TSO-managed (centralised) composition.

Units: power in MW / Mvar, energy in MWh, costs in EUR; prices in EUR/MWh or EUR/MW per
hour. Second-stage cost terms address the flat (scenario, time) rows of the grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyomo.environ as pyo

from cases.der import DerFleet
from cases.feeders import FeederArrays
from cases.transmission import TransmissionArrays
from stochastic.grid import SECOND_STAGE_DIMS, StageGrid
from stochastic.linear import (
    ParamArray,
    RowArray,
    Terms,
    VarArray,
    add_abs_rows,
    add_param,
    add_rows,
    add_var,
    terms,
)
from stochastic.network import (
    DcNetwork,
    LinDistFlow,
    add_dc_network,
    add_lindistflow,
    root_branches,
    w_limits,
)

__all__ = [
    "FIRST",
    "SECOND",
    "CostTerm",
    "DerInjections",
    "Part",
    "define_der",
    "define_feeder",
    "define_interface",
    "define_ter",
    "define_transmission",
]

FIRST, SECOND = "first", "second"
SD = SECOND_STAGE_DIMS


@dataclass(frozen=True, eq=False)
class CostTerm:
    """Linear cost terms [EUR] of one kind, paid by one actor in one stage.

    Attributes
    ----------
    owner : str
        ``tso``, ``dso/<feeder>`` or ``der/<feeder>``.
    stage : str
        ``first`` (rows ignored) or ``second`` (rows: flat (scenario, time)).
    kind : str
        What is paid: ``energy``, ``reserve``, ``balancing``, ``shedding``,
        ``curtailment``, ``flexibility``, ``activation``, ``degradation``.
    terms : Terms
    """

    owner: str
    stage: str
    kind: str
    terms: Terms


@dataclass(frozen=True, eq=False)
class Part:
    """What one block added to a model.

    Attributes
    ----------
    name : str
        Name of the Pyomo block.
    block : pyomo Block
    vars : dict of str to VarArray
        Keyed by the Pyomo component name inside the block.
    first_stage : tuple of str
        Names of the first-stage (nonanticipative) variables.
    params : dict of str to ParamArray
        Mutable data of the block.
    rows : dict of str to RowArray
        Named row families (for duals and cuts).
    costs : list of CostTerm
    """

    name: str
    block: pyo.Block
    vars: dict[str, VarArray] = field(default_factory=dict)
    first_stage: tuple[str, ...] = ()
    params: dict[str, ParamArray] = field(default_factory=dict)
    rows: dict[str, RowArray] = field(default_factory=dict)
    costs: list[CostTerm] = field(default_factory=list)

    def cost(self, owner: str, stage: str, kind: str, t: Terms) -> None:
        self.costs.append(CostTerm(owner, stage, kind, t))


def _new_block(model: pyo.ConcreteModel, name: str) -> pyo.Block:
    blk = pyo.Block()
    model.add_component(name, blk)
    return blk


# ----------------------------------------------------------------------------- TER


@dataclass(frozen=True)
class TerPrices:
    """Prices and options of transmission energy resources.

    Attributes
    ----------
    reserve_eur_per_mw_h : float
        Reserve capacity, per MW and hour, each direction (first stage).
    deviation_eur_per_mwh : float
        Symmetric cost of balancing energy, on top of the fuel it changes.
    spill_eur_per_mwh : float
        Downward redispatch beyond the reserve (emergency), on top of the fuel it saves.
    emergency_up_eur_per_mwh : float
        Upward redispatch beyond the reserve (emergency, within the unit's headroom), on
        top of the fuel it burns.
    cost_segments : int
        Tangent cuts of a quadratic fuel cost: ``cost_segments + 1`` points.
    follow : {"step", "ramp"}
        The trajectory a unit follows: linear between knots at the period boundaries
        (``ramp``) or constant within each period (``step``)
        (:meth:`StageGrid.reference_weights`).
    commitment : {"none", "relaxed", "binary"}
        On/off of each unit per period: none, its LP relaxation, or binary.
    """

    reserve_eur_per_mw_h: float
    deviation_eur_per_mwh: float
    spill_eur_per_mwh: float
    emergency_up_eur_per_mwh: float
    cost_segments: int
    follow: str = "ramp"
    commitment: str = "none"


def define_ter(
    model: pyo.ConcreteModel,
    grid: StageGrid,
    tarr: TransmissionArrays,
    prices: TerPrices,
    name: str = "ter",
) -> tuple[Part, list[Terms]]:
    """Transmission energy resources: day-ahead schedules and reserve; realised output.

    First stage: the followed trajectory, linear inside each period, whose knots
    ``knot_mw`` (boundary, gen) (values at the period boundaries, under ``ramp``) or
    values ``schedule_mw`` (period, gen) (under ``step``) are in [pmin, pmax] within the
    ramp limits; the published schedule ``schedule_mw`` is the energy of the trajectory
    in each period (its mean [MW]); ``reserve_up_mw`` / ``reserve_down_mw`` (period, gen)
    within the head- and footroom of the trajectory over the whole period, paid per MW
    and hour. Second stage (scenario, time, gen): the realised output
    ``p_mw`` = reference + ``balancing_up_mw`` - ``balancing_down_mw`` - ``spill_mw`` +
    ``emergency_up_mw``, balancing within the reserve of the step's period, ``spill_mw``
    and ``emergency_up_mw`` (beyond the reserve, down and up, within [0, pmax]) at
    emergency prices, so any schedule admits a recourse. The fuel of the realised
    output is paid per step (``fuel_eur_per_h`` above the tangent cuts of the cost curve;
    exact for linear costs), balancing at a symmetric deviation cost and spill at the
    spill price. Reference plus balancing respects the ramp limits step to step.

    With ``prices.commitment`` other than ``none``, each unit is on or off in each period
    (first stage ``commitment``, ``startup``, ``shutdown`` (period, gen); binary or in
    [0, 1]): while on, the trajectory stays within [minimum stable output, pmax]; off, at
    0 MW and without reserve or emergency output. A start-up in period p synchronises at
    its opening boundary (knot 0 MW under ``ramp``) and loads along the ramp to at least
    the minimum stable output at the closing boundary, within its ramp limit; a shut-down
    mirrors it (the knot closing the unit's last period on is 0 MW); under ``step`` the
    schedule jumps, within the ramp limit. No down reserve is held in a start-up or
    shut-down period. A unit whose ramp limit over one period is below its minimum stable
    output cannot start or stop inside the horizon (at 60-min periods every technology of
    ``cases/data/ter_technical_limits.csv`` can). The
    state before the horizon is that of the first period (no start-up is charged there);
    minimum up and down times hold inside the horizon (turn-on/turn-off inequalities);
    each start-up costs ``gen_startup_eur_per_mw`` x pmax (first stage, ``startup``).

    Returns
    -------
    Part
    injections : list of Terms
        Power injected at transmission buses, rows of the (scenario, time, bus) balance.
    """
    part = Part(name, _new_block(model, name))
    committed: tuple[str, ...] = ()
    if prices.commitment != "none":
        _ter_commitment(part, grid, tarr, prices)
        committed = ("commitment", "startup", "shutdown")
    _ter_schedule(part, grid, tarr, prices)
    _ter_schedule_ramp(part, grid, tarr, prices.follow)
    trajectory = ("knot_mw",) if prices.follow == "ramp" else ()
    part = _replace_first(
        part,
        (*committed, *trajectory, "schedule_mw", "reserve_up_mw", "reserve_down_mw"),
    )
    _ter_output(part, grid, tarr, prices)
    _ter_output_ramp(part, grid, tarr)
    _ter_fuel(part, grid, tarr, prices)
    _ter_costs(part, grid, tarr, prices)
    bus_rows = grid.rows(tarr.n_bus)[:, :, tarr.gen_bus]  # (S, T, G)
    return part, [terms(part.vars["p_mw"], bus_rows, grid.rows(tarr.n_gen))]


def _weighted_terms(var: VarArray, rows: np.ndarray, weights: np.ndarray, coef=1.0) -> Terms:
    """Terms of ``weights @ var`` in ``rows``.

    Parameters
    ----------
    var : VarArray (n_traj, n)
    rows : ndarray (*lead, n) of int
    weights : ndarray (*lead, n_traj)
    coef : float or ndarray broadcasting to (n,)
    """
    n = var.shape[1]
    pos = np.nonzero(weights)
    row = rows[pos[:-1]]  # (nnz, n)
    col = var.index()[pos[-1]]  # (nnz, n)
    coefs = weights[pos][:, None] * np.broadcast_to(np.asarray(coef, float), (n,))[None]
    return terms(var, row, col, coefs)


def _ter_schedule(part: Part, grid: StageGrid, tarr: TransmissionArrays, prices: TerPrices) -> None:
    """First-stage trajectory, published schedule and reserve [MW]; reserve cost.

    The unit follows a trajectory linear inside each period: under ``ramp`` its knots
    ``knot_mw`` (boundary, gen) are the decisions and the published ``schedule_mw`` is
    the energy of each period (``(K_p + K_{p+1}) / 2``); under ``step`` the trajectory is
    ``schedule_mw`` itself. Reserve fits in the head- and footroom of the trajectory at
    both edges of its period, so at every step of it.
    """
    blk, v = part.block, part.vars
    follow = prices.follow
    P, G = grid.n_periods, tarr.n_gen
    pmin, pmax = tarr.gen_pmin_mw, tarr.gen_pmax_mw
    on = v.get("commitment")
    if on is not None:  # the trajectory goes to 0 when off; its minimum is the stable one
        pmin = tarr.gen_min_stable_mw
    lo = np.minimum(pmin, 0.0) if on is not None else pmin
    span = np.maximum(pmax - lo, 0.0)
    pd_ = ("period", "gen")
    sched = v["schedule_mw"] = add_var(blk, "schedule_mw", (P, G), pd_, lo, pmax)
    pg = grid.period_rows(G)
    if follow == "ramp":
        knot = v["knot_mw"] = add_var(blk, "knot_mw", (P + 1, G), ("boundary", "gen"), lo, pmax)
        part.rows["schedule_energy"] = add_rows(
            blk,
            "schedule_energy",
            (P, G),
            pd_,
            [terms(sched, pg, pg), _weighted_terms(knot, pg, grid.energy_weights(follow), -1.0)],
            0.0,
            0.0,
        )
    up = v["reserve_up_mw"] = add_var(blk, "reserve_up_mw", (P, G), pd_, 0.0, span)
    dn = v["reserve_down_mw"] = add_var(blk, "reserve_down_mw", (P, G), pd_, 0.0, span)
    traj = _trajectory(part, follow)
    edges = grid.edge_weights(follow)
    if np.array_equal(edges[:, 0], edges[:, 1]):
        edges = edges[:, :1]
    E = edges.shape[1]
    er = np.arange(P * E * G).reshape(P, E, G)
    per = np.broadcast_to(pg[:, None, :], (P, E, G))
    ped = ("period", "edge", "gen")
    head = [_weighted_terms(traj, er, edges), terms(up, er, per)]
    foot = [_weighted_terms(traj, er, edges), terms(dn, er, per, -1.0)]
    head_ub, foot_lb = np.broadcast_to(pmax, (P, E, G)), np.broadcast_to(pmin, (P, E, G))
    if on is not None:  # within [pmin u, pmax u]; 0 at a start-up's or shut-down's boundary
        head.append(terms(on, er, per, -pmax))
        foot.append(terms(on, er, per, -pmin))
        head_ub, foot_lb = 0.0, 0.0
        if follow == "ramp":
            foot.append(terms(v["startup"], er[:, 0], pg, pmin))
            foot.append(terms(v["shutdown"], er[:-1, 1], pg[1:], pmin))
    part.rows["headroom"] = add_rows(blk, "headroom", (P, E, G), ped, head, None, head_ub)
    part.rows["footroom"] = add_rows(blk, "footroom", (P, E, G), ped, foot, foot_lb, None)
    price = prices.reserve_eur_per_mw_h * grid.period_h
    for var in (up, dn):
        part.cost("tso", FIRST, "reserve", terms(var, 0, pg, price))


def _ter_commitment(
    part: Part, grid: StageGrid, tarr: TransmissionArrays, prices: TerPrices
) -> None:
    """On/off, start-up and shut-down per period [-]; minimum up/down times; start-up cost.

    ``commitment`` u, ``startup`` v and ``shutdown`` w (period, gen) in [0, 1] (binary
    under ``binary``): ``u_p - u_{p-1} = v_p - w_p`` from the second period on (the state
    before the horizon is that of the first period: v_0 = w_0 = 0); minimum up time
    ``sum_{q=p-U+1..p} v_q <= u_p`` and down time ``sum_{q=p-D+1..p} w_q <= 1 - u_p``
    with U, D the times in periods (rounded up, at least one: ``v_p <= u_p``,
    ``w_p <= 1 - u_p``). Start-up cost: ``gen_startup_eur_per_mw``
    x pmax per start [EUR].
    """
    blk, v = part.block, part.vars
    P, G = grid.n_periods, tarr.n_gen
    pd_ = ("period", "gen")
    first_off = np.ones((P, G))
    first_off[0] = 0.0  # no transition into the first period
    u = v["commitment"] = add_var(blk, "commitment", (P, G), pd_, 0.0, 1.0)
    start = v["startup"] = add_var(blk, "startup", (P, G), pd_, 0.0, first_off)
    stop = v["shutdown"] = add_var(blk, "shutdown", (P, G), pd_, 0.0, first_off)
    if prices.commitment == "binary":
        for var in (u, start, stop):
            for item in var.data:
                item.domain = pyo.Binary
    pg = grid.period_rows(G)
    if P > 1:
        rr = np.arange((P - 1) * G).reshape(P - 1, G)
        part.rows["commitment_logic"] = add_rows(
            blk,
            "commitment_logic",
            (P - 1, G),
            ("period_change", "gen"),
            [
                terms(u, rr, pg[1:]),
                terms(u, rr, pg[:-1], -1.0),
                terms(start, rr, pg[1:], -1.0),
                terms(stop, rr, pg[1:]),
            ],
            0.0,
            0.0,
        )
    for label, hours, var, sign in (
        ("min_up", tarr.gen_min_up_h, start, -1.0),
        ("min_down", tarr.gen_min_down_h, stop, 1.0),
    ):
        # at least one period: a start-up needs the unit on, a shut-down off
        n = np.maximum(np.ceil(np.asarray(hours, float) / grid.period_h - 1e-9), 1).astype(int)
        units = np.arange(G)
        rr = np.arange(P * len(units)).reshape(P, len(units))
        row_terms = [terms(u, rr, pg[:, units], sign)]
        for j, g in enumerate(units):
            for lag in range(min(n[g], P)):
                p = np.arange(lag, P)
                row_terms.append(terms(var, rr[p, j], pg[p - lag, g]))
        # up: sum v - u <= 0; down: sum w + u <= 1
        part.rows[label] = add_rows(
            blk,
            label,
            (P, len(units)),
            ("period", "gen"),
            row_terms,
            None,
            0.0 if sign < 0 else 1.0,
        )
    cost = tarr.gen_startup_eur_per_mw * tarr.gen_pmax_mw
    part.cost("tso", FIRST, "startup", terms(start, 0, pg, np.broadcast_to(cost, (P, G))))


def _trajectory(part: Part, follow: str) -> VarArray:
    """The variable whose values define the followed trajectory (see ``reference_weights``)."""
    return part.vars["knot_mw"] if follow == "ramp" else part.vars["schedule_mw"]


def _ter_schedule_ramp(part: Part, grid: StageGrid, tarr: TransmissionArrays, follow: str) -> None:
    """Trajectory change between its consecutive values within the ramp limits [MW].

    Under ``ramp``: knot to knot, one period apart; under ``step``: period to period.
    """
    G = tarr.n_gen
    ramp = tarr.gen_ramp_mw_per_h
    limited = np.flatnonzero(np.isfinite(ramp))
    traj = _trajectory(part, follow)
    n = traj.shape[0]
    if n <= 1 or not len(limited):
        return
    idx = np.arange(n * G).reshape(n, G)
    nl, ph = len(limited), grid.period_h
    rr = np.arange((n - 1) * nl).reshape(n - 1, nl)
    part.rows["schedule_ramp"] = add_rows(
        part.block,
        "schedule_ramp",
        (n - 1, nl),
        ("trajectory_change", "gen_ramp_limited"),
        [
            terms(traj, rr, idx[1:, limited]),
            terms(traj, rr, idx[:-1, limited], -1.0),
        ],
        np.broadcast_to(-ramp[limited] * ph, (n - 1, nl)),
        np.broadcast_to(ramp[limited] * ph, (n - 1, nl)),
    )


def _ter_output(part: Part, grid: StageGrid, tarr: TransmissionArrays, prices: TerPrices) -> None:
    """Realised output = reference + balancing - spill + emergency [MW], balancing in reserve."""
    blk, v = part.block, part.vars
    S, T = grid.shape
    G = tarr.n_gen
    shape, gd = (S, T, G), (*SD, "gen")
    lo, hi = np.minimum(tarr.gen_pmin_mw, 0.0), tarr.gen_pmax_mw
    p_out = v["p_mw"] = add_var(blk, "p_mw", shape, gd, lo, hi)
    bal_up = v["balancing_up_mw"] = add_var(blk, "balancing_up_mw", shape, gd, 0.0)
    bal_dn = v["balancing_down_mw"] = add_var(blk, "balancing_down_mw", shape, gd, 0.0)
    spill = v["spill_mw"] = add_var(blk, "spill_mw", shape, gd, 0.0)
    emergency = v["emergency_up_mw"] = add_var(blk, "emergency_up_mw", shape, gd, 0.0)
    r = grid.rows(G)
    weights = grid.reference_weights(prices.follow)
    reference = grid.reference_terms(_trajectory(part, prices.follow), r, weights, -1.0)
    part.rows["output"] = add_rows(
        blk,
        "output",
        shape,
        gd,
        [
            terms(p_out, r, r),
            reference,
            terms(bal_up, r, r, -1.0),
            terms(bal_dn, r, r),
            terms(spill, r, r),
            terms(emergency, r, r, -1.0),
        ],
        0.0,
        0.0,
    )
    for var, res, label in (
        (bal_up, v["reserve_up_mw"], "up"),
        (bal_dn, v["reserve_down_mw"], "down"),
    ):
        part.rows[f"balancing_{label}_limit"] = add_rows(
            blk,
            f"balancing_{label}_limit",
            shape,
            gd,
            [terms(var, r, r), grid.first_terms(res, r, -1.0)],
            None,
            0.0,
        )
    on = v.get("commitment")
    if on is not None:  # an off unit has no emergency output either
        part.rows["emergency_commitment"] = add_rows(
            blk,
            "emergency_commitment",
            shape,
            gd,
            [terms(emergency, r, r), grid.first_terms(on, r, -hi)],
            None,
            0.0,
        )


def _ter_output_ramp(part: Part, grid: StageGrid, tarr: TransmissionArrays) -> None:
    """Reference + balancing (not the emergency spill) moves at most ramp * dt per step [MW]."""
    S, T = grid.shape
    ramp = tarr.gen_ramp_mw_per_h
    limited = np.flatnonzero(np.isfinite(ramp))
    if T <= 1 or not len(limited):
        return
    v, dt = part.vars, grid.step_h
    p_out, spill, emergency = v["p_mw"], v["spill_mw"], v["emergency_up_mw"]
    r = grid.rows(tarr.n_gen)
    nl = len(limited)
    rr = np.arange(S * (T - 1) * nl).reshape(S, T - 1, nl)
    now, before = r[:, 1:, :][:, :, limited], r[:, :-1, :][:, :, limited]
    ramp_terms = [
        terms(p_out, rr, now),
        terms(p_out, rr, before, -1.0),
        terms(spill, rr, now),
        terms(spill, rr, before, -1.0),
        terms(emergency, rr, now, -1.0),
        terms(emergency, rr, before),
    ]
    part.rows["output_ramp"] = add_rows(
        part.block,
        "output_ramp",
        (S, T - 1, nl),
        (*SD, "gen_ramp_limited"),
        ramp_terms,
        np.broadcast_to(-ramp[limited] * dt, (S, T - 1, nl)),
        np.broadcast_to(ramp[limited] * dt, (S, T - 1, nl)),
    )


def _ter_fuel(part: Part, grid: StageGrid, tarr: TransmissionArrays, prices: TerPrices) -> None:
    """Fuel cost rate [EUR/h] above the tangent cuts of the cost curve."""
    blk = part.block
    S, T = grid.shape
    G = tarr.n_gen
    gd = (*SD, "gen")
    fuel = part.vars["fuel_eur_per_h"] = add_var(blk, "fuel_eur_per_h", (S, T, G), gd)
    slope, icpt = tangent_cuts(tarr, prices.cost_segments)
    K = slope.shape[1]
    crow = np.arange(S * T * G * K).reshape(S, T, G, K)
    r = grid.rows(G)
    part.rows["fuel_cut"] = add_rows(
        blk,
        "fuel_cut",
        (S, T, G, K),
        (*gd, "cut"),
        [
            terms(fuel, crow, r[..., None]),
            terms(part.vars["p_mw"], crow, r[..., None], -slope[None, None]),
        ],
        np.broadcast_to(icpt[None, None], (S, T, G, K)),
        None,
    )


def _ter_costs(part: Part, grid: StageGrid, tarr: TransmissionArrays, prices: TerPrices) -> None:
    """Second-stage costs [EUR]: fuel, balancing, spill and emergency energy."""
    v, dt = part.vars, grid.step_h
    r, cr = grid.rows(tarr.n_gen), grid.cost_rows(tarr.n_gen)
    part.cost("tso", SECOND, "fuel", terms(v["fuel_eur_per_h"], cr, r, dt))
    price = prices.deviation_eur_per_mwh * dt
    for var in (v["balancing_up_mw"], v["balancing_down_mw"]):
        part.cost("tso", SECOND, "balancing", terms(var, cr, r, price))
    price = prices.spill_eur_per_mwh * dt
    part.cost("tso", SECOND, "spill", terms(v["spill_mw"], cr, r, price))
    price = prices.emergency_up_eur_per_mwh * dt
    part.cost("tso", SECOND, "emergency", terms(v["emergency_up_mw"], cr, r, price))


def _replace_first(part: Part, names: tuple[str, ...]) -> Part:
    """``part`` with ``names`` declared first stage."""
    return Part(
        part.name,
        part.block,
        part.vars,
        (*part.first_stage, *names),
        part.params,
        part.rows,
        part.costs,
    )


def tangent_cuts(tarr: TransmissionArrays, segments: int) -> tuple[np.ndarray, np.ndarray]:
    """Tangent cuts ``cost >= slope p + intercept`` of every TER's quadratic cost.

    Cut points are ``segments + 1`` evenly spaced outputs in [pmin, pmax] (one cut for a
    linear cost, where it is exact).

    Returns
    -------
    slope : ndarray (gen, cut) [EUR/MWh]
    intercept : ndarray (gen, cut) [EUR/h]
    """
    pmin, pmax = tarr.gen_pmin_mw, tarr.gen_pmax_mw
    span = np.maximum(pmax - pmin, 0.0)
    c0, c1, c2 = (
        tarr.gen_cost_c0_eur_per_h,
        tarr.gen_cost_c1_eur_per_mwh,
        tarr.gen_cost_c2_eur_per_mw2h,
    )
    brk = pmin[:, None] + span[:, None] * np.linspace(0.0, 1.0, segments + 1)[None, :]
    brk = np.where(c2[:, None] > 0, brk, brk[:, :1])
    return c1[:, None] + 2.0 * c2[:, None] * brk, c0[:, None] - c2[:, None] * brk**2


# ----------------------------------------------------------------------------- networks


def define_transmission(
    model: pyo.ConcreteModel,
    grid: StageGrid,
    tarr: TransmissionArrays,
    load_mw: np.ndarray,
    rhs_mw: np.ndarray,
    injections: list[Terms],
    voll_eur_per_mwh: float,
    interface_bus: np.ndarray | None = None,
    name: str = "transmission",
) -> tuple[Part, DcNetwork]:
    """DC network with sheddable demand at every bus.

    Parameters
    ----------
    load_mw : ndarray (scenario, time, bus) [MW]
        Sheddable demand (mutable parameter ``load_mw``).
    rhs_mw : ndarray (scenario, time, bus) [MW]
        Right-hand side of the bus balance (mutable ``rhs_mw``): demand, feeder root
        loads and phase-shift terms.
    injections : list of Terms
        From the other blocks (TER), rows of the (scenario, time, bus) balance.
    interface_bus : ndarray of int, optional
        Transmission bus of each TSO-DSO interface: the variable ``interface_p_mw``
        (scenario, time, interface) [MW] is drawn from those buses (see
        :func:`define_interface`).
    """
    blk = _new_block(model, name)
    part = Part(name, blk)
    S, T = grid.shape
    NB = tarr.n_bus
    bus_dims = (*SD, "bus")
    load = part.params["load_mw"] = add_param(blk, "load_mw", load_mw, bus_dims)
    rhs = part.params["rhs_mw"] = add_param(blk, "rhs_mw", rhs_mw, bus_dims)
    shed = part.vars["shed_mw"] = add_var(blk, "shed_mw", (S, T, NB), bus_dims, 0.0, load)
    rb = grid.rows(NB)
    part.cost(
        "tso",
        SECOND,
        "shedding",
        terms(shed, grid.cost_rows(NB), rb, voll_eur_per_mwh * grid.step_h),
    )
    injections = [*injections, terms(shed, rb, rb)]
    if interface_bus is not None and len(interface_bus):
        n_if = len(interface_bus)
        port = part.vars["interface_p_mw"] = add_var(
            blk, "interface_p_mw", (S, T, n_if), (*SD, "interface")
        )
        injections.append(terms(port, rb[:, :, interface_bus], grid.rows(n_if), -1.0))
    dc = add_dc_network(blk, tarr, grid.shape, SD, injections, rhs)
    part.vars["theta"] = dc.theta
    part.rows["balance"] = dc.balance
    return part, dc


@dataclass(frozen=True, eq=False)
class DerInjections:
    """Injections of DER into the feeders' non-root bus balances, per feeder.

    Attributes
    ----------
    p, q : list of list of Terms
        ``p[i]``: active-power terms [MW] against the (scenario, time, bus - 1) rows of
        feeder ``i``; ``q[i]`` the reactive ones [Mvar].
    """

    p: list
    q: list


def define_feeder(
    model: pyo.ConcreteModel,
    grid: StageGrid,
    arrays: FeederArrays,
    index: int,
    load_mw: np.ndarray,
    p_rhs_mw: np.ndarray,
    q_rhs_mvar: np.ndarray,
    root_p_mw: np.ndarray,
    root_q_mvar: np.ndarray,
    p_injections: list[Terms],
    q_injections: list[Terms],
    *,
    voll_eur_per_mwh: float,
    polygon_sides: int,
    voltage_margin_pu: float,
    flow_bound_mva: float,
    mutable_voltage_limits: bool = False,
    limits: bool = True,
    root_range_pu: float = 0.0,
) -> tuple[Part, LinDistFlow]:
    """One radial feeder: LinDistFlow with sheddable demand at every non-root bus.

    Parameters
    ----------
    index : int
        Position of the feeder in the system (block ``feeder_<index>``).
    load_mw, p_rhs_mw, q_rhs_mvar : ndarray (scenario, time, bus - 1)
        Sheddable demand [MW], net active and reactive demand at non-root buses.
    root_p_mw, root_q_mvar : ndarray (scenario, time)
        Net demand at the root bus [MW], [Mvar]. The feeder's interface power
        ``interface_p_mw`` / ``interface_q_mvar`` (scenario, time) is the flow of its root
        branches plus this demand.
    mutable_voltage_limits : bool
        Bounds of the squared voltages as mutable parameters ``w_min`` / ``w_max``
        (scenario, time, bus), for corrections against an AC power flow.
    p_injections, q_injections : list of Terms
        DER injections into this feeder.
    limits : bool
        ``False``: no voltage or branch limits (the flows and voltages are only
        computed): the feeder as the TSO sees it in a transmission-only model, whose
        interface power is the feeder's net demand.
    root_range_pu : float [pu]
        On-load tap changer at the feeder's coupling transformer: the root voltage is a
        recourse decision within this range of its set-point (continuous relaxation of
        the taps); 0 holds it at the set-point.
    """
    name = f"feeder_{index}"
    part = Part(name, _new_block(model, name))
    _feeder_shedding(part, grid, arrays, load_mw, p_rhs_mw, q_rhs_mvar, voll_eur_per_mwh)
    w_bounds = _feeder_w_bounds(
        part, grid, arrays, voltage_margin_pu, mutable_voltage_limits, limits, root_range_pu
    )
    if not limits:
        flow_bound_mva = 0.0  # no branch can bind: no polygon rows, free flows
    ldf = _feeder_network(
        part,
        grid,
        arrays,
        p_injections,
        q_injections,
        w_bounds,
        polygon_sides=polygon_sides,
        voltage_margin_pu=voltage_margin_pu,
        flow_bound_mva=flow_bound_mva,
    )
    _feeder_interface(part, grid, arrays, ldf, root_p_mw, root_q_mvar)
    return part, ldf


def _feeder_shedding(
    part: Part,
    grid: StageGrid,
    arrays: FeederArrays,
    load_mw: np.ndarray,
    p_rhs_mw: np.ndarray,
    q_rhs_mvar: np.ndarray,
    voll_eur_per_mwh: float,
) -> None:
    """Demand data and sheddable demand ``shed_mw`` [MW] at non-root buses, paid at VoLL.

    Parameters
    ----------
    load_mw, p_rhs_mw, q_rhs_mvar : ndarray (scenario, time, bus - 1) [MW, Mvar]
    voll_eur_per_mwh : float [EUR/MWh]
    """
    blk = part.block
    S, T = grid.shape
    nbr = arrays.n_branch
    dims = (*SD, "bus_nonroot")
    load = part.params["load_mw"] = add_param(blk, "load_mw", load_mw, dims)
    part.params["p_rhs_mw"] = add_param(blk, "p_rhs_mw", p_rhs_mw, dims)
    part.params["q_rhs_mvar"] = add_param(blk, "q_rhs_mvar", q_rhs_mvar, dims)
    shed = part.vars["shed_mw"] = add_var(blk, "shed_mw", (S, T, nbr), dims, 0.0, load)
    part.cost(
        f"dso/{arrays.name}",
        SECOND,
        "shedding",
        terms(shed, grid.cost_rows(nbr), grid.rows(nbr), voll_eur_per_mwh * grid.step_h),
    )


def _feeder_w_bounds(
    part: Part,
    grid: StageGrid,
    arrays: FeederArrays,
    voltage_margin_pu: float,
    mutable_voltage_limits: bool,
    limits: bool,
    root_range_pu: float,
) -> tuple | None:
    """Bounds of the squared voltages [pu^2] (scenario, time, bus), or None for the defaults.

    Without ``limits`` only the root voltage is held; with ``mutable_voltage_limits`` the
    bounds are the parameters ``w_min`` / ``w_max``.
    """
    S, T = grid.shape
    shape = (S, T, arrays.n_bus)
    if not limits:
        lo, hi = np.full(shape, -np.inf), np.full(shape, np.inf)
        lo[..., 0] = hi[..., 0] = w_limits(arrays)[0][0]
        return (lo, hi)
    if mutable_voltage_limits:
        lo, hi = w_limits(arrays, voltage_margin_pu, root_range_pu=root_range_pu)
        return tuple(
            part.params.setdefault(
                key, add_param(part.block, key, np.broadcast_to(v, shape), (*SD, "bus"))
            )
            for key, v in (("w_min", lo), ("w_max", hi))
        )
    if root_range_pu > 0:
        lo, hi = w_limits(arrays, voltage_margin_pu, root_range_pu=root_range_pu)
        return (np.broadcast_to(lo, shape), np.broadcast_to(hi, shape))
    return None


def _feeder_network(
    part: Part,
    grid: StageGrid,
    arrays: FeederArrays,
    p_injections: list[Terms],
    q_injections: list[Terms],
    w_bounds: tuple | None,
    *,
    polygon_sides: int,
    voltage_margin_pu: float,
    flow_bound_mva: float,
) -> LinDistFlow:
    """LinDistFlow of the feeder with shedding (at the load power factor) and DER injections."""
    nbr = arrays.n_branch
    shed = part.vars["shed_mw"]
    rows = grid.rows(nbr)
    tan_phi = np.divide(
        arrays.load_q_mvar[1:],
        arrays.load_p_mw[1:],
        out=np.zeros(nbr),
        where=arrays.load_p_mw[1:] > 0,
    )
    ldf = add_lindistflow(
        part.block,
        arrays,
        grid.shape,
        SD,
        [terms(shed, rows, rows), *p_injections],
        [terms(shed, rows, rows, tan_phi), *q_injections],
        part.params["p_rhs_mw"],
        part.params["q_rhs_mvar"],
        polygon_sides=polygon_sides,
        voltage_margin_pu=voltage_margin_pu,
        flow_bound_mva=flow_bound_mva,
        w_bounds=w_bounds,
    )
    part.vars.update({"p_mw": ldf.p_mw, "q_mvar": ldf.q_mvar, "w": ldf.w})
    part.rows.update({"p_balance": ldf.p_balance, "q_balance": ldf.q_balance})
    return ldf


def _feeder_interface(
    part: Part,
    grid: StageGrid,
    arrays: FeederArrays,
    ldf: LinDistFlow,
    root_p_mw: np.ndarray,
    root_q_mvar: np.ndarray,
) -> None:
    """Interface power [MW, Mvar]: flow of the root branches plus the root demand."""
    blk = part.block
    S, T = grid.shape
    rows = grid.rows(arrays.n_branch)
    roots = root_branches(arrays)
    st = np.arange(S * T).reshape(S, T, 1)
    for key, flow, root, unit in (
        ("p", ldf.p_mw, root_p_mw, "mw"),
        ("q", ldf.q_mvar, root_q_mvar, "mvar"),
    ):
        port = part.vars[f"interface_{key}_{unit}"] = add_var(
            blk, f"interface_{key}_{unit}", (S, T), SD
        )
        rhs = part.params[f"root_{key}_{unit}"] = add_param(blk, f"root_{key}_{unit}", root, SD)
        part.rows[f"interface_{key}"] = add_rows(
            blk,
            f"interface_{key}",
            (S, T),
            SD,
            [
                terms(port, st[..., 0], st[..., 0]),
                terms(flow, np.broadcast_to(st, (S, T, len(roots))), rows[:, :, roots], -1.0),
            ],
            rhs,
            rhs,
        )


PORT_MODES = ("coupled", "fixed")


def define_interface(
    model: pyo.ConcreteModel,
    grid: StageGrid,
    mode: str,
    *,
    tso_p_mw: VarArray | None = None,
    dso_p_mw: list[VarArray] | None = None,
    p_setpoint_mw: np.ndarray | None = None,
    name: str = "interface",
) -> Part:
    """The TSO-DSO interfaces: the port joining the transmission and feeder blocks.

    Parameters
    ----------
    mode : {"coupled", "fixed"}
        ``coupled``: one equality row per interface, scenario and step,
        ``tso_p_mw - dso_p_mw = 0`` (``p_coupling``; what a distributed algorithm relaxes).
        ``fixed``: the given side equals the mutable set-point ``p_setpoint_mw``
        (``p_fixed``); a feeder-only or transmission-only model.
    tso_p_mw : VarArray (scenario, time, interface), optional
        The transmission side (``transmission.interface_p_mw``).
    dso_p_mw : list of VarArray (scenario, time), optional
        The feeder side, one per interface (``feeder_<i>.interface_p_mw``).
    p_setpoint_mw : ndarray (scenario, time, interface), optional
        Set-point of a ``fixed`` port [MW].
    """
    if mode not in PORT_MODES:
        raise ValueError(f"interface mode must be one of {PORT_MODES}, got {mode!r}")
    blk = _new_block(model, name)
    part = Part(name, blk)
    S, T = grid.shape
    dso = dso_p_mw or []
    n_if = tso_p_mw.shape[-1] if tso_p_mw is not None else len(dso)
    if not n_if:
        return part
    ri = grid.rows(n_if)
    dso_terms = [
        terms(p, ri[:, :, i], np.arange(S * T).reshape(S, T), -1.0) for i, p in enumerate(dso)
    ]
    dims = (*SD, "interface")
    if mode == "coupled":
        if tso_p_mw is None or len(dso) != n_if:
            raise ValueError("a coupled interface needs the transmission and every feeder side")
        part.rows["p_coupling"] = add_rows(
            blk, "p_coupling", (S, T, n_if), dims, [terms(tso_p_mw, ri, ri), *dso_terms], 0.0, 0.0
        )
        return part
    if p_setpoint_mw is None:
        raise ValueError("a fixed interface needs p_setpoint_mw")
    setpoint = part.params["p_setpoint_mw"] = add_param(blk, "p_setpoint_mw", p_setpoint_mw, dims)
    side = [terms(tso_p_mw, ri, ri)] if tso_p_mw is not None else [_neg(t) for t in dso_terms]
    part.rows["p_fixed"] = add_rows(blk, "p_fixed", (S, T, n_if), dims, side, setpoint, setpoint)
    return part


def _neg(t: Terms) -> Terms:
    return Terms(t.var, t.row, t.col, -t.coef)


# ----------------------------------------------------------------------------- DER


@dataclass(frozen=True)
class DerPrices:
    """Prices of DER services.

    Attributes
    ----------
    flexibility_eur_per_mw_h : float
        Accepted flexibility capacity, per MW and hour, each direction.
    activation_eur_per_mwh : float
        Activated flexibility energy.
    pv_curtailment_eur_per_mwh : float
        Curtailment inside the accepted PV flexibility.
    battery_degradation_eur_per_mwh : float
        Per MWh charged and per MWh discharged.
    spill_eur_per_mwh : float
        Any generation spilled outside a bid (PV beyond its flexibility, wind, other
        fixed units): the emergency price that keeps every scenario feasible.
    ev_unserved_eur_per_mwh : float
        EV energy not delivered by departure.
    reactive_eur_per_mvarh : float
        Reactive power of the PV inverters, per Mvarh absorbed or injected: a utilisation
        payment, so that reactive power is used where a voltage needs it and not wherever
        the LP happens to leave it (unpriced, it is free in every scenario and step).
    """

    flexibility_eur_per_mw_h: float
    activation_eur_per_mwh: float
    pv_curtailment_eur_per_mwh: float
    battery_degradation_eur_per_mwh: float
    spill_eur_per_mwh: float
    ev_unserved_eur_per_mwh: float
    reactive_eur_per_mvarh: float = 0.0


def define_der(
    model: pyo.ConcreteModel,
    grid: StageGrid,
    fleet: DerFleet,
    feeders: list[FeederArrays],
    pv_available_mw: np.ndarray,
    fixed_available_mw: np.ndarray,
    battery_energy_init_mwh: np.ndarray,
    battery_energy_end_min_mwh: np.ndarray,
    ev_p_max_mw: np.ndarray,
    ev_e_min_mwh: np.ndarray,
    ev_e_max_mwh: np.ndarray,
    prices: DerPrices,
    name: str = "der",
) -> tuple[Part, DerInjections]:
    """DER bids (first stage) and dispatch inside the accepted bids (second stage).

    First stage (period, unit): PV curtailment flexibility ``pv_flex_down_mw``; battery and
    EV schedules with up/down flexibility (``<kind>_schedule_mw``, ``<kind>_flex_up_mw``,
    ``<kind>_flex_down_mw``). Second stage (scenario, time, unit): PV curtailment within
    the bid and reactive power within the inverter rating, battery charge/discharge and
    energy, EV charging, activated flexibility (``<kind>_activated_up_mw`` /
    ``_down_mw``) equal to the deviation from the schedule.

    Parameters
    ----------
    fleet : DerFleet
        The units (any subset of a system's fleet; ``feeder`` indexes ``feeders``).
    feeders : list of FeederArrays
    pv_available_mw : ndarray (scenario, time, pv) [MW]
    fixed_available_mw : ndarray (scenario, time, fixed) [MW]
        Output of the fixed-profile units (wind, other), which enters the feeders' net
        demand; ``fixed_spill_mw`` may spill it.
    battery_energy_init_mwh : ndarray (battery,) [MWh]
        Energy at the start.
    battery_energy_end_min_mwh : ndarray (battery,) [MWh]
        Least energy at the end.
    ev_p_max_mw : ndarray (scenario, time, ev) [MW]
        Power the plugged-in EVs of each charger pool can take.
    ev_e_min_mwh, ev_e_max_mwh : ndarray (scenario, time, ev) [MWh]
        Energy into the EVs since the horizon start, at the end of each step, when charging
        as late / as early as possible: the delivered energy stays within them (falling
        short of ``e_min`` is EV energy not served, priced at ``ev_unserved``).
    """
    part = Part(name, _new_block(model, name))
    first = _der_bids(part, grid, fleet, prices)
    _der_pv(part, grid, fleet, pv_available_mw, prices)
    _der_fixed_spill(part, grid, fleet, fixed_available_mw, prices)
    _der_battery_dispatch(part, grid, fleet, prices)
    _der_battery_energy(part, grid, fleet, battery_energy_init_mwh, battery_energy_end_min_mwh)
    _der_battery_costs(part, grid, fleet, prices)
    _der_ev_dispatch(part, grid, fleet, ev_p_max_mw, ev_e_min_mwh, ev_e_max_mwh, prices)
    _der_ev_energy(part, grid, fleet)
    _der_ev_costs(part, grid, fleet, prices)
    part = _replace_first(part, first)
    return part, _der_injections(part, grid, fleet, feeders)


def _der_bids(part: Part, grid: StageGrid, fleet: DerFleet, prices: DerPrices) -> tuple[str, ...]:
    """First-stage bids: PV curtailment flexibility, battery and EV schedules [MW].

    Returns
    -------
    tuple of str
        Names of the first-stage variables.
    """
    flex = prices.flexibility_eur_per_mw_h * grid.period_h
    pv_p = fleet.pv.p_mw.to_numpy(dtype=float)
    pv_flex = part.vars["pv_flex_down_mw"] = add_var(
        part.block, "pv_flex_down_mw", (grid.n_periods, len(fleet.pv)), ("period", "pv"), 0.0, pv_p
    )
    part.cost("der", FIRST, "flexibility", terms(pv_flex, 0, pv_flex.index(), flex))
    bp = fleet.battery.p_mw.to_numpy(dtype=float)
    ep = fleet.ev.p_mw.to_numpy(dtype=float)
    return (
        "pv_flex_down_mw",
        *_der_schedule_bid(part, grid, "battery", -bp, bp, 2.0 * bp, flex),
        *_der_schedule_bid(part, grid, "ev", -ep, np.zeros(len(fleet.ev)), ep, flex),
    )


def _der_schedule_bid(
    part: Part,
    grid: StageGrid,
    kind: str,
    lo: np.ndarray,
    hi: np.ndarray,
    flex_max: np.ndarray,
    flex: float,
) -> tuple[str, ...]:
    """Schedule in [lo, hi] and up/down flexibility within the same range [MW].

    Parameters
    ----------
    kind : str
        ``battery`` or ``ev``.
    lo, hi, flex_max : ndarray (unit,) [MW]
    flex : float
        Price of the flexibility [EUR/MW] per period.

    Returns
    -------
    tuple of str
        Names of the first-stage variables.
    """
    blk, v = part.block, part.vars
    n = len(lo)
    shape, dims = (grid.n_periods, n), ("period", kind)
    da = v[f"{kind}_schedule_mw"] = add_var(blk, f"{kind}_schedule_mw", shape, dims, lo, hi)
    up = v[f"{kind}_flex_up_mw"] = add_var(blk, f"{kind}_flex_up_mw", shape, dims, 0.0, flex_max)
    dn = v[f"{kind}_flex_down_mw"] = add_var(
        blk, f"{kind}_flex_down_mw", shape, dims, 0.0, flex_max
    )
    rows = grid.period_rows(n)
    part.rows[f"{kind}_bid_up"] = add_rows(
        blk, f"{kind}_bid_up", shape, dims, [terms(da, rows, rows), terms(up, rows, rows)], None, hi
    )
    part.rows[f"{kind}_bid_down"] = add_rows(
        blk,
        f"{kind}_bid_down",
        shape,
        dims,
        [terms(da, rows, rows), terms(dn, rows, rows, -1.0)],
        lo,
        None,
    )
    part.cost("der", FIRST, "flexibility", terms(up, 0, rows, flex))
    part.cost("der", FIRST, "flexibility", terms(dn, 0, rows, flex))
    return (f"{kind}_schedule_mw", f"{kind}_flex_up_mw", f"{kind}_flex_down_mw")


def _der_activation(
    part: Part, grid: StageGrid, kind: str, power: list[Terms], n: int, prices: DerPrices
) -> None:
    """Injection - schedule = activated up - activated down, each within the bid [MW].

    Parameters
    ----------
    kind : str
        ``battery`` or ``ev``.
    power : list of Terms
        The injection [MW] against the (scenario, time, unit) rows.
    n : int
        Number of units.
    """
    blk, v = part.block, part.vars
    S, T = grid.shape
    shape, dims = (S, T, n), (*SD, kind)
    aup = v[f"{kind}_activated_up_mw"] = add_var(blk, f"{kind}_activated_up_mw", shape, dims, 0.0)
    adn = v[f"{kind}_activated_down_mw"] = add_var(
        blk, f"{kind}_activated_down_mw", shape, dims, 0.0
    )
    rows = grid.rows(n)
    part.rows[f"{kind}_activation"] = add_rows(
        blk,
        f"{kind}_activation",
        shape,
        dims,
        [
            *power,
            terms(aup, rows, rows, -1.0),
            terms(adn, rows, rows),
            grid.first_terms(v[f"{kind}_schedule_mw"], rows, -1.0),
        ],
        0.0,
        0.0,
    )
    for var, bid, label in (
        (aup, v[f"{kind}_flex_up_mw"], "up"),
        (adn, v[f"{kind}_flex_down_mw"], "down"),
    ):
        part.rows[f"{kind}_activated_{label}_limit"] = add_rows(
            blk,
            f"{kind}_activated_{label}_limit",
            shape,
            dims,
            [terms(var, rows, rows), grid.first_terms(bid, rows, -1.0)],
            None,
            0.0,
        )
    price = prices.activation_eur_per_mwh * grid.step_h
    for var in (aup, adn):
        part.cost("der", SECOND, "activation", terms(var, grid.cost_rows(n), rows, price))


def _der_pv(
    part: Part, grid: StageGrid, fleet: DerFleet, pv_available_mw: np.ndarray, prices: DerPrices
) -> None:
    """PV curtailment within the bid, spill, and reactive power within the rating [MW, Mvar].

    Parameters
    ----------
    pv_available_mw : ndarray (scenario, time, pv) [MW]
    """
    blk, v = part.block, part.vars
    S, T = grid.shape
    npv, dt = len(fleet.pv), grid.step_h
    shape, dims = (S, T, npv), (*SD, "pv")
    pv_p = fleet.pv.p_mw.to_numpy(dtype=float)
    pv_s = fleet.pv.s_mva.to_numpy(dtype=float)
    pv_avail = None
    if npv:
        pv_avail = part.params["pv_available_mw"] = add_param(
            blk, "pv_available_mw", pv_available_mw, dims
        )
    curt = v["pv_curtailment_mw"] = add_var(blk, "pv_curtailment_mw", shape, dims, 0.0, pv_avail)
    qmax = np.sqrt(np.maximum(pv_s**2 - pv_p**2, 0.0))
    q = v["pv_q_mvar"] = add_var(blk, "pv_q_mvar", shape, dims, -qmax, qmax)
    rp = grid.rows(npv)
    if prices.reactive_eur_per_mvarh > 0.0:
        # |q| <= q_abs, priced: reactive power where a voltage needs it, none elsewhere
        q_abs = v["pv_q_abs_mvar"] = add_var(blk, "pv_q_abs_mvar", shape, dims, 0.0, qmax)
        above, below = add_abs_rows(blk, "pv_q_abs", q_abs, q, dims)
        part.rows["pv_q_abs_above"], part.rows["pv_q_abs_below"] = above, below
        price = prices.reactive_eur_per_mvarh * dt
        part.cost("der", SECOND, "reactive", terms(q_abs, grid.cost_rows(npv), rp, price))
    part.rows["pv_curtailment_within_bid"] = add_rows(
        blk,
        "pv_curtailment_within_bid",
        shape,
        dims,
        [terms(curt, rp, rp), grid.first_terms(v["pv_flex_down_mw"], rp, -1.0)],
        None,
        0.0,
    )
    price = prices.pv_curtailment_eur_per_mwh * dt
    part.cost("der", SECOND, "curtailment", terms(curt, grid.cost_rows(npv), rp, price))
    pv_spill = v["pv_spill_mw"] = add_var(blk, "pv_spill_mw", shape, dims, 0.0, pv_avail)
    part.rows["pv_within_available"] = add_rows(
        blk,
        "pv_within_available",
        shape,
        dims,
        [terms(curt, rp, rp), terms(pv_spill, rp, rp)],
        None,
        pv_avail if npv else 0.0,
    )
    price = prices.spill_eur_per_mwh * dt
    part.cost("der", SECOND, "spill", terms(pv_spill, grid.cost_rows(npv), rp, price))


def _der_fixed_spill(
    part: Part,
    grid: StageGrid,
    fleet: DerFleet,
    fixed_available_mw: np.ndarray,
    prices: DerPrices,
) -> None:
    """Spill of the fixed-profile units (wind, other) within their output [MW].

    Parameters
    ----------
    fixed_available_mw : ndarray (scenario, time, fixed) [MW]
    """
    blk = part.block
    S, T = grid.shape
    nfix = len(fleet.fixed)
    fix_avail = None
    if nfix:
        fix_avail = part.params["fixed_available_mw"] = add_param(
            blk, "fixed_available_mw", fixed_available_mw, (*SD, "fixed")
        )
    fix_spill = part.vars["fixed_spill_mw"] = add_var(
        blk, "fixed_spill_mw", (S, T, nfix), (*SD, "fixed"), 0.0, fix_avail
    )
    rf = grid.rows(nfix)
    price = prices.spill_eur_per_mwh * grid.step_h
    part.cost("der", SECOND, "spill", terms(fix_spill, grid.cost_rows(nfix), rf, price))


def _der_battery_dispatch(part: Part, grid: StageGrid, fleet: DerFleet, prices: DerPrices) -> None:
    """Battery charge, discharge [MW] and energy [MWh], activated within the bid."""
    blk, v = part.block, part.vars
    S, T = grid.shape
    nbat = len(fleet.battery)
    shape, bdims = (S, T, nbat), (*SD, "battery")
    bp = fleet.battery.p_mw.to_numpy(dtype=float)
    be = fleet.battery.e_mwh.to_numpy(dtype=float)
    pc = v["battery_charge_mw"] = add_var(blk, "battery_charge_mw", shape, bdims, 0.0, bp)
    pdis = v["battery_discharge_mw"] = add_var(blk, "battery_discharge_mw", shape, bdims, 0.0, bp)
    v["battery_energy_mwh"] = add_var(blk, "battery_energy_mwh", shape, bdims, 0.0, be)
    rbt = grid.rows(nbat)
    power = [terms(pdis, rbt, rbt), terms(pc, rbt, rbt, -1.0)]
    _der_activation(part, grid, "battery", power, nbat, prices)


def _der_battery_energy(
    part: Part,
    grid: StageGrid,
    fleet: DerFleet,
    energy_init_mwh: np.ndarray,
    energy_end_min_mwh: np.ndarray,
) -> None:
    """Battery energy balance and least end energy [MWh].

    Parameters
    ----------
    energy_init_mwh, energy_end_min_mwh : ndarray (battery,) [MWh]
    """
    blk, v = part.block, part.vars
    S = grid.shape[0]
    nbat, dt = len(fleet.battery), grid.step_h
    bdims = (*SD, "battery")
    beff = fleet.battery.efficiency.to_numpy(dtype=float)
    pc, pdis, energy = v["battery_charge_mw"], v["battery_discharge_mw"], v["battery_energy_mwh"]
    rbt = grid.rows(nbat)
    bat_rhs = bat_end = None
    if nbat:
        bat_rhs = part.params["battery_energy_rhs_mwh"] = add_param(
            blk, "battery_energy_rhs_mwh", battery_rhs(energy_init_mwh, grid), bdims
        )
        bat_end = part.params["battery_end_min_mwh"] = add_param(
            blk,
            "battery_end_min_mwh",
            np.broadcast_to(energy_end_min_mwh, (S, nbat)),
            ("scenario", "battery"),
        )
    part.rows["battery_energy_balance"] = _energy_balance(
        blk,
        "battery_energy_balance",
        bdims,
        energy,
        rbt,
        [terms(pc, rbt, rbt, -dt * beff), terms(pdis, rbt, rbt, dt / beff)],
        bat_rhs if nbat else 0.0,
    )
    part.rows["battery_end_energy"] = add_rows(
        blk,
        "battery_end_energy",
        (S, nbat),
        ("scenario", "battery"),
        [terms(energy, np.arange(S * nbat).reshape(S, nbat), rbt[:, -1, :])],
        bat_end if nbat else 0.0,
        None,
    )


def _der_battery_costs(part: Part, grid: StageGrid, fleet: DerFleet, prices: DerPrices) -> None:
    """Battery degradation cost, per MWh charged and per MWh discharged [EUR]."""
    nbat = len(fleet.battery)
    rbt = grid.rows(nbat)
    price = prices.battery_degradation_eur_per_mwh * grid.step_h
    for var in (part.vars["battery_charge_mw"], part.vars["battery_discharge_mw"]):
        part.cost("der", SECOND, "degradation", terms(var, grid.cost_rows(nbat), rbt, price))


def _der_ev_dispatch(
    part: Part,
    grid: StageGrid,
    fleet: DerFleet,
    ev_p_max_mw: np.ndarray,
    ev_e_min_mwh: np.ndarray,
    ev_e_max_mwh: np.ndarray,
    prices: DerPrices,
) -> None:
    """EV charging [MW] within the plugged-in power, activated within the bid.

    Parameters
    ----------
    ev_p_max_mw : ndarray (scenario, time, ev) [MW]
    ev_e_min_mwh, ev_e_max_mwh : ndarray (scenario, time, ev) [MWh]
    """
    blk, v = part.block, part.vars
    S, T = grid.shape
    nev = len(fleet.ev)
    shape, edims = (S, T, nev), (*SD, "ev")
    eeff = fleet.ev.efficiency.to_numpy(dtype=float)
    rev = grid.rows(nev)
    p_max = e_max = None
    if nev:
        p_max = part.params["ev_p_max_mw"] = add_param(blk, "ev_p_max_mw", ev_p_max_mw, edims)
        part.params["ev_e_min_mwh"] = add_param(blk, "ev_e_min_mwh", ev_e_min_mwh, edims)
        e_max = part.params["ev_e_max_mwh"] = add_param(blk, "ev_e_max_mwh", ev_e_max_mwh, edims)
    # grid-side power: the plugged-in EVs take p_max, the charger losses come on top
    charge = v["ev_charge_mw"] = add_var(blk, "ev_charge_mw", shape, edims, 0.0)
    if nev:
        part.rows["ev_power_limit"] = add_rows(
            blk,
            "ev_power_limit",
            shape,
            edims,
            [terms(charge, rev, rev, np.broadcast_to(eeff, shape))],
            None,
            p_max,
        )
    v["ev_energy_mwh"] = add_var(blk, "ev_energy_mwh", shape, edims, 0.0, e_max)
    v["ev_unserved_mwh"] = add_var(blk, "ev_unserved_mwh", shape, edims, 0.0)
    shortfall = v["ev_schedule_shortfall_mw"] = add_var(
        blk, "ev_schedule_shortfall_mw", shape, edims, 0.0
    )
    power = [terms(charge, rev, rev, -1.0), terms(shortfall, rev, rev, -1.0)]
    _der_activation(part, grid, "ev", power, nev, prices)


def _der_ev_energy(part: Part, grid: StageGrid, fleet: DerFleet) -> None:
    """EV energy balance, least delivered energy and accumulating shortfall [MWh]."""
    blk, v = part.block, part.vars
    S, T = grid.shape
    nev = len(fleet.ev)
    shape, edims = (S, T, nev), (*SD, "ev")
    eeff = fleet.ev.efficiency.to_numpy(dtype=float)
    rev = grid.rows(nev)
    charge, energy, unserved = v["ev_charge_mw"], v["ev_energy_mwh"], v["ev_unserved_mwh"]
    part.rows["ev_energy_balance"] = _energy_balance(
        blk,
        "ev_energy_balance",
        edims,
        energy,
        rev,
        [terms(charge, rev, rev, -grid.step_h * np.broadcast_to(eeff, shape))],
        0.0,
    )
    part.rows["ev_energy_min"] = add_rows(
        blk,
        "ev_energy_min",
        shape,
        edims,
        [terms(energy, rev, rev), terms(unserved, rev, rev)],
        part.params["ev_e_min_mwh"] if nev else 0.0,
        None,
    )
    # the shortfall accumulates: energy a departed EV did not get is not made up later
    acc = np.arange(S * (T - 1) * nev).reshape(S, T - 1, nev)
    part.rows["ev_unserved_accumulates"] = add_rows(
        blk,
        "ev_unserved_accumulates",
        (S, T - 1, nev),
        edims,
        [
            terms(unserved, acc, rev[:, 1:, :]),
            terms(unserved, acc, rev[:, :-1, :], -1.0),
        ],
        0.0,
        None,
    )


def _der_ev_costs(part: Part, grid: StageGrid, fleet: DerFleet, prices: DerPrices) -> None:
    """EV energy not served by the horizon end and schedule shortfall [EUR]."""
    S, T = grid.shape
    nev = len(fleet.ev)
    rev = grid.rows(nev)
    last_rows = np.broadcast_to(np.arange(S)[:, None] * T + (T - 1), (S, nev))
    unserved = terms(
        part.vars["ev_unserved_mwh"], last_rows, rev[:, -1, :], prices.ev_unserved_eur_per_mwh
    )
    part.cost("der", SECOND, "ev_unserved", unserved)
    price = prices.spill_eur_per_mwh * grid.step_h
    shortfall = terms(part.vars["ev_schedule_shortfall_mw"], grid.cost_rows(nev), rev, price)
    part.cost("der", SECOND, "spill", shortfall)


def _der_injections(
    part: Part, grid: StageGrid, fleet: DerFleet, feeders: list[FeederArrays]
) -> DerInjections:
    """Active [MW] and reactive [Mvar] DER injections into each feeder's bus balances."""
    v = part.vars
    inj = DerInjections([[] for _ in feeders], [[] for _ in feeders])
    for fi, arrays in enumerate(feeders):
        rows = grid.rows(arrays.n_branch)
        for units, kind in (
            (fleet.pv, "pv"),
            (fleet.battery, "battery"),
            (fleet.ev, "ev"),
            (fleet.fixed, "fixed"),
        ):
            sel = np.flatnonzero((units.feeder == fi).to_numpy())
            if not len(sel):
                continue
            bus = units.bus.to_numpy()[sel]
            if (bus == 0).any():
                raise ValueError(
                    f"feeder '{arrays.name}': {kind} unit on the root bus is not supported"
                )
            urow = rows[:, :, bus - 1]
            ucol = grid.rows(len(units))[:, :, sel]
            if kind == "pv":
                inj.p[fi].append(terms(v["pv_curtailment_mw"], urow, ucol, -1.0))
                inj.p[fi].append(terms(v["pv_spill_mw"], urow, ucol, -1.0))
                inj.q[fi].append(terms(v["pv_q_mvar"], urow, ucol, 1.0))
            elif kind == "fixed":
                inj.p[fi].append(terms(v["fixed_spill_mw"], urow, ucol, -1.0))
            elif kind == "battery":
                inj.p[fi].append(terms(v["battery_discharge_mw"], urow, ucol, 1.0))
                inj.p[fi].append(terms(v["battery_charge_mw"], urow, ucol, -1.0))
            else:
                inj.p[fi].append(terms(v["ev_charge_mw"], urow, ucol, -1.0))
    return inj


def _energy_balance(
    blk: pyo.Block,
    name: str,
    dims: tuple[str, ...],
    energy: VarArray,
    rows: np.ndarray,
    flows: list[Terms],
    rhs: ParamArray | float,
) -> RowArray:
    """``energy[t] - energy[t-1] - flows[t] = rhs`` over (scenario, time, unit) rows.

    ``rhs`` holds the initial energy at the first step (zero elsewhere); ``flows`` are the
    energy terms entering in each step (with their signs folded into the coefficients).
    """
    return add_rows(
        blk,
        name,
        rows.shape,
        dims,
        [
            terms(energy, rows, rows),
            terms(energy, rows[:, 1:, :], rows[:, :-1, :], -1.0),
            *flows,
        ],
        rhs,
        rhs,
    )


def battery_rhs(energy_init_mwh: np.ndarray, grid: StageGrid) -> np.ndarray:
    """Right-hand side of the battery energy balance: the initial energy at the first step."""
    rhs = np.zeros((*grid.shape, len(energy_init_mwh)))
    rhs[:, 0, :] = energy_init_mwh
    return rhs
