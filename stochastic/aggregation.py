"""DSO-managed model: a feeder's DER bids aggregated into P-Q regions at its interface.

Per first-stage period the region is the set of interface deviations ``(dP, dQ)`` from
the baseline (DER at their bid schedules) that the feeder can deliver in **every**
scenario and step of the period with a DER dispatch inside the bids and the feeder's
LinDistFlow limits (robust over the scenario set). It is computed by a direction sweep
(:func:`stochastic.flexibility.sweep_directions`): an inner polygon (every point
deliverable) and an outer one (nothing outside deliverable).

Per-period regions treat storage by its power alone: energy couples the periods, so a
TSO asking in every period for what the batteries can deliver only in some is served only
in part; :func:`regions` reports the storage energy the offer may not exceed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from cases.der import BATTERY_COLUMNS, EV_COLUMNS, PV_COLUMNS, DerFleet
from cases.system import IntegratedSystem
from stochastic.flexibility import SweepResult, sweep_directions
from stochastic.linear import add_rows, add_var, terms
from stochastic.solve import InfeasibleError
from stochastic.twostage import DayData
from stochastic.validation import FeederRows

__all__ = ["PeriodRegions", "aggregate_fleet", "period_model", "regions"]


@dataclass(frozen=True)
class PeriodRegions:
    """The P-Q regions of one feeder, one per first-stage period.

    Attributes
    ----------
    sweeps : list of SweepResult or None
        Inner and outer polygons of ``(dP, dQ)`` [MW, Mvar], import sign (positive: more
        drawn from the transmission grid), per period; ``None`` where no interface point
        is deliverable in every scenario (the region is empty).
    problems_solved : int
    solver_seconds : float [s]
    """

    sweeps: list[SweepResult | None]
    problems_solved: int
    solver_seconds: float

    def p_range_mw(self) -> np.ndarray:
        """(period, 2): the smallest and largest ``dP`` of each inner polygon [MW]
        (``nan`` for an empty region)."""
        return np.array(
            [
                [s.inner.vertices[:, 0].min(), s.inner.vertices[:, 0].max()]
                if s is not None
                else [np.nan, np.nan]
                for s in self.sweeps
            ]
        ).reshape(-1, 2)

    @property
    def empty(self) -> np.ndarray:
        """(period,) whether the period's region is empty."""
        return np.array([s is None for s in self.sweeps], dtype=bool)


def period_model(
    rows: FeederRows,
    base_p_mw: np.ndarray,
    base_q_mvar: np.ndarray,
    der_bus: np.ndarray,
    up_mw: np.ndarray,
    down_mw: np.ndarray,
    q_max_mvar: np.ndarray,
    root_range: tuple[float, float] = (0.0, 0.0),
    tol: float = 1e-9,
):
    """LP of one period: a DER dispatch per scenario and step meeting a common deviation.

    Parameters
    ----------
    base_p_mw, base_q_mvar : ndarray (scenario, step, bus)
        Net demand with the DER at their schedules, for the steps of the period.
    der_bus : ndarray of int (der,)
    up_mw, down_mw : ndarray (scenario, step, der)
        How much more / less each DER can inject than its schedule [MW].
    q_max_mvar : ndarray (der,)
        Reactive power each DER can give or take [Mvar].
    root_range : (float, float)
        On-load tap changer: the root's squared voltage may move within this range of its
        set-point in every scenario and step [pu^2]; (0, 0): held.

    Returns
    -------
    (model, dP expression, dQ expression, p VarArray, q VarArray)
    """
    S, K, _ = base_p_mw.shape
    U = len(der_bus)
    m = pyo.ConcreteModel(name="feeder_period_region")
    x = add_var(m, "p_mw", (S, K, U), ("scenario", "step", "der"), -down_mw, up_mw)
    q = add_var(m, "q_mvar", (S, K, U), ("scenario", "step", "der"), -q_max_mvar, q_max_mvar)
    m.dp = pyo.Var(bounds=(None, None))
    m.dq = pyo.Var(bounds=(None, None))
    slack = rows.slack(base_p_mw, base_q_mvar)  # (S, K, row)
    cp = -rows.h_p[:, der_bus]  # (row, der): row change per MW more injection
    cq = -rows.h_q[:, der_bus]
    reach = slack + (
        np.abs(cp) @ np.maximum(up_mw, down_mw).max(axis=(0, 1)) + np.abs(cq) @ q_max_mvar
    )
    reach = reach + np.abs(rows.root_coef) * max(abs(root_range[0]), abs(root_range[1]))
    s_i, k_i, r_i = np.nonzero(reach > -tol)
    n = len(r_i)
    tap = add_var(m, "root_w", (S, K), ("scenario", "step"), root_range[0], root_range[1])
    cols = (s_i * K + k_i)[:, None] * U + np.arange(U)[None, :]
    row = np.arange(n)[:, None]
    add_rows(
        m,
        "limits",
        (n,),
        ("row",),
        [
            terms(x, row, cols, cp[r_i]),
            terms(q, row, cols, cq[r_i]),
            terms(tap, row[:, 0], s_i * K + k_i, rows.root_coef[r_i]),
        ],
        None,
        -slack[s_i, k_i, r_i],
    )
    st = np.arange(S * K)[:, None]
    all_cols = st * U + np.arange(U)[None, :]
    m.dp_rows = pyo.Constraint(
        range(S * K), rule=lambda _, i: m.dp + sum(x.data[c] for c in all_cols[i]) == 0
    )
    m.dq_rows = pyo.Constraint(
        range(S * K), rule=lambda _, i: m.dq + sum(q.data[c] for c in all_cols[i]) == 0
    )
    return m, m.dp, m.dq, x, q


def regions(
    rows: FeederRows,
    base_p_mw: np.ndarray,
    base_q_mvar: np.ndarray,
    step_period: np.ndarray,
    der_bus: np.ndarray,
    up_mw: np.ndarray,
    down_mw: np.ndarray,
    q_max_mvar: np.ndarray,
    n_directions: int = 16,
    root_range: tuple[float, float] = (0.0, 0.0),
) -> PeriodRegions:
    """Robust P-Q region of each period at the feeder's interface.

    Parameters as for :func:`period_model`, over the whole horizon (time instead of
    step), with ``step_period`` (time,) mapping steps to periods.
    """
    sweeps, solves, seconds = [], 0, 0.0
    for p in range(int(step_period.max()) + 1):
        sel = step_period == p
        m, dp, dq, _, _ = period_model(
            rows,
            base_p_mw[:, sel],
            base_q_mvar[:, sel],
            der_bus,
            up_mw[:, sel],
            down_mw[:, sel],
            q_max_mvar,
            root_range,
        )
        try:
            sweep = sweep_directions(m, dp, dq, n_directions)
        except InfeasibleError:  # no dispatch keeps the feeder within limits everywhere
            sweeps.append(None)
            solves += 1
            continue
        sweeps.append(sweep)
        solves += n_directions
        seconds += sweep.solver_seconds
    return PeriodRegions(sweeps, solves, seconds)


def aggregate_fleet(system: IntegratedSystem, data: DayData) -> tuple[IntegratedSystem, DayData]:
    """The DSOs' aggregated offer as the TSO sees it: per feeder one PV, one battery and
    one EV pool (sums of power, energy and envelopes) at the feeder's first bus.

    Exact for the TSO's copper-plate view when a feeder's batteries share their energy to
    power ratio, efficiency and state of charge (sums of proportional batteries) and a
    feeder has one EV pool; a relaxation otherwise. Fixed units stay as they are.
    """
    fleet = system.fleet
    pv, bat, ev = [], [], []
    pv_av, e0, e_end, ev_arr = [], [], [], {k: [] for k in _EV_KEYS}
    rhs = [x.copy() for x in data.feeder_p_rhs_mw]
    for f in range(len(system.feeders)):
        sel = np.flatnonzero(fleet.pv.feeder.to_numpy() == f)
        if len(sel):
            units = fleet.pv.iloc[sel]
            pv.append((f"feeder{f}/pv/aggregate", f, 1, units.p_mw.sum(), units.s_mva.sum()))
            avail = data.pv_available_mw[..., sel]
            for j, b in enumerate(units.bus.to_numpy(dtype=int)):
                rhs[f][..., b - 1] += avail[..., j]  # out of its own bus ...
            rhs[f][..., 0] -= avail.sum(axis=-1)  # ... into the first bus
            pv_av.append(avail.sum(axis=-1))
        sel = np.flatnonzero(fleet.battery.feeder.to_numpy() == f)
        if len(sel):
            u = fleet.battery.iloc[sel]
            e = u.e_mwh.to_numpy(dtype=float)
            share = e / e.sum()
            bat.append(
                (
                    f"feeder{f}/battery/aggregate",
                    f,
                    1,
                    u.p_mw.sum(),
                    e.sum(),
                    float(share @ u.efficiency.to_numpy(dtype=float)),
                    float(share @ u.soc_init.to_numpy(dtype=float)),
                    float(share @ u.soc_end_min.to_numpy(dtype=float)),
                )
            )
            e0.append(data.battery_e_init_mwh[sel].sum())
            e_end.append(data.battery_e_end_min_mwh[sel].sum())
        sel = np.flatnonzero(fleet.ev.feeder.to_numpy() == f)
        if len(sel):
            u = fleet.ev.iloc[sel]
            ev.append(
                (
                    f"feeder{f}/ev/aggregate",
                    f,
                    1,
                    u.p_mw.sum(),
                    int(u.n_chargers.sum()),
                    str(u.charger_type.iloc[0]),
                    float(u.plug_in_probability.mean()),
                    float(u.efficiency.mean()),
                )
            )
            for key in _EV_KEYS:
                ev_arr[key].append(getattr(data, key)[..., sel].sum(axis=-1))
    agg = DerFleet(
        pd.DataFrame(pv, columns=PV_COLUMNS),
        pd.DataFrame(bat, columns=BATTERY_COLUMNS),
        pd.DataFrame(ev, columns=EV_COLUMNS),
        fleet.fixed,
    )
    S, T = data.pv_available_mw.shape[:2]

    def stack(items: list) -> np.ndarray:
        return np.stack(items, axis=-1) if items else np.zeros((S, T, 0))

    out = replace(
        data,
        pv_available_mw=stack(pv_av),
        feeder_p_rhs_mw=rhs,
        battery_e_init_mwh=np.array(e0, dtype=float),
        battery_e_end_min_mwh=np.array(e_end, dtype=float),
        **{key: stack(items) for key, items in ev_arr.items()},
    )
    return replace(system, fleet=agg), out


_EV_KEYS = ("ev_p_max_mw", "ev_e_min_mwh", "ev_e_max_mwh", "ev_p_uncontrolled_mw")
