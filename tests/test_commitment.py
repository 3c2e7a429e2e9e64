"""Unit commitment of the TER: analytical one-bus cases, limits in binary, cost ordering.

A one-bus system with a cheap base unit A (100 MW, 10 EUR/MWh, no minimum) and a peaker B
(100 MW, 50 EUR/MWh, minimum stable output 60 MW) serves a known hourly demand; any
demand not served is shed at 3000 EUR/MWh, so every first stage has a recourse.
"""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pyomo.environ as pyo
import pytest

from cases import parse_study
from cases.errors import StudyConfigError
from cases.technologies import technology_table
from cases.transmission import TransmissionArrays
from stochastic.blocks import FIRST, TerPrices, define_ter
from stochastic.grid import StageGrid
from stochastic.linear import add_rows, add_var, linear_sum, terms
from stochastic.solve import PersistentSolver
from tests.conftest import SMALL_STUDY

VOLL = 3000.0
STARTUP_EUR_PER_MW = 5.0
EXTRA_EUR_PER_MWH = 50.0 - 10.0  # B's energy displaces A's


def _one_bus(min_up_h: float = 1.0, min_down_h: float = 1.0) -> TransmissionArrays:
    z = np.zeros(0)
    return TransmissionArrays(
        base_mva=100.0,
        bus_index=np.array([0]),
        bus_name=np.array(["b"]),
        demand_mw=np.zeros(1),
        ref_bus=0,
        branch_from=z.astype(int),
        branch_to=z.astype(int),
        branch_b_pu=z,
        branch_shift_rad=z,
        branch_rating_mw=z,
        branch_kind=z.astype(str),
        branch_element=z.astype(int),
        gen_bus=np.array([0, 0]),
        gen_kind=np.array(["gen", "gen"]),
        gen_element=np.array([0, 1]),
        gen_pmin_mw=np.zeros(2),
        gen_pmax_mw=np.array([100.0, 100.0]),
        gen_cost_c0_eur_per_h=np.zeros(2),
        gen_cost_c1_eur_per_mwh=np.array([10.0, 50.0]),
        gen_cost_c2_eur_per_mw2h=np.zeros(2),
        gen_min_stable_mw=np.array([0.0, 60.0]),
        gen_min_up_h=np.array([0.0, min_up_h]),
        gen_min_down_h=np.array([0.0, min_down_h]),
        gen_startup_eur_per_mw=np.array([0.0, STARTUP_EUR_PER_MW]),
    )


def _solve(demand_mw, commitment: str, follow: str, tarr: TransmissionArrays | None = None):
    """Least cost of serving ``demand_mw`` (one value per hour, 60/60)."""
    tarr = tarr or _one_bus()
    demand_mw = np.asarray(demand_mw, float)
    P = len(demand_mw)
    grid = StageGrid(n_scenarios=1, n_steps=P, n_periods=P, step_h=1.0, period_h=1.0)
    m = pyo.ConcreteModel()
    prices = TerPrices(0.0, 0.0, 1000.0, 1000.0, 1, follow=follow, commitment=commitment)
    part, inj = define_ter(m, grid, tarr, prices)
    shed = add_var(m, "shed_mw", (1, P), ("scenario", "time"), 0.0)
    rows = np.arange(P).reshape(1, P)
    add_rows(
        m,
        "balance",
        (1, P),
        ("scenario", "time"),
        [*inj, terms(shed, rows[..., None], rows[..., None])],
        demand_mw[None],
        demand_mw[None],
    )
    cost = [c.terms for c in part.costs] + [terms(shed, 0, rows, VOLL)]
    m.obj = pyo.Objective(expr=linear_sum(cost))
    options = {"solver": "choose", "mip_rel_gap": 0.0} if commitment == "binary" else {}
    result = PersistentSolver(m, options=options).solve()
    v = {k: x.values() for k, x in part.vars.items()}
    first = sum(pyo.value(linear_sum([c.terms])) for c in part.costs if c.stage == FIRST)
    return result.objective, v, first, shed.values()


@pytest.mark.parametrize("follow", ["step", "ramp"])
def test_minimum_stable_output_forces_a_start_up(follow):
    """Demand 80/110/110/80 MW. Without commitment A runs flat out and B fills 10 MW in
    the two peak hours. B committed must run at least 60 MW (step) or, starting from and
    stopping at 0 MW on the boundaries of its two hours (ramp), at least 30 MW on average
    in each: B displaces 50 (step) or 20 MW (ramp) of A in each peak hour, and pays one
    start-up; the LP relaxation lies between."""
    demand = [80.0, 110.0, 110.0, 80.0]
    none, _, _, _ = _solve(demand, "none", follow)
    assert none == pytest.approx(2 * 80 * 10 + 2 * (100 * 10 + 10 * 50))
    binary, v, first, shed = _solve(demand, "binary", follow)
    b_min = 60.0 if follow == "step" else 30.0
    expected = none + 2 * (b_min - 10.0) * EXTRA_EUR_PER_MWH + STARTUP_EUR_PER_MW * 100.0
    assert binary == pytest.approx(expected, rel=1e-9)
    np.testing.assert_allclose(v["commitment"][:, 1], [0, 1, 1, 0], atol=1e-9)
    np.testing.assert_allclose(v["startup"][:, 1], [0, 1, 0, 0], atol=1e-9)
    np.testing.assert_allclose(v["schedule_mw"][:, 1], [0, b_min, b_min, 0], atol=1e-6)
    assert first == pytest.approx(STARTUP_EUR_PER_MW * 100.0)
    assert np.all(shed < 1e-9)
    relaxed, vr, _, _ = _solve(demand, "relaxed", follow)
    assert none - 1e-6 <= relaxed <= binary + 1e-6
    assert relaxed < binary - 1.0  # the relaxation is strictly weaker here
    assert np.all((vr["commitment"] > -1e-9) & (vr["commitment"] < 1 + 1e-9))


@pytest.mark.parametrize(("min_down_h", "starts"), [(1.0, 2), (2.0, 1)])
def test_minimum_down_time_keeps_the_unit_on_through_a_short_valley(min_down_h, starts):
    """Demand 110/80/110 after and before 80 MW hours: B is needed in hours 1 and 3. With a
    1-h minimum down time it stops in hour 2 and starts twice (two start-ups of 500 EUR
    cost less than 50 MW of A displaced for an hour, 2000 EUR); with 2 h it cannot stop
    for one hour and runs through it at its minimum."""
    demand = [80.0, 110.0, 80.0, 110.0, 80.0]
    tarr = _one_bus(min_down_h=min_down_h)
    cost, v, _, _ = _solve(demand, "binary", "step", tarr)
    u = v["commitment"][:, 1]
    assert v["startup"][:, 1].sum() == pytest.approx(starts)
    if starts == 1:
        np.testing.assert_allclose(u, [0, 1, 1, 1, 0], atol=1e-9)
        assert v["schedule_mw"][2, 1] == pytest.approx(60.0)
    else:
        np.testing.assert_allclose(u, [0, 1, 0, 1, 0], atol=1e-9)
    none, _, _, _ = _solve(demand, "none", "step", tarr)
    extra = 2 * 50 * EXTRA_EUR_PER_MWH + starts * STARTUP_EUR_PER_MW * 100.0
    if starts == 1:
        extra += 60 * EXTRA_EUR_PER_MWH  # the valley hour at B's minimum
    assert cost == pytest.approx(none + extra, rel=1e-9)


def test_minimum_up_time_holds_a_started_unit_on():
    """A 3-h minimum up time: B started for the one peak hour stays on two more (at its
    minimum, 2 x 2400 EUR); running from before the day instead (no start-up charged: the
    state before the horizon is the first period's) would cost 4 x 2400 EUR."""
    demand = [80.0] * 4 + [110.0] + [80.0] * 3
    tarr = _one_bus(min_up_h=3.0)
    cost, v, _, _ = _solve(demand, "binary", "step", tarr)
    u = np.round(v["commitment"][:, 1])
    on = np.flatnonzero(u)  # three consecutive hours around the peak (which three: a tie)
    assert len(on) == 3 and np.all(np.diff(on) == 1) and 4 in on and on[0] > 0
    assert v["startup"][:, 1].sum() == pytest.approx(1.0)
    none, _, _, _ = _solve(demand, "none", "step", tarr)
    extra = 50 * EXTRA_EUR_PER_MWH + 2 * 60 * EXTRA_EUR_PER_MWH + STARTUP_EUR_PER_MW * 100.0
    assert cost == pytest.approx(none + extra, rel=1e-9)


def test_technical_limits_have_a_row_per_technology():
    table = technology_table()
    for column in ("min_stable_percent", "min_up_h", "min_down_h", "startup_cost_eur_per_mw"):
        assert table[column].notna().all(), column
    assert ((table.min_stable_percent > 0) & (table.min_stable_percent < 100)).all()
    # a start-up from 0 MW reaches the minimum within one hour at the ramp rate
    assert (table.ramp_percent_per_min * 60 >= table.min_stable_percent).all()


@pytest.mark.parametrize(
    ("section", "key", "value", "needle"),
    [
        ("model", "commitment", "integer", "commitment"),
        ("solver", "mip_gap", -0.1, "mip_gap"),
        ("solver", "time_limit_s", 0, "time_limit_s"),
    ],
)
def test_bad_commitment_settings_are_one_line_errors(section, key, value, needle):
    spec = copy.deepcopy(SMALL_STUDY)
    spec[section] = {key: value}
    with pytest.raises(StudyConfigError) as err:
        parse_study(spec, "bad")
    assert needle in str(err.value) and "\n" not in str(err.value).strip()


# ----------------------------------------------------------------------------- two-stage


def _uc_spec(mode: str) -> dict:
    spec = copy.deepcopy(SMALL_STUDY)
    spec.update(start_hour=4, horizon_hours=16)
    spec["feeders"] = spec["feeders"][:1]
    spec["transmission"] = {
        "network": "case9",
        "technologies": {"ext_grid/0": "lignite", "gen/0": "ccgt", "gen/1": "ocgt"},
    }
    spec["resolution"] = {"first_stage_minutes": 60, "second_stage_minutes": 30}
    spec["scenarios"] = {"n_scenarios": 2, "method": "profile_noise", "pv_sigma": 0.3}
    spec["risk"] = {"alpha": 0.5, "beta": 0.0}
    spec["ac_check"] = {"enabled": False}
    spec["model"] = {"commitment": mode}
    spec["solver"] = {"mip_gap": 0.0001}
    return spec


@pytest.fixture(scope="module")
def uc_runs():
    from workbench.results import annotate
    from workbench.runner import run_study

    out = {}
    for mode in ("none", "relaxed", "binary"):
        study = parse_study(_uc_spec(mode), f"uc {mode}")
        ds = run_study(study, scheduler="sync", progress=False)
        out[mode] = (study, annotate(ds, study, study.seed, "sync"))
    return out


@pytest.mark.slow
def test_costs_are_ordered_none_relaxed_binary(uc_runs):
    """The relaxation bounds the binary commitment from below. ``none`` is no bound of
    either here: it keeps case9's 10 MW minimum of every unit at all hours, which a
    committed unit may leave by switching off."""
    obj = {m: float(ds.objective_eur.sum()) for m, (_, ds) in uc_runs.items()}
    assert obj["relaxed"] <= obj["binary"] * (1 + 1e-7)
    assert float(uc_runs["binary"][1].ter_startup.sum()) >= 0.0
    assert "ter_commitment" not in uc_runs["none"][1]


@pytest.mark.slow
def test_binary_commitment_respects_the_unit_limits(uc_runs):
    from cases import build_system
    from workbench.contract import to_internal

    study, run = uc_runs["binary"]
    ds = to_internal(run).isel(model=0, day=0)
    tarr = build_system(study).transmission
    u = ds.ter_commitment.values  # (period, gen)
    start = ds.ter_startup.values
    assert np.all(np.abs(u - np.round(u)) < 1e-6)  # integral
    assert np.all(np.abs(start - np.round(start)) < 1e-6)
    u, start = np.round(u), np.round(start)
    assert float(ds.solver_mip_gap) <= study.solver.mip_gap + 1e-12
    stable, pmax = tarr.gen_min_stable_mw, tarr.gen_pmax_mw
    assert np.all(stable > 0)
    k = ds.sizes["time"] // ds.sizes["period"]
    ref = ds.ter_reference_mw.values.reshape(-1, k, len(pmax)).transpose(0, 2, 1)
    # ref: (period, gen, step within the period)
    knots = ds.ter_knot_mw.values  # (period, edge, gen)
    on_before = np.vstack([u[:1], u[:-1]])
    on_after = np.vstack([u[1:], u[-1:]])
    steady = (u == 1) & (on_before == 1) & (on_after == 1)
    # on and neither starting nor stopping: the trajectory within [min stable, pmax]
    assert np.all(ref[steady] >= stable[np.nonzero(steady)[1]][:, None] - 1e-6)
    assert np.all(ref <= pmax[:, None] + 1e-6)
    # a start-up opens at 0 MW and reaches the minimum at the period's end
    assert np.all(np.abs(knots[:, 0][start == 1]) < 1e-6)
    starting = (start == 1) & (on_after == 1)
    assert np.all(knots[:, 1][starting] >= stable[np.nonzero(starting)[1]] - 1e-6)
    # off: no output, no reserve
    off = u == 0
    assert np.all(np.abs(ref[off]) < 1e-6)
    assert np.all(ds.ter_reserve_up_mw.values[off] < 1e-6)
    assert np.all(ds.ter_reserve_down_mw.values[off] < 1e-6)
    # minimum up and down times: every run of on (off) periods that starts (ends) inside
    # the horizon and is closed by a change is at least as long as the unit's time
    for g in range(len(pmax)):
        changes = np.flatnonzero(np.diff(u[:, g])) + 1
        bounds = [0, *changes.tolist(), len(u)]
        for a, b in itertools.pairwise(bounds):
            if a == 0 or b == len(u):
                continue  # runs cut by the horizon
            need = tarr.gen_min_up_h[g] if u[a, g] == 1 else tarr.gen_min_down_h[g]
            assert b - a >= need - 1e-9, (g, a, b)
    # start-up cost: per start, per MW of capacity
    items = ds.cost_item_eur.sel(scenario=0)
    paid = float(items.sel(cost_item="tso/first/startup"))
    assert paid == pytest.approx(float((start * tarr.gen_startup_eur_per_mw * pmax).sum()))


@pytest.mark.slow
def test_dispatch_figure_shows_the_commitment(uc_runs):
    import matplotlib

    matplotlib.use("Agg")
    from workbench.plots import plot_dispatch

    fig = plot_dispatch(uc_runs["binary"][1])
    gids = {a.get_gid() for ax in fig.axes for a in ax.get_children()}
    assert {"commitment:on", "commitment:off"} <= gids
    if float(uc_runs["binary"][1].ter_startup.sum()) > 0.5:
        assert "startup" in gids
    fig = plot_dispatch(uc_runs["none"][1])
    gids = {a.get_gid() for ax in fig.axes for a in ax.get_children()}
    assert "commitment:on" not in gids
