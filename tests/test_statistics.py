"""Statistics of a results file: every figure against the variables it comes from.

A solved run of the small study checks conservation (TER energy, the feeders' balance,
cost items against the scenario costs and the objective's terms); small synthetic arrays
check the aggregations over scenarios against numbers computed here by hand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.compare import compare_models
from workbench.contract import to_contract
from workbench.results import annotate
from workbench.runner import run_study
from workbench.statistics import STATISTICS, Statistics, StatisticsError, to_frame

TOL = 1e-9


@pytest.fixture(scope="module")
def run(small_study, small_system, small_forecaster):
    ds = run_study(
        small_study,
        scheduler="sync",
        progress=False,
        system=small_system,
        forecaster=small_forecaster,
    )
    return annotate(ds, small_study, small_study.seed, "sync")


@pytest.fixture(scope="module")
def stats(run):
    return Statistics(run)


def _step_h(ds: xr.Dataset) -> float:
    t = ds.time.values
    return float((t[1] - t[0]) / np.timedelta64(1, "h"))


def _close(a, b, tol: float = TOL) -> None:
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=tol, atol=tol)


# ------------------------------------------------------------------------------------
# conservation on a solved run


def test_every_statistic_has_model_day_scenario_and_a_category(stats):
    for name in STATISTICS:
        da = getattr(stats, name)()
        assert da.dims[:3] == ("model", "day", "scenario") and da.ndim == 4, name
        assert da.name == name and da.attrs["units"] and da.attrs["long_name"], name
        assert np.isfinite(da.values).all(), name


def test_ter_energy_by_technology_sums_to_the_ter_output(stats):
    ds = stats.ds
    total = ds.ter_p_mw.sum(("time", "gen")) * _step_h(ds)
    for groupby in ("gen_technology", "gen_bus", "gen"):
        _close(stats.ter_energy(groupby=groupby).sum(groupby), total)
    assert stats.ter_energy().dims[-1] == "gen_technology"


def test_der_energy_closes_each_feeder_balance(stats):
    """DER + fixed units - load served = - import, per scenario (lossless LinDistFlow)."""
    ds = stats.ds
    e = stats.der_energy()
    h = _step_h(ds)
    imported = ds.interface_p_mw.sum(("time", "interface")) * h
    _close(e.sum("resource"), -imported, 1e-7)
    pv = ds.der_p_mw.sel(der=ds.der_type == "pv").sum(("time", "der")) * h
    _close(e.sel(resource="pv"), pv)
    feeder = ds.bus_network != "transmission"
    served = (ds.demand_mw - ds.load_shed_mw).sel(bus=feeder).sum(("time", "bus")) * h
    _close(e.sel(resource="load"), -served)
    assert float(e.sel(resource="fixed").min()) > -1e-6  # cigre_mv's wind and CHP inject


def test_cost_items_owners_and_stages_sum_to_the_scenario_cost(stats):
    ds = stats.ds
    for by in ("item", "owner", "stage"):
        _close(stats.cost(by=by).sum(by if by != "item" else "cost_item"), ds.scenario_cost_eur)
    first = stats.cost(by="stage").sel(stage="first")
    _close(first, ds.first_stage_cost_eur.broadcast_like(first))
    assert list(stats.cost(by="owner").owner.values) == ["tso", "dso", "der"]


def test_expectation_and_cvar_of_the_cost_are_the_files_and_make_the_objective(stats, run):
    ds = stats.ds
    cost = stats.cost(by="stage")
    total = cost.sum("stage")
    _close(stats.expectation(total), ds.expected_cost_eur)
    _close(stats.cvar(total), ds.cvar_eur)
    # objective = first stage + (1 - beta + eps) E[C2] + beta CVaR[C2]
    risk = run.attrs["study_config_yaml"]
    assert "alpha: 0.75" in risk and "beta: 0.5" in risk
    eps = 0.001  # recourse_efficiency_weight default
    second = cost.sel(stage="second")
    objective = (
        cost.sel(stage="first").isel(scenario=0)
        + (1 - 0.5 + eps) * stats.expectation(second)
        + 0.5 * stats.cvar(second)
    )
    _close(objective, ds.objective_eur, 1e-7)


def test_reserve_bought_and_activated_against_the_schedules(stats):
    ds = stats.ds
    h = _step_h(ds)
    period_h = h * ds.sizes["time"] / ds.sizes["period"]
    bought, used = stats.reserve_bought(), stats.reserve_activated()
    for d in ("up", "down"):
        ter = ds[f"ter_reserve_{d}_mw"].sum(("period", "gen")) * period_h
        _close(bought.sel(reserve=f"ter/{d}").isel(scenario=0), ter)
        _close(
            bought.sel(reserve=f"der/{d}").isel(scenario=0),
            ds[f"der_bid_{d}_mw"].sum(("period", "der")) * period_h,
        )
        _close(used.sel(reserve=f"ter/{d}"), ds[f"ter_balancing_{d}_mw"].sum(("time", "gen")) * h)
        # balancing stays inside the reserve at every step, so its energy inside the volume
        assert (used.sel(reserve=f"ter/{d}") <= bought.sel(reserve=f"ter/{d}") + 1e-6).all()
    assert set(bought.direction.values) == {"up", "down"}
    assert set(bought.provider.values) == {"ter", "der"}
    # standing volumes: the same in every scenario
    assert (bought.std("scenario") == 0).all()
    vol = stats.der_volumes()
    _close(vol.sel(volume="accepted"), bought.sel(reserve=["der/up", "der/down"]).sum("reserve"))
    _close(vol.sel(volume="dispatched"), used.sel(reserve=["der/up", "der/down"]).sum("reserve"))
    assert (vol.sel(volume="accepted") <= vol.sel(volume="offered") + 1e-6).all()


def test_curtailment_shedding_and_data_against_the_files_totals(stats):
    ds = stats.ds
    _close(stats.expectation(stats.curtailment()).sum("resource"), ds.curtailment_mwh, 1e-7)
    _close(stats.expectation(stats.load_shed()).sum("bus_network"), ds.load_shed_mwh, 1e-7)
    values = stats.data_exchanged()
    _close(values.isel(scenario=0).sum("message"), ds.message_values.sum("message"))
    _close(stats.data_exchanged(unit="bytes"), 8 * values)
    by_sender = stats.data_exchanged(groupby="message_sender")
    _close(by_sender.sum("message_sender"), values.sum("message"))
    checks = stats.ac_violations()
    _close(checks.sel(check="checked").sum(("scenario",)), ds.ac_checked.sum(("scenario", "time")))


def test_compare_reports_the_statistics_and_the_files_figures(run, stats):
    row = compare_models(run)["models"]["tso"]
    ds = stats.ds
    assert row["expected_cost_eur"] == pytest.approx(float(ds.expected_cost_eur.sum()), rel=1e-12)
    assert row["cvar_eur"] == pytest.approx(float(ds.cvar_eur.sum()), rel=1e-12)
    assert row["curtailment_mwh"] == pytest.approx(float(ds.curtailment_mwh.sum()), abs=1e-7)
    assert row["data_exchanged_values"] == int(ds.message_values.sum())
    assert row["data_exchanged_bytes"] == 8 * row["data_exchanged_values"]
    dispatched = (ds.der_activated_up_mw + ds.der_activated_down_mw).sum(("time", "der"))
    expected = float((dispatched * ds.weight).sum()) * _step_h(ds)
    assert row["der_dispatched_mwh"] == pytest.approx(expected, rel=1e-12)


def test_either_layout_gives_the_same_statistics(run, stats):
    other = Statistics(to_contract(run))
    for name in ("cost", "der_energy", "reserve_activated"):
        xr.testing.assert_allclose(getattr(other, name)(), getattr(stats, name)())


def test_alpha_comes_from_the_study_or_the_run(run, stats):
    assert stats.alpha == 0.75
    bare = run.copy()
    bare.attrs = {}
    with pytest.raises(StatisticsError, match="alpha"):
        Statistics(bare).cvar(Statistics(bare).cost())
    assert Statistics(bare, alpha=0.5).alpha == 0.5
    bare.attrs["alpha"] = 0.6  # a run before annotate records the level it solved with
    assert Statistics(bare).alpha == 0.6
    with pytest.raises(ValueError, match="alpha must be in"):
        Statistics(run, alpha=1.0)


def test_fixed_spill_of_an_older_file_is_nil_only_when_its_total_says_so(run, stats):
    old = run.drop_vars("fixed_spill_mw")
    _close(Statistics(old).curtailment(), stats.curtailment(), 1e-7)
    old["curtailment_mwh"] = old.curtailment_mwh + 0.5
    with pytest.raises(StatisticsError, match="only as an expectation"):
        Statistics(old).curtailment()


def test_a_missing_variable_or_argument_is_a_statistics_error(run):
    st_ = Statistics(run.drop_vars("ter_p_mw"))
    assert not st_.available("ter_energy") and st_.available("cost")
    with pytest.raises(StatisticsError, match="lack ter_p_mw"):
        st_.ter_energy()
    with pytest.raises(StatisticsError, match="choose item, owner or stage"):
        st_.cost(by="payer")
    with pytest.raises(StatisticsError, match="cannot group 'gen' by 'colour'"):
        Statistics(run).ter_energy(groupby="colour")
    with pytest.raises(StatisticsError, match="unknown statistic"):
        st_.to_frame(["energy"])
    with pytest.raises(StatisticsError, match="scenario weights"):
        Statistics(run.drop_vars("weight"))


# ------------------------------------------------------------------------------------
# aggregations over scenarios, on arrays with known numbers


def _synthetic(values: np.ndarray, weights: np.ndarray) -> tuple[Statistics, xr.DataArray]:
    """A Statistics over one model and ``values.shape[0]`` days, and ``values`` as a
    statistic on (model, day, scenario, category)."""
    n_day, n_s, n_c = values.shape
    days = pd.date_range("2016-06-15", periods=n_day).values
    ds = xr.Dataset(
        {"weight": (("model", "day", "scenario"), np.tile(weights, (1, n_day, 1)))},
        coords={"model": ["m"], "day": days, "scenario": np.arange(n_s)},
    )
    da = xr.DataArray(
        values[None],
        dims=("model", "day", "scenario", "category"),
        coords={
            "model": ["m"],
            "day": days,
            "scenario": np.arange(n_s),
            "category": list("abc")[:n_c],
        },
        name="x",
        attrs={"units": "EUR", "long_name": "x"},
    )
    return Statistics(ds, alpha=0.5), da


def test_expectation_uses_the_weights():
    values = np.array([[[1.0, 10.0], [2.0, 20.0], [4.0, 40.0]]])  # (day, scenario, category)
    w = np.array([0.5, 0.3, 0.2])
    st_, da = _synthetic(values, w)
    _close(st_.expectation(da).values[0, 0], w @ values[0])
    st_, da = _synthetic(values, np.array([0.2, 0.3, 0.5]))
    _close(
        st_.expectation(da).values[0, 0],
        [0.2 * 1 + 0.3 * 2 + 0.5 * 4, 0.2 * 10 + 0.3 * 20 + 0.5 * 40],
    )


def test_cvar_is_the_worst_scenario_near_alpha_one_and_the_mean_near_zero():
    rng = np.random.default_rng(4)
    values = rng.normal(100.0, 30.0, (2, 8, 3))
    st_, da = _synthetic(values, np.full(8, 1 / 8))
    _close(st_.cvar(da, alpha=0.999).values[0], values.max(axis=1))
    _close(st_.cvar(da, alpha=1e-9).values[0], values.mean(axis=1), 1e-6)
    # alpha = 0.75 with 8 equal scenarios: the mean of the two costliest
    top2 = np.sort(values, axis=1)[:, -2:].mean(axis=1)
    _close(st_.cvar(da, alpha=0.75).values[0], top2)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(-1e4, 1e4), min_size=2, max_size=9),
    st.floats(0.05, 0.95),
    st.integers(0, 2**32 - 1),
)
def test_cvar_is_never_below_the_expectation(costs, alpha, seed):
    w = np.random.default_rng(seed).dirichlet(np.ones(len(costs)))
    st_, da = _synthetic(np.array(costs)[None, :, None], w)
    assert st_.cvar(da, alpha).item() >= st_.expectation(da).item() - 1e-9 * (
        1 + max(map(abs, costs))
    )


def test_a_day_without_a_schedule_holds_nan():
    values = np.ones((2, 3, 2))
    st_, da = _synthetic(values, np.full(3, 1 / 3))
    da[0, 1] = np.nan
    st_.ds["weight"][0, 1] = np.nan
    assert np.isnan(st_.expectation(da).values[0, 1]).all()
    assert np.isnan(st_.cvar(da).values[0, 1]).all()
    _close(st_.expectation(da).values[0, 0], [1.0, 1.0])


# ------------------------------------------------------------------------------------
# the tidy view


def test_tidy_frame_round_trips_to_the_arrays(stats):
    for name in ("cost", "reserve_bought", "der_energy"):
        da = getattr(stats, name)()
        df = to_frame(da)
        assert list(df.columns) == [
            "model",
            "day",
            "scenario",
            "statistic",
            "category",
            "value",
            "unit",
        ]
        assert (df.statistic == name).all() and (df.unit == da.attrs["units"]).all()
        back = df.set_index(["model", "day", "scenario", "category"])["value"].to_xarray()
        back = back.rename(category=da.dims[-1]).transpose(*da.dims)
        np.testing.assert_array_equal(back.sel({da.dims[-1]: da[da.dims[-1]]}).values, da.values)
    ex = to_frame(stats.expectation(stats.cost(by="owner")))
    assert (ex.scenario == "expectation").all() and len(ex) == 3


def test_frame_of_every_statistic_aggregated(stats):
    df = stats.to_frame(aggregate="cvar")
    assert set(df.statistic) == set(STATISTICS)
    assert (df.scenario == "cvar_0.75").all()
    cost = df[(df.statistic == "cost") & df.category.str.startswith("tso/")]
    assert cost.value.notna().any()
