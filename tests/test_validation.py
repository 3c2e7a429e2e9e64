"""Hybrid model: robust DSO validation of DER bids."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandapower.networks as pn
import pyomo.environ as pyo
import pytest

from stochastic.single_period import feeder_lp
from stochastic.solve import PersistentSolver
from stochastic.twostage import TwoStageOptions, day_data
from stochastic.validation import feeder_rows, validate_bids


def test_closed_form_rows_equal_the_lindistflow_model():
    net = pn.case33bw()
    lp = feeder_lp(net, "bw", 8, 0.5, 1.5)
    lp.model.obj = pyo.Objective(expr=0.0)
    PersistentSolver(lp.model).solve()
    f = lp.feeder
    rows = feeder_rows(f, 8)
    y = rows.slack(f.load_p_mw, f.load_q_mvar) + rows.upper
    vm = np.sqrt(y[rows.kind == "vm_max"])
    np.testing.assert_allclose(vm, lp.network.vm_pu()[0][1:], atol=1e-9)


def _feeder_case(small_system, small_scenarios, headroom_pu):
    """Feeder f1 of the small study, its DER bids and baseline net demand; the lower
    voltage limit ``headroom_pu`` below the baseline's lowest voltage (negative: above)."""
    system = small_system
    feeder = system.feeders[0]
    options = TwoStageOptions(second_stage_minutes=15, horizon_hours=4)
    data = day_data(system, small_scenarios, options)
    fleet = system.fleet
    base_p = np.concatenate([data.feeder_root_p_mw[0][..., None], data.feeder_p_rhs_mw[0]], axis=2)
    base_q = np.concatenate(
        [data.feeder_root_q_mvar[0][..., None], data.feeder_q_rhs_mvar[0]], axis=2
    )
    pv = fleet.pv[fleet.pv.feeder == 0]
    bat = fleet.battery[fleet.battery.feeder == 0]
    bus = np.r_[pv.bus.to_numpy(), bat.bus.to_numpy()].astype(int)
    n_p = options.n_periods
    up = np.r_[np.zeros(len(pv)), bat.p_mw.to_numpy()][None, :].repeat(n_p, 0)
    down = np.r_[pv.p_mw.to_numpy(), bat.p_mw.to_numpy()][None, :].repeat(n_p, 0)
    period = np.repeat(np.arange(n_p), options.steps_per_period)
    rows = feeder_rows(feeder.arrays, 8)
    w = (rows.slack(base_p, base_q) + rows.upper)[..., rows.kind == "vm_max"]
    vm_min = float(np.sqrt(w.min())) - headroom_pu
    arrays = dataclasses.replace(feeder.arrays, vm_min_pu=np.full(feeder.arrays.n_bus, vm_min))
    return feeder_rows(arrays, 8), base_p, base_q, period, bus, up, down


@pytest.mark.parametrize(
    ("fairness", "reactive"), [("proportional", False), ("max_min", False), ("max_min", True)]
)
def test_any_dispatch_inside_the_accepted_volumes_is_feasible(
    small_system, small_scenarios, fairness, reactive
):
    rows, base_p, base_q, period, bus, up, down = _feeder_case(small_system, small_scenarios, 0.004)
    assert rows.slack(base_p, base_q).max() < 0  # the baseline itself is feasible
    # the DSO may set the PV inverters' reactive power (batteries: none here)
    q_max = np.where(up[0] == 0.0, 0.4 * down[0], 0.0) if reactive else None
    v = validate_bids(
        rows, base_p, base_q, period, bus, up, down, fairness=fairness, q_max_mvar=q_max
    )
    if reactive:  # reactive power supports the voltages: at least as much is accepted
        plain = validate_bids(rows, base_p, base_q, period, bus, up, down, fairness=fairness)
        assert (v.up_mw + v.down_mw).sum() >= (plain.up_mw + plain.down_mw).sum() - 1e-6
        assert np.abs(v.q_mvar).max() > 1e-3
        assert np.all(np.abs(v.q_mvar) <= q_max + 1e-9)
    base_q = base_q.copy()
    np.add.at(base_q, (slice(None), slice(None), bus), -v.q_mvar[period])
    assert v.binding_rows > 0  # the feeder limits cut the bids
    assert np.all(v.up_mw <= up + 1e-9) and np.all(v.down_mw <= down + 1e-9)
    assert (v.up_mw + v.down_mw).sum() < (up + down).sum() - 1e-3
    assert (v.up_mw + v.down_mw).sum() > 1e-3
    np.testing.assert_allclose(v.shift_mw, 0.0, atol=1e-7)  # no own need
    rng = np.random.default_rng(1)
    S, T, _ = base_p.shape
    worst = -np.inf
    for _ in range(1000):
        u = rng.uniform(size=(S, T, len(bus)))
        corner = rng.uniform(size=u.shape) < 0.5  # many draws at the box's corners
        u = np.where(corner, np.round(u), u)
        lo = (v.shift_mw - v.down_mw)[period]
        hi = (v.shift_mw + v.up_mw)[period]
        delta = lo + u * (hi - lo)
        d_p = base_p.copy()
        np.add.at(d_p, (slice(None), slice(None), bus), -delta)
        worst = max(worst, rows.slack(d_p, base_q).max())
    assert worst <= 1e-6


def test_accepting_more_than_validated_can_violate(small_system, small_scenarios):
    rows, base_p, base_q, period, bus, up, down = _feeder_case(small_system, small_scenarios, 0.004)
    v = validate_bids(rows, base_p, base_q, period, bus, up, down, fairness="proportional")
    # 5 % more of every cut volume: the worst corner breaks a limit
    more_dn = np.minimum(v.down_mw * 1.05 + 1e-4, down)
    delta = -more_dn[period]  # every DER at its lowest injection
    d_p = base_p.copy()
    np.add.at(d_p, (slice(None), slice(None), bus), -delta)
    assert rows.slack(d_p, base_q).max() > 1e-6


def test_the_dso_uses_flexibility_first_for_its_own_need(small_system, small_scenarios):
    """A band the baseline breaks: the DSO shifts DER first (dso_first) and passes on
    less than when the TSO comes first."""
    rows, base_p, base_q, period, bus, up, down = _feeder_case(
        small_system, small_scenarios, -0.002
    )
    assert rows.slack(base_p, base_q).max() > 0
    dso = validate_bids(rows, base_p, base_q, period, bus, up, down, priority="dso_first")
    tso = validate_bids(rows, base_p, base_q, period, bus, up, down, priority="tso_first")
    assert np.abs(dso.shift_mw).sum() > 1e-4
    assert np.abs(dso.shift_mw).sum() <= np.abs(tso.shift_mw).sum() + 1e-6
    assert (tso.up_mw + tso.down_mw).sum() >= (dso.up_mw + dso.down_mw).sum() - 1e-6


def test_a_tap_changer_never_shrinks_the_validated_volumes(small_system, small_scenarios):
    from stochastic.validation import root_w_range

    rows, base_p, base_q, period, bus, up, down = _feeder_case(small_system, small_scenarios, 0.004)
    held = validate_bids(rows, base_p, base_q, period, bus, up, down)
    arrays = small_system.feeders[0].arrays
    tap = validate_bids(
        rows, base_p, base_q, period, bus, up, down, root_range=root_w_range(arrays, 0.05)
    )
    assert (tap.up_mw + tap.down_mw).sum() >= (held.up_mw + held.down_mw).sum() - 1e-6
    assert (tap.up_mw + tap.down_mw).sum() > (held.up_mw + held.down_mw).sum() + 1e-3
    # any dispatch inside the wider volumes is feasible at the DSO's tap positions
    d_p = base_p.copy()
    np.add.at(d_p, (slice(None), slice(None), bus), tap.down_mw[period])  # least injection
    slack = rows.slack(d_p, base_q) + rows.root_coef * tap.root_dw[period][None, :, None]
    assert slack.max() <= 1e-6
