"""The coordination models side by side on the same system, scenarios and DER."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from cases import build_system, parse_study
from cases.study import COORDINATION_MODELS
from tests.conftest import SMALL_STUDY
from tests.results_doc import doc_mismatches
from workbench.compare import compare_models
from workbench.coordination import coordination_model
from workbench.runner import run_study


def _study(loose: bool):
    spec = copy.deepcopy(SMALL_STUDY)
    spec["scenarios"] = {"n_scenarios": 4, "method": "profile_noise", "pv_sigma": 0.4}
    spec["models"] = list(COORDINATION_MODELS)
    if not loose:  # much PV behind a thin lateral line (bus 1 -> 18): congestion to manage
        spec["feeders"][0]["der"]["pv"]["kwp_per_kw_load"] = 3.0
        spec["feeders"][0]["line_max_i_ka"] = {17: 0.015}
    if loose:  # a band no dispatch reaches, placeholder ratings: no limit binds
        for f in spec["feeders"]:
            f["network"] = "case33bw"
            f["vm_min_pu"], f["vm_max_pu"] = 0.6, 1.4
    return parse_study(spec, "coordination")


def _days(study):
    system = build_system(study)
    return {
        m: coordination_model(m).schedule_days(system, study, study.days, study.seed)[0]
        for m in study.models
    }


@pytest.fixture(scope="module")
def binding():
    return _days(_study(loose=False))


def test_models_agree_where_no_distribution_limit_binds():
    days = _days(_study(loose=True))
    tso, hyb, dso = (days[m].schedule for m in ("tso_managed", "hybrid", "dso_managed"))
    for name in COORDINATION_MODELS:
        cost = float(days[name].schedule.expected_cost_eur)
        assert cost == pytest.approx(float(tso.expected_cost_eur), rel=1e-6), name
    assert float(dso.expected_cost_eur) == pytest.approx(float(tso.expected_cost_eur), rel=1e-6)
    assert float(dso.interface_shortfall_mwh) == pytest.approx(0.0, abs=1e-6)
    assert np.isnan(dso.offer_range_lo_mw.values).all()  # the network cuts nothing
    assert int(hyb.validation_binding_rows) == 0
    for direction in ("up", "down"):  # nothing cut
        np.testing.assert_allclose(
            hyb[f"der_validated_{direction}_mw"], hyb[f"der_offered_{direction}_mw"], atol=1e-6
        )
    assert float(hyb.expected_cost_eur) == pytest.approx(float(tso.expected_cost_eur), rel=1e-6)


def test_centralised_is_cheapest_and_no_dispatch_breaks_a_feeder_limit(binding):
    tso, hyb = binding["tso_managed"].schedule, binding["hybrid"].schedule
    assert int(hyb.validation_binding_rows) > 0  # the feeders cut the bids
    assert np.isfinite(hyb.root_vm_pu.values).all()  # every root held at a voltage
    for name in COORDINATION_MODELS:
        ds = binding[name].schedule
        # the centralised model minimises the risk-adjusted objective over every
        # dispatch the others can reach
        assert float(tso.objective_eur) <= float(ds.objective_eur) * (1 + 1e-7), name
        assert int(ds.feeder_violation_steps) == 0, name
        assert float(ds.feeder_worst_vm_violation_pu) == 0.0, name


def test_every_euro_is_a_cost_item(binding):
    for name in COORDINATION_MODELS:
        ds = binding[name].schedule
        np.testing.assert_allclose(
            ds.cost_item_eur.sum("cost_item"), ds.scenario_cost_eur, rtol=1e-9, err_msg=name
        )
    assert "dso/second/setpoint_shortfall" in binding["dso_managed:target"].schedule.cost_item
    assert "dso/second/own_use" in binding["hybrid"].schedule.cost_item


def _values(ds, **where) -> int:
    sel = np.ones(ds.sizes["message"], dtype=bool)
    for key, value in where.items():
        sel &= ds[f"message_{key}"].values == value
    return int(ds.message_values.values[sel].sum())


def test_the_ledgers_count_what_crosses_the_boundary(binding):
    hyb = binding["hybrid"].schedule
    assert _values(hyb, sender="dso", receiver="tso") > 0
    assert _values(hyb, sender="tso", receiver="dso") > 0
    assert int(hyb.problems_solved) > 1
    # the centralised model needs every feeder's network and bus-level forecasts
    tso, dso = binding["tso_managed"].schedule, binding["dso_managed"].schedule
    assert _values(tso, kind="network_data") > 0 and _values(dso, kind="network_data") == 0
    assert int(tso.message_values.sum()) > int(dso.message_values.sum())
    assert (tso.message_bytes == 8 * tso.message_values).all()
    assert int(tso.exchange_rounds) == 2 and int(dso.exchange_rounds) == 4
    assert int(dso.problems_solved) > 2
    # per-hour regions would promise battery energy the batteries do not hold
    assert float(dso.region_storage_overstatement_mwh.sum()) > 0


def test_prevalidation_accepts_the_same_volumes_in_fewer_rounds(binding):
    post, pre = binding["hybrid"].schedule, binding["hybrid:prevalidation"].schedule
    for direction in ("up", "down"):
        np.testing.assert_allclose(
            pre[f"der_validated_{direction}_mw"], post[f"der_validated_{direction}_mw"], atol=1e-9
        )
    assert int(pre.exchange_rounds) == 3 < int(post.exchange_rounds) == 4
    assert _values(pre, sender="dso", receiver="der", kind="validated_limits") > 0
    assert _values(post, sender="tso", receiver="dso", kind="bids") > 0
    assert _values(pre, sender="tso", receiver="dso", kind="bids") == 0


def test_dso_variants_price_what_they_change(binding):
    dso = binding["dso_managed"].schedule
    target = binding["dso_managed:target"].schedule
    local = binding["dso_managed:local_market"].schedule
    # the target variant offers no network ranges: no sweep, a smaller offer
    assert int(target.problems_solved) == 2 < int(dso.problems_solved)
    assert np.isnan(target.offer_region_p_mw.values).all()
    offer = {"kind": "flexibility_offer"}
    assert _values(target, **offer) < _values(dso, **offer)
    # without the network's ranges the TSO sets targets the feeder cannot meet; the
    # misses are priced into every scenario's cost
    assert float(target.interface_shortfall_mwh) > float(dso.interface_shortfall_mwh) + 1e-3
    short = target.cost_item_eur.sel(cost_item="dso/second/setpoint_shortfall")
    assert float((short * target.weight).sum()) == pytest.approx(
        200.0 * float(target.interface_shortfall_mwh), rel=1e-6
    )
    # the local market: the DSO buys its own relief first (PV caps behind the thin line),
    # tells the DER and pays for it
    assert _values(local, sender="dso", receiver="der", kind="local_activation") > 0
    assert float(local.dso_own_cost_eur) > 1.0
    assert np.abs(local.dso_shift_mw.values).max() > 1e-3
    assert float(local.curtailment_mwh) > float(dso.curtailment_mwh)
    assert "dso_shift_mw" not in dso


def test_run_and_compare_both_models(tmp_path):
    study = _study(loose=False)
    study = study.model_copy(
        update={
            "ac_check": study.ac_check.model_copy(update={"enabled": False}),
            "models": ("tso_managed", "hybrid:prevalidation", "dso_managed"),
        }
    )
    ds = run_study(study, scheduler="sync", progress=False)
    assert doc_mismatches(ds) == []  # docs/results.md describes every model's variables
    out = compare_models(ds)["models"]
    assert list(out) == ["tso", "hybrid:prevalidation", "dso"]
    assert out["tso"]["cost_gap_to_centralised_eur"] == pytest.approx(0.0)
    hyb = out["hybrid:prevalidation"]
    assert hyb["objective_gap_to_centralised_eur"] >= -1e-6
    assert hyb["feeder_limit_violations"] == 0
    assert hyb["exchange_rounds"] == 3
    from workbench.plots import write_comparison_plots
    from workbench.results import annotate

    ds = annotate(ds, study, study.seed, "sync")  # the study, as in a results file
    paths = write_comparison_plots(ds, {"models": out}, tmp_path / "run.nc")
    assert len(paths) == 4 and all(p.stat().st_size > 10_000 for p in paths)


def test_unknown_model_on_the_command_line_is_one_clear_error(capsys):
    from workbench.cli import main

    assert main(["run", "--models", "tso,foo", "--no-plots"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "foo" in err[0] and "--models" in err[0]


def test_a_rating_for_a_line_the_feeder_lacks_is_one_clear_error():
    from cases.errors import CaseError

    spec = copy.deepcopy(SMALL_STUDY)
    spec["feeders"][0]["line_max_i_ka"] = {999: 0.1}
    with pytest.raises(CaseError, match=r"line_max_i_ka names lines \[999\].*0\.\.36"):
        build_system(parse_study(spec, "thin"))


def test_region_excess_is_what_the_set_points_leave_of_the_drawn_regions(binding):
    """``offer_region_exceeded_mwh`` recomputed from the result variables the regions
    figure draws: regions, set-points and baselines share one reference."""
    from workbench.plots import setpoints_outside_region

    ds = binding["dso_managed"].schedule
    k = ds.sizes["time"] // ds.sizes["period"]
    change = (ds.interface_setpoint_mw - ds.interface_baseline_mw).transpose(
        "scenario", "time", "interface"
    )
    region = ds.offer_region_p_mw.transpose("period", "interface", "vertex").values
    step_h = float((ds.time.values[1] - ds.time.values[0]) / np.timedelta64(1, "h"))
    w = ds.weight.values
    total = 0.0
    for f in range(ds.sizes["interface"]):
        for p in range(ds.sizes["period"]):
            v = region[p, f]
            dp = change.values[:, p * k : (p + 1) * k, f]
            if not np.isfinite(v).any():
                continue
            lo, hi = np.nanmin(v), np.nanmax(v)
            excess = np.maximum(np.maximum(lo - dp, dp - hi), 0.0)
            total += float(w @ excess.sum(axis=1)) * step_h
            assert np.array_equal(setpoints_outside_region(v, dp), excess > 1e-4)
    assert float(ds.offer_region_exceeded_mwh) == pytest.approx(total, abs=1e-9)


def test_dso_export_caps_are_curtailment_per_scenario_and_in_expectation(binding):
    """A DSO's PV export caps are curtailment: the per-step ``curtailment_mw`` holds them,
    and with the fixed units' spill it sums to the expected ``curtailment_mwh`` (before,
    the caps were only in the expectation)."""
    step_h = _study(loose=False).resolution.second_stage_minutes / 60.0
    for name in ("hybrid", "dso_managed:local_market"):
        ds = binding[name].schedule
        assert float(ds.dso_own_cost_eur) > 1.0, name  # the DSO caps some PV
        per_step = ds.curtailment_mw.sum(("time", "der")) + ds.fixed_spill_mw.sum(
            ("time", "interface")
        )
        expected = float((per_step * ds.weight).sum("scenario")) * step_h
        assert expected == pytest.approx(float(ds.curtailment_mwh), rel=1e-9, abs=1e-9), name
