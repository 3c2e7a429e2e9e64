"""Economics of the two-stage model: complete recourse, references, efficient recourse."""

from __future__ import annotations

import copy
import dataclasses
import warnings

import numpy as np
import pandapower as pp
import pandas as pd
import pytest
import xarray as xr

from cases import build_system, load_network, parse_study
from stochastic.extract import extract_two_stage, first_stage_values, scenario_summary
from stochastic.solve import PersistentSolver
from stochastic.twostage import TwoStageOptions, build_two_stage, day_data
from tests.conftest import SMALL_STUDY, scenarios_with_ev
from tests.results_doc import doc_mismatches
from workbench.evaluation import fix_first_stage

RESOURCES = ["load_residential", "load_commercial", "load_transmission", "pv", "wind"]


@pytest.fixture(scope="module")
def noise_study():
    spec = copy.deepcopy(SMALL_STUDY)
    spec["scenarios"] = {"n_scenarios": 3, "method": "profile_noise", "pv_sigma": 0.4}
    return parse_study(spec, "noise")


@pytest.fixture(scope="module")
def noise_solved(noise_study):
    system = build_system(noise_study)
    options = TwoStageOptions.from_study(noise_study)
    scen = scenarios_with_ev(noise_study, system, noise_study.start_date, noise_study.seed)
    data = day_data(system, scen, options)
    tsm = build_two_stage(system, data, options)
    solver = PersistentSolver(tsm.model)
    result = solver.solve()
    return {
        "system": system,
        "options": options,
        "scenarios": scen,
        "tsm": tsm,
        "solver": solver,
        "result": result,
        "first_stage": first_stage_values(tsm),
    }


def _extreme(scen: xr.Dataset, kind: str) -> xr.Dataset:
    one = scen.isel(scenario=[0]).assign(weight=("scenario", [1.0]))
    v = one["value_pu"].copy()
    loads = [r for r in v.resource.values if str(r).startswith("load")]
    if kind == "pv_zero":
        v.loc[{"resource": "pv"}] = 0.0
    elif kind == "pv_clear_sky":
        hour = pd.DatetimeIndex(v.time.values).hour
        day = ((hour >= 6) & (hour < 20)).astype(float)
        v.loc[{"resource": "pv"}] = day[None, :]
    elif kind == "load_high":
        v.loc[{"resource": loads}] = v.sel(resource=loads) * 1.3
    elif kind == "load_low":
        v.loc[{"resource": loads}] = v.sel(resource=loads) * 0.7
    elif kind == "wind_full":
        v.loc[{"resource": "wind"}] = 1.0
    return one.assign(value_pu=v)


@pytest.mark.parametrize("kind", ["pv_zero", "pv_clear_sky", "load_high", "load_low", "wind_full"])
def test_fixed_first_stage_is_feasible_on_extreme_scenarios(noise_solved, kind):
    """Complete recourse: any scenario admits a recourse for the fixed day-ahead decision."""
    s = noise_solved
    data = day_data(s["system"], _extreme(s["scenarios"], kind), s["options"])
    tsm = build_two_stage(s["system"], data, s["options"])
    solver = PersistentSolver(tsm.model)
    fix_first_stage(tsm, solver, s["first_stage"])
    solver.solve()  # raises unless optimal
    after = first_stage_values(tsm)
    np.testing.assert_allclose(after.values, s["first_stage"].values, atol=1e-9)


def test_recourse_is_efficient_at_beta_one(noise_solved):
    """At beta = 1 every scenario's recourse still costs what it costs alone."""
    s = noise_solved
    tsm, solver = s["tsm"], s["solver"]
    tsm.set_risk(0.75, 1.0)
    solver.update_parameters()
    solver.solve()
    costs = scenario_summary(tsm)["cost_eur"]
    first = first_stage_values(tsm)
    options = dataclasses.replace(s["options"], recourse_efficiency_weight=0.0)
    for i in range(len(costs)):
        one = s["scenarios"].isel(scenario=[i]).assign(weight=("scenario", [1.0]))
        alone = build_two_stage(s["system"], day_data(s["system"], one, options), options)
        solver_1 = PersistentSolver(alone.model)
        fix_first_stage(alone, solver_1, first)
        solver_1.solve()
        assert scenario_summary(alone)["cost_eur"][0] == pytest.approx(costs[i], rel=1e-6)
    tsm.set_risk(0.75, 0.5)
    solver.update_parameters()


def _flat(study, value: float = 1.0, hours: int = 4) -> xr.Dataset:
    start = pd.Timestamp(study.start_date) + pd.Timedelta(hours=study.start_hour)
    time = pd.date_range(start, periods=hours * 4, freq="15min")
    values = np.full((1, len(time), len(RESOURCES)), value)
    return xr.Dataset(
        {
            "value_pu": (("scenario", "time", "resource"), values),
            "weight": ("scenario", [1.0]),
        },
        coords={
            "scenario": [0],
            "time": time,
            "period": pd.date_range(start, periods=hours, freq="60min"),
            "resource": RESOURCES,
        },
    )


def _transmission_only(case: str, segments: int):
    study = parse_study(
        {
            "name": "tonly",
            "start_hour": 8,
            "horizon_hours": 4,
            "transmission": {"network": case},
            "scenarios": {"n_scenarios": 1, "method": "profile_noise"},
            "model": {"cost_segments": segments},
            "risk": {"beta": 0.0},
        },
        "tonly",
    )
    system = build_system(study)
    options = dataclasses.replace(TwoStageOptions.from_study(study), recourse_efficiency_weight=0.0)
    data = day_data(system, _flat(study), options)
    tsm = build_two_stage(system, data, options)
    result = PersistentSolver(tsm.model).solve()
    return study, system, tsm, data, result


def test_flat_single_scenario_equals_single_period_dc_opfs():
    """One scenario, flat profile: the day costs the sum of single-period DC OPFs (rundcopp)
    within the tangent-cut error, from below, and the cost rises with cost_segments."""
    ref = load_network("case9")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.rundcopp(ref)
    exact = ref.res_cost * 4.0  # EUR/h over 4 h
    costs = []
    for segments in (1, 2, 4, 8, 16):
        _, _, tsm, data, result = _transmission_only("case9", segments)
        ds = extract_two_stage(tsm, data, result)
        assert ds.first_stage_cost_eur.item() == pytest.approx(0.0, abs=1e-6)  # no reserve
        costs.append(ds.expected_cost_eur.item())
    costs = np.array(costs)
    assert np.all(np.diff(costs) >= -1e-6 * exact), costs
    assert np.all(costs <= exact * (1 + 1e-7)), (costs, exact)
    assert costs[-1] == pytest.approx(exact, rel=2e-3)
    assert costs[0] < costs[-1]  # one cut per unit is a coarse under-estimate


def test_transmission_only_study_runs():
    _, _, tsm, data, result = _transmission_only("case9", 4)
    ds = extract_two_stage(tsm, data, result)
    assert ds.sizes["interface"] == 0 and ds.sizes["der"] == 0
    assert ds.load_shed_mwh.item() == pytest.approx(0.0, abs=1e-9)
    # power balance: generation equals demand in every step (lossless DC)
    gen = ds.ter_p_mw.sum("gen").values
    np.testing.assert_allclose(gen, data.transmission_load_mw.sum(axis=-1), rtol=1e-7)


def test_realistic_costs_follow_the_merit_order():
    from cases.technologies import technology_table

    table = technology_table()
    mc = table["marginal_cost_eur_per_mwh"]
    order = ["nuclear", "lignite", "hard_coal", "ccgt", "ocgt", "oil"]
    assert list(mc[order].sort_values().index) == order
    assert 5.0 < mc["nuclear"] < 20.0 and 40.0 < mc["ccgt"] < 70.0


@pytest.fixture(scope="module")
def evaluated(noise_study, tmp_path_factory):
    import json

    from workbench.cli import main
    from workbench.results import read_results

    spec = copy.deepcopy(SMALL_STUDY)
    spec["scenarios"] = {"n_scenarios": 3, "method": "profile_noise", "pv_sigma": 0.4}
    spec["ac_check"] = {"enabled": False}
    path = tmp_path_factory.mktemp("eval") / "study.yaml"
    import yaml

    path.write_text(yaml.safe_dump(spec))
    out = path.with_name("run.nc")
    args = ["run", str(path), "--out", str(out), "--scheduler", "sync", "--no-progress"]
    assert main([*args, "--no-plots"]) == 0
    return out, read_results, json, main


def test_evaluate_reports_out_of_sample_vss_and_evpi(evaluated, capsys):
    out, read_results, json, main = evaluated
    capsys.readouterr()
    code = main(["evaluate", str(out), "--scenarios", "4", "--scheduler", "sync", "--json"])
    text = capsys.readouterr().out
    assert code == 0, text
    summary = json.loads(text)
    oos = summary["out_of_sample"]
    assert summary["days"] == 1 and oos["scenarios"] == 4
    assert oos["feasible"] == 4  # complete recourse
    for key in ("expected_cost_eur", "cvar_eur", "load_shed_mwh", "curtailment_mwh"):
        assert oos[key] is not None and np.isfinite(oos[key])
    assert oos["cvar_eur"] >= oos["expected_cost_eur"] - 1e-6
    assert set(summary["in_sample"]) == {"expected_cost_eur", "cvar_eur"}
    scale = abs(summary["in_sample"]["expected_cost_eur"])
    # the stochastic solution is optimal in sample: VSS >= 0 there; perfect information
    # never costs more: EVPI >= 0 (up to the solver tolerance)
    assert summary["vss_in_sample_eur"] >= -1e-6 * scale
    assert summary["evpi_eur"] >= -1e-6 * scale
    assert summary["vss_eur"] is not None
    ds = read_results(out)  # the evaluation went into the file
    assert ds.sizes["fresh_scenario"] == 4 and "evpi_eur" in ds
    assert ds["oos_cost_eur"].attrs["units"] == "EUR"
    assert doc_mismatches(ds) == []  # docs/results.md describes the evaluation as it is
    # the per-scenario feasibility survives beside its count per model-day
    assert ds["oos_feasible"].dims[-1] == "fresh_scenario"
    assert int(ds["oos_feasible"].sum()) == int(ds["oos_feasible_count"].sum())


def test_compare_prints_one_entry_per_model(evaluated, capsys):
    out, _, json, main = evaluated
    capsys.readouterr()
    assert main(["compare", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    row = summary["models"]["tso"]
    for key in (
        "expected_cost_eur",
        "cvar_eur",
        "der_offered_mwh",
        "der_accepted_mwh",
        "der_dispatched_mwh",
        "curtailment_mwh",
        "load_shed_mwh",
        "ac_violations",
        "ac_violations_transmission",
        "ac_violations_distribution",
        "worst_vm_pu",
        "worst_loading_percent",
        "problems_solved",
        "solver_s",
        "wall_s",
        "data_exchanged_values",
        "data_exchanged_bytes",
    ):
        assert key in row, key
    assert row["problems_solved"] == 1
    assert 0.0 <= row["der_accepted_mwh"] <= row["der_offered_mwh"] + 1e-6
    assert row["data_exchanged_bytes"] == 8 * row["data_exchanged_values"] > 0


def test_evaluate_user_errors_are_one_line(tmp_path, capsys):
    from workbench.cli import main

    assert main(["evaluate", str(tmp_path / "missing.nc")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "does not exist" in err
    bad = tmp_path / "x.nc"
    xr.Dataset({"a": ("x", [1.0])}).to_netcdf(bad)
    assert main(["compare", str(bad)]) == 2
    assert "not a results file" in capsys.readouterr().err
