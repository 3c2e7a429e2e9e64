"""Network constraint blocks: DC power flow (transmission) and LinDistFlow (radial feeders).

Both blocks are written over a leading *step* shape (for instance ``(scenario, time)``,
or ``(1,)`` for a single snapshot), so one function serves the deterministic single-period
OPF and the two-stage stochastic model. Injections from other blocks (generators, DER,
interfaces, load shedding) are passed in as COO :class:`~stochastic.linear.Terms` against
the block's bus-balance rows; demand is the right-hand side.

Units: power in MW / Mvar, angles in rad, squared voltage magnitude ``w`` in pu^2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo

from cases.feeders import FeederArrays
from cases.transmission import TransmissionArrays
from stochastic.linear import ParamArray, RowArray, Terms, VarArray, add_rows, add_var, terms

__all__ = [
    "DcNetwork",
    "LinDistFlow",
    "add_dc_network",
    "add_lindistflow",
    "dc_shift_injection_mw",
    "polygon_directions",
    "root_branches",
    "w_limits",
]


@dataclass(frozen=True, eq=False)
class DcNetwork:
    """Handles of a DC network block.

    Attributes
    ----------
    theta : VarArray  (*steps, bus) [rad * base_mva]
        Voltage angle times the power base (keeps coefficients near the per-unit
        susceptances); :meth:`angles_rad` gives radians.
    balance : RowArray  (*steps, bus)
    limited : ndarray of int
        Branches with a finite rating (rows of ``flow_limit``).
    """

    theta: VarArray
    balance: RowArray
    limited: np.ndarray

    def angles_rad(self, arr: TransmissionArrays) -> np.ndarray:
        """Bus voltage angles (*steps, bus) [rad] at the current solution."""
        return self.theta.values() / arr.base_mva

    def flows_mw(self, arr: TransmissionArrays) -> np.ndarray:
        """Branch flows (*steps, branch) [MW] at the current solution."""
        th = self.angles_rad(arr)
        return (
            arr.base_mva
            * arr.branch_b_pu
            * (th[..., arr.branch_from] - th[..., arr.branch_to] - arr.branch_shift_rad)
        )


def dc_shift_injection_mw(arr: TransmissionArrays) -> np.ndarray:
    """Constant bus injections (bus,) [MW] caused by phase-shifting transformers.

    Add it to the demand to get the right-hand side of the DC bus balance.
    """
    flow_shift = arr.base_mva * arr.branch_b_pu * arr.branch_shift_rad
    out = np.zeros(arr.n_bus)
    np.add.at(out, arr.branch_from, flow_shift)
    np.add.at(out, arr.branch_to, -flow_shift)
    return -out


def add_dc_network(
    block: pyo.Block,
    arr: TransmissionArrays,
    steps: tuple[int, ...],
    step_dims: tuple[str, ...],
    injections: list[Terms],
    rhs_mw: ParamArray | np.ndarray,
) -> DcNetwork:
    """DC power flow with line limits over ``steps``.

    Parameters
    ----------
    block : pyomo Block
        Receives ``theta``, ``balance`` and ``flow_limit``.
    arr : TransmissionArrays
    steps, step_dims : tuple
        Leading shape and names.
    injections : list of Terms
        Power injected at buses [MW], rows indexing the flat ``(*steps, bus)`` array.
    rhs_mw : ParamArray or ndarray, shape (*steps, bus) [MW]
        Demand plus :func:`dc_shift_injection_mw`.
    """
    n_steps = int(np.prod(steps, dtype=int))
    nb = arr.n_bus
    lb = np.full((*steps, nb), -np.inf)
    ub = np.full((*steps, nb), np.inf)
    lb[..., arr.ref_bus] = 0.0
    ub[..., arr.ref_bus] = 0.0
    theta = add_var(block, "theta", (*steps, nb), (*step_dims, "bus"), lb, ub)
    th_idx = theta.index().reshape(n_steps, nb)
    bal_idx = np.arange(n_steps * nb).reshape(n_steps, nb)
    coef = arr.branch_b_pu  # MW per (rad * base_mva)
    f, t = arr.branch_from, arr.branch_to
    # bus balance: injections - outflow = rhs, outflow(f) = +flow, outflow(t) = -flow
    flow_terms = [
        terms(theta, bal_idx[:, f], th_idx[:, f], -coef),
        terms(theta, bal_idx[:, f], th_idx[:, t], coef),
        terms(theta, bal_idx[:, t], th_idx[:, f], coef),
        terms(theta, bal_idx[:, t], th_idx[:, t], -coef),
    ]
    balance = add_rows(
        block,
        "balance",
        (*steps, nb),
        (*step_dims, "bus"),
        [*injections, *flow_terms],
        rhs_mw,
        rhs_mw,
    )
    limited = np.flatnonzero(np.isfinite(arr.branch_rating_mw))
    if len(limited):
        nl = len(limited)
        row = np.arange(n_steps * nl).reshape(n_steps, nl)
        fl, tl, cl = f[limited], t[limited], coef[limited]
        shift = arr.base_mva * cl * arr.branch_shift_rad[limited]
        rating = arr.branch_rating_mw[limited]
        add_rows(
            block,
            "flow_limit",
            (*steps, nl),
            (*step_dims, "branch_limited"),
            [terms(theta, row, th_idx[:, fl], cl), terms(theta, row, th_idx[:, tl], -cl)],
            np.broadcast_to(-rating + shift, (*steps, nl)),
            np.broadcast_to(rating + shift, (*steps, nl)),
        )
    return DcNetwork(theta, balance, limited)


def root_branches(f: FeederArrays) -> np.ndarray:
    """Branches leaving the root bus (their flows sum to the interface power)."""
    return np.flatnonzero(f.parent[1:] == 0)


def polygon_directions(sides: int) -> np.ndarray:
    """Directions ``t_k = 2 pi k / sides`` for ``k < sides / 2`` (each row is two-sided)."""
    if sides < 4 or sides % 2:
        raise ValueError(f"polygon_sides must be an even number >= 4, got {sides}")
    return 2.0 * np.pi * np.arange(sides // 2) / sides


@dataclass(frozen=True, eq=False)
class LinDistFlow:
    """Handles of a LinDistFlow block.

    Attributes
    ----------
    p_mw, q_mvar : VarArray  (*steps, branch)
        Flow from parent to child at the parent end.
    w : VarArray  (*steps, bus)
        Squared voltage magnitude in thousandths [1e-3 pu^2] (for numerical scaling);
        :meth:`vm_pu` gives magnitudes.
    p_balance, q_balance : RowArray  (*steps, bus - 1)
        Balance rows of every non-root bus (row ``j - 1`` for bus ``j``).
    limited : ndarray of int
        Branches with apparent-power polygon rows.
    """

    p_mw: VarArray
    q_mvar: VarArray
    w: VarArray
    p_balance: RowArray
    q_balance: RowArray
    limited: np.ndarray

    def vm_pu(self) -> np.ndarray:
        """Voltage magnitudes (*steps, bus) [pu] at the current solution."""
        return np.sqrt(np.maximum(self.w.values() / W_SCALE, 0.0))


#: the LinDistFlow voltage variable is ``W_SCALE * |V|^2``
W_SCALE = 1000.0


def w_limits(
    f: FeederArrays,
    voltage_margin_pu: float = 0.0,
    offset_pu: np.ndarray | float = 0.0,
    root_range_pu: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of the LinDistFlow voltage variable ``w`` [1e-3 pu^2], shaped like ``offset_pu``.

    ``(vmin + margin - offset)^2 <= w <= (vmax - margin - offset)^2`` at every bus but the
    root, which is held at its set-point, or, with an on-load tap changer
    (``root_range_pu`` > 0), moves within ``root_range_pu`` of it and the root's band.
    ``offset_pu`` (broadcast against (bus,)) is an estimate of ``V_AC - V_linear``: the
    linear voltages are kept where the AC ones are within the limits.
    """
    off = np.asarray(offset_pu, dtype=float)
    vmin = np.minimum(f.vm_min_pu + voltage_margin_pu, f.vm_max_pu - voltage_margin_pu) - off
    vmax = f.vm_max_pu - voltage_margin_pu - off
    vmin = np.minimum(vmin, vmax)
    lo = W_SCALE * np.maximum(vmin, 0.0) ** 2
    hi = W_SCALE * np.maximum(vmax, 0.0) ** 2
    lo, hi = np.broadcast_arrays(lo, hi)
    lo, hi = lo.copy(), hi.copy()
    v0 = f.v_root_pu
    if root_range_pu > 0:
        r_lo = max(v0 - root_range_pu, float(np.min(np.atleast_1d(vmin)[..., 0])))
        r_hi = min(v0 + root_range_pu, float(np.max(np.atleast_1d(vmax)[..., 0])))
        lo[..., 0] = W_SCALE * min(r_lo, v0) ** 2
        hi[..., 0] = W_SCALE * max(r_hi, v0) ** 2
    else:
        lo[..., 0] = hi[..., 0] = W_SCALE * v0**2
    return lo, hi


def _apparent_power_rows(
    block, p, q, p_idx, q_idx, rating: np.ndarray, steps, step_dims, polygon_sides: int
) -> np.ndarray:
    """Inscribed-polygon rows ``|cos(t) P + sin(t) Q| <= S cos(pi / sides)`` of the
    branches with a finite rating; returns those branches."""
    limited = np.flatnonzero(np.isfinite(rating))
    if len(limited):
        n_steps = p_idx.shape[0]
        ang = polygon_directions(polygon_sides)
        nl, na = len(limited), len(ang)
        prow = np.arange(n_steps * nl * na).reshape(n_steps, nl, na)
        cap = rating[limited][:, None] * np.cos(np.pi / polygon_sides)
        add_rows(
            block,
            "apparent_power",
            (*steps, nl, na),
            (*step_dims, "branch_limited", "side"),
            [
                terms(p, prow, p_idx[:, limited][:, :, None], np.cos(ang)[None, None, :]),
                terms(q, prow, q_idx[:, limited][:, :, None], np.sin(ang)[None, None, :]),
            ],
            np.broadcast_to(-cap, (*steps, nl, na)),
            np.broadcast_to(cap, (*steps, nl, na)),
        )
    return limited


def add_lindistflow(
    block: pyo.Block,
    f: FeederArrays,
    steps: tuple[int, ...],
    step_dims: tuple[str, ...],
    p_injections: list[Terms],
    q_injections: list[Terms],
    p_rhs_mw: ParamArray | np.ndarray,
    q_rhs_mvar: ParamArray | np.ndarray,
    *,
    polygon_sides: int = 8,
    voltage_margin_pu: float = 0.0,
    flow_bound_mva: float = np.inf,
    w_bounds: tuple[ParamArray, ParamArray] | None = None,
) -> LinDistFlow:
    """LinDistFlow (linearised branch flow, losses neglected) for one radial feeder.

    ``P_k = sum(P_children) + demand_j - injection_j``, same for Q, and
    ``w_j = w_parent / m_k^2 - 2 (r_k P_k + x_k Q_k) / base`` (``m_k``: the branch's
    off-nominal ratio, 1 but for transformers with a tap or off-nominal rated voltages) with
    ``(vmin + margin)^2 <= w_j <= (vmax - margin)^2`` and ``w_root = v_root^2``.
    Branch apparent power is limited by an inscribed polygon with ``polygon_sides``
    sides: ``|cos(t) P + sin(t) Q| <= S cos(pi / sides)``.

    Parameters
    ----------
    block : pyomo Block
    f : FeederArrays
    steps, step_dims : tuple
    p_injections, q_injections : list of Terms
        Injections [MW], [Mvar] at non-root buses; rows index the flat
        ``(*steps, bus - 1)`` array (bus ``j`` is row ``j - 1``).
    p_rhs_mw, q_rhs_mvar : ParamArray or ndarray, shape (*steps, bus - 1)
        Fixed net demand at the non-root buses.
    polygon_sides : int
    voltage_margin_pu : float [pu]
        Tightening of the voltage band on both sides.
    flow_bound_mva : float [MVA]
        Upper bound on any branch flow implied by the feeder's demand and DER; polygon
        rows are only written for branches rated below it (others cannot bind).
    w_bounds : (ParamArray or ndarray, ParamArray or ndarray), optional
        Bounds of ``w`` (*steps, bus) [1e-3 pu^2] instead of :func:`w_limits` (mutable
        ones, e.g. for a correction against an AC power flow; ``±inf``: unbounded).
    """
    n_steps = int(np.prod(steps, dtype=int))
    nbr = f.n_branch
    base = f.base_mva
    rating = np.where(f.branch_rating_mva < flow_bound_mva, f.branch_rating_mva, np.inf)
    p, q = (
        add_var(
            block,
            name,
            (*steps, nbr),
            (*step_dims, "branch"),
            np.broadcast_to(-rating, (*steps, nbr)),
            np.broadcast_to(rating, (*steps, nbr)),
        )
        for name in ("p_mw", "q_mvar")
    )
    if w_bounds is None:
        wlo, whi = w_limits(f, voltage_margin_pu)
        w_bounds = (
            np.broadcast_to(wlo, (*steps, f.n_bus)),
            np.broadcast_to(whi, (*steps, f.n_bus)),
        )
    w = add_var(block, "w", (*steps, f.n_bus), (*step_dims, "bus"), *w_bounds)
    p_idx = p.index().reshape(n_steps, nbr)
    q_idx = q.index().reshape(n_steps, nbr)
    w_idx = w.index().reshape(n_steps, f.n_bus)
    rows = np.arange(n_steps * nbr).reshape(n_steps, nbr)
    child = np.arange(1, f.n_bus)
    par = f.parent[1:]
    inner = par >= 1
    # balance at bus j (row j-1): P_(j-1) - sum_children P_(c-1) + injection = demand
    own_p = terms(p, rows, p_idx, 1.0)
    kids_p = terms(p, rows[:, par[inner] - 1], p_idx[:, child[inner] - 1], -1.0)
    own_q = terms(q, rows, q_idx, 1.0)
    kids_q = terms(q, rows[:, par[inner] - 1], q_idx[:, child[inner] - 1], -1.0)
    p_bal, q_bal = (
        add_rows(block, name, (*steps, nbr), (*step_dims, "bus_nonroot"), rows_, rhs, rhs)
        for name, rows_, rhs in (
            ("p_balance", [own_p, kids_p, *p_injections], p_rhs_mw),
            ("q_balance", [own_q, kids_q, *q_injections], q_rhs_mvar),
        )
    )
    # voltage drop along branch k (child j = k + 1)
    drop = [
        terms(w, rows, w_idx[:, child], 1.0),
        terms(w, rows, w_idx[:, par], -1.0 / f.branch_ratio**2),
        terms(p, rows, p_idx, W_SCALE * 2.0 * f.branch_r_pu / base),
        terms(q, rows, q_idx, W_SCALE * 2.0 * f.branch_x_pu / base),
    ]
    add_rows(block, "voltage_drop", (*steps, nbr), (*step_dims, "branch"), drop, 0.0, 0.0)
    limited = _apparent_power_rows(
        block, p, q, p_idx, q_idx, rating, steps, step_dims, polygon_sides
    )
    return LinDistFlow(p, q, w, p_bal, q_bal, limited)
