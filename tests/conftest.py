"""Shared fixtures: a small integrated system that builds and solves in about a second."""

from __future__ import annotations

import logging
import warnings

from workbench.threads import limit_threads

limit_threads()  # before scikit-learn and NumPy's BLAS start their pools

import pytest  # noqa: E402

from cases import build_system, parse_study  # noqa: E402
from workbench.scenarios import (  # noqa: E402
    add_ev_sessions,
    fit_study_forecaster,
    study_scenarios,
)

logging.getLogger("pandapower").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", category=FutureWarning)

SMALL_STUDY = {
    "name": "small",
    "seed": 7,
    "start_date": "2016-06-15",
    "start_hour": 10,
    "horizon_hours": 4,
    "transmission": {"network": "case9"},
    "feeders": [
        {
            "name": "f1",
            "network": "case33bw",
            "bus": "5",
            "share": 0.2,
            "der": {
                "pv": {"kwp_per_kw_load": 1.5},
                "battery": {"buses": 2},
                "ev": {"buses": 1, "charger_type": "workplace"},
            },
        },
        {
            "name": "f2",
            "network": "cigre_mv",
            "bus": "7",
            "share": 0.1,
            "der": {
                "battery": {"buses": 1},
                "ev": {"buses": 1, "charger_type": "workplace"},
            },
        },
    ],
    "scenarios": {"n_scenarios": 4, "pv_sigma": 0.4},
    "forecast": {"max_iter": 10, "n_samples": 100},
    "risk": {"alpha": 0.75, "beta": 0.5},
    "ac_check": {"every_n_steps": 4},
}


@pytest.fixture(scope="session")
def small_study():
    return parse_study(SMALL_STUDY, "small")


@pytest.fixture(scope="session")
def small_system(small_study):
    return build_system(small_study)


@pytest.fixture(scope="session")
def small_forecaster(small_study):
    """The small study's fitted forecasters (fitted once per test session)."""
    return fit_study_forecaster(small_study, small_study.seed)


@pytest.fixture(scope="session")
def small_results_file(tmp_path_factory):
    """A results file as ``workbench run`` writes it: the small study with two models, two
    scenarios and the AC check (``tests/data/make_small_results.py``; about a minute,
    once per test session)."""
    from tests.data.make_small_results import write_small_results

    return write_small_results(tmp_path_factory.mktemp("small_results") / "small_results.nc")


def scenarios_with_ev(study, system, day, seed, forecaster=None, **kw):
    """A study's scenario set of one day with its EV charger pools' sessions."""
    scen = study_scenarios(study, day, seed, forecaster, **kw)
    return add_ev_sessions(scen, system.fleet, study, day, seed)


@pytest.fixture(scope="session")
def small_scenarios(small_study, small_system, small_forecaster):
    return scenarios_with_ev(
        small_study, small_system, small_study.start_date, small_study.seed, small_forecaster
    )
