"""DSO-managed model: robust per-period P-Q regions of a feeder's DER."""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo
import pytest

from stochastic.aggregation import period_model, regions
from stochastic.bids import der_bids
from stochastic.solve import PersistentSolver, SolveStatus
from stochastic.twostage import TwoStageOptions, day_data
from stochastic.validation import feeder_rows
from workbench.coordination.hybrid import baseline_net_demand


@pytest.fixture(scope="module")
def feeder_case(small_system, small_scenarios):
    system = small_system
    options = TwoStageOptions(second_stage_minutes=15, horizon_hours=4)
    data = day_data(system, small_scenarios, options)
    bids = der_bids(system, data, options)
    k = options.steps_per_period
    base_p, base_q = baseline_net_demand(system, data, bids, 0, k)
    sel = np.flatnonzero(bids.feeder.values == 0)
    kinds = bids.der_type.values[sel]
    # per scenario and step: PV can give up what is available, batteries their power
    pv = system.fleet.pv.feeder.to_numpy() == 0
    avail = data.pv_available_mw[..., pv]
    S, T = avail.shape[:2]
    up = np.zeros((S, T, len(sel)))
    down = np.zeros((S, T, len(sel)))
    down[..., kinds == "pv"] = avail
    bat = np.flatnonzero(kinds == "battery")
    up[..., bat] = bids.up_mw.values[0, sel[bat]]
    down[..., bat] = bids.down_mw.values[0, sel[bat]]
    q_max = np.where(kinds == "pv", 0.3 * bids.down_mw.values.max(axis=0)[sel], 0.0)
    rows = feeder_rows(system.feeders[0].arrays, 8)
    period = np.repeat(np.arange(options.n_periods), k)
    bus = bids.bus.values[sel].astype(int)
    reg = regions(rows, base_p, base_q, period, bus, up, down, q_max, n_directions=12)
    return rows, base_p, base_q, period, bus, up, down, q_max, reg


def _deliverable(case, p, point) -> bool:
    rows, base_p, base_q, period, bus, up, down, q_max, _ = case
    sel = period == p
    m, dp, dq, _, _ = period_model(
        rows, base_p[:, sel], base_q[:, sel], bus, up[:, sel], down[:, sel], q_max
    )
    dp.fix(float(point[0]))
    dq.fix(float(point[1]))
    m.obj = pyo.Objective(expr=0.0)
    return PersistentSolver(m).solve(raise_on_failure=False).status is SolveStatus.OPTIMAL


def test_every_inner_vertex_is_deliverable_in_every_scenario(feeder_case):
    reg = feeder_case[-1]
    assert len(reg.sweeps) == 4
    for p, sweep in enumerate(reg.sweeps):
        assert sweep.inner.area > 0
        assert sweep.inner.area <= sweep.outer.area + 1e-9
        for v in sweep.inner.vertices:
            assert _deliverable(feeder_case, p, v)


def test_points_beyond_the_outer_polygon_are_not(feeder_case):
    reg = feeder_case[-1]
    for p, sweep in enumerate(reg.sweeps):
        centre = sweep.inner.vertices.mean(axis=0)
        for v in sweep.outer.vertices:
            d = v - centre
            beyond = v + 0.01 * d / np.linalg.norm(d) + 1e-4 * np.sign(d)
            assert not _deliverable(feeder_case, p, beyond)


def test_robust_region_shrinks_with_the_worst_scenario(feeder_case):
    """The region of the whole set lies inside the region of any one scenario."""
    rows, base_p, base_q, period, bus, up, down, q_max, reg = feeder_case
    one = regions(
        rows, base_p[:1], base_q[:1], period, bus, up[:1], down[:1], q_max, n_directions=12
    )
    for all_s, single in zip(reg.sweeps, one.sweeps, strict=True):
        assert all_s.inner.area <= single.outer.area + 1e-9


def test_a_tap_changer_never_shrinks_a_region(feeder_case, small_system):
    from stochastic.validation import root_w_range

    rows, base_p, base_q, period, bus, up, down, q_max, reg = feeder_case
    tap = regions(
        rows,
        base_p,
        base_q,
        period,
        bus,
        up,
        down,
        q_max,
        n_directions=12,
        root_range=root_w_range(small_system.feeders[0].arrays, 0.05),
    )
    for held, moved in zip(reg.sweeps, tap.sweeps, strict=True):
        assert moved.inner.area >= held.inner.area - 1e-9


def test_a_period_no_dispatch_can_keep_in_limits_has_an_empty_region(feeder_case):
    import dataclasses

    rows, base_p, base_q, period, bus, up, down, q_max, _ = feeder_case
    # period 2's demand far above what any DER dispatch or limit allows
    heavy = base_p.copy()
    heavy[:, period == 2, 1:] *= 50.0
    tight = dataclasses.replace(rows, upper=rows.upper.copy())
    reg = regions(tight, heavy, base_q, period, bus, up, down, q_max, n_directions=8)
    assert reg.empty.tolist() == [False, False, True, False]
    assert np.isnan(reg.p_range_mw()[2]).all() and np.isfinite(reg.p_range_mw()[[0, 1, 3]]).all()
