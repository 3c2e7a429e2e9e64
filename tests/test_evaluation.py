"""``workbench evaluate``: VSS against the expected-value plan and a reserve rule, EVPI in
sample and the out-of-sample gap, their splits by cost item, units that resume."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import yaml

from tests.conftest import SMALL_STUDY
from workbench.cli import main
from workbench.contract import to_internal
from workbench.evaluation import (
    ReserveRule,
    evaluate_results,
    evaluation_summary,
    parse_reserve_rule,
)
from workbench.results import read_results
from workbench.rundir import RunFolder


def _run(tmp_path_factory, name: str, n_scenarios: int, **risk) -> object:
    """Results of the small study (AC check off), written by ``workbench run``."""
    spec = copy.deepcopy(SMALL_STUDY)
    spec["scenarios"] = {"n_scenarios": n_scenarios, "method": "profile_noise", "pv_sigma": 0.4}
    spec["ac_check"] = {"enabled": False}
    spec["risk"] = {**spec.get("risk", {}), **risk}
    folder = tmp_path_factory.mktemp(name)
    study = folder / "study.yaml"
    study.write_text(yaml.safe_dump(spec))
    out = folder / "run.nc"
    args = ["run", str(study), "--out", str(out), "--scheduler", "sync", "--no-progress"]
    assert main([*args, "--no-plots"]) == 0
    return out


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    """Results of the small study with three in-sample scenarios (risk-averse)."""
    return _run(tmp_path_factory, "three", 3)


@pytest.fixture(scope="module")
def one(tmp_path_factory):
    """One in-sample scenario, no efficiency weight: the stochastic problem is the
    expected-value problem and the wait-and-see problem of that scenario."""
    return _run(tmp_path_factory, "one", 1, recourse_efficiency_weight=0.0)


def _evaluate(path, **kw):
    ds = to_internal(read_results(path))
    kw = {"n_scenarios": 3, "scheduler": "sync", "progress": False, **kw}
    return evaluate_results(ds, **kw)


@pytest.fixture(scope="module")
def zero_rule(three):
    """The three-scenario results evaluated with a rule asking for no reserve."""
    return _evaluate(three, reserve_rule="fixed:0")


def _at(ds, name):
    return float(ds[name].isel(model=0, day=0))


def _scale(ds) -> float:
    return abs(_at(ds, "oos_objective_eur"))


def test_reserve_rules_parse_and_bad_ones_are_one_line():
    assert parse_reserve_rule("quantile:0.9") == ReserveRule("quantile", 0.9)
    assert parse_reserve_rule("largest_unit") == ReserveRule("largest_unit")
    assert parse_reserve_rule("fixed:120") == ReserveRule("fixed", 120.0)
    assert parse_reserve_rule("50") == ReserveRule("fixed", 50.0)
    for bad in ("quantile:1.5", "fixed:-3", "n-1", "quantile:"):
        with pytest.raises(ValueError, match="reserve rule") as info:
            parse_reserve_rule(bad)
        assert "\n" not in str(info.value)


def test_one_scenario_vss_and_evpi_vanish(one):
    """With one in-sample scenario the stochastic, expected-value and (in sample)
    wait-and-see problems are the same problem: VSS = 0 and the textbook EVPI = 0; a
    quantile rule on one scenario asks for no reserve, so the rule plan is the EEV."""
    ds = _evaluate(one, reserve_rule="quantile:0.95")
    tol = 1e-6 * _scale(ds)
    assert _at(ds, "rule_reserve_up_required_mwh") == 0.0
    assert _at(ds, "rule_reserve_down_required_mwh") == 0.0
    for name in ("vss_in_sample_eur", "evpi_eur", "vss_vs_rule_in_sample_eur"):
        assert abs(_at(ds, name)) <= tol, (name, _at(ds, name))
    assert _at(ds, "eev_in_sample_eur") == pytest.approx(_at(ds, "rp_in_sample_eur"), abs=tol)
    # out of sample the two plans are alternative optima of one LP (equal in-sample cost,
    # e.g. storage schedules of equal value): equal up to what the ties leave open
    # (measured: 0.5 EUR of 16,000)
    for name in ("vss_eur", "vss_vs_rule_eur"):
        assert abs(_at(ds, name)) <= 5e-4 * _scale(ds), (name, _at(ds, name))
    np.testing.assert_allclose(ds["eev_cost_eur"].values, ds["oos_cost_eur"].values, rtol=1e-3)
    # the fresh scenarios differ from the one the plan saw: the out-of-sample gap does not
    assert _at(ds, "oos_gap_eur") > 100 * tol


def test_a_rule_asking_for_no_reserve_is_the_expected_value_plan(zero_rule):
    ds = zero_rule
    tol = 1e-6 * _scale(ds)
    np.testing.assert_allclose(
        ds["rule_cost_eur"].values, ds["eev_cost_eur"].values, rtol=1e-7, atol=tol
    )
    assert _at(ds, "vss_vs_rule_eur") == pytest.approx(_at(ds, "vss_eur"), abs=tol)
    assert _at(ds, "rule_reserve_up_mwh") == pytest.approx(_at(ds, "eev_reserve_up_mwh"))
    np.testing.assert_allclose(
        ds["vss_vs_rule_by_item_eur"].values, ds["vss_by_item_eur"].values, atol=tol
    )


def test_splits_by_cost_item_sum_to_the_totals(zero_rule):
    ds = zero_rule
    tol = 1e-6 * _scale(ds)
    for split, total in (
        ("vss_by_item_eur", "vss_eur"),
        ("vss_vs_rule_by_item_eur", "vss_vs_rule_eur"),
        ("evpi_by_item_eur", "evpi_eur"),
        ("oos_gap_by_item_eur", "oos_gap_eur"),
    ):
        assert float(ds[split].isel(model=0, day=0).sum()) == pytest.approx(
            _at(ds, total), abs=tol
        ), split
    # and each plan's items, weighted by the risk measure, are its measure: the reserve
    # the expected-value plan does not buy is a negative item of the VSS
    items = [str(i) for i in ds["item"].values]
    reserve = ds["vss_by_item_eur"].isel(model=0, day=0).values[items.index("tso/first/reserve")]
    assert reserve <= tol


def test_perfect_information_bounds(zero_rule):
    """Wait-and-see solves each scenario with its own first stage: never dearer than a
    fixed plan, scenario by scenario; the in-sample VSS of the textbook is >= 0."""
    ds = zero_rule
    tol = 1e-6 * _scale(ds)
    ws, oos = ds["ws_cost_eur"].values, ds["oos_cost_eur"].values
    assert np.all(ws <= oos + tol)
    assert _at(ds, "evpi_eur") >= -tol and _at(ds, "oos_gap_eur") >= -tol
    assert _at(ds, "vss_in_sample_eur") >= -tol
    assert _at(ds, "vss_vs_rule_in_sample_eur") >= -tol


def test_a_reserve_rule_buys_the_reserve_it_asks_for(three):
    ds = _evaluate(three, reserve_rule="fixed:30")
    hours = SMALL_STUDY["horizon_hours"]
    assert _at(ds, "rule_reserve_up_required_mwh") == pytest.approx(30.0 * hours)
    assert _at(ds, "rule_reserve_up_mwh") >= 30.0 * hours - 1e-6
    assert _at(ds, "rule_reserve_down_mwh") >= 30.0 * hours - 1e-6
    assert _at(ds, "eev_reserve_up_mwh") < _at(ds, "rule_reserve_up_mwh")
    summary = evaluation_summary(ds)
    assert summary["reserve_rule"] == "fixed:30"
    assert summary["reserve_mwh"]["rule_up"] == pytest.approx(_at(ds, "rule_reserve_up_mwh"))


def test_evaluate_json_names_and_resume_after_an_interrupt(three, tmp_path, monkeypatch, capsys):
    """Ctrl-C after the second unit keeps both and prints the resume command; the resume
    computes only the rest, and gives the numbers of an evaluation never interrupted."""
    results = tmp_path / "run.nc"
    results.write_bytes(three.read_bytes())
    run_dir = tmp_path / "run.evaluate"
    original = RunFolder.save_unit
    saved = []

    def save_then_interrupt(self, unit, ds, record):
        original(self, unit, ds, record)
        saved.append(unit.key)
        if len(saved) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(RunFolder, "save_unit", save_then_interrupt)
    args = ["evaluate", str(results), "--scenarios", "3", "--scheduler", "sync", "--no-progress"]
    assert main([*args, "--batch-scenarios", "2", "--reserve-rule", "fixed:0"]) == 130
    err = capsys.readouterr().err
    assert "2 of " in err and f"resume with: workbench evaluate --resume {run_dir}" in err
    assert RunFolder.read_manifest(run_dir)["state"] == "interrupted"
    monkeypatch.setattr(RunFolder, "save_unit", original)
    code = main(["evaluate", "--resume", str(run_dir), "--scheduler", "sync", "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    summary = json.loads(out)
    units = summary["units"]
    assert units["resumed"] == 2 and units["computed"] == units["total"] - 2
    for name in (
        "vss_eur",
        "vss_vs_rule_eur",
        "evpi_eur",
        "oos_gap_eur",
        "vss_in_sample_eur",
        "vss_by_item_eur",
        "vss_vs_rule_by_item_eur",
        "evpi_by_item_eur",
        "definitions",
    ):
        assert summary[name] is not None, name
    assert set(summary["definitions"]) >= {"vss_eur", "vss_vs_rule_eur", "evpi_eur", "oos_gap_eur"}
    assert sum(summary["vss_by_item_eur"].values()) == pytest.approx(summary["vss_eur"])
    assert RunFolder.read_manifest(run_dir)["state"] == "complete"
    again = read_results(results)
    for name in ("vss_eur", "vss_vs_rule_eur", "evpi_eur", "oos_gap_eur"):
        assert float(again[name].isel(model=0, day=0)) == pytest.approx(
            float(zero_rule_value(three, name)), rel=1e-6, abs=1e-6
        ), name


_UNINTERRUPTED: dict = {}


def zero_rule_value(path, name: str) -> float:
    """A figure of an uninterrupted evaluation of ``path`` (fixed:0, 3 scenarios)."""
    if path not in _UNINTERRUPTED:
        _UNINTERRUPTED[path] = _evaluate(path, reserve_rule="fixed:0")
    return _at(_UNINTERRUPTED[path], name)


def test_a_resumed_folder_of_other_settings_is_refused(three, tmp_path, capsys):
    from workbench.rundir import RunFolderError

    ds = to_internal(read_results(three))
    run_dir = tmp_path / "x.evaluate"
    calls = []
    original = RunFolder.save_unit

    def interrupt(self, unit, data, record):
        original(self, unit, data, record)
        calls.append(1)
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(RunFolder, "save_unit", interrupt)
        with pytest.raises(KeyboardInterrupt):
            evaluate_results(ds, n_scenarios=3, scheduler="sync", progress=False, run_dir=run_dir)
    with pytest.raises(RunFolderError, match="--resume"):
        evaluate_results(ds, n_scenarios=4, scheduler="sync", progress=False, run_dir=run_dir)
    # `run --resume` leaves an evaluation's folder to `evaluate --resume`
    assert main(["run", "--resume", str(run_dir)]) == 2
    assert f"workbench evaluate --resume {run_dir}" in capsys.readouterr().err


@pytest.mark.slow
def test_parallel_and_sync_give_equal_numbers(three, zero_rule):
    """The units on a LocalCluster of two workers give the numbers of one process."""
    ds = _evaluate(three, reserve_rule="fixed:0", scheduler=None, workers=2)
    for name in (
        "oos_cost_eur",
        "eev_cost_eur",
        "rule_cost_eur",
        "ws_cost_eur",
        "vss_eur",
        "vss_vs_rule_eur",
        "evpi_eur",
        "oos_gap_eur",
        "vss_by_item_eur",
    ):
        np.testing.assert_allclose(
            ds[name].values, zero_rule[name].values, rtol=1e-7, atol=1e-6, err_msg=name
        )
