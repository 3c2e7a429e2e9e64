"""The P-Q flexibility region at the root of a radial pandapower network.

``workbench flexibility NET.json``: the interface powers a DSO can offer from the
network's controllable elements (pandapower OPF conventions) within its LinDistFlow
limits, as an inner and an outer polygon (:mod:`stochastic.flexibility`), each inner
vertex checked by an AC power flow at the dispatch that reaches it.
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandapower as pp

from stochastic.flexibility import SweepResult, sweep_directions
from stochastic.single_period import feeder_lp

__all__ = ["NetworkFlexibility", "network_flexibility"]

#: tolerance of the AC check of a vertex: voltage [pu] and loading [%]
VM_TOL_PU = 1e-4
LOADING_TOL_PERCENT = 1e-2


@dataclass(frozen=True)
class NetworkFlexibility:
    """P-Q region at a network's root, P and Q in ``res_ext_grid`` sign (drawn from the grid).

    Attributes
    ----------
    sweep : SweepResult
    vertex_direction : ndarray of int
        For each inner vertex, the direction whose optimum it is.
    vertex_ac_feasible : ndarray of bool
        Whether the AC power flow at the vertex's dispatch keeps every voltage within its
        limits and every branch within its rating.
    vertex_ac_mw_mvar : ndarray (vertex, 2)
        The ``ext_grid`` power in the AC power flow [MW], [Mvar] (it includes losses).
    max_vm_error_pu : float
        Largest ``|V_linear - V_AC|`` over buses and vertices [pu].
    base_ac_feasible : bool
        The same AC check at the network's own set-points: a violation there is the
        case's, not the region's.
    n_controllable : int
    build_seconds, solver_seconds, ac_seconds : float [s]
    """

    sweep: SweepResult
    vertex_direction: np.ndarray
    vertex_ac_feasible: np.ndarray
    vertex_ac_mw_mvar: np.ndarray
    max_vm_error_pu: float
    base_ac_feasible: bool
    n_controllable: int
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
            "max_vm_error_pu": self.max_vm_error_pu,
            "base_ac_feasible": self.base_ac_feasible,
            "directions": len(self.sweep.directions_rad),
            "controllable_elements": self.n_controllable,
            "build_seconds": self.build_seconds,
            "solver_seconds": self.solver_seconds,
            "ac_seconds": self.ac_seconds,
        }


def _ac_vertex(net, lp, p_mw, q_mvar, vm_linear) -> tuple[bool, np.ndarray, float]:
    """AC power flow at one dispatch: (feasible, ext_grid P/Q, max |V_lin - V_AC|)."""
    ac = copy.deepcopy(net)
    for u, (table, idx) in enumerate(lp.units):
        ac[table].at[idx, "p_mw"] = p_mw[u]
        ac[table].at[idx, "q_mvar"] = q_mvar[u]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            pp.runpp(ac, calculate_voltage_angles=True, init="dc")  # phase-shifting trafos
        except pp.LoadflowNotConverged:
            return False, np.full(2, np.nan), float("nan")
    f = lp.feeder
    vm = ac.res_bus.vm_pu.reindex(f.bus_index).to_numpy()
    ok = bool(
        np.all(vm[1:] >= f.vm_min_pu[1:] - VM_TOL_PU)
        and np.all(vm[1:] <= f.vm_max_pu[1:] + VM_TOL_PU)
    )
    for table in ("line", "trafo"):
        if not len(ac[table]):
            continue
        limit = (
            ac[table].max_loading_percent.fillna(100.0)
            if "max_loading_percent" in ac[table]
            else 100.0
        )
        loading = ac[f"res_{table}"].loading_percent
        served = ac[table].in_service
        ok = ok and bool(np.all((loading <= limit + LOADING_TOL_PERCENT)[served]))
    ext = ac.res_ext_grid.loc[ac.ext_grid.in_service]
    pq = np.array([float(ext.p_mw.sum()), float(ext.q_mvar.sum())])
    return ok, pq, float(np.max(np.abs(vm - vm_linear)))


def network_flexibility(
    net: pp.pandapowerNet,
    label: str = "network",
    n_directions: int = 16,
    polygon_sides: int = 16,
    vm_min_pu: float = 0.95,
    vm_max_pu: float = 1.05,
    voltage_margin_pu: float = 0.0,
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
    """
    tick = time.perf_counter()
    lp = feeder_lp(net, label, polygon_sides, vm_min_pu, vm_max_pu, voltage_margin_pu)
    build_s = time.perf_counter() - tick

    def record():
        p, q = lp.dispatch()
        return p.copy(), q.copy(), lp.network.vm_pu()[0].copy()

    sweep = sweep_directions(
        lp.model, lp.p_import_mw, lp.q_import_mvar, n_directions, record=record
    )
    tick = time.perf_counter()
    pts = sweep.points_mw_mvar
    vertex_dir = np.array(
        [int(np.argmin(np.linalg.norm(pts - v, axis=1))) for v in sweep.inner.vertices],
        dtype=int,
    )
    feasible, ac_pq, errors = [], [], []
    for k in vertex_dir:
        ok, pq, err = _ac_vertex(net, lp, *sweep.solutions[k])
        feasible.append(ok)
        ac_pq.append(pq)
        errors.append(err)
    own = [(float(net[t].at[i, "p_mw"]), float(net[t].at[i, "q_mvar"])) for t, i in lp.units]
    base_ok, _, _ = _ac_vertex(
        net,
        lp,
        np.array([p for p, _ in own]),
        np.array([q for _, q in own]),
        np.full(len(lp.feeder.bus_index), np.nan),
    )
    return NetworkFlexibility(
        sweep=sweep,
        vertex_direction=vertex_dir,
        vertex_ac_feasible=np.array(feasible, dtype=bool),
        vertex_ac_mw_mvar=np.array(ac_pq).reshape(-1, 2),
        max_vm_error_pu=float(np.nanmax(errors)) if errors else float("nan"),
        base_ac_feasible=base_ok,
        n_controllable=len(lp.units),
        build_seconds=build_s,
        solver_seconds=sweep.solver_seconds,
        ac_seconds=time.perf_counter() - tick,
    )
