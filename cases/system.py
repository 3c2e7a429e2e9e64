"""The integrated test system: a transmission case with radial feeders and a DER fleet.

Each feeder replaces a share of the nominal load of the transmission bus it is
attached to; it is scaled as identical copies in parallel so that its nominal demand
equals that share (see :func:`cases.feeders.scale_feeder`). The feeder root is held at
its set-point by an on-load tap changer on the coupling transformer, which is how the
AC check (:meth:`IntegratedSystem.integrated_net`) models the interface.

A feeder whose network carries its own profiles (a SimBench network, also after a JSON
round trip; see :mod:`cases.simbench`) keeps them in :attr:`Feeder.profiles`: its loads and
its own generators then follow their own profile shapes on the study day (see
:func:`stochastic.twostage.day_data`) instead of the generic resource profiles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np
import pandapower as pp

from cases.der import DerFleet, build_fleet
from cases.errors import CaseError
from cases.feeders import FeederArrays, feeder_arrays, scale_feeder, trafo_rated_voltages_kv
from cases.networks import check_ratings, load_network, merge_parallel_branches, network_label
from cases.simbench import (
    FeederProfiles,
    check_simbench_feeder,
    feeder_profiles,
    is_simbench_spec,
    network_profiles,
)
from cases.study import FeederConfig, StudyConfig
from cases.substations import substation_nets
from cases.technologies import apply_technologies
from cases.transmission import TransmissionArrays, transmission_arrays

__all__ = ["Feeder", "IntegratedNet", "IntegratedSystem", "build_system"]

_COMMERCIAL = re.compile(r"(^|\W)(CI|C|G)\d", re.IGNORECASE)


@dataclass(frozen=True, eq=False)
class Feeder:
    """One feeder of the system.

    Attributes
    ----------
    name : str
    network : str
        Network spec it was loaded from (``<pandapower net: N buses>`` for a net object).
    bus : int
        Internal index of the transmission bus it is attached to.
    copies : float
        How many identical copies of the network it represents.
    net : pandapowerNet
        The scaled feeder network.
    arrays : FeederArrays
    commercial_share : ndarray [-]
        Per feeder bus, the share of nominal load that follows the commercial profile
        (the rest follows the residential one).
    profiles : FeederProfiles or None
        The network's own per-element profiles (SimBench), else None: loads follow the
        residential / commercial resource profiles.
    """

    name: str
    network: str
    bus: int
    copies: float
    net: pp.pandapowerNet
    arrays: FeederArrays
    commercial_share: np.ndarray
    profiles: FeederProfiles | None = None


@dataclass(frozen=True, eq=False)
class IntegratedNet:
    """pandapower network of the whole system, with index maps for setting a dispatch.

    Attributes
    ----------
    net : pandapowerNet
    transmission_load : ndarray of int
        Load element per internal transmission bus (``-1`` where none).
    gen_table, gen_element : element table and index per TER (as in TransmissionArrays)
    feeder_bus : list of ndarray
        Integrated bus index per feeder bus position.
    feeder_load : list of ndarray
        Load element per feeder bus position.
    coupling_trafo : ndarray of int
        Transformer per feeder (with its tap controller).
    pv_sgen, wind_sgen, battery_storage, ev_load : ndarray of int
        Elements per DER unit, in fleet order.
    line_names, trafo_names : names for lines and trafos (``feeder/line/idx`` etc.)
    """

    net: pp.pandapowerNet
    transmission_load: np.ndarray
    feeder_bus: list
    feeder_load: list
    coupling_trafo: np.ndarray
    pv_sgen: np.ndarray
    fixed_sgen: np.ndarray
    battery_storage: np.ndarray
    ev_load: np.ndarray
    bus_names: np.ndarray
    line_names: np.ndarray
    trafo_names: np.ndarray


@dataclass(frozen=True, eq=False)
class IntegratedSystem:
    """Transmission network, feeders and DER fleet, ready for optimisation.

    Attributes
    ----------
    name : str
    transmission_net : pandapowerNet
        Transmission case with the replaced share of load removed at feeder buses.
    transmission : TransmissionArrays
    feeders : tuple of Feeder
    fleet : DerFleet
    transmission_load_p_mw : ndarray [MW]
        Nominal load per internal transmission bus after replacement (follows the
        transmission load profile).
    """

    name: str
    transmission_net: pp.pandapowerNet
    transmission: TransmissionArrays
    feeders: tuple[Feeder, ...]
    fleet: DerFleet
    transmission_load_p_mw: np.ndarray

    @property
    def base_mva(self) -> float:
        return self.transmission.base_mva

    def integrated_net(self) -> IntegratedNet:
        """Build the pandapower network of transmission + feeders (for the AC check)."""
        return _integrated_net(self)


def _find_bus(net: pp.pandapowerNet, name: str, label: str) -> int:
    names = net.bus.name.astype(str)
    hits = net.bus.index[(names == name) & net.bus.in_service]
    if len(hits) == 0:
        sample = ", ".join(names.iloc[:8])
        raise CaseError(
            f"{label}: transmission bus '{name}' not found; use a bus name of the "
            f"transmission case (e.g. {sample}, ...)"
        )
    return int(hits[0])


def _commercial_share(net: pp.pandapowerNet, arrays: FeederArrays) -> np.ndarray:
    loads = net.load[net.load.in_service]
    labels = loads.name.fillna("").astype(str)
    if "profile" in loads:  # SimBench: the load profile (G0-A, G3-M) tells
        labels = labels + " " + loads.profile.fillna("").astype(str)
    is_com = labels.map(lambda s: bool(_COMMERCIAL.search(s)))
    p = loads.p_mw * loads.scaling
    com = p[is_com].groupby(loads.bus[is_com]).sum().reindex(arrays.bus_index, fill_value=0.0)
    tot = p.groupby(loads.bus).sum().reindex(arrays.bus_index, fill_value=0.0)
    share = np.divide(
        com.to_numpy(), tot.to_numpy(), out=np.zeros(arrays.n_bus), where=tot.to_numpy() > 0
    )
    return share


def build_system(study: StudyConfig) -> IntegratedSystem:
    """Build the integrated system described by a study.

    Raises
    ------
    CaseError
        Unknown networks or buses, a feeder attached to a bus without load, meshed or
        disconnected feeders, missing costs, bad ratings, a SimBench grid as the
        transmission network.
    """
    t_label = network_label(study.transmission.network)
    simbench = isinstance(study.transmission.network, str) and is_simbench_spec(t_label)
    tnet = None if simbench else load_network(study.transmission.network)
    if tnet is None or network_profiles(tnet, t_label) is not None:
        raise CaseError(
            f"transmission network '{t_label}' is a SimBench grid (it carries its own "
            "profiles); SimBench grids are supported as feeders only: use a pandapower "
            "case (case39, case118, ...) or a JSON file as transmission.network and attach "
            "the SimBench grid as a feeder"
        )
    check_ratings(tnet, f"transmission '{t_label}'")
    base_mva = float(tnet.sn_mva)
    shares: dict[int, float] = {}
    feeders_raw = []
    names = {cfg.name for cfg in study.feeders}
    for cfg in study.feeders:
        for part in _feeder_parts(cfg, tnet, base_mva):
            name, bus, part_share, copies, scaled, arrays, profiles = part
            if name != cfg.name and name in names:
                raise CaseError(
                    f"feeder '{cfg.name}': its substation part '{name}' has the name of "
                    "another feeder; rename that feeder"
                )
            shares[bus] = shares.get(bus, 0.0) + part_share
            if shares[bus] > 1.0 + 1e-9:
                raise CaseError(
                    f"feeder '{name}': feeders at transmission bus "
                    f"'{tnet.bus.name.astype(str)[bus]}' replace {shares[bus]:.0%} of its "
                    "load; shares at one bus must sum to <= 1"
                )
            feeders_raw.append((cfg, name, bus, copies, scaled, arrays, profiles))
    for bus, share in shares.items():
        sel = tnet.load.bus == bus
        tnet.load.loc[sel, "p_mw"] *= 1.0 - share
        tnet.load.loc[sel, "q_mvar"] *= 1.0 - share
    tarr = apply_technologies(
        transmission_arrays(tnet, f"transmission '{t_label}'"),
        study.transmission.technologies,
        study.transmission.marginal_cost_eur_per_mwh,
    )
    loads = tnet.load[tnet.load.in_service]
    load_p = (loads.p_mw * loads.scaling).groupby(loads.bus).sum()
    t_load = np.array([load_p.get(b, 0.0) for b in tarr.bus_index])
    feeders = tuple(
        Feeder(
            name,
            network_label(cfg.network),
            tarr.bus_position(bus),
            copies,
            scaled,
            arrays,
            _commercial_share(scaled, arrays),
            profiles,
        )
        for cfg, name, bus, copies, scaled, arrays, profiles in feeders_raw
    )
    fleet = build_fleet(
        [(f.arrays, f.net, cfg.der) for f, (cfg, *_) in zip(feeders, feeders_raw, strict=True)]
    )
    return IntegratedSystem(study.name, tnet, tarr, feeders, fleet, t_load)


def _feeder_parts(cfg: FeederConfig, tnet: pp.pandapowerNet, base_mva: float) -> list[tuple]:
    """The feeders one study entry makes: one, or one per substation of its network.

    A network with several in-service ``ext_grid`` is a forest (:mod:`cases.substations`):
    each substation's part becomes a feeder named ``<name>.<ext_grid index>``, attached to
    the entry's bus (or to its own bus of the entry's list, in ``ext_grid`` order), unless
    ``substation`` picks one part, which keeps the entry's name. Every part is scaled by
    the same factor, so that the parts together replace ``share`` of the load at the
    bus(es), each in proportion to its own demand.

    Returns
    -------
    list of tuple
        ``(name, transmission bus, share of that bus's load it replaces, copies, scaled
        net, arrays, profiles)`` per feeder.
    """
    label = f"feeder '{cfg.name}'"
    f_label = network_label(cfg.network)
    if is_simbench_spec(f_label):
        check_simbench_feeder(f_label, label)
    fnet = merge_parallel_branches(load_network(cfg.network))
    nominal = float((fnet.load.p_mw * fnet.load.scaling)[fnet.load.in_service].sum())
    if nominal <= 0:
        raise CaseError(
            f"{label}: network '{f_label}' has no load; a feeder must "
            "carry demand to replace transmission load"
        )
    missing = sorted(set(cfg.line_max_i_ka) - set(fnet.line.index))
    if missing:
        raise CaseError(
            f"{label}: line_max_i_ka names lines {missing} that network "
            f"'{f_label}' does not have; use line indices 0..{len(fnet.line) - 1}"
        )
    for line, rating_ka in cfg.line_max_i_ka.items():
        fnet.line.loc[line, "max_i_ka"] = rating_ka
    parts = substation_nets(fnet, f"{label} (network '{f_label}')", cfg.substation)
    bus_names = [cfg.bus] if isinstance(cfg.bus, str) else list(cfg.bus)
    if len(bus_names) == 1:
        bus_names = bus_names * len(parts)
    elif len(bus_names) != len(parts):
        raise CaseError(
            f"{label}: bus lists {len(bus_names)} transmission buses but network "
            f"'{f_label}' has {len(parts)} substations (ext_grids "
            f"{', '.join(str(k) for k, _ in parts)}); give one bus, or one per substation"
        )
    out = []
    for (k, part), bus_name in zip(parts, bus_names, strict=True):
        name = cfg.name if len(parts) == 1 else f"{cfg.name}.{k}"
        bus = _find_bus(tnet, bus_name, label)
        loads = tnet.load[(tnet.load.bus == bus) & tnet.load.in_service]
        bus_load = float((loads.p_mw * loads.scaling).sum())
        if bus_load <= 0:
            with_load = tnet.load[tnet.load.p_mw > 0].bus.unique()[:8]
            raise CaseError(
                f"{label}: transmission bus '{bus_name}' has no load to replace; attach the "
                f"feeder to a load bus (e.g. {', '.join(tnet.bus.name.astype(str)[with_load])})"
            )
        own = network_profiles(part, label)
        live = part.load[part.load.in_service]
        part_nominal = float((live.p_mw * live.scaling).sum())
        if part_nominal <= 0:
            raise CaseError(
                f"{label}: substation {k} of network '{f_label}' feeds no load; set its "
                "ext_grid out of service or pick another one with substation: K"
            )
        # parts replace share x (their part of the demand) of their bus's load
        whole = nominal if cfg.substation is None else part_nominal
        part_share = cfg.share * part_nominal / whole
        copies = part_share * bus_load / part_nominal
        scaled = scale_feeder(part, copies)
        arrays = feeder_arrays(scaled, name, base_mva, cfg.vm_min_pu, cfg.vm_max_pu)
        # the study's limits apply to every feeder bus except the regulated root
        arrays = _with_limits(arrays, cfg.vm_min_pu, cfg.vm_max_pu)
        profiles = None if own is None else feeder_profiles(scaled, arrays.bus_index, own)
        out.append((name, bus, part_share, copies, scaled, arrays, profiles))
    return out


def _with_limits(arrays: FeederArrays, vmin: float, vmax: float) -> FeederArrays:
    lo = np.full(arrays.n_bus, vmin)
    hi = np.full(arrays.n_bus, vmax)
    lo[0] = min(vmin, arrays.v_root_pu)
    hi[0] = max(vmax, arrays.v_root_pu)
    return replace(arrays, vm_min_pu=lo, vm_max_pu=hi)


def _integrated_net(system: IntegratedSystem) -> IntegratedNet:
    """Transmission net plus every feeder, coupled by OLTC transformers."""
    import copy

    from pandapower.control import ContinuousTapControl

    net = copy.deepcopy(system.transmission_net)
    tarr = system.transmission
    # one aggregated load per transmission bus (set per step by the AC check)
    net.load.drop(net.load.index, inplace=True)
    t_load = np.full(tarr.n_bus, -1)
    for i, b in enumerate(tarr.bus_index):
        if system.transmission_load_p_mw[i] > 0:
            t_load[i] = pp.create_load(
                net, int(b), p_mw=0.0, q_mvar=0.0, name=f"transmission/{tarr.bus_name[i]}"
            )
    bus_names = [f"transmission/{n}" for n in net.bus.name.astype(str)]
    line_names = [f"transmission/line/{i}" for i in net.line.index]
    trafo_names = [f"transmission/trafo/{i}" for i in net.trafo.index]
    feeder_bus, feeder_load, coupling = [], [], []
    for feeder in system.feeders:
        arr = feeder.arrays
        bmap = _copy_feeder(net, feeder, bus_names, line_names, trafo_names)
        trafo = _coupling_trafo(net, feeder, int(tarr.bus_index[feeder.bus]), bmap)
        trafo_names.append(f"{feeder.name}/coupling")
        ContinuousTapControl(
            net, trafo, vm_set_pu=arr.v_root_pu, tol=1e-5, side="lv", check_tap_bounds=True
        )
        feeder_bus.append(np.array([bmap[int(b)] for b in arr.bus_index]))
        feeder_load.append(
            np.array(
                [
                    pp.create_load(
                        net, bmap[int(b)], p_mw=0.0, q_mvar=0.0, name=f"{feeder.name}/{b}"
                    )
                    for b in arr.bus_index
                ]
            )
        )
        coupling.append(trafo)
    pv, fixed, bat, ev = _der_elements(net, system.fleet, feeder_bus)
    return IntegratedNet(
        net,
        t_load,
        feeder_bus,
        feeder_load,
        np.array(coupling, dtype=int),
        pv,
        fixed,
        bat,
        ev,
        np.array(bus_names),
        np.array(line_names),
        np.array(trafo_names),
    )


def _copy_feeder(net, feeder, bus_names: list, line_names: list, trafo_names: list) -> dict:
    """Copy a feeder's buses, lines (with open line switches), trafos and closed bus-bus
    switches into ``net``, appending the element names; returns feeder bus -> new bus."""
    fnet, arr = feeder.net, feeder.arrays
    bmap = {}
    for b in arr.bus_index:
        row = fnet.bus.loc[b]
        bmap[int(b)] = pp.create_bus(
            net, vn_kv=float(row.vn_kv), name=f"{feeder.name}/{row['name']}"
        )
        bus_names.append(f"{feeder.name}/{b}")
    for idx, row in fnet.line[fnet.line.in_service].iterrows():
        if row.from_bus not in bmap or row.to_bus not in bmap:
            continue
        new = pp.create_line_from_parameters(
            net,
            bmap[row.from_bus],
            bmap[row.to_bus],
            length_km=row.length_km,
            r_ohm_per_km=row.r_ohm_per_km,
            x_ohm_per_km=row.x_ohm_per_km,
            c_nf_per_km=row.c_nf_per_km,
            max_i_ka=row.max_i_ka,
            parallel=row.parallel,
            df=row.df,
            name=f"{feeder.name}/line/{idx}",
        )
        line_names.append(f"{feeder.name}/line/{idx}")
        for _, sw in fnet.switch[
            (fnet.switch.et == "l")
            & (fnet.switch.element == idx)
            & ~fnet.switch.closed.astype(bool)
        ].iterrows():
            pp.create_switch(net, bmap[sw.bus], new, et="l", closed=False)
    for idx, row in fnet.trafo[fnet.trafo.in_service].iterrows():
        # the fixed taps as rated voltages: the same ratio and impedance, see
        # cases.feeders.trafo_rated_voltages_kv
        vn_hv_kv, vn_lv_kv = trafo_rated_voltages_kv(row, f"feeder '{feeder.name}': trafo {idx}")
        pp.create_transformer_from_parameters(
            net,
            bmap[row.hv_bus],
            bmap[row.lv_bus],
            sn_mva=row.sn_mva,
            vn_hv_kv=vn_hv_kv,
            vn_lv_kv=vn_lv_kv,
            vkr_percent=row.vkr_percent,
            vk_percent=row.vk_percent,
            pfe_kw=row.pfe_kw,
            i0_percent=row.i0_percent,
            shift_degree=row.shift_degree,
            parallel=row.parallel,
            name=f"{feeder.name}/trafo/{idx}",
        )
        trafo_names.append(f"{feeder.name}/trafo/{idx}")
    for _, sw in fnet.switch[(fnet.switch.et == "b") & fnet.switch.closed.astype(bool)].iterrows():
        pp.create_switch(net, bmap[sw.bus], bmap[sw.element], et="b", closed=True)
    return bmap


def _coupling_trafo(net, feeder, hv: int, bmap: dict) -> int:
    """The tap-changing transformer joining a feeder's root to transmission bus ``hv``
    (rated twice the feeder's peak load)."""
    arr = feeder.arrays
    root = bmap[int(arr.bus_index[0])]
    peak = float(np.hypot(arr.load_p_mw.sum(), arr.load_q_mvar.sum()))
    sn = max(2.0 * peak, 1.0)
    trafo = pp.create_transformer_from_parameters(
        net,
        hv,
        root,
        sn_mva=sn,
        vn_hv_kv=float(net.bus.at[hv, "vn_kv"]),
        vn_lv_kv=float(net.bus.at[root, "vn_kv"]),
        vkr_percent=0.3,
        vk_percent=12.0,
        pfe_kw=0.0,
        i0_percent=0.0,
        tap_side="hv",
        tap_neutral=0,
        tap_min=-20,
        tap_max=20,
        tap_step_percent=1.0,
        tap_pos=0,
        tap_changer_type="Ratio",
        name=f"{feeder.name}/coupling",
    )
    return trafo


def _der_elements(net, fleet, feeder_bus: list) -> tuple[np.ndarray, ...]:
    """PV, fixed generation, batteries and EV pools as pandapower elements at their
    buses (set per step by the AC check)."""

    def _bus(feeder: int, pos: int) -> int:
        return int(feeder_bus[feeder][pos])

    pv = np.array(
        [
            pp.create_sgen(
                net, _bus(r.feeder, r.bus), p_mw=0.0, q_mvar=0.0, name=r.name, sn_mva=r.s_mva
            )
            for r in fleet.pv.itertuples()
        ],
        dtype=int,
    )
    fixed = np.array(
        [
            pp.create_sgen(net, _bus(r.feeder, r.bus), p_mw=0.0, name=r.name)
            for r in fleet.fixed.itertuples()
        ],
        dtype=int,
    )
    bat = np.array(
        [
            pp.create_storage(net, _bus(r.feeder, r.bus), p_mw=0.0, max_e_mwh=r.e_mwh, name=r.name)
            for r in fleet.battery.itertuples()
        ],
        dtype=int,
    )
    ev = np.array(
        [
            pp.create_load(net, _bus(r.feeder, r.bus), p_mw=0.0, name=r.name)
            for r in fleet.ev.itertuples()
        ],
        dtype=int,
    )
    return pv, fixed, bat, ev
