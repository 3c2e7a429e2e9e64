"""First-stage resolutions other than 60 min: configuration, nesting, costs, every model.

A coarser first stage is a restriction of a finer one when the data do not change inside
the coarser periods: a 60-min schedule is a 30-min schedule whose two halves are equal.
With profiles constant over 120-min blocks, TER that may jump at a period boundary
(``schedule_following: step``, no ramp limits in case9) and no EV pools (their sessions
vary within any block), the three first stages 30, 60 and 120 min over 30-min recourse
are nested, so their optimal objectives are ordered, and a finer first stage fixed at a
coarser one's decisions costs exactly as much (capacity is paid per MW and hour).
"""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from cases import build_system, parse_study
from cases.errors import StudyConfigError
from cases.study import (
    SECOND_STAGE_MINUTES,
    ResolutionConfig,
    first_stage_choices,
    second_stage_choices,
)
from forecasts.resolution import VALID_MINUTES
from stochastic.bids import apply_bids, der_bids
from stochastic.extract import extract_two_stage, first_stage_vars
from stochastic.grid import StageGrid
from stochastic.solve import PersistentSolver
from stochastic.twostage import TwoStageOptions, build_two_stage, day_data
from tests.conftest import SMALL_STUDY
from workbench.compare import compare_models, stage_hours
from workbench.contract import to_contract, to_internal
from workbench.scenarios import study_scenarios

REL = 1e-6


def _spec(**resolution) -> dict:
    spec = copy.deepcopy(SMALL_STUDY)
    spec["resolution"] = resolution
    return spec


# ----------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("first", "second"), [(30, 15), (120, 30), (240, 30), (15, 15), (60, 5), (240, 60), (60, 60)]
)
def test_valid_resolutions_are_accepted(first, second):
    study = parse_study(_spec(first_stage_minutes=first, second_stage_minutes=second), "ok")
    assert (study.resolution.first_stage_minutes, study.resolution.second_stage_minutes) == (
        first,
        second,
    )
    options = TwoStageOptions.from_study(study)
    assert options.n_periods * first == 4 * 60  # the small study's 4-h horizon
    assert options.steps_per_period * second == first


@pytest.mark.parametrize(
    ("resolution", "needle"),
    [
        # not a multiple of the recourse step: the valid first stages are listed
        ({"first_stage_minutes": 7}, "first_stage_minutes one of 15, 30, 60, 120, 240"),
        ({"first_stage_minutes": 45, "second_stage_minutes": 30}, "one of 30, 60, 120, 240"),
        # a second stage coarser than the first: both ways out are named
        (
            {"first_stage_minutes": 30, "second_stage_minutes": 60},
            "second_stage_minutes one of 5, 15, 30",
        ),
        # periods that do not tile the 4-h horizon
        ({"first_stage_minutes": 90, "second_stage_minutes": 30}, "does not divide the 4-h"),
        ({"first_stage_minutes": 480}, "one of 15, 30, 60, 120, 240, or change horizon_hours"),
        # resolutions the scenario data do not come at
        ({"second_stage_minutes": 10}, "Input should be 60, 30, 15 or 5"),
        ({"first_stage_minutes": 0}, "greater than 0"),
        ({"first_stage_minutes": -60}, "greater than 0"),
    ],
)
def test_invalid_resolution_is_one_line_naming_the_valid_values(resolution, needle):
    with pytest.raises(StudyConfigError) as err:
        parse_study(_spec(**resolution), "bad")
    msg = str(err.value)
    assert "\n" not in msg and "resolution" in msg
    assert needle in msg, msg


def test_second_stage_choices_are_the_resolutions_of_the_scenario_data():
    assert sorted(SECOND_STAGE_MINUTES) == sorted(VALID_MINUTES)
    assert second_stage_choices(60, 24) == [5, 15, 30, 60]
    assert second_stage_choices(45, 24) == [5, 15]
    assert first_stage_choices(30, 4) == [30, 60, 120, 240]
    assert first_stage_choices(15, 24)[:5] == [15, 30, 45, 60, 90]


@settings(max_examples=200, deadline=None)
@given(
    first=st.integers(1, 24 * 60),
    second=st.sampled_from(SECOND_STAGE_MINUTES),
    horizon=st.integers(1, 24),
)
def test_accepted_exactly_when_the_stages_nest_and_tile_the_horizon(first, second, horizon):
    res = ResolutionConfig(first_stage_minutes=first, second_stage_minutes=second)
    if first % second == 0 and (horizon * 60) % first == 0:
        res.check_horizon(horizon)
        assert first in first_stage_choices(second, horizon)
        assert second in second_stage_choices(first, horizon)
    else:
        with pytest.raises(ValueError, match="first_stage_minutes one of"):
            res.check_horizon(horizon)
        assert first not in first_stage_choices(second, horizon)


def test_two_stage_options_name_the_valid_first_stages():
    with pytest.raises(ValueError, match="use one of 15, 30, 60, 120, 240"):
        TwoStageOptions(first_stage_minutes=50, second_stage_minutes=15, horizon_hours=4)


# ----------------------------------------------------------------------------- time grid


def test_schedule_is_followed_as_a_ramp_between_2_h_period_boundaries():
    """Knots 0, 4 and 8 MW at 0, 2 and 4 h over 30-min steps: the reference is the straight
    line 2 MW/h * t at each step's midpoint, and each period publishes its mean (2 and
    6 MW); a step trajectory takes its period's value."""
    grid = StageGrid(n_scenarios=1, n_steps=8, n_periods=2, step_h=0.5, period_h=2.0)
    ref = grid.reference_weights("ramp") @ np.array([0.0, 4.0, 8.0])
    mid_h = (np.arange(8) + 0.5) * 0.5
    np.testing.assert_allclose(ref, 2.0 * mid_h)
    np.testing.assert_allclose(grid.energy_weights("ramp") @ np.array([0.0, 4.0, 8.0]), [2, 6])
    step = grid.reference_weights("step") @ np.array([0.0, 8.0])
    np.testing.assert_allclose(step, [0.0] * 4 + [8.0] * 4)
    np.testing.assert_array_equal(grid.step_period, [0, 0, 0, 0, 1, 1, 1, 1])


def test_stage_hours_of_a_results_file_with_one_period():
    """A first stage spanning the whole 4-h horizon: one period of 4 h, not 1 h."""
    ds = xr.Dataset(
        coords={
            "time": np.arange(8) * np.timedelta64(30, "m"),
            "period": np.arange(1) * np.timedelta64(240, "m"),
        }
    )
    assert stage_hours(ds) == (0.5, 4.0)
    ds = ds.assign_coords(period=np.arange(4) * np.timedelta64(60, "m"))
    assert stage_hours(ds) == (0.5, 1.0)


# ----------------------------------------------------------------------------- nesting

NEST_FIRSTS = (30, 60, 120)


@pytest.fixture(scope="module")
def nest():
    """The small study's first feeder without EV pools, 2 scenarios at 30 min: loads
    constant within each hour, PV and wind within each 2 hours (so the DER bids of every
    first stage agree), TER following their schedule as steps."""
    spec = _spec(first_stage_minutes=60, second_stage_minutes=30)
    spec["feeders"] = spec["feeders"][:1]
    spec["feeders"][0]["der"]["ev"] = {"buses": 0}
    spec["scenarios"] = {"n_scenarios": 2, "method": "profile_noise", "pv_sigma": 0.4}
    spec["model"] = {"schedule_following": "step"}
    study = parse_study(spec, "nest")
    system = build_system(study)
    assert np.isinf(system.transmission.gen_ramp_mw_per_h).all()
    scen = study_scenarios(study, study.start_date, study.seed)
    v = scen["value_pu"].transpose("scenario", "time", "resource")
    held = {}
    for r in v.resource.values:
        block = 4 if str(r) in ("pv", "wind") else 2  # steps of 30 min
        x = v.sel(resource=r).to_numpy()
        held[r] = np.repeat(x.reshape(x.shape[0], -1, block).mean(axis=2), block, axis=1)
    assert np.ptp(held["load_transmission"][:, :4], axis=1).max() > 1e-3  # load moves
    scen = scen.assign(value_pu=v.copy(data=np.stack([held[r] for r in v.resource.values], -1)))
    base = TwoStageOptions.from_study(study)
    out = {}
    for first in NEST_FIRSTS:
        options = replace(base, first_stage_minutes=first)
        data = day_data(system, scen, options)
        tsm = build_two_stage(system, data, options)
        solver = PersistentSolver(tsm.model)
        apply_bids(solver, tsm, der_bids(system, data, options))
        result = solver.solve()
        out[first] = {
            "tsm": tsm,
            "data": data,
            "solver": solver,
            "objective": result.objective,
            "ds": extract_two_stage(tsm, data, result),
            "first_stage": {k: var.values().copy() for k, var in first_stage_vars(tsm).items()},
        }
    return out


def test_finer_first_stage_never_costs_more(nest):
    obj = {m: nest[m]["objective"] for m in NEST_FIRSTS}
    assert obj[30] <= obj[60] * (1 + REL)
    assert obj[120] >= obj[60] * (1 - REL)
    # the restriction bites: one schedule for 2 h of a varying load costs something
    assert obj[120] > obj[60] * (1 + 1e-4)


@pytest.mark.parametrize(("fine", "coarse"), [(30, 60), (60, 120), (30, 120)])
def test_finer_first_stage_fixed_at_a_coarser_one_costs_the_same(nest, fine, coarse):
    """The coarser decisions repeated in each sub-period are feasible for the finer first
    stage and cost exactly as much: capacity per MW and hour, not per period."""
    k = coarse // fine
    tsm, solver = nest[fine]["tsm"], nest[fine]["solver"]
    for key, var in first_stage_vars(tsm).items():
        solver.fix(var, np.repeat(nest[coarse]["first_stage"][key], k, axis=0))
    try:
        result = solver.solve()
    finally:
        for var in first_stage_vars(tsm).values():
            solver.unfix(var)
        apply_bids(solver, tsm, der_bids(tsm.system, nest[fine]["data"], tsm.options))
    assert result.objective == pytest.approx(nest[coarse]["objective"], rel=REL)


@pytest.mark.parametrize("first", NEST_FIRSTS)
def test_capacity_is_paid_per_mw_and_hour(nest, first):
    """Reserve and DER flexibility cost price x MW x period length: a 120-min period pays
    twice the hourly price per MW."""
    ds, options = nest[first]["ds"], nest[first]["tsm"].options
    hours = first / 60.0
    reserve_mw = float(ds.ter_reserve_up_mw.sum() + ds.ter_reserve_down_mw.sum())
    assert reserve_mw > 1.0  # something to pay for
    items = ds.cost_item_eur.sel(scenario=0)
    paid = float(items.sel(cost_item="tso/first/reserve"))
    assert paid == pytest.approx(options.ter_reserve_eur_per_mw_h * hours * reserve_mw, rel=REL)
    flex_mw = float((ds.der_bid_up_mw + ds.der_bid_down_mw).sum())
    flex_paid = float(items.sel(cost_item="der/first/flexibility"))
    assert flex_paid == pytest.approx(
        options.der_flexibility_eur_per_mw_h * hours * flex_mw, rel=REL
    )


def test_one_mw_of_reserve_over_two_hours_costs_twice_the_hourly_price(nest):
    """The objective's coefficient of each reserve variable, read from the model."""
    from pyomo.repn import generate_standard_repn

    for first in NEST_FIRSTS:
        tsm = nest[first]["tsm"]
        repn = generate_standard_repn(tsm.first_stage_cost, quadratic=False)
        coef = {id(v): c for v, c in zip(repn.linear_vars, repn.linear_coefs, strict=True)}
        var = tsm.var("ter", "reserve_up_mw")
        price = tsm.options.ter_reserve_eur_per_mw_h
        for element in var.component.values():
            assert coef[id(element)] == pytest.approx(price * first / 60.0)


# ----------------------------------------------------------------------------- models


@pytest.fixture(scope="module", params=[30, 120])
def model_run(request):
    from workbench.runner import run_study

    first = request.param
    spec = _spec(first_stage_minutes=first, second_stage_minutes=30)
    spec["feeders"] = spec["feeders"][:1]
    spec["scenarios"] = {"n_scenarios": 2, "method": "profile_noise", "pv_sigma": 0.4}
    spec["risk"] = {"alpha": 0.5, "beta": 0.0}
    spec["ac_check"] = {"enabled": False}
    spec["models"] = ["tso_managed", "hybrid", "dso_managed"]
    study = parse_study(spec, f"first{first}")
    return first, run_study(study, scheduler="sync", progress=False)


@pytest.mark.slow
def test_every_model_runs_with_its_first_stage_periods(model_run):
    first, run = model_run
    n_periods = 4 * 60 // first
    # the results file: period starts are timestamps on the study's clock from 10:00
    contract = to_contract(run)
    start = np.datetime64("2016-06-15T10:00")
    np.testing.assert_array_equal(
        contract.period.values, start + np.arange(n_periods) * np.timedelta64(first, "m")
    )
    np.testing.assert_array_equal(
        contract.time.values, start + np.arange(8) * np.timedelta64(30, "m")
    )
    ds = to_internal(run)
    assert list(ds.model.values) == ["tso_managed", "hybrid", "dso_managed"]
    assert ds.sizes["period"] == n_periods and ds.sizes["time"] == 8
    # internally: offsets from the start of the day
    expected = np.timedelta64(10, "h") + np.arange(n_periods) * np.timedelta64(first, "m")
    np.testing.assert_array_equal(ds.period.values, expected)
    for name in ("ter_schedule_mw", "ter_reserve_up_mw", "der_bid_up_mw", "der_offered_up_mw"):
        assert ds[name].dims[-2:] == ("period", ds[name].dims[-1]), name
        assert "scenario" not in ds[name].dims
    assert (ds.solver_status == "optimal").all()
    hyb = ds.sel(model="hybrid")
    assert hyb.der_validated_up_mw.sizes["period"] == n_periods
    dso = ds.sel(model="dso_managed")
    assert dso.offer_region_p_mw.sizes["period"] == n_periods
    # every step follows its own period's first-stage decision
    k = first // 30
    for m in ds.model.values:
        d = ds.sel(model=m).isel(day=0)
        up = np.repeat(d.ter_reserve_up_mw.values, k, axis=0)  # (time, gen)
        assert (d.ter_balancing_up_mw.values <= up[None] + 1e-6).all(), m
    # TER follow a ramp through their knots at the period boundaries (an independent
    # piecewise-linear interpolation) and publish its mean over each period
    mid_min = (np.arange(8) + 0.5) * 30.0
    edge_min = np.arange(n_periods + 1) * float(first)
    for m in ds.model.values:
        d = ds.sel(model=m).isel(day=0)
        knots = d.ter_knot_mw.values  # (period, edge, gen)
        np.testing.assert_allclose(knots[1:, 0], knots[:-1, 1], atol=1e-9)
        edge = np.vstack([knots[:, 0], knots[-1:, 1]])
        for g in range(knots.shape[-1]):
            ref = np.interp(mid_min, edge_min, edge[:, g])
            np.testing.assert_allclose(d.ter_reference_mw.values[:, g], ref, atol=1e-6)
        np.testing.assert_allclose(
            d.ter_schedule_mw.values, 0.5 * (knots[:, 0] + knots[:, 1]), atol=1e-6
        )
    # the comparison counts accepted volumes over the period's length
    row = compare_models(ds)["models"]["tso"]
    tso = ds.sel(model="tso_managed")
    accepted = float((tso.der_bid_up_mw + tso.der_bid_down_mw).sum()) * first / 60.0
    assert row["der_accepted_mwh"] == pytest.approx(accepted)
