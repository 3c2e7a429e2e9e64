"""Cost of each coordination model on a study: problems solved, build, solver and wall
time, peak memory.

Usage::

    python benchmarks/bench_models.py [STUDY.yaml | default] [--models tso,hybrid,dso|all]
                                      [--scenarios N]

Each model runs in its own process (Dask ``sync`` scheduler, AC check off, one day) so
that peak resident memory is per model. Prints one line per model and the ratio of each
model's wall time to the TSO-managed model's.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import time

from cases.study import MODEL_SHORT_NAMES

NAMES = {short: full for full, short in MODEL_SHORT_NAMES.items()}


def _case(study_name: str, model: str, n_scenarios: int | None, queue) -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("pandapower").setLevel(logging.ERROR)
    from cases import build_system, load_study
    from workbench.runner import run_study
    from workbench.scenarios import fit_study_forecaster
    from workbench.threads import limit_threads

    limit_threads()
    study = load_study(study_name)
    update = {
        "models": (model,),
        "n_days": 1,
        "ac_check": study.ac_check.model_copy(update={"enabled": False}),
    }
    if n_scenarios is not None:
        update["scenarios"] = study.scenarios.model_copy(update={"n_scenarios": n_scenarios})
    study = study.model_copy(update=update)
    system = build_system(study)
    fc = fit_study_forecaster(study, study.seed) if study.scenarios.method == "forecast" else None
    tick = time.perf_counter()
    ds = run_study(study, scheduler="sync", progress=False, system=system, forecaster=fc)
    wall = time.perf_counter() - tick
    d = ds.isel(model=0, day=0)
    queue.put(
        {
            "model": model,
            "status": str(d.solver_status.values),
            "expected_cost_eur": float(d.expected_cost_eur),
            "problems_solved": int(d.problems_solved),
            "build_s": float(d.build_seconds),
            "translate_s": float(d.translate_seconds),
            "solver_s": float(d.solver_seconds),
            "wall_s": wall,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", nargs="?", default="default")
    parser.add_argument("--models", default="tso,hybrid,dso")
    parser.add_argument("--scenarios", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    rows = []
    shorts = list(NAMES) if args.models.strip() == "all" else args.models.split(",")
    for short in shorts:
        queue = ctx.Queue()
        proc = ctx.Process(
            target=_case, args=(args.study, NAMES[short.strip()], args.scenarios, queue)
        )
        proc.start()
        rows.append(queue.get())
        proc.join()
    if args.json:
        print(json.dumps(rows))
        return
    ref = next((r["wall_s"] for r in rows if r["model"] == "tso_managed"), None)
    print(
        f"{'model':<24} {'status':<8} {'E[cost] EUR':>12} {'problems':>8} {'build s':>8} "
        f"{'transl s':>8} {'HiGHS s':>8} {'wall s':>8} {'peak MB':>8} {'wall/tso':>8}"
    )
    for r in rows:
        ratio = f"{r['wall_s'] / ref:8.2f}" if ref else f"{'-':>8}"
        print(
            f"{r['model']:<24} {r['status']:<8} {r['expected_cost_eur']:12,.0f} "
            f"{r['problems_solved']:8d} {r['build_s']:8.1f} {r['translate_s']:8.1f} "
            f"{r['solver_s']:8.1f} {r['wall_s']:8.1f} {r['peak_mb']:8.0f} {ratio}"
        )


if __name__ == "__main__":
    main()
