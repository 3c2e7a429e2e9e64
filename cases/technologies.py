"""Technologies of transmission energy resources: marginal costs and ramp rates.

The table ``cases/data/ter_technologies_2016.csv`` (see ``TER_COSTS_PROVENANCE.md``) gives
per technology the 2016 fuel and CO2 prices, efficiency, marginal cost and a typical ramp
rate. A study assigns technologies to units by name (``gen/0``, ``ext_grid/0``, as in the
results' ``gen`` dimension) and may override any unit's marginal cost; units left out keep
the case's own polynomial cost and no ramp limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from functools import cache
from importlib import resources

import numpy as np
import pandas as pd

from cases.errors import CaseError
from cases.transmission import TransmissionArrays

__all__ = ["apply_technologies", "technology_table"]


@cache
def _read() -> pd.DataFrame:
    path = resources.files("cases") / "data" / "ter_technologies_2016.csv"
    with resources.as_file(path) as p:
        return pd.read_csv(p, index_col="technology")


def technology_table() -> pd.DataFrame:
    """Technologies (index) with ``marginal_cost_eur_per_mwh``, ``ramp_percent_per_min`` and
    the fuel, CO2 and efficiency figures they come from (a copy)."""
    return _read().copy()


def apply_technologies(
    tarr: TransmissionArrays,
    technologies: Mapping[str, str],
    marginal_costs: Mapping[str, float],
    label: str = "transmission",
) -> TransmissionArrays:
    """Arrays with the technologies' linear marginal costs and ramp limits applied.

    Parameters
    ----------
    tarr : TransmissionArrays
    technologies : mapping unit name -> technology
        Unit names ``<table>/<index>`` (``gen/3``); technologies of :func:`technology_table`.
    marginal_costs : mapping unit name -> float [EUR/MWh]
        Overrides (after the technology).
    label : str
        Name used in error messages.

    Raises
    ------
    CaseError
        Unknown unit or technology, or a negative marginal cost.
    """
    table = _read()
    names = [f"{k}/{e}" for k, e in zip(tarr.gen_kind, tarr.gen_element, strict=True)]
    pos = {n: i for i, n in enumerate(names)}
    for key, mapping in (
        ("technologies", technologies),
        ("marginal_cost_eur_per_mwh", marginal_costs),
    ):
        unknown = [u for u in mapping if u not in pos]
        if unknown:
            raise CaseError(
                f"{label}.{key}: unknown unit(s) {unknown}; the units of this case are "
                f"{', '.join(names)}"
            )
    bad = sorted({t for t in technologies.values() if t not in table.index})
    if bad:
        raise CaseError(
            f"{label}.technologies: unknown technology {bad}; allowed: {', '.join(table.index)}"
        )
    neg = {u: c for u, c in marginal_costs.items() if not c >= 0}
    if neg:
        raise CaseError(f"{label}.marginal_cost_eur_per_mwh: must be >= 0, got {neg}")
    c0 = tarr.gen_cost_c0_eur_per_h.copy()
    c1 = tarr.gen_cost_c1_eur_per_mwh.copy()
    c2 = tarr.gen_cost_c2_eur_per_mw2h.copy()
    ramp = tarr.gen_ramp_mw_per_h.copy()
    tech = tarr.gen_technology.astype(object).copy()
    for unit, name in technologies.items():
        i = pos[unit]
        row = table.loc[name]
        c0[i], c1[i], c2[i] = 0.0, float(row.marginal_cost_eur_per_mwh), 0.0
        ramp[i] = float(row.ramp_percent_per_min) / 100.0 * 60.0 * tarr.gen_pmax_mw[i]
        tech[i] = name
    for unit, cost in marginal_costs.items():
        i = pos[unit]
        c0[i], c1[i], c2[i] = 0.0, float(cost), 0.0
    return replace(
        tarr,
        gen_cost_c0_eur_per_h=c0,
        gen_cost_c1_eur_per_mwh=c1,
        gen_cost_c2_eur_per_mw2h=c2,
        gen_ramp_mw_per_h=np.asarray(ramp, dtype=float),
        gen_technology=np.asarray(tech, dtype=str),
    )
