"""SimBench networks and pandapower net objects as feeders.

References: SimBench's own ``get_absolute_values`` (the elements' absolute profiles),
pandapower's AC power flow (merged vs. parallel transformers) and the parallel
combination of impedances computed by hand.
"""

from __future__ import annotations

import copy
import datetime as dt

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest
import yaml

from cases import CaseError, build_system, check_radial, feeder_arrays, load_network, parse_study
from cases.networks import merge_parallel_branches
from cases.simbench import is_simbench_spec, simbench_codes
from stochastic.twostage import TwoStageOptions, day_data
from workbench.evaluation import mean_scenario
from workbench.results import annotate
from workbench.runner import run_study
from workbench.scenarios import study_scenarios

MV = "simbench:1-MV-rural--0-sw"
DAY = dt.date(2016, 6, 15)
STUDY = {
    "name": "simbench",
    "seed": 5,
    "start_date": str(DAY),
    "transmission": {"network": "case9"},
    "feeders": [
        {
            "name": "sb",
            "network": MV,
            "bus": "5",
            "share": 0.3,
            "der": {
                "pv": {"kwp_per_kw_load": 0.0},
                "battery": {"buses": 0},
                "ev": {"buses": 0},
            },
        }
    ],
    "resolution": {"second_stage_minutes": 60},
    "scenarios": {"n_scenarios": 3, "method": "profile_noise"},
    "risk": {"alpha": 0.5, "beta": 0.0},
    "ac_check": {"enabled": False},
}


def _study(network=MV, **changes):
    data = copy.deepcopy({k: v for k, v in STUDY.items() if k != "feeders"})
    data["feeders"] = [{**copy.deepcopy(STUDY["feeders"][0]), "network": network}]
    data.update(changes)
    return parse_study(data, "simbench")


def _data(system, study, **scenario_changes):
    sc = study.scenarios.model_copy(update=scenario_changes)
    study = study.model_copy(update={"scenarios": sc})
    scenarios = study_scenarios(study, DAY, study.seed)
    return day_data(system, scenarios, TwoStageOptions.from_study(study)), scenarios


@pytest.fixture(scope="module")
def mv_net():
    return load_network(MV)


@pytest.fixture(scope="module")
def mv_system():
    return build_system(_study())


def _absolute_day(net, element: str, column: str):
    """SimBench's own absolute profile of every element on DAY, hourly means [MW]."""
    import simbench

    values = simbench.get_absolute_values(net, profiles_instead_of_study_cases=True)
    df = values[(element, column)]
    first = (DAY - dt.date(2016, 1, 1)).days * 96  # by position: the fixed UTC+1 clock
    day = df.iloc[first : first + 96].to_numpy()
    return day.reshape(24, 4, -1).mean(axis=1)


# ---- specs ---------------------------------------------------------------------------


def test_simbench_specs_are_recognised():
    codes = simbench_codes()
    assert "1-MV-rural--0-sw" in codes and len(codes) > 200
    assert all(is_simbench_spec(c) and is_simbench_spec("simbench:" + c) for c in codes)
    assert not any(is_simbench_spec(n) for n in ("case39", "cigre_mv", "net.json"))


def test_unknown_simbench_code_is_one_clear_error():
    with pytest.raises(CaseError, match=r"unknown SimBench code '1-MV-nowhere--0-sw'.*e\.g\."):
        load_network("simbench:1-MV-nowhere--0-sw")
    with pytest.raises(CaseError, match="workbench cases"):
        load_network("1-MV-rurall--0-sw")


def test_simbench_transmission_is_refused_without_loading():
    with pytest.raises(CaseError, match="feeders only"):
        build_system(_study(transmission={"network": "1-HV-mixed--0-sw"}))


# ---- parallel branches, open switches --------------------------------------------------


def test_parallel_trafos_are_merged_into_their_parallel_combination(mv_net):
    with pytest.raises(CaseError, match="meshed"):  # two HV/MV trafos on coupled busbars
        check_radial(mv_net, "raw")
    merged = merge_parallel_branches(mv_net)
    assert len(mv_net.trafo) == 2 and mv_net.trafo.in_service.all()  # input untouched
    check_radial(merged, "merged")
    kept = merged.trafo[merged.trafo.in_service]
    assert len(kept) == 1 and int(kept.parallel.iloc[0]) == 2
    arrays = feeder_arrays(mv_net, "mv", base_mva=100.0)
    k = int(np.flatnonzero(arrays.branch_kind == "trafo")[0])
    # parallel combination of the two transformers' series impedances, by hand
    z = [
        complex(row.vkr_percent, np.sqrt(row.vk_percent**2 - row.vkr_percent**2))
        / 100.0
        * 100.0
        / row.sn_mva
        for row in mv_net.trafo.itertuples()
    ]
    z_par = 1.0 / sum(1.0 / zi for zi in z)
    assert arrays.branch_r_pu[k] == pytest.approx(z_par.real, rel=1e-12)
    assert arrays.branch_x_pu[k] == pytest.approx(z_par.imag, rel=1e-12)
    assert arrays.branch_rating_mva[k] == pytest.approx(mv_net.trafo.sn_mva.sum())
    # the AC power flow does not see the difference
    pp.runpp(mv_net, numba=False)
    vm_raw = mv_net.res_bus.vm_pu.copy()
    pp.runpp(merged, numba=False)
    np.testing.assert_allclose(merged.res_bus.vm_pu, vm_raw, atol=1e-9)


def test_open_switches_keep_the_mv_grid_radial(mv_net):
    assert (~mv_net.switch.closed).sum() > 0
    check_radial(merge_parallel_branches(mv_net), "as given")
    closed = copy.deepcopy(mv_net)
    closed.switch["closed"] = True
    with pytest.raises(CaseError, match="meshed"):
        check_radial(merge_parallel_branches(closed), "all closed")


def test_parallel_lines_of_the_same_type_are_merged():
    net = pn.case33bw()
    row = net.line.loc[3]
    twin = pp.create_line_from_parameters(
        net, row.from_bus, row.to_bus, row.length_km, row.r_ohm_per_km, row.x_ohm_per_km,
        row.c_nf_per_km, row.max_i_ka, max_loading_percent=row.max_loading_percent,
    )  # fmt: skip
    merged = merge_parallel_branches(net)
    assert not merged.line.at[twin, "in_service"] and merged.line.at[3, "parallel"] == 2
    check_radial(merged, "twin lines")
    other = copy.deepcopy(net)
    other.line.at[twin, "r_ohm_per_km"] *= 2  # another type: not merged, stays meshed
    with pytest.raises(CaseError, match="meshed"):
        check_radial(merge_parallel_branches(other), "different lines")


# ---- own profiles ------------------------------------------------------------------------


def test_mv_feeder_follows_simbench_profiles_exactly(mv_net, mv_system):
    """Without forecast error the feeder's loads and generators are SimBench's own
    absolute profiles of the day (``get_absolute_values``), times the feeder's copies."""
    study = _study()
    data, _ = _data(mv_system, study, n_scenarios=1, pv_sigma=0.0, load_sigma=0.0, wind_sigma=0.0)
    feeder = mv_system.feeders[0]
    copies = feeder.copies
    sgen_mw = _absolute_day(mv_net, "sgen", "p_mw") * copies
    fleet = mv_system.fleet
    pv_units = [n for n in fleet.pv.name if "/pv/sgen" in n]
    assert len(pv_units) > 50  # the aggregated LV generation (lv_RES) and the PV plants
    for u, name in enumerate(fleet.pv.name):
        sgen = int(name.rsplit("sgen", 1)[1])
        np.testing.assert_allclose(data.pv_available_mw[0, :, u], sgen_mw[:, sgen], atol=1e-9)
    for u, name in enumerate(fleet.fixed.name):
        sgen = int(name.rsplit("sgen", 1)[1])
        np.testing.assert_allclose(data.fixed_p_mw[0, :, u], sgen_mw[:, sgen], atol=1e-9)
    load_mw = _absolute_day(mv_net, "load", "p_mw").sum(axis=1) * copies
    load_mvar = _absolute_day(mv_net, "load", "q_mvar").sum(axis=1) * copies
    np.testing.assert_allclose(data.feeder_load_p_mw[0][0].sum(axis=1), load_mw, rtol=1e-9)
    np.testing.assert_allclose(data.feeder_load_q_mvar[0][0].sum(axis=1), load_mvar, rtol=1e-9)
    # the PV shape: nothing at night, production at noon
    pv = data.pv_available_mw[0]
    assert np.all(pv[:3] == 0.0) and np.all(pv[23:] == 0.0)
    assert np.all(pv[12] > 0.0)


def test_scenarios_spread_around_the_own_profiles(mv_system):
    study = _study()
    data, scenarios = _data(mv_system, study, n_scenarios=3, pv_sigma=0.4)
    pv = data.pv_available_mw
    p_mw = mv_system.fleet.pv.p_mw.to_numpy()
    assert np.all(pv[:, :3] == 0.0)  # night in every scenario
    assert np.all(pv[:, 12] > 0.0) and np.all(pv <= p_mw + 1e-9)
    assert np.ptp(pv[:, 12].sum(axis=1)) > 0.01 * pv[:, 12].sum(axis=1).mean()  # a spread
    # loads: each scenario is the own profile times its relative load deviation
    base, _ = _data(mv_system, study, n_scenarios=1, load_sigma=0.0, pv_sigma=0.0)
    share = mv_system.feeders[0].commercial_share
    assert share.max() > 0  # commercial loads (G-profiles) are present
    v = scenarios["value_pu"].sel(resource="load_residential").to_numpy()
    e = scenarios["expected_pu"].sel(resource="load_residential").to_numpy()
    residential = np.flatnonzero(share == 0)
    np.testing.assert_allclose(
        data.feeder_load_p_mw[0][..., residential],
        (v / e)[..., None] * base.feeder_load_p_mw[0][0][:, residential],
        rtol=1e-9,
    )


def test_mean_scenario_of_a_simbench_feeder(mv_system):
    """The expected-value problem (VSS) sees the probability-weighted mean load."""
    study = _study()
    data, scenarios = _data(mv_system, study, n_scenarios=3)
    mean = day_data(mv_system, mean_scenario(scenarios), TwoStageOptions.from_study(study))
    w = data.weight[:, None, None]
    np.testing.assert_allclose(
        mean.feeder_load_p_mw[0][0], (w * data.feeder_load_p_mw[0]).sum(axis=0), rtol=1e-9
    )


def test_scenarios_without_central_profile_are_refused(mv_system):
    study = _study()
    scenarios = study_scenarios(study, DAY, study.seed).drop_vars("expected_pu")
    with pytest.raises(ValueError, match="expected_pu"):
        day_data(mv_system, scenarios, TwoStageOptions.from_study(study))


# ---- JSON files and net objects ---------------------------------------------------------


def _same_day_data(a, b, study):
    da, _ = _data(a, study)
    db, _ = _data(b, study)
    for name in ("pv_available_mw", "fixed_p_mw"):
        np.testing.assert_array_equal(getattr(da, name), getattr(db, name))
    for name in ("feeder_load_p_mw", "feeder_p_rhs_mw", "feeder_q_rhs_mvar"):
        np.testing.assert_array_equal(getattr(da, name)[0], getattr(db, name)[0])
    fa, fb = a.feeders[0].arrays, b.feeders[0].arrays
    np.testing.assert_array_equal(fa.branch_r_pu, fb.branch_r_pu)
    np.testing.assert_array_equal(fa.bus_index, fb.bus_index)


def test_simbench_json_and_net_object_equal_the_spec(tmp_path, mv_net, mv_system):
    path = tmp_path / "mv.json"
    pp.to_json(mv_net, str(path))
    from_json = build_system(_study(str(path)))
    assert from_json.feeders[0].profiles is not None  # the profiles survive the JSON file
    _same_day_data(mv_system, from_json, _study())
    from_object = build_system(_study(mv_net))
    _same_day_data(mv_system, from_object, _study())
    assert from_object.feeders[0].network == "<pandapower net: 97 buses>"


def _small(network) -> dict:
    return {
        "name": "object",
        "seed": 2,
        "start_date": str(DAY),
        "start_hour": 10,
        "horizon_hours": 2,
        "transmission": {"network": "case9"},
        "feeders": [
            {
                "name": "f",
                "network": network,
                "bus": "5",
                "share": 0.2,
                "der": {"battery": {"buses": 1}, "ev": {"buses": 0}},
            }
        ],
        "resolution": {"second_stage_minutes": 60},
        "scenarios": {"n_scenarios": 2, "method": "profile_noise"},
        "risk": {"beta": 0.0},
        "ac_check": {"enabled": False},
    }


def test_net_object_gives_the_results_of_its_json_file(tmp_path):
    net = pn.case33bw()
    net.load["p_mw"] *= 1.3  # not a built-in network any more
    path = tmp_path / "feeder.json"
    pp.to_json(net, str(path))
    with_object = parse_study(_small(net), "object")
    ds_object = run_study(with_object, scheduler="sync", progress=False)
    ds_json = run_study(parse_study(_small(str(path)), "json"), scheduler="sync", progress=False)
    for name in ("objective_eur", "expected_cost_eur", "der_p_mw"):
        np.testing.assert_allclose(ds_object[name], ds_json[name], rtol=1e-9, atol=1e-9)
    annotated = annotate(ds_object, with_object, with_object.seed, "sync")  # results attrs
    dumped = yaml.safe_load(annotated.attrs["study_config_yaml"])
    assert dumped["feeders"][0]["network"] == "<pandapower net 'case33bw': 33 buses>"
    assert net.load.p_mw.iloc[1] == pytest.approx(pn.case33bw().load.p_mw.iloc[1] * 1.3)


def test_load_network_copies_a_net_object():
    net = pn.case33bw()
    copy_ = load_network(net)
    copy_.load["p_mw"] = 0.0
    assert net.load.p_mw.sum() > 0
    with pytest.raises(CaseError, match="pandapowerNet"):
        load_network(42)


# ---- whole runs --------------------------------------------------------------------------


def _mv_run_study(network=MV):
    return _study(network, start_hour=2, horizon_hours=11).model_copy(
        update={"scenarios": _study().scenarios.model_copy(update={"n_scenarios": 2})}
    )


def test_simbench_mv_feeder_runs_in_a_study(mv_system):
    """A SimBench MV feeder schedules with its own profiles: its PV is zero at night and
    produces at noon, in every scenario."""
    study = _mv_run_study()
    ds = run_study(study, scheduler="sync", progress=False, system=build_system(study))
    pv = ds["der_p_mw"].sel(der=[n for n in ds.der.values if "/pv/sgen" in str(n)])
    pv = pv.isel(model=0).sum("der")  # (scenario, time)
    hours = (ds.time.dt.hour + ds.time.dt.minute / 60).to_numpy()  # local standard time
    night = pv.isel(time=np.flatnonzero(hours < 3.0))
    noon = pv.isel(time=np.flatnonzero((hours >= 11.0) & (hours < 13.0)))
    assert float(np.abs(night).max()) < 1e-6
    assert float(noon.min()) > 0.1


@pytest.mark.slow
def test_simbench_json_runs_like_the_spec(tmp_path, mv_net):
    path = tmp_path / "mv.json"
    pp.to_json(mv_net, str(path))
    spec = run_study(_mv_run_study(), scheduler="sync", progress=False)
    from_json = run_study(_mv_run_study(str(path)), scheduler="sync", progress=False)
    for name in ("objective_eur", "expected_cost_eur", "der_p_mw", "interface_p_mw"):
        if name in spec:
            np.testing.assert_allclose(spec[name], from_json[name], rtol=1e-7, atol=1e-7)
