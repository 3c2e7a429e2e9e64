"""TSO-DSO hybrid-managed coordination.

DER send their bids (:func:`stochastic.bids.der_bids`) to the TSO's market; each DSO
sees the bids of its feeder and validates them against its own network
(:func:`stochastic.validation.validate_bids`): per DER and first-stage period the largest up/down
volumes such that any dispatch inside them keeps the feeder within its limits in every
scenario, after the DSO's own need (``shift``: a DER deviation the feeder itself needs,
e.g. a PV export cap against over-voltage), with the reactive power of its PV inverters
set per period for its voltages. The TSO then schedules TER and dispatches
the validated bids with its transmission-only view of the system (feeders as net demand
at their interfaces, no distribution limits). Finally the DSO checks the TSO's dispatch
against its feeder model (:func:`workbench.coordination.common.feeder_check`, for every
model) and reports any residual violation.

Variants: ``hybrid`` (the DSO validates the bids after they reach the TSO) or
``hybrid:prevalidation`` (the DSO publishes limits for every DER's capability before the
DER bid; the DER then bid within them). With bids that offer the full capability, as
:func:`stochastic.bids.der_bids` makes them, both accept the same volumes; they differ in
the messages and rounds of the day. ``priority``: ``dso_first`` or ``tso_first`` when the DSO's
own need and the TSO compete for the same flexibility; ``fairness``: ``proportional`` or
``max_min`` among the DER of a feeder.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import xarray as xr

from cases.study import StudyConfig
from cases.system import IntegratedSystem
from forecasts.generate import ScenarioForecaster
from stochastic.bids import apply_bids, bid_variables, der_bids
from stochastic.extract import extract_two_stage
from stochastic.network import W_SCALE
from stochastic.twostage import DayData, TwoStageOptions, build_two_stage
from stochastic.validation import feeder_rows, root_w_range, validate_bids
from workbench.coordination.common import (
    DayOutcome,
    DaySolve,
    add_scenario_cost,
    run_days,
    shared_slot,
)
from workbench.coordination.messages import Message
from workbench.state import DayState

__all__ = [
    "baseline_net_demand",
    "book_caps_as_curtailment",
    "cap_pv",
    "data_exchange",
    "der_q_max_mvar",
    "dso_needs",
    "dso_own_cost",
    "pv_caps",
    "schedule_days",
]

MODEL = "hybrid"
#: variants of the model (``None``: the model itself)
VARIANTS = (None, "prevalidation")


def baseline_net_demand(
    system: IntegratedSystem, data: DayData, bids: xr.Dataset, feeder: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Net demand of every bus of a feeder with its DER at their bid schedules.

    PV at its available output (scenario by scenario), batteries idle, EV pools at
    their scheduled charging. Returns (scenario, time, bus) [MW], [Mvar].
    """
    p = np.concatenate([data.feeder_root_p_mw[feeder][..., None], data.feeder_p_rhs_mw[feeder]], 2)
    q = np.concatenate(
        [data.feeder_root_q_mvar[feeder][..., None], data.feeder_q_rhs_mvar[feeder]], 2
    )
    p = p.copy()
    sel = (bids.feeder.values == feeder) & (bids.der_type.values != "pv")
    for j in np.flatnonzero(sel):
        # schedule is an injection: net demand falls by it, step by step in its period
        p[..., int(bids.bus.values[j])] -= np.repeat(bids.schedule_mw.values[:, j], k)
    return p, q


def cap_pv(system: IntegratedSystem, data: DayData, cap_mw: np.ndarray) -> DayData:
    """Day data with each PV unit's output capped by the DSO (``cap_mw`` (S, T, pv))."""
    fleet = system.fleet
    if not cap_mw.any():
        return data
    rhs = [x.copy() for x in data.feeder_p_rhs_mw]
    for j, (f, b) in enumerate(zip(fleet.pv.feeder, fleet.pv.bus, strict=True)):
        rhs[int(f)][..., int(b) - 1] += cap_mw[..., j]
    return replace(data, pv_available_mw=data.pv_available_mw - cap_mw, feeder_p_rhs_mw=rhs)


def book_caps_as_curtailment(
    ds: xr.Dataset, cap_mw: np.ndarray, weight: np.ndarray, dt_h: float
) -> xr.Dataset:
    """The DSO's PV export caps (``cap_mw`` (S, T, pv) [MW]) added to the curtailment of
    the results, per scenario and step (``curtailment_mw``, the PV units come first) and in
    expectation (``curtailment_mwh``): energy the PV could give and did not is
    curtailment, whoever capped it."""
    if not cap_mw.any():
        return ds
    per_step = ds["curtailment_mw"].to_numpy().copy()
    per_step[..., : cap_mw.shape[-1]] += cap_mw
    expected = float(weight @ (cap_mw.sum(axis=(1, 2)) * dt_h))
    return ds.assign(
        curtailment_mw=ds["curtailment_mw"].copy(data=per_step),
        curtailment_mwh=ds["curtailment_mwh"].copy(data=float(ds["curtailment_mwh"]) + expected),
    )


def der_q_max_mvar(system: IntegratedSystem, bids: xr.Dataset) -> np.ndarray:
    """(der,) reactive power each DER's inverter can set at any output [Mvar]: PV
    ``sqrt(s^2 - p^2)`` at their rated power, zero for the others."""
    out = np.zeros(bids.sizes["der"])
    pv = bids.der_type.values == "pv"
    fleet = system.fleet
    s, p = fleet.pv.s_mva.to_numpy(float), fleet.pv.p_mw.to_numpy(float)
    out[pv] = np.sqrt(np.maximum(s**2 - p**2, 0.0))
    return out


def pv_caps(bids: xr.Dataset, shift_mw: np.ndarray, data: DayData, k: int) -> np.ndarray:
    """The DSO's PV export caps (scenario, time, pv) [MW]: its own (negative) shift of
    each PV unit, as far as the PV is available."""
    pv = bids.der_type.values == "pv"
    return np.minimum(
        np.repeat(np.maximum(-shift_mw[:, pv], 0.0), k, axis=0)[None], data.pv_available_mw
    )


def data_exchange(
    system: IntegratedSystem, data: DayData, prevalidation: bool = False
) -> list[Message]:
    """The messages of a day under the hybrid model.

    Validation after the bids (four rounds):

    1. DER -> TSO bids: per DER and period the schedule, up and down volumes (3), two
       prices per DER.
    2. TSO -> DSO bids: the bids of the DSO's DER (3 per DER and period).
    3. DSO -> TSO validated limits: the accepted volumes and the DSO's own use (3 per DER
       and period), the reactive power it set at each PV inverter (1 per PV and period)
       and the tap changer's root voltage (1 per interface and period);
       DSO -> TSO forecast: the feeder's net demand at the interface (P and Q per
       scenario and step).
    4. TSO -> DER dispatch and TSO -> DSO dispatch (for the DSO's final check): 1 per DER
       and step each.

    Pre-validation (three rounds): 1. DSO -> DER the published limits (2 per DER and
    period), DSO -> TSO the DSO's own use, inverter reactive powers and root voltages and
    the interface forecast;
    2. DER -> TSO bids within the limits; 3. the dispatch as above.
    """
    s, t, p = data.n_scenarios, data.n_steps, len(data.period)
    n_der, n_if = system.fleet.n_units, len(system.feeders)
    bids = 3 * n_der * p
    forecast = 2 * s * t * n_if
    settings = len(system.fleet.pv) * p + n_if * p  # inverter Q and root voltage per period
    if prevalidation:
        return [
            Message("dso", "der", "validated_limits", 2 * n_der * p, 1),
            Message("dso", "tso", "validated_limits", n_der * p + settings, 1),
            Message("dso", "tso", "forecast", forecast, 1),
            Message("der", "tso", "bids", bids + 2 * n_der, 2),
            Message("tso", "der", "dispatch", n_der * t, 3),
            Message("tso", "dso", "dispatch", n_der * t, 3),
        ]
    return [
        Message("der", "tso", "bids", bids + 2 * n_der, 1),
        Message("tso", "dso", "bids", bids, 2),
        Message("dso", "tso", "validated_limits", 3 * n_der * p + settings, 3),
        Message("dso", "tso", "forecast", forecast, 3),
        Message("tso", "der", "dispatch", n_der * t, 4),
        Message("tso", "dso", "dispatch", n_der * t, 4),
    ]


def dso_needs(
    system: IntegratedSystem,
    data: DayData,
    bids: xr.Dataset,
    options: TwoStageOptions,
    hopt,
    volumes: bool = True,
) -> dict[str, np.ndarray]:
    """Validated up/down volumes and the DSO's own use (``shift``), (period, der), for
    every feeder (:func:`stochastic.validation.validate_bids`); ``volumes=False`` settles
    only the DSO's own use."""
    k = options.steps_per_period
    P, n = bids.sizes["period"], bids.sizes["der"]
    out = {key: np.zeros((P, n)) for key in ("up", "down", "shift", "q")}
    q_max = der_q_max_mvar(system, bids)
    # a PV cap lowers the injection by its full depth only down to the least output
    shift_floor = bids.down_mw.values.copy()
    pv = np.flatnonzero(bids.der_type.values == "pv")
    if len(pv):
        S, T = data.n_scenarios, data.n_steps
        least = data.pv_available_mw.reshape(S, P, T // P, -1).min(axis=(0, 2))
        shift_floor[:, pv] = np.minimum(shift_floor[:, pv], least)
    out["root_dw"] = np.zeros((P, len(system.feeders)))
    period = np.repeat(np.arange(P), k)
    stats = {"binding": 0, "solves": 0, "residual": 0.0}
    storage = _storage(system, data, bids, options)
    for i, feeder in enumerate(system.feeders):
        sel = np.flatnonzero(bids.feeder.values == i)
        if not len(sel):
            continue
        rows = feeder_rows(feeder.arrays, options.polygon_sides, options.voltage_margin_pu)
        base_p, base_q = baseline_net_demand(system, data, bids, i, k)
        v = validate_bids(
            rows,
            base_p,
            base_q,
            period,
            bids.bus.values[sel].astype(int),
            bids.up_mw.values[:, sel],
            bids.down_mw.values[:, sel],
            fairness=hopt.fairness,
            priority=hopt.priority,
            storage={
                key: (value[sel] if key != "period_h" else value) for key, value in storage.items()
            },
            root_range=root_w_range(
                feeder.arrays, options.oltc_range_pu, options.voltage_margin_pu
            ),
            volumes=volumes,
            q_max_mvar=q_max[sel],
            shift_down_max_mw=shift_floor[:, sel],
        )
        out["up"][:, sel], out["down"][:, sel], out["shift"][:, sel] = (
            v.up_mw,
            v.down_mw,
            v.shift_mw,
        )
        out["root_dw"][:, i] = v.root_dw
        out["q"][:, sel] = v.q_mvar
        stats["binding"] += v.binding_rows
        stats["solves"] += v.problems_solved
        stats["residual"] = max(stats["residual"], float(v.residual.max(initial=0.0)))
    return out | stats


def _storage(system, data: DayData, bids: xr.Dataset, options) -> dict:
    """Energy limits of the batteries on the bids' ``der`` axis (``nan`` elsewhere)."""
    n = bids.sizes["der"]
    out = {
        key: np.full(n, np.nan)
        for key in ("e_init_mwh", "e_max_mwh", "e_end_min_mwh", "efficiency")
    }
    bat = np.flatnonzero(bids.der_type.values == "battery")
    fleet = system.fleet
    out["e_init_mwh"][bat] = data.battery_e_init_mwh
    out["e_max_mwh"][bat] = fleet.battery.e_mwh.to_numpy(dtype=float)
    out["e_end_min_mwh"][bat] = data.battery_e_end_min_mwh
    out["efficiency"][bat] = fleet.battery.efficiency.to_numpy(dtype=float)
    return out | {"period_h": options.period_h}


def _hold_roots(solver, tsm, system, root_dw: np.ndarray, k: int) -> None:
    """Each feeder root at the voltage its DSO set by the tap changer, period by period."""
    for f, feeder in enumerate(system.feeders):
        w = tsm.feeders[f].w
        S, T, nb = w.shape
        value = W_SCALE * (feeder.arrays.v_root_pu**2 + np.repeat(root_dw[:, f], k))  # (T,)
        index = np.arange(S * T).reshape(S, T) * nb  # bus 0 of every (scenario, step)
        values = np.broadcast_to(value, (S, T))
        solver.set_element_bounds(w, index, values, values)


def dso_own_cost(bids, val, cap_mwh: np.ndarray, options: TwoStageOptions) -> np.ndarray:
    """The DSO's own use of flexibility per scenario [EUR]: PV caps at the curtailment
    price, battery and EV shifts at the activation price."""
    kinds = bids.der_type.values
    other = np.abs(val["shift"][:, kinds != "pv"]).sum() * options.period_h
    return cap_mwh * options.pv_curtailment_eur_per_mwh + other * options.der_activation_eur_per_mwh


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
    """Schedule consecutive days with the hybrid model (see the module docstring).

    Parameters as for :func:`workbench.coordination.tso_managed.schedule_days`, and
    ``variant``: ``None`` (validation after the bids) or ``"prevalidation"``.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown hybrid variant {variant!r}; available: {VARIANTS[1:]}")
    name = MODEL if variant is None else f"{MODEL}:{variant}"
    options = TwoStageOptions.from_study(study)
    hopt = study.coordination.hybrid
    slot = shared_slot(
        (name, "tso"),
        system,
        study,
        lambda view: build_two_stage(system, view, options, feeder_limits=False),
        threads,
        study.model.lp_method,
    )
    k = options.steps_per_period

    def solve_day(day: dt.date, scenarios, data: DayData) -> DaySolve:
        bids = der_bids(system, data, options)
        val = dso_needs(system, data, bids, options, hopt)
        cap = pv_caps(bids, val["shift"], data, k)
        view = cap_pv(system, data, cap)
        build_s = slot.load(view)
        tsm, solver = slot.tsm, slot.solver
        apply_bids(solver, tsm, bids, val["up"], val["down"], val["shift"], reactive=False)
        _hold_roots(solver, tsm, system, val["root_dw"], k)
        # PV inverters at the reactive power their DSO set
        pv = bids.der_type.values == "pv"
        q = np.repeat(val["q"][:, pv], k, axis=0)[None]
        solver.fix(
            tsm.parts["der"].vars["pv_q_mvar"], np.broadcast_to(q, (view.n_scenarios, *q.shape[1:]))
        )
        result = solver.solve()
        ds = extract_two_stage(tsm, view, result)
        ds["build_seconds"] = ds["build_seconds"].copy(data=build_s)
        ds = ds.assign(bid_variables(bids))
        cap_mwh = cap.sum(axis=(1, 2)) * options.dt_h
        dso = dso_own_cost(bids, val, cap_mwh, options)
        w = view.weight
        ds = add_scenario_cost(ds, {"dso/second/own_use": dso}, w, options.alpha, options.beta)
        ds["dso_own_cost_eur"] = xr.DataArray(
            float(w @ dso),
            attrs={"units": "EUR", "long_name": "expected cost of the DSOs' own use of DER"},
        )
        ds = book_caps_as_curtailment(ds, cap, w, options.dt_h)
        per = ("period", "der")
        ds = ds.assign(
            der_validated_up_mw=(per, val["up"], {"units": "MW", "long_name": "validated up"}),
            der_validated_down_mw=(
                per,
                val["down"],
                {"units": "MW", "long_name": "validated down"},
            ),
            root_vm_pu=(
                ("period", "interface"),
                np.sqrt(
                    np.array([f.arrays.v_root_pu**2 for f in system.feeders])[None, :]
                    + val["root_dw"]
                ),
                {"units": "pu", "long_name": "feeder root voltage set by the DSO's tap changer"},
            ),
            dso_shift_mw=(
                per,
                val["shift"],
                {"units": "MW", "long_name": "DSO's own use of DER (injection change)"},
            ),
            dso_q_mvar=(
                per,
                val["q"],
                {"units": "Mvar", "long_name": "reactive power the DSO set at each inverter"},
            ),
            validation_binding_rows=((), val["binding"], {"units": "1"}),
            validation_residual=(
                (),
                val["residual"],
                {"long_name": "feeder limit excess no flexibility removes (pu^2 or MVA)"},
            ),
        )
        messages = data_exchange(system, data, variant == "prevalidation")
        return DaySolve(ds, tsm, view, messages, 1 + val["solves"])

    return run_days(name, system, study, days, seed, forecaster, state, solve_day)
