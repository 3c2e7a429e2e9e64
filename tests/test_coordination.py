"""The coordination models side by side on the same system, scenarios and DER."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from cases import build_system, parse_study
from tests.conftest import SMALL_STUDY
from workbench.compare import compare_models
from workbench.coordination import coordination_model
from workbench.runner import run_study


def _study(loose: bool):
    spec = copy.deepcopy(SMALL_STUDY)
    spec["scenarios"] = {"n_scenarios": 4, "method": "profile_noise", "pv_sigma": 0.4}
    spec["models"] = ["tso_managed", "hybrid", "dso_managed"]
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
    tso, hyb, dso = (binding[m].schedule for m in ("tso_managed", "hybrid", "dso_managed"))
    assert int(hyb.validation_binding_rows) > 0  # the feeders cut the bids
    assert float(tso.expected_cost_eur) <= float(hyb.expected_cost_eur) + 1e-6
    assert float(tso.expected_cost_eur) <= float(dso.expected_cost_eur) * (1 + 1e-7)
    for ds in (tso, hyb, dso):
        assert int(ds.feeder_violation_steps) == 0
        assert float(ds.feeder_worst_vm_violation_pu) == 0.0


def test_the_ledgers_count_what_crosses_the_boundary(binding):
    hyb = binding["hybrid"].schedule
    assert int(hyb.exchange_dso_to_tso_values) > 0 and int(hyb.exchange_tso_to_dso_values) > 0
    assert int(hyb.problems_solved) > 1

    def total(ds):
        return sum(int(ds[v]) for v in ds.data_vars if v.startswith("exchange_"))

    # the centralised model needs every feeder's network and bus-level forecasts
    tso, dso = binding["tso_managed"].schedule, binding["dso_managed"].schedule
    assert total(tso) > total(dso)
    assert int(dso.problems_solved) > 2
    # per-hour regions would promise battery energy the batteries do not hold
    assert float(dso.region_storage_overstatement_mwh.sum()) > 0


def test_run_and_compare_both_models(tmp_path):
    study = _study(loose=False)
    study = study.model_copy(
        update={"ac_check": study.ac_check.model_copy(update={"enabled": False})}
    )
    ds = run_study(study, scheduler="sync", progress=False)
    out = compare_models(ds)["models"]
    assert set(out) == {"tso", "hybrid", "dso"}
    assert out["tso"]["cost_gap_to_centralised_eur"] == pytest.approx(0.0)
    assert out["hybrid"]["cost_gap_to_centralised_eur"] >= -1e-6
    assert out["hybrid"]["feeder_limit_violations"] == 0
    from workbench.plots import write_comparison_plots

    paths = write_comparison_plots(ds, {"models": out}, tmp_path / "run.nc")
    assert len(paths) == 4 and all(p.stat().st_size > 10_000 for p in paths)


def test_unknown_model_on_the_command_line_is_one_clear_error(capsys):
    from workbench.cli import main

    assert main(["run", "--models", "tso,foo", "--no-plots"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "foo" in err[0] and "--models" in err[0]
