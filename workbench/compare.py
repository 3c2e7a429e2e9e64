"""One row per coordination model of a results file: the figures a planner compares.

Everything is summed over the days of the file (expected values over scenarios where a
figure is random), so models run on the same days compare directly.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from cases.study import MODEL_SHORT_NAMES
from workbench.contract import to_internal

__all__ = ["SHORT_NAMES", "compare_models", "compare_table", "stage_hours"]


def _sum(d: xr.Dataset, name: str) -> float | None:
    if name not in d:
        return None
    v = d[name].values.astype(float)
    return float(np.nansum(v)) if np.isfinite(v).any() else None


def _expected(d: xr.Dataset, da: xr.DataArray, dims: tuple[str, ...], hours: float) -> float:
    """Expected energy of a (day, scenario, time, ...) power array, summed over days [MWh]."""
    per_scenario = da.sum([x for x in dims if x in da.dims]) * hours
    return float((per_scenario * d["weight"]).sum())


def stage_hours(ds: xr.Dataset) -> tuple[float, float]:
    """Second-stage step and first-stage period lengths of a results file [h].

    The step is the spacing of ``time`` (a single step spans the one-hour horizon); a
    period holds ``time / period`` steps, so a period spanning the whole horizon (one
    ``period``) has its length too.
    """
    n_t, n_p = ds.sizes.get("time", 0), ds.sizes.get("period", 0)
    step_h = (
        float((ds.time.values[1] - ds.time.values[0]) / np.timedelta64(1, "h")) if n_t > 1 else 1.0
    )
    period_h = step_h * (n_t // n_p) if n_t and n_p else 1.0
    return step_h, period_h


#: keys of the comparison: the models' short names
SHORT_NAMES = MODEL_SHORT_NAMES


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
    lower than the centralised one when ``beta > 0``).

    ``ds`` in either layout (:mod:`workbench.contract`).
    """
    ds = to_internal(ds)
    step_h, period_h = stage_hours(ds)
    out = {}
    for model in ds.model.values:
        d = ds.sel(model=model)
        ok = d["solver_status"] == "optimal"
        d = d.sel(day=ok.values) if "day" in d.dims else d
        row: dict[str, float | int | None] = {
            "days": int(ok.sum()),
            "expected_cost_eur": _sum(d, "expected_cost_eur"),
            "cvar_eur": _sum(d, "cvar_eur"),
            "objective_eur": _sum(d, "objective_eur"),
            "der_offered_mwh": float(d["der_offer_mw"].sum()) * period_h
            if "der_offer_mw" in d
            else None,
            "der_accepted_mwh": float((d["der_bid_up_mw"] + d["der_bid_down_mw"]).sum()) * period_h,
            "der_dispatched_mwh": _expected(
                d,
                d["der_activated_up_mw"] + d["der_activated_down_mw"],
                ("time", "der"),
                step_h,
            ),
            "curtailment_mwh": _sum(d, "curtailment_mwh"),
            "load_shed_mwh": _sum(d, "load_shed_mwh"),
        }
        vt = d.get("voltage_violations_transmission_ac")
        vd = d.get("voltage_violations_distribution_ac")
        ov = d.get("overloads_ac")
        clip = (lambda x: int(x.clip(min=0).sum())) if vt is not None else (lambda x: None)
        row["ac_violations_transmission"] = clip(vt) if vt is not None else None
        row["ac_violations_distribution"] = clip(vd) if vd is not None else None
        row["ac_violations"] = (
            clip(vt) + clip(vd) + clip(ov) if vt is not None and ov is not None else None
        )
        # an AC flow that did not converge is no violation-free step: count it apart
        row["ac_not_converged"] = (
            int(d["ac_checked"].sum()) - int(d["ac_converged"].sum())
            if "ac_checked" in d and "ac_converged" in d
            else None
        )
        if "vm_pu_ac" in d and np.isfinite(d["vm_pu_ac"].values).any():
            vm = d["vm_pu_ac"].values
            dev = np.abs(vm - 1.0)
            row["worst_vm_pu"] = float(vm.ravel()[np.nanargmax(dev.ravel())])
            row["worst_loading_percent"] = float(np.nanmax(d["loading_percent_ac"].values))
        else:
            row["worst_vm_pu"] = row["worst_loading_percent"] = None
        row["feeder_limit_violations"] = (
            int(_sum(d, "feeder_violation_steps") or 0) if "feeder_violation_steps" in d else None
        )
        row["region_storage_overstatement_mwh"] = (
            float(d["region_storage_overstatement_mwh"].sum())
            if "region_storage_overstatement_mwh" in d
            else None
        )
        row["problems_solved"] = int(_sum(d, "problems_solved") or 0)
        row["solver_s"] = _sum(d, "solver_seconds")
        row["wall_s"] = _sum(d, "wall_seconds")
        row["data_exchanged_values"] = int(_sum(d, "message_values") or 0)
        row["data_exchanged_bytes"] = int(_sum(d, "message_bytes") or 0)
        row["exchange_rounds"] = int(d["exchange_rounds"].max()) if "exchange_rounds" in d else None
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


def compare_table(summary: dict) -> str:
    """The comparison as a plain-text table (one column per model)."""
    models = summary["models"]
    keys = list(next(iter(models.values())))
    names = list(models)
    width = max(len(k) for k in keys)

    def cell(v) -> str:
        if v is None:
            return "n/a"
        if isinstance(v, float):
            return f"{v:,.4f}" if abs(v) < 10 else f"{v:,.1f}"
        return f"{v:,}"

    cols = [max(len(n), *(len(cell(models[n][k])) for k in keys)) for n in names]
    lines = ["  ".join([" " * width, *(n.rjust(c) for n, c in zip(names, cols, strict=True))])]
    for k in keys:
        cells = [cell(models[n][k]).rjust(c) for n, c in zip(names, cols, strict=True)]
        lines.append("  ".join([k.ljust(width), *cells]))
    return "\n".join(lines)
