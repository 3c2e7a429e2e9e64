"""The published TER schedule is the energy of the trajectory the units follow.

Under ``schedule_following: ramp`` the decisions are the knots of a piecewise-linear
trajectory; each period publishes the trajectory's mean. Checked here: the identity on
the time grid for every pair of resolutions (against an independent integral of the
interpolated line), and on solved studies: schedule = hourly mean of the followed
reference, no schedule swing beyond the trajectory's, no zig-zag, and reserve inside the
unit's range at every step of every scenario.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from cases import build_system, parse_study
from stochastic.extract import extract_two_stage
from stochastic.grid import StageGrid
from stochastic.solve import PersistentSolver
from stochastic.twostage import TwoStageOptions, build_two_stage, day_data
from tests.conftest import SMALL_STUDY, scenarios_with_ev

TOL_MW = 1e-6


@pytest.mark.parametrize(("first", "second"), [(60, 60), (60, 30), (60, 15), (120, 30), (240, 5)])
def test_schedule_is_the_energy_of_the_interpolated_knots(first, second):
    """The mean of the step references of a period equals the integral of the straight
    line between its knots over the period (trapezoid), for any pair of resolutions."""
    hours = 8
    n_periods = hours * 60 // first
    grid = StageGrid(1, hours * 60 // second, n_periods, second / 60, first / 60)
    knots = np.random.default_rng(first + second).uniform(0, 1000, size=(n_periods + 1, 3))
    schedule = grid.energy_weights("ramp") @ knots
    fine_h = np.linspace(0, hours, hours * 600 + 1)
    edges_h = np.arange(n_periods + 1) * first / 60
    for g in range(3):
        line = np.interp(fine_h, edges_h, knots[:, g])
        for p in range(n_periods):
            inside = slice(p * first * 10, (p + 1) * first * 10 + 1)  # 600 points an hour
            energy_mwh = np.trapezoid(line[inside], fine_h[inside])
            assert schedule[p, g] == pytest.approx(energy_mwh / (first / 60), abs=1e-9)
    ref = grid.reference_weights("ramp") @ knots
    k = first // second
    np.testing.assert_allclose(ref.reshape(n_periods, k, 3).mean(axis=1), schedule, atol=1e-9)
    # each step's reference is the line at the step's midpoint
    mid_h = (np.arange(grid.n_steps) + 0.5) * second / 60
    for g in range(3):
        np.testing.assert_allclose(ref[:, g], np.interp(mid_h, edges_h, knots[:, g]))


def _reversals(diff: np.ndarray, tol_mw: float = 1.0) -> int:
    s = np.sign(diff[np.abs(diff) > tol_mw])
    return int(np.sum(s[1:] != s[:-1]))


def _solve(spec: dict, name: str):
    study = parse_study(spec, name)
    system = build_system(study)
    options = TwoStageOptions.from_study(study)
    scen = scenarios_with_ev(study, system, study.start_date, study.seed)
    data = day_data(system, scen, options)
    tsm = build_two_stage(system, data, options)
    result = PersistentSolver(tsm.model).solve()
    return system, options, extract_two_stage(tsm, data, result)


CASE39 = {
    "name": "case39 schedule",
    "seed": 42,
    "start_date": "2016-06-15",
    "horizon_hours": 24,
    "transmission": {
        "network": "case39",
        "technologies": {
            "gen/0": "nuclear",
            "gen/8": "nuclear",
            "gen/1": "lignite",
            "gen/7": "lignite",
            "gen/2": "hard_coal",
            "gen/4": "hard_coal",
            "ext_grid/0": "ccgt",
            "gen/5": "ccgt",
            "gen/6": "ccgt",
            "gen/3": "ocgt",
        },
    },
    "feeders": [
        {
            "name": "bw33",
            "network": "case33bw",
            "bus": "15",
            "share": 0.05,
            "der": {"pv": {"kwp_per_kw_load": 1.0}, "battery": {"buses": 1}},
        }
    ],
    "resolution": {"first_stage_minutes": 60, "second_stage_minutes": 30},
    "scenarios": {"n_scenarios": 3, "pv_sigma": 0.25, "load_sigma": 0.05},
    "forecast": {"max_iter": 10, "n_samples": 100},
    "risk": {"alpha": 0.5, "beta": 0.3},
}


@pytest.fixture(scope="module")
def case39():
    return _solve(CASE39, "case39 schedule")


@pytest.fixture(scope="module")
def small_step():
    spec = copy.deepcopy(SMALL_STUDY)
    spec["model"] = {"schedule_following": "step"}
    spec["resolution"] = {"first_stage_minutes": 60, "second_stage_minutes": 30}
    return _solve(spec, "small step")


@pytest.mark.slow
def test_published_schedule_is_the_hourly_energy_it_follows(case39):
    _, options, ds = case39
    k = options.steps_per_period
    ref = ds.ter_reference_mw.values
    followed = ref.reshape(-1, k, ref.shape[-1]).mean(axis=1)
    np.testing.assert_allclose(ds.ter_schedule_mw.values, followed, atol=TOL_MW)
    # expected realised output, net of balancing, spill and emergency, is the same energy
    p = np.einsum("s,stg->tg", ds.weight.values, ds.ter_p_mw.values)
    net = (
        ds.ter_balancing_up_mw - ds.ter_balancing_down_mw - ds.ter_spill_mw
    ) + ds.ter_emergency_up_mw
    net = np.einsum("s,stg->tg", ds.weight.values, net.values)
    np.testing.assert_allclose(
        (p - net).reshape(-1, k, p.shape[-1]).mean(axis=1), followed, atol=1e-5
    )


@pytest.mark.slow
def test_schedule_swings_no_more_than_the_trajectory_and_does_not_zig_zag(case39):
    _, options, ds = case39
    k = options.steps_per_period
    sched = ds.ter_schedule_mw.values
    ref = ds.ter_reference_mw.values
    knots = ds.ter_knot_mw.values  # (period, edge, gen)
    boundary = np.vstack([knots[:, 0], knots[-1:, 1]])
    moved = False
    for g in range(sched.shape[1]):
        swing = np.abs(np.diff(sched[:, g])).max()
        trajectory_swing = np.abs(ref[k:, g] - ref[:-k, g]).max()  # over one period
        assert swing <= trajectory_swing + TOL_MW, g
        # a two-point mean never reverses direction more often than its knots
        assert _reversals(np.diff(sched[:, g])) <= _reversals(np.diff(boundary[:, g])), g
        moved |= swing > 10.0
    assert moved  # the units do follow the load
    fleet = sched.sum(axis=1)
    assert np.abs(np.diff(fleet)).max() <= np.abs(ref.sum(1)[k:] - ref.sum(1)[:-k]).max() + 1e-5


@pytest.mark.slow
def test_reserve_is_deliverable_at_every_step_of_every_scenario(case39):
    system, options, ds = case39
    t = system.transmission
    k = options.steps_per_period
    up = np.repeat(ds.ter_reserve_up_mw.values, k, axis=0)  # (time, gen)
    dn = np.repeat(ds.ter_reserve_down_mw.values, k, axis=0)
    assert up.sum() > 1.0 and dn.sum() > 1.0
    # what each scenario's unit follows before balancing, at every step
    followed = (
        ds.ter_p_mw
        - ds.ter_balancing_up_mw
        + ds.ter_balancing_down_mw
        + ds.ter_spill_mw
        - ds.ter_emergency_up_mw
    ).values  # (scenario, time, gen)
    assert np.all(followed + up[None] <= t.gen_pmax_mw + TOL_MW)
    assert np.all(followed - dn[None] >= t.gen_pmin_mw - TOL_MW)


def test_step_following_publishes_the_step_and_keeps_the_identity(small_step):
    _, options, ds = small_step
    k = options.steps_per_period
    sched = ds.ter_schedule_mw.values
    np.testing.assert_allclose(ds.ter_reference_mw.values, np.repeat(sched, k, axis=0), atol=TOL_MW)
    np.testing.assert_allclose(ds.ter_knot_mw.values[:, 0], sched, atol=TOL_MW)
    np.testing.assert_allclose(ds.ter_knot_mw.values[:, 1], sched, atol=TOL_MW)
