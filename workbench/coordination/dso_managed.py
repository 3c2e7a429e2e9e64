"""DSO-managed coordination.

DER bid to their DSO. Each DSO aggregates the bids of its feeder into one offer at its
interface: the aggregated devices (one PV, one battery, one EV pool per feeder, sums of
the bids; :func:`stochastic.aggregation.aggregate_fleet`) and, per period, the range of
interface power its network lets them move (:func:`stochastic.aggregation.regions`: the
P-Q region deliverable in every scenario, from a direction sweep over the detailed
feeder model). The TSO schedules TER and dispatches the aggregated offers with its
transmission-only view, inside the ranges where the network cuts into what the devices
could do. Each DSO then disaggregates the TSO's interface set-points to its individual
DER at least cost within its network limits (the TSO's day-ahead TER decisions fixed);
a set-point it cannot meet is a shortfall, priced at the spill price and reported.

The aggregated battery carries the feeder's storage energy across the periods (the time
coupling a per-period region lacks); ``region_overstatement_mwh`` measures how much
energy per-period regions alone would promise beyond what the batteries hold.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pyomo.environ as pyo
import xarray as xr

from cases.study import StudyConfig
from cases.system import IntegratedSystem
from forecasts.generate import ScenarioForecaster
from stochastic.aggregation import aggregate_fleet, regions
from stochastic.bids import apply_bids, bid_variables, der_bids
from stochastic.extract import extract_two_stage
from stochastic.flexibility import p_range_excess_mw
from stochastic.linear import add_param, add_rows, add_var, terms
from stochastic.twostage import DayData, TwoStageOptions, build_two_stage
from stochastic.validation import feeder_rows, root_w_range
from workbench.ac_check import ac_check
from workbench.ac_correction import feeder_errors
from workbench.coordination.common import (
    DayOutcome,
    DaySolve,
    add_scenario_cost,
    run_days,
    shared_slot,
)
from workbench.coordination.hybrid import (
    baseline_net_demand,
    book_caps_as_curtailment,
    cap_pv,
    dso_needs,
    dso_own_cost,
    pv_caps,
)
from workbench.coordination.messages import Message
from workbench.state import DayState

__all__ = ["data_exchange", "interface_ranges", "schedule_days", "storage_overstatement"]

MODEL = "dso_managed"
#: variants of the model (``None``: the model itself)
VARIANTS = (None, "local_market", "target")
#: "no limit" for a range the network does not cut [MW]
FREE_MW = 1e6


def interface_ranges(
    system: IntegratedSystem,
    data: DayData,
    bids: xr.Dataset,
    options: TwoStageOptions,
    n_dir: int,
    sweep: bool = True,
) -> dict:
    """Per feeder and period the interface import range the network allows.

    ``sweep=False``: the baseline imports only, no region (every range free).

    Returns ``lo``/``hi`` (period, feeder) [MW] relative to the baseline import, ``cut``
    (whether the network is tighter than the devices), ``base`` (scenario, time, feeder)
    [MW], the regions and the number of sweep solves.
    """
    k = options.steps_per_period
    P, F = options.n_periods, len(system.feeders)
    S, T = data.n_scenarios, data.n_steps
    period = np.repeat(np.arange(P), k)
    lo = np.full((P, F), -FREE_MW)
    hi = np.full((P, F), FREE_MW)
    base = np.zeros((S, T, F))
    kinds = bids.der_type.values
    fleet = system.fleet
    q_pv = np.sqrt(
        np.maximum(fleet.pv.s_mva.to_numpy(float) ** 2 - fleet.pv.p_mw.to_numpy(float) ** 2, 0)
    )
    out = {"regions": [], "solves": 0, "seconds": 0.0}
    for f, feeder in enumerate(system.feeders):
        bp, bq = baseline_net_demand(system, data, bids, f, k)
        base[..., f] = bp.sum(axis=-1)
        sel = np.flatnonzero(bids.feeder.values == f)
        if not len(sel) or not sweep:
            out["regions"].append(None)
            continue
        up = np.broadcast_to(bids.up_mw.values[period][None, :, sel], (S, T, len(sel))).copy()
        down = np.broadcast_to(bids.down_mw.values[period][None, :, sel], (S, T, len(sel))).copy()
        pv = np.flatnonzero(kinds[sel] == "pv")
        pv_units = np.flatnonzero(fleet.pv.feeder.to_numpy() == f)
        down[..., pv] = np.minimum(down[..., pv], data.pv_available_mw[..., pv_units])
        q_max = np.zeros(len(sel))
        q_max[pv] = q_pv[pv_units]
        rows = feeder_rows(feeder.arrays, options.polygon_sides, options.voltage_margin_pu)
        reg = regions(
            rows,
            bp,
            bq,
            period,
            bids.bus.values[sel].astype(int),
            up,
            down,
            q_max,
            n_dir,
            root_w_range(feeder.arrays, options.oltc_range_pu, options.voltage_margin_pu),
        )
        out["regions"].append(reg)
        out["solves"] += reg.problems_solved
        out["seconds"] += reg.solver_seconds
        net = reg.p_range_mw()  # (P, 2), import sign
        # what the devices alone could do (robust over the period's scenario-steps)
        dev_lo = -np.array([up[:, period == p].sum(axis=-1).min() for p in range(P)])
        dev_hi = np.array([down[:, period == p].sum(axis=-1).min() for p in range(P)])
        tol = 1e-6
        # an empty region (nan) cuts nothing: the set-point is disaggregated as far as
        # the network allows, the rest a priced shortfall
        cut_lo = np.nan_to_num(net[:, 0], nan=-np.inf) > dev_lo + tol
        cut_hi = np.nan_to_num(net[:, 1], nan=np.inf) < dev_hi - tol
        lo[cut_lo, f] = net[cut_lo, 0]
        hi[cut_hi, f] = net[cut_hi, 1]
    empty = np.array(
        [r.empty if r is not None else np.zeros(P, dtype=bool) for r in out["regions"]]
    ).T.reshape(P, F)
    return out | {
        "lo": lo,
        "hi": hi,
        "base": base,
        "cut": (lo > -FREE_MW) | (hi < FREE_MW),
        "empty": empty,
    }


def storage_overstatement(
    system: IntegratedSystem, data: DayData, options: TwoStageOptions
) -> np.ndarray:
    """Energy per-period regions promise from the batteries beyond what they hold [MWh].

    A per-period region offers each feeder's battery power in every period: asked in the
    same direction all day, the batteries would deliver ``P * 24 h`` up (discharging) and
    down (charging), while their energy allows ``(e0 - e_end_min) * eff`` up and
    ``(e_max - e0) / eff`` down. Returns (feeder, direction) with direction (up, down).
    """
    fleet = system.fleet
    out = np.zeros((len(system.feeders), 2))
    hours = options.horizon_hours
    for f in range(len(system.feeders)):
        sel = np.flatnonzero(fleet.battery.feeder.to_numpy() == f)
        if not len(sel):
            continue
        b = fleet.battery.iloc[sel]
        p = b.p_mw.to_numpy(float)
        eff = b.efficiency.to_numpy(float)
        e0 = data.battery_e_init_mwh[sel]
        up = np.minimum(p * hours, (e0 - data.battery_e_end_min_mwh[sel]).clip(0) * eff)
        down = np.minimum(p * hours, (b.e_mwh.to_numpy(float) - e0).clip(0) / eff)
        out[f] = [(p * hours).sum() - up.sum(), (p * hours).sum() - down.sum()]
    return out


def data_exchange(
    system: IntegratedSystem, data: DayData, variant: str | None = None
) -> list[Message]:
    """The messages of a day under the DSO-managed model (four rounds).

    1. DER -> DSO bids: 3 per DER and period, 2 prices per DER.
    2. DSO -> TSO flexibility offer, per feeder: the aggregated PV availability (1) and EV
       envelopes (4) per scenario and step, the aggregated battery (5), the aggregated
       bids (3 per device kind and period) and the import range per period (2; not in
       ``target``); DSO -> TSO forecast: the baseline import per scenario and step.
       ``local_market``: DSO -> DER the DSO's own activation (1 per DER and period).
    3. TSO -> DSO interface set-point (``target``: the target) per scenario and step.
    4. DSO -> DER dispatch (1 per DER and step); DSO -> TSO the shortfall per scenario
       and step.
    """
    s, t, p = data.n_scenarios, data.n_steps, len(data.period)
    n_der, n_if = system.fleet.n_units, len(system.feeders)
    ranges = 0 if variant == "target" else 2 * p
    out = [
        Message("der", "dso", "bids", 3 * n_der * p + 2 * n_der, 1),
        Message("dso", "tso", "flexibility_offer", n_if * (5 * s * t + 5 + 9 * p + ranges), 2),
        Message("dso", "tso", "forecast", n_if * s * t, 2),
        Message("tso", "dso", "interface_setpoint", n_if * s * t, 3),
        Message("dso", "der", "dispatch", n_der * t, 4),
        Message("dso", "tso", "shortfall", n_if * s * t, 4),
    ]
    if variant == "local_market":
        out.append(Message("dso", "der", "local_activation", n_der * p, 2))
    return out


def _range_rows(tsm, F: int, S: int, T: int, options: TwoStageOptions) -> None:
    """Each feeder's interface import inside the range its network allows, in the TSO's
    view: a soft bound (mutable), its excess priced at the spill price, so that a range the
    aggregated devices cannot keep in some scenario leaves the TSO a (costly) way out
    rather than no schedule."""
    m = tsm.model
    m.dso_offer = pyo.Block()
    idx = np.arange(S * T).reshape(S, T)
    slacks = []
    dims = ("scenario", "time")
    for f in range(F):
        var = tsm.parts[f"feeder_{f}"].vars["interface_p_mw"]
        sub = pyo.Block()
        m.dso_offer.add_component(f"feeder_{f}", sub)
        lo = add_param(sub, "lo", np.full((S, T), -FREE_MW), dims)
        hi = add_param(sub, "hi", np.full((S, T), FREE_MW), dims)
        excess = add_var(sub, "excess", (S, T), dims, 0.0)
        add_rows(sub, "above_lo", (S, T), dims, [terms(var, idx, idx), terms(excess, idx, idx)], lo)
        add_rows(
            sub,
            "below_hi",
            (S, T),
            dims,
            [terms(var, idx, idx), terms(excess, idx, idx, -1.0)],
            None,
            hi,
        )
        slacks.append(excess)
    _price_slacks(tsm, slacks, options, "objective_with_ranges")


def _price_slacks(tsm, slacks: list, options: TwoStageOptions, name: str) -> None:
    """Replace the model's objective by one that also prices every (scenario, time)
    slack of ``slacks`` [MW] at the spill price, weighted by its scenario."""
    S, T = tsm.shape
    w = tsm.risk.weight.data
    price = options.spill_eur_per_mwh * options.dt_h
    penalty = [w[s] * price * v.data[s * T + t] for v in slacks for s in range(S) for t in range(T)]
    m = tsm.model
    expr = m.objective.expr
    m.objective.deactivate()
    m.add_component(name, pyo.Objective(expr=expr + sum(penalty)))


def _range_excess_mwh(tsm, F: int, S: int, T: int, weight: np.ndarray, dt_h: float) -> float:
    """Expected energy by which the TSO's set-points left the DSOs' ranges [MWh]."""
    total = 0.0
    for f in range(F):
        sub = tsm.model.dso_offer.component(f"feeder_{f}")
        x = np.array([pyo.value(sub.excess[i]) for i in range(S * T)]).reshape(S, T)
        total += float(weight @ x.sum(axis=1)) * dt_h
    return total


def _region_excess_mwh(
    ranges: dict, setpoint: np.ndarray, options: TwoStageOptions, weight: np.ndarray
) -> float:
    """Expected energy by which the set-points' import changes (scenario, time, feeder)
    left the P range of their period's region [MWh] (feeders without a region: 0)."""
    k = options.steps_per_period
    change = setpoint - ranges["base"]
    total = 0.0
    for f, reg in enumerate(ranges["regions"]):
        if reg is None:
            continue
        for p, sweep in enumerate(reg.sweeps):
            region_p = sweep.inner.vertices[:, 0] if sweep is not None else np.array([np.nan])
            excess = p_range_excess_mw(region_p, change[:, p * k : (p + 1) * k, f])
            total += float(weight @ np.nan_to_num(excess).sum(axis=1)) * options.dt_h
    return total


def _set(component, values: np.ndarray) -> None:
    for i, v in enumerate(np.asarray(values, dtype=float).ravel().tolist()):
        component[i].set_value(v)


def _set_ranges(tsm, ranges: dict, k: int) -> None:
    """The TSO's view: each feeder's import inside the range its network allows."""
    for f in range(ranges["base"].shape[-1]):
        blk = tsm.model.dso_offer.component(f"feeder_{f}")
        base = ranges["base"][..., f]
        lo = np.repeat(ranges["lo"][:, f], k)[None]
        hi = np.repeat(ranges["hi"][:, f], k)[None]
        _set(blk.component("lo"), np.where(lo > -FREE_MW, base + lo, -FREE_MW))
        _set(blk.component("hi"), np.where(hi < FREE_MW, base + hi, FREE_MW))


def _set_setpoints(tsm, setpoint: np.ndarray) -> None:
    """The DSOs' disaggregation: each feeder's (soft) import set-point from the TSO."""
    for f in range(setpoint.shape[-1]):
        _set(
            tsm.model.dso_setpoint.component(f"feeder_{f}").component("setpoint"),
            setpoint[..., f],
        )


def _offer_variables(ranges: dict, n_periods: int, n_dir: int) -> dict:
    """The DSOs' offers as result variables: P-Q region vertices, import ranges,
    baseline imports."""
    F = ranges["base"].shape[-1]
    poly = np.full((2, n_periods, F, n_dir), np.nan)
    for f, reg in enumerate(ranges["regions"]):
        for p, sweep in enumerate(reg.sweeps if reg is not None else []):
            if sweep is None:
                continue
            v = sweep.inner.vertices
            poly[:, p, f, : len(v)] = v.T
    vdims = ("period", "interface", "vertex")
    per = ("period", "interface")
    return {
        "offer_region_p_mw": (
            vdims,
            poly[0],
            {"units": "MW", "long_name": "P-Q region vertices: import change (nan: pad)"},
        ),
        "offer_region_q_mvar": (
            vdims,
            poly[1],
            {"units": "Mvar", "long_name": "P-Q region vertices: reactive import change"},
        ),
        "offer_region_empty": (
            per,
            ranges["empty"],
            {"long_name": "no import is deliverable in every scenario of the period"},
        ),
        "interface_baseline_mw": (
            ("scenario", "time", "interface"),
            ranges["base"],
            {"units": "MW", "long_name": "feeder import with the DER at their bids"},
        ),
        "offer_range_lo_mw": (
            per,
            np.where(ranges["lo"] > -FREE_MW, ranges["lo"], np.nan),
            {"units": "MW", "long_name": "lowest import change the network allows (nan: not cut)"},
        ),
        "offer_range_hi_mw": (
            per,
            np.where(ranges["hi"] < FREE_MW, ranges["hi"], np.nan),
            {
                "units": "MW",
                "long_name": "highest import change the network allows (nan: not cut)",
            },
        ),
    }


def schedule_days(
    system: IntegratedSystem,
    study: StudyConfig,
    days: list[dt.date],
    seed: int,
    threads: int = 1,
    forecaster: ScenarioForecaster | None = None,
    state: DayState | None = None,
    variant: str | None = None,
) -> list[DayOutcome]:
    """Schedule consecutive days with the DSO-managed model (see the module docstring).

    Parameters as for :func:`workbench.coordination.tso_managed.schedule_days`, and
    ``variant``: ``None``, ``"local_market"`` or ``"target"``.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown DSO-managed variant {variant!r}; available: {VARIANTS[1:]}")
    name = MODEL if variant is None else f"{MODEL}:{variant}"
    options = TwoStageOptions.from_study(study)
    F = len(system.feeders)
    n_dir = study.coordination.dso.directions
    k = options.steps_per_period

    view: dict = {}  # the TSO's view of the system: the aggregated fleet (same every day)

    def tso_view(agg_data: DayData):
        tsm = build_two_stage(view["system"], agg_data, options, feeder_limits=False)
        _range_rows(tsm, F, agg_data.n_scenarios, agg_data.n_steps, options)
        return tsm

    def dso_model(data: DayData):
        tsm = build_two_stage(system, data, options)
        _shortfall(tsm, F, data.n_scenarios, data.n_steps, options)
        return tsm

    method = study.model.lp_method
    tso_slot = shared_slot((name, "tso"), system, study, tso_view, threads, method)
    dso_slot = shared_slot((name, "dso"), system, study, dso_model, threads, method)

    def solve_day(day: dt.date, scenarios, data: DayData) -> DaySolve:
        """The day, then ``ac_correction_iterations`` rounds with the feeder losses of the
        AC power flow of the last disaggregation added to the roots' demand: offers,
        baselines and set-points carry the losses."""
        rounds = study.model.ac_correction_iterations
        if not rounds:
            return solve_once(data)
        added = [np.zeros((data.n_scenarios, data.n_steps)) for _ in system.feeders]
        inet = system.integrated_net()
        everyone, steps = list(range(data.n_scenarios)), list(range(data.n_steps))
        history, n_solves = [], 0
        for _ in range(rounds + 1):
            lossy = replace(
                data,
                feeder_root_p_mw=[x + a for x, a in zip(data.feeder_root_p_mw, added, strict=True)],
            )
            out = solve_once(lossy)
            n_solves += out.problems_solved
            ac = ac_check(system, lossy, out.schedule, everyone, steps, inet=inet, base_case=False)
            _, losses, _ = feeder_errors(system, out.schedule, ac, added)
            gap = sum(
                float(
                    data.weight
                    @ np.abs(
                        np.nan_to_num(
                            (ac["interface_p_mw_ac"] - out.schedule["interface_p_mw"])
                            .isel(interface=f)
                            .transpose("scenario", "time")
                            .to_numpy()
                        )
                    ).sum(axis=1)
                )
                * options.dt_h
                for f in range(len(system.feeders))
            )
            history.append(gap)
            added = losses
        ds = out.schedule
        ds["ac_correction_interface_error_mwh"] = xr.DataArray(
            history,
            dims="correction_round",
            attrs={
                "units": "MWh",
                "long_name": "expected |AC - linear| feeder import energy after each solve "
                "(first: without losses)",
            },
        )
        return replace(out, problems_solved=n_solves)

    def solve_once(data: DayData) -> DaySolve:
        own = None
        if variant == "local_market":  # the DSO's own needs first, at its own cost
            own = _local_market(system, data, options, study.coordination.hybrid)
            data = own["data"]
        bids = der_bids(system, data, options) if own is None else own["bids"]
        ranges = interface_ranges(system, data, bids, options, n_dir, variant != "target")
        # the TSO: TER and the aggregated offers inside the network's ranges
        view["system"], agg_data = aggregate_fleet(system, data)
        build_s = tso_slot.load(agg_data, lambda t: _set_ranges(t, ranges, k))
        tso = tso_slot.tsm
        agg_bids = der_bids(view["system"], agg_data, options)
        if own is not None:  # the storage schedules the local market moved
            agg_bids = _aggregate_storage_bids(bids, agg_bids)
        apply_bids(tso_slot.solver, tso, agg_bids, reactive=False)
        tso_result = tso_slot.solver.solve()
        setpoint = _setpoints(tso, F)
        # each DSO: its DER meet the set-points at least cost, the TER day-ahead fixed
        build_s += dso_slot.load(data, lambda t: _set_setpoints(t, setpoint))
        dso = dso_slot.tsm
        apply_bids(dso_slot.solver, dso, bids)
        for name in tso.parts["ter"].first_stage:
            dso_slot.solver.fix(dso.var("ter", name), tso.var("ter", name).values())
        result = dso_slot.solver.solve()
        ds = _day_results(
            system, data, options, (tso, tso_result), (dso, result), bids, ranges, own, n_dir
        )
        ds["build_seconds"] = ds["build_seconds"].copy(data=build_s)
        solves = ranges["solves"] + 2 + (own["solves"] if own is not None else 0)
        return DaySolve(ds, dso, data, data_exchange(system, data, variant), solves)

    return run_days(name, system, study, days, seed, forecaster, state, solve_day)


def _shortfall(tsm, F: int, S: int, T: int, options: TwoStageOptions) -> None:
    """Soft interface set-points for the DSO's disaggregation, the miss priced."""
    m = tsm.model
    m.dso_setpoint = pyo.Block()
    idx = np.arange(S * T).reshape(S, T)
    slacks = []
    for f in range(F):
        sub = pyo.Block()
        m.dso_setpoint.add_component(f"feeder_{f}", sub)
        sp = add_param(sub, "setpoint", np.zeros((S, T)), ("scenario", "time"))
        up = add_var(sub, "short_up", (S, T), ("scenario", "time"), 0.0)
        dn = add_var(sub, "short_down", (S, T), ("scenario", "time"), 0.0)
        var = tsm.parts[f"feeder_{f}"].vars["interface_p_mw"]
        add_rows(
            sub,
            "meet",
            (S, T),
            ("scenario", "time"),
            [terms(var, idx, idx), terms(up, idx, idx), terms(dn, idx, idx, -1.0)],
            sp,
            sp,
        )
        slacks.extend((up, dn))
    _price_slacks(tsm, slacks, options, "objective_with_setpoints")


def _shortfall_values(tsm, F: int, S: int, T: int) -> np.ndarray:
    """|interface - set-point| (scenario, time, feeder) [MW] after the solve."""
    out = np.zeros((F, S, T))
    for f in range(F):
        sub = tsm.model.dso_setpoint.component(f"feeder_{f}")
        up = np.array([pyo.value(sub.short_up[i]) for i in range(S * T)]).reshape(S, T)
        dn = np.array([pyo.value(sub.short_down[i]) for i in range(S * T)]).reshape(S, T)
        out[f] = up + dn
    return out.transpose(1, 2, 0)


def _local_market(system: IntegratedSystem, data: DayData, options: TwoStageOptions, hopt) -> dict:
    """The DSO's local market, cleared before it aggregates its offer.

    The least DER deviation from the bids that keeps each feeder within its limits in every
    scenario (:func:`workbench.coordination.hybrid.dso_needs`, the DSO's need only): PV
    export caps, battery and EV schedule shifts. Returns the day data with the PV capped,
    the bids that remain (schedules moved by the shifts, volumes reduced by what the
    shifts used), the shifts, the caps and the DSO's cost per scenario [EUR].
    """
    k = options.steps_per_period
    bids = der_bids(system, data, options)
    need = dso_needs(system, data, bids, options, hopt, volumes=False)
    shift = need["shift"]
    cap = pv_caps(bids, shift, data, k)
    capped = cap_pv(system, data, cap)
    rest = der_bids(system, capped, options)
    storage = rest.der_type.values != "pv"
    moved = np.where(storage[None, :], shift, 0.0)
    rest["schedule_mw"] = rest.schedule_mw + moved
    rest["up_mw"] = (rest.up_mw - moved).clip(min=0.0)
    rest["down_mw"] = (rest.down_mw + moved).clip(min=0.0)
    cap_mwh = cap.sum(axis=(1, 2)) * options.dt_h
    return {
        "data": capped,
        "bids": rest,
        "shift": shift,
        "cap_mw": cap,
        "cap_mwh": cap_mwh,
        "cost_eur": dso_own_cost(bids, need, cap_mwh, options),
        "solves": need["solves"],
    }


def _local_market_variables(own: dict, weight: np.ndarray) -> dict:
    """The local market's outcome as result variables."""
    return {
        "dso_shift_mw": (
            ("period", "der"),
            own["shift"],
            {"units": "MW", "long_name": "DSO's own use of DER (injection change)"},
        ),
        "dso_own_cost_eur": (
            (),
            float(weight @ own["cost_eur"]),
            {"units": "EUR", "long_name": "expected cost of the DSOs' own use of DER"},
        ),
    }


def _aggregate_storage_bids(bids: xr.Dataset, agg_bids: xr.Dataset) -> xr.Dataset:
    """The aggregated bids of the TSO's view with each feeder's battery and EV bids the
    sums of its units' bids (schedules moved by a local market included). The PV bids
    stay those of the aggregated unit (the period maximum of the sum, not the sum of
    the maxima)."""
    out = agg_bids.copy(deep=True)
    for j in range(agg_bids.sizes["der"]):
        kind = agg_bids.der_type.values[j]
        if kind == "pv":
            continue
        sel = (bids.der_type.values == kind) & (bids.feeder.values == agg_bids.feeder.values[j])
        for name in ("schedule_mw", "up_mw", "down_mw"):
            out[name][:, j] = bids[name].values[:, sel].sum(axis=1)
    return out


def _setpoints(tso, F: int) -> np.ndarray:
    """The TSO's interface set-points (scenario, time, feeder) [MW]."""
    return np.stack(
        [tso.parts[f"feeder_{f}"].vars["interface_p_mw"].values() for f in range(F)], axis=-1
    )


def _day_results(
    system: IntegratedSystem,
    data: DayData,
    options: TwoStageOptions,
    tso_solve: tuple,
    dso_solve: tuple,
    bids: xr.Dataset,
    ranges: dict,
    own: dict | None,
    n_dir: int,
) -> xr.Dataset:
    """A DSO-managed day as results: the DSOs' disaggregation (``dso_solve``: model and
    solve result) with the missed set-points and any local market priced per scenario,
    the offers, and the TSO's view (``tso_solve``)."""
    tso, tso_result = tso_solve
    dso, result = dso_solve
    F = len(system.feeders)
    ds = extract_two_stage(dso, data, result)
    ds["solver_seconds"] = ds["solver_seconds"].copy(
        data=float(ds["solver_seconds"]) + tso_result.solver_seconds + ranges["seconds"]
    )
    ds["translate_seconds"] = ds["translate_seconds"].copy(
        data=float(ds["translate_seconds"]) + tso_result.translate_seconds
    )
    w = data.weight
    short_mwh = _shortfall_values(dso, F, data.n_scenarios, data.n_steps).sum(axis=(1, 2))
    short_mwh = short_mwh * options.dt_h  # (scenario,)
    extra = {"dso/second/setpoint_shortfall": short_mwh * options.spill_eur_per_mwh}
    # the solve's objective priced the misses as expectation: priced below per scenario
    ds["objective_eur"] = ds.objective_eur.copy(
        data=float(ds.objective_eur) - w @ extra["dso/second/setpoint_shortfall"]
    )
    if own is not None:
        extra["dso/second/own_use"] = own["cost_eur"]
        ds = ds.assign(_local_market_variables(own, w))
        ds = book_caps_as_curtailment(ds, own["cap_mw"], w, options.dt_h)
    ds = add_scenario_cost(ds, extra, w, options.alpha, options.beta)
    ds = ds.assign(bid_variables(bids)).assign(_offer_variables(ranges, options.n_periods, n_dir))
    ds = ds.assign(
        region_storage_overstatement_mwh=(
            ("interface", "direction"),
            storage_overstatement(system, data, options),
            {
                "units": "MWh",
                "long_name": "battery energy per-period regions promise beyond what the "
                "batteries hold (direction: up, down); the aggregated battery of the "
                "offer prevents it",
            },
        ),
        interface_setpoint_mw=(
            ("scenario", "time", "interface"),
            _setpoints(tso, F),
            {"units": "MW", "long_name": "TSO set-point of the feeder import"},
        ),
        interface_shortfall_mwh=(
            (),
            float(w @ short_mwh),
            {"units": "MWh", "long_name": "expected energy by which set-points were missed"},
        ),
        offer_region_exceeded_mwh=(
            (),
            _region_excess_mwh(ranges, _setpoints(tso, F), options, w),
            {
                "units": "MWh",
                "long_name": "expected energy by which the TSO's set-points left the P range "
                "of their period's region (deliverable in every scenario; beyond it only "
                "where a scenario's devices allow more, e.g. more PV to curtail)",
            },
        ),
        offer_range_excess_mwh=(
            (),
            _range_excess_mwh(tso, F, data.n_scenarios, data.n_steps, w, options.dt_h),
            {
                "units": "MWh",
                "long_name": "expected energy by which the TSO's set-points left the "
                "DSOs' import ranges (priced at the spill price in the TSO's view)",
            },
        ),
        tso_view_expected_cost_eur=(
            (),
            float(w @ (tso.risk.cost.values() + float(pyo.value(tso.first_stage_cost)))),
            {"units": "EUR"},
        ),
    )
    return ds
