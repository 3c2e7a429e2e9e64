"""Array view of a radial distribution feeder for LinDistFlow.

Buses are numbered in breadth-first order from the root (position 0, the bus of the
feeder's ``ext_grid``); every other bus ``j`` has exactly one parent ``parent[j]`` and
one branch, numbered ``j - 1``, that connects it to its parent. Impedances are in per
unit on the system base ``base_mva`` and the child bus's nominal voltage; ratings in MVA.

Transformers with an off-nominal ratio (a tap away from neutral, or rated voltages that
differ from their buses' nominal voltages) keep it as ``branch_ratio``. pandapower's
two-winding transformer is an ideal transformer ``n : 1`` at the high-voltage bus
followed by the series impedance, in per unit of the low-voltage bus::

    n = (vn_hv_kv' / vn_lv_kv') / (vn_hv_bus / vn_lv_bus)

where ``vn_hv_kv'`` / ``vn_lv_kv'`` are the rated voltages with the tap applied on its
side, ``|1 + d exp(j tap_step_degree)|`` with ``d = (tap_pos - tap_neutral) *
tap_step_percent / 100``. Dropping the loss term as LinDistFlow does, the squared
voltage across it is ``w_lv = w_hv / n^2 - 2 (r P + x Q)`` (flows at the high-voltage
end, per unit). Fed from its low-voltage side the same relation reads
``w_hv = n^2 w_lv - 2 n^2 (r P + x Q)``. Both are ``w_j = w_parent / m^2 - 2 (r' P + x' Q)``
with ``m = n``, ``r' = r`` from the high-voltage side and ``m = 1 / n``, ``r' = n^2 r``
from the low-voltage side; the arrays store ``m`` and ``r'``, ``x'``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandapower as pp

from cases.errors import CaseError
from cases.networks import check_radial, check_ratings, merge_parallel_branches

__all__ = ["FeederArrays", "feeder_arrays", "scale_feeder", "trafo_rated_voltages_kv"]


@dataclass(frozen=True, eq=False)
class FeederArrays:
    """A radial feeder as arrays.

    Attributes
    ----------
    name : str
    base_mva : float [MVA]
    v_root_pu : float [pu]
        Voltage held at the root bus (the feeder's ``ext_grid`` set-point).
    bus_index : ndarray of int
        pandapower bus index, breadth-first from the root (position 0).
    bus_vn_kv : ndarray [kV]
    vm_min_pu, vm_max_pu : ndarray [pu]
    parent : ndarray of int
        Position of the parent bus (``-1`` for the root).
    branch_r_pu, branch_x_pu : ndarray [pu]
        Series impedance of branch ``j - 1`` (bus ``j`` to its parent).
    branch_rating_mva : ndarray [MVA]  (``inf`` for closed bus-bus switches)
    branch_kind : ndarray of str  (``line``, ``trafo`` or ``switch``)
    branch_element : ndarray of int
    load_p_mw, load_q_mvar : ndarray [MW], [Mvar]
        Nominal (peak) demand per bus.
    branch_ratio : ndarray [-]
        Off-nominal voltage ratio ``m`` of branch ``j - 1``, parent side to child side
        in per unit (1 for lines, switches and nominal transformers):
        ``w_j = w_parent / m^2 - 2 (r P + x Q) / base_mva``.
    """

    name: str
    base_mva: float
    v_root_pu: float
    bus_index: np.ndarray
    bus_vn_kv: np.ndarray
    vm_min_pu: np.ndarray
    vm_max_pu: np.ndarray
    parent: np.ndarray
    branch_r_pu: np.ndarray
    branch_x_pu: np.ndarray
    branch_rating_mva: np.ndarray
    branch_kind: np.ndarray
    branch_element: np.ndarray
    load_p_mw: np.ndarray
    load_q_mvar: np.ndarray
    branch_ratio: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.branch_ratio is None:
            object.__setattr__(self, "branch_ratio", np.ones(len(self.bus_index) - 1))

    @property
    def w_gain(self) -> np.ndarray:
        """(bus,): ``d w_j / d w_root`` [-], the product of ``1 / m^2`` along the path
        from the root (1 at the root; 1 everywhere without off-nominal transformers)."""
        gain = np.ones(self.n_bus)
        inv_sq = 1.0 / np.asarray(self.branch_ratio) ** 2
        for j in range(1, self.n_bus):  # breadth-first: the parent comes first
            gain[j] = gain[self.parent[j]] * inv_sq[j - 1]
        return gain

    @property
    def n_bus(self) -> int:
        return len(self.bus_index)

    @property
    def n_branch(self) -> int:
        return self.n_bus - 1

    def position(self, pp_bus: int) -> int:
        """Position of pandapower bus ``pp_bus`` in this feeder."""
        hits = np.flatnonzero(self.bus_index == pp_bus)
        if len(hits) == 0:
            raise CaseError(f"bus {pp_bus} is not part of feeder '{self.name}'")
        return int(hits[0])


def scale_feeder(net: pp.pandapowerNet, copies: float) -> pp.pandapowerNet:
    """Return a feeder electrically equal to ``copies`` identical feeders in parallel.

    Demand, generation, storage and ratings are multiplied by ``copies`` and series
    impedances divided by it (line shunt capacitance multiplied), so per-unit voltage
    drops, loadings and relative losses stay those of one feeder.

    Parameters
    ----------
    net : pandapowerNet
        Not modified.
    copies : float
        Positive multiplier (need not be an integer).
    """
    if not copies > 0:
        raise CaseError(f"feeder multiplier must be positive, got {copies}")
    net = copy.deepcopy(net)
    k = float(copies)
    for table, cols in (
        ("load", ("p_mw", "q_mvar", "sn_mva")),
        ("sgen", ("p_mw", "q_mvar", "sn_mva", "max_p_mw", "min_p_mw", "max_q_mvar", "min_q_mvar")),
        ("storage", ("p_mw", "q_mvar", "sn_mva", "max_e_mwh", "min_e_mwh", "max_p_mw", "min_p_mw")),
    ):
        for col in cols:
            if col in net[table]:
                net[table][col] = net[table][col] * k
    net.line["r_ohm_per_km"] /= k
    net.line["x_ohm_per_km"] /= k
    net.line["c_nf_per_km"] *= k
    if "g_us_per_km" in net.line:
        net.line["g_us_per_km"] *= k
    net.line["max_i_ka"] *= k
    net.trafo["sn_mva"] *= k
    return net


def _check_impedance(r: float, x: float, what: str, fields: str) -> None:
    """A branch's series impedance must be finite, non-negative and not zero: a zero
    impedance makes the AC power flow singular (use a bus-bus switch instead)."""
    if not (np.isfinite(r) and np.isfinite(x)) or r < 0 or x < 0:
        raise CaseError(
            f"{what} has an impedance of r = {r:g}, x = {x:g} pu; give {fields} finite, "
            "non-negative values"
        )
    if r == 0 and x == 0:
        raise CaseError(
            f"{what} has zero impedance (r = x = 0); give it {fields} > 0, or join its "
            "buses with a bus-bus switch"
        )


def _is_true(value) -> bool:
    return isinstance(value, bool | np.bool_) and bool(value)


def _tap_factor(row, tap: str) -> float:
    """Factor on the rated voltage of the tap side of one tap changer (``tap`` is
    ``""`` or ``"2"``), as pandapower's power flow applies it: ``|1 + d exp(j a)|`` with
    ``d = (tap_pos - tap_neutral) * tap_step_percent / 100`` and ``a = tap_step_degree``
    for ``Ratio`` and ``Symmetrical`` changers; 1 for ``Ideal`` (phase only) ones and for
    rows without a changer type."""
    kind = row.get(f"tap{tap}_changer_type", None)
    if kind is None and f"tap{tap}_changer_type" not in row.index:
        # data from before pandapower 3: every tap with a step is a ratio tap
        kind = "Ideal" if _is_true(row.get(f"tap{tap}_phase_shifter", False)) else "Ratio"
    if kind not in ("Ratio", "Symmetrical"):
        return 1.0

    def num(col: str) -> float:
        v = row.get(f"tap{tap}_{col}", np.nan)
        try:
            v = float(v)
        except (TypeError, ValueError):
            return 0.0
        return v if np.isfinite(v) else 0.0

    d = (num("pos") - num("neutral")) * num("step_percent") / 100.0
    a = np.deg2rad(num("step_degree"))
    return float(np.hypot(1.0 + d * np.cos(a), d * np.sin(a)))


def trafo_rated_voltages_kv(row, label: str) -> tuple[float, float]:
    """Rated voltages (hv, lv) [kV] of a two-winding transformer with its taps applied.

    Raises
    ------
    CaseError
        A ratio taken from a characteristic table (``tap_dependency_table``).
    """
    vn_hv, vn_lv = float(row.vn_hv_kv), float(row.vn_lv_kv)
    for tap in ("", "2"):
        if f"tap{tap}_pos" not in row.index:
            continue
        if _is_true(row.get(f"tap{tap}_dependency_table", False)):
            raise CaseError(
                f"{label} takes its tap ratio from a characteristic table "
                f"(tap{tap}_dependency_table); give it tap{tap}_step_percent and set "
                f"tap{tap}_dependency_table to False"
            )
        factor = _tap_factor(row, tap)
        if factor == 1.0:
            continue
        side = row.get(f"tap{tap}_side", None)
        if side == "hv":
            vn_hv *= factor
        elif side == "lv":
            vn_lv *= factor
        else:
            raise CaseError(
                f"{label} has tap{tap}_pos away from neutral but tap{tap}_side = {side!r}; "
                f"set tap{tap}_side to 'hv' or 'lv'"
            )
    return vn_hv, vn_lv


def _per_unit_branch(
    net: pp.pandapowerNet, table: str, idx: int, base_mva: float, label: str
) -> tuple[float, float, float, float]:
    """Series r, x [pu on base_mva, low-voltage side for trafos], rating [MVA] and
    off-nominal ratio ``n`` (high- to low-voltage side, per unit) of one line, trafo or
    switch."""
    if table == "line":
        row = net.line.loc[idx]
        vn = float(net.bus.at[row.from_bus, "vn_kv"])
        par = float(row.parallel)
        z_base = vn**2 / base_mva
        r = row.r_ohm_per_km * row.length_km / par / z_base
        x = row.x_ohm_per_km * row.length_km / par / z_base
        rating = row.max_i_ka * row.df * par * vn * np.sqrt(3)
        if "max_loading_percent" in net.line and row.max_loading_percent == row.max_loading_percent:
            rating *= row.max_loading_percent / 100.0
        _check_impedance(r, x, f"{label}: line {idx}", "r_ohm_per_km, x_ohm_per_km and length_km")
        return r, x, rating, 1.0
    if table == "trafo":
        row = net.trafo.loc[idx]
        hv_vn = float(net.bus.at[row.hv_bus, "vn_kv"])
        lv_vn = float(net.bus.at[row.lv_bus, "vn_kv"])
        vn_hv, vn_lv = trafo_rated_voltages_kv(row, f"{label}: trafo {idx}")
        ratio = (vn_hv / vn_lv) / (hv_vn / lv_vn)
        if not (np.isfinite(ratio) and ratio > 0):
            raise CaseError(
                f"{label}: trafo {idx} has a voltage ratio of {ratio:g} (rated "
                f"{row.vn_hv_kv}/{row.vn_lv_kv} kV, tap {row.tap_pos}); give vn_hv_kv, "
                "vn_lv_kv and the tap positive values"
            )
        par = float(row.parallel)
        # pandapower's impedance is in per unit of the (tapped) low-voltage winding
        scale = (vn_lv / lv_vn) ** 2 * base_mva / (row.sn_mva * par)
        r = row.vkr_percent / 100.0 * scale
        x = np.sqrt(max(row.vk_percent**2 - row.vkr_percent**2, 0.0)) / 100.0 * scale
        _check_impedance(r, x, f"{label}: trafo {idx}", "vk_percent and vkr_percent")
        rating = row.sn_mva * par
        if (
            "max_loading_percent" in net.trafo
            and row.max_loading_percent == row.max_loading_percent
        ):
            rating *= row.max_loading_percent / 100.0
        return r, x, rating, float(ratio)
    if table == "switch":
        return 0.0, 0.0, np.inf, 1.0
    raise CaseError(
        f"{label}: branch element '{table}' is not supported in a feeder "
        "(use lines, two-winding trafos and bus-bus switches)"
    )


def feeder_arrays(
    net: pp.pandapowerNet,
    name: str,
    base_mva: float,
    vm_min_pu: float = 0.9,
    vm_max_pu: float = 1.1,
) -> FeederArrays:
    """Build the LinDistFlow array view of a radial feeder.

    Parallel transformers and lines of the same type are merged into one equivalent
    branch first (:func:`cases.networks.merge_parallel_branches`); open switches and
    out-of-service elements are respected, so a feeder meshed only through open switches
    is radial.

    Parameters
    ----------
    net : pandapowerNet
        A feeder with exactly one in-service ``ext_grid`` (the root). Not modified.
    name : str
        Label used in results and messages.
    base_mva : float [MVA]
        System power base for per-unit impedances.
    vm_min_pu, vm_max_pu : float [pu]
        Voltage limits for buses without ``min_vm_pu`` / ``max_vm_pu`` data.

    Raises
    ------
    CaseError
        Meshed or disconnected feeder, missing or several roots, bad ratings.
    """
    check_ratings(net, f"feeder '{name}'")
    net = merge_parallel_branches(net)
    ext = net.ext_grid[net.ext_grid.in_service]
    if len(ext) != 1:
        raise CaseError(
            f"feeder '{name}' needs exactly one in-service ext_grid as its root "
            f"(interface bus), found {len(ext)}"
        )
    root = int(ext.bus.iloc[0])
    tree = check_radial(net, f"feeder '{name}'")
    # the multigraph keys tell which element each edge is
    multi = pp.topology.create_nxgraph(
        net, respect_switches=True, include_out_of_service=False, multi=True
    )
    edge_element: dict[frozenset, tuple[str, int]] = {}
    for u, v, key in multi.edges(keys=True):
        edge_element[frozenset((u, v))] = (str(key[0]), int(key[1]))
    order = [root] + [v for _, v in nx.bfs_edges(tree, root)]
    pos = {b: i for i, b in enumerate(order)}
    parent = np.full(len(order), -1, dtype=int)
    for u, v in nx.bfs_edges(tree, root):
        parent[pos[v]] = pos[u]
    r = np.zeros(len(order) - 1)
    x = np.zeros(len(order) - 1)
    rating = np.zeros(len(order) - 1)
    ratio = np.ones(len(order) - 1)
    kind = np.empty(len(order) - 1, dtype=object)
    element = np.zeros(len(order) - 1, dtype=int)
    for j in range(1, len(order)):
        table, idx = edge_element[frozenset((order[j], order[parent[j]]))]
        r[j - 1], x[j - 1], rating[j - 1], n = _per_unit_branch(
            net, table, idx, base_mva, f"feeder '{name}'"
        )
        if table == "trafo" and int(net.trafo.at[idx, "lv_bus"]) == order[parent[j]]:
            # fed from its low-voltage side: w_hv = n^2 (w_lv - 2 (r P + x Q))
            r[j - 1] *= n**2
            x[j - 1] *= n**2
            n = 1.0 / n
        ratio[j - 1] = n
        kind[j - 1], element[j - 1] = table, idx
    bus = net.bus.loc[order]
    vmin = (
        bus.min_vm_pu.fillna(vm_min_pu).to_numpy()
        if "min_vm_pu" in bus
        else np.full(len(order), vm_min_pu)
    )
    vmax = (
        bus.max_vm_pu.fillna(vm_max_pu).to_numpy()
        if "max_vm_pu" in bus
        else np.full(len(order), vm_max_pu)
    )
    loads = net.load[net.load.in_service]
    p = loads.p_mw * loads.scaling
    q = loads.q_mvar * loads.scaling
    load_p = p.groupby(loads.bus).sum().reindex(order, fill_value=0.0).to_numpy()
    load_q = q.groupby(loads.bus).sum().reindex(order, fill_value=0.0).to_numpy()
    return FeederArrays(
        name=name,
        base_mva=float(base_mva),
        v_root_pu=float(ext.vm_pu.iloc[0]),
        bus_index=np.asarray(order, dtype=int),
        bus_vn_kv=bus.vn_kv.to_numpy(dtype=float),
        vm_min_pu=vmin.astype(float),
        vm_max_pu=vmax.astype(float),
        parent=parent,
        branch_r_pu=r,
        branch_x_pu=x,
        branch_rating_mva=rating,
        branch_kind=kind.astype(str),
        branch_element=element,
        load_p_mw=load_p,
        load_q_mvar=load_q,
        branch_ratio=ratio,
    )
