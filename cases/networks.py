"""Loading pandapower networks by name, SimBench code, JSON file or object, and checking them.

A *network spec* is the name of a pandapower built-in network (``case39``, ``case33bw``,
``cigre_mv``, any ``pandapower.networks.caseXXX`` function), a SimBench code
(``simbench:1-MV-rural--0-sw`` or the bare code, see :mod:`cases.simbench`), the path of a
pandapower JSON file, or (from Python) a ``pandapowerNet`` object.
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
import pandas as pd

from cases.errors import CaseError
from cases.simbench import is_simbench_spec, load_simbench

__all__ = [
    "FEEDER_ALIASES",
    "NoCostWarning",
    "builtin_case_names",
    "check_radial",
    "load_network",
    "merge_parallel_branches",
    "network_label",
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
    # two HV/MV substations (a forest of two feeders), transformers at taps -2 and -3
    "mv_oberrhein": pn.mv_oberrhein,
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


def network_label(spec: str | Path | pp.pandapowerNet) -> str:
    """How a network spec reads in messages and results: the text, or for a net object
    ``<pandapower net: N buses>``."""
    if isinstance(spec, pp.pandapowerNet):
        name = str(spec.get("name") or "").strip()
        return f"<pandapower net{' ' + repr(name) if name else ''}: {len(spec.bus)} buses>"
    return str(spec)


def load_network(spec: str | Path | pp.pandapowerNet) -> pp.pandapowerNet:
    """Load a pandapower network from a built-in name, SimBench code, JSON file or object.

    Parameters
    ----------
    spec : str, Path or pandapowerNet
        Built-in name (see :func:`builtin_case_names`), SimBench code
        (``simbench:<code>`` or the bare code, see :func:`cases.simbench.simbench_codes`),
        path of a pandapower JSON file, or a ``pandapowerNet`` (copied through pandapower
        JSON, as results keep it).

    Returns
    -------
    pandapowerNet
        A fresh copy; the caller may modify it. A SimBench network (also one read back
        from JSON) keeps its profiles in ``net.profiles``.

    Raises
    ------
    CaseError
        If the name or SimBench code is unknown or the file cannot be read as a
        pandapower network.
    """
    if isinstance(spec, pp.pandapowerNet):
        # a copy through pandapower JSON (15 significant digits), the form in which results
        # and run folders keep a net object: a run from the kept study is the same
        # computation, also where a degenerate optimum turns on the last bit of a rating
        return pp.from_json_string(pp.to_json(spec))
    if not isinstance(spec, str | Path):
        raise CaseError(
            f"a network must be a name, SimBench code, JSON path or pandapowerNet, got "
            f"{type(spec).__name__}"
        )
    text = str(spec)
    if is_simbench_spec(text):
        return load_simbench(text)
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
            f"unknown network '{text}'; use a pandapower JSON file, a SimBench code "
            f"(simbench:1-MV-rural--0-sw) or a built-in name such as {', '.join(close)} "
            "(see `workbench cases`)"
        )
    return copy.deepcopy(_load_builtin(text))


_TRAFO_TYPE = (
    "sn_mva",
    "vn_hv_kv",
    "vn_lv_kv",
    "vk_percent",
    "vkr_percent",
    "pfe_kw",
    "i0_percent",
    "shift_degree",
    "tap_pos",
    "tap_neutral",
    "tap_step_percent",
    "tap_step_degree",
    "tap_side",
    "tap_changer_type",
    "df",
    "max_loading_percent",
)
_LINE_TYPE = (
    "length_km",
    "r_ohm_per_km",
    "x_ohm_per_km",
    "c_nf_per_km",
    "g_us_per_km",
    "max_i_ka",
    "df",
    "max_loading_percent",
)


def _same(a: pd.Series, b: pd.Series, cols: tuple[str, ...]) -> bool:
    for c in cols:
        if c not in a.index:
            continue
        x, y = a[c], b[c]
        if pd.isna(x) and pd.isna(y):
            continue
        if isinstance(x, int | float | np.number) and isinstance(y, int | float | np.number):
            if not np.isclose(float(x), float(y), rtol=1e-9, atol=1e-12):
                return False
        elif x != y:
            return False
    return True


def merge_parallel_branches(net: pp.pandapowerNet) -> pp.pandapowerNet:
    """Merge parallel transformers and lines of the same type into one equivalent each.

    Two in-service branches are parallel when they join the same two groups of buses,
    where buses tied by closed bus-bus switches count as one (SimBench substations: two
    HV/MV transformers on coupled busbars). Of a set of identical ones (same rating,
    impedance, ratio and tap for transformers; same length, impedance and rating for
    lines), the first keeps ``parallel`` = their sum of ``parallel`` and the others go out
    of service: the impedance becomes the parallel combination (``z / n``) and the rating
    the sum. Branches switched open (``et`` ``t`` / ``l`` switches), out of service, or on
    an out-of-service bus are left alone; so are parallel branches of different types.

    Parameters
    ----------
    net : pandapowerNet
        Not modified.

    Returns
    -------
    pandapowerNet
        ``net`` itself if nothing is parallel, else a merged copy.
    """
    groups = top.create_nxgraph(
        net,
        respect_switches=True,
        include_out_of_service=False,
        include_lines=False,
        include_trafos=False,
        include_impedances=False,
        include_trafo3ws=False,
        include_dclines=False,
        include_tcsc=False,
        include_vsc=False,
        include_line_dc=False,
    )
    groups.add_nodes_from(net.bus.index[net.bus.in_service.astype(bool)])
    group = {b: i for i, comp in enumerate(nx.connected_components(groups)) for b in comp}
    open_sw = net.switch[~net.switch.closed.astype(bool)]
    out = None
    for table, cols, ends, et in (
        ("trafo", _TRAFO_TYPE, ("hv_bus", "lv_bus"), "t"),
        ("line", _LINE_TYPE, ("from_bus", "to_bus"), "l"),
    ):
        df = net[table]
        live = df[
            df.in_service.astype(bool)
            & df[ends[0]].isin(group.keys())
            & df[ends[1]].isin(group.keys())
            & ~df.index.isin(open_sw.element[open_sw.et == et])
        ]
        kept: dict[tuple, list[int]] = {}
        for idx, row in live.iterrows():
            key = (group[row[ends[0]]], group[row[ends[1]]])
            if table == "line":
                key = tuple(sorted(key))
            same = [k for k in kept.get(key, []) if _same(df.loc[k], row, cols)]
            if not same:
                kept.setdefault(key, []).append(int(idx))
                continue
            out = copy.deepcopy(net) if out is None else out
            first = same[0]
            out[table].at[first, "parallel"] = int(
                out[table].at[first, "parallel"] + out[table].at[idx, "parallel"]
            )
            out[table].at[idx, "in_service"] = False
    return net if out is None else out


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
    """Bus pairs joined by more than one branch (edge keys are ``(table, index)``)."""
    return [(u, v) for u, v in nx.Graph(graph).edges() if graph.number_of_edges(u, v) > 1]


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
