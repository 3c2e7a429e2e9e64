"""Unit commitment modes side by side: build time, HiGHS time, objective, MIP gap, memory.

Usage::

    python benchmarks/bench_commitment.py [STUDY.yaml] [--scenarios N] [--hours H]
        [--modes none relaxed binary]

Solves the study's first day (TSO-managed model, no AC check) once per
``model.commitment`` mode, each in its own process so that the peak resident memory is
the mode's, and prints one JSON line per mode: Pyomo build seconds, hand-over to HiGHS,
HiGHS seconds, objective and expected cost [EUR], the MIP gap, the solver status, the
number of start-ups and of unit-periods off, and the peak memory [MB]. The MIP stops at
the study's ``solver.mip_gap`` or ``solver.time_limit_s``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import time


def _case(study_path: str, mode: str, n_scenarios: int | None, hours: int | None, queue) -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("pandapower").setLevel(logging.ERROR)
    from cases import build_system, load_study
    from stochastic.extract import extract_two_stage
    from stochastic.solve import PersistentSolver, highs_settings
    from stochastic.twostage import TwoStageOptions, build_two_stage, day_data
    from workbench.scenarios import add_ev_sessions, fit_study_forecaster, study_scenarios
    from workbench.threads import limit_threads

    limit_threads()
    study = load_study(study_path)
    update: dict = {"model": study.model.model_copy(update={"commitment": mode})}
    if n_scenarios is not None:
        update["scenarios"] = study.scenarios.model_copy(update={"n_scenarios": n_scenarios})
    if hours is not None:
        update["horizon_hours"] = hours
    study = study.model_copy(update=update)
    system = build_system(study)
    options = TwoStageOptions.from_study(study)
    fc = fit_study_forecaster(study, study.seed)
    scen = study_scenarios(study, study.start_date, study.seed, fc)
    scen = add_ev_sessions(scen, system.fleet, study, study.start_date, study.seed)
    data = day_data(system, scen, options)
    tsm = build_two_stage(system, data, options)
    highs, limit = highs_settings(study)
    tick = time.perf_counter()
    solver = PersistentSolver(tsm.model, options=highs, time_limit_s=limit)
    translate = time.perf_counter() - tick
    result = solver.solve()
    ds = extract_two_stage(tsm, data, result)
    row = {
        "mode": mode,
        "scenarios": study.scenarios.n_scenarios,
        "hours": study.horizon_hours,
        "columns": result.n_variables,
        "rows": result.n_constraints,
        "build_s": round(tsm.build_seconds, 2),
        "translate_s": round(translate, 2),
        "highs_s": round(result.solver_seconds, 2),
        "status": result.status.value,
        "objective_eur": round(result.objective, 1),
        "expected_cost_eur": round(float(ds.expected_cost_eur), 1),
        "mip_gap": result.mip_gap,
    }
    if "ter_commitment" in ds:
        row["startups"] = round(float(ds.ter_startup.sum()), 3)
        row["unit_periods_off"] = round(float((1 - ds.ter_commitment).sum()), 3)
    row["peak_memory_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    queue.put(row)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("study", nargs="?", default="cases/studies/default.yaml")
    ap.add_argument("--scenarios", type=int, default=None)
    ap.add_argument("--hours", type=int, default=None)
    ap.add_argument("--modes", nargs="+", default=["none", "relaxed", "binary"])
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    for mode in args.modes:
        queue = ctx.Queue()
        proc = ctx.Process(target=_case, args=(args.study, mode, args.scenarios, args.hours, queue))
        proc.start()
        row = queue.get()
        proc.join()
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
