"""Technologies of transmission energy resources: marginal costs, ramp rates, unit limits.

The table ``cases/data/ter_technologies_2016.csv`` (see ``TER_COSTS_PROVENANCE.md``) gives
per technology the 2016 fuel and CO2 prices, efficiency, marginal cost and a typical ramp
rate; ``cases/data/ter_technical_limits.csv`` (same file of provenance; literature
assumptions) the minimum stable generation, minimum up and down times and start-up cost
used by unit commitment. A study assigns technologies to units by name (``gen/0``,
``ext_grid/0``, as in the results' ``gen`` dimension) and may override any unit's marginal
cost; units left out keep the case's own polynomial cost, minimum output and no ramp limit.
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


def _csv(name: str) -> pd.DataFrame:
    path = resources.files("cases") / "data" / name
    with resources.as_file(path) as p:
        return pd.read_csv(p, index_col="technology")


@cache
def _read() -> pd.DataFrame:
    costs = _csv("ter_technologies_2016.csv")
    limits = _csv("ter_technical_limits.csv")
    missing = sorted(set(costs.index) ^ set(limits.index))
    if missing:
        raise CaseError(f"technology tables disagree on the technologies {missing}")
    return costs.join(limits)


def technology_table() -> pd.DataFrame:
    """Technologies (index) with ``marginal_cost_eur_per_mwh``, ``ramp_percent_per_min``,
    the fuel, CO2 and efficiency figures they come from, and the unit-commitment limits
    ``min_stable_percent`` [%], ``min_up_h``, ``min_down_h`` [h] and
    ``startup_cost_eur_per_mw`` [EUR/MW] (a copy)."""
    return _read().copy()


def apply_technologies(
    tarr: TransmissionArrays,
    technologies: Mapping[str, str],
    marginal_costs: Mapping[str, float],
    label: str = "transmission",
) -> TransmissionArrays:
    """Arrays with the technologies' linear marginal costs, ramp limits and unit-commitment
    limits (minimum stable output, minimum up/down times, start-up cost) applied.

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
    stable = tarr.gen_min_stable_mw.copy()
    up_h, down_h = tarr.gen_min_up_h.copy(), tarr.gen_min_down_h.copy()
    startup = tarr.gen_startup_eur_per_mw.copy()
    for unit, name in technologies.items():
        i = pos[unit]
        row = table.loc[name]
        c0[i], c1[i], c2[i] = 0.0, float(row.marginal_cost_eur_per_mwh), 0.0
        ramp[i] = float(row.ramp_percent_per_min) / 100.0 * 60.0 * tarr.gen_pmax_mw[i]
        tech[i] = name
        stable[i] = float(row.min_stable_percent) / 100.0 * tarr.gen_pmax_mw[i]
        up_h[i], down_h[i] = float(row.min_up_h), float(row.min_down_h)
        startup[i] = float(row.startup_cost_eur_per_mw)
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
        gen_min_stable_mw=np.asarray(stable, dtype=float),
        gen_min_up_h=np.asarray(up_h, dtype=float),
        gen_min_down_h=np.asarray(down_h, dtype=float),
        gen_startup_eur_per_mw=np.asarray(startup, dtype=float),
    )
