"""Ex-post AC validation of a schedule with pandapower's Newton-Raphson power flow.

For each checked (scenario, step) the integrated network (transmission + feeders,
coupled by transformers whose on-load tap changers hold each feeder root at its
set-point) receives the scheduled TER outputs, the remaining (unshed) demand and the DER
dispatch; the transmission ``ext_grid`` balances losses and linearisation errors. The
resulting voltages, branch loadings and interface flows are recorded beside the linear
model's own values, with the violations of voltage and thermal limits.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandapower as pp
import xarray as xr
from pandapower.auxiliary import ControllerNotConverged, LoadflowNotConverged

from cases.system import IntegratedNet, IntegratedSystem
from stochastic.extract import bus_names
from stochastic.twostage import DayData

__all__ = ["AcSample", "ac_check", "ac_sample"]

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


def ac_check(
    system: IntegratedSystem,
    data: DayData,
    schedule: xr.Dataset,
    scenarios: list[int],
    steps: list[int],
    inet: IntegratedNet | None = None,
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

    # nominal reactive/active ratio of every load
    tnet = system.transmission_net
    tl = tnet.load[tnet.load.in_service]
    t_q = (tl.q_mvar * tl.scaling).groupby(tl.bus).sum()
    t_p = (tl.p_mw * tl.scaling).groupby(tl.bus).sum()
    t_tan = np.array(
        [t_q.get(b, 0.0) / t_p[b] if t_p.get(b, 0.0) > 0 else 0.0 for b in tarr.bus_index]
    )
    f_tan = [
        np.divide(
            f.arrays.load_q_mvar,
            f.arrays.load_p_mw,
            out=np.zeros(f.arrays.n_bus),
            where=f.arrays.load_p_mw > 0,
        )
        for f in system.feeders
    ]
    nb_t = tarr.n_bus
    offsets = np.cumsum([nb_t] + [f.arrays.n_bus for f in system.feeders])
    ter = schedule["ter_p_mw"].to_numpy()
    demand = schedule["demand_mw"].to_numpy()
    shed = schedule["load_shed_mw"].to_numpy()
    der_p = schedule["der_p_mw"].to_numpy()
    der_q = schedule["der_q_mvar"].to_numpy()
    fleet = system.fleet
    npv, nbat = len(fleet.pv), len(fleet.battery)
    gen_tables = tarr.gen_kind
    ext_pos = np.flatnonzero(gen_tables == "ext_grid")
    t_load_el = inet.transmission_load
    has_t_load = t_load_el >= 0
    for s, (sc, t) in ((i, (sc, t)) for i, sc in enumerate(scenarios) for t in steps):
        served = demand[sc, t] - shed[sc, t]
        p_t = served[:nb_t]
        net.load.loc[t_load_el[has_t_load], "p_mw"] = p_t[has_t_load]
        net.load.loc[t_load_el[has_t_load], "q_mvar"] = (p_t * t_tan)[has_t_load]
        for fi, feeder_loads in enumerate(inet.feeder_load):
            p_f = served[offsets[fi] : offsets[fi + 1]]
            net.load.loc[feeder_loads, "p_mw"] = p_f
            net.load.loc[feeder_loads, "q_mvar"] = p_f * f_tan[fi]
        for g, (table, el) in enumerate(zip(gen_tables, tarr.gen_element, strict=True)):
            if table in ("gen", "sgen"):
                net[table].at[el, "p_mw"] = ter[sc, t, g]
        net.sgen.loc[inet.pv_sgen, "p_mw"] = der_p[sc, t, :npv]
        net.sgen.loc[inet.pv_sgen, "q_mvar"] = der_q[sc, t, :npv]
        net.sgen.loc[inet.fixed_sgen, "p_mw"] = data.fixed_p_mw[sc, t]
        net.storage.loc[inet.battery_storage, "p_mw"] = -der_p[sc, t, npv : npv + nbat]
        net.load.loc[inet.ev_load, "p_mw"] = -der_p[sc, t, npv + nbat :]
        checked[s, t] = True
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pp.runpp(
                    net,
                    run_control=True,
                    init="results" if converged.any() else "auto",
                    calculate_voltage_angles=True,
                )
        except (LoadflowNotConverged, ControllerNotConverged):
            continue
        converged[s, t] = True
        vm[s, t] = net.res_bus.vm_pu.to_numpy()
        loading[s, t] = np.concatenate(
            [net.res_line.loading_percent.to_numpy(), net.res_trafo.loading_percent.to_numpy()]
        )
        iface[s, t] = net.res_trafo.p_hv_mw.loc[inet.coupling_trafo].to_numpy()
        sched_ext = ter[sc, t, ext_pos].sum()
        slack[s, t] = float(net.res_ext_grid.p_mw.sum()) - sched_ext
    lo, hi = _vm_limits(system, inet.bus_names)
    bad_v = (vm < lo - VM_TOL_PU) | (vm > hi + VM_TOL_PU)
    bad_l = loading > 100.0 + LOADING_TOL_PERCENT
    is_t = np.char.startswith(inet.bus_names.astype(str), "transmission/")
    sd = ("scenario", "time")
    ds = xr.Dataset(
        {
            "vm_pu_ac": ((*sd, "bus"), vm, {"units": "pu", "long_name": "AC voltage magnitude"}),
            "loading_percent_ac": (
                (*sd, "branch"),
                loading,
                {"units": "percent", "long_name": "AC branch loading"},
            ),
            "interface_p_mw_ac": (
                (*sd, "interface"),
                iface,
                {
                    "units": "MW",
                    "long_name": "AC active power into the feeder "
                    "at the coupling transformer's transmission side",
                },
            ),
            "slack_p_mw_ac": (
                sd,
                slack,
                {
                    "units": "MW",
                    "long_name": "AC slack output minus "
                    "its schedule (losses and linearisation error)",
                },
            ),
            "voltage_violations_transmission_ac": (
                sd,
                np.where(checked, (bad_v & is_t).sum(axis=-1), -1),
                {
                    "units": "1",
                    "long_name": "transmission buses outside their voltage limits "
                    "in the AC check (-1: not checked)",
                },
            ),
            "voltage_violations_distribution_ac": (
                sd,
                np.where(checked, (bad_v & ~is_t).sum(axis=-1), -1),
                {
                    "units": "1",
                    "long_name": "feeder buses outside their voltage limits in the "
                    "AC check (-1: not checked)",
                },
            ),
            "overloads_ac": (
                sd,
                np.where(checked, bad_l.sum(axis=-1), -1),
                {
                    "units": "1",
                    "long_name": "branches above 100 % loading in the AC check (-1: not checked)",
                },
            ),
            "ac_converged": (sd, converged, {"long_name": "AC power flow converged"}),
            "ac_checked": (sd, checked, {"long_name": "step checked with AC power flow"}),
        },
        coords={
            "scenario": schedule.scenario.to_numpy()[scenarios],
            "time": schedule.time.to_numpy(),
            "bus": inet.bus_names,
            "branch": branch_names,
            "interface": [f.name for f in system.feeders],
        },
    )
    return ds
