"""P-Q regions and cost curves at a feeder's interface for any coordination model.

Only the DSO-managed models carry their offered regions in the results. For every model,
:func:`interface_flexibility` computes after the run what the feeder could do around the
model's schedule, per first-stage period, at the period's **expected state** (the
probability-weighted mean over the scenarios and the mean over the period's steps of the
feeder's net demands and of the DER dispatch, as the results hold them):

* the **P-Q region**: the interface powers (P, Q) the DER of the feeder can reach by
  moving away from the model's dispatch within their device limits, inside the feeder's
  LinDistFlow limits (the study's voltage margin, polygon sides and tap-changer range),
  by the direction sweep of :func:`stochastic.aggregation.period_model` (inner polygon);
* the **cost curve**: the least cost of the DER redispatch that moves the interface P by
  ``dP`` from the schedule (Q free), every MW moved for an hour paid at its activation
  price (PV: ``pv_curtailment_eur_per_mwh``; batteries and EV chargers:
  ``der_activation_eur_per_mwh``).

Device limits: PV between 0 and its available power (dispatch plus curtailment) with the
inverter's reactive range; batteries within their rated power (their energy is left
out: a per-period region, as the DSO-managed offers); EV pools between not charging and
the larger of their dispatched charging and the charging their bids offered (the
plugged-in power of the scenarios is not in the results). Load shedding and the spill of
fixed-profile units stay as scheduled.

Every constraint is linear in the data and the dispatch jointly, so the mean of feasible
scenario states is a feasible state of the mean data: the model's expected interface
point lies in its region whenever the dispatch kept the feeder within its limits. A
period where it did not has no region (``None``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyomo.environ as pyo
import xarray as xr

from cases.system import IntegratedSystem
from stochastic.aggregation import period_model
from stochastic.extract import branch_names
from stochastic.flexibility import Polygon, sweep_directions
from stochastic.linear import add_rows, add_var, terms
from stochastic.solve import InfeasibleError, PersistentSolver, SolveStatus
from stochastic.twostage import TwoStageOptions
from stochastic.validation import FeederRows, feeder_rows, root_w_range
from workbench.results import OutputError

__all__ = ["FeederFlexibility", "interface_flexibility"]


@dataclass(frozen=True)
class FeederFlexibility:
    """Regions and cost curves of one feeder's interface, one per first-stage period.

    Attributes
    ----------
    interface : str
    period_start : ndarray of timedelta64 (period,)
        Offsets of the periods from the day's midnight.
    p_mw, q_mvar : ndarray (period,) [MW], [Mvar]
        The model's expected interface import (positive into the feeder).
    regions : list of Polygon or None
        Inner polygon of the reachable import (P, Q) [MW, Mvar] per period; ``None``
        where the model's dispatch breaks the feeder's limits (no region around it).
    points_p_mw, points_q_mvar : ndarray (period, scenario * step) [MW], [Mvar]
        The model's interface import of every scenario and step of each period.
    cost_dp_mw : ndarray (period, n) [MW]
        Import changes from the schedule the cost curve is evaluated at (``nan`` padded).
    cost_eur_per_h : ndarray (period, n) [EUR/h]
        Least redispatch cost of each change.
    """

    interface: str
    period_start: np.ndarray
    p_mw: np.ndarray
    q_mvar: np.ndarray
    regions: list[Polygon | None]
    points_p_mw: np.ndarray
    points_q_mvar: np.ndarray
    cost_dp_mw: np.ndarray
    cost_eur_per_h: np.ndarray


def _feeder_index(system: IntegratedSystem, interface: str) -> int:
    names = [f.name for f in system.feeders]
    if interface not in names:
        raise OutputError(f"interface '{interface}' unknown; available: {', '.join(names)}")
    return names.index(interface)


def _need(d: xr.Dataset, names: tuple[str, ...]) -> None:
    missing = [n for n in names if n not in d]
    if missing:
        raise OutputError(
            f"the results lack {', '.join(missing)}; write them with `workbench run` of "
            "this version"
        )


def net_demand(flows: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """Net demand of every feeder bus from the branch flows of a radial feeder.

    Parameters
    ----------
    flows : ndarray (..., branch) [MW] or [Mvar]
        Flow of branch ``j - 1`` into bus ``j`` (LinDistFlow, lossless).
    parent : ndarray of int (bus,)
        Position of each bus's parent (``-1`` for the root).

    Returns
    -------
    ndarray (..., bus)
        ``d_j = P_(j-1) - sum of the flows into j's children``; 0 at the root.
    """
    n = len(parent)
    children = np.zeros((n - 1, n))  # branch c - 1 leaves bus parent[c]
    for c in range(1, n):
        children[c - 1, parent[c]] = 1.0
    out = -flows @ children
    out[..., 1:] += flows
    out[..., 0] = 0.0
    return out


def _device_limits(
    d: xr.Dataset, system: IntegratedSystem, ders: list[str], step_period: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower and upper injection limits (scenario, time, der) [MW] and reactive ranges
    (der,) [Mvar] of the feeder's DER (see the module's description)."""
    fleet = system.fleet
    kind = d["der_type"].sel(der=ders).values.astype(str)
    x = d["der_p_mw"].sel(der=ders).transpose("scenario", "time", "der").to_numpy()
    lb, ub = x.copy(), x.copy()
    pv = kind == "pv"
    avail = x + np.nan_to_num(
        d["curtailment_mw"].sel(der=ders).transpose("scenario", "time", "der").to_numpy()
    )
    lb[..., pv], ub[..., pv] = 0.0, avail[..., pv]
    rating = pd.concat(
        [fleet.pv.set_index("name").p_mw, fleet.battery.set_index("name").p_mw]
    ).reindex(ders)
    bat = kind == "battery"
    lb[..., bat] = -rating.to_numpy()[bat]
    ub[..., bat] = rating.to_numpy()[bat]
    ev = kind == "ev"
    if ev.any():
        sel = [n for n, e in zip(ders, ev, strict=True) if e]
        offered = (d["der_bid_schedule_mw"] - d["der_offered_down_mw"]).sel(der=sel)
        deepest = offered.transpose("period", "der").to_numpy()[step_period]  # (time, ev)
        lb[..., ev] = np.minimum(x[..., ev], deepest[None])
        ub[..., ev] = np.maximum(x[..., ev], 0.0)
    pv_table = fleet.pv.set_index("name")
    s = pv_table.s_mva.reindex(ders).to_numpy(dtype=float)
    p = pv_table.p_mw.reindex(ders).to_numpy(dtype=float)
    q_max = np.where(pv, np.sqrt(np.maximum(np.nan_to_num(s) ** 2 - np.nan_to_num(p) ** 2, 0)), 0)
    return lb, np.maximum(ub, lb), q_max


def _cost_curve(
    model_args: tuple, prices: np.ndarray, dp_range: tuple[float, float], n_points: int
) -> tuple[np.ndarray, np.ndarray]:
    """Least redispatch cost [EUR/h] at ``n_points`` import changes over ``dp_range``."""
    m, dp, _, x, _ = period_model(*model_args)
    u = x.size
    a = add_var(m, "moved_mw", (u,), ("der",), 0.0)
    idx = np.arange(u)
    for sign, name in ((1.0, "moved_up"), (-1.0, "moved_down")):
        add_rows(m, name, (u,), ("der",), [terms(a, idx, idx), terms(x, idx, idx, -sign)], 0.0)
    m.target_mw = pyo.Param(mutable=True, initialize=0.0)
    m.at_target = pyo.Constraint(expr=dp == m.target_mw)
    m.redispatch_cost = pyo.Objective(
        expr=sum(float(c) * v for c, v in zip(prices, a.data, strict=True)), sense=pyo.minimize
    )
    solver = PersistentSolver(m)
    lo, hi = dp_range
    grid = np.unique(np.round(np.r_[np.linspace(lo, hi, n_points), 0.0], 9)) + 0.0
    cost = np.full(len(grid), np.nan)
    for i, value in enumerate(grid):
        m.target_mw.set_value(float(value))
        solver.update_parameters()
        res = solver.solve(raise_on_failure=False)
        if res.status is SolveStatus.OPTIMAL:
            cost[i] = res.objective
    return grid, cost


@dataclass
class _FeederView:
    """One feeder of a model-day as the regions see it: per scenario, step and bus the
    net demand (PV at q = 0), the DER's dispatch and limits, the interface flows."""

    w: np.ndarray  # (scenario,) [1]
    step_period: np.ndarray  # (time,) period of each step
    rows: FeederRows
    root: tuple[float, float]  # squared root voltage range [pu²]
    der_bus: np.ndarray
    x: np.ndarray  # (scenario, time, der) [MW]
    q: np.ndarray  # (scenario, time, der) [Mvar]
    lb: np.ndarray
    ub: np.ndarray
    q_max: np.ndarray  # (der,) [Mvar]
    d_p: np.ndarray  # (scenario, time, bus) [MW]
    d_q: np.ndarray  # (scenario, time, bus) [Mvar]
    ip: np.ndarray  # (scenario, time) [MW]
    iq: np.ndarray  # (scenario, time) [Mvar]
    prices: np.ndarray  # (der,) [EUR/MWh]

    def mean(self, v: np.ndarray, p: int) -> np.ndarray:
        """Expected value over the scenarios, mean over the period's steps."""
        return np.tensordot(self.w, v[:, self.step_period == p], axes=1).mean(axis=0)


def _feeder_view(
    ds: xr.Dataset, system: IntegratedSystem, options: TwoStageOptions, interface: str
) -> _FeederView:
    """The arrays of :class:`_FeederView` from the results of one model-day."""
    fi = _feeder_index(system, interface)
    feeder = system.feeders[fi]
    arrays = feeder.arrays
    w = ds["weight"].to_numpy()
    n_p, n_t = ds.sizes["period"], ds.sizes["time"]
    k = n_t // n_p
    step_period = np.repeat(np.arange(n_p), k)
    names = [b for b in branch_names(system) if b.startswith(f"{interface}/")]
    sd = ("scenario", "time", "branch")
    flows_p = ds["p_mw_linear"].sel(branch=names).transpose(*sd).to_numpy()
    flows_q = ds["q_mvar_linear"].sel(branch=names).transpose(*sd).to_numpy()
    if not np.isfinite(flows_p).all() or not np.isfinite(flows_q).all():
        raise OutputError(
            f"the results lack the linear flows of feeder '{interface}' (p_mw_linear, "
            "q_mvar_linear); write them with `workbench run` of this version"
        )
    ders = [str(n) for n in ds.der.values if str(n).startswith(f"{interface}/")]
    der_bus = np.array(
        [arrays.position(int(str(n).rsplit("/", 1)[1])) for n in ds.der_bus.sel(der=ders).values]
    )
    sdd = ("scenario", "time", "der")
    x = ds["der_p_mw"].sel(der=ders).transpose(*sdd).to_numpy()
    q = ds["der_q_mvar"].sel(der=ders).transpose(*sdd).to_numpy()
    lb, ub, q_max = _device_limits(ds, system, ders, step_period)
    pv = q_max > 0
    d_p = net_demand(flows_p, arrays.parent)
    # the PV inverters' reactive power moves with the region: their base is q = 0
    q_pv = np.zeros_like(d_p)
    np.add.at(q_pv, (slice(None), slice(None), der_bus[pv]), q[..., pv])
    d_q = net_demand(flows_q, arrays.parent) + q_pv
    ip = ds["interface_p_mw"].sel(interface=interface).transpose("scenario", "time").to_numpy()
    iq = ds["interface_q_mvar"].sel(interface=interface).transpose("scenario", "time").to_numpy()
    kinds = ds["der_type"].sel(der=ders).values.astype(str)
    prices = np.where(
        kinds == "pv", options.pv_curtailment_eur_per_mwh, options.der_activation_eur_per_mwh
    )
    return _FeederView(
        w=w,
        step_period=step_period,
        rows=feeder_rows(arrays, options.polygon_sides, options.voltage_margin_pu),
        root=root_w_range(arrays, options.oltc_range_pu, options.voltage_margin_pu),
        der_bus=der_bus,
        x=x,
        q=q,
        lb=lb,
        ub=ub,
        q_max=q_max,
        d_p=d_p,
        d_q=d_q,
        ip=ip,
        iq=iq,
        prices=prices,
    )


def _period_flexibility(
    f: _FeederView, p: int, n_directions: int, n_cost_points: int
) -> tuple[Polygon | None, float, float, np.ndarray, np.ndarray]:
    """One period's region (None where its sweep is infeasible), expected interface
    import [MW, Mvar] and cost curve (import change [MW], cost [EUR/h], NaN-padded to
    ``n_cost_points + 1``)."""
    xp = f.mean(f.x, p)
    base = (
        f.rows,
        f.mean(f.d_p, p)[None, None],
        f.mean(f.d_q, p)[None, None],
        f.der_bus,
        np.maximum(f.mean(f.ub, p) - xp, 0.0)[None, None],
        np.maximum(xp - f.mean(f.lb, p), 0.0)[None, None],
        f.q_max,
        f.root,
    )
    ip = float(f.mean(f.ip[..., None], p)[0])
    iq = float(f.mean(f.iq[..., None], p)[0])
    pv = f.q_max > 0
    q0 = iq + float(f.mean(f.q[..., pv], p).sum())  # import with PV at q = 0
    m, dp, dq, _, _ = period_model(*base)
    nan = np.full(n_cost_points + 1, np.nan)
    try:
        sweep = sweep_directions(m, dp, dq, n_directions)
    except InfeasibleError:
        return None, ip, iq, nan, nan.copy()
    region = Polygon(sweep.inner.vertices + np.array([ip, q0]))
    lo, hi = sweep.inner.vertices[:, 0].min(), sweep.inner.vertices[:, 0].max()
    grid, cost = _cost_curve(base, f.prices, (lo, hi), n_cost_points)
    pad = n_cost_points + 1 - len(grid)
    return region, ip, iq, np.r_[grid, np.full(pad, np.nan)], np.r_[cost, np.full(pad, np.nan)]


def interface_flexibility(
    ds: xr.Dataset,
    system: IntegratedSystem,
    options: TwoStageOptions,
    interface: str,
    n_directions: int = 16,
    n_cost_points: int = 9,
) -> FeederFlexibility:
    """Regions and cost curves of one model-day at one feeder's interface.

    Parameters
    ----------
    ds : xarray.Dataset
        One model-day of the results in the internal layout (``to_internal``, one model
        and day selected), with a schedule.
    system : IntegratedSystem
        The study's system (:func:`workbench.rebuild.results_system`).
    options : TwoStageOptions
        The study's options (limits' margin, polygon sides, tap range, prices).
    interface : str
        The feeder.
    n_directions : int
        Directions of each region's sweep (>= 3).
    n_cost_points : int
        Import changes per cost curve, evenly over the region's P range (and 0).

    Returns
    -------
    FeederFlexibility
    """
    _need(
        ds,
        (
            "weight",
            "p_mw_linear",
            "q_mvar_linear",
            "der_p_mw",
            "der_q_mvar",
            "curtailment_mw",
            "interface_p_mw",
            "interface_q_mvar",
            "der_bid_schedule_mw",
            "der_offered_down_mw",
        ),
    )
    f = _feeder_view(ds, system, options, interface)
    n_p = ds.sizes["period"]
    per = [_period_flexibility(f, p, n_directions, n_cost_points) for p in range(n_p)]
    regions, p_mw, q_mvar, grids, costs = (list(c) for c in zip(*per, strict=True))
    sel = [f.step_period == p for p in range(n_p)]
    return FeederFlexibility(
        interface=interface,
        period_start=pd.to_timedelta(ds.period.values).to_numpy(),
        p_mw=np.array(p_mw),
        q_mvar=np.array(q_mvar),
        regions=regions,
        points_p_mw=np.array([f.ip[:, s].ravel() for s in sel]),
        points_q_mvar=np.array([f.iq[:, s].ravel() for s in sel]),
        cost_dp_mw=np.array(grids),
        cost_eur_per_h=np.array(costs),
    )
