"""Spread and smoothness of a study's scenario sets, without solving anything.

For each day of the study: the scenario set the scheduling runs use
(:func:`workbench.state.day_inputs`), and from it the total demand of every scenario
(transmission load plus every feeder's load) [MW]. Printed per day:

* relative spread: the weighted mean over scenarios and steps of |demand - scenario
  mean| divided by the mean demand [-];
* lag-1 correlation: the correlation of the deviations from the scenario mean between
  adjacent steps of the study's second-stage resolution [-];

and the same figures per resource beside the held-out forecast errors of the fitted
forecasters (:func:`workbench.scenarios.scenario_set_calibration`, the figures a run's
``calibration_*`` attributes hold).

Run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/scenario_spread.py cases/studies/default.yaml
"""

from __future__ import annotations

import argparse

import numpy as np

from cases.study import load_study
from cases.system import build_system
from stochastic.twostage import TwoStageOptions
from workbench.scenarios import fit_study_forecaster, scenario_set_calibration
from workbench.state import day_inputs, initial_state


def demand_spread(total_mw: np.ndarray, weight: np.ndarray) -> tuple[float, float]:
    """Relative spread [-] and lag-1 correlation [-] of (scenario, time) demands [MW]."""
    mean = weight @ total_mw
    dev = total_mw - mean
    spread = float(weight @ np.abs(dev).mean(axis=1) / mean.mean())
    a, b = dev[:, :-1], dev[:, 1:]
    lag1 = float((weight @ (a * b)).sum() / np.sqrt((weight @ a**2).sum() * (weight @ b**2).sum()))
    return spread, lag1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("study", help="study YAML file")
    args = parser.parse_args()
    study = load_study(args.study)
    system = build_system(study)
    fc = fit_study_forecaster(study, study.seed)
    options = TwoStageOptions.from_study(study)
    state = initial_state(system.fleet)
    minutes = study.resolution.second_stage_minutes
    for day in study.days:
        scenarios, data = day_inputs(system, study, day, study.seed, fc, state, options)
        total = data.transmission_load_mw.sum(axis=-1) + sum(
            x.sum(axis=-1) for x in data.feeder_load_p_mw
        )
        spread, lag1 = demand_spread(total, data.weight)
        print(
            f"{day}: total demand {total.mean():.0f} MW, relative spread {spread:.2%}, "
            f"lag-1 ({minutes} min) correlation of deviations {lag1:.2f}"
        )
        figures = scenario_set_calibration(scenarios, data, fc, options)
        for resource, f in figures.items():
            line = (
                f"  {resource:18s} scenarios: spread {f['scenario_spread']:.2%} "
                f"lag-1 {f['scenario_lag1']:.2f}"
            )
            if "error_spread" in f:
                line += (
                    f" | held-out errors: spread {f['error_spread']:.2%} "
                    f"lag-1 {f['error_lag1']:.2f}"
                )
            print(line)


if __name__ == "__main__":
    main()
