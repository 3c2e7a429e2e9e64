"""The LP a persistent HiGHS interface holds, keyed by Pyomo names, and its comparison.

Used to prove that a change of the model code leaves a formulation row-for-row the same
(``tests/data/*_lp.json.gz``, written by ``tests/data/make_reference_lp.py``).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pyomo.environ as pyo

__all__ = ["compare_lp", "lp_snapshot", "read_lp", "write_lp"]


def _bound(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def lp_snapshot(solver, model) -> dict:
    """Rows ``{name: [{var: coef}, lb, ub]}``, column bounds and objective of the LP in HiGHS.

    Parameters
    ----------
    solver : stochastic.solve.PersistentSolver
        After ``set_instance`` (construction).
    model : pyomo ConcreteModel
    """
    iface = solver._solver
    lp = iface._solver_model.getLp()
    a = lp.a_matrix_
    start, index, val = np.array(a.start_), np.array(a.index_), np.array(a.value_)
    names = {
        iface._pyomo_var_to_solver_var_map[id(v)]: v.name
        for v in model.component_data_objects(pyo.Var)
        if id(v) in iface._pyomo_var_to_solver_var_map
    }
    rows: dict[int, dict] = {r: {} for r in range(lp.num_row_)}
    rowwise = a.format_.name == "kRowwise"
    for major in range(len(start) - 1):
        for k in range(start[major], start[major + 1]):
            r, j = (major, index[k]) if rowwise else (index[k], major)
            rows[int(r)][names[int(j)]] = float(val[k])
    row_lo, row_hi = np.array(lp.row_lower_), np.array(lp.row_upper_)
    col_lo, col_hi = np.array(lp.col_lower_), np.array(lp.col_upper_)
    out_rows = {
        con.name: [rows[r], _bound(row_lo[r]), _bound(row_hi[r])]
        for con, r in iface._pyomo_con_to_solver_con_map.items()
    }
    return {
        "rows": out_rows,
        "bounds": {names[j]: [_bound(col_lo[j]), _bound(col_hi[j])] for j in range(lp.num_col_)},
        "cost": {names[j]: float(c) for j, c in enumerate(lp.col_cost_) if c},
        "offset": float(lp.offset_),
    }


def write_lp(snapshot: dict, path: str | Path) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        json.dump(snapshot, fh, sort_keys=True, separators=(",", ":"))


def read_lp(path: str | Path) -> dict:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return json.load(fh)


def _close(a, b, rtol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= rtol * max(1.0, abs(a), abs(b))


def compare_lp(new: dict, ref: dict, rtol: float = 1e-9, limit: int = 10) -> list[str]:
    """Differences between two snapshots (at most ``limit`` per kind); empty if equal."""
    out: list[str] = []
    for kind in ("rows", "bounds"):
        missing = sorted(set(ref[kind]) - set(new[kind]))
        extra = sorted(set(new[kind]) - set(ref[kind]))
        if missing:
            out.append(f"{kind} missing ({len(missing)}): {missing[:limit]}")
        if extra:
            out.append(f"{kind} added ({len(extra)}): {extra[:limit]}")
    bad = []
    for name in sorted(set(ref["rows"]) & set(new["rows"])):
        (ca, la, ua), (cb, lb, ub) = new["rows"][name], ref["rows"][name]
        same = (
            set(ca) == set(cb)
            and all(_close(ca[v], cb[v], rtol) for v in ca)
            and _close(la, lb, rtol)
            and _close(ua, ub, rtol)
        )
        if not same:
            bad.append(name)
    if bad:
        out.append(f"rows changed ({len(bad)}): {bad[:limit]}")
    bad = [
        n
        for n in sorted(set(ref["bounds"]) & set(new["bounds"]))
        if not all(
            _close(x, y, rtol) for x, y in zip(new["bounds"][n], ref["bounds"][n], strict=True)
        )
    ]
    if bad:
        out.append(f"column bounds changed ({len(bad)}): {bad[:limit]}")
    names = set(new["cost"]) | set(ref["cost"])
    bad = [
        n
        for n in sorted(names)
        if not _close(new["cost"].get(n, 0.0), ref["cost"].get(n, 0.0), rtol)
    ]
    if bad:
        out.append(f"objective coefficients changed ({len(bad)}): {bad[:limit]}")
    if not _close(new["offset"], ref["offset"], rtol):
        out.append(f"objective offset {new['offset']} vs {ref['offset']}")
    return out
