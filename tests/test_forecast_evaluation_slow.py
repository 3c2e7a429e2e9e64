"""The full out-of-sample evaluation (about 12 minutes on two cores): the targets that hold.

``python benchmarks/bench_forecasts.py`` prints the same figures with timings and memory.
Not asserted (reported instead): the EV copula against shuffled steps, and the load and
EV energy-score cost of the 500 -> 10 reduction, which is about 5 %.
"""

from __future__ import annotations

import pytest

from forecasts.evaluate import EVALUATION_KEYS, evaluate_all

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scores():
    return evaluate_all()[0]


def test_every_resource_and_horizon_is_calibrated(scores):
    assert list(scores) == list(EVALUATION_KEYS)
    for key, s in scores.items():
        assert 0.75 <= s.coverage_10_90 <= 0.85, key


def test_skill_against_the_baselines(scores):
    assert scores["pv"].crps <= scores["pv"].crps_climatology
    assert scores["pv_1h"].crps_skill_vs_climatology >= 0.3
    for key in ("pv", "load", "pv_1h", "load_1h"):
        assert scores[key].crps < scores[key].crps_persistence, key
        assert scores[key].crps < scores[key].crps_climatology, key


def test_scenario_sets(scores):
    for key in ("pv", "load"):
        s = scores[key]
        assert s.energy_score < s.energy_score_independent, key
        assert s.variogram_score < s.variogram_score_independent, key
    assert scores["pv"].extra["reduction_energy_score_increase"] < 0.05
    for key in ("pv", "load", "ev"):
        extra = scores[key].extra
        assert (
            extra["reduction_energy_score_increase"]
            < extra["reduction_energy_score_increase_random_draws"]
        ), key


def test_the_schedulers_own_sources_are_scored_too():
    sources = {
        "pv": "simbench_pv",
        "wind": "simbench_wind",
        "load_residential": "simbench_load_residential",
        "load_commercial": "simbench_load_commercial",
        "load_transmission": "simbench_load_transmission",
    }
    scores, _ = evaluate_all(
        test_day_step=28, max_iter=10, n_samples=50, ev_n_samples=20, scheduler_sources=sources
    )
    extra = {k for k in scores if k.startswith("scheduler_")}
    # the transmission load is already scored as "load"
    assert extra == {
        "scheduler_pv",
        "scheduler_wind",
        "scheduler_load_residential",
        "scheduler_load_commercial",
    }
    for key in extra:
        assert 0.0 < scores[key].crps < scores[key].crps_persistence, key
