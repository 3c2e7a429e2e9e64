"""One row per coordination model of a results file: the figures a planner compares.

Everything is summed over the days of the file with a schedule (expected values over
scenarios where a figure is random), so models run on the same days compare directly.
The figures come from :class:`workbench.statistics.Statistics`; the solver's own
records (objective, problems solved, message rounds, feeder-limit checks) and the
extremes of the AC check are read from the file.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from tabulate import tabulate

from cases.study import MODEL_SHORT_NAMES
from stochastic.status import SOLVED_STATUSES
from workbench.statistics import Statistics, stage_hours

__all__ = ["SHORT_NAMES", "compare_models", "compare_table", "stage_hours"]

#: keys of the comparison: the models' short names
SHORT_NAMES = MODEL_SHORT_NAMES


def _total(da: xr.DataArray | None) -> float | None:
    """Sum over everything left (days, categories); None when nothing is known."""
    if da is None or not np.isfinite(da.values).any():
        return None
    return float(np.nansum(da.values))


def _count(da: xr.DataArray | None) -> int | None:
    total = _total(da)
    return None if total is None else round(total)


def _ac_extremes(d: xr.Dataset) -> tuple[float | None, float | None]:
    """The AC voltage farthest from 1 pu and the highest loading of the checked steps."""
    if "vm_pu_ac" not in d or not np.isfinite(d["vm_pu_ac"].values).any():
        return None, None
    vm = d["vm_pu_ac"].values.ravel()
    worst_vm = float(vm[np.nanargmax(np.abs(vm - 1.0))])
    return worst_vm, float(np.nanmax(d["loading_percent_ac"].values))


def compare_models(ds: xr.Dataset) -> dict:
    """The comparison as a JSON-ready dict: ``{"models": {name: {...}}}``.

    Models are keyed by their short names (``tso``, ``hybrid``, ``dso``, variants as
    ``hybrid:prevalidation``, ``dso:local_market``, ``dso:target``).

    Per model: ``expected_cost_eur``, ``cvar_eur``, ``der_offered_mwh``,
    ``der_accepted_mwh``, ``der_dispatched_mwh``, ``curtailment_mwh``, ``load_shed_mwh``,
    ``ac_violations`` (= transmission + distribution voltage violations + overloads, in
    bus-steps / branch-steps of the checked sample), ``ac_violations_transmission``,
    ``ac_violations_distribution``, ``ac_not_converged`` (checked steps whose AC power
    flow did not converge), ``worst_vm_pu`` (the AC voltage farthest from 1 pu),
    ``worst_loading_percent``, ``feeder_limit_violations`` (scenario-steps of the final
    dispatch outside a feeder's LinDistFlow limits), ``problems_solved``, ``solver_s``,
    ``wall_s``, ``data_exchanged_values``, ``data_exchanged_bytes``, ``exchange_rounds`` (message
    rounds per day), ``cost_gap_to_centralised_eur`` (expected cost minus the
    TSO-managed model's) and ``objective_gap_to_centralised_eur`` (the same for the
    risk-adjusted objective ``(1 - beta) E + beta CVaR``, which the centralised model
    minimises: its gap is never negative, while the expected cost of another model can be
    lower than the centralised one when ``beta > 0``). A figure is None when the file
    lacks it or the model has no day with a schedule.

    ``ds`` in either layout (:mod:`workbench.contract`).
    """
    st = Statistics(ds)
    ds = st.ds
    ex = st.expectation
    cost = st.cost(by="owner").sum("owner", skipna=False)
    volumes = ex(st.der_volumes())
    stats = {
        "expected_cost_eur": ex(cost),
        "cvar_eur": st.cvar(cost),
        "der_accepted_mwh": volumes.sel(volume="accepted"),
        "der_dispatched_mwh": volumes.sel(volume="dispatched"),
        "curtailment_mwh": ex(st.curtailment()),
        "load_shed_mwh": ex(st.load_shed()),
    }
    if "offered" in volumes.volume:
        stats["der_offered_mwh"] = volumes.sel(volume="offered")
    ac = st.ac_violations().sum("scenario", skipna=False) if st.available("ac_violations") else None
    times = ex(st.solve_time())
    data = {u: ex(st.data_exchanged(unit=u)) for u in ("values", "bytes")}
    out = {}
    for model in ds.model.values:
        ok = ds["solver_status"].sel(model=model).isin(SOLVED_STATUSES).values
        d = ds.sel(model=model).isel(day=np.flatnonzero(ok))

        def total(da: xr.DataArray | None, model=model, ok=ok) -> float | None:
            return None if da is None else _total(da.sel(model=model).isel(day=np.flatnonzero(ok)))

        def count(da: xr.DataArray | None, model=model, ok=ok) -> int | None:
            return None if da is None else _count(da.sel(model=model).isel(day=np.flatnonzero(ok)))

        def check(kind: str) -> int | None:
            return None if ac is None else count(ac.sel(check=kind))

        worst_vm, worst_loading = _ac_extremes(d)
        row: dict[str, float | int | None] = {
            "days": int(ok.sum()),
            "expected_cost_eur": total(stats["expected_cost_eur"]),
            "cvar_eur": total(stats["cvar_eur"]),
            "objective_eur": _total(d.get("objective_eur")),
            "der_offered_mwh": total(stats.get("der_offered_mwh")),
            "der_accepted_mwh": total(stats["der_accepted_mwh"]),
            "der_dispatched_mwh": total(stats["der_dispatched_mwh"]),
            "curtailment_mwh": total(stats["curtailment_mwh"]),
            "load_shed_mwh": total(stats["load_shed_mwh"]),
            "ac_violations_transmission": check("voltage_transmission"),
            "ac_violations_distribution": check("voltage_distribution"),
            "ac_violations": None
            if ac is None
            else count(ac.sel(check=["voltage_transmission", "voltage_distribution", "overloads"])),
            "ac_not_converged": check("not_converged"),
            "worst_vm_pu": worst_vm,
            "worst_loading_percent": worst_loading,
            "feeder_limit_violations": _count(d.get("feeder_violation_steps")),
            # NaN where a model makes no regions: none overstated
            "region_storage_overstatement_mwh": float(d["region_storage_overstatement_mwh"].sum())
            if "region_storage_overstatement_mwh" in d
            else None,
            "problems_solved": _count(d.get("problems_solved")),
            "solver_s": total(times.sel(step="solver")),
            "wall_s": total(times.sel(step="wall")),
            "data_exchanged_values": count(data["values"]),
            "data_exchanged_bytes": count(data["bytes"]),
            "exchange_rounds": int(d["exchange_rounds"].max())
            if "exchange_rounds" in d and np.isfinite(d["exchange_rounds"].values).any()
            else None,
        }
        out[SHORT_NAMES.get(str(model), str(model))] = row
    for key in ("cost", "objective"):
        name = "expected_cost_eur" if key == "cost" else "objective_eur"
        central = out.get("tso", {}).get(name)
        for row in out.values():
            value = row[name]
            row[f"{key}_gap_to_centralised_eur"] = (
                value - central if central is not None and value is not None else None
            )
    return {"models": out}


def _cell(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:,.4f}" if abs(v) < 10 else f"{v:,.1f}"
    return f"{v:,}"


def compare_table(summary: dict) -> str:
    """The comparison as a plain-text table (one column per model)."""
    models = summary["models"]
    names = list(models)
    keys = list(next(iter(models.values())))
    rows = [[k, *(_cell(models[n][k]) for n in names)] for k in keys]
    return tabulate(
        rows,
        headers=["", *names],
        tablefmt="plain",
        disable_numparse=True,
        colalign=("left", *("right",) * len(names)),
    )
