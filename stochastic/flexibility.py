"""P-Q flexibility regions at a feeder's interface by a direction sweep.

For a linear feeder model (LinDistFlow with DER limits) the set of interface powers
``(P, Q)`` reachable by feasible DER dispatch is a convex polygon. Maximising
``cos(phi) P + sin(phi) Q`` for ``N`` evenly spaced directions gives

* the **inner** polygon: the convex hull of the optimal points (every point of it is
  reachable, as a convex combination of feasible dispatches);
* the **outer** polygon: the intersection of the supporting half-planes
  ``cos(phi_k) P + sin(phi_k) Q <= h_k`` (no reachable point lies outside it).

The true region lies between the two; both converge to it as ``N`` grows. The sweep
re-solves one built model with the direction as a mutable objective coefficient; a
``refine`` step may update the model's mutable parameters after a solve (e.g. the
interface losses linearised at the dispatch just found) and have the direction solved
again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo

from stochastic.solve import PersistentSolver, SolveResult

__all__ = [
    "Polygon",
    "SweepResult",
    "convex_hull",
    "outer_polygon",
    "p_range_excess_mw",
    "polygon_area",
    "sweep_directions",
]


@dataclass(frozen=True)
class Polygon:
    """A convex polygon, vertices counter-clockwise (P, Q) [MW, Mvar]."""

    vertices: np.ndarray

    @property
    def area(self) -> float:
        """Area [MW Mvar]."""
        return polygon_area(self.vertices)

    def contains(self, point: np.ndarray, tol: float = 1e-7) -> bool:
        """Whether ``point`` lies in the polygon (boundary included, up to ``tol``)."""
        v = self.vertices
        if len(v) < 3:
            return bool(len(v) and np.min(np.linalg.norm(v - point, axis=1)) <= tol)
        edge = np.roll(v, -1, axis=0) - v
        rel = point - v
        cross = edge[:, 0] * rel[:, 1] - edge[:, 1] * rel[:, 0]
        length = np.linalg.norm(edge, axis=1)
        real = length > 1e-12  # repeated vertices (e.g. of an outer polygon) have no side
        return bool(np.all(cross[real] >= -tol * np.maximum(length[real], 1.0)))


def p_range_excess_mw(region_p_mw: np.ndarray, dp_mw: np.ndarray) -> np.ndarray:
    """How far active powers lie beyond the P range of a region's vertices [MW].

    Parameters
    ----------
    region_p_mw : ndarray (vertex,) [MW]
        P of the vertices (``nan``: padding; all ``nan``: an empty region).
    dp_mw : ndarray [MW]
        The powers (``nan``: none).

    Returns
    -------
    ndarray, shaped like ``dp_mw`` [MW]
        0 within the range, the distance to it outside; ``|dp|`` for an empty region;
        ``nan`` where ``dp_mw`` is.
    """
    dp = np.asarray(dp_mw, dtype=float)
    v = np.asarray(region_p_mw, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return np.abs(dp)
    return np.maximum(np.maximum(v.min() - dp, dp - v.max()), 0.0)


def polygon_area(vertices: np.ndarray) -> float:
    """Shoelace area of a simple polygon given in order [MW Mvar] (0 below 3 vertices)."""
    v = np.asarray(vertices, dtype=float)
    if len(v) < 3:
        return 0.0
    x, y = v[:, 0], v[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def convex_hull(points: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """Convex hull (monotone chain), counter-clockwise, without collinear points.

    Degenerate sets give one point or the two ends of a segment.
    """
    pts = np.unique(np.round(np.asarray(points, dtype=float), 9), axis=0)
    if len(pts) <= 2:
        return pts

    def cross(o: tuple, a: tuple, b: tuple) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    def chain(seq: list) -> list:
        out: list = []
        for p in seq:
            while len(out) >= 2 and cross(out[-2], out[-1], p) <= tol:
                out.pop()
            out.append(p)
        return out

    order = sorted(map(tuple, pts))
    lower, upper = chain(order), chain(order[::-1])
    hull = np.array(lower[:-1] + upper[:-1])
    return hull if len(hull) else pts[:1]


def outer_polygon(directions_rad: np.ndarray, support: np.ndarray) -> np.ndarray:
    """Vertices of ``{x : d_k . x <= h_k for all k}`` for supporting lines of a convex set.

    ``directions_rad`` must be sorted and spaced by less than pi (e.g. evenly over the
    circle); the polygon's vertices are then the intersections of consecutive lines.
    """
    phi = np.asarray(directions_rad, dtype=float)
    h = np.asarray(support, dtype=float)
    if len(phi) < 3:
        raise ValueError(f"an outer polygon needs at least 3 directions, got {len(phi)}")
    verts = []
    for k in range(len(phi)):
        j = (k + 1) % len(phi)
        a = np.array([[np.cos(phi[k]), np.sin(phi[k])], [np.cos(phi[j]), np.sin(phi[j])]])
        verts.append(np.linalg.solve(a, np.array([h[k], h[j]])))
    return np.array(verts)


@dataclass(frozen=True)
class SweepResult:
    """A direction sweep of an LP's interface powers.

    Attributes
    ----------
    directions_rad : ndarray (N,)
    support_mw_mvar : ndarray (N,)
        ``h_k = max cos(phi_k) P + sin(phi_k) Q`` [MW].
    points_mw_mvar : ndarray (N, 2)
        The optimal ``(P, Q)`` of each direction.
    inner, outer : Polygon
    solutions : list
        What ``record`` returned after each solve (e.g. the DER dispatch).
    solver_seconds : float [s]
    """

    directions_rad: np.ndarray
    support_mw_mvar: np.ndarray
    points_mw_mvar: np.ndarray
    inner: Polygon
    outer: Polygon
    solutions: list
    solver_seconds: float


def sweep_directions(
    model: pyo.ConcreteModel,
    p_expr,
    q_expr,
    n_directions: int,
    record=None,
    solver: PersistentSolver | None = None,
    refine=None,
    max_refinements: int = 0,
) -> SweepResult:
    """Sweep ``max cos(phi) P + sin(phi) Q`` over ``n_directions`` evenly spaced angles.

    Parameters
    ----------
    model : pyomo ConcreteModel
        The feasible set; any objective it has is deactivated and a sweep objective
        (``flex_sweep_objective``, with mutable direction coefficients) added.
    p_expr, q_expr : pyomo linear expressions
        Interface active and reactive power [MW], [Mvar].
    n_directions : int
        At least 3.
    record : callable, optional
        Called after each solve; its return values are kept in ``solutions``.
    solver : PersistentSolver, optional
        Built on ``model`` after the sweep objective was added (made here if missing).
    refine : callable, optional
        ``refine(solver)`` is called after each solve (before ``record``); returns
        ``True`` when it changed mutable parameters or variable bounds of the model
        (through ``solver``), so that the direction is solved again (at most
        ``max_refinements`` times per direction).
    max_refinements : int
        Re-solves per direction that ``refine`` may ask for.

    Raises
    ------
    stochastic.solve.InfeasibleError
        When the model has no feasible point (the region is empty).
    """
    if n_directions < 3:
        raise ValueError(f"--directions must be at least 3, got {n_directions}")
    for obj in model.component_data_objects(pyo.Objective, active=True):
        obj.deactivate()
    model.flex_cos = pyo.Param(mutable=True, initialize=1.0)
    model.flex_sin = pyo.Param(mutable=True, initialize=0.0)
    model.flex_sweep_objective = pyo.Objective(
        expr=model.flex_cos * p_expr + model.flex_sin * q_expr, sense=pyo.maximize
    )
    solver = solver or PersistentSolver(model)
    phi = 2.0 * np.pi * np.arange(n_directions) / n_directions
    points, support, solutions = [], [], []
    seconds = 0.0
    for angle in phi:
        model.flex_cos.set_value(float(np.cos(angle)))
        model.flex_sin.set_value(float(np.sin(angle)))
        for r in range(max_refinements + 1):
            solver.update_parameters(warm_start=True)
            res: SolveResult = solver.solve()
            seconds += res.solver_seconds
            if refine is None or r == max_refinements or not refine(solver):
                break
        p, q = float(pyo.value(p_expr)), float(pyo.value(q_expr))
        points.append((p, q))
        support.append(np.cos(angle) * p + np.sin(angle) * q)
        solutions.append(record() if record is not None else None)
    pts = np.array(points)
    # with refinements each direction solves its own linearisation: a supporting line
    # must still hold every point found (for one fixed model this changes nothing)
    normals = np.c_[np.cos(phi), np.sin(phi)]
    support = np.maximum(np.array(support), (normals @ pts.T).max(axis=1))
    return SweepResult(
        directions_rad=phi,
        support_mw_mvar=support,
        points_mw_mvar=pts,
        inner=Polygon(convex_hull(pts)),
        outer=Polygon(outer_polygon(phi, np.array(support))),
        solutions=solutions,
        solver_seconds=seconds,
    )
