"""Deterministic single-period OPF of one pandapower network.

* ``dc``: DC OPF of a (transmission) network with pandapower's polynomial costs, a
  quadratic program solved by HiGHS; the same problem as pandapower's ``rundcopp``.
* ``lindistflow``: LinDistFlow OPF of a radial network whose root is its ``ext_grid``;
  controllable ``sgen``/``storage`` (pandapower's ``controllable`` flag and ``min_/max_``
  limits) are dispatched, the rest are fixed; the import at the root is priced with the
  ``ext_grid`` cost. The optimum is then checked with pandapower's AC power flow.
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandapower as pp
import pyomo.environ as pyo

from cases.errors import CaseError
from cases.feeders import FeederArrays, feeder_arrays
from cases.networks import with_generation_costs
from cases.substations import substation_nets
from cases.transmission import transmission_arrays
from stochastic.linear import add_var, terms
from stochastic.network import add_dc_network, add_lindistflow, dc_shift_injection_mw, root_branches
from stochastic.solve import PersistentSolver, SolveResult

__all__ = ["FeederLp", "OpfResult", "feeder_lp", "solve_dc_opf", "solve_lindistflow_opf"]


@dataclass(frozen=True)
class OpfResult:
    """Result of a single-period OPF.

    Attributes
    ----------
    model : str  (``dc`` or ``lindistflow``)
    status : str
    objective_eur_per_h : float [EUR/h]
    max_vm_error_pu : float or None [pu]
        Largest ``|V_linear - V_AC|`` over buses (LinDistFlow only).
    build_seconds, translate_seconds, solver_seconds : float [s]
    n_variables, n_constraints : int
    p_mw : dict
        Dispatch per element, keyed ``"table/index"`` [MW].
    vm_pu_linear, vm_pu_ac : ndarray or None [pu]
        Voltages of the linear model and of the AC power flow (LinDistFlow only), in
        pandapower bus order of ``bus_index``.
    bus_index : ndarray or None
    """

    model: str
    status: str
    objective_eur_per_h: float
    max_vm_error_pu: float | None
    build_seconds: float
    translate_seconds: float
    solver_seconds: float
    n_variables: int
    n_constraints: int
    p_mw: dict = field(default_factory=dict)
    vm_pu_linear: np.ndarray | None = None
    vm_pu_ac: np.ndarray | None = None
    bus_index: np.ndarray | None = None


def _result(model: str, res: SolveResult, build_s: float, **kw) -> OpfResult:
    return OpfResult(
        model=model,
        status=res.status.value,
        objective_eur_per_h=res.objective,
        build_seconds=build_s,
        translate_seconds=res.translate_seconds,
        solver_seconds=res.solver_seconds,
        n_variables=res.n_variables,
        n_constraints=res.n_constraints,
        **kw,
    )


def solve_dc_opf(net: pp.pandapowerNet, label: str = "case") -> OpfResult:
    """DC OPF with polynomial (up to quadratic) generator costs.

    Parameters
    ----------
    net : pandapowerNet
    label : str
        Name used in error messages.

    Raises
    ------
    CaseError
        Missing costs or unsupported elements.
    InfeasibleError
        When no dispatch satisfies the limits.
    """
    tick = time.perf_counter()
    net = with_generation_costs(net, label)
    arr = transmission_arrays(net, label)
    m = pyo.ConcreteModel(name=f"dc_opf_{label}")
    m.gen = pyo.Block()
    m.network = pyo.Block()
    pg = add_var(m.gen, "p_mw", (1, arr.n_gen), ("step", "gen"), arr.gen_pmin_mw, arr.gen_pmax_mw)
    inj = terms(pg, arr.gen_bus[None, :], np.arange(arr.n_gen)[None, :], 1.0)
    rhs = (arr.demand_mw + dc_shift_injection_mw(arr))[None, :]
    add_dc_network(m.network, arr, (1,), ("step",), [inj], rhs)
    p = pg.data
    m.objective = pyo.Objective(
        expr=sum(
            arr.gen_cost_c0_eur_per_h[g]
            + arr.gen_cost_c1_eur_per_mwh[g] * p[g]
            + arr.gen_cost_c2_eur_per_mw2h[g] * p[g] ** 2
            for g in range(arr.n_gen)
        )
    )
    build_s = time.perf_counter() - tick
    res = PersistentSolver(m).solve()
    values = pg.values()[0]
    dispatch = {
        f"{k}/{e}": float(v) for k, e, v in zip(arr.gen_kind, arr.gen_element, values, strict=True)
    }
    return _result("dc", res, build_s, max_vm_error_pu=None, p_mw=dispatch)


def _controllable(net: pp.pandapowerNet, table: str):
    df = net[table]
    if not len(df):
        return df
    ctrl = df.controllable.fillna(False).astype(bool) if "controllable" in df else False
    return df[df.in_service & ctrl]


def _cost_of(net: pp.pandapowerNet, table: str, idx: int) -> tuple[float, float, float] | None:
    rows = net.poly_cost[(net.poly_cost.et == table) & (net.poly_cost.element == idx)]
    if not len(rows):
        return None
    r = rows.iloc[0]
    return float(r.cp0_eur), float(r.cp1_eur_per_mw), float(r.cp2_eur_per_mw2)


#: element tables a feeder LP dispatches, with the sign of their ``p_mw`` as an injection
CONTROLLABLE_TABLES = {"sgen": 1.0, "storage": -1.0, "load": -1.0}


@dataclass(frozen=True)
class FeederLp:
    """A single-period LinDistFlow model of a radial network with its controllable units.

    Attributes
    ----------
    model : pyomo ConcreteModel  (no objective)
    feeder : FeederArrays
    units : list of (table, index)
        Controllable elements (pandapower's ``controllable`` flag), in variable order.
    p_mw, q_mvar : VarArray (1, unit)
        Their set-points in pandapower's sign of each table (load sign for storage and
        loads) [MW], [Mvar].
    network : LinDistFlow
    p_import_mw, q_import_mvar : pyomo expressions
        Power drawn from the root (``res_ext_grid`` sign) [MW], [Mvar].
    """

    model: pyo.ConcreteModel
    feeder: FeederArrays
    units: list
    p_mw: object
    q_mvar: object
    network: object
    p_import_mw: object
    q_import_mvar: object

    def dispatch(self) -> tuple[np.ndarray, np.ndarray]:
        """The units' set-points at the current solution [MW], [Mvar]."""
        return self.p_mw.values()[0], self.q_mvar.values()[0]


def feeder_lp(
    net: pp.pandapowerNet,
    label: str,
    polygon_sides: int = 16,
    vm_min_pu: float = 0.9,
    vm_max_pu: float = 1.1,
    voltage_margin_pu: float = 0.0,
) -> FeederLp:
    """Single-period LinDistFlow feasible set of a radial network (pandapower OPF conventions).

    Controllable ``sgen``, ``storage`` and ``load`` elements move within their
    ``min_/max_p_mw`` and ``min_/max_q_mvar`` (missing: ``0 .. p_mw`` and ``0``); the
    others are fixed at their set-points. Voltage limits are the buses' ``min_vm_pu`` /
    ``max_vm_pu`` (missing: ``vm_min_pu`` / ``vm_max_pu``), tightened by
    ``voltage_margin_pu`` on both sides; branch ratings include ``max_loading_percent``
    where given.

    Raises
    ------
    CaseError
        A meshed network, a voltage-controlled ``gen``, or bad data.
    """
    if len(net.gen[net.gen.in_service]):
        raise CaseError(
            f"{label}: 'gen' elements (voltage-controlled) are not supported in a "
            "LinDistFlow feeder; model DER as sgen"
        )
    f = feeder_arrays(net, label, float(net.sn_mva), vm_min_pu, vm_max_pu)
    ctrl = {t: _controllable(net, t) for t in CONTROLLABLE_TABLES}
    units = [(t, int(idx), row) for t, df in ctrl.items() for idx, row in df.iterrows()]
    p_fix, q_fix = _fixed_injections(net, f, {t: set(df.index) for t, df in ctrl.items()})
    m = pyo.ConcreteModel(name=f"feeder_lp_{label}")
    m.units = pyo.Block()
    m.network = pyo.Block()
    n_u = len(units)

    def lim(row, col, default):
        v = row.get(col, np.nan)
        return float(v) if v == v else default

    sign = np.array([CONTROLLABLE_TABLES[t] for t, _, _ in units])
    plo = np.array([lim(r, "min_p_mw", 0.0) for _, _, r in units])
    phi = np.array([lim(r, "max_p_mw", float(r.p_mw)) for _, _, r in units])
    qlo = np.array([lim(r, "min_q_mvar", 0.0) for _, _, r in units])
    qhi = np.array([lim(r, "max_q_mvar", 0.0) for _, _, r in units])
    bad = [f"{t} {i}" for (t, i, _), lo, hi in zip(units, plo, phi, strict=True) if lo > hi]
    bad += [f"{t} {i}" for (t, i, _), lo, hi in zip(units, qlo, qhi, strict=True) if lo > hi]
    if bad:
        raise CaseError(f"{label}: min above max for controllable {', '.join(bad)}")
    pu = add_var(m.units, "p_mw", (1, n_u), ("step", "unit"), plo, phi)
    qu = add_var(m.units, "q_mvar", (1, n_u), ("step", "unit"), qlo, qhi)
    bus = np.array([f.position(int(r.bus)) for _, _, r in units], dtype=int)
    down = bus > 0  # units at the root inject straight into the interface
    cols = np.flatnonzero(down)[None, :]
    p_inj = [terms(pu, bus[down][None, :] - 1, cols, sign[down][None, :])] if down.any() else []
    q_inj = [terms(qu, bus[down][None, :] - 1, cols, sign[down][None, :])] if down.any() else []
    flow_bound = float(
        np.abs(p_fix).sum() + np.abs(q_fix).sum() + np.abs(np.r_[plo, phi, qlo, qhi]).sum()
    )
    ldf = add_lindistflow(
        m.network,
        f,
        (1,),
        ("step",),
        p_inj,
        q_inj,
        p_fix[None, 1:],
        q_fix[None, 1:],
        polygon_sides=polygon_sides,
        voltage_margin_pu=voltage_margin_pu,
        flow_bound_mva=flow_bound,
    )
    roots = root_branches(f)
    at_root = np.flatnonzero(~down)
    p_import = (
        sum(ldf.p_mw.data[k] for k in roots)
        + float(p_fix[0])
        - sum(sign[u] * pu.data[u] for u in at_root)
    )
    q_import = (
        sum(ldf.q_mvar.data[k] for k in roots)
        + float(q_fix[0])
        - sum(sign[u] * qu.data[u] for u in at_root)
    )
    return FeederLp(m, f, [(t, i) for t, i, _ in units], pu, qu, ldf, p_import, q_import)


def _fixed_injections(net: pp.pandapowerNet, f: FeederArrays, controllable_idx: dict):
    """Fixed net demand (bus,) [MW], [Mvar] from loads and non-controllable units."""
    p = f.load_p_mw.copy()
    q = f.load_q_mvar.copy()
    for table in ("sgen", "storage", "load"):
        df = net[table]
        if not len(df):
            continue
        for idx, row in df[df.in_service].iterrows():
            controllable = idx in controllable_idx.get(table, ())
            if table == "load":
                if controllable:  # in f.load_*: take it out, the LP dispatches it
                    j = f.position(int(row.bus))
                    p[j] -= row.p_mw * row.scaling
                    q[j] -= row.q_mvar * row.scaling
                continue
            if controllable:
                continue
            sign = -CONTROLLABLE_TABLES[table]
            j = f.position(int(row.bus))
            p[j] += sign * row.p_mw * row.scaling
            q[j] += sign * row.q_mvar * row.scaling
    return p, q


def solve_lindistflow_opf(
    net: pp.pandapowerNet,
    label: str = "case",
    polygon_sides: int = 16,
    substation: int | None = None,
) -> OpfResult:
    """Single-period LinDistFlow OPF of a radial network, checked with AC power flow.

    A network with several in-service ``ext_grid`` (substations) is a forest: each
    substation's part is a feeder of its own (:mod:`cases.substations`), its import
    priced with its ``ext_grid`` cost. The parts share nothing, so each is solved on its
    own and the objectives add up; the AC power flow runs on the whole network.

    Parameters
    ----------
    net : pandapowerNet
        Radial network (or forest) with an ``ext_grid`` (with a ``poly_cost``) at each
        root.
    label : str
    polygon_sides : int
        Sides of the apparent-power polygon of branches.
    substation : int, optional
        Keep only the part fed by this ``ext_grid`` (default: every part).

    Returns
    -------
    OpfResult
        With ``max_vm_error_pu`` from a pandapower AC power flow at the optimum;
        statuses, times and sizes over all parts (the worst status, sums of the rest),
        voltages in part order.
    """
    tick = time.perf_counter()
    net = with_generation_costs(net, label)
    parts = substation_nets(net, label, substation)
    ac = copy.deepcopy(parts[0][1] if substation is not None else net)
    build_s, dispatch, results = time.perf_counter() - tick, {}, []
    vm_lin, bus_index = [], []
    for k, part in parts:
        part_label = label if len(parts) == 1 else f"{label} (substation {k})"
        start = time.perf_counter()
        lp, objective = _priced_feeder_lp(part, part_label, polygon_sides, k)
        lp.model.objective = pyo.Objective(expr=objective)
        build_s += time.perf_counter() - start
        results.append(PersistentSolver(lp.model).solve())
        vm_lin.append(lp.network.vm_pu()[0])
        bus_index.append(lp.feeder.bus_index)
        pv, qv = lp.p_mw.values()[0], lp.q_mvar.values()[0]
        for u, (t, idx) in enumerate(lp.units):
            ac[t].at[idx, "p_mw"] = pv[u]
            ac[t].at[idx, "q_mvar"] = qv[u]
            dispatch[f"{t}/{idx}"] = float(pv[u])
        dispatch[f"ext_grid/{k}"] = float(pyo.value(lp.p_import_mw))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.runpp(ac, calculate_voltage_angles=True, init="dc")  # DC start: phase-shifting trafos
    buses = np.concatenate(bus_index)
    vm_lin_all = np.concatenate(vm_lin)
    vm_ac = ac.res_bus.vm_pu.reindex(buses).to_numpy()
    worst = next((r for r in results if r.status.value != "optimal"), results[0])
    return OpfResult(
        model="lindistflow",
        status=worst.status.value,
        objective_eur_per_h=float(sum(r.objective for r in results)),
        max_vm_error_pu=float(np.max(np.abs(vm_lin_all - vm_ac))),
        build_seconds=build_s,
        translate_seconds=sum(r.translate_seconds for r in results),
        solver_seconds=sum(r.solver_seconds for r in results),
        n_variables=sum(r.n_variables for r in results),
        n_constraints=sum(r.n_constraints for r in results),
        p_mw=dispatch,
        vm_pu_linear=vm_lin_all,
        vm_pu_ac=vm_ac,
        bus_index=buses,
    )


def _priced_feeder_lp(
    net: pp.pandapowerNet, label: str, polygon_sides: int, ext: int
) -> tuple[FeederLp, object]:
    """The feeder LP of one part and its cost expression [EUR/h] (import at ``ext`` and
    controllable units at their ``poly_cost``)."""
    lp = feeder_lp(net, label, polygon_sides)
    ext_cost = _cost_of(net, "ext_grid", ext)
    if ext_cost is None:
        raise CaseError(
            f"{label}: ext_grid {ext} has no cost; add one with "
            f"pandapower.create_poly_cost(net, {ext}, 'ext_grid', cp1_eur_per_mw=...)"
        )
    costs = []
    for t, idx in lp.units:
        c = _cost_of(net, t, idx)
        if c is None:
            raise CaseError(
                f"{label}: controllable {t} {idx} has no cost; add one with "
                f"pandapower.create_poly_cost(net, {idx}, '{t}', cp1_eur_per_mw=...)"
            )
        costs.append(c)
    p_import = lp.p_import_mw
    c0, c1, c2 = ext_cost
    obj = c0 + c1 * p_import + c2 * p_import**2
    for u, (k0, k1, k2) in enumerate(costs):
        obj += k0 + k1 * lp.p_mw.data[u] + k2 * lp.p_mw.data[u] ** 2
    return lp, obj
