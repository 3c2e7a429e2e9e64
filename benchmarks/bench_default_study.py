"""Build, translation and solver time and peak memory of a study's two-stage model.

Usage::

    python benchmarks/bench_default_study.py [STUDY.yaml] [--scenarios N ...]

Prints, per scenario count: problem size, Pyomo build seconds, translation seconds (Pyomo
-> HiGHS, ``set_instance``), HiGHS seconds, the ratio of time outside HiGHS to time inside,
the re-solve time after a parameter update for the next day (from presolve, and warm
from the other day's basis), and the peak resident memory. Each case runs in its own
process so peak memory is per case.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import time


def _case(study_path: str, n_scenarios: int | None, queue) -> None:
    import datetime as dt
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("pandapower").setLevel(logging.ERROR)
    from cases import build_system, load_study
    from stochastic.solve import PersistentSolver
    from stochastic.twostage import TwoStageOptions, build_two_stage, day_data
    from workbench.scenarios import add_ev_sessions, fit_study_forecaster, study_scenarios
    from workbench.threads import limit_threads

    limit_threads()

    study = load_study(study_path)
    if n_scenarios is not None:
        study = study.model_copy(
            update={"scenarios": study.scenarios.model_copy(update={"n_scenarios": n_scenarios})}
        )
    system = build_system(study)
    options = TwoStageOptions.from_study(study)
    tick = time.perf_counter()
    fc = fit_study_forecaster(study, study.seed)
    fit_s = time.perf_counter() - tick

    def with_ev(day):
        scen = study_scenarios(study, day, study.seed, fc)
        return add_ev_sessions(scen, system.fleet, study, day, study.seed)

    data = day_data(system, with_ev(study.start_date), options)
    tsm = build_two_stage(system, data, options)
    tick = time.perf_counter()
    solver = PersistentSolver(tsm.model, options={"solver": study.model.lp_method})
    translate = time.perf_counter() - tick
    result = solver.solve()
    # next day: update parameters only, warm-started re-solve
    next_day = study.start_date + dt.timedelta(days=1)
    data2 = day_data(system, with_ev(next_day), options)
    tick = time.perf_counter()
    tsm.set_data(data2)
    solver.update_parameters(warm_start=False)
    update = time.perf_counter() - tick
    result2 = solver.solve()
    # and with the previous day's basis kept
    tsm.set_data(data)
    solver.update_parameters(warm_start=True)
    warm = solver.solve()
    queue.put(
        {
            "scenarios": data.n_scenarios,
            "fit_s": fit_s,
            "variables": result.n_variables,
            "constraints": result.n_constraints,
            "nonzeros": result.n_nonzeros,
            "build_s": tsm.build_seconds,
            "translate_s": translate,
            "highs_s": result.solver_seconds,
            "outside_per_inside": (tsm.build_seconds + translate) / result.solver_seconds,
            "next_day_update_s": update,
            "next_day_highs_s": result2.solver_seconds,
            "next_day_warm_highs_s": warm.solver_seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", nargs="?", default="cases/studies/default.yaml")
    parser.add_argument(
        "--scenarios",
        type=int,
        nargs="*",
        default=[None],
        help="scenario counts to measure (default: the study's)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON lines")
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    header = (
        "scenarios",
        "fit_s",
        "variables",
        "constraints",
        "build_s",
        "translate_s",
        "highs_s",
        "outside_per_inside",
        "next_day_update_s",
        "next_day_highs_s",
        "next_day_warm_highs_s",
        "peak_rss_mb",
    )
    if not args.json:
        print("  ".join(f"{h:>18}" for h in header))
    for n in args.scenarios:
        queue = ctx.Queue()
        proc = ctx.Process(target=_case, args=(args.study, n, queue))
        proc.start()
        row = queue.get()
        proc.join()
        if args.json:
            print(json.dumps(row))
        else:
            print(
                "  ".join(
                    f"{row[h]:>18.3f}" if isinstance(row[h], float) else f"{row[h]:>18}"
                    for h in header
                )
            )


if __name__ == "__main__":
    main()
