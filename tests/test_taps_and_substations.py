"""Real distribution networks as they come: off-nominal transformer ratios in LinDistFlow,
networks with several substations, and which SimBench grids are offered as feeders."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest

from cases import CaseError, StudyConfigError, build_system, feeder_arrays, parse_study
from cases.substations import substation_nets, substation_parts
from stochastic.single_period import solve_lindistflow_opf
from stochastic.validation import feeder_rows
from tests.conftest import SMALL_STUDY

# ---- reference: LinDistFlow by a forward-backward sweep, AC by pandapower -------------


def _net_demand(net: pp.pandapowerNet, f) -> tuple[np.ndarray, np.ndarray]:
    """Net demand per feeder bus (bus,) [MW], [Mvar] of loads minus sgens, as set."""
    p, q = np.zeros(f.n_bus), np.zeros(f.n_bus)
    pos = {int(b): i for i, b in enumerate(f.bus_index)}
    for table, sign in (("load", 1.0), ("sgen", -1.0)):
        df = net[table][net[table].in_service & net[table].bus.isin(pos.keys())]
        for row in df.itertuples():
            p[pos[int(row.bus)]] += sign * row.p_mw * row.scaling
            q[pos[int(row.bus)]] += sign * row.q_mvar * row.scaling
    return p, q


def _sweep_vm(f, p_mw, q_mvar, ratio) -> np.ndarray:
    """LinDistFlow voltages [pu]: flows are the demand below each branch, and
    ``w_j = w_parent / m^2 - 2 (r P + x Q) / base`` down from the root."""
    pf, qf = p_mw[1:].copy(), q_mvar[1:].copy()
    for j in range(f.n_bus - 1, 0, -1):  # children come after their parent
        if f.parent[j] > 0:
            pf[f.parent[j] - 1] += pf[j - 1]
            qf[f.parent[j] - 1] += qf[j - 1]
    w = np.zeros(f.n_bus)
    w[0] = f.v_root_pu**2
    for j in range(1, f.n_bus):
        k = j - 1
        w[j] = (
            w[f.parent[j]] / ratio[k] ** 2
            - 2.0 * (f.branch_r_pu[k] * pf[k] + f.branch_x_pu[k] * qf[k]) / f.base_mva
        )
    return np.sqrt(w)


def _ac_vm(net: pp.pandapowerNet) -> pp.pandapowerNet:
    net = copy.deepcopy(net)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.runpp(net, calculate_voltage_angles=True, init="dc")
    return net.res_bus.vm_pu


def _tapped_cigre(kind: str) -> pp.pandapowerNet:
    """CIGRE MV (with its PV and wind) with off-nominal HV/MV transformers of several kinds."""
    net = pn.create_cigre_network_mv(with_der="pv_wind")
    net.trafo["tap_changer_type"] = "Ratio"
    net.trafo["tap_neutral"] = 0
    if kind == "hv_taps":  # both at -2 x 1.25 % on the HV side: LV voltages up 2.6 %
        net.trafo["tap_side"], net.trafo["tap_step_percent"], net.trafo["tap_pos"] = "hv", 1.25, -2
    elif kind == "lv_taps":  # +2 x 1.25 % on the LV side, one of them at -1
        net.trafo["tap_side"], net.trafo["tap_step_percent"] = "lv", 1.25
        net.trafo["tap_pos"] = [2, -1]
    elif kind == "rated_21kv":  # 110/21 kV transformers on 20 kV busbars, tap neutral
        net.trafo["vn_lv_kv"] = 21.0
        net.trafo["tap_side"], net.trafo["tap_step_percent"], net.trafo["tap_pos"] = "hv", 1.5, 0
    return net


NETWORKS = {
    "mv_oberrhein": lambda: pn.mv_oberrhein(),
    "cigre_hv_taps": lambda: _tapped_cigre("hv_taps"),
    "cigre_lv_taps": lambda: _tapped_cigre("lv_taps"),
    "cigre_rated_21kv": lambda: _tapped_cigre("rated_21kv"),
}


@pytest.mark.parametrize("name", list(NETWORKS))
def test_tap_ratios_keep_lindistflow_within_001_pu_of_ac(name):
    net = NETWORKS[name]()
    vm_ac = _ac_vm(net)
    res = solve_lindistflow_opf(net, name)
    assert res.status == "optimal"
    assert res.max_vm_error_pu <= 0.01
    np.testing.assert_allclose(res.vm_pu_ac, vm_ac.reindex(res.bus_index), atol=1e-6)
    worst_nominal = 0.0
    lp_vm = dict(zip(res.bus_index.tolist(), res.vm_pu_linear, strict=True))
    for _, part in substation_nets(net, name):
        f = feeder_arrays(part, name, float(net.sn_mva))
        assert (f.branch_ratio != 1.0).any()
        p, q = _net_demand(part, f)
        tapped = _sweep_vm(f, p, q, f.branch_ratio)
        # the LP is the sweep (nothing controllable in these networks)
        np.testing.assert_allclose(tapped, [lp_vm[int(b)] for b in f.bus_index], atol=1e-6)
        assert np.abs(tapped - vm_ac.reindex(f.bus_index)).max() <= 0.01
        nominal = _sweep_vm(f, p, q, np.ones(f.n_branch))
        worst_nominal = max(worst_nominal, np.abs(nominal - vm_ac.reindex(f.bus_index)).max())
    # with nominal ratios the same model misses the AC voltages by more than 0.01 pu
    assert worst_nominal > 0.01


@pytest.mark.parametrize(
    ("tap", "vn_lv_kv", "vm_root_pu", "want_pu"),
    [
        ({"tap_side": "hv", "tap_step_percent": 1.5, "tap_pos": -2}, 20.0, 1.0, 1 / 0.97),
        ({"tap_side": "lv", "tap_step_percent": 2.5, "tap_pos": 2}, 20.0, 1.025, 1.025 * 1.05),
        ({"tap_side": "hv", "tap_step_percent": 1.5, "tap_pos": 0}, 21.0, 1.0, 1.05),
    ],
)
def test_ratio_of_an_unloaded_transformer_is_the_ac_voltage_ratio(
    tap, vn_lv_kv, vm_root_pu, want_pu
):
    """No load, no magnetising current: V_lv = V_hv / n exactly, whichever side the tap."""
    net = pp.create_empty_network(sn_mva=10.0)
    hv = pp.create_bus(net, 110.0)
    lv = pp.create_bus(net, 20.0)
    pp.create_ext_grid(net, hv, vm_pu=vm_root_pu)
    pp.create_transformer_from_parameters(
        net,
        hv,
        lv,
        sn_mva=25.0,
        vn_hv_kv=110.0,
        vn_lv_kv=vn_lv_kv,
        vk_percent=12.0,
        vkr_percent=0.4,
        pfe_kw=0.0,
        i0_percent=0.0,
        tap_neutral=0,
        tap_changer_type="Ratio",
        **tap,
    )
    pp.create_load(net, lv, p_mw=0.0)
    f = feeder_arrays(net, "t", 10.0)
    vm = _sweep_vm(f, np.zeros(2), np.zeros(2), f.branch_ratio)
    assert vm[1] == pytest.approx(want_pu, rel=1e-12)
    assert vm[1] == pytest.approx(float(_ac_vm(net).at[lv]), abs=1e-8)


def test_a_transformer_fed_from_its_low_voltage_side():
    """Root on the LV side: w_hv = n^2 (w_lv - 2 (r P + x Q)), against AC power flow."""
    net = pp.create_empty_network(sn_mva=10.0)
    lv = pp.create_bus(net, 20.0)
    hv = pp.create_bus(net, 110.0)
    far = pp.create_bus(net, 110.0)
    pp.create_ext_grid(net, lv, vm_pu=1.0)
    pp.create_transformer_from_parameters(
        net,
        hv,
        lv,
        sn_mva=25.0,
        vn_hv_kv=110.0,
        vn_lv_kv=20.0,
        vk_percent=12.0,
        vkr_percent=0.4,
        pfe_kw=0.0,
        i0_percent=0.0,
        tap_side="hv",
        tap_neutral=0,
        tap_step_percent=1.5,
        tap_pos=3,
        tap_changer_type="Ratio",
    )
    pp.create_line_from_parameters(
        net,
        hv,
        far,
        length_km=10.0,
        r_ohm_per_km=0.1,
        x_ohm_per_km=0.4,
        c_nf_per_km=0.0,
        max_i_ka=0.5,
    )
    pp.create_load(net, far, p_mw=8.0, q_mvar=3.0)
    f = feeder_arrays(net, "up", 10.0)
    assert f.branch_ratio[0] == pytest.approx(1 / 1.045)
    p, q = _net_demand(net, f)
    vm = _sweep_vm(f, p, q, f.branch_ratio)
    ac = _ac_vm(net).reindex(f.bus_index).to_numpy()
    assert np.abs(vm - ac).max() < 0.005
    assert np.abs(_sweep_vm(f, p, q, np.ones(2)) - ac).max() > 0.03


def test_closed_form_rows_follow_the_ratios():
    """The validation's closed-form voltage rows equal the sweep on a tapped feeder, and a
    change of the root's squared voltage reaches each bus times its gain."""
    net = _tapped_cigre("hv_taps")
    f = feeder_arrays(net, "c", 100.0)
    rows = feeder_rows(f, 8)
    p, q = _net_demand(net, f)
    w_rows = rows.h_p @ p + rows.h_q @ q + rows.y0
    upper = rows.kind == "vm_max"
    w_sweep = _sweep_vm(f, p, q, f.branch_ratio) ** 2
    np.testing.assert_allclose(w_rows[upper], w_sweep[rows.element[upper]], atol=1e-10)
    gain = f.w_gain
    assert gain[0] == 1.0 and gain.max() == pytest.approx(1 / 0.975**2)
    np.testing.assert_allclose(rows.root_coef[upper], gain[rows.element[upper]])


# ---- several substations ----------------------------------------------------------------


def test_substation_parts_of_mv_oberrhein():
    net = pn.mv_oberrhein()
    parts = substation_parts(net, "mvo")
    assert sorted(parts) == [0, 1]
    assert not parts[0] & parts[1]
    assert len(parts[0]) + len(parts[1]) == len(net.bus)
    assert int(net.ext_grid.at[0, "bus"]) in parts[0]
    ((k, one),) = substation_nets(net, "mvo", substation=1)
    assert k == 1 and set(one.bus.index[one.bus.in_service]) == parts[1]
    with pytest.raises(
        CaseError, match=r"substation 4 is not an in-service ext_grid; choose one of 0, 1"
    ):
        substation_nets(net, "mvo", substation=4)


def test_two_substations_feeding_one_part_are_refused():
    net = pn.mv_oberrhein()
    net.switch["closed"] = True  # closes the rings and ties the substations together
    with pytest.raises(CaseError, match=r"ext_grids 0 and 1 feed one connected part") as err:
        substation_parts(net, "mvo")
    assert "\n" not in str(err.value)


def test_the_forest_opf_is_the_sum_of_its_substations():
    net = pn.mv_oberrhein()
    whole = solve_lindistflow_opf(net, "mvo")
    parts = [solve_lindistflow_opf(net, "mvo", substation=k) for k in (0, 1)]
    assert whole.objective_eur_per_h == pytest.approx(sum(r.objective_eur_per_h for r in parts))
    assert whole.p_mw["ext_grid/0"] == pytest.approx(parts[0].p_mw["ext_grid/0"])
    assert whole.p_mw["ext_grid/1"] == pytest.approx(parts[1].p_mw["ext_grid/1"])
    # the imports carry the demand (lossless model: the demand itself)
    demand = float(
        (net.load.p_mw * net.load.scaling).sum() - (net.sgen.p_mw * net.sgen.scaling).sum()
    )
    assert whole.p_mw["ext_grid/0"] + whole.p_mw["ext_grid/1"] == pytest.approx(demand)


def _mvo_study(**feeder):
    spec = copy.deepcopy(SMALL_STUDY)
    spec["feeders"] = [
        {"name": "mvo", "network": "mv_oberrhein", "bus": "5", "share": 0.3, **feeder}
    ]
    return parse_study(spec, "mvo")


@pytest.fixture(scope="module")
def forest_system():
    return build_system(_mvo_study())


def test_a_study_takes_a_network_with_two_substations_as_a_forest(forest_system):
    system = forest_system
    assert [f.name for f in system.feeders] == ["mvo.0", "mvo.1"]
    net = pn.mv_oberrhein()
    parts = substation_parts(net, "mvo")
    for f, k in zip(system.feeders, (0, 1), strict=True):
        assert set(f.arrays.bus_index.tolist()) == parts[k]
        assert f.arrays.bus_index[0] == int(net.ext_grid.at[k, "bus"])
        assert (f.arrays.branch_ratio != 1.0).sum() == 1  # its HV/MV transformer
    # both at bus 5, together replacing 30 % of its load, in proportion to their demand
    tnet = pn.case9()
    bus5 = float(tnet.load.p_mw[tnet.load.bus == 4].sum())
    scaled = sum(
        float((f.net.load.p_mw * f.net.load.scaling)[f.net.load.in_service].sum())
        for f in system.feeders
    )
    assert scaled == pytest.approx(0.3 * bus5)
    assert system.feeders[0].copies == pytest.approx(system.feeders[1].copies)


def test_a_study_picks_one_substation():
    system = build_system(_mvo_study(substation=1))
    (f,) = system.feeders
    assert f.name == "mvo"
    parts = substation_parts(pn.mv_oberrhein(), "mvo")
    assert set(f.arrays.bus_index.tolist()) == parts[1]
    tnet = pn.case9()
    bus5 = float(tnet.load.p_mw[tnet.load.bus == 4].sum())
    assert float(
        (f.net.load.p_mw * f.net.load.scaling)[f.net.load.in_service].sum()
    ) == pytest.approx(0.3 * bus5)


def test_each_substation_at_its_own_bus():
    system = build_system(_mvo_study(bus=["5", "7"]))
    assert [int(system.transmission.bus_index[f.bus]) for f in system.feeders] == [4, 6]


@pytest.mark.parametrize(
    ("feeder", "error", "match"),
    [
        (
            {"substation": 3},
            CaseError,
            r"substation 3 is not an in-service ext_grid; choose one of 0, 1",
        ),
        (
            {"bus": ["5", "7", "9"]},
            CaseError,
            r"bus lists 3 transmission buses but .* has 2 substations",
        ),
        ({"substation": -1}, StudyConfigError, r"substation"),
        ({"substation": 0, "bus": ["5", "7"]}, StudyConfigError, r"give one bus, not 2"),
    ],
)
def test_substation_choices_are_validated(feeder, error, match):
    with pytest.raises(error, match=match) as err:
        build_system(_mvo_study(**feeder))
    assert "\n" not in str(err.value).strip() or error is StudyConfigError


# ---- the cases listing --------------------------------------------------------------------


def test_cases_lists_only_simbench_grids_usable_as_feeders():
    from click.testing import CliRunner

    from cases.simbench import FEEDER_LEVELS, simbench_codes
    from workbench.cli import cli

    out = CliRunner().invoke(cli, ["cases"]).output
    line = out.split("SimBench feeders")[1].splitlines()[1]
    listed = [c.strip() for c in line.split(",")]
    assert "1-MV-rural--0-sw" in listed and "1-LV-rural1--0-sw" in listed
    assert all(c.split("-")[1] in FEEDER_LEVELS for c in listed)
    refused = [c for c in simbench_codes() if c not in listed]
    assert "1-HV-mixed--0-sw" in refused and "1-MV-urban--0-no_sw" in refused  # closed rings
    assert not any(c in out for c in refused)
    assert "mv_oberrhein" in out.split("distribution feeders:")[1].splitlines()[0]


def test_a_meshed_simbench_grid_as_a_feeder_is_refused_before_loading():
    spec = copy.deepcopy(SMALL_STUDY)
    spec["feeders"][0]["network"] = "1-MV-urban--0-no_sw"
    with pytest.raises(
        CaseError, match=r"'1-MV-urban--0-no_sw' cannot be a radial feeder \(meshed\)"
    ):
        build_system(parse_study(spec, "meshed"))


def test_an_hv_simbench_grid_as_a_feeder_is_one_clear_error():
    spec = copy.deepcopy(SMALL_STUDY)
    spec["feeders"][0]["network"] = "1-HVMV-mixed-1.105-0-sw"
    with pytest.raises(
        CaseError,
        match=r"cannot be a radial feeder \(HVMV level: meshed with several in-feeds\); "
        r"use an LV, MV, MVLV code",
    ) as err:
        build_system(parse_study(spec, "hv"))
    assert "\n" not in str(err.value)


@pytest.mark.slow
@pytest.mark.parametrize(
    "code",
    [
        "1-EHV-mixed--0-sw",
        "1-HV-urban--0-sw",
        "1-HVMV-mixed-1.105-0-sw",
        "1-EHVHV-mixed-1-0-sw",
        "1-MV-urban--0-no_sw",
    ],
)
def test_the_unlisted_simbench_grids_are_indeed_not_feeders(code):
    from cases.networks import load_network, merge_parallel_branches

    net = merge_parallel_branches(load_network(code))
    with pytest.raises(CaseError):
        for _, part in substation_nets(net, code):
            feeder_arrays(part, code, 100.0)


@pytest.mark.slow
@pytest.mark.parametrize(
    "code", ["1-LV-semiurb4--0-sw", "1-MVLV-rural-1.108-0-sw", "1-MV-urban--0-sw"]
)
def test_listed_simbench_grids_are_feeders(code):
    from cases.networks import load_network, merge_parallel_branches

    net = merge_parallel_branches(load_network(code))
    ((_, part),) = substation_nets(net, code)
    f = feeder_arrays(part, code, 100.0)
    assert f.n_bus > 2


@pytest.mark.slow
def test_mv_oberrhein_schedules_as_two_feeders_and_passes_the_ac_check():
    """Both substations, taps as shipped: the day is scheduled and the AC check (which
    copies the feeders with their fixed taps) finds the MV voltages inside the band."""
    from workbench.ac_check import ac_check
    from workbench.coordination import coordination_model

    spec = copy.deepcopy(SMALL_STUDY)
    spec["feeders"] = [
        {
            "name": "mvo",
            "network": "mv_oberrhein",
            "bus": "5",
            "share": 0.3,
            "der": {"battery": {"buses": 1}, "ev": {"buses": 1, "charger_type": "workplace"}},
        }
    ]
    spec["scenarios"] = {"n_scenarios": 2, "pv_sigma": 0.4}
    spec["horizon_hours"] = 2
    study = parse_study(spec, "mvo")
    system = build_system(study)
    out = coordination_model("tso_managed").schedule_days(system, study, study.days, study.seed)
    assert out[0].status == "optimal"
    ds = out[0].schedule
    checked = ac_check(system, out[0].data, ds, [0], [0, 1])
    assert bool(checked.ac_converged.values[0, :2].all())
    assert int(checked.voltage_violations_distribution_ac.values[0, :2].max()) == 0
    nb_t = system.transmission.n_bus
    lin = ds.vm_pu_linear.values[0][[0, 1], nb_t:]
    ac = checked.vm_pu_ac.values[0][[0, 1], nb_t:]
    # scaled to 30 % of a 90 MW bus, the linear voltages stay within 0.015 pu of AC
    # (with nominal ratios they would be 3-4.5 % off behind the HV/MV transformers)
    assert np.abs(lin - ac).max() <= 0.015
