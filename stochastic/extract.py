"""Extraction of a solved two-stage model into an ``xarray.Dataset``.

Dimensions: ``scenario``, ``time`` (second stage), ``period`` (first stage), ``gen`` (TER),
``der`` (PV, then batteries, then EV), ``interface`` (one per feeder), ``bus`` (every
transmission and feeder bus, named ``transmission/<name>`` or ``<feeder>/<bus>``) and
``branch`` (named ``<network>/<line|trafo|switch>/<index>``). Every variable carries
``units`` and ``long_name``.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo
import xarray as xr

from cases.system import IntegratedSystem
from stochastic.risk import cvar
from stochastic.solve import SolveResult
from stochastic.twostage import DayData, TwoStageModel

__all__ = ["branch_names", "bus_names", "der_names", "extract_two_stage", "gen_names"]


def gen_names(system: IntegratedSystem) -> list[str]:
    t = system.transmission
    return [f"{k}/{e}" for k, e in zip(t.gen_kind, t.gen_element, strict=True)]


def der_names(system: IntegratedSystem) -> list[str]:
    return system.fleet.names()


def bus_names(system: IntegratedSystem) -> list[str]:
    names = [f"transmission/{n}" for n in system.transmission.bus_name]
    for f in system.feeders:
        names += [f"{f.name}/{b}" for b in f.arrays.bus_index]
    return names


def branch_names(system: IntegratedSystem) -> list[str]:
    t = system.transmission
    names = [f"transmission/{k}/{e}" for k, e in zip(t.branch_kind, t.branch_element, strict=True)]
    for f in system.feeders:
        a = f.arrays
        names += [f"{f.name}/{k}/{e}" for k, e in zip(a.branch_kind, a.branch_element, strict=True)]
    return names


def _da(values, dims, units: str, long_name: str) -> xr.DataArray:
    return xr.DataArray(
        np.asarray(values, dtype=float), dims=dims, attrs={"units": units, "long_name": long_name}
    )


def extract_two_stage(tsm: TwoStageModel, data: DayData, result: SolveResult) -> xr.Dataset:
    """Results of a solved model as a Dataset (first stage without a scenario dimension).

    Parameters
    ----------
    tsm : TwoStageModel
        Solved (values loaded).
    data : DayData
        The data it was solved with.
    result : SolveResult
    """
    ter = {k: x.values() for k, x in tsm.parts["ter"].vars.items()}
    der = {k: x.values() for k, x in tsm.parts["der"].vars.items()}
    sysm, o = tsm.system, tsm.options
    fleet = sysm.fleet
    S, T = tsm.shape
    k = o.steps_per_period
    hmap = np.arange(T) // k
    npv, nbat, nev = len(fleet.pv), len(fleet.battery), len(fleet.ev)
    w = data.weight
    dt = o.dt_h

    # ---- DER on one dimension: PV, batteries, EV ----
    pv_av = data.pv_available_mw
    pv_offer = np.einsum("s,sph->ph", w, pv_av.reshape(S, -1, k, npv).mean(axis=2))
    bid_energy = np.concatenate(
        [pv_offer, der["battery_schedule_mw"], der["ev_schedule_mw"]], axis=1
    )
    bid_up = np.concatenate(
        [np.zeros_like(der["pv_flex_down_mw"]), der["battery_flex_up_mw"], der["ev_flex_up_mw"]],
        axis=1,
    )
    bid_dn = np.concatenate(
        [der["pv_flex_down_mw"], der["battery_flex_down_mw"], der["ev_flex_down_mw"]], axis=1
    )
    der_p = np.concatenate(
        [
            pv_av - der["pv_curtailment_mw"],
            der["battery_discharge_mw"] - der["battery_charge_mw"],
            -der["ev_charge_mw"],
        ],
        axis=2,
    )
    act_up = np.concatenate(
        [
            np.zeros_like(der["pv_curtailment_mw"]),
            der["battery_activated_up_mw"],
            der["ev_activated_up_mw"],
        ],
        axis=2,
    )
    act_dn = np.concatenate(
        [der["pv_curtailment_mw"], der["battery_activated_down_mw"], der["ev_activated_down_mw"]],
        axis=2,
    )
    curt = np.concatenate([der["pv_curtailment_mw"], np.zeros((S, T, nbat + nev))], axis=2)
    soc = np.concatenate(
        [np.full((S, T, npv), np.nan), der["battery_energy_mwh"], np.full((S, T, nev), np.nan)],
        axis=2,
    )
    der_q = np.concatenate([der["pv_q_mvar"], np.zeros((S, T, nbat + nev))], axis=2)

    # ---- TER ----
    ter_p = ter["schedule_mw"][hmap][None] + ter["balancing_up_mw"] - ter["balancing_down_mw"]

    # ---- buses and branches ----
    tarr = sysm.transmission
    shed = [tsm.var("transmission", "shed_mw").values()]
    vm = [np.full((S, T, tarr.n_bus), np.nan)]
    flows = [tsm.dc.flows_mw(tarr)]
    qflows = [np.full((S, T, tarr.n_branch), np.nan)]
    loading = [100.0 * np.abs(flows[0]) / tarr.branch_rating_mw]
    ip, iq = [], []
    for fi, (feeder, ldf) in enumerate(zip(sysm.feeders, tsm.feeders, strict=True)):
        a = feeder.arrays
        shed.append(
            np.concatenate(
                [np.zeros((S, T, 1)), tsm.var(f"feeder_{fi}", "shed_mw").values()], axis=2
            )
        )
        vm.append(ldf.vm_pu())
        p, q = ldf.p_mw.values(), ldf.q_mvar.values()
        flows.append(p)
        qflows.append(q)
        loading.append(100.0 * np.hypot(p, q) / a.branch_rating_mva)
        ip.append(tsm.var(f"feeder_{fi}", "interface_p_mw").values())
        iq.append(tsm.var(f"feeder_{fi}", "interface_q_mvar").values())
    demand = [data.transmission_load_mw] + [d for d in data.feeder_load_p_mw]

    second = tsm.risk.cost.values()
    first = float(pyo.value(tsm.first_stage_cost))
    total = first + second
    alpha = float(tsm.risk.alpha.values()[0])
    beta = float(tsm.risk.beta.values()[0])
    sd = ("scenario", "time")
    ds = xr.Dataset(
        {
            "objective_eur": _da(
                result.objective,
                (),
                "EUR",
                "objective: first stage + (1-beta) E[C2] + beta CVaR[C2]",
            ),
            "first_stage_cost_eur": _da(first, (), "EUR", "first-stage (day-ahead) cost"),
            "scenario_cost_eur": _da(total, ("scenario",), "EUR", "total cost per scenario"),
            "expected_cost_eur": _da(float(w @ total), (), "EUR", "expected total cost"),
            "cvar_eur": _da(
                cvar(total, w, alpha),
                (),
                "EUR",
                "CVaR_alpha of the total cost (from the scenario costs)",
            ),
            "weight": _da(w, ("scenario",), "1", "scenario probability"),
            "ter_schedule_mw": _da(
                ter["schedule_mw"], ("period", "gen"), "MW", "TER day-ahead schedule"
            ),
            "ter_reserve_up_mw": _da(
                ter["reserve_up_mw"], ("period", "gen"), "MW", "TER upward reserve"
            ),
            "ter_reserve_down_mw": _da(
                ter["reserve_down_mw"], ("period", "gen"), "MW", "TER downward reserve"
            ),
            "ter_p_mw": _da(ter_p, (*sd, "gen"), "MW", "TER output after balancing"),
            "ter_balancing_up_mw": _da(
                ter["balancing_up_mw"], (*sd, "gen"), "MW", "TER upward balancing"
            ),
            "ter_balancing_down_mw": _da(
                ter["balancing_down_mw"], (*sd, "gen"), "MW", "TER downward balancing"
            ),
            "der_bid_energy_mw": _da(
                bid_energy,
                ("period", "der"),
                "MW",
                "DER energy bid accepted (PV: expected forecast offered)",
            ),
            "der_bid_up_mw": _da(
                bid_up, ("period", "der"), "MW", "DER upward flexibility accepted"
            ),
            "der_bid_down_mw": _da(
                bid_dn,
                ("period", "der"),
                "MW",
                "DER downward flexibility accepted (PV: curtailment)",
            ),
            "der_p_mw": _da(der_p, (*sd, "der"), "MW", "DER active power injection"),
            "der_q_mvar": _da(der_q, (*sd, "der"), "Mvar", "DER reactive power injection"),
            "der_activated_up_mw": _da(
                act_up, (*sd, "der"), "MW", "DER upward flexibility activated"
            ),
            "der_activated_down_mw": _da(
                act_dn, (*sd, "der"), "MW", "DER downward flexibility activated"
            ),
            "curtailment_mw": _da(curt, (*sd, "der"), "MW", "PV curtailment"),
            "battery_energy_mwh": _da(
                soc, (*sd, "der"), "MWh", "battery energy at the end of the step"
            ),
            "interface_p_mw": _da(
                np.stack(ip, axis=-1) if ip else np.zeros((S, T, 0)),
                (*sd, "interface"),
                "MW",
                "active power from transmission into the feeder",
            ),
            "interface_q_mvar": _da(
                np.stack(iq, axis=-1) if iq else np.zeros((S, T, 0)),
                (*sd, "interface"),
                "Mvar",
                "reactive power into the feeder (linear model)",
            ),
            "demand_mw": _da(
                np.concatenate(demand, axis=2), (*sd, "bus"), "MW", "load demand before shedding"
            ),
            "load_shed_mw": _da(np.concatenate(shed, axis=2), (*sd, "bus"), "MW", "load shed"),
            "vm_pu_linear": _da(
                np.concatenate(vm, axis=2),
                (*sd, "bus"),
                "pu",
                "voltage magnitude of the linear model (LinDistFlow; nan on DC buses)",
            ),
            "p_mw_linear": _da(
                np.concatenate(flows, axis=2),
                (*sd, "branch"),
                "MW",
                "branch active power flow of the linear model",
            ),
            "q_mvar_linear": _da(
                np.concatenate(qflows, axis=2),
                (*sd, "branch"),
                "Mvar",
                "branch reactive power flow of the linear model",
            ),
            "loading_percent_linear": _da(
                np.concatenate(loading, axis=2),
                (*sd, "branch"),
                "percent",
                "branch loading of the linear model",
            ),
        },
        coords={
            "scenario": np.arange(S),
            "time": data.time,
            "period": data.period,
            "gen": gen_names(sysm),
            "der": der_names(sysm),
            "der_type": ("der", ["pv"] * npv + ["battery"] * nbat + ["ev"] * nev),
            "interface": [f.name for f in sysm.feeders],
            "bus": bus_names(sysm),
            "branch": branch_names(sysm),
        },
    )
    ds["load_shed_mwh"] = _da(
        float(w @ ds.load_shed_mw.sum(("time", "bus")).values * dt),
        (),
        "MWh",
        "expected energy not served",
    )
    ds["curtailment_mwh"] = _da(
        float(w @ ds.curtailment_mw.sum(("time", "der")).values * dt),
        (),
        "MWh",
        "expected PV energy curtailed",
    )
    ds["build_seconds"] = _da(tsm.build_seconds, (), "s", "Pyomo model build time")
    ds["translate_seconds"] = _da(
        result.translate_seconds, (), "s", "time handing the model to HiGHS"
    )
    ds["solver_seconds"] = _da(result.solver_seconds, (), "s", "time inside HiGHS")
    ds["n_variables"] = _da(result.n_variables, (), "1", "LP columns")
    ds["n_constraints"] = _da(result.n_constraints, (), "1", "LP rows")
    ds["solver_status"] = xr.DataArray(result.status.value, attrs={"long_name": "solver status"})
    ds.attrs.update({"alpha": alpha, "beta": beta})
    return ds
