"""Two-stage model: stage structure, resolutions, conservation of power, CVaR limiting cases."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from stochastic.extract import extract_two_stage
from stochastic.network import dc_shift_injection_mw
from stochastic.risk import cvar
from stochastic.solve import PersistentSolver
from stochastic.twostage import TwoStageOptions, build_two_stage, day_data
from tests.conftest import scenarios_with_ev
from tests.lp_snapshot import lp_snapshot

TOL = 1e-6


@pytest.fixture(scope="module")
def solved(small_study, small_system, small_scenarios):
    options = TwoStageOptions.from_study(small_study)
    data = day_data(small_system, small_scenarios, options)
    tsm = build_two_stage(small_system, data, options)
    solver = PersistentSolver(tsm.model)
    result = solver.solve()
    return {
        "tsm": tsm,
        "data": data,
        "solver": solver,
        "result": result,
        "ds": extract_two_stage(tsm, data, result),
        "options": options,
    }


def _resolve(solved, alpha, beta):
    tsm, solver = solved["tsm"], solved["solver"]
    tsm.set_risk(alpha, beta)
    solver.update_parameters()
    result = solver.solve()
    return extract_two_stage(tsm, solved["data"], result)


def test_first_stage_has_no_scenario_dimension(solved):
    ds = solved["ds"]
    for name in (
        "ter_schedule_mw",
        "ter_reserve_up_mw",
        "der_bid_energy_mw",
        "der_bid_up_mw",
        "der_bid_down_mw",
    ):
        assert "scenario" not in ds[name].dims and "period" in ds[name].dims
    for part in solved["tsm"].parts.values():
        for key, var in part.vars.items():
            first = key in part.first_stage
            assert ("scenario" in var.dims) != first, (part.name, key)
            assert bool({"period", "boundary"} & set(var.dims)) == first, (part.name, key)


def test_dataset_contract_units_and_names(solved):
    ds = solved["ds"]
    for name, var in ds.data_vars.items():
        if name != "solver_status":
            assert "units" in var.attrs and "long_name" in var.attrs, name
    assert ds.weight.sum().item() == pytest.approx(1.0)
    assert set(ds.der_type.values) == {"pv", "battery", "ev"}


def test_second_stage_stays_inside_first_stage_decisions(solved):
    ds = solved["ds"]
    k = solved["options"].steps_per_period
    hour = np.arange(ds.sizes["time"]) // k
    e = ds.der_bid_energy_mw.values[hour]  # (time, der): each sub-step sees its hour's value
    up = ds.der_bid_up_mw.values[hour]
    dn = ds.der_bid_down_mw.values[hour]
    p = ds.der_p_mw.values  # (scenario, time, der)
    flexible = (ds.der_type != "pv").values
    assert np.all(p[..., flexible] <= (e + up)[None, :, flexible] + TOL)
    assert np.all(p[..., flexible] >= (e - dn)[None, :, flexible] - TOL)
    pv = ~flexible
    assert np.all(ds.curtailment_mw.values[..., pv] <= dn[None, :, pv] + TOL)
    activated = (ds.der_activated_up_mw - ds.der_activated_down_mw).values
    np.testing.assert_allclose((p - e[None])[..., flexible], activated[..., flexible], atol=1e-6)
    # PV injects what is available minus what was curtailed
    avail = solved["data"].pv_available_mw
    np.testing.assert_allclose(p[..., pv], avail - ds.curtailment_mw.values[..., pv], atol=1e-6)
    # TER: output = followed trajectory + balancing - spill, balancing within the reserve
    # of its hour; the published schedule is the hourly mean of the trajectory
    ref = ds.ter_reference_mw.values
    np.testing.assert_allclose(
        ds.ter_p_mw.values,
        ref[None]
        + ds.ter_balancing_up_mw.values
        - ds.ter_balancing_down_mw.values
        - ds.ter_spill_mw.values
        + ds.ter_emergency_up_mw.values,
        atol=1e-6,
    )
    k = solved["options"].steps_per_period
    np.testing.assert_allclose(
        ref.reshape(-1, k, ref.shape[-1]).mean(axis=1), ds.ter_schedule_mw.values, atol=1e-6
    )
    assert np.all(ds.ter_balancing_up_mw.values <= ds.ter_reserve_up_mw.values[hour][None] + TOL)
    assert np.all(
        ds.ter_balancing_down_mw.values <= ds.ter_reserve_down_mw.values[hour][None] + TOL
    )


def test_battery_energy_at_the_finest_resolution(solved):
    ds, data = solved["ds"], solved["data"]
    dt_h = solved["options"].dt_h
    fleet = solved["tsm"].system.fleet
    sel = (ds.der_type == "battery").values
    e = ds.battery_energy_mwh.values[..., sel]
    pc = solved["tsm"].var("der", "battery_charge_mw").values()
    pd = solved["tsm"].var("der", "battery_discharge_mw").values()
    eff = fleet.battery.efficiency.to_numpy()
    prev = np.concatenate(
        [np.broadcast_to(data.battery_e_init_mwh, (e.shape[0], 1, e.shape[2])), e[:, :-1]], axis=1
    )
    np.testing.assert_allclose(e - prev, dt_h * (eff * pc - pd / eff), atol=1e-6)
    assert np.all(e[:, -1] >= data.battery_e_end_min_mwh - TOL)  # the day ends at its floor
    np.testing.assert_allclose(ds.der_p_mw.values[..., sel], pd - pc, atol=1e-6)


def test_power_balance_closes_at_every_bus(solved):
    ds, data, tsm = solved["ds"], solved["data"], solved["tsm"]
    sysm = tsm.system
    t = sysm.transmission
    nb, nbr = t.n_bus, t.n_branch
    # transmission buses: injections - demand = DC outflow
    flows = ds.p_mw_linear.values[..., :nbr]
    outflow = np.zeros((*flows.shape[:2], nb))
    np.add.at(outflow, (slice(None), slice(None), t.branch_from), flows)
    np.add.at(outflow, (slice(None), slice(None), t.branch_to), -flows)
    inj = np.zeros_like(outflow)
    np.add.at(inj, (slice(None), slice(None), t.gen_bus), ds.ter_p_mw.values)
    inj += ds.load_shed_mw.values[..., :nb]
    for fi, f in enumerate(sysm.feeders):
        inj[..., f.bus] -= ds.interface_p_mw.values[..., fi]
    demand = data.transmission_rhs_mw - dc_shift_injection_mw(t)
    np.testing.assert_allclose(inj - demand, outflow, atol=1e-5)
    # feeder buses: parent branch flow - child flows = load - shed - DER - fixed units
    fleet = sysm.fleet
    b0, br0 = nb, nbr
    der_p, der_q = ds.der_p_mw.values, ds.der_q_mvar.values
    for fi, f in enumerate(sysm.feeders):
        a = f.arrays
        p = ds.p_mw_linear.values[..., br0 : br0 + a.n_branch]
        q = ds.q_mvar_linear.values[..., br0 : br0 + a.n_branch]
        net_p = p.copy()
        net_q = q.copy()
        child = np.arange(2, a.n_bus)
        inner = a.parent[child] >= 1
        np.add.at(
            net_p, (slice(None), slice(None), a.parent[child][inner] - 1), -p[..., child[inner] - 1]
        )
        np.add.at(
            net_q, (slice(None), slice(None), a.parent[child][inner] - 1), -q[..., child[inner] - 1]
        )
        load = (
            data.feeder_load_p_mw[fi][..., 1:] - ds.load_shed_mw.values[..., b0 + 1 : b0 + a.n_bus]
        )
        tan = np.divide(
            a.load_q_mvar[1:], a.load_p_mw[1:], out=np.zeros(a.n_branch), where=a.load_p_mw[1:] > 0
        )
        expected_p, expected_q = load.copy(), load * tan
        offset = 0
        for units in (fleet.pv, fleet.battery, fleet.ev):
            sel = np.flatnonzero((units.feeder == fi).to_numpy())
            buses = units.bus.to_numpy()[sel] - 1
            np.add.at(expected_p, (slice(None), slice(None), buses), -der_p[..., offset + sel])
            np.add.at(expected_q, (slice(None), slice(None), buses), -der_q[..., offset + sel])
            offset += len(units)
        fsel = np.flatnonzero((fleet.fixed.feeder == fi).to_numpy())
        np.add.at(
            expected_p,
            (slice(None), slice(None), fleet.fixed.bus.to_numpy()[fsel] - 1),
            -data.fixed_p_mw[..., fsel],
        )
        np.testing.assert_allclose(net_p, expected_p, atol=1e-5)
        np.testing.assert_allclose(net_q, expected_q, atol=1e-5)
        b0 += a.n_bus
        br0 += a.n_branch


def test_voltages_and_ratings_respected_in_the_linear_model(solved):
    ds, tsm = solved["ds"], solved["tsm"]
    margin = solved["options"].voltage_margin_pu
    for _fi, f in enumerate(tsm.system.feeders):
        vm = ds.vm_pu_linear.sel(bus=[f"{f.name}/{b}" for b in f.arrays.bus_index]).values
        assert np.all(vm[..., 1:] >= f.arrays.vm_min_pu[1:] + margin - TOL)
        assert np.all(vm[..., 1:] <= f.arrays.vm_max_pu[1:] - margin + TOL)
    t = tsm.system.transmission
    assert np.all(np.abs(ds.p_mw_linear.values[..., : t.n_branch]) <= t.branch_rating_mw + TOL)


def test_cvar_limiting_cases_and_monotonicity(solved):
    alpha = 0.75
    risk = solved["tsm"].risk
    results, lp_cvar = {}, {}
    for beta in (0.0, 0.25, 0.5, 0.75, 1.0):
        r = results[beta] = _resolve(solved, alpha, beta)
        # the CVaR of the LP's auxiliary variables (meaningful when beta > 0)
        lp_cvar[beta] = (
            risk.eta.values()[0]
            + r.weight.values @ risk.excess.values() / (1 - alpha)
            + r.first_stage_cost_eur.item()
        )
    r0 = results[0.0]
    eps = solved["options"].recourse_efficiency_weight

    def expected_second(r):
        return r.expected_cost_eur.item() - r.first_stage_cost_eur.item()

    # beta = 0 is the risk-neutral problem: the objective is the expected cost (plus the
    # small efficiency weight on the expected second-stage cost)
    assert r0.objective_eur.item() == pytest.approx(
        r0.expected_cost_eur.item() + eps * expected_second(r0), rel=1e-7
    )
    # the scenario costs differ, so risk aversion has something to trade
    assert r0.cvar_eur.item() > r0.expected_cost_eur.item() * (1 + 1e-4)
    betas = sorted(results)
    exp = np.array([results[b].expected_cost_eur.item() for b in betas])
    cv = np.array([results[b].cvar_eur.item() for b in betas])
    scale = abs(exp[0])
    assert np.all(np.diff(exp) >= -1e-6 * scale), exp
    assert np.all(np.diff(cv) <= 1e-6 * scale), cv
    assert exp[-1] > exp[0] and cv[-1] < cv[0]
    # beta = 1 minimises the CVaR alone: objective = first stage + CVaR of the second stage
    r1 = results[1.0]
    assert r1.objective_eur.item() == pytest.approx(
        r1.cvar_eur.item() + eps * expected_second(r1), rel=1e-7
    )
    # the CVaR reported equals the CVaR computed from the scenario costs, and the LP's
    # auxiliary variables give the same number
    for beta, r in results.items():
        assert r.cvar_eur.item() == pytest.approx(
            cvar(r.scenario_cost_eur.values, r.weight.values, alpha), rel=1e-9
        )
        if beta > 0:
            assert lp_cvar[beta] == pytest.approx(r.cvar_eur.item(), rel=1e-6)
    _resolve(solved, 0.75, 0.5)  # leave the shared model as built


def test_beta_zero_does_not_depend_on_alpha(solved):
    a = _resolve(solved, 0.5, 0.0).objective_eur.item()
    b = _resolve(solved, 0.95, 0.0).objective_eur.item()
    assert a == pytest.approx(b, rel=1e-8)
    _resolve(solved, 0.75, 0.5)


def test_rebuilt_model_equals_parameter_update(small_study, small_system, small_forecaster):
    """Loading another day's data into a built model gives the model built for that day."""
    options = TwoStageOptions.from_study(small_study)
    day1, day2 = dt.date(2016, 6, 15), dt.date(2016, 7, 2)
    d1 = day_data(
        small_system,
        scenarios_with_ev(small_study, small_system, day1, 1, small_forecaster),
        options,
    )
    d2 = day_data(
        small_system,
        scenarios_with_ev(small_study, small_system, day2, 1, small_forecaster),
        options,
    )
    tsm = build_two_stage(small_system, d1, options)
    solver = PersistentSolver(tsm.model)
    solver.solve()
    tsm.set_data(d2)
    solver.update_parameters()
    updated = solver.solve().objective
    fresh = PersistentSolver(build_two_stage(small_system, d2, options).model).solve().objective
    assert updated == pytest.approx(fresh, rel=1e-7)


def test_weights_must_sum_to_one(small_study, small_system, small_scenarios):
    options = TwoStageOptions.from_study(small_study)
    bad = small_scenarios.copy()
    bad["weight"] = bad["weight"] * 0.9
    with pytest.raises(ValueError, match="must sum to 1"):
        day_data(small_system, bad, options)


def test_risk_parameters_are_validated():
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\)"):
        TwoStageOptions(alpha=1.0)
    with pytest.raises(ValueError, match=r"beta must be in \[0, 1\]"):
        TwoStageOptions(beta=-0.1)


def test_batched_hand_over_gives_the_same_lp_as_the_standard_interface(
    small_study, small_system, small_scenarios, small_forecaster
):
    options = TwoStageOptions.from_study(small_study)
    data = day_data(small_system, small_scenarios, options)
    seen = []
    for batched in (True, False):
        tsm = build_two_stage(small_system, data, options)
        solver = PersistentSolver(tsm.model, batched=batched)
        lp = lp_snapshot(solver, tsm.model)
        first = solver.solve().objective
        # mutable parameters reach HiGHS the same way on both paths
        tsm.set_risk(0.9, 1.0)
        tsm.set_data(
            day_data(
                small_system,
                scenarios_with_ev(
                    small_study, small_system, dt.date(2016, 7, 1), 3, small_forecaster
                ),
                options,
            )
        )
        solver.update_parameters(warm_start=False)
        seen.append((lp, first, solver.solve().objective, lp_snapshot(solver, tsm.model)))
    (lp_b, first_b, second_b, upd_b), (lp_s, first_s, second_s, upd_s) = seen
    assert lp_b == lp_s
    assert upd_b == upd_s
    assert first_b == pytest.approx(first_s, rel=1e-9)
    assert second_b == pytest.approx(second_s, rel=1e-9)


def test_ev_pools_charge_within_their_sampled_sessions(solved):
    tsm, data = solved["tsm"], solved["data"]
    energy = tsm.var("der", "ev_energy_mwh").values()
    unserved = tsm.var("der", "ev_unserved_mwh").values()
    charge = tsm.var("der", "ev_charge_mw").values()
    eff = tsm.system.fleet.ev.efficiency.to_numpy()
    assert energy.shape == data.ev_e_min_mwh.shape and energy.shape[-1] > 0
    assert np.all(energy <= data.ev_e_max_mwh + TOL)
    assert np.all(energy + unserved >= data.ev_e_min_mwh - TOL)
    assert np.all(charge * eff <= data.ev_p_max_mw + TOL)
    dt_h = solved["options"].dt_h
    np.testing.assert_allclose(np.cumsum(charge * eff * dt_h, axis=1), energy, atol=1e-6)
    # the sessions are drawn per scenario: the plugged-in power differs between scenarios
    assert np.ptp(data.ev_p_max_mw.sum(axis=(1, 2))) > 0


def test_reactive_power_only_where_a_feeder_limit_binds(solved, small_study):
    """Priced, the PV inverters' reactive power is used only in scenario-steps where one of
    its feeder's voltage or line limits binds (unpriced, the LP left it anywhere in its
    range: 36 scenario-steps of this study without any binding limit), and the cost item
    ``der/second/reactive`` is its price times the expected |Q| energy."""
    ds, options = solved["ds"], solved["options"]
    price = options.der_reactive_eur_per_mvarh
    assert price > 0
    margin = options.voltage_margin_pu
    used_somewhere = False
    for feeder in small_study.feeders:
        mine = [d for d in ds.der.values if str(d).startswith(f"{feeder.name}/")]
        buses = [b for b in ds.bus.values if str(b).startswith(f"{feeder.name}/")]
        branches = [b for b in ds.branch.values if str(b).startswith(f"{feeder.name}/")]
        used = (np.abs(ds.der_q_mvar.sel(der=mine)) > 1e-6).any("der")
        vm = ds.vm_pu_linear.sel(bus=buses)
        v_binds = (vm >= feeder.vm_max_pu - margin - 1e-5) | (
            vm <= feeder.vm_min_pu + margin + 1e-5
        )
        line_binds = ds.loading_percent_linear.sel(branch=branches) >= 100.0 - 1e-3
        binds = v_binds.any("bus") | line_binds.any("branch")
        assert not bool((used & ~binds).any()), feeder.name
        used_somewhere |= bool(used.any())
    assert used_somewhere  # the voltages of this study need some reactive power
    step_h = options.second_stage_minutes / 60.0
    q_mvarh = (np.abs(ds.der_q_mvar).sum(("der", "time")) * step_h * ds.weight).sum()
    item = (ds.cost_item_eur.sel(cost_item="der/second/reactive") * ds.weight).sum()
    assert float(item) == pytest.approx(price * float(q_mvarh), rel=1e-6, abs=1e-6)
