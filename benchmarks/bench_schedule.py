"""How well the published TER schedule matches the trajectory the units follow.

Usage::

    python benchmarks/bench_schedule.py [STUDY.yaml] [--scenarios N] [--hours H]
        [--resolutions 60/60 60/30 ...]

Solves the study's first day (TSO-managed, no AC check) at each pair of first/second-stage
resolutions and prints, per pair: the largest gap between a unit's published hourly
schedule and the hourly energy of the trajectory it follows (the reference) and of its
expected realised output, the largest hour-to-hour swing of the published schedule and
of the followed energy (per unit and for the fleet), the sign reversals of the schedule's
hour-to-hour differences (changes beyond 1 MW) against those of the followed energy, and
the objective.
"""

from __future__ import annotations

import argparse
import json


def _reversals(x, tol_mw: float = 1.0) -> int:
    """Sign reversals of the period-to-period differences of ``x`` (period, gen)."""
    import numpy as np

    total = 0
    for d in np.diff(x, axis=0).T:
        s = np.sign(d[np.abs(d) > tol_mw])
        total += int(np.sum(s[1:] != s[:-1]))
    return total


def measure(study_path: str, n_scenarios: int, hours: int, first: int, second: int) -> dict:
    import logging
    import warnings

    import numpy as np

    warnings.filterwarnings("ignore")
    logging.getLogger("pandapower").setLevel(logging.ERROR)
    from cases import build_system, load_study
    from stochastic.extract import extract_two_stage
    from stochastic.solve import PersistentSolver
    from stochastic.twostage import TwoStageOptions, build_two_stage, day_data
    from workbench.scenarios import add_ev_sessions, fit_study_forecaster, study_scenarios
    from workbench.threads import limit_threads

    limit_threads()
    study = load_study(study_path)
    study = study.model_copy(
        update={
            "horizon_hours": hours,
            "scenarios": study.scenarios.model_copy(update={"n_scenarios": n_scenarios}),
            "resolution": study.resolution.model_copy(
                update={"first_stage_minutes": first, "second_stage_minutes": second}
            ),
        }
    )
    system = build_system(study)
    options = TwoStageOptions.from_study(study)
    fc = fit_study_forecaster(study, study.seed)
    scen = study_scenarios(study, study.start_date, study.seed, fc)
    scen = add_ev_sessions(scen, system.fleet, study, study.start_date, study.seed)
    data = day_data(system, scen, options)
    tsm = build_two_stage(system, data, options)
    solver = PersistentSolver(tsm.model, options={"solver": study.model.lp_method})
    ds = extract_two_stage(tsm, data, solver.solve())
    k = options.steps_per_period
    sched = ds.ter_schedule_mw.values  # (period, gen)
    ref = ds.ter_reference_mw.values  # (time, gen)
    ref_energy = ref.reshape(-1, k, ref.shape[-1]).mean(axis=1)
    p = np.einsum("s,stg->tg", ds.weight.values, ds.ter_p_mw.values)
    out_energy = p.reshape(-1, k, p.shape[-1]).mean(axis=1)
    return {
        "resolution": f"{first}/{second}",
        "max_schedule_minus_followed_energy_mw": float(np.abs(sched - ref_energy).max()),
        "max_schedule_minus_expected_output_energy_mw": float(np.abs(sched - out_energy).max()),
        "max_unit_swing_schedule_mw": float(np.abs(np.diff(sched, axis=0)).max()),
        "max_unit_swing_followed_mw": float(np.abs(np.diff(ref_energy, axis=0)).max()),
        "max_fleet_swing_schedule_mw": float(np.abs(np.diff(sched.sum(1))).max()),
        "max_fleet_swing_followed_mw": float(np.abs(np.diff(ref_energy.sum(1))).max()),
        "sign_reversals_schedule": _reversals(sched),
        "sign_reversals_followed": _reversals(ref_energy),
        "objective_eur": float(ds.objective_eur),
        "expected_cost_eur": float(ds.expected_cost_eur),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("study", nargs="?", default="cases/studies/default.yaml")
    ap.add_argument("--scenarios", type=int, default=3)
    ap.add_argument("--hours", type=int, default=24)
    ap.add_argument("--resolutions", nargs="+", default=["60/60", "60/30"])
    args = ap.parse_args()
    for pair in args.resolutions:
        first, second = (int(x) for x in pair.split("/"))
        print(json.dumps(measure(args.study, args.scenarios, args.hours, first, second)))


if __name__ == "__main__":
    main()
