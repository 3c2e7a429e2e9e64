"""Cases: array views, feeder scaling, integrated system and the errors users see."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandapower as pp
import pytest

from cases import (
    CaseError,
    build_system,
    feeder_arrays,
    load_network,
    parse_study,
    scale_feeder,
    transmission_arrays,
)
from tests.conftest import SMALL_STUDY


def _runpp(net):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.runpp(net)
    return net


def test_feeder_arrays_tree_order_and_per_unit():
    f = feeder_arrays(load_network("case33bw"), "bw", base_mva=100.0)
    assert f.n_bus == 33 and f.n_branch == 32
    assert f.parent[0] == -1
    assert np.all(f.parent[1:] < np.arange(1, 33))  # breadth-first: parents come first
    net = load_network("case33bw")
    line = net.line.loc[0]
    z_base = 12.66**2 / 100.0
    k = int(np.flatnonzero(f.branch_element == 0)[0])
    assert f.branch_r_pu[k] == pytest.approx(line.r_ohm_per_km * line.length_km / z_base)
    assert f.load_p_mw.sum() == pytest.approx(3.715)


def test_cigre_feeder_has_two_transformer_branches_at_root():
    f = feeder_arrays(load_network("cigre_mv"), "cigre", base_mva=100.0)
    roots = np.flatnonzero(f.parent[1:] == 0)
    assert sorted(f.branch_kind[roots].tolist()) == ["trafo", "trafo"]
    assert f.v_root_pu == pytest.approx(1.03)


@pytest.mark.parametrize("copies", [0.5, 3.0, 4.37])
def test_scaled_feeder_is_electrically_k_copies(copies):
    net = _runpp(load_network("cigre_mv"))
    scaled = _runpp(scale_feeder(load_network("cigre_mv"), copies))
    np.testing.assert_allclose(scaled.res_bus.vm_pu, net.res_bus.vm_pu, atol=1e-6)
    np.testing.assert_allclose(
        scaled.res_line.loading_percent, net.res_line.loading_percent, rtol=1e-5, atol=1e-6
    )
    assert scaled.res_ext_grid.p_mw.sum() == pytest.approx(
        copies * net.res_ext_grid.p_mw.sum(), rel=1e-6
    )


def test_transmission_arrays_match_case_totals():
    t = transmission_arrays(load_network("case39"))
    net = load_network("case39")
    assert t.n_bus == 39 and t.n_branch == 46 and t.n_gen == 10
    assert t.demand_mw.sum() == pytest.approx(net.load.p_mw.sum())
    assert np.isfinite(t.branch_rating_mw).all()
    assert set(t.gen_kind) == {"ext_grid", "gen"}


def test_integrated_system_replaces_a_share_of_bus_load(small_study):
    sysm = build_system(small_study)
    base = load_network("case9")
    f1 = sysm.feeders[0]
    bus5 = int(base.bus.index[base.bus.name.astype(str) == "5"][0])
    bus_load = float(base.load.p_mw[base.load.bus == bus5].sum())
    assert f1.arrays.load_p_mw.sum() == pytest.approx(0.2 * bus_load)
    t = sysm.transmission
    assert t.demand_mw[t.bus_position(bus5)] == pytest.approx(0.8 * bus_load)
    # the total demand of the system is unchanged by attaching feeders
    total = t.demand_mw.sum() + sum(f.arrays.load_p_mw.sum() for f in sysm.feeders)
    assert total == pytest.approx(base.load.p_mw.sum())


def test_integrated_net_runs_ac_power_flow_with_oltc(small_system):
    inet = small_system.integrated_net()
    net = inet.net
    for fi, f in enumerate(small_system.feeders):
        net.load.loc[inet.feeder_load[fi], "p_mw"] = f.arrays.load_p_mw
        net.load.loc[inet.feeder_load[fi], "q_mvar"] = f.arrays.load_q_mvar
    net.load.loc[inet.transmission_load[inet.transmission_load >= 0], "p_mw"] = (
        small_system.transmission_load_p_mw[inet.transmission_load >= 0]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.runpp(net, run_control=True)
    for fi, f in enumerate(small_system.feeders):
        root = inet.feeder_bus[fi][0]
        assert net.res_bus.vm_pu.at[root] == pytest.approx(f.arrays.v_root_pu, abs=2e-4)


# ---------------- errors a user can make ----------------


def _study(**changes):
    data = copy.deepcopy(SMALL_STUDY)
    data.update(changes)
    return parse_study(data, "test")


def _save(net, tmp_path, name):
    path = tmp_path / name
    pp.to_json(net, str(path))
    return str(path)


def test_meshed_feeder_is_rejected(tmp_path):
    net = load_network("case33bw")
    net.line["in_service"] = True  # close the five tie lines
    path = _save(net, tmp_path, "meshed.json")
    feeders = [{"name": "m", "network": path, "bus": "5", "share": 0.2}]
    with pytest.raises(CaseError, match=r"feeder 'm' is meshed .*open a switch"):
        build_system(_study(feeders=feeders))


def test_disconnected_feeder_is_rejected(tmp_path):
    net = load_network("case33bw")
    net.line.loc[net.line.index[net.line.in_service][5], "in_service"] = False
    path = _save(net, tmp_path, "split.json")
    with pytest.raises(CaseError, match=r"disconnected: 2 separate parts"):
        feeder_arrays(pp.from_json(path), "split", 100.0)


def test_missing_interface_bus_is_rejected():
    feeders = [{"name": "f", "network": "case33bw", "bus": "99", "share": 0.2}]
    with pytest.raises(CaseError, match=r"transmission bus '99' not found"):
        build_system(_study(feeders=feeders))


def test_interface_bus_without_load_is_rejected():
    feeders = [{"name": "f", "network": "case33bw", "bus": "1", "share": 0.2}]
    with pytest.raises(CaseError, match=r"has no load to replace"):
        build_system(_study(feeders=feeders))


def test_negative_rating_is_rejected(tmp_path):
    net = load_network("case33bw")
    net.line.loc[3, "max_i_ka"] = -1.0
    path = _save(net, tmp_path, "neg.json")
    with pytest.raises(
        CaseError, match=r"line 3 has max_i_ka = -1.0; it must be a positive number"
    ):
        feeder_arrays(pp.from_json(path), "neg", 100.0)


def test_missing_costs_are_rejected():
    net = load_network("case9")
    net.poly_cost = net.poly_cost[net.poly_cost.et != "gen"].iloc[:0]
    with pytest.raises(CaseError, match=r"ext_grid 0 has no cost; add one with"):
        transmission_arrays(net, "case9")


def test_shares_above_one_are_rejected():
    feeders = [
        {"name": "a", "network": "case33bw", "bus": "5", "share": 0.7},
        {"name": "b", "network": "case33bw", "bus": "5", "share": 0.5},
    ]
    with pytest.raises(CaseError, match=r"shares at one bus must sum to <= 1"):
        build_system(_study(feeders=feeders))


def test_unknown_network_name_is_rejected():
    with pytest.raises(CaseError, match=r"unknown network 'case999'.*workbench cases"):
        load_network("case999")


def test_missing_network_file_is_rejected(tmp_path):
    with pytest.raises(CaseError, match=r"does not exist"):
        load_network(str(tmp_path / "nope.json"))


@pytest.mark.parametrize(
    ("sgen_type", "profile", "kind"),
    [
        ("PV", None, "pv"),
        ("PV_MV", "PV3", "pv"),
        ("lv_RES", "lv_rural1", "pv"),
        ("Wind_MV", "WP4", "wind"),
        ("WP", None, "wind"),
        ("WT", None, "wind"),
        ("Biomass_MV", "BM1", "other"),
        ("Hydro_MV", "Hydro2", "other"),
        ("Residential fuel cell", None, "other"),
        (None, "WP7", "wind"),
        ("", "PV5", "pv"),
        ("mystery", None, None),
        (None, None, None),
    ],
)
def test_feeder_generators_are_classified(sgen_type, profile, kind):
    from cases.der import classify_sgen

    assert classify_sgen(sgen_type, profile) == kind


def test_an_unclassifiable_generator_is_an_error_that_names_it(tmp_path):
    import pandapower as pp

    from cases import CaseError, build_system, parse_study

    net = load_network("cigre_mv")
    pp.create_sgen(net, 5, p_mw=0.5, type="mystery")
    path = tmp_path / "odd.json"
    pp.to_json(net, str(path))
    study = parse_study(
        {
            "transmission": {"network": "case9"},
            "feeders": [{"name": "f", "network": str(path), "bus": "5"}],
        }
    )
    with pytest.raises(CaseError, match=r"sgen \d+ \(type 'mystery'"):
        build_system(study)


def test_wind_turbines_of_cigre_follow_the_wind_profile():
    from cases import build_system, parse_study

    study = parse_study(
        {
            "transmission": {"network": "case9"},
            "feeders": [{"name": "f", "network": "cigre_mv", "bus": "5"}],
        }
    )
    fixed = build_system(study).fleet.fixed
    assert len(fixed) and set(fixed.profile) == {"wind"}


def test_opf_without_costs_follows_pandapowers_convention(tmp_path, capsys):
    import json

    import pandapower as pp

    from workbench.cli import main

    net = load_network("case33bw")
    net.poly_cost.drop(net.poly_cost.index, inplace=True)
    path = tmp_path / "nocost.json"
    pp.to_json(net, str(path))
    for model in ("lindistflow", "dc"):
        assert main(["opf", str(path), "--model", model, "--json"]) == 0
        captured = capsys.readouterr()
        record = json.loads(captured.out)
        warning = captured.err.strip().splitlines()
        assert (
            len(warning) == 1
            and warning[0].startswith("warning:")
            and "no generator costs" in warning[0]
        )
        # minimising the generation of a lossless model: the import equals the demand
        demand = float((net.load.p_mw * net.load.scaling).sum())
        assert record["objective_eur_per_h"] == pytest.approx(demand, rel=1e-6)
