"""Loading pandapower networks by name or JSON file, and checking them.

A *network spec* is either the name of a pandapower built-in network (``case39``,
``case33bw``, ``cigre_mv``, any ``pandapower.networks.caseXXX`` function) or the path
of a pandapower JSON file.
"""

from __future__ import annotations

import copy
import inspect
import warnings
from collections.abc import Callable
from functools import cache
from pathlib import Path

import networkx as nx
import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pandapower.topology as top

from cases.errors import CaseError

__all__ = [
    "FEEDER_ALIASES",
    "NoCostWarning",
    "builtin_case_names",
    "check_radial",
    "load_network",
    "with_generation_costs",
]


class NoCostWarning(UserWarning):
    """A network without any generator cost: the OPF minimises the total generation."""


def with_generation_costs(net: pp.pandapowerNet, label: str = "network") -> pp.pandapowerNet:
    """``net`` itself if it has costs; else a copy costing 1 EUR/MWh for every unit.

    pandapower's OPF convention for a network without any ``poly_cost`` or ``pwl_cost``:
    minimise the total generation (every ``ext_grid``, ``gen`` and controllable
    ``sgen``/``storage`` at the same linear cost). A :class:`NoCostWarning` says so.
    """
    if len(net.poly_cost) or len(net.pwl_cost):
        return net
    warnings.warn(
        f"{label} has no generator costs; minimising the total generation "
        "(pandapower's convention, 1 EUR/MWh for every unit)",
        NoCostWarning,
        stacklevel=2,
    )
    net = copy.deepcopy(net)
    for table in ("ext_grid", "gen", "sgen", "storage"):
        df = net[table]
        if not len(df):
            continue
        if table in ("sgen", "storage"):
            if "controllable" not in df:
                continue
            df = df[df.controllable.fillna(False).astype(bool)]
        for idx in df.index[df.in_service.astype(bool)]:
            pp.create_poly_cost(net, int(idx), table, cp1_eur_per_mw=1.0)
    return net


#: short names of distribution networks shipped with pandapower
FEEDER_ALIASES: dict[str, Callable[[], pp.pandapowerNet]] = {
    "cigre_mv": lambda: pn.create_cigre_network_mv(with_der="pv_wind"),
    "cigre_mv_no_der": lambda: pn.create_cigre_network_mv(with_der=False),
}


@cache
def builtin_case_names() -> tuple[str, ...]:
    """Names accepted by :func:`load_network` (pandapower ``case*`` functions and aliases)."""
    cases = [
        name
        for name, fn in inspect.getmembers(pn, inspect.isfunction)
        if name.startswith("case")
        and all(
            p.default is not inspect.Parameter.empty or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
            for p in inspect.signature(fn).parameters.values()
        )
    ]
    return tuple(sorted(cases) + sorted(FEEDER_ALIASES))


@cache
def _load_builtin(name: str) -> pp.pandapowerNet:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name in FEEDER_ALIASES:
            return FEEDER_ALIASES[name]()
        return getattr(pn, name)()


def load_network(spec: str | Path) -> pp.pandapowerNet:
    """Load a pandapower network from a built-in name or a JSON file.

    Parameters
    ----------
    spec : str or Path
        Built-in name (see :func:`builtin_case_names`) or path of a pandapower JSON file.

    Returns
    -------
    pandapowerNet
        A fresh copy; the caller may modify it.

    Raises
    ------
    CaseError
        If the name is unknown or the file cannot be read as a pandapower network.
    """
    text = str(spec)
    if text.lower().endswith(".json"):
        path = Path(text)
        if not path.is_file():
            raise CaseError(
                f"network file '{text}' does not exist; give an existing pandapower "
                "JSON file (pandapower.to_json) or a built-in case name"
            )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return pp.from_json(str(path))
        except Exception as exc:  # pandapower raises many types for malformed files
            raise CaseError(
                f"network file '{text}' is not a pandapower JSON network: {exc}"
            ) from exc
    if text not in builtin_case_names():
        close = [n for n in builtin_case_names() if n.startswith(text[:5])] or list(
            builtin_case_names()[:12]
        )
        raise CaseError(
            f"unknown network '{text}'; use a pandapower JSON file or a built-in "
            f"name such as {', '.join(close)} (see `workbench cases`)"
        )
    return copy.deepcopy(_load_builtin(text))


def check_radial(net: pp.pandapowerNet, label: str) -> nx.Graph:
    """Check that the in-service part of ``net`` is one radial (tree) network.

    Open switches are respected; buses without any in-service element attached
    and no branch are ignored.

    Returns
    -------
    networkx.Graph
        The tree (nodes are pandapower bus indices).

    Raises
    ------
    CaseError
        If the network is meshed or split into several parts.
    """
    graph = top.create_nxgraph(net, respect_switches=True, include_out_of_service=False, multi=True)
    buses = net.bus.index[net.bus.in_service]
    graph.add_nodes_from(buses)
    if graph.number_of_nodes() == 0:
        raise CaseError(f"{label} has no in-service bus")
    n_parts = nx.number_connected_components(graph)
    if n_parts > 1:
        parts = sorted(nx.connected_components(graph), key=len)
        raise CaseError(
            f"{label} is disconnected: {n_parts} separate parts (smallest holds buses "
            f"{sorted(int(b) for b in parts[0])[:8]}); connect them or set the isolated buses "
            "out of service"
        )
    n_edges = graph.number_of_edges()
    if n_edges != graph.number_of_nodes() - 1:
        cycle = nx.cycle_basis(nx.Graph(graph)) or [[e[0], e[1]] for e in _parallel_edges(graph)]
        raise CaseError(
            f"{label} is meshed ({n_edges} branches for {graph.number_of_nodes()} buses; "
            f"a loop runs through buses {sorted(int(b) for b in cycle[0]) if cycle else '?'}); "
            "open a switch or set a line out of service to make it radial"
        )
    return nx.Graph(graph)


def _parallel_edges(graph: nx.MultiGraph) -> list[tuple[int, int]]:
    return [(u, v) for u, v, k in graph.edges(keys=True) if k > 0]


def check_ratings(net: pp.pandapowerNet, label: str) -> None:
    """Reject negative, zero or missing ratings and impedances that make a model meaningless.

    Required and strictly positive: line ``max_i_ka``, ``length_km``; trafo ``sn_mva``,
    ``vk_percent``; bus ``vn_kv``. Non-negative: line impedances, sgen ``sn_mva`` (may be
    missing). Load ``p_mw`` must be a number.
    """
    positive = [
        ("line", "max_i_ka"),
        ("line", "length_km"),
        ("trafo", "sn_mva"),
        ("trafo", "vk_percent"),
        ("bus", "vn_kv"),
    ]
    non_negative = [("line", "r_ohm_per_km"), ("line", "x_ohm_per_km"), ("sgen", "sn_mva")]
    for table, col, rule in (
        [(t, c, "positive") for t, c in positive]
        + [(t, c, "non-negative") for t, c in non_negative]
        + [("load", "p_mw", "number")]
    ):
        df = net[table]
        if len(df) == 0 or col not in df:
            continue
        values = df[col].to_numpy(dtype=float)
        if rule == "positive":
            bad = ~(values > 0)
        elif rule == "non-negative":
            bad = values < 0
        else:
            bad = np.isnan(values)
        if bad.any():
            idx = df.index[bad][0]
            raise CaseError(
                f"{label}: {table} {idx} has {col} = {df.at[idx, col]}; it must be a "
                f"{rule} number (fix the network data)"
            )
