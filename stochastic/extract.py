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
from stochastic.linear import VarArray
from stochastic.risk import cvar
from stochastic.solve import SolveResult
from stochastic.twostage import DayData, TwoStageModel

__all__ = [
    "branch_names",
    "bus_names",
    "cost_book",
    "der_names",
    "element_coords",
    "extract_two_stage",
    "first_stage_values",
    "first_stage_vars",
    "gen_names",
    "scenario_summary",
]


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


def element_coords(system: IntegratedSystem) -> dict[str, tuple[str, list[str]]]:
    """What users select elements by, as non-index coordinates.

    ``gen_bus`` and ``gen_technology`` of every TER unit, ``der_bus`` and ``der_feeder``
    of every DER, ``bus_network`` (``transmission`` or the feeder) of every bus and
    ``interface_bus`` (the transmission bus a feeder hangs from). Bus names are those of
    the ``bus`` dimension.
    """
    t = system.transmission
    tbus = [f"transmission/{n}" for n in t.bus_name]
    fleet = system.fleet
    der_feeder, der_bus = [], []
    for table in (fleet.pv, fleet.battery, fleet.ev):
        for feeder, bus in zip(table.feeder, table.bus, strict=True):
            f = system.feeders[int(feeder)]
            der_feeder.append(f.name)
            der_bus.append(f"{f.name}/{int(f.arrays.bus_index[int(bus)])}")
    bus_network = ["transmission"] * len(tbus)
    for f in system.feeders:
        bus_network += [f.name] * len(f.arrays.bus_index)
    return {
        "gen_bus": ("gen", [tbus[int(b)] for b in t.gen_bus]),
        "gen_technology": ("gen", [str(x) for x in t.gen_technology]),
        "der_bus": ("der", der_bus),
        "der_feeder": ("der", der_feeder),
        "bus_network": ("bus", bus_network),
        "interface_bus": ("interface", [tbus[int(f.bus)] for f in system.feeders]),
    }


def _da(values, dims, units: str, long_name: str) -> xr.DataArray:
    return xr.DataArray(
        np.asarray(values, dtype=float), dims=dims, attrs={"units": units, "long_name": long_name}
    )


def first_stage_values(tsm: TwoStageModel) -> xr.DataArray:
    """Every first-stage (nonanticipative) variable of a solved model, by Pyomo name.

    Returns
    -------
    xarray.DataArray
        (first_stage,), names such as ``ter.schedule_mw[12]``; :func:`fix_first_stage`
        fixes a model of the same system and options at these values.
    """
    names, values = [], []
    for part in tsm.parts.values():
        for key in part.first_stage:
            var = part.vars[key]
            names += [f"{part.name}.{key}[{i}]" for i in range(var.size)]
            values.append(var.values().ravel())
    return xr.DataArray(
        np.concatenate(values) if values else np.zeros(0),
        dims=("first_stage",),
        coords={"first_stage": names},
        attrs={"units": "MW", "long_name": "first-stage decisions by model variable"},
    )


def first_stage_vars(tsm: TwoStageModel) -> dict[str, VarArray]:
    """The first-stage variable arrays of a model, keyed ``<part>.<name>``."""
    return {
        f"{part.name}.{key}": part.vars[key]
        for part in tsm.parts.values()
        for key in part.first_stage
    }


def scenario_summary(tsm: TwoStageModel) -> dict[str, np.ndarray]:
    """Per-scenario totals of a solved model, each (scenario,).

    Returns
    -------
    dict
        ``cost_eur`` (first stage + recourse) [EUR], ``load_shed_mwh``,
        ``curtailment_mwh`` (PV inside and beyond its bid, fixed units) and ``spill_mwh``
        (everything spilled outside a bid, TER included) [MWh].
    """
    dt = tsm.options.dt_h
    first = float(pyo.value(tsm.first_stage_cost))

    def energy(part: str, name: str) -> np.ndarray:
        return tsm.var(part, name).values().sum(axis=(1, 2)) * dt

    shed = energy("transmission", "shed_mw")
    for i in range(len(tsm.feeders)):
        shed = shed + energy(f"feeder_{i}", "shed_mw")
    pv_spill = energy("der", "pv_spill_mw")
    fixed_spill = energy("der", "fixed_spill_mw")
    return {
        "cost_eur": first + tsm.risk.cost.values(),
        "load_shed_mwh": shed,
        "curtailment_mwh": energy("der", "pv_curtailment_mw") + pv_spill + fixed_spill,
        "spill_mwh": energy("ter", "spill_mw") + pv_spill + fixed_spill,
    }


def cost_book(tsm: TwoStageModel) -> xr.DataArray:
    """Every cost of the solved model per scenario, by owner, stage and kind [EUR].

    Returns
    -------
    xarray.DataArray
        (scenario, cost_item), items named ``<owner>/<stage>/<kind>`` (owner ``tso``,
        ``dso``, ``der``); first-stage items hold the same value in every scenario, so the
        items of a scenario sum to its total cost.
    """
    S, T = tsm.shape
    values: dict[str, np.ndarray] = {}
    for c in tsm.costs():
        t = c.terms
        x = t.var.values().ravel()[t.col] * t.coef
        if c.stage == "first":
            v = np.full(S, x.sum())
        else:
            v = np.bincount(t.row // T, weights=x, minlength=S)
        owner = c.owner.split("/")[0]
        key = f"{owner}/{c.stage}/{c.kind}"
        values[key] = values.get(key, 0.0) + v
    names = sorted(values)
    return xr.DataArray(
        np.array([values[n] for n in names]).T.reshape(S, len(names)),
        dims=("scenario", "cost_item"),
        coords={"cost_item": names},
        attrs={"units": "EUR", "long_name": "cost per scenario by owner, stage and kind"},
    )


def _der_arrays(tsm: TwoStageModel, data: DayData) -> tuple[np.ndarray, ...]:
    """DER results on one ``der`` dimension (PV, then batteries, then EV): first-stage
    (period, der) offer, energy bid, up and down bids; second-stage (scenario, time, der)
    injection, reactive power, activated up and down, curtailment and battery energy."""
    der = {key: x.values() for key, x in tsm.parts["der"].vars.items()}
    sysm, o = tsm.system, tsm.options
    fleet = sysm.fleet
    S, T = tsm.shape
    k = o.steps_per_period
    npv, nbat, nev = len(fleet.pv), len(fleet.battery), len(fleet.ev)
    w = data.weight
    pv_av = data.pv_available_mw
    pv_offer = np.einsum("s,sph->ph", w, pv_av.reshape(S, o.n_periods, k, npv).mean(axis=2))
    bid_energy = np.concatenate(
        [pv_offer, der["battery_schedule_mw"], der["ev_schedule_mw"]], axis=1
    )
    bid_up = np.concatenate(
        [np.zeros_like(der["pv_flex_down_mw"]), der["battery_flex_up_mw"], der["ev_flex_up_mw"]],
        axis=1,
    )
    # capability offered per period: PV its expected output (curtailable), batteries
    # their range -p .. p, EV chargers their power while plugged in
    ev_plugged = np.einsum(
        "s,sph->ph", w, data.ev_p_max_mw.reshape(S, o.n_periods, k, nev).mean(axis=2)
    )
    offer = np.concatenate(
        [
            pv_offer,
            np.broadcast_to(2.0 * fleet.battery.p_mw.to_numpy(dtype=float), (len(pv_offer), nbat)),
            np.minimum(ev_plugged, fleet.ev.p_mw.to_numpy(dtype=float)),
        ],
        axis=1,
    )
    bid_dn = np.concatenate(
        [der["pv_flex_down_mw"], der["battery_flex_down_mw"], der["ev_flex_down_mw"]], axis=1
    )
    der_p = np.concatenate(
        [
            pv_av - der["pv_curtailment_mw"] - der["pv_spill_mw"],
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
    curt = np.concatenate(
        [der["pv_curtailment_mw"] + der["pv_spill_mw"], np.zeros((S, T, nbat + nev))], axis=2
    )
    soc = np.concatenate(
        [np.full((S, T, npv), np.nan), der["battery_energy_mwh"], np.full((S, T, nev), np.nan)],
        axis=2,
    )
    der_q = np.concatenate([der["pv_q_mvar"], np.zeros((S, T, nbat + nev))], axis=2)

    return offer, bid_energy, bid_up, bid_dn, der_p, der_q, act_up, act_dn, curt, soc


def _network_arrays(tsm: TwoStageModel, data: DayData) -> tuple[np.ndarray, ...]:
    """Bus (scenario, time, bus) demand, shedding and linear voltages; branch (scenario,
    time, branch) flows and loadings; interface (scenario, time, interface) P and Q."""
    sysm = tsm.system
    S, T = tsm.shape
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

    return (
        np.concatenate(demand, axis=2),
        np.concatenate(shed, axis=2),
        np.concatenate(vm, axis=2),
        np.concatenate(flows, axis=2),
        np.concatenate(qflows, axis=2),
        np.concatenate(loading, axis=2),
        np.stack(ip, axis=-1) if ip else np.zeros((S, T, 0)),
        np.stack(iq, axis=-1) if iq else np.zeros((S, T, 0)),
    )


def _per_feeder(x: np.ndarray, tsm: TwoStageModel) -> np.ndarray:
    """A (scenario, time, fixed) array of the fixed-profile units summed per feeder
    (scenario, time, interface)."""
    fixed = tsm.system.fleet.fixed
    out = np.zeros((*x.shape[:2], len(tsm.system.feeders)))
    if len(fixed):
        np.add.at(out, (slice(None), slice(None), fixed.feeder.to_numpy(dtype=int)), x)
    return out


def _add_totals(
    ds: xr.Dataset, tsm: TwoStageModel, data: DayData, result: SolveResult
) -> xr.Dataset:
    """Expected energies, the cost book, first-stage values, times and sizes of a day."""
    ter = {key: x.values() for key, x in tsm.parts["ter"].vars.items()}
    der = {key: x.values() for key, x in tsm.parts["der"].vars.items()}
    w = data.weight
    dt = tsm.options.dt_h
    ds["load_shed_mwh"] = _da(
        float(w @ ds.load_shed_mw.sum(("time", "bus")).values * dt),
        (),
        "MWh",
        "expected energy not served",
    )
    fixed_spill = der["fixed_spill_mw"].sum(axis=(1, 2)) * dt
    ds["curtailment_mwh"] = _da(
        float(w @ (ds.curtailment_mw.sum(("time", "der")).values * dt + fixed_spill)),
        (),
        "MWh",
        "expected energy curtailed or spilled: PV (inside and beyond its bid) and fixed units",
    )
    ds["fixed_spill_mw"] = _da(
        _per_feeder(der["fixed_spill_mw"], tsm),
        ("scenario", "time", "interface"),
        "MW",
        "spill of the feeder's fixed-profile units (wind, other)",
    )
    ds["spill_mwh"] = _da(
        float(
            w
            @ (
                ter["spill_mw"].sum(axis=(1, 2)) * dt
                + der["pv_spill_mw"].sum(axis=(1, 2)) * dt
                + fixed_spill
            )
        ),
        (),
        "MWh",
        "expected energy spilled outside a bid (TER beyond reserve, PV beyond bid, fixed units)",
    )
    ds["ev_unserved_mwh"] = _da(
        float(w @ der["ev_unserved_mwh"][:, -1, :].sum(axis=1)),
        (),
        "MWh",
        "expected EV energy not delivered by departure",
    )
    book = cost_book(tsm)
    ds["cost_item_eur"] = book
    ds["first_stage_value"] = first_stage_values(tsm)
    ds = ds.assign_coords(
        cost_item=book.cost_item,
        cost_owner=("cost_item", [c.split("/")[0] for c in book.cost_item.values]),
    )
    ds["build_seconds"] = _da(tsm.build_seconds, (), "s", "Pyomo model build time")
    ds["translate_seconds"] = _da(
        result.translate_seconds, (), "s", "time handing the model to HiGHS"
    )
    ds["solver_seconds"] = _da(result.solver_seconds, (), "s", "time inside HiGHS")
    ds["solver_mip_gap"] = _da(
        result.mip_gap, (), "1", "relative MIP gap of the solve (0: an LP, or proven optimal)"
    )
    ds["n_variables"] = _da(result.n_variables, (), "1", "LP columns")
    ds["n_constraints"] = _da(result.n_constraints, (), "1", "LP rows")
    ds["solver_status"] = xr.DataArray(result.status.value, attrs={"long_name": "solver status"})
    return ds


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
    sysm = tsm.system
    fleet = sysm.fleet
    npv, nbat, nev = len(fleet.pv), len(fleet.battery), len(fleet.ev)
    alpha = float(tsm.risk.alpha.values()[0])
    beta = float(tsm.risk.beta.values()[0])
    ds = xr.Dataset(
        {
            **_cost_variables(tsm, data, result, alpha),
            **_ter_variables(tsm),
            **_der_variables(tsm, data),
            **_network_variables(tsm, data),
        },
        coords={
            "scenario": np.arange(tsm.shape[0]),
            "time": data.time,
            "period": data.period,
            "edge": ["start", "end"],
            "gen": gen_names(sysm),
            "der": der_names(sysm),
            "der_type": ("der", ["pv"] * npv + ["battery"] * nbat + ["ev"] * nev),
            "interface": [f.name for f in sysm.feeders],
            "bus": bus_names(sysm),
            "branch": branch_names(sysm),
            **element_coords(sysm),
        },
    )
    ds = _add_totals(ds, tsm, data, result)
    ds.attrs.update({"alpha": alpha, "beta": beta})
    return ds


def _cost_variables(tsm: TwoStageModel, data: DayData, result: SolveResult, alpha: float) -> dict:
    """Objective, first-stage, scenario, expected and CVaR costs, scenario weights."""
    w = data.weight
    second = tsm.risk.cost.values()
    first = float(pyo.value(tsm.first_stage_cost))
    total = first + second
    return {
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
    }


def _ter_variables(tsm: TwoStageModel) -> dict:
    """TER schedule, reserves, balancing, redispatch and fuel cost."""
    ter = {k: x.values() for k, x in tsm.parts["ter"].vars.items()}
    follow = tsm.options.schedule_following
    traj = ter["knot_mw"] if follow == "ramp" else ter["schedule_mw"]
    ter_p = ter["p_mw"]
    sd = ("scenario", "time")
    return {
        "ter_schedule_mw": _da(
            ter["schedule_mw"],
            ("period", "gen"),
            "MW",
            "TER day-ahead schedule: mean of the followed trajectory in the period",
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
        "ter_knot_mw": _da(
            np.einsum("pek,kg->peg", tsm.grid.edge_weights(follow), traj),
            ("period", "edge", "gen"),
            "MW",
            f"TER trajectory at the start and end of each period ({follow})",
        ),
        "ter_reference_mw": _da(
            tsm.grid.reference_weights(follow) @ traj,
            ("time", "gen"),
            "MW",
            f"TER trajectory as followed at each step ({follow})",
        ),
        "ter_spill_mw": _da(
            ter["spill_mw"], (*sd, "gen"), "MW", "TER downward redispatch beyond the reserve"
        ),
        "ter_emergency_up_mw": _da(
            ter["emergency_up_mw"],
            (*sd, "gen"),
            "MW",
            "TER upward redispatch beyond the reserve",
        ),
        "ter_fuel_cost_eur_per_h": _da(
            ter["fuel_eur_per_h"], (*sd, "gen"), "EUR/h", "TER fuel cost of the realised output"
        ),
        **_commitment_variables(ter),
    }


def _commitment_variables(ter: dict) -> dict:
    """On/off and start-ups of the TER (none without unit commitment)."""
    if "commitment" not in ter:
        return {}
    return {
        "ter_commitment": _da(
            ter["commitment"], ("period", "gen"), "1", "TER on (1) or off (0) in the period"
        ),
        "ter_startup": _da(
            ter["startup"], ("period", "gen"), "1", "TER start-up at the start of the period"
        ),
    }


def _der_variables(tsm: TwoStageModel, data: DayData) -> dict:
    """DER offers, accepted bids, dispatch, activations, curtailment, battery energy."""
    (
        offer,
        bid_energy,
        bid_up,
        bid_dn,
        der_p,
        der_q,
        act_up,
        act_dn,
        curt,
        soc,
    ) = _der_arrays(tsm, data)
    sd = ("scenario", "time")
    return {
        "der_bid_energy_mw": _da(
            bid_energy,
            ("period", "der"),
            "MW",
            "DER energy bid accepted (PV: expected forecast offered)",
        ),
        "der_bid_up_mw": _da(bid_up, ("period", "der"), "MW", "DER upward flexibility accepted"),
        "der_offer_mw": _da(
            offer,
            ("period", "der"),
            "MW",
            "flexible range offered by each DER (PV: expected output; battery: 2 x rating; "
            "EV: expected power of the plugged-in EVs)",
        ),
        "der_bid_down_mw": _da(
            bid_dn,
            ("period", "der"),
            "MW",
            "DER downward flexibility accepted (PV: curtailment)",
        ),
        "der_p_mw": _da(der_p, (*sd, "der"), "MW", "DER active power injection"),
        "der_q_mvar": _da(der_q, (*sd, "der"), "Mvar", "DER reactive power injection"),
        "der_activated_up_mw": _da(act_up, (*sd, "der"), "MW", "DER upward flexibility activated"),
        "der_activated_down_mw": _da(
            act_dn, (*sd, "der"), "MW", "DER downward flexibility activated"
        ),
        "curtailment_mw": _da(curt, (*sd, "der"), "MW", "PV curtailment"),
        "battery_energy_mwh": _da(
            soc, (*sd, "der"), "MWh", "battery energy at the end of the step"
        ),
    }


def _network_variables(tsm: TwoStageModel, data: DayData) -> dict:
    """Interface flows, demand and shedding, linear voltages, flows and loadings."""
    demand, shed, vm, flows, qflows, loading, ip, iq = _network_arrays(tsm, data)
    sd = ("scenario", "time")
    return {
        "interface_p_mw": _da(
            ip,
            (*sd, "interface"),
            "MW",
            "active power from transmission into the feeder",
        ),
        "interface_q_mvar": _da(
            iq,
            (*sd, "interface"),
            "Mvar",
            "reactive power into the feeder (linear model)",
        ),
        "demand_mw": _da(demand, (*sd, "bus"), "MW", "load demand before shedding"),
        "load_shed_mw": _da(shed, (*sd, "bus"), "MW", "load shed"),
        "vm_pu_linear": _da(
            vm,
            (*sd, "bus"),
            "pu",
            "voltage magnitude of the linear model (LinDistFlow; nan on DC buses)",
        ),
        "p_mw_linear": _da(
            flows,
            (*sd, "branch"),
            "MW",
            "branch active power flow of the linear model",
        ),
        "q_mvar_linear": _da(
            qflows,
            (*sd, "branch"),
            "Mvar",
            "branch reactive power flow of the linear model",
        ),
        "loading_percent_linear": _da(
            loading,
            (*sd, "branch"),
            "percent",
            "branch loading of the linear model",
        ),
    }
