"""Out-of-sample proof of a schedule: fresh scenarios, VSS and EVPI.

For every model and day of a results file the day-ahead (first-stage) decision is fixed
and the recourse is solved on ``N`` fresh scenarios drawn from the same forecaster on an
independent random stream. Beside it, on the same fresh scenarios:

* the expected-value problem's decision (one scenario: the probability-weighted mean of
  the in-sample set), evaluated the same way: EEV, and VSS = EEV - RP;
* the wait-and-see solutions (each fresh scenario solved with its own first stage):
  WS, and EVPI = RP - WS.

Costs are compared with the study's risk measure ``(1 - beta) E[cost] + beta CVaR_alpha``
over equally weighted fresh scenarios. The in-sample VSS (EEV on the in-sample set against
the stochastic solution's own in-sample measure) is reported too: unlike the out-of-sample
figure it cannot be negative. Every second-stage solve is a one-scenario model re-used for
a batch of scenarios through parameter updates; batches run in parallel on Dask.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace

import dask
import numpy as np
import pandas as pd
import xarray as xr

from cases.study import StudyConfig
from cases.system import IntegratedSystem, build_system
from forecasts.generate import ScenarioForecaster
from stochastic.bids import apply_bids, der_bids
from stochastic.extract import first_stage_values, first_stage_vars, scenario_summary
from stochastic.risk import cvar
from stochastic.solve import PersistentSolver, SolverError, highs_settings
from stochastic.status import SOLVED_STATUSES
from stochastic.twostage import TwoStageModel, TwoStageOptions, build_two_stage, day_data
from workbench.runner import resolve_scheduler
from workbench.scenarios import fit_study_forecaster
from workbench.state import DayState, day_inputs, state_from_results
from workbench.threads import limit_threads

__all__ = ["evaluate_results", "evaluation_summary"]

#: random stream of the fresh scenarios (the study's own scenarios are stream 0)
FRESH_STREAM = 1
_NAME = re.compile(r"^(?P<key>[^\[]+)\[(?P<i>\d+)\]$")


def _options(study: StudyConfig) -> TwoStageOptions:
    """Options of the evaluation solves: no efficiency weight (a one-scenario model
    minimises that scenario's cost exactly)."""
    return replace(TwoStageOptions.from_study(study), recourse_efficiency_weight=0.0)


def _one(scenarios: xr.Dataset, i: int) -> xr.Dataset:
    one = scenarios.isel(scenario=[i])
    return one.assign(weight=("scenario", [1.0]))


def mean_scenario(scenarios: xr.Dataset) -> xr.Dataset:
    """The probability-weighted mean of a scenario set, as a one-scenario set."""
    w = scenarios["weight"]
    out = xr.Dataset(
        {"weight": ("scenario", [1.0])}, coords={"time": scenarios.time, "period": scenarios.period}
    )
    for name in ("value_pu", "ev_p_max_mw", "ev_e_min_mwh", "ev_e_max_mwh", "ev_p_uncontrolled_mw"):
        if name in scenarios:
            mean = (scenarios[name] * w).sum("scenario") / w.sum()
            out[name] = mean.expand_dims(scenario=[0]).transpose("scenario", "time", ...)
    if "expected_pu" in scenarios:  # central profile (feeders with their own profiles)
        out["expected_pu"] = scenarios["expected_pu"]
    return out


def fix_first_stage(tsm: TwoStageModel, solver: PersistentSolver, values: xr.DataArray) -> None:
    """Fix the first-stage variables of ``tsm`` at ``values`` (from ``first_stage_value``).

    Raises
    ------
    ValueError
        When the names or sizes do not match the model (results of another system or
        formulation).
    """
    arrays = first_stage_vars(tsm)
    grouped: dict[str, dict[int, float]] = {}
    for name, value in zip(values["first_stage"].values, values.values, strict=True):
        m = _NAME.match(str(name))
        if m is None or m["key"] not in arrays:
            raise ValueError(
                f"first-stage variable '{name}' of the results is not in the model; the "
                "results were written by another formulation: re-run the study"
            )
        grouped.setdefault(m["key"], {})[int(m["i"])] = float(value)
    for key, var in arrays.items():
        got = grouped.get(key, {})
        if sorted(got) != list(range(var.size)):
            raise ValueError(
                f"the results hold {len(got)} values of '{key}', the model has {var.size}; "
                "re-run the study with this version"
            )
        solver.fix(var, np.array([got[i] for i in range(var.size)]).reshape(var.shape))


def _solve_batch(
    system: IntegratedSystem,
    study: StudyConfig,
    scenarios: xr.Dataset,
    indices: list[int],
    first_stage: xr.DataArray | None,
    state: DayState,
    bids: xr.Dataset,
) -> list[dict]:
    """Solve each scenario of ``indices`` alone, first stage fixed (or free: wait-and-see,
    the DER following the day's ``bids``), from the day's start ``state``."""
    limit_threads()
    options = _options(study)
    out, tsm, solver = [], None, None
    for i in indices:
        data = day_data(system, _one(scenarios, i), options, state.battery_e_mwh)
        if tsm is None:
            tsm = build_two_stage(system, data, options)
            highs, limit = highs_settings(study)
            solver = PersistentSolver(tsm.model, time_limit_s=limit, options=highs)
            if first_stage is not None:
                fix_first_stage(tsm, solver, first_stage)
            else:
                apply_bids(solver, tsm, bids)
        else:
            tsm.set_data(data)
            solver.update_parameters(warm_start=True)
        try:
            solver.solve()
        except SolverError as exc:
            out.append({"scenario": i, "feasible": False, "message": str(exc)})
            continue
        summary = {k: float(v[0]) for k, v in scenario_summary(tsm).items()}
        out.append({"scenario": i, "feasible": True, "message": "", **summary})
    return out


def _ev_first_stage(
    system: IntegratedSystem,
    study: StudyConfig,
    scenarios: xr.Dataset,
    state: DayState,
    bids: xr.Dataset,
) -> xr.DataArray:
    """First stage of the expected-value problem (one scenario: the mean)."""
    limit_threads()
    options = _options(study)
    data = day_data(system, mean_scenario(scenarios), options, state.battery_e_mwh)
    tsm = build_two_stage(system, data, options)
    highs, limit = highs_settings(study)
    solver = PersistentSolver(tsm.model, time_limit_s=limit, options=highs)
    apply_bids(solver, tsm, bids)
    solver.solve()
    return first_stage_values(tsm)


def _batches(n: int, n_batches: int) -> list[list[int]]:
    return [list(map(int, b)) for b in np.array_split(np.arange(n), max(1, n_batches)) if len(b)]


def _measure(costs: np.ndarray, alpha: float, beta: float, weights=None) -> dict[str, float]:
    """Expected cost, CVaR and the study's risk measure of scenario costs [EUR]."""
    c = np.asarray(costs, dtype=float)
    w = np.full(len(c), 1.0 / len(c)) if weights is None else np.asarray(weights, dtype=float)
    expected = float(w @ c)
    tail = cvar(c, w, alpha)
    return {
        "expected_cost_eur": expected,
        "cvar_eur": tail,
        "objective_eur": (1 - beta) * expected + beta * tail,
    }


def evaluate_results(
    results: xr.Dataset,
    *,
    n_scenarios: int = 30,
    scheduler=None,
    workers: int | None = None,
    progress: bool = True,
    forecaster: ScenarioForecaster | None = None,
    wait_and_see: bool = True,
) -> xr.Dataset:
    """Evaluate every schedule of a results dataset out of sample.

    Parameters
    ----------
    results : xarray.Dataset
        Written by ``workbench run`` (holds the study and ``first_stage_value``).
    n_scenarios : int
        Fresh scenarios per day (>= 2).
    scheduler, workers
        See :func:`workbench.runner.resolve_scheduler`.
    progress : bool
    forecaster : ScenarioForecaster, optional
        The study's fitted forecasters (fitted here from the study and seed if missing).
    wait_and_see : bool
        Also solve the wait-and-see problems (EVPI).

    Returns
    -------
    xarray.Dataset
        ``results`` with the evaluation added: per (model, day, fresh_scenario) the costs
        of the stochastic (``oos_cost_eur``) and expected-value (``eev_cost_eur``)
        decisions and of wait-and-see (``ws_cost_eur``), feasibility, shedding and
        curtailment; per (model, day) the expected costs, CVaRs, ``vss_eur``,
        ``vss_in_sample_eur`` and ``evpi_eur``.
    """
    if n_scenarios < 2:
        raise ValueError(f"--scenarios must be at least 2, got {n_scenarios}")
    if "first_stage_value" not in results:
        raise ValueError(
            "the results hold no first-stage decisions (written by an older version); "
            "re-run the study"
        )
    limit_threads()
    study = StudyConfig.from_results(results)  # the seed the run used, its networks
    seed = study.seed
    alpha, beta = study.risk.alpha, study.risk.beta
    tick = time.perf_counter()
    system = build_system(study)
    if forecaster is None:
        forecaster = fit_study_forecaster(study, seed)
    options = _options(study)
    jobs = []  # (model, day, kind, batch delayed)
    with resolve_scheduler(scheduler, workers) as ex:
        sys_d = dask.delayed(system, traverse=False)
        study_d = dask.delayed(study, traverse=False)
        n_batches = max(1, ex.n_workers)
        for model in results.model.values:
            for day in results.day.values:
                status = str(results["solver_status"].sel(model=model, day=day).values)
                if status not in SOLVED_STATUSES:
                    continue
                date = pd.Timestamp(day).date()
                state = state_from_results(results.sel(model=model, day=day), system.fleet)
                fresh, _ = day_inputs(
                    system, study, date, seed, forecaster, state, options, n_scenarios, FRESH_STREAM
                )
                inside, inside_data = day_inputs(
                    system, study, date, seed, forecaster, state, options
                )
                bids = der_bids(system, inside_data, options)
                x_rp = results["first_stage_value"].sel(model=model, day=day).dropna("first_stage")
                x_ev = dask.delayed(_ev_first_stage, pure=False)(
                    sys_d, study_d, inside, state, bids
                )
                fresh_d = dask.delayed(fresh, traverse=False)
                inside_d = dask.delayed(inside, traverse=False)
                plan = [("oos", fresh_d, n_scenarios, x_rp), ("eev", fresh_d, n_scenarios, x_ev)]
                plan.append(("eev_in", inside_d, inside.sizes["scenario"], x_ev))
                if wait_and_see:
                    plan.append(("ws", fresh_d, n_scenarios, None))
                for kind, scen, n, x in plan:
                    for batch in _batches(n, n_batches):
                        task = dask.delayed(_solve_batch, pure=False)(
                            sys_d, study_d, scen, batch, x, state, bids
                        )
                        jobs.append((str(model), date, kind, task))
        done = ex.compute([j[3] for j in jobs], progress=progress, label="evaluation")
    rows: dict[tuple, list[dict]] = {}
    for (model, date, kind, _), out in zip(jobs, done, strict=True):
        rows.setdefault((model, date, kind), []).extend(out)
    return _evaluation_dataset(results, rows, n_scenarios, alpha, beta, time.perf_counter() - tick)


def _evaluation_dataset(results, rows, n_scenarios, alpha, beta, wall_s) -> xr.Dataset:
    models = [str(m) for m in results.model.values]
    days = results.day.values
    shape3 = (len(models), len(days), n_scenarios)
    fields = ("cost_eur", "load_shed_mwh", "curtailment_mwh", "spill_mwh")
    per = {
        kind: {f: np.full(shape3, np.nan) for f in (*fields, "feasible")}
        for kind in ("oos", "eev", "ws")
    }
    day_vars = {
        name: np.full((len(models), len(days)), np.nan)
        for name in (
            "oos_expected_cost_eur",
            "oos_cvar_eur",
            "oos_objective_eur",
            "oos_feasible_count",
            "oos_expected_load_shed_mwh",
            "oos_expected_curtailment_mwh",
            "eev_eur",
            "ws_eur",
            "vss_eur",
            "evpi_eur",
            "eev_in_sample_eur",
            "vss_in_sample_eur",
        )
    }
    for mi, model in enumerate(models):
        for di, day in enumerate(days):
            date = pd.Timestamp(day).date()
            for kind in ("oos", "eev", "ws"):
                for r in rows.get((model, date, kind), []):
                    s = r["scenario"]
                    per[kind]["feasible"][mi, di, s] = float(r["feasible"])
                    for f in fields:
                        per[kind][f][mi, di, s] = r.get(f, np.nan)
            if (model, date, "oos") not in rows:
                continue
            oos = per["oos"]["cost_eur"][mi, di]
            ok = np.isfinite(oos)
            day_vars["oos_feasible_count"][mi, di] = ok.sum()
            if ok.any():
                m = _measure(oos[ok], alpha, beta)
                day_vars["oos_expected_cost_eur"][mi, di] = m["expected_cost_eur"]
                day_vars["oos_cvar_eur"][mi, di] = m["cvar_eur"]
                day_vars["oos_objective_eur"][mi, di] = m["objective_eur"]
                day_vars["oos_expected_load_shed_mwh"][mi, di] = np.mean(
                    per["oos"]["load_shed_mwh"][mi, di][ok]
                )
                day_vars["oos_expected_curtailment_mwh"][mi, di] = np.mean(
                    per["oos"]["curtailment_mwh"][mi, di][ok]
                )
            eev = per["eev"]["cost_eur"][mi, di]
            if ok.all() and np.isfinite(eev).all():
                day_vars["eev_eur"][mi, di] = _measure(eev, alpha, beta)["objective_eur"]
                day_vars["vss_eur"][mi, di] = (
                    day_vars["eev_eur"][mi, di] - day_vars["oos_objective_eur"][mi, di]
                )
            ws = per["ws"]["cost_eur"][mi, di]
            if ok.all() and np.isfinite(ws).all() and (model, date, "ws") in rows:
                day_vars["ws_eur"][mi, di] = _measure(ws, alpha, beta)["objective_eur"]
                day_vars["evpi_eur"][mi, di] = (
                    day_vars["oos_objective_eur"][mi, di] - day_vars["ws_eur"][mi, di]
                )
            inside = rows.get((model, date, "eev_in"), [])
            eev_in, vss_in = _in_sample_vss(inside, results.sel(model=model, day=day), alpha, beta)
            day_vars["eev_in_sample_eur"][mi, di] = eev_in
            day_vars["vss_in_sample_eur"][mi, di] = vss_in
    return _with_evaluation(results, per, day_vars, n_scenarios, wall_s)


def _in_sample_vss(inside: list[dict], day: xr.Dataset, alpha: float, beta: float) -> tuple:
    """EEV on the in-sample scenarios and the in-sample VSS against the day's own
    objective ``(1 - beta) E + beta CVaR`` [EUR] (nan when incomplete)."""
    costs = np.array(
        [r.get("cost_eur", np.nan) for r in sorted(inside, key=lambda r: r["scenario"])]
    )
    if not (len(costs) and np.isfinite(costs).all()):
        return np.nan, np.nan
    weights = day["weight"].values[: len(costs)]
    eev_in = _measure(costs, alpha, beta, weights / weights.sum())["objective_eur"]
    rp_in = (1 - beta) * float(day["expected_cost_eur"]) + beta * float(day["cvar_eur"])
    return eev_in, eev_in - rp_in


def _with_evaluation(results, per, day_vars, n_scenarios, wall_s) -> xr.Dataset:
    """``results`` with the per-scenario and per-day evaluation variables added."""
    dims3 = ("model", "day", "fresh_scenario")
    out = results.copy()
    labels = {
        "oos": "the stochastic solution's first stage",
        "eev": "the expected-value problem's first stage",
        "ws": "wait-and-see (perfect information)",
    }
    for kind, arrays in per.items():
        out[f"{kind}_cost_eur"] = (
            dims3,
            arrays["cost_eur"],
            {"units": "EUR", "long_name": f"cost on fresh scenarios, {labels[kind]}"},
        )
        out[f"{kind}_feasible"] = (
            dims3,
            arrays["feasible"],
            {"units": "1", "long_name": f"recourse feasible (1) or not (0), {labels[kind]}"},
        )
        for f in ("load_shed_mwh", "curtailment_mwh", "spill_mwh"):
            out[f"{kind}_{f}"] = (
                dims3,
                arrays[f],
                {
                    "units": "MWh",
                    "long_name": f"{f.rsplit('_', 1)[0]} on fresh scenarios, {labels[kind]}",
                },
            )
    units = {
        "oos_feasible_count": "1",
        "oos_expected_load_shed_mwh": "MWh",
        "oos_expected_curtailment_mwh": "MWh",
    }
    for name, values in day_vars.items():
        out[name] = (
            ("model", "day"),
            values,
            {"units": units.get(name, "EUR"), "long_name": name.replace("_", " ")},
        )
    out = out.assign_coords(fresh_scenario=np.arange(n_scenarios))
    out.attrs.update(
        evaluation_scenarios=int(n_scenarios),
        evaluation_stream=FRESH_STREAM,
        evaluation_wall_seconds=round(wall_s, 2),
        evaluation_measure="(1 - beta) E[cost] + beta CVaR_alpha[cost], equal weights",
    )
    return out


def evaluation_summary(ds: xr.Dataset) -> dict:
    """The evaluation of a dataset as one JSON-ready dict (figures summed over days).

    ``scenarios`` and ``feasible`` count (fresh scenario, day) pairs.
    """

    def total(name: str, sel) -> float | None:
        v = ds[name].sel(sel).values.astype(float)
        return float(np.nansum(v)) if np.isfinite(v).any() else None

    models = {}
    for model in ds.model.values:
        sel = {"model": model}
        solved = int(ds["solver_status"].sel(sel).isin(SOLVED_STATUSES).sum())
        n = int(ds.attrs.get("evaluation_scenarios", ds.sizes.get("fresh_scenario", 0)))
        models[str(model)] = {
            "days": solved,
            "out_of_sample": {
                "scenarios": n * solved,
                "feasible": int(np.nansum(ds["oos_feasible_count"].sel(sel).values)),
                "expected_cost_eur": total("oos_expected_cost_eur", sel),
                "cvar_eur": total("oos_cvar_eur", sel),
                "load_shed_mwh": total("oos_expected_load_shed_mwh", sel),
                "curtailment_mwh": total("oos_expected_curtailment_mwh", sel),
            },
            "in_sample": {
                "expected_cost_eur": total("expected_cost_eur", sel),
                "cvar_eur": total("cvar_eur", sel),
            },
            "eev_eur": total("eev_eur", sel),
            "vss_eur": total("vss_eur", sel),
            "vss_in_sample_eur": total("vss_in_sample_eur", sel),
            "ws_eur": total("ws_eur", sel),
            "evpi_eur": total("evpi_eur", sel),
        }
    first = next(iter(models.values()))
    return {**first, "models": models}
