"""Ex-post AC validation of a schedule with pandapower's Newton-Raphson power flow.

For each checked (scenario, step) the integrated network (transmission + feeders,
coupled by transformers whose on-load tap changers hold each feeder root at its
set-point) receives the scheduled TER outputs, the remaining (unshed) demand and the DER
dispatch; the transmission ``ext_grid`` balances losses and linearisation errors. The
resulting voltages, branch loadings and interface flows are recorded beside the linear
model's own values, with the violations of voltage and thermal limits.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass

import numpy as np
import pandapower as pp
import xarray as xr
from pandapower.auxiliary import ControllerNotConverged, LoadflowNotConverged, OPFNotConverged

from cases.system import IntegratedNet, IntegratedSystem
from stochastic.extract import bus_names
from stochastic.twostage import DayData

__all__ = ["AcSample", "ac_check", "ac_sample", "voltage_setpoints"]

#: margin inside the voltage limits kept by the AC OPF that sets the TER set-points [pu]
SETPOINT_MARGIN_PU = 0.01

#: tolerance on limits before a value counts as a violation [pu] / [percent]
VM_TOL_PU = 1e-4
LOADING_TOL_PERCENT = 1e-2


@dataclass(frozen=True)
class AcSample:
    """Which (scenario, step) pairs to check: every ``every_n_steps``-th step of the
    first ``max_scenarios`` scenarios (``None``: all)."""

    every_n_steps: int = 1
    max_scenarios: int | None = None

    def scenarios(self, n_scenarios: int) -> list[int]:
        """Scenarios to check."""
        ns = n_scenarios if self.max_scenarios is None else min(self.max_scenarios, n_scenarios)
        return list(range(ns))

    def steps(self, n_steps: int) -> list[int]:
        """Second-stage steps to check."""
        return list(range(0, n_steps, self.every_n_steps))


def ac_sample(every_n_steps: int = 1, max_scenarios: int | None = None) -> AcSample:
    if every_n_steps < 1:
        raise ValueError(f"every_n_steps must be >= 1, got {every_n_steps}")
    return AcSample(every_n_steps, max_scenarios)


def _vm_limits(system: IntegratedSystem, names: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Voltage limits [pu] of the named buses (transmission: case data, feeders: study)."""
    tnet = system.transmission_net
    tb = system.transmission.bus_index
    lo = (
        tnet.bus.min_vm_pu.reindex(tb).fillna(0.9).to_numpy()
        if "min_vm_pu" in tnet.bus
        else np.full(len(tb), 0.9)
    )
    hi = (
        tnet.bus.max_vm_pu.reindex(tb).fillna(1.1).to_numpy()
        if "max_vm_pu" in tnet.bus
        else np.full(len(tb), 1.1)
    )
    limits = {
        n: (a, b)
        for n, a, b in zip(
            bus_names(system),
            np.concatenate([lo, *[f.arrays.vm_min_pu for f in system.feeders]]),
            np.concatenate([hi, *[f.arrays.vm_max_pu for f in system.feeders]]),
            strict=True,
        )
    }
    pairs = np.array([limits.get(str(n), (0.0, np.inf)) for n in names])
    return pairs[:, 0], pairs[:, 1]


def _results(net: pp.pandapowerNet) -> tuple[np.ndarray, np.ndarray]:
    """Bus voltages [pu] and line-then-trafo loadings [percent] of the last power flow."""
    loading = np.concatenate(
        [net.res_line.loading_percent.to_numpy(), net.res_trafo.loading_percent.to_numpy()]
    )
    return net.res_bus.vm_pu.to_numpy(), loading


def _violation_counts(
    vm: np.ndarray, loading: np.ndarray, lo: np.ndarray, hi: np.ndarray, is_t: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Transmission and feeder buses outside their limits, and overloaded branches, counted
    over the last axis of ``vm`` (bus) and ``loading`` (branch)."""
    bad = (vm < lo - VM_TOL_PU) | (vm > hi + VM_TOL_PU)
    return (
        (bad & is_t).sum(axis=-1),
        (bad & ~is_t).sum(axis=-1),
        (loading > 100.0 + LOADING_TOL_PERCENT).sum(axis=-1),
    )


#: voltage step of one tap of the coupling transformers' on-load tap changers [pu]
TAP_STEP_PU = 0.01


def _run(net: pp.pandapowerNet, init: str) -> bool:
    """Newton-Raphson with the tap controllers; False when it does not converge."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pp.runpp(net, run_control=True, init=init, calculate_voltage_angles=True)
    except (LoadflowNotConverged, ControllerNotConverged):
        return False
    return True


def _transmission_power_factors(system: IntegratedSystem) -> np.ndarray:
    """Nominal reactive/active ratio of the load at every transmission bus [-]."""
    tnet = system.transmission_net
    tl = tnet.load[tnet.load.in_service]
    t_q = (tl.q_mvar * tl.scaling).groupby(tl.bus).sum()
    t_p = (tl.p_mw * tl.scaling).groupby(tl.bus).sum()
    return np.array(
        [
            t_q.get(b, 0.0) / t_p[b] if t_p.get(b, 0.0) > 0 else 0.0
            for b in system.transmission.bus_index
        ]
    )


def voltage_setpoints(
    system: IntegratedSystem, schedule: xr.Dataset, data: DayData
) -> tuple[np.ndarray, np.ndarray]:
    """TER voltage set-points per first-stage period from an AC OPF at the scheduled power.

    For each period, pandapower's AC OPF runs on the transmission network with every
    unit's active power held at the scheduled output (probability-weighted mean of the
    period's steps), each feeder as a load of its (linear-model) interface power, and the
    slack's output as the cost (so the OPF minimises losses within the voltage and
    reactive-power limits of the case). The set-points replace the case's fixed ones, so
    that the AC check's transmission voltages reflect the schedule, not the case's
    set-points for another loading.

    Every unit may absorb as much reactive power as it can produce (under-excited operation;
    some cases' minimum reactive outputs are positive, set for peak load). The OPF keeps
    :data:`SETPOINT_MARGIN_PU` inside the voltage limits, for what it does not see.

    Returns
    -------
    vm_pu : ndarray (period, gen) [pu]
        Set-points (the case's own where the OPF did not converge).
    from_opf : ndarray (period,) of bool
    """
    tarr = system.transmission
    tnet = copy.deepcopy(system.transmission_net)
    w = schedule["weight"].to_numpy()
    P = schedule.sizes["period"]
    T = data.n_steps
    k = T // P
    ter = np.einsum("s,stg->tg", w, schedule["ter_p_mw"].to_numpy())
    ter = ter.reshape(P, k, tarr.n_gen).mean(1)
    served = schedule["demand_mw"].to_numpy() - schedule["load_shed_mw"].to_numpy()
    t_load = np.einsum("s,stb->tb", w, served[..., : tarr.n_bus])
    t_load = t_load.reshape(P, k, tarr.n_bus).mean(1)
    n_if = len(system.feeders)
    ip = np.einsum("s,sti->ti", w, schedule["interface_p_mw"].to_numpy()).reshape(P, k, n_if)
    iq = np.einsum("s,sti->ti", w, schedule["interface_q_mvar"].to_numpy()).reshape(P, k, n_if)
    ip, iq = ip.mean(1), iq.mean(1)
    tan = _transmission_power_factors(system)
    tnet.load.drop(tnet.load.index, inplace=True)
    tnet.poly_cost.drop(tnet.poly_cost.index, inplace=True)
    loads = [pp.create_load(tnet, int(b), p_mw=0.0, q_mvar=0.0) for b in tarr.bus_index]
    f_loads = [
        pp.create_load(tnet, int(tarr.bus_index[f.bus]), p_mw=0.0, q_mvar=0.0)
        for f in system.feeders
    ]
    for idx in tnet.ext_grid.index:
        pp.create_poly_cost(tnet, int(idx), "ext_grid", cp1_eur_per_mw=1.0)
    tnet.gen["controllable"] = True
    case_vm = np.array(
        [
            float(tnet[table].at[el, "vm_pu"])
            for table, el in zip(tarr.gen_kind, tarr.gen_element, strict=True)
        ]
    )
    # headroom for what the OPF does not see (the feeders' own reactive flows, the steps
    # within the period, the other scenarios): the OPF keeps this margin inside the limits
    lo_vm = tnet.bus.min_vm_pu.fillna(0.9) if "min_vm_pu" in tnet.bus else 0.9
    hi_vm = tnet.bus.max_vm_pu.fillna(1.1) if "max_vm_pu" in tnet.bus else 1.1
    tnet.bus["min_vm_pu"] = lo_vm + SETPOINT_MARGIN_PU
    tnet.bus["max_vm_pu"] = hi_vm - SETPOINT_MARGIN_PU
    # the OPF's starting set-points inside the band (pandapower warns on each call else)
    gbus = tnet.gen.bus.to_numpy()
    tnet.gen["vm_pu"] = np.clip(
        tnet.gen.vm_pu.to_numpy(),
        tnet.bus.min_vm_pu.loc[gbus].to_numpy(),
        tnet.bus.max_vm_pu.loc[gbus].to_numpy(),
    )
    # under-excited operation: each unit may absorb as much reactive power as it can
    # produce (case39's minimum outputs of up to +150 Mvar were set for peak load; with
    # them no dispatch holds 1.06 pu at light load)
    tnet.gen["min_q_mvar"] = np.minimum(tnet.gen["min_q_mvar"], -tnet.gen["max_q_mvar"].abs())
    vm = np.tile(case_vm, (P, 1))
    ok = np.zeros(P, dtype=bool)
    for p in range(P):
        tnet.load.loc[loads, "p_mw"] = t_load[p]
        tnet.load.loc[loads, "q_mvar"] = t_load[p] * tan
        tnet.load.loc[f_loads, "p_mw"] = ip[p]
        tnet.load.loc[f_loads, "q_mvar"] = iq[p]
        for g, (table, el) in enumerate(zip(tarr.gen_kind, tarr.gen_element, strict=True)):
            if table == "gen":
                tnet.gen.loc[el, ["p_mw", "min_p_mw", "max_p_mw"]] = ter[p, g]
        for init in ("pf", "flat"):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    pp.runopp(tnet, calculate_voltage_angles=True, init=init)
            except OPFNotConverged:
                continue
            ok[p] = True
            break
        if not ok[p]:
            continue
        for g, (table, el) in enumerate(zip(tarr.gen_kind, tarr.gen_element, strict=True)):
            if table in ("gen", "ext_grid"):
                vm[p, g] = float(tnet.res_bus.at[int(tnet[table].at[el, "bus"]), "vm_pu"])
    return vm, ok


@dataclass(frozen=True, eq=False)
class _StepSetter:
    """Puts one (scenario, step) of a schedule into the integrated network: served demand
    with its nominal power factor, TER output and voltage set-points, the feeder roots'
    tap set-points, DER and fixed injections."""

    inet: IntegratedNet
    system: IntegratedSystem
    data: DayData
    ter: np.ndarray
    served: np.ndarray
    der_p: np.ndarray
    der_q: np.ndarray
    vm_linear: np.ndarray
    t_tan: np.ndarray
    f_tan: list
    offsets: np.ndarray
    vm_setpoints: np.ndarray | None
    steps_per_period: int
    oltc: list

    @classmethod
    def from_schedule(cls, system, inet, data, schedule, vm_setpoints) -> _StepSetter:
        tarr = system.transmission
        t_tan = _transmission_power_factors(system)
        f_tan = [
            np.divide(
                f.arrays.load_q_mvar,
                f.arrays.load_p_mw,
                out=np.zeros(f.arrays.n_bus),
                where=f.arrays.load_p_mw > 0,
            )
            for f in system.feeders
        ]
        T = data.n_steps
        ctrl_of = {
            int(c.element_index): c for c in inet.net.controller.object if hasattr(c, "vm_set_pu")
        }
        return cls(
            inet=inet,
            system=system,
            data=data,
            ter=schedule["ter_p_mw"].to_numpy(),
            served=schedule["demand_mw"].to_numpy() - schedule["load_shed_mw"].to_numpy(),
            der_p=schedule["der_p_mw"].to_numpy(),
            der_q=schedule["der_q_mvar"].to_numpy(),
            vm_linear=schedule["vm_pu_linear"].to_numpy(),
            t_tan=t_tan,
            f_tan=f_tan,
            offsets=np.cumsum([tarr.n_bus] + [f.arrays.n_bus for f in system.feeders]),
            vm_setpoints=vm_setpoints,
            steps_per_period=max(1, T // len(schedule.period)) if "period" in schedule.dims else 1,
            oltc=[ctrl_of[int(tr)] for tr in inet.coupling_trafo],
        )

    def apply(self, net, sc: int, t: int) -> None:
        inet, tarr, offsets = self.inet, self.system.transmission, self.offsets
        served = self.served[sc, t]
        t_load_el = inet.transmission_load
        has_t_load = t_load_el >= 0
        p_t = served[: tarr.n_bus]
        net.load.loc[t_load_el[has_t_load], "p_mw"] = p_t[has_t_load]
        net.load.loc[t_load_el[has_t_load], "q_mvar"] = (p_t * self.t_tan)[has_t_load]
        for fi, feeder_loads in enumerate(inet.feeder_load):
            p_f = served[offsets[fi] : offsets[fi + 1]]
            net.load.loc[feeder_loads, "p_mw"] = p_f
            net.load.loc[feeder_loads, "q_mvar"] = p_f * self.f_tan[fi]
        for g, (table, el) in enumerate(zip(tarr.gen_kind, tarr.gen_element, strict=True)):
            if table in ("gen", "sgen"):
                net[table].at[el, "p_mw"] = self.ter[sc, t, g]
            if self.vm_setpoints is not None and table in ("gen", "ext_grid"):
                net[table].at[el, "vm_pu"] = self.vm_setpoints[t // self.steps_per_period, g]
        for fi, ctrl in enumerate(self.oltc):
            # the scheduled root voltage, rounded to the coupling transformer's tap steps
            v0 = self.system.feeders[fi].arrays.v_root_pu
            v = v0 + TAP_STEP_PU * np.round((self.vm_linear[sc, t, offsets[fi]] - v0) / TAP_STEP_PU)
            ctrl.vm_set_pu = float(v) if np.isfinite(v) else v0
        fleet = self.system.fleet
        npv, nbat = len(fleet.pv), len(fleet.battery)
        net.sgen.loc[inet.pv_sgen, "p_mw"] = self.der_p[sc, t, :npv]
        net.sgen.loc[inet.pv_sgen, "q_mvar"] = self.der_q[sc, t, :npv]
        net.sgen.loc[inet.fixed_sgen, "p_mw"] = self.data.fixed_p_mw[sc, t]
        net.storage.loc[inet.battery_storage, "p_mw"] = -self.der_p[sc, t, npv : npv + nbat]
        net.load.loc[inet.ev_load, "p_mw"] = -self.der_p[sc, t, npv + nbat :]


def ac_check(
    system: IntegratedSystem,
    data: DayData,
    schedule: xr.Dataset,
    scenarios: list[int],
    steps: list[int],
    inet: IntegratedNet | None = None,
    vm_setpoints: np.ndarray | None = None,
    base_case: bool = True,
) -> xr.Dataset:
    """Run AC power flows for the given (scenario, step) pairs of a day's schedule.

    Parameters
    ----------
    system : IntegratedSystem
    data : DayData
        The day's scenario data (for fixed injections and reactive demand).
    schedule : xarray.Dataset
        Output of :func:`stochastic.extract.extract_two_stage` for the day.
    scenarios, steps : list of int
        Positions of the scenarios and second-stage steps to check.
    inet : IntegratedNet, optional
        Re-use a network built by ``system.integrated_net()``.
    vm_setpoints : ndarray (period, gen), optional [pu]
        Voltage set-points of the TER for each first-stage period
        (:func:`voltage_setpoints`); default the case's own.
    base_case : bool
        Also run each checked step without DER flexibility (PV at its available power,
        batteries idle, EV charging uncontrolled from arrival) and count its violations:
        those the network has without the schedule's DER dispatch.

    Returns
    -------
    xarray.Dataset
        Over the given scenarios and all steps: ``vm_pu_ac`` (scenario, time, bus),
        ``loading_percent_ac`` (scenario, time, branch), ``interface_p_mw_ac``
        (scenario, time, interface), ``slack_p_mw_ac``, violation counts, ``ac_converged``
        and ``ac_checked`` (scenario, time); unchecked steps are NaN / False / -1.
    """
    inet = inet or system.integrated_net()
    net = inet.net
    tarr = system.transmission
    S, T = len(scenarios), data.n_steps
    nbus = len(inet.bus_names)
    branch_names = np.concatenate([inet.line_names, inet.trafo_names])
    vm = np.full((S, T, nbus), np.nan)
    loading = np.full((S, T, len(branch_names)), np.nan)
    iface = np.full((S, T, len(system.feeders)), np.nan)
    slack = np.full((S, T), np.nan)
    converged = np.zeros((S, T), dtype=bool)
    checked = np.zeros((S, T), dtype=bool)

    step = _StepSetter.from_schedule(system, inet, data, schedule, vm_setpoints)
    ext_pos = np.flatnonzero(tarr.gen_kind == "ext_grid")
    lo, hi = _vm_limits(system, inet.bus_names)
    is_t = np.char.startswith(inet.bus_names.astype(str), "transmission/")
    base_counts = np.full((S, T, 3), -1, dtype=int)
    for s, (sc, t) in ((i, (sc, t)) for i, sc in enumerate(scenarios) for t in steps):
        step.apply(net, sc, t)
        checked[s, t] = True
        if not _run(net, init="results" if converged.any() else "auto"):
            continue
        converged[s, t] = True
        vm[s, t], loading[s, t] = _results(net)
        iface[s, t] = net.res_trafo.p_hv_mw.loc[inet.coupling_trafo].to_numpy()
        sched_ext = step.ter[sc, t, ext_pos].sum()
        slack[s, t] = float(net.res_ext_grid.p_mw.sum()) - sched_ext
        if base_case:
            net.sgen.loc[inet.pv_sgen, "p_mw"] = data.pv_available_mw[sc, t]
            net.sgen.loc[inet.pv_sgen, "q_mvar"] = 0.0
            net.storage.loc[inet.battery_storage, "p_mw"] = 0.0
            net.load.loc[inet.ev_load, "p_mw"] = data.ev_p_uncontrolled_mw[sc, t]
            if _run(net, init="results"):
                vb, lb = _results(net)
                base_counts[s, t] = _violation_counts(vb, lb, lo, hi, is_t)
    v_t, v_d, over = (
        np.where(checked, c, -1) for c in _violation_counts(vm, loading, lo, hi, is_t)
    )
    return _ac_dataset(
        system,
        inet,
        schedule.scenario.to_numpy()[scenarios],
        schedule.time.to_numpy(),
        {"vm": vm, "loading": loading, "iface": iface, "slack": slack},
        (v_t, v_d, over, base_counts),
        converged,
        checked,
    )


def _ac_dataset(
    system: IntegratedSystem,
    inet: IntegratedNet,
    scenario: np.ndarray,
    time: np.ndarray,
    flows: dict[str, np.ndarray],
    counts: tuple,
    converged: np.ndarray,
    checked: np.ndarray,
) -> xr.Dataset:
    """The AC check's results as a Dataset (see :func:`ac_check`)."""
    v_t, v_d, over, base_counts = counts
    sd = ("scenario", "time")
    what = {
        "voltage_violations_transmission": "transmission buses outside their voltage limits",
        "voltage_violations_distribution": "feeder buses outside their voltage limits",
        "overloads": "branches above 100 % loading",
    }
    count_vars = {}
    for c, (name, text) in enumerate(what.items()):
        for suffix, values, where in (
            ("_ac", (v_t, v_d, over)[c], "in the AC check"),
            ("_base_ac", base_counts[..., c], "without DER flexibility"),
        ):
            count_vars[name + suffix] = (
                sd,
                values,
                {"units": "1", "long_name": f"{text} {where} (-1: not checked)"},
            )
    ds = xr.Dataset(
        {
            "vm_pu_ac": (
                (*sd, "bus"),
                flows["vm"],
                {"units": "pu", "long_name": "AC voltage magnitude"},
            ),
            "loading_percent_ac": (
                (*sd, "branch"),
                flows["loading"],
                {"units": "percent", "long_name": "AC branch loading"},
            ),
            "interface_p_mw_ac": (
                (*sd, "interface"),
                flows["iface"],
                {
                    "units": "MW",
                    "long_name": "AC active power into the feeder "
                    "at the coupling transformer's transmission side",
                },
            ),
            "slack_p_mw_ac": (
                sd,
                flows["slack"],
                {
                    "units": "MW",
                    "long_name": "AC slack output minus "
                    "its schedule (losses and linearisation error)",
                },
            ),
            "ac_converged": (sd, converged, {"long_name": "AC power flow converged"}),
            "ac_checked": (sd, checked, {"long_name": "step checked with AC power flow"}),
            **count_vars,
        },
        coords={
            "scenario": scenario,
            "time": time,
            "bus": inet.bus_names,
            "branch": np.concatenate([inet.line_names, inet.trafo_names]),
            "interface": [f.name for f in system.feeders],
        },
    )
    return ds
