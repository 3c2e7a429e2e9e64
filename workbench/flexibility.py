"""The P-Q flexibility region at the root of a radial pandapower network.

``workbench flexibility NET.json``: the interface powers a DSO can offer from the
network's controllable elements (pandapower OPF conventions) within its LinDistFlow
limits, as an inner and an outer polygon (:mod:`stochastic.flexibility`), each inner
vertex checked by an AC power flow at the dispatch that reaches it.

Losses. LinDistFlow is lossless, so its interface power misses the lines' and
transformers' losses (on CIGRE MV with four times its DER: +0.15 to 0.3 MW and +3.7 to
5.3 Mvar, most of the region outside the lossless one). The interface the region
reports is therefore the loss-corrected one,

    ``(P, Q)(x) = (P, Q)_AC(x0) + J_AC(x0) (x - x0)``,

the AC interface power linearised in the units' set-points ``x`` around an AC operating
point ``x0`` (``J_AC`` from the adjoint of the power-flow Jacobian at ``x0``, or by finite
differences of pandapower's power flow where the network has voltage-dependent loads). It equals the
LinDistFlow interface plus an affine loss term, since the lossless interface moves one
for one with each injection. Each direction of the sweep is solved, re-linearised at the
dispatch it found and solved again (``ac_rounds`` times), so every support value is the
AC interface power of the optimal dispatch to first order. The feeder's limits stay
LinDistFlow's (with ``voltage_margin_pu``), corrected at the same point: the voltage
limits move by the AC voltage error and the rated branches' polygons shrink by the ratio
of LinDistFlow's to the AC utilisation (never above the rating).

:func:`sample_ac_interface` draws random set-points inside the units' limits and returns
the AC interface power and AC feasibility of each: the reference a region is checked
against.
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandapower as pp
import pyomo.environ as pyo
import scipy.sparse as sp
from pandapower.pypower.dSbus_dV import dSbus_dV
from scipy.sparse.linalg import spsolve

from stochastic.flexibility import Polygon, SweepResult, sweep_directions
from stochastic.network import polygon_directions, w_limits
from stochastic.single_period import CONTROLLABLE_TABLES, FeederLp, feeder_lp
from stochastic.solve import PersistentSolver

__all__ = [
    "AcInterface",
    "AcSamples",
    "NetworkFlexibility",
    "network_flexibility",
    "sample_ac_interface",
]

#: tolerance of the AC check of a vertex: voltage [pu] and loading [%]
VM_TOL_PU = 1e-4
LOADING_TOL_PERCENT = 1e-2
#: set-point step of the finite-difference interface Jacobian [MW], [Mvar]
JACOBIAN_STEP_MW = 1e-3
#: distance an AC-sampled interface point may lie outside a region and count as inside
#: [MVA]
COVERAGE_TOL_MVA = 0.01


@dataclass(frozen=True)
class NetworkFlexibility:
    """P-Q region at a network's root, P and Q in ``res_ext_grid`` sign (drawn from the grid).

    Attributes
    ----------
    sweep : SweepResult
        Of the loss-corrected interface (``ac_rounds > 0``) or the lossless one.
    vertex_direction : ndarray of int
        For each inner vertex, the direction whose optimum it is.
    vertex_ac_feasible : ndarray of bool
        Whether the AC power flow at the vertex's dispatch keeps every voltage within its
        limits and every branch within its rating.
    vertex_ac_mw_mvar : ndarray (vertex, 2)
        The ``ext_grid`` power in the AC power flow [MW], [Mvar] (it includes losses).
    vertex_vm_violation_pu : ndarray (vertex,) [pu]
        Largest distance of an AC voltage outside its band at each vertex (0: within).
    vertex_overload_percent : ndarray (vertex,) [%]
        Largest AC branch loading above its limit at each vertex (0: within).
    max_vm_error_pu : float
        Largest ``|V_linear - V_AC|`` over buses and vertices [pu].
    max_interface_error_mw_mvar : float
        Largest distance between an inner vertex and the AC interface power of its
        dispatch [MVA] (the losses the region's interface misses).
    base_ac_feasible : bool
        The same AC check at the network's own set-points: a violation there is the
        case's, not the region's.
    n_controllable : int
    ac_rounds : int
        Re-linearisations of the losses per direction (0: lossless LinDistFlow).
    build_seconds, solver_seconds, ac_seconds : float [s]
        ``ac_seconds``: the AC power flows of the linearisations and of the checks.
    """

    sweep: SweepResult
    vertex_direction: np.ndarray
    vertex_ac_feasible: np.ndarray
    vertex_ac_mw_mvar: np.ndarray
    vertex_vm_violation_pu: np.ndarray
    vertex_overload_percent: np.ndarray
    max_vm_error_pu: float
    max_interface_error_mw_mvar: float
    base_ac_feasible: bool
    n_controllable: int
    ac_rounds: int
    build_seconds: float
    solver_seconds: float
    ac_seconds: float

    def summary(self) -> dict:
        """The JSON record of ``workbench flexibility --json``."""
        inner, outer = self.sweep.inner, self.sweep.outer
        return {
            "inner_vertices_mw_mvar": np.round(inner.vertices, 9).tolist(),
            "outer_vertices_mw_mvar": np.round(outer.vertices, 9).tolist(),
            "area_inner_mw_mvar": inner.area,
            "area_outer_mw_mvar": outer.area,
            "vertices": len(inner.vertices),
            "vertices_ac_feasible": int(self.vertex_ac_feasible.sum()),
            "ac_vertices_mw_mvar": np.round(self.vertex_ac_mw_mvar, 9).tolist(),
            "max_vertex_vm_violation_pu": float(
                np.nanmax(self.vertex_vm_violation_pu, initial=0.0)
            ),
            "max_vertex_overload_percent": float(
                np.nanmax(self.vertex_overload_percent, initial=0.0)
            ),
            "max_vm_error_pu": self.max_vm_error_pu,
            "max_interface_error_mw_mvar": self.max_interface_error_mw_mvar,
            "base_ac_feasible": self.base_ac_feasible,
            "directions": len(self.sweep.directions_rad),
            "ac_rounds": self.ac_rounds,
            "controllable_elements": self.n_controllable,
            "build_seconds": self.build_seconds,
            "solver_seconds": self.solver_seconds,
            "ac_seconds": self.ac_seconds,
        }


@dataclass(frozen=True)
class AcPoint:
    """One AC power flow of a network at given set-points of its controllable units.

    Attributes
    ----------
    converged : bool
    feasible : bool
        Every voltage within its limits and every branch within its rating (within
        ``VM_TOL_PU`` and ``LOADING_TOL_PERCENT``); ``False`` when not converged.
    interface_mw_mvar : ndarray (2,) [MW], [Mvar]
        ``ext_grid`` power (``nan`` when not converged).
    vm_pu : ndarray (bus,) [pu]
        Voltages in the feeder's bus order.
    vm_violation_pu : float [pu]
        Largest distance of a voltage outside its band (0 within it; ``nan`` when not
        converged).
    overload_percent : float [%]
        Largest branch loading above its limit (0 within it; ``nan`` when not converged).
    """

    converged: bool
    feasible: bool
    interface_mw_mvar: np.ndarray
    vm_pu: np.ndarray
    vm_violation_pu: float = float("nan")
    overload_percent: float = float("nan")


class AcInterface:
    """AC power flows of one network at changing set-points of the units of a feeder LP.

    Keeps one copy of the network and starts each power flow from the last converged one.

    Parameters
    ----------
    net : pandapowerNet
    lp : FeederLp
        Gives the units (in variable order) and the feeder's voltage limits.
    """

    def __init__(self, net: pp.pandapowerNet, lp: FeederLp) -> None:
        self.net = copy.deepcopy(net)
        self.lp = lp
        self._warm = False

    def run(self, p_mw: np.ndarray, q_mvar: np.ndarray) -> AcPoint:
        """AC power flow with the units at ``p_mw``, ``q_mvar`` (pandapower sign per table)."""
        ac, f = self.net, self.lp.feeder
        for u, (table, idx) in enumerate(self.lp.units):
            ac[table].at[idx, "p_mw"] = float(p_mw[u])
            ac[table].at[idx, "q_mvar"] = float(q_mvar[u])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:  # DC start the first time: phase-shifting trafos
                pp.runpp(ac, calculate_voltage_angles=True, init="results" if self._warm else "dc")
            except pp.LoadflowNotConverged:
                self._warm = False
                nan = np.full(2, np.nan)
                return AcPoint(False, False, nan, np.full(len(f.bus_index), np.nan))
        self._warm = True
        vm = ac.res_bus.vm_pu.reindex(f.bus_index).to_numpy()
        vm_out = float(np.max(np.r_[0.0, f.vm_min_pu[1:] - vm[1:], vm[1:] - f.vm_max_pu[1:]]))
        overload = 0.0
        for table in ("line", "trafo"):
            if not len(ac[table]):
                continue
            limit = (
                ac[table].max_loading_percent.fillna(100.0)
                if "max_loading_percent" in ac[table]
                else 100.0
            )
            excess = (ac[f"res_{table}"].loading_percent - limit)[ac[table].in_service]
            overload = max(overload, float(excess.max()) if len(excess) else 0.0)
        ok = vm_out <= VM_TOL_PU and overload <= LOADING_TOL_PERCENT
        ext = ac.res_ext_grid.loc[ac.ext_grid.in_service]
        pq = np.array([float(ext.p_mw.sum()), float(ext.q_mvar.sum())])
        return AcPoint(True, ok, pq, vm, vm_out, overload)

    def jacobian(
        self, p_mw: np.ndarray, q_mvar: np.ndarray, step: float | None = None
    ) -> tuple[AcPoint, np.ndarray] | None:
        """AC interface power and its derivatives in the units' set-points.

        Analytic (the adjoint of the power-flow Jacobian at the converged point) where
        the network allows it: one reference bus, constant-power loads; forward
        differences of ``step`` [MW], [Mvar] otherwise or when
        ``step`` is given.

        Returns
        -------
        (AcPoint, ndarray (2, 2 * unit))
            The point and ``d(P, Q) / d(p_1..p_n, q_1..q_n)`` [MW/MW]; ``None`` when a
            power flow does not converge.
        """
        base = self.run(p_mw, q_mvar)
        if not base.converged:
            return None
        if step is None:
            jac = self._adjoint_jacobian()
            if jac is not None:
                return base, jac
            step = JACOBIAN_STEP_MW
        n = len(p_mw)
        jac = np.empty((2, 2 * n))
        for k in range(2 * n):
            p, q = p_mw.copy(), q_mvar.copy()
            (p if k < n else q)[k % n] += step
            pt = self.run(p, q)
            if not pt.converged:
                return None
            jac[:, k] = (pt.interface_mw_mvar - base.interface_mw_mvar) / step
        self.run(p_mw, q_mvar)  # leave the network at the point
        return base, jac

    def _adjoint_jacobian(self) -> np.ndarray | None:
        """``d(P, Q)_ext_grid / d(p, q)`` of the units at the last converged power flow, from
        ``J^T lambda = d S_ref / d x`` (``x``: angles of the non-reference buses,
        magnitudes of the PQ buses); ``None`` where the network does not allow it."""
        net = self.net
        ppc = getattr(net, "_ppc", None)
        if ppc is None or "internal" not in ppc:
            return None
        internal = ppc["internal"]
        ref, pv, pq = (np.asarray(internal[k], dtype=int) for k in ("ref", "pv", "pq"))
        loads = net.load[net.load.in_service]
        voltage_dependent = any(
            c in loads and bool((loads[c].fillna(0.0) != 0.0).any())
            for c in ("const_z_percent", "const_i_percent", "const_z_p_percent")
        )
        if len(ref) != 1 or voltage_dependent:
            return None
        y_bus, v = internal["Ybus"], internal["V"]
        ds_dvm, ds_dva = dSbus_dV(y_bus, v)
        pvpq = np.r_[pv, pq]
        jac = sp.vstack(
            [
                sp.hstack([ds_dva[pvpq][:, pvpq].real, ds_dvm[pvpq][:, pq].real]),
                sp.hstack([ds_dva[pq][:, pvpq].imag, ds_dvm[pq][:, pq].imag]),
            ]
        ).tocsc()
        r = int(ref[0])
        row_va, row_vm = ds_dva[r][:, pvpq].toarray().ravel(), ds_dvm[r][:, pq].toarray().ravel()
        rhs = np.c_[np.r_[row_va.real, row_vm.real], np.r_[row_va.imag, row_vm.imag]]
        lam = np.column_stack([spsolve(jac.T.tocsc(), rhs[:, c]) for c in range(2)]).T
        row_p = {int(b): i for i, b in enumerate(pvpq)}
        row_q = {int(b): len(pvpq) + i for i, b in enumerate(pq)}
        lookup = net._pd2ppc_lookups["bus"]  # pandapower bus -> internal (ppci) bus
        n = len(self.lp.units)
        out = np.zeros((2, 2 * n))
        for u, (table, idx) in enumerate(self.lp.units):
            sign = CONTROLLABLE_TABLES[table]  # injection per unit of set-point
            b = int(lookup[int(net[table].at[idx, "bus"])])
            if b == r:  # at the reference bus: straight into the interface
                out[0, u] = out[1, n + u] = -sign
                continue
            if b not in row_q:
                return None
            out[:, u] = sign * lam[:, row_p[b]]
            out[:, n + u] = sign * lam[:, row_q[b]]
        return out


@dataclass(frozen=True)
class AcSamples:
    """AC power flows of random unit set-points.

    Attributes
    ----------
    p_mw, q_mvar : ndarray (sample, unit) [MW], [Mvar]
        Set-points, pandapower sign of each unit's table.
    interface_mw_mvar : ndarray (sample, 2) [MW], [Mvar]
        ``ext_grid`` power (``nan`` where the power flow did not converge).
    feasible : ndarray of bool (sample,)
        Converged, voltages and loadings within limits.
    """

    p_mw: np.ndarray
    q_mvar: np.ndarray
    interface_mw_mvar: np.ndarray
    feasible: np.ndarray

    def coverage(self, region: Polygon, tol_mw_mvar: float = 0.0) -> float:
        """Share of the AC-feasible samples whose interface power lies in ``region``
        (boundary widened by ``tol_mw_mvar``) [-]; ``nan`` without feasible samples."""
        pts = self.interface_mw_mvar[self.feasible]
        if not len(pts):
            return float("nan")
        return float(np.mean([region.contains(x, tol=tol_mw_mvar) for x in pts]))


def _unit_bounds(lp: FeederLp) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Lower and upper ``p`` and ``q`` limits of the LP's units [MW], [Mvar]."""

    def bounds(var) -> tuple[np.ndarray, np.ndarray]:
        lo = np.array([v.lb for v in var.data], dtype=float)
        hi = np.array([v.ub for v in var.data], dtype=float)
        return lo, hi

    return (*bounds(lp.p_mw), *bounds(lp.q_mvar))


def sample_ac_interface(
    net: pp.pandapowerNet,
    n_samples: int,
    seed: int | np.random.Generator = 0,
    vm_min_pu: float = 0.95,
    vm_max_pu: float = 1.05,
    label: str = "network",
) -> AcSamples:
    """AC interface powers of random set-points of a network's controllable units.

    Each unit's ``p`` and ``q`` are drawn uniformly and independently within its
    ``min_/max_p_mw`` and ``min_/max_q_mvar`` (the limits :func:`feeder_lp` uses);
    pandapower's AC power flow gives the ``ext_grid`` power and whether voltages
    (``min_vm_pu`` / ``max_vm_pu``, else ``vm_min_pu`` / ``vm_max_pu``) and branch
    loadings stay within their limits.

    Parameters
    ----------
    net : pandapowerNet
    n_samples : int
    seed : int or numpy.random.Generator
    vm_min_pu, vm_max_pu : float [pu]
    label : str
    """
    rng = np.random.default_rng(seed)
    lp = feeder_lp(net, label, 16, vm_min_pu, vm_max_pu)
    plo, phi, qlo, qhi = _unit_bounds(lp)
    n = len(lp.units)
    p = plo + (phi - plo) * rng.random((n_samples, n))
    q = qlo + (qhi - qlo) * rng.random((n_samples, n))
    ac = AcInterface(net, lp)
    pq = np.full((n_samples, 2), np.nan)
    ok = np.zeros(n_samples, dtype=bool)
    for i in range(n_samples):
        pt = ac.run(p[i], q[i])
        pq[i], ok[i] = pt.interface_mw_mvar, pt.feasible
    return AcSamples(p, q, pq, ok)


class _LossCorrection:
    """Mutable loss-corrected interface expressions on a feeder LP.

    ``(P, Q) = c + G x`` with ``x = (p_1..p_n, q_1..q_n)``: the AC interface power
    linearised at a point; :meth:`linearise` moves the point. It also moves the voltage
    limits by the AC voltage error at the point, and scales the rated branches'
    apparent-power polygons by the ratio of LinDistFlow's to the AC power flow's
    utilisation there (AC limits are currents: at 0.95 pu a branch carries 5 % less
    power than its rating in MVA at nominal voltage), never above the rating.
    """

    def __init__(
        self, lp: FeederLp, ac: AcInterface, voltage_margin_pu: float, polygon_sides: int
    ) -> None:
        m, n = lp.model, len(lp.units)
        self.lp, self.ac, self.margin = lp, ac, voltage_margin_pu
        f = lp.feeder
        self.rated = np.flatnonzero(
            np.isfinite(f.branch_rating_mva) & np.isin(f.branch_kind, ("line", "trafo"))
        )
        ang = polygon_directions(polygon_sides)
        cap = f.branch_rating_mva[self.rated] * np.cos(np.pi / polygon_sides)
        m.rating_scale = pyo.Param(range(len(self.rated)), mutable=True, initialize=1.0)
        flow_p, flow_q = lp.network.p_mw.data, lp.network.q_mvar.data
        rows = [(b, a) for b in range(len(self.rated)) for a in range(len(ang))]

        def side(b: int, a: int):
            k = int(self.rated[b])
            return np.cos(ang[a]) * flow_p[k] + np.sin(ang[a]) * flow_q[k]

        m.ac_rating_up = pyo.Constraint(
            rows, rule=lambda _, b, a: side(b, a) <= float(cap[b]) * m.rating_scale[b]
        )
        m.ac_rating_down = pyo.Constraint(
            rows, rule=lambda _, b, a: -side(b, a) <= float(cap[b]) * m.rating_scale[b]
        )
        sign = np.array([CONTROLLABLE_TABLES[t] for t, _ in lp.units])
        # the lossless interface: d(P, Q)/dx = -sign on the unit's own power
        self.lossless = np.zeros((2, 2 * n))
        self.lossless[0, :n] = -sign
        self.lossless[1, n:] = -sign
        m.loss_c = pyo.Param(range(2), mutable=True, initialize=0.0)
        m.loss_g = pyo.Param(range(2), range(2 * n), mutable=True, initialize=0.0)
        x = list(lp.p_mw.data) + list(lp.q_mvar.data)
        base = (lp.p_import_mw, lp.q_import_mvar)
        # LinDistFlow's interface plus the affine loss term c + (G - G_lossless) x
        self.p_mw, self.q_mvar = (
            base[r] + m.loss_c[r] + sum(m.loss_g[r, k] * x[k] for k in range(2 * n))
            for r in range(2)
        )
        self.point: AcPoint | None = None

    def linearise(self, p_mw: np.ndarray, q_mvar: np.ndarray, solver: PersistentSolver) -> bool:
        """Losses linearised and voltage limits corrected at ``p_mw``, ``q_mvar`` (at the
        current solution); ``False`` (unchanged) when the AC power flow there does not
        converge."""
        got = self.ac.jacobian(p_mw, q_mvar)
        if got is None:
            return False
        point, jac = got
        m = self.lp.model
        # the voltage limits move by the AC error at the point (as the AC correction loop)
        error = point.vm_pu - self.lp.network.vm_pu()[0]
        error[0] = 0.0
        lo, hi = w_limits(self.lp.feeder, self.margin, error)
        solver.set_bounds(self.lp.network.w, lo[None], hi[None])
        scale = self._rating_scale()
        for b, value in enumerate(scale):
            m.rating_scale[b].set_value(float(value))
        x0 = np.r_[p_mw, q_mvar]
        g = jac - self.lossless
        # lossless interface at x0, from the LP's own (affine) expression
        lin = self._lossless_at(x0)
        c = point.interface_mw_mvar - lin - g @ x0
        for r in range(2):
            m.loss_c[r].set_value(float(c[r]))
            for k in range(len(x0)):
                m.loss_g[r, k].set_value(float(g[r, k]))
        self.point = point
        return True

    def _rating_scale(self) -> np.ndarray:
        """LinDistFlow's utilisation over the AC one of each rated branch (at most 1) at
        the AC network's last power flow and the LP's current solution."""
        f, net = self.lp.feeder, self.ac.net
        k = self.rated
        s_lin = np.hypot(self.lp.network.p_mw.values()[0, k], self.lp.network.q_mvar.values()[0, k])
        use_lin = s_lin / f.branch_rating_mva[k]
        use_ac = np.full(len(k), np.nan)
        for b, (kind, element) in enumerate(
            zip(f.branch_kind[k], f.branch_element[k], strict=True)
        ):
            table = net[kind]
            limit = (
                float(table.max_loading_percent.at[element])
                if "max_loading_percent" in table
                and np.isfinite(table.max_loading_percent.at[element])
                else 100.0
            )
            use_ac[b] = float(net[f"res_{kind}"].loading_percent.at[element]) / limit
        ratio = np.where((use_ac > 1e-6) & np.isfinite(use_ac), use_lin / use_ac, 1.0)
        return np.clip(ratio, 0.5, 1.0)

    def _lossless_at(self, x0: np.ndarray) -> np.ndarray:
        """LinDistFlow's interface power at unit set-points ``x0`` [MW], [Mvar].

        Lossless: it is the current solution's interface minus the change of the units'
        injections from ``x0``.
        """
        x = np.r_[self.lp.dispatch()]
        now = np.array([pyo.value(self.lp.p_import_mw), pyo.value(self.lp.q_import_mvar)])
        return now + self.lossless @ (x0 - x)


def network_flexibility(
    net: pp.pandapowerNet,
    label: str = "network",
    n_directions: int = 16,
    polygon_sides: int = 16,
    vm_min_pu: float = 0.95,
    vm_max_pu: float = 1.05,
    voltage_margin_pu: float = 0.0,
    ac_rounds: int = 2,
) -> NetworkFlexibility:
    """P-Q flexibility region at the root of a radial network, vertices checked in AC.

    Parameters
    ----------
    net : pandapowerNet
        Radial, one in-service ``ext_grid`` (the root); controllable ``sgen``, ``storage``
        and ``load`` elements (``controllable``; ``min_/max_p_mw``, ``min_/max_q_mvar``).
    label : str
    n_directions : int
        Directions of the sweep (>= 3).
    polygon_sides : int
        Sides of the branches' apparent-power polygons.
    vm_min_pu, vm_max_pu : float [pu]
        Voltage limits of buses without ``min_vm_pu`` / ``max_vm_pu``.
    voltage_margin_pu : float [pu]
        Tightening of the voltage band in the linear model (LinDistFlow neglects losses;
        the AC check of the vertices uses the untightened limits).
    ac_rounds : int
        Linearisations of the interface losses per direction, each at the dispatch the
        previous solve found (see the module's description); 0: lossless LinDistFlow.
    """
    if ac_rounds < 0:
        raise ValueError(f"ac_rounds must be 0 or more, got {ac_rounds}")
    tick = time.perf_counter()
    lp = feeder_lp(net, label, polygon_sides, vm_min_pu, vm_max_pu, voltage_margin_pu)
    ac = AcInterface(net, lp)
    build_s = time.perf_counter() - tick
    p_expr, q_expr, refine = lp.p_import_mw, lp.q_import_mvar, None
    if ac_rounds:
        refine = _Refinement(lp, _LossCorrection(lp, ac, voltage_margin_pu, polygon_sides))
        p_expr, q_expr = refine.loss.p_mw, refine.loss.q_mvar

    def record():
        p, q = lp.dispatch()
        return p.copy(), q.copy(), lp.network.vm_pu()[0].copy()

    sweep = sweep_directions(
        lp.model,
        p_expr,
        q_expr,
        n_directions,
        record=record,
        refine=refine,
        max_refinements=ac_rounds,
    )
    tick = time.perf_counter()
    checked = _check_vertices(ac, sweep)
    own = [(float(net[t].at[i, "p_mw"]), float(net[t].at[i, "q_mvar"])) for t, i in lp.units]
    base = ac.run(np.array([p for p, _ in own]), np.array([q for _, q in own]))
    return NetworkFlexibility(
        sweep=sweep,
        **checked,
        base_ac_feasible=base.feasible,
        n_controllable=len(lp.units),
        ac_rounds=ac_rounds,
        build_seconds=build_s,
        solver_seconds=sweep.solver_seconds,
        ac_seconds=time.perf_counter() - tick + (0.0 if refine is None else refine.seconds),
    )


class _Refinement:
    """The sweep's refinement: linearise the interface losses at the dispatch just found
    (not twice at the same one); ``seconds`` counts the linearisations' AC power flows."""

    def __init__(self, lp: FeederLp, loss: _LossCorrection):
        self.lp, self.loss = lp, loss
        self.last: np.ndarray | None = None
        self.seconds = 0.0

    def __call__(self, solver: PersistentSolver) -> bool:
        x = np.r_[self.lp.dispatch()]
        if self.last is not None and np.max(np.abs(x - self.last)) <= 1e-6:
            return False  # already linearised here
        start = time.perf_counter()
        done = self.loss.linearise(*self.lp.dispatch(), solver)
        self.seconds += time.perf_counter() - start
        if done:
            self.last = x
        return done


def _check_vertices(ac: AcInterface, sweep: SweepResult) -> dict:
    """AC power flow at the dispatch that reaches each inner vertex: feasibility, the
    interface point, violations and the largest errors of the linear model, as fields of
    :class:`NetworkFlexibility`."""
    pts = sweep.points_mw_mvar
    vertex_dir = np.array(
        [int(np.argmin(np.linalg.norm(pts - v, axis=1))) for v in sweep.inner.vertices],
        dtype=int,
    )
    feasible, ac_pq, errors, vm_out, overload = [], [], [], [], []
    for k in vertex_dir:
        p, q, vm_linear = sweep.solutions[k]
        pt = ac.run(p, q)
        feasible.append(pt.feasible)
        vm_out.append(pt.vm_violation_pu)
        overload.append(pt.overload_percent)
        ac_pq.append(pt.interface_mw_mvar)
        errors.append(float(np.max(np.abs(pt.vm_pu - vm_linear))))
    ac_pq = np.array(ac_pq).reshape(-1, 2)
    gap = np.linalg.norm(ac_pq - sweep.inner.vertices, axis=1)
    return {
        "vertex_direction": vertex_dir,
        "vertex_ac_feasible": np.array(feasible, dtype=bool),
        "vertex_ac_mw_mvar": ac_pq,
        "vertex_vm_violation_pu": np.array(vm_out),
        "vertex_overload_percent": np.array(overload),
        "max_vm_error_pu": float(np.nanmax(errors)) if errors else float("nan"),
        "max_interface_error_mw_mvar": float(np.nanmax(gap)) if len(gap) else float("nan"),
    }
