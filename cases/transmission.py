"""Array view of a transmission network for DC optimal power flow.

The per-unit branch data, generator limits and costs are taken from pandapower's own
conversion to the PYPOWER case format (``to_ppc`` in OPF mode), so a network means here
exactly what it means to pandapower's ``rundcopp``.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandapower as pp
from pandapower.converter.pypower.to_ppc import to_ppc
from pandapower.pypower.idx_brch import BR_STATUS, BR_X, F_BUS, RATE_A, SHIFT, T_BUS, TAP
from pandapower.pypower.idx_bus import BUS_TYPE, GS, PD, REF
from pandapower.pypower.idx_gen import GEN_BUS, GEN_STATUS, PMAX, PMIN

from cases.errors import CaseError

__all__ = ["TransmissionArrays", "transmission_arrays"]

#: pandapower element tables that may appear as generators in the OPF
_GEN_TABLES = ("ext_grid", "gen", "sgen", "storage", "load")


@dataclass(frozen=True, eq=False)
class TransmissionArrays:
    """A transmission network as arrays (internal bus numbering ``0..n_bus-1``).

    Attributes
    ----------
    base_mva : float [MVA]
    bus_index : ndarray of int
        pandapower bus index of each internal bus.
    bus_name : ndarray of str
    demand_mw : ndarray [MW]
        Fixed net demand per bus (loads, non-controllable generation as negative, shunt
        conductance), as pandapower's DC OPF sees it.
    ref_bus : int
        Internal index of the angle reference bus.
    branch_from, branch_to : ndarray of int
    branch_b_pu : ndarray [pu]
        DC series susceptance ``1 / (x * tap)`` on ``base_mva``.
    branch_shift_rad : ndarray [rad]
    branch_rating_mw : ndarray [MW]
        ``inf`` where the case sets no limit.
    branch_kind : ndarray of str  (``line`` or ``trafo``)
    branch_element : ndarray of int  (pandapower index within its table)
    gen_bus : ndarray of int
    gen_kind, gen_element : element table and index of each generator
    gen_pmin_mw, gen_pmax_mw : ndarray [MW]
    gen_cost_c0_eur_per_h, gen_cost_c1_eur_per_mwh, gen_cost_c2_eur_per_mw2h : ndarray
        Polynomial cost ``c0 + c1 p + c2 p^2`` [EUR/h].
    gen_ramp_mw_per_h : ndarray [MW/h]
        Ramp limit of each unit (``inf``: none).
    gen_technology : ndarray of str
        Technology of each unit (``case`` where the case's own cost is used).
    gen_min_stable_mw : ndarray [MW]
        Minimum stable output while committed (used with unit commitment; default: the
        case's ``gen_pmin_mw``).
    gen_min_up_h, gen_min_down_h : ndarray [h]
        Minimum up and down times (default 0: none).
    gen_startup_eur_per_mw : ndarray [EUR/MW]
        Cost of one start-up per MW of capacity (default 0).
    """

    base_mva: float
    bus_index: np.ndarray
    bus_name: np.ndarray
    demand_mw: np.ndarray
    ref_bus: int
    branch_from: np.ndarray
    branch_to: np.ndarray
    branch_b_pu: np.ndarray
    branch_shift_rad: np.ndarray
    branch_rating_mw: np.ndarray
    branch_kind: np.ndarray
    branch_element: np.ndarray
    gen_bus: np.ndarray
    gen_kind: np.ndarray
    gen_element: np.ndarray
    gen_pmin_mw: np.ndarray
    gen_pmax_mw: np.ndarray
    gen_cost_c0_eur_per_h: np.ndarray
    gen_cost_c1_eur_per_mwh: np.ndarray
    gen_cost_c2_eur_per_mw2h: np.ndarray
    gen_ramp_mw_per_h: np.ndarray | None = None
    gen_technology: np.ndarray | None = None
    gen_min_stable_mw: np.ndarray | None = None
    gen_min_up_h: np.ndarray | None = None
    gen_min_down_h: np.ndarray | None = None
    gen_startup_eur_per_mw: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.gen_min_stable_mw is None:
            object.__setattr__(self, "gen_min_stable_mw", np.asarray(self.gen_pmin_mw, float))
        for name in ("gen_min_up_h", "gen_min_down_h", "gen_startup_eur_per_mw"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.zeros(self.n_gen))
        if self.gen_ramp_mw_per_h is None:
            object.__setattr__(self, "gen_ramp_mw_per_h", np.full(self.n_gen, np.inf))
        if self.gen_technology is None:
            object.__setattr__(self, "gen_technology", np.full(self.n_gen, "case"))

    @property
    def n_bus(self) -> int:
        return len(self.bus_index)

    @property
    def n_branch(self) -> int:
        return len(self.branch_from)

    @property
    def n_gen(self) -> int:
        return len(self.gen_bus)

    def bus_position(self, pp_bus: int) -> int:
        """Internal index of pandapower bus ``pp_bus``."""
        hits = np.flatnonzero(self.bus_index == pp_bus)
        if len(hits) == 0:
            raise CaseError(f"bus {pp_bus} is not an in-service transmission bus")
        return int(hits[0])


def _check_costs(net: pp.pandapowerNet, label: str) -> None:
    if len(net.pwl_cost):
        raise CaseError(
            f"{label}: piecewise-linear costs (pwl_cost) are not supported; give "
            "polynomial costs with pandapower.create_poly_cost"
        )
    costed = set(zip(net.poly_cost.et, net.poly_cost.element, strict=True))
    for table in ("ext_grid", "gen"):
        df = net[table]
        active = df.index[df.in_service & df.get("controllable", True)] if len(df) else []
        for idx in active:
            if (table, idx) not in costed:
                raise CaseError(
                    f"{label}: {table} {idx} has no cost; add one with "
                    f"pandapower.create_poly_cost(net, {idx}, '{table}', cp1_eur_per_mw=...)"
                )
    for table in ("sgen", "storage", "load"):
        df = net[table]
        if len(df) and "controllable" in df:
            for idx in df.index[df.in_service & df.controllable.fillna(False).astype(bool)]:
                if (table, idx) not in costed:
                    raise CaseError(
                        f"{label}: controllable {table} {idx} has no cost; add one with "
                        f"pandapower.create_poly_cost(net, {idx}, '{table}', cp1_eur_per_mw=...)"
                    )


#: pandapower's note that a generator's voltage set-point lies above its bus's limit
#: (logger, start of the message): the DC model reads no voltages, so it does not apply
_GEN_VM_NOTE = ("pandapower.build_gen", "gen vm_pu > bus max_vm_pu")


class _DropNote(logging.Filter):
    def __init__(self, start: str) -> None:
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.start)


@contextlib.contextmanager
def _without_note(logger: str, start: str) -> Iterator[None]:
    """Inside: the records of ``logger`` whose message begins with ``start`` are dropped."""
    drop = _DropNote(start)
    log = logging.getLogger(logger)
    log.addFilter(drop)
    try:
        yield
    finally:
        log.removeFilter(drop)


def transmission_arrays(net: pp.pandapowerNet, label: str = "transmission") -> TransmissionArrays:
    """Build the DC-OPF array view of ``net``.

    Parameters
    ----------
    net : pandapowerNet
        Transmission network with polynomial costs for every dispatchable unit.
    label : str
        Name used in error messages.

    Raises
    ------
    CaseError
        Missing costs, no reference bus, or elements the DC model does not support.
    """
    _check_supported(net, label)
    with warnings.catch_warnings(), _without_note(*_GEN_VM_NOTE):
        warnings.simplefilter("ignore")
        ppc = to_ppc(net, init="flat", mode="opf", calculate_voltage_angles=True)
    lookups = net._pd2ppc_lookups
    bus = ppc["bus"].real
    pp_bus, names = _ppc_buses(net, np.asarray(lookups["bus"]), bus.shape[0], label)

    br = ppc["branch"]
    kind, element = _branch_elements(net, lookups["branch"], br.shape[0], label)
    active = br[:, BR_STATUS].real > 0
    br = br[active]
    x = br[:, BR_X].real
    tap = br[:, TAP].real
    tap = np.where(tap == 0, 1.0, tap)
    if np.any(x == 0):
        raise CaseError(f"{label}: a branch has zero reactance; the DC model needs x > 0")
    rating = br[:, RATE_A].real
    rating = np.where(rating > 0, rating, np.inf)

    gen, gen_kind, gen_element = _ppc_generators(net, ppc, label)
    gencost = ppc["gencost"].real
    c0, c1, c2 = _poly_coefficients(gencost[: gen.shape[0]], label)
    ref = np.flatnonzero(bus[:, BUS_TYPE] == REF)
    return TransmissionArrays(
        base_mva=float(ppc["baseMVA"]),
        bus_index=pp_bus,
        bus_name=names,
        demand_mw=bus[:, PD] + bus[:, GS],
        ref_bus=int(ref[0]) if len(ref) else 0,
        branch_from=br[:, F_BUS].real.astype(int),
        branch_to=br[:, T_BUS].real.astype(int),
        branch_b_pu=1.0 / (x * tap),
        branch_shift_rad=np.deg2rad(br[:, SHIFT].real),
        branch_rating_mw=rating,
        branch_kind=kind[active],
        branch_element=element[active],
        gen_bus=gen[:, GEN_BUS].astype(int),
        gen_kind=gen_kind.astype(str),
        gen_element=gen_element,
        gen_pmin_mw=_clean(gen[:, PMIN]),
        gen_pmax_mw=_clean(gen[:, PMAX]),
        gen_cost_c0_eur_per_h=c0,
        gen_cost_c1_eur_per_mwh=c1,
        gen_cost_c2_eur_per_mw2h=c2,
    )


def _check_supported(net: pp.pandapowerNet, label: str) -> None:
    """An angle reference, only elements the DC model knows, and costs."""
    if len(net.ext_grid[net.ext_grid.in_service]) == 0 and not (
        "slack" in net.gen and net.gen.slack.any()
    ):
        raise CaseError(
            f"{label}: no in-service ext_grid or slack gen; add one as the angle "
            "reference (pandapower.create_ext_grid)"
        )
    for table in ("dcline", "trafo3w", "impedance", "xward", "tcsc", "svc", "ssc", "vsc"):
        if table in net and len(net[table]) and net[table].in_service.any():
            raise CaseError(
                f"{label}: in-service '{table}' elements are not supported by the DC "
                "model yet; remove them or convert them to lines/trafos"
            )
    _check_costs(net, label)


def _ppc_buses(
    net: pp.pandapowerNet, bus_lookup: np.ndarray, n_bus: int, label: str
) -> tuple[np.ndarray, np.ndarray]:
    """The pandapower index and name of each ppc bus."""
    pp_bus = np.full(n_bus, -1, dtype=int)
    in_service = net.bus.index[net.bus.in_service].to_numpy()
    for b in in_service:
        pos = bus_lookup[b]
        if 0 <= pos < n_bus and pp_bus[pos] < 0:
            pp_bus[pos] = b
    # buses merged by closed bus-bus switches keep the first pandapower index seen
    if (pp_bus < 0).any():
        raise CaseError(
            f"{label}: internal auxiliary buses (three-winding transformers or open "
            "line switches) are not supported by the DC model yet"
        )
    names = net.bus.name.reindex(pp_bus).to_numpy()
    names = np.array(
        [str(n) if n is not None and n == n else str(b) for n, b in zip(names, pp_bus, strict=True)]
    )
    return pp_bus, names


def _ppc_generators(
    net: pp.pandapowerNet, ppc: dict, label: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """In-service ppc generator rows, and the pandapower table and index of each."""
    gen = ppc["gen"].real
    gen = gen[gen[:, GEN_STATUS] > 0] if gen.size else gen
    gen_kind = np.empty(gen.shape[0], dtype=object)
    gen_element = np.full(gen.shape[0], -1, dtype=int)
    # pandapower's generator order: ranges per element type over in-service elements
    for key, (start, stop) in net._gen_order.items():
        table = key.removesuffix("_controllable")
        mask = np.asarray(net._is_elements[key], dtype=bool)
        idx = net[table].index.to_numpy()[mask]
        if len(idx) != int(stop) - int(start) or table not in _GEN_TABLES:
            raise CaseError(
                f"{label}: cannot match OPF generators of type '{key}' to "
                "pandapower elements (unsupported element type)"
            )
        gen_kind[int(start) : int(stop)] = table
        gen_element[int(start) : int(stop)] = idx
    if (gen_element < 0).any():
        missing = int(np.flatnonzero(gen_element < 0)[0])
        raise CaseError(
            f"{label}: OPF generator {missing} could not be matched to a pandapower "
            "element (unsupported controllable element type)"
        )
    return gen, gen_kind, gen_element


def _branch_elements(net, ranges: dict, n_rows: int, label: str) -> tuple[np.ndarray, ...]:
    """Element table and index of every branch row of pandapower's internal case.

    pandapower's lookup ranges span whole element tables, while its internal case keeps
    the in-service elements only (in table order); both layouts are recognised.
    """
    order = sorted(ranges.items(), key=lambda kv: kv[1][0])
    for in_service_only in (True, False):
        kinds, elems = [], []
        for table, _ in order:
            df = net[table]
            idx = df.index[df.in_service.astype(bool)] if in_service_only else df.index
            kinds += [table] * len(idx)
            elems += idx.tolist()
        if len(elems) == n_rows:
            return np.array(kinds, dtype=str), np.array(elems, dtype=int)
    raise CaseError(
        f"{label}: cannot match the {n_rows} branches of the DC model to "
        "pandapower elements (unsupported branch elements)"
    )


def _clean(x: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """Replace round-off values (pandapower writes +-1e-10 for zero limits) by 0."""
    return np.where(np.abs(x) < tol, 0.0, x)


def _poly_coefficients(gencost: np.ndarray, label: str) -> tuple[np.ndarray, ...]:
    """Split PYPOWER polynomial cost rows (model 2, highest order first) into c0, c1, c2."""
    n = gencost.shape[0]
    c = np.zeros((n, 3))
    for i, row in enumerate(gencost):
        if int(row[0]) != 2:
            raise CaseError(f"{label}: generator {i} has a non-polynomial cost model")
        ncoef = int(row[3])
        if ncoef > 3:
            raise CaseError(
                f"{label}: generator {i} has a cost polynomial of degree "
                f"{ncoef - 1}; at most quadratic costs are supported"
            )
        coefs = row[4 : 4 + ncoef][::-1]
        c[i, : len(coefs)] = coefs
    if (c[:, 2] < 0).any():
        raise CaseError(f"{label}: a quadratic cost coefficient is negative (non-convex cost)")
    return c[:, 0], c[:, 1], c[:, 2]
