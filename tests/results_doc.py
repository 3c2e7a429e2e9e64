"""The variable tables of docs/results.md, read back to check them against real results."""

from __future__ import annotations

import re
from pathlib import Path

import xarray as xr

DOC = Path(__file__).resolve().parents[1] / "docs" / "results.md"


def documented_variables() -> dict[str, tuple[tuple[str, ...], str]]:
    """Variable name -> (dimensions, units) from the tables of the results dataset."""
    text = DOC.read_text(encoding="utf-8").split("## Forecast files")[0]
    out = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].startswith("`"):
            continue
        dims = tuple(d.strip() for d in cells[1].split(","))
        for name in re.findall(r"`([a-z_0-9]+)`", cells[0]):
            out[name] = (dims, cells[2])
    return out


def doc_mismatches(ds: xr.Dataset) -> list[str]:
    """Every data variable of ``ds`` that docs/results.md misses or describes with other
    dimensions or units."""
    doc = documented_variables()
    wrong = []
    for name, var in ds.data_vars.items():
        if name not in doc:
            wrong.append(f"{name} {var.dims}: not in docs/results.md")
            continue
        dims, units = doc[name]
        if dims != var.dims:
            wrong.append(f"{name}: {var.dims} in the results, {dims} in docs/results.md")
        if units not in ("", "flag") and var.attrs.get("units") != units:
            wrong.append(f"{name}: units {var.attrs.get('units')!r}, {units!r} in the docs")
    return wrong
