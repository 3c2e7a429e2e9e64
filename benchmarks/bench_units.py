"""Units in parallel: speed-up with workers, model reuse between units, memory per worker.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_units.py speedup [--days 8] [--study S]
    OMP_NUM_THREADS=1 python benchmarks/bench_units.py reuse [--days 4] [--study S]
    OMP_NUM_THREADS=1 python benchmarks/bench_units.py memory [--study S] [--scenarios N]

``speedup``
    The study's TSO-managed model on ``--days`` independent days (cyclic storage, AC check
    off), on a LocalCluster of 1 and of 2 workers. Prints the wall time of the scheduling
    (forecasters fitted and the cluster started beforehand; the inputs' transfer to the
    workers counts), the ratio, and per unit the time outside HiGHS;
    and, before and after, what two processes gain over one on this machine at all (a
    CPU-bound loop), so that a shared or hyper-threaded machine is not mistaken for
    overhead: ``parallel_efficiency`` = speed-up / that ceiling.
``reuse``
    The same days in one process, one after the other: each unit re-uses the model the
    previous unit built (only parameters change), against building every unit's model
    anew. Prints the time outside HiGHS per unit of both and their ratio.
``memory``
    One unit of each of the study's days on a LocalCluster of 1 worker: the worker's peak
    resident memory, the driver's, and the size of the result.

Default study: ``default`` (case39, two CIGRE MV feeders and a 33-bus feeder).
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
import warnings
from pathlib import Path


def _study(name: str, days: int, scenarios: int | None, cyclic: bool = True):
    from cases import load_study

    study = load_study(name)
    update = {
        "models": ("tso_managed",),
        "n_days": days,
        "ac_check": study.ac_check.model_copy(update={"enabled": False}),
    }
    if cyclic:
        update["model"] = study.model.model_copy(update={"storage_state": "cyclic"})
    if scenarios is not None:
        update["scenarios"] = study.scenarios.model_copy(update={"n_scenarios": scenarios})
    return study.model_copy(update=update)


def _inputs(study):
    from cases import build_system
    from workbench.scenarios import fit_study_forecaster

    system = build_system(study)
    fc = fit_study_forecaster(study, study.seed) if study.scenarios.method == "forecast" else None
    return system, fc


def _run(study, system, fc, **kw) -> tuple[float, list[dict]]:
    """Wall time [s] and the unit records of one run."""
    from workbench.rundir import RunFolder
    from workbench.runner import run_study

    with tempfile.TemporaryDirectory() as tmp:
        folder = RunFolder.create(Path(tmp) / "run", study, study.seed)
        tick = time.perf_counter()
        ds = run_study(study, progress=False, system=system, forecaster=fc, run_dir=folder, **kw)
        wall = time.perf_counter() - tick
        records = list(folder.records().values())
        status = set(ds.solver_status.values.ravel().tolist())
        folder.close()
        folder.close_log()
    if status != {"optimal"}:
        raise SystemExit(f"not every unit is optimal: {status}")
    return wall, records


def _outside(records: list[dict]) -> float:
    """Mean time outside HiGHS per unit [s]."""
    return sum(r["wall_seconds"] - r["solver_seconds"] for r in records) / len(records)


def _spin(_: int) -> float:
    """Seconds a fixed pure-Python loop takes in this process."""
    tick = time.perf_counter()
    total = 0
    for i in range(20_000_000):
        total += i
    return time.perf_counter() - tick


def machine_speedup() -> float:
    """What 2 processes can gain over 1 on this machine now: the same CPU-bound loop run
    alone and then twice at once (2.0 on two free cores; less when the cores are shared
    or are hyper-threads of one core)."""
    import multiprocessing as mp

    alone = _spin(0)
    with mp.get_context("spawn").Pool(2) as pool:
        tick = time.perf_counter()
        pool.map(_spin, [0, 1])
        both = time.perf_counter() - tick
    return 2 * alone / both


def speedup(args) -> dict:
    study = _study(args.study, args.days, args.scenarios)
    system, fc = _inputs(study)
    out = {"study": args.study, "days": args.days, "machine_speedup_2_vs_1": 0.0}
    out["machine_speedup_2_vs_1"] = round(machine_speedup(), 2)
    from workbench.runner import resolve_scheduler

    for workers in (1, 2):
        with resolve_scheduler(None, workers) as ex:  # cluster start-up not timed
            wall, recs = _run(study, system, fc, scheduler=ex.client)
        out[f"wall_{workers}w_s"] = round(wall, 1)
        out[f"outside_solver_per_unit_{workers}w_s"] = round(_outside(recs), 2)
        out[f"highs_per_unit_{workers}w_s"] = round(
            sum(r["solver_seconds"] for r in recs) / len(recs), 2
        )
        out[f"peak_worker_memory_{workers}w_mb"] = round(max(r["peak_memory_mb"] for r in recs))
    out["speedup_2_vs_1"] = round(out["wall_1w_s"] / out["wall_2w_s"], 2)
    out["parallel_efficiency"] = round(out["speedup_2_vs_1"] / out["machine_speedup_2_vs_1"], 2)
    out["machine_speedup_after"] = round(machine_speedup(), 2)
    return out


def reuse(args) -> dict:
    import workbench.coordination.common as common

    study = _study(args.study, args.days, args.scenarios)
    system, fc = _inputs(study)
    out = {"study": args.study, "days": args.days}
    for label, size in (("reuse", 4), ("rebuild", 0)):
        common.clear_slots()
        common.MODEL_CACHE_SIZE = size
        wall, recs = _run(study, system, fc, scheduler="sync")
        recs.sort(key=lambda r: r["day"])
        later = recs[1:]  # the first unit builds in both
        out[f"{label}_wall_s"] = round(wall, 1)
        out[f"{label}_outside_solver_per_later_unit_s"] = round(_outside(later), 2)
        out[f"{label}_build_per_later_unit_s"] = round(
            sum(r["build_seconds"] for r in later) / len(later), 2
        )
        out[f"{label}_highs_per_later_unit_s"] = round(
            sum(r["solver_seconds"] for r in later) / len(later), 2
        )
    out["outside_solver_ratio_rebuild_vs_reuse"] = round(
        out["rebuild_outside_solver_per_later_unit_s"]
        / out["reuse_outside_solver_per_later_unit_s"],
        2,
    )
    return out


def memory(args) -> dict:
    study = _study(args.study, args.days, args.scenarios, cyclic=False)
    system, fc = _inputs(study)
    wall, recs = _run(study, system, fc, workers=1)
    return {
        "study": args.study,
        "days": args.days,
        "scenarios": study.scenarios.n_scenarios,
        "wall_s": round(wall, 1),
        "peak_worker_memory_mb": round(max(r["peak_memory_mb"] for r in recs)),
        "peak_driver_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["speedup", "reuse", "memory"])
    parser.add_argument("--study", default="default")
    parser.add_argument("--days", type=int, default=None)
    parser.add_argument("--scenarios", type=int, default=None)
    args = parser.parse_args()
    args.days = args.days or {"speedup": 8, "reuse": 4, "memory": 1}[args.what]
    warnings.filterwarnings("ignore")
    from workbench.cli import _quiet_libraries
    from workbench.threads import limit_threads

    limit_threads()
    _quiet_libraries()
    result = {"speedup": speedup, "reuse": reuse, "memory": memory}[args.what](args)
    for key, value in result.items():
        print(f"{key:45s} {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
