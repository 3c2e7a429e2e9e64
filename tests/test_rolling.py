"""Rolling days: storage state carried from one day to the next."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

from cases import build_system, parse_study
from stochastic.bids import apply_bids, der_bids
from stochastic.solve import PersistentSolver
from stochastic.twostage import TwoStageOptions, build_two_stage
from workbench.coordination.tso_managed import schedule_days
from workbench.state import DayState, day_inputs, initial_state, next_state

# one deterministic scenario (the observed profiles), one price for every MWh of fuel:
# storing energy across midnight cannot earn anything, so the two-day optimum keeps the
# batteries at the end-of-day floor at midnight, and a rolling pair must match it
ROLLING = {
    "name": "rolling",
    "seed": 3,
    "start_date": "2016-03-09",
    "n_days": 2,
    "transmission": {
        "network": "case9",
        "marginal_cost_eur_per_mwh": {"ext_grid/0": 30.0, "gen/0": 30.0, "gen/1": 30.0},
    },
    "feeders": [
        {
            "name": "f1",
            "network": "case33bw",
            "bus": "5",
            "share": 0.2,
            "der": {
                "pv": {"kwp_per_kw_load": 0.3},
                "battery": {"buses": 2, "soc_init": 0.2, "soc_end_min": 0.8},
                "ev": {"buses": 0},
            },
        }
    ],
    "resolution": {"second_stage_minutes": 60},
    "scenarios": {
        "n_scenarios": 1,
        "method": "profile_noise",
        "pv_sigma": 0.0,
        "load_sigma": 0.0,
        "wind_sigma": 0.0,
    },
    "risk": {"beta": 0.0, "recourse_efficiency_weight": 0.0},
    "model": {"schedule_following": "step"},
    "ac_check": {"enabled": False},
}


@pytest.fixture(scope="module")
def rolling():
    study = parse_study(ROLLING, "rolling")
    system = build_system(study)
    return study, system, schedule_days(system, study, study.days, study.seed)


def _two_day_problem(study, system):
    """Both days as one 48-hour problem, with the end-of-day floor at midnight too."""
    options = TwoStageOptions.from_study(study)
    state = initial_state(system.fleet)
    data = [day_inputs(system, study, d, study.seed, None, state, options)[1] for d in study.days]
    glue = {}
    for field in dataclasses.fields(data[0]):
        a, b = getattr(data[0], field.name), getattr(data[1], field.name)
        if isinstance(a, list):
            glue[field.name] = [np.concatenate([x, y], axis=1) for x, y in zip(a, b, strict=True)]
        elif field.name in ("time", "period"):
            glue[field.name] = np.concatenate([a, b])
        elif field.name in ("weight", "battery_e_init_mwh", "battery_e_end_min_mwh"):
            glue[field.name] = a
        else:
            glue[field.name] = np.concatenate([a, b], axis=1)
    both = dataclasses.replace(data[0], **glue)
    options48 = dataclasses.replace(options, horizon_hours=48)
    tsm = build_two_stage(system, both, options48)
    energy = tsm.var("der", "battery_energy_mwh")
    midnight = energy.index()[:, 23, :]
    comp = tsm.model.component("der").component("battery_energy_mwh")
    for i, floor in zip(midnight[0], data[0].battery_e_end_min_mwh, strict=True):
        comp[int(i)].setlb(float(floor))
    solver = PersistentSolver(tsm.model)
    apply_bids(solver, tsm, der_bids(system, both, options48))  # as the rolling days do
    result = solver.solve()
    return tsm, result, data[0]


def test_rolling_pair_matches_the_two_day_problem_at_the_boundary(rolling):
    study, system, outcomes = rolling
    assert [o.status for o in outcomes] == ["optimal", "optimal"]
    day1, day2 = (o.schedule for o in outcomes)
    sel = (day1.der_type == "battery").values
    end1 = day1.battery_energy_mwh.isel(scenario=0, time=-1).values[sel]
    start2 = day2.storage_start_energy_mwh.values[sel]
    np.testing.assert_allclose(start2, end1, atol=1e-7)  # carried, not reset
    cap = system.fleet.battery.e_mwh.to_numpy()
    assert np.all(start2 > 0.5 * cap)  # not the study's soc_init of 0.2

    tsm, result, data1 = _two_day_problem(study, system)
    boundary = tsm.var("der", "battery_energy_mwh").values()[0, 23, :]
    np.testing.assert_allclose(boundary, end1, atol=1e-5)
    np.testing.assert_allclose(boundary, data1.battery_e_end_min_mwh, atol=1e-5)
    total = sum(float(o.schedule.objective_eur) for o in outcomes)
    assert result.objective == pytest.approx(total, rel=1e-6)


def test_cyclic_days_start_from_the_initial_state(rolling):
    study, system, carried = rolling
    cyclic = study.model_copy(
        update={"model": study.model.model_copy(update={"storage_state": "cyclic"})}
    )
    outcomes = schedule_days(system, cyclic, cyclic.days, cyclic.seed)
    init = initial_state(system.fleet).battery_e_mwh
    sel = (outcomes[1].schedule.der_type == "battery").values
    np.testing.assert_allclose(outcomes[1].schedule.storage_start_energy_mwh.values[sel], init)
    # starting day 2 from 0.2 instead of the carried 0.8 costs the charging
    assert float(outcomes[1].schedule.objective_eur) > float(carried[1].schedule.objective_eur)


def test_ev_state_counts_the_charging_deferred_past_midnight():
    """Two pools, one scenario each way: the share of the as-early-as-possible energy that
    EVs plugged in at midnight got."""
    w = np.array([0.5, 0.5])
    # pool 0: departed EVs need 4 MWh, the continuing ones would take 2 (early)
    # pool 1: nobody plugged in at midnight
    e_max_end = np.array([[6.0, 1.0], [6.0, 1.0]])
    continuing = np.array([[2.0, 0.0], [2.0, 0.0]])
    energy_end = np.array([[5.0, 1.0], [6.0, 1.0]])  # 1 MWh deferred in scenario 0
    unserved = np.zeros((2, 2))
    values = {
        "ev_energy_mwh": energy_end[:, None, :],
        "ev_unserved_mwh": unserved[:, None, :],
    }
    tsm = SimpleNamespace(
        system=SimpleNamespace(
            fleet=SimpleNamespace(
                battery=SimpleNamespace(e_mwh=SimpleNamespace(to_numpy=lambda dtype: np.zeros(0))),
                ev=[0, 1],
            )
        ),
        var=lambda part, name: SimpleNamespace(values=lambda: values[name]),
    )
    data = SimpleNamespace(weight=w, ev_e_max_mwh=e_max_end[:, None, :])
    scen = {
        "ev_e_continuing_mwh": SimpleNamespace(
            transpose=lambda *dims: SimpleNamespace(to_numpy=lambda: continuing)
        )
    }
    state = next_state(tsm, data, scen)
    # (0.5 * 1 + 0.5 * 2) / 2 = 0.75 for pool 0; pool 1 has no continuing EVs
    np.testing.assert_allclose(state.ev_charged_fraction, [0.75, 1.0])
    assert isinstance(state, DayState)


def test_a_start_state_the_floor_cannot_be_reached_from_stays_feasible(rolling):
    study, system, _ = rolling
    options = dataclasses.replace(TwoStageOptions.from_study(study), horizon_hours=1)
    short = study.model_copy(update={"horizon_hours": 1})
    empty = DayState(np.zeros(len(system.fleet.battery)), np.ones(0))
    _, data = day_inputs(system, short, study.start_date, study.seed, None, empty, options)
    cap = system.fleet.battery.e_mwh.to_numpy()
    assert np.all(data.battery_e_end_min_mwh < 0.8 * cap)  # lowered to what 1 h can charge
    tsm = build_two_stage(system, data, options)
    assert PersistentSolver(tsm.model).solve().status.value == "optimal"
