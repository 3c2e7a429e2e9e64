"""Day-ahead DER bids as data.

Each DER (or its aggregator) bids per first-stage period an energy schedule (its
baseline injection) and the up (more injection) and down (less injection) volumes it can
deliver around it, derived from its capability in the scenario set, with a capacity price
and an activation price per device class:

* PV: baseline its available output (scenario by scenario; the schedule is its
  expectation); down: curtailment up to the most it is available in the period;
* batteries: baseline idle; up and down: the rated power (the energy limits stay with the
  device and bind its activation);
* EV charger pools: baseline the expected uncontrolled charging; up: charging less (down
  to zero), down: charging more (up to the power of the plugged-in EVs and the pool's
  rating).

In the TSO-managed model the TSO accepts and activates them centrally; in the hybrid
model the DSO validates them first (:mod:`stochastic.validation`).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from cases.system import IntegratedSystem
from stochastic.solve import PersistentSolver
from stochastic.twostage import DayData, TwoStageModel, TwoStageOptions

__all__ = ["apply_bids", "bid_variables", "der_bids"]


def _period_stat(x: np.ndarray, k: int, how: str) -> np.ndarray:
    """(S, T, n) -> (P, n): the period mean per scenario, then the max or the mean."""
    s, t, n = x.shape
    mean = x.reshape(s, t // k, k, n).mean(axis=2)
    return mean.max(axis=0) if how == "max" else mean.mean(axis=0)


def der_bids(system: IntegratedSystem, data: DayData, options: TwoStageOptions) -> xr.Dataset:
    """Bids per first-stage period of every DER of ``system`` for the day of ``data``.

    Returns
    -------
    xarray.Dataset
        On (period, der): ``schedule_mw`` (baseline injection, expected), ``up_mw`` and
        ``down_mw`` (offered volumes, >= 0) [MW], ``capacity_price_eur_per_mw_h``,
        ``activation_price_eur_per_mwh``; coordinates ``der_type``, ``feeder``, ``bus``.
    """
    fleet = system.fleet
    k = options.steps_per_period
    w = data.weight
    P = options.n_periods
    pv_avail = data.pv_available_mw
    pv_sched = np.einsum("s,spkn->pn", w, pv_avail.reshape(len(w), P, k, -1)) / k
    pv_down = _period_stat(pv_avail, k, "max") if pv_avail.shape[-1] else np.zeros((P, 0))
    bp = fleet.battery.p_mw.to_numpy(dtype=float)
    ep = fleet.ev.p_mw.to_numpy(dtype=float)
    nev = len(ep)
    if nev:
        unctrl = np.minimum(data.ev_p_uncontrolled_mw, ep)
        ev_charge = np.einsum("s,spkn->pn", w, unctrl.reshape(len(w), P, k, nev)) / k
        plugged = np.minimum(_period_stat(data.ev_p_max_mw, k, "max"), ep)
    else:
        ev_charge = plugged = np.zeros((P, 0))
    schedule = np.concatenate([pv_sched, np.zeros((P, len(bp))), -ev_charge], axis=1)
    up = np.concatenate([np.zeros_like(pv_sched), np.broadcast_to(bp, (P, len(bp))), ev_charge], 1)
    down = np.concatenate(
        [pv_down, np.broadcast_to(bp, (P, len(bp))), np.maximum(plugged - ev_charge, 0.0)], 1
    )
    n_pv, n_bat = len(fleet.pv), len(fleet.battery)
    act = np.r_[
        np.full(n_pv, options.pv_curtailment_eur_per_mwh),
        np.full(n_bat + nev, options.der_activation_eur_per_mwh),
    ]
    kinds = ["pv"] * n_pv + ["battery"] * n_bat + ["ev"] * nev
    units = [fleet.pv, fleet.battery, fleet.ev]
    names = [n for u in units for n in u.name]
    feeder = np.concatenate([u.feeder.to_numpy(dtype=int) for u in units]) if names else []
    bus = np.concatenate([u.bus.to_numpy(dtype=int) for u in units]) if names else []
    dims = ("period", "der")
    ds = xr.Dataset(
        {
            "schedule_mw": (dims, schedule, {"units": "MW", "long_name": "baseline injection"}),
            "up_mw": (dims, up, {"units": "MW", "long_name": "offered: more injection"}),
            "down_mw": (dims, down, {"units": "MW", "long_name": "offered: less injection"}),
            "capacity_price_eur_per_mw_h": (
                ("der",),
                np.full(len(names), options.der_flexibility_eur_per_mw_h),
                {"units": "EUR/(MW h)", "long_name": "price of accepted volume, each way"},
            ),
            "activation_price_eur_per_mwh": (
                ("der",),
                act,
                {"units": "EUR/MWh", "long_name": "price of activated energy"},
            ),
        },
        coords={
            "period": data.period,
            "der": names,
            "der_type": ("der", kinds),
            "feeder": ("der", np.asarray(feeder, dtype=int)),
            "bus": ("der", np.asarray(bus, dtype=int)),
        },
    )
    ds.attrs["description"] = "day-ahead DER bids (injection sign: positive = into the grid)"
    return ds


def apply_bids(
    solver: PersistentSolver,
    tsm: TwoStageModel,
    bids: xr.Dataset,
    up_mw: np.ndarray | None = None,
    down_mw: np.ndarray | None = None,
    shift_mw: np.ndarray | None = None,
    reactive: bool = True,
) -> None:
    """Make the DER of a built model follow their bids.

    The battery and EV schedules are fixed at the bids' schedules (plus a DSO's
    ``shift``); the accepted flexibility is bounded by ``up_mw`` / ``down_mw``
    (period, der) (default: the offered volumes). ``reactive=False`` holds the PV
    inverters' reactive power at zero (active-power bids only).
    """
    up = bids.up_mw.values if up_mw is None else up_mw
    down = bids.down_mw.values if down_mw is None else down_mw
    shift = np.zeros_like(up) if shift_mw is None else shift_mw
    kinds = bids.der_type.values
    der = tsm.parts["der"].vars
    for kind in ("battery", "ev"):
        sel = np.flatnonzero(kinds == kind)
        if not len(sel):
            continue
        solver.fix(der[f"{kind}_schedule_mw"], bids.schedule_mw.values[:, sel] + shift[:, sel])
        solver.set_bounds(der[f"{kind}_flex_up_mw"], 0.0, up[:, sel])
        solver.set_bounds(der[f"{kind}_flex_down_mw"], 0.0, down[:, sel])
    sel = np.flatnonzero(kinds == "pv")
    if len(sel):
        solver.set_bounds(der["pv_flex_down_mw"], 0.0, down[:, sel])
        if not reactive:
            solver.fix(der["pv_q_mvar"], 0.0)


def bid_variables(bids: xr.Dataset) -> dict[str, xr.DataArray]:
    """The bids as result variables on (period, der)."""
    return {
        "der_bid_schedule_mw": bids.schedule_mw.drop_vars(["der_type", "feeder", "bus", "der"]),
        "der_offered_up_mw": bids.up_mw.drop_vars(["der_type", "feeder", "bus", "der"]),
        "der_offered_down_mw": bids.down_mw.drop_vars(["der_type", "feeder", "bus", "der"]),
    }
