"""Cost and size of a study's day-ahead schedule at several first-stage resolutions.

Usage::

    python benchmarks/bench_first_stage.py [STUDY.yaml | default] [--firsts 15,30,60,120,240]
                                           [--model tso] [--scenarios N]

One day, AC check off, the same scenario set for every first stage (the study's second
stage is kept; each first stage must be a multiple of it that divides the horizon).
Prints one line per first stage: periods, expected cost, CVaR, objective, first-stage
cost, LP size and solver time. A finer first stage can follow the day more closely, so
its cost is usually lower (exactly never higher when the data are constant within the
coarser periods, see ``tests/test_resolution.py``).
"""

from __future__ import annotations

import argparse
import json
import logging
import warnings

from cases.study import MODEL_SHORT_NAMES

NAMES = {short: full for full, short in MODEL_SHORT_NAMES.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", nargs="?", default="default")
    parser.add_argument("--firsts", default="15,30,60,120,240")
    parser.add_argument("--model", default="tso")
    parser.add_argument("--scenarios", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("pandapower").setLevel(logging.ERROR)
    from cases import build_system, load_study, parse_study
    from workbench.coordination import coordination_model
    from workbench.scenarios import fit_study_forecaster
    from workbench.threads import limit_threads

    limit_threads()
    study = load_study(args.study)
    model = NAMES.get(args.model, args.model)
    base = study.model_dump(mode="json")
    base.update(n_days=1, models=[model], ac_check={**base["ac_check"], "enabled": False})
    if args.scenarios is not None:
        base["scenarios"] = {**base["scenarios"], "n_scenarios": args.scenarios}
    system = build_system(parse_study(base, args.study))
    fc = None
    for first in (int(x) for x in args.firsts.split(",")):
        spec = {**base, "resolution": {**base["resolution"], "first_stage_minutes": first}}
        study = parse_study(spec, args.study)
        if fc is None and study.scenarios.method == "forecast":
            fc = fit_study_forecaster(study, study.seed)
        outcome = coordination_model(model).schedule_days(
            system, study, study.days, study.seed, forecaster=fc
        )[0]
        d = outcome.schedule
        row = {
            "first_stage_minutes": first,
            "second_stage_minutes": study.resolution.second_stage_minutes,
            "periods": int(d.sizes["period"]),
            "expected_cost_eur": round(float(d.expected_cost_eur), 2),
            "cvar_eur": round(float(d.cvar_eur), 2),
            "objective_eur": round(float(d.objective_eur), 2),
            "first_stage_cost_eur": round(float(d.first_stage_cost_eur), 2),
            "lp_columns": int(d.n_variables) if "n_variables" in d else None,
            "lp_rows": int(d.n_constraints) if "n_constraints" in d else None,
            "solver_s": round(float(d.solver_seconds), 2) if "solver_seconds" in d else None,
        }
        if args.json:
            print(json.dumps(row))
        else:
            print(
                f"{first:5d}/{row['second_stage_minutes']:<3d} min  {row['periods']:4d} periods  "
                f"E[cost] {row['expected_cost_eur']:>13,.0f}  CVaR {row['cvar_eur']:>13,.0f}  "
                f"objective {row['objective_eur']:>13,.0f}  day-ahead "
                f"{row['first_stage_cost_eur']:>11,.0f} EUR  LP {row['lp_columns']}/"
                f"{row['lp_rows']}  HiGHS {row['solver_s']} s"
            )


if __name__ == "__main__":
    main()
