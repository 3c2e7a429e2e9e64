"""Networks with several substations: one radial feeder per in-service ``ext_grid``.

A real medium-voltage network is often fed by several HV/MV substations, each an
``ext_grid`` (pandapower's ``mv_oberrhein`` has two). Every ``ext_grid`` is the root of
the part of the network it feeds (the buses connected to it through closed switches and
in-service branches); the parts must not touch, so the network is a *forest* of radial
feeders. :func:`substation_parts` finds the parts and :func:`substation_net` cuts one out
as a network of its own, with everything outside it out of service (indices unchanged).
"""

from __future__ import annotations

import copy

import networkx as nx
import numpy as np
import pandapower as pp
import pandapower.topology as top

from cases.errors import CaseError

__all__ = ["in_service_roots", "substation_net", "substation_nets", "substation_parts"]

#: element tables attached to one bus
_BUS_TABLES = (
    "load",
    "sgen",
    "storage",
    "gen",
    "ext_grid",
    "shunt",
    "ward",
    "xward",
    "motor",
    "asymmetric_load",
    "asymmetric_sgen",
)
#: branch tables and their end-bus columns
_BRANCH_TABLES = (
    ("line", ("from_bus", "to_bus")),
    ("trafo", ("hv_bus", "lv_bus")),
    ("trafo3w", ("hv_bus", "mv_bus", "lv_bus")),
    ("impedance", ("from_bus", "to_bus")),
    ("dcline", ("from_bus", "to_bus")),
)
#: tables whose in-service elements carry power (a bus with one must be fed)
_POWER_TABLES = ("load", "sgen", "storage", "gen", "motor")


def in_service_roots(net: pp.pandapowerNet) -> list[int]:
    """Indices of the in-service ``ext_grid`` elements (the substations), in table order."""
    ext = net.ext_grid
    return [int(i) for i in ext.index[ext.in_service.astype(bool)]]


def substation_parts(net: pp.pandapowerNet, label: str) -> dict[int, set[int]]:
    """The buses fed by each substation.

    Parameters
    ----------
    net : pandapowerNet
    label : str
        Name used in messages.

    Returns
    -------
    dict
        ``ext_grid`` index -> set of pandapower bus indices of its part.

    Raises
    ------
    CaseError
        No in-service ``ext_grid``; two of them in one connected part (the substations
        must be separated by open switches); loads or generators fed by none.
    """
    roots = in_service_roots(net)
    if not roots:
        raise CaseError(f"{label} has no in-service ext_grid; a feeder needs one as its root")
    graph = top.create_nxgraph(net, respect_switches=True, include_out_of_service=False)
    graph.add_nodes_from(net.bus.index[net.bus.in_service.astype(bool)])
    parts: dict[int, set[int]] = {}
    owner: dict[int, int] = {}
    for k in roots:
        bus = int(net.ext_grid.at[k, "bus"])
        if bus in owner:
            raise CaseError(
                f"{label}: ext_grids {owner[bus]} and {k} feed one connected part (through "
                f"bus {bus}); open a switch between the substations so that each feeds a "
                "radial part of its own"
            )
        part = {int(b) for b in nx.node_connected_component(graph, bus)}
        for b in part:
            owner[b] = k
        parts[k] = part
    powered = set()
    for table in _POWER_TABLES:
        df = net[table] if table in net else None
        if df is not None and len(df):
            powered |= {int(b) for b in df.bus[df.in_service.astype(bool)]}
    unfed = sorted(b for b in powered - owner.keys() if bool(net.bus.at[b, "in_service"]))
    if unfed:
        raise CaseError(
            f"{label}: buses {unfed[:8]} carry loads or generators but no ext_grid feeds "
            "them; connect them (close a switch) or set them out of service"
        )
    return parts


def substation_net(net: pp.pandapowerNet, ext_grid: int, buses: set[int]) -> pp.pandapowerNet:
    """A copy of ``net`` in which only ``buses`` (the part of ``ext_grid``) are in service.

    Every element attached to a bus outside the part, every branch with no end in it,
    and every other ``ext_grid`` are set out of service; indices are kept, so results map
    back to ``net``.
    """
    out = copy.deepcopy(net)
    outside = np.setdiff1d(out.bus.index.to_numpy(), np.fromiter(buses, int))
    out.bus.loc[outside, "in_service"] = False
    for table in _BUS_TABLES:
        if table in out and len(out[table]):
            df = out[table]
            df.loc[df.bus.isin(outside), "in_service"] = False
    for table, ends in _BRANCH_TABLES:
        if table in out and len(out[table]):
            df = out[table]
            # a branch with one end in the part reaches out through an open switch: it
            # stays, as the charging of an open-ended line in the whole network does
            df.loc[df[list(ends)].isin(outside).all(axis=1), "in_service"] = False
    others = out.ext_grid.index != ext_grid
    out.ext_grid.loc[others, "in_service"] = False
    return out


def substation_nets(
    net: pp.pandapowerNet, label: str, substation: int | None = None
) -> list[tuple[int, pp.pandapowerNet]]:
    """One network per substation, or the one of ``substation``.

    A network with a single in-service ``ext_grid`` comes back as it is.

    Parameters
    ----------
    net : pandapowerNet
        Not modified.
    label : str
    substation : int, optional
        ``ext_grid`` index of the substation to keep (default: all of them, a forest).

    Returns
    -------
    list of (int, pandapowerNet)
        ``ext_grid`` index and its part, in ``ext_grid`` order.

    Raises
    ------
    CaseError
        ``substation`` is not an in-service ``ext_grid``, or see :func:`substation_parts`.
    """
    roots = in_service_roots(net)
    if substation is not None and substation not in roots:
        raise CaseError(
            f"{label}: substation {substation} is not an in-service ext_grid; choose one "
            f"of {', '.join(str(k) for k in roots) or '(none)'}"
        )
    if len(roots) == 1:
        return [(roots[0], net)]
    parts = substation_parts(net, label)
    keep = roots if substation is None else [substation]
    return [(k, substation_net(net, k, parts[k])) for k in keep]
