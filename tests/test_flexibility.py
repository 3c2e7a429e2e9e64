"""P-Q flexibility regions: geometry, reachability of the inner polygon, tightness of the
outer one, an analytic box case and the command line."""

from __future__ import annotations

import json

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pyomo.environ as pyo
import pytest

from stochastic.flexibility import Polygon, convex_hull, outer_polygon, polygon_area
from stochastic.single_period import feeder_lp
from stochastic.solve import PersistentSolver, SolveStatus
from workbench.cli import main
from workbench.flexibility import network_flexibility, sample_ac_interface


def test_polygon_geometry():
    square = np.array([[0, 0], [2, 0], [2, 1], [0, 1], [1, 0.5], [1, 0]], dtype=float)
    hull = convex_hull(square)
    assert len(hull) == 4 and polygon_area(hull) == pytest.approx(2.0)
    phi = np.pi / 2 * np.arange(4)
    outer = outer_polygon(phi, np.array([2.0, 1.0, 0.0, 0.0]))
    assert polygon_area(outer) == pytest.approx(2.0)
    assert Polygon(hull).contains(np.array([1.0, 0.5]))
    assert not Polygon(hull).contains(np.array([2.1, 0.5]))
    assert len(convex_hull(np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]))) == 2


def _feeder(thin: bool) -> pp.pandapowerNet:
    """case33bw with four controllable PV inverters; ``thin``: a weak line to them."""
    net = pn.case33bw()
    for bus in (17, 21, 24, 32):
        pp.create_sgen(
            net,
            bus,
            p_mw=0.5,
            q_mvar=0.0,
            controllable=True,
            min_p_mw=0.0,
            max_p_mw=0.5,
            min_q_mvar=-0.25,
            max_q_mvar=0.25,
        )
    if thin:
        net.line.loc[net.line.to_bus == 17, "max_i_ka"] = 0.01
    else:  # loose limits: only the unit boxes bind
        net.bus["min_vm_pu"], net.bus["max_vm_pu"] = 0.5, 1.5
        net.line["max_i_ka"] = 10.0
    return net


def _reachable(net, point) -> bool:
    """Whether the lossless LinDistFlow reaches ``point`` (the sweep's model at
    ``ac_rounds=0``)."""
    lp = feeder_lp(net, "t", 16, 0.95, 1.05)
    lp.model.fix_p = pyo.Constraint(expr=lp.p_import_mw == float(point[0]))
    lp.model.fix_q = pyo.Constraint(expr=lp.q_import_mvar == float(point[1]))
    lp.model.obj = pyo.Objective(expr=0.0)
    res = PersistentSolver(lp.model).solve(raise_on_failure=False)
    return res.status is SolveStatus.OPTIMAL


@pytest.fixture(scope="module")
def thin_region():
    return network_flexibility(_feeder(True), "thin", n_directions=12, ac_rounds=0)


def test_inner_vertices_are_reachable_and_beyond_outer_is_not(thin_region):
    net = _feeder(True)
    inner, outer = thin_region.sweep.inner, thin_region.sweep.outer
    assert len(inner.vertices) >= 3 and inner.area > 0
    assert inner.area <= outer.area + 1e-9
    for v in inner.vertices:
        assert outer.contains(v, tol=1e-6)
        assert _reachable(net, v)
    centre = inner.vertices.mean(axis=0)
    for v in outer.vertices:
        beyond = v + 0.02 * (v - centre) / np.linalg.norm(v - centre)
        assert not _reachable(net, beyond)


def test_more_directions_tighten_both_polygons(thin_region):
    finer = network_flexibility(_feeder(True), "thin", n_directions=24, ac_rounds=0)
    assert finer.sweep.inner.area >= thin_region.sweep.inner.area - 1e-9
    assert finer.sweep.outer.area <= thin_region.sweep.outer.area + 1e-9
    gap = finer.sweep.outer.area - finer.sweep.inner.area
    assert gap < thin_region.sweep.outer.area - thin_region.sweep.inner.area


def test_the_thin_line_shrinks_the_region(thin_region):
    loose = network_flexibility(_feeder(False), "loose", n_directions=12, ac_rounds=0)
    assert thin_region.sweep.outer.area < loose.sweep.inner.area


def test_unit_boxes_alone_give_the_exact_rectangle():
    """Loose network limits: the region is the Minkowski sum of the units' boxes, shifted
    by the demand and the losses-free flows (P = load - sum p, Q = load - sum q)."""
    net = _feeder(False)
    region = network_flexibility(net, "loose", n_directions=8, ac_rounds=0)
    p0, q0 = net.load.p_mw.sum(), net.load.q_mvar.sum()
    expected = (4 * 0.5) * (4 * 0.5)  # (sum of p ranges) x (sum of q ranges)
    assert region.sweep.inner.area == pytest.approx(expected, rel=1e-6)
    assert region.sweep.outer.area == pytest.approx(expected, rel=1e-6)
    v = region.sweep.inner.vertices
    assert v[:, 0].min() == pytest.approx(p0 - 2.0, abs=1e-6)
    assert v[:, 0].max() == pytest.approx(p0, abs=1e-6)
    assert v[:, 1].min() == pytest.approx(q0 - 1.0, abs=1e-6)
    assert v[:, 1].max() == pytest.approx(q0 + 1.0, abs=1e-6)
    # the AC power flow at each vertex draws about the linear power plus the losses
    ac = region.vertex_ac_mw_mvar
    assert np.all(ac[:, 0] > v[:, 0]) and np.all(ac[:, 0] < v[:, 0] + 0.1 * p0)


def test_flexibility_cli_json(tmp_path, capsys):
    path = tmp_path / "net.json"
    pp.to_json(_feeder(True), str(path))
    assert main(["flexibility", str(path), "--directions", "8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in (
        "inner_vertices_mw_mvar",
        "outer_vertices_mw_mvar",
        "area_inner_mw_mvar",
        "area_outer_mw_mvar",
        "vertices_ac_feasible",
        "vertices",
        "max_vm_error_pu",
    ):
        assert key in out
    assert out["vertices"] == len(out["inner_vertices_mw_mvar"])
    assert 0 <= out["vertices_ac_feasible"] <= out["vertices"]
    assert main(["flexibility", str(path), "--directions", "2"]) == 2
    args = ["flexibility", str(path), "--directions", "8", "--samples", "6", "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ac_samples"] == 6 and 0 <= out["ac_samples_feasible"] <= 6
    assert out["ac_rounds"] == 2
    assert out["ac_samples_feasible"] == 0 or 0.0 <= out["ac_sample_coverage"] <= 1.0


# --- the region against AC physics -------------------------------------------------------

#: distance [MVA] an AC-sampled interface point may lie outside the outer polygon
AC_COVERAGE_TOL_MVA = 0.01
#: AC tolerances at the inner vertices: voltage outside its band [pu], loading above its
#: limit [%], distance between a vertex and the AC interface power of its dispatch [MVA]
#: (each direction's last solve uses the linearisation at the dispatch before it)
VERTEX_VM_TOL_PU = 1e-3
VERTEX_OVERLOAD_TOL_PERCENT = 0.5
VERTEX_INTERFACE_TOL_MVA = 0.2


def _cigre_4x_der() -> pp.pandapowerNet:
    """CIGRE MV with four times its PV and wind, all controllable, Q within +-0.4 P."""
    net = pn.create_cigre_network_mv(with_der="pv_wind")
    s = net.sgen
    s["p_mw"] *= 4.0
    s["sn_mva"] *= 4.0
    s["controllable"] = True
    s["min_p_mw"], s["max_p_mw"] = 0.0, s.p_mw
    s["min_q_mvar"], s["max_q_mvar"] = -0.4 * s.p_mw, 0.4 * s.p_mw
    return net


def _case33bw_der() -> pp.pandapowerNet:
    """case33bw with five controllable PV inverters, Q within +-0.4 P."""
    net = pn.case33bw()
    for bus, p in ((17, 0.6), (21, 0.5), (24, 0.8), (32, 0.6), (13, 0.4)):
        pp.create_sgen(
            net,
            bus,
            p_mw=p,
            q_mvar=0.0,
            controllable=True,
            min_p_mw=0.0,
            max_p_mw=p,
            min_q_mvar=-0.4 * p,
            max_q_mvar=0.4 * p,
        )
    return net


def _check_against_ac(net, n_samples: int) -> tuple[float, float]:
    """Coverage of AC-feasible random set-points by the loss-corrected and the lossless
    outer polygons; the inner vertices of the loss-corrected region checked in AC."""
    samples = sample_ac_interface(net, n_samples, seed=7)
    assert samples.feasible.sum() >= 0.2 * n_samples  # enough AC-feasible points
    region = network_flexibility(net, "t", n_directions=16)
    lossless = network_flexibility(net, "t", n_directions=16, ac_rounds=0)
    covered = samples.coverage(region.sweep.outer, AC_COVERAGE_TOL_MVA)
    covered_lossless = samples.coverage(lossless.sweep.outer, AC_COVERAGE_TOL_MVA)
    assert np.all(region.vertex_vm_violation_pu <= VERTEX_VM_TOL_PU)
    assert np.all(region.vertex_overload_percent <= VERTEX_OVERLOAD_TOL_PERCENT)
    gap = np.linalg.norm(region.vertex_ac_mw_mvar - region.sweep.inner.vertices, axis=1)
    assert np.all(gap <= VERTEX_INTERFACE_TOL_MVA)
    return covered, covered_lossless


def test_case33bw_region_contains_ac_sampled_interface_points():
    covered, _ = _check_against_ac(_case33bw_der(), 60)
    assert covered >= 0.95


@pytest.mark.slow
def test_cigre_mv_4x_der_region_contains_ac_sampled_interface_points():
    """The lossless region misses the reactive losses (most AC points lie outside it);
    the loss-corrected one contains them."""
    covered, covered_lossless = _check_against_ac(_cigre_4x_der(), 200)
    assert covered >= 0.95
    assert covered_lossless < 0.5


def test_ac_samples_respect_the_unit_limits_and_the_seed():
    net = _case33bw_der()
    a, b = sample_ac_interface(net, 5, seed=3), sample_ac_interface(net, 5, seed=3)
    np.testing.assert_array_equal(a.interface_mw_mvar, b.interface_mw_mvar)
    p_max = net.sgen.max_p_mw.to_numpy()
    assert np.all((a.p_mw >= 0) & (a.p_mw <= p_max))
    assert np.all(np.abs(a.q_mvar) <= 0.4 * p_max + 1e-12)
    # conservation: the AC import is the load minus the DER plus positive losses
    p_net = net.load.p_mw.sum() - a.p_mw.sum(axis=1)
    assert np.all(a.interface_mw_mvar[:, 0] > p_net)
    assert np.all(a.interface_mw_mvar[:, 0] < p_net + 0.2 * net.load.p_mw.sum())


@pytest.mark.parametrize("make", [_cigre_4x_der, _case33bw_der])
def test_adjoint_interface_jacobian_matches_finite_differences(make):
    """The interface's derivatives in the set-points from the power-flow Jacobian agree
    with forward differences of pandapower's power flow."""
    from workbench.flexibility import AcInterface

    net = make()
    lp = feeder_lp(net, "t", 16, 0.95, 1.05)
    samples = sample_ac_interface(net, 1, seed=5)
    ac = AcInterface(net, lp)
    _, adjoint = ac.jacobian(samples.p_mw[0], samples.q_mvar[0])
    _, forward = ac.jacobian(samples.p_mw[0], samples.q_mvar[0], step=1e-4)
    np.testing.assert_allclose(adjoint, forward, atol=2e-4)
    # lossless LinDistFlow would give -1 on each unit's own power; the losses move it
    n = len(lp.units)
    assert np.all(adjoint[0, :n] < -1.0 + 0.2) and np.all(adjoint[1, n:] < -1.0 + 0.2)
