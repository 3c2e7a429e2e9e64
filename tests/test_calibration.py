"""Scenario sets as wide and as smooth as the held-out forecast errors they stand for."""

from __future__ import annotations

import numpy as np
import pytest

from forecasts.calibration import (
    block_means,
    error_calibration,
    scenario_deviation_calibration,
)
from forecasts.evaluate import evaluate_source
from forecasts.history import load_history

#: tolerances of the held-out checks: scenario spread / error spread, and the absolute
#: gap of the lag-1 autocorrelations at 30 min
SPREAD_RATIO = (0.8, 1.25)
LAG1_GAP = 0.04


def _ar1(n_days: int, rho: float, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """(n_days, 96) stationary Gaussian AR(1) paths with lag-1 correlation ``rho``."""
    x = np.empty((n_days, 96))
    x[:, 0] = rng.standard_normal(n_days) * sigma
    scale = sigma * np.sqrt(1 - rho**2)
    for t in range(1, 96):
        x[:, t] = rho * x[:, t - 1] + scale * rng.standard_normal(n_days)
    return x


def test_error_figures_of_an_ar1_error():
    rng = np.random.default_rng(0)
    level, sigma, rho = 10.0, 0.3, 0.9
    error = _ar1(400, rho, sigma, rng)
    figures = error_calibration(level + error, np.full_like(error, level), 15)
    # mean |N(0, s)| = s sqrt(2 / pi)
    assert figures["spread"] == pytest.approx(sigma * np.sqrt(2 / np.pi) / level, rel=0.03)
    assert figures["lag1"] == pytest.approx(rho, abs=0.01)
    # 30-min means of an AR(1): corr = (rho + 2 rho^2 + rho^3) / (2 (1 + rho))
    lag30 = (rho + 2 * rho**2 + rho**3) / (2 * (1 + rho))
    assert error_calibration(level + error, np.full_like(error, level), 30)[
        "lag1"
    ] == pytest.approx(lag30, abs=0.01)


def test_scenario_figures_weigh_scenarios_and_skip_inactive_steps():
    rng = np.random.default_rng(1)
    paths = 2.0 + _ar1(3000, 0.8, 0.1, rng)
    paths[:, :10] = 0.0  # night: no quantity in any scenario
    w = np.full(len(paths), 1 / len(paths))
    figures = scenario_deviation_calibration(paths, w)
    assert figures["spread"] == pytest.approx(0.1 * np.sqrt(2 / np.pi) / 2.0, rel=0.03)
    assert figures["lag1"] == pytest.approx(0.8, abs=0.02)
    # weights count: two scenarios, the far one nearly without probability
    two = np.array([[1.0, 1.0], [3.0, 3.0]])
    skewed = scenario_deviation_calibration(two, np.array([0.99, 0.01]))
    mean = 0.99 * 1 + 0.01 * 3
    assert skewed["spread"] == pytest.approx((0.99 * (mean - 1) + 0.01 * (3 - mean)) / mean)
    assert block_means(np.arange(8.0), 60).tolist() == [1.5, 5.5]


def test_the_aggregate_load_is_a_transmission_level_history():
    """Sum of every SimBench load: errors of a few per cent that move slowly, against one
    HV substation's."""
    scores = {}
    for source in ("simbench_load_aggregate", "simbench_load_transmission"):
        scores[source], _ = evaluate_source(source, test_day_step=4, n_samples=48, max_iter=30)
    agg = scores["simbench_load_aggregate"].extra
    hv = scores["simbench_load_transmission"].extra
    assert 0.02 < agg["error_spread"] < 0.07
    assert agg["error_lag1"] > 0.95
    assert hv["error_spread"] > 1.5 * agg["error_spread"]
    assert hv["error_lag1"] < agg["error_lag1"] - 0.1
    history = load_history("simbench_load_aggregate").to_numpy()
    assert history.max() == pytest.approx(1.0)
    assert np.std(np.diff(history)) / history.mean() < 0.025  # one substation: 0.09


@pytest.mark.parametrize(
    "source",
    [
        "simbench_load_aggregate",
        pytest.param("simbench_load_transmission", marks=pytest.mark.slow),
        pytest.param("simbench_pv", marks=pytest.mark.slow),
    ],
)
def test_scenarios_are_as_wide_and_smooth_as_held_out_errors(source):
    scores, _ = evaluate_source(
        source, test_day_step=4, n_samples=64, max_iter=30, calibration_minutes=30
    )
    x = scores.extra
    ratio = x["scenario_spread"] / x["error_spread"]
    assert SPREAD_RATIO[0] < ratio < SPREAD_RATIO[1], (x["scenario_spread"], x["error_spread"])
    # PV's quantile functions change shape from step to step (dawn, noon, clipping at
    # capacity): its trajectories stay a little more jagged than its errors
    gap = 0.06 if source == "simbench_pv" else LAG1_GAP
    assert abs(x["scenario_lag1"] - x["error_lag1"]) < gap, (x["scenario_lag1"], x["error_lag1"])


def test_run_results_carry_the_calibration_figures(small_study):
    from workbench.runner import run_study

    study = small_study.model_copy(
        update={"ac_check": small_study.ac_check.model_copy(update={"enabled": False})}
    )
    ds = run_study(study, scheduler="sync", progress=False)
    attrs = ds.attrs
    assert attrs["calibration_minutes"] == study.resolution.second_stage_minutes
    for resource in ("load_transmission", "load_residential", "pv"):
        for name in ("error_spread", "scenario_spread", "error_lag1", "scenario_lag1"):
            assert np.isfinite(attrs[f"calibration_{resource}_{name}"]), (resource, name)
    assert 0 < attrs["calibration_demand_total_scenario_spread"] < 0.2
    assert -1 <= attrs["calibration_ev_scenario_lag1"] <= 1
    # the transmission load's scenarios: a few per cent, as its held-out errors
    spread = attrs["calibration_load_transmission_scenario_spread"]
    assert 0.3 < spread / attrs["calibration_load_transmission_error_spread"] < 2.0
    # and the file `workbench run` writes keeps them, with the run's other records
    from workbench.results import annotate

    written = annotate(ds, study, study.seed, "sync").attrs
    kept = [k for k in attrs if k.startswith("calibration_")]
    kept += ["scenario_method", "forecast_fit_seconds", "data_sources"]
    assert {k: written.get(k) for k in kept} == {k: attrs[k] for k in kept}
