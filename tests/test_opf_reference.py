"""Single-period OPF against independent references (pandapower rundcopp and AC power flow)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandapower as pp
import pytest

from cases import load_network
from workbench.cli import main


def _opf_json(capsys, *args: str) -> dict:
    code = main(["opf", *args, "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


@pytest.mark.parametrize("case", ["case9", "case30", "case39", "case57", "case24_ieee_rts"])
def test_dc_opf_matches_rundcopp(capsys, case):
    record = _opf_json(capsys, case, "--model", "dc")
    ref = load_network(case)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.rundcopp(ref)
    assert record["status"] == "optimal"
    assert record["model"] == "dc" and record["case"] == case
    assert record["max_vm_error_pu"] is None
    assert record["objective_eur_per_h"] == pytest.approx(ref.res_cost, rel=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["case118", "case300"])
def test_dc_opf_matches_rundcopp_large(capsys, case):
    record = _opf_json(capsys, case, "--model", "dc")
    ref = load_network(case)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.rundcopp(ref)
    assert record["objective_eur_per_h"] == pytest.approx(ref.res_cost, rel=1e-4)


def test_lindistflow_voltages_case33bw(capsys):
    record = _opf_json(capsys, "case33bw", "--model", "lindistflow")
    assert record["status"] == "optimal"
    assert 0.0 < record["max_vm_error_pu"] < 0.01
    # no controllable units: the objective is the ext_grid cost of the linear (lossless)
    # import, i.e. 20 EUR/MWh times the total demand
    assert record["objective_eur_per_h"] == pytest.approx(20.0 * 3.715, rel=1e-9)


def test_lindistflow_voltages_cigre_mv_with_controllable_der(capsys, tmp_path):
    net = load_network("cigre_mv")
    pp.create_poly_cost(net, 0, "ext_grid", cp1_eur_per_mw=60.0)
    # make the PV units dispatchable (curtailable, with reactive power) at a small cost
    for idx in net.sgen.index[net.sgen.type == "PV"]:
        p = float(net.sgen.at[idx, "p_mw"]) * 40.0  # a sizeable PV fleet
        net.sgen.loc[
            idx, ["p_mw", "max_p_mw", "min_p_mw", "max_q_mvar", "min_q_mvar", "controllable"]
        ] = [p, p, 0.0, 0.3 * p, -0.3 * p, True]
        pp.create_poly_cost(net, idx, "sgen", cp1_eur_per_mw=1.0)
    path = tmp_path / "cigre_der.json"
    pp.to_json(net, str(path))
    record = _opf_json(capsys, str(path), "--model", "lindistflow")
    assert record["status"] == "optimal"
    assert 0.0 < record["max_vm_error_pu"] < 0.01


def test_lindistflow_respects_voltage_limits_in_the_linear_model():
    from stochastic.single_period import solve_lindistflow_opf

    net = load_network("case33bw")
    net.load["p_mw"] *= 1.5
    net.load["q_mvar"] *= 1.5
    # at 1.5 x load the far end would drop below the case's 0.9 pu limit: a costly
    # controllable unit at bus 17 must lift it
    pp.create_sgen(
        net,
        17,
        p_mw=0.0,
        max_p_mw=2.0,
        min_p_mw=0.0,
        max_q_mvar=1.0,
        min_q_mvar=-1.0,
        controllable=True,
    )
    pp.create_poly_cost(net, 0, "sgen", cp1_eur_per_mw=100.0)
    res = solve_lindistflow_opf(net, "case33bw_heavy")
    assert res.vm_pu_linear.min() >= 0.9 - 1e-6
    # the limit binds (otherwise the expensive unit would stay at 0)
    assert res.vm_pu_linear.min() == pytest.approx(0.9, abs=1e-4)
    assert res.p_mw["sgen/0"] > 0.0
    # and the AC power flow agrees within the documented LinDistFlow accuracy
    assert np.max(np.abs(res.vm_pu_ac - res.vm_pu_linear)) < 0.01


def test_dc_opf_with_out_of_service_lines_matches_rundcopp(capsys, tmp_path):
    net = load_network("case39")
    net.line.loc[[0, 7], "in_service"] = False
    path = tmp_path / "case39_outage.json"
    pp.to_json(net, str(path))
    record = _opf_json(capsys, str(path), "--model", "dc")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.rundcopp(net)
    assert record["objective_eur_per_h"] == pytest.approx(net.res_cost, rel=1e-4)


def test_dc_model_names_in_service_branches():
    from cases import transmission_arrays

    t = transmission_arrays(load_network("case33bw"))  # five tie lines are out of service
    assert t.n_branch == 32
    net = load_network("case33bw")
    assert set(t.branch_element) == set(net.line.index[net.line.in_service])
