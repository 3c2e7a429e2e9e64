"""DSO bid validation (hybrid model): robust accepted volumes per DER and period.

LinDistFlow is linear in the buses' net demand, so every feeder limit is a row
``y = H_p d_p + H_q d_q + y0 <= upper`` (:class:`FeederRows`: squared voltages against
their band, branch flows against the apparent-power polygon). A DER at bus ``b`` that
deviates by ``delta`` from its baseline (positive: more injection) moves row ``r`` by
``-H_p[r, b] delta``. For deviations anywhere in the box ``[shift - down, shift + up]``
the worst case of a row is a corner chosen by the signs of its coefficients, so

    max_{s, t in period} y(s, t) - upper + sum_u c_ru shift_u
        + sum_u (c_ru^+ up_u + c_ru^- down_u) <= 0

is linear in the accepted volumes: the validation stays an LP, and any dispatch inside the
accepted volumes is feasible for the feeder in every scenario of the set.

``shift`` is the DSO's own use of the flexibility (to relieve its own congestion in the
baseline); the priority rule orders the DSO's need and the volumes passed to the TSO.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo

from cases.feeders import FeederArrays
from stochastic.linear import add_abs_rows, add_rows, add_var, linear_sum, terms
from stochastic.network import polygon_directions
from stochastic.solve import InfeasibleError, PersistentSolver

__all__ = [
    "FAIRNESS_RULES",
    "PRIORITY_RULES",
    "FeederRows",
    "Validation",
    "feeder_rows",
    "limit_violations",
    "root_w_range",
    "validate_bids",
]

FAIRNESS_RULES = ("proportional", "max_min")
PRIORITY_RULES = ("tso_first", "dso_first")


@dataclass(frozen=True)
class FeederRows:
    """Every LinDistFlow limit of a feeder as ``H_p d_p + H_q d_q + y0 <= upper``.

    ``d_p``, ``d_q`` are the net demands of all buses (root included, it does not enter)
    [MW], [Mvar]; the voltage rows are in pu^2.

    Attributes
    ----------
    h_p, h_q : ndarray (row, bus)
    y0, upper : ndarray (row,)
    kind : ndarray of str (row,)  ``vm_max``, ``vm_min`` or ``flow``
    element : ndarray of int (row,)  bus (voltage rows) or branch (flow rows) position
    root_gain : ndarray (row,), optional
        ``d w_j / d w_root`` of each row's bus (1 for flow rows; default all 1).
    """

    h_p: np.ndarray
    h_q: np.ndarray
    y0: np.ndarray
    upper: np.ndarray
    kind: np.ndarray
    element: np.ndarray
    root_gain: np.ndarray | None = None

    def slack(self, d_p: np.ndarray, d_q: np.ndarray) -> np.ndarray:
        """``y - upper`` (..., row) for net demands (..., bus): > 0 is a violation."""
        return d_p @ self.h_p.T + d_q @ self.h_q.T + self.y0 - self.upper

    @property
    def root_coef(self) -> np.ndarray:
        """(row,): change of each row per unit of the root's squared voltage [pu^2]
        (+1 upper voltage rows, -1 lower ones, 0 flows; times ``root_gain`` behind
        off-nominal transformers): an on-load tap changer moves the whole feeder's
        voltages with its root."""
        sign = np.where(self.kind == "vm_max", 1.0, np.where(self.kind == "vm_min", -1.0, 0.0))
        return sign if self.root_gain is None else sign * self.root_gain


def root_w_range(f: FeederArrays, range_pu: float, margin_pu: float = 0.0) -> tuple[float, float]:
    """Squared root voltages an on-load tap changer can reach, relative to the set-point
    [pu^2]: ``(lo, hi)`` with ``lo <= 0 <= hi`` (both 0 without a tap changer)."""
    if range_pu <= 0:
        return 0.0, 0.0
    v0 = f.v_root_pu
    lo = max(v0 - range_pu, f.vm_min_pu[0] + margin_pu)
    hi = min(v0 + range_pu, f.vm_max_pu[0] - margin_pu)
    return min(lo, v0) ** 2 - v0**2, max(hi, v0) ** 2 - v0**2


def path_matrix(f: FeederArrays) -> np.ndarray:
    """``A[j, k] = 1`` if branch ``k`` (into bus ``k + 1``) lies on the path root -> ``j``."""
    n = f.n_bus
    a = np.zeros((n, n - 1))
    for j in range(1, n):
        b = j
        while b > 0:
            a[j, b - 1] = 1.0
            b = f.parent[b]
    return a


def feeder_rows(
    f: FeederArrays, polygon_sides: int = 8, voltage_margin_pu: float = 0.0
) -> FeederRows:
    """The feeder's LinDistFlow limits in closed form (same model as ``add_lindistflow``).

    ``P = A^T d_p`` (flow of each branch: the net demand below it) and
    ``w_j = g_j v_root^2 - 2 / base sum_k A[j, k] g_j / g_(k+1) (r_k P_k + x_k Q_k)``
    with ``g`` the feeder's :attr:`~cases.feeders.FeederArrays.w_gain` (1 without
    off-nominal transformers).
    """
    a = path_matrix(f)
    base = f.base_mva
    gain = f.w_gain  # d w_j / d w_root
    # a drop on branch k reaches bus j scaled by the ratios between them: gain_j / gain_(k+1)
    a_w = a * gain[:, None] / gain[None, 1:]
    wp = -(2.0 / base) * (a_w * f.branch_r_pu) @ a.T  # (bus, bus)
    wq = -(2.0 / base) * (a_w * f.branch_x_pu) @ a.T
    w0 = f.v_root_pu**2 * gain
    vmin = np.minimum(f.vm_min_pu + voltage_margin_pu, f.vm_max_pu - voltage_margin_pu)
    vmax = f.vm_max_pu - voltage_margin_pu
    bus = np.arange(1, f.n_bus)
    parts_p, parts_q, y0, upper, kind, element = (
        [wp[bus], -wp[bus]],
        [wq[bus], -wq[bus]],
        [],
        [],
        [],
        [],
    )
    y0 += [w0[bus], -w0[bus]]
    upper += [vmax[bus] ** 2, -(np.maximum(vmin[bus], 0.0) ** 2)]
    kind += [np.full(len(bus), "vm_max"), np.full(len(bus), "vm_min")]
    element += [bus, bus]
    root_gain = [gain[bus], gain[bus]]
    rated = np.flatnonzero(np.isfinite(f.branch_rating_mva))
    if len(rated):
        side = np.cos(np.pi / polygon_sides)
        for t in polygon_directions(polygon_sides):
            for sign in (1.0, -1.0):
                parts_p.append(sign * np.cos(t) * a.T[rated])
                parts_q.append(sign * np.sin(t) * a.T[rated])
                y0.append(np.zeros(len(rated)))
                upper.append(f.branch_rating_mva[rated] * side)
                kind.append(np.full(len(rated), "flow"))
                element.append(rated)
                root_gain.append(np.ones(len(rated)))
    return FeederRows(
        h_p=np.concatenate(parts_p),
        h_q=np.concatenate(parts_q),
        y0=np.concatenate(y0),
        upper=np.concatenate(upper),
        kind=np.concatenate(kind),
        element=np.concatenate(element),
        root_gain=np.concatenate(root_gain),
    )


@dataclass(frozen=True)
class Validation:
    """Validated volumes of one feeder's bids.

    Attributes
    ----------
    up_mw, down_mw : ndarray (period, der)
        Accepted volumes passed on (any deviation inside ``[shift - down, shift + up]``
        is feasible for the feeder in every scenario) [MW].
    shift_mw : ndarray (period, der)
        The DSO's own use of the flexibility (deviation from the baseline it needs to
        keep the feeder within limits) [MW].
    root_dw : ndarray (period,)
        Change of the root's squared voltage the DSO sets by its tap changer [pu^2].
    q_mvar : ndarray (period, der)
        Reactive power the DSO sets at each DER's inverter (injection) [Mvar].
    residual : ndarray (period, row)
        Worst violation no available flexibility removes (> 0: the baseline itself is
        infeasible) in the rows' units.
    binding_rows : int
        Rows (per period) that limit the accepted volumes.
    problems_solved : int
    """

    up_mw: np.ndarray
    down_mw: np.ndarray
    shift_mw: np.ndarray
    root_dw: np.ndarray
    q_mvar: np.ndarray
    residual: np.ndarray
    binding_rows: int
    problems_solved: int


@dataclass(frozen=True, eq=False)
class _Problem:
    """What every stage of the validation LP shares: the bids, the rows that a box can
    reach (``pr`` period, ``rr`` row), their constants ``g`` and coefficients ``coef``."""

    rows: FeederRows
    bid_up_mw: np.ndarray
    bid_down_mw: np.ndarray
    coef: np.ndarray
    coef_q: np.ndarray
    q_max_mvar: np.ndarray
    shift_down_max_mw: np.ndarray
    g: np.ndarray
    pr: np.ndarray
    rr: np.ndarray
    fairness: str
    storage: dict | None
    root_range: tuple[float, float]
    tol: float


def _validation_lp(prob: _Problem, stage: list[str], bounds: dict[str, float]) -> tuple:
    """The validation LP optimising ``stage[-1]`` with the earlier stages' optima held."""
    rows, bid_up_mw, bid_down_mw = prob.rows, prob.bid_up_mw, prob.bid_down_mw
    coef, g, pr, rr = prob.coef, prob.g, prob.pr, prob.rr
    fairness, storage, root_range, tol = prob.fairness, prob.storage, prob.root_range, prob.tol
    n_p, n_u = bid_up_mw.shape
    m = pyo.ConcreteModel(name="bid_validation")
    up = add_var(m, "up_mw", (n_p, n_u), ("period", "der"), 0.0, bid_up_mw)
    dn = add_var(m, "down_mw", (n_p, n_u), ("period", "der"), 0.0, bid_down_mw)
    sp = add_var(m, "shift_up_mw", (n_p, n_u), ("period", "der"), 0.0, bid_up_mw)
    sn = add_var(m, "shift_down_mw", (n_p, n_u), ("period", "der"), 0.0, prob.shift_down_max_mw)
    sig = add_var(m, "residual", (len(pr),), ("row",), 0.0)
    tap = add_var(m, "root_w", (n_p,), ("period",), root_range[0], root_range[1])
    q_max = np.broadcast_to(prob.q_max_mvar, (n_p, n_u))
    qv = add_var(m, "q_mvar", (n_p, n_u), ("period", "der"), -q_max, q_max)
    pu = np.arange(n_p * n_u).reshape(n_p, n_u)
    k = np.arange(len(pr))[:, None]
    cols = pu[pr]  # (row, der)
    c = coef[rr]
    add_rows(
        m,
        "robust",
        (len(pr),),
        ("row",),
        [
            terms(sp, k, cols, c),
            terms(sn, k, cols, -c),
            terms(up, k, cols, np.maximum(c, 0.0)),
            terms(dn, k, cols, np.maximum(-c, 0.0)),
            terms(sig, k[:, 0], k[:, 0], -1.0),
            terms(tap, k[:, 0], pr, rows.root_coef[rr]),
            terms(qv, k, cols, prob.coef_q[rr]),
        ],
        None,
        -g[pr, rr],
    )
    idx = np.arange(n_p * n_u).reshape(n_p, n_u)
    if storage is not None:
        _storage_rows(m, sp, sn, storage, n_p, n_u)
    add_rows(
        m,
        "box_up",
        (n_p, n_u),
        ("period", "der"),
        [terms(sp, idx, idx), terms(sn, idx, idx, -1.0), terms(up, idx, idx)],
        None,
        bid_up_mw,
    )
    add_rows(
        m,
        "box_down",
        (n_p, n_u),
        ("period", "der"),
        [terms(sn, idx, idx), terms(sp, idx, idx, -1.0), terms(dn, idx, idx)],
        None,
        bid_down_mw,
    )
    ratio = add_var(m, "ratio", (n_p, 2), ("period", "direction"), 0.0, 1.0)
    scale_up = np.where(bid_up_mw > 0, 1.0 / np.maximum(bid_up_mw, 1e-12), 0.0)
    scale_dn = np.where(bid_down_mw > 0, 1.0 / np.maximum(bid_down_mw, 1e-12), 0.0)
    rp = np.arange(n_p)[:, None] * 2
    # proportional: up = ratio_up * bid_up for every DER (a DER without a bid takes
    # nothing); max_min: every DER gets at least the period's common ratio, then as
    # much as possible
    zero = 0.0
    for name, var, bid, col in (
        ("fair_up", up, bid_up_mw, 0),
        ("fair_down", dn, bid_down_mw, 1),
    ):
        add_rows(
            m,
            name,
            (n_p, n_u),
            ("period", "der"),
            [terms(var, idx, idx), terms(ratio, idx, rp + col, -bid)],
            zero,
            zero if fairness == "proportional" else None,
        )
    volume = [terms(ratio, 0, np.arange(2 * n_p), 1.0)]
    if fairness == "max_min":
        eps = 1e-3 / max(n_u, 1)
        volume += [terms(up, 0, idx, eps * scale_up), terms(dn, 0, idx, eps * scale_dn)]
    need = [terms(sp, 0, idx, 1.0), terms(sn, 0, idx, 1.0)]
    residual = [terms(sig, 0, np.arange(len(pr)), 1.0)]
    exprs = {"residual": residual, "need": need, "volume": volume}
    if stage[-1] == "reactive":
        # the least reactive power that keeps the earlier stages' optima: |q| <= q_abs
        q_abs = add_var(m, "q_abs_mvar", (n_p, n_u), ("period", "der"), 0.0, q_max)
        add_abs_rows(m, "q_abs", q_abs, qv, ("period", "der"))
        exprs["reactive"] = [terms(q_abs, 0, idx, 1.0)]
    _lexicographic(m, exprs, stage[-1], bounds, tol)
    return m, up, dn, sp, sn, sig, tap, qv


def _lexicographic(
    m: pyo.ConcreteModel, exprs: dict, key: str, bounds: dict[str, float], tol: float
) -> None:
    """Objective ``exprs[key]`` (the volume maximised, the others minimised), the
    earlier stages' optima ``bounds`` held within ``tol`` (relative)."""
    m.stage_bounds = pyo.ConstraintList()
    for name, value in bounds.items():
        e = linear_sum(exprs[name])
        if name == "volume":
            m.stage_bounds.add(e >= value - tol * (1.0 + abs(value)))
        else:
            m.stage_bounds.add(e <= value + tol * (1.0 + abs(value)))
    sense = pyo.maximize if key == "volume" else pyo.minimize
    m.objective = pyo.Objective(expr=linear_sum(exprs[key]), sense=sense)


def validate_bids(
    rows: FeederRows,
    base_p_mw: np.ndarray,
    base_q_mvar: np.ndarray,
    step_period: np.ndarray,
    der_bus: np.ndarray,
    bid_up_mw: np.ndarray,
    bid_down_mw: np.ndarray,
    fairness: str = "proportional",
    priority: str = "dso_first",
    storage: dict[str, np.ndarray] | None = None,
    root_range: tuple[float, float] = (0.0, 0.0),
    tol: float = 1e-7,
    volumes: bool = True,
    q_max_mvar: np.ndarray | None = None,
    shift_down_max_mw: np.ndarray | None = None,
) -> Validation:
    """The largest accepted volumes such that any dispatch inside them is feasible.

    Parameters
    ----------
    rows : FeederRows
    base_p_mw, base_q_mvar : ndarray (scenario, time, bus)
        Net demand of every bus with each DER at its baseline (its bid schedule) [MW].
    step_period : ndarray of int (time,)
        First-stage period of each step.
    der_bus : ndarray of int (der,)
        Bus position of each DER of the feeder (not the root).
    bid_up_mw, bid_down_mw : ndarray (period, der)
        Offered volumes: more / less injection than the baseline [MW].
    fairness : {"proportional", "max_min"}
        ``proportional``: one acceptance ratio per period and direction for every DER;
        ``max_min``: the smallest ratio of any DER is maximised first, then the volume.
    priority : {"dso_first", "tso_first"}
        Whether the DSO's own need (``shift``) or the volume passed to the TSO is settled
        first when both need the same flexibility.
    storage : dict, optional
        Energy limits of the DER that store energy, arrays (der,) with ``nan`` for the
        others: ``e_init_mwh``, ``e_max_mwh``, ``e_end_min_mwh``, ``efficiency`` (one
        way), and the scalar ``period_h``: the DSO's own shifts of a storage unit keep its
        energy within ``[0, e_max]`` and end at least at ``e_end_min``.
    root_range : (float, float)
        On-load tap changer: the DSO sets the root's squared voltage per period within
        this range of its set-point [pu^2] (:func:`root_w_range`); (0, 0): held.
    volumes : bool
        ``False``: settle only the DSO's own need (a local market for its congestion);
        the accepted volumes returned are then not maximised.
    q_max_mvar : ndarray (der,), optional
        Reactive power each DER's inverter can inject or absorb, which the DSO sets per
        period for its voltages [Mvar] (default: none). A last stage keeps the earlier
        stages' optima with the least total reactive power.
    shift_down_max_mw : ndarray (period, der), optional
        The most the DSO's own use may lower a DER's injection in a period, the same in
        every scenario-step (default ``bid_down_mw``). For PV the least availability of the
        period: a cap deeper than the PV's output in some scenario would not lower its
        injection by the full amount there.
    """
    _check_arguments(fairness, priority, der_bus)
    n_p = bid_up_mw.shape[0]
    g = _worst_slack(rows, base_p_mw, base_q_mvar, step_period, n_p)
    coef = -rows.h_p[:, der_bus]  # (row, der): row change per MW of more injection
    coef_q = -rows.h_q[:, der_bus]  # per Mvar of reactive injection
    q_max = np.zeros(len(der_bus)) if q_max_mvar is None else np.asarray(q_max_mvar, float)
    cap = np.abs(coef) @ np.maximum(bid_up_mw, bid_down_mw).T  # (row, period)
    cap = cap + (np.abs(coef_q) @ q_max)[:, None]
    reach_root = np.abs(rows.root_coef) * max(abs(root_range[0]), abs(root_range[1]))
    relevant = g + cap.T + reach_root > -tol  # rows some box (or tap) could reach
    pr, rr = np.nonzero(relevant)

    shift_down_max = bid_down_mw if shift_down_max_mw is None else shift_down_max_mw
    prob = _Problem(
        rows,
        bid_up_mw,
        bid_down_mw,
        coef,
        coef_q,
        q_max,
        np.minimum(shift_down_max, bid_down_mw),
        g,
        pr,
        rr,
        fairness,
        storage,
        root_range,
        tol,
    )
    order = (
        ["residual", "need", "volume"]
        if priority == "dso_first"
        else ["residual", "volume", "need"]
    )
    if not volumes:
        order = ["residual", "need"]
    if np.any(q_max > 0):
        order.append("reactive")  # reactive power only where a voltage needs it
    return _outcome(prob, _solve_stages(prob, order), len(order))


def _solve_stages(prob: _Problem, order: list[str]) -> tuple:
    """The variables of the last stage solved, each stage holding the earlier optima. A
    last ``reactive`` stage that HiGHS finds infeasible (the earlier optima held within
    their tolerance leave it no room) keeps the stage before it: its reactive power
    serves as well."""
    bounds: dict[str, float] = {}
    variables: list = []
    for i, key in enumerate(order):
        m, *stage_vars = _validation_lp(prob, order[: i + 1], bounds)
        try:
            res = PersistentSolver(m).solve()
        except InfeasibleError:
            if key != "reactive":
                raise
            break
        variables = stage_vars
        bounds[key] = float(res.objective)
    return tuple(variables)


def _check_arguments(fairness: str, priority: str, der_bus: np.ndarray) -> None:
    """Raise ``ValueError`` for an unknown rule or a DER on the feeder's root."""
    if fairness not in FAIRNESS_RULES:
        raise ValueError(f"fairness must be one of {FAIRNESS_RULES}, got {fairness!r}")
    if priority not in PRIORITY_RULES:
        raise ValueError(f"priority must be one of {PRIORITY_RULES}, got {priority!r}")
    if (der_bus <= 0).any():
        raise ValueError("a DER on the feeder's root bus cannot be validated")


def _worst_slack(
    rows: FeederRows, base_p_mw: np.ndarray, base_q_mvar: np.ndarray, step_period, n_p: int
) -> np.ndarray:
    """(period, row): each limit's largest ``y - upper`` over the period's scenario-steps
    with the DER at their baseline (``-inf`` for a period without steps)."""
    slack = rows.slack(base_p_mw, base_q_mvar)  # (S, T, row)
    g = np.full((n_p, slack.shape[-1]), -np.inf)
    for p in range(n_p):
        sel = step_period == p
        if sel.any():
            g[p] = slack[:, sel].max(axis=(0, 1))
    return g


def _outcome(prob: _Problem, variables: tuple, n_solves: int) -> Validation:
    """The solved validation LP as a :class:`Validation` (binding rows counted)."""
    up, dn, sp, sn, sig, tap, qv = variables
    rows, coef, pr, rr = prob.rows, prob.coef, prob.pr, prob.rr
    n_p = prob.bid_up_mw.shape[0]
    up_v, dn_v = np.maximum(up.values(), 0.0), np.maximum(dn.values(), 0.0)
    shift = sp.values() - sn.values()
    q = np.nan_to_num(qv.values(), nan=0.0)  # an inverter no row reaches stays at zero
    residual = np.zeros((n_p, len(rows.upper)))
    residual[pr, rr] = sig.values()
    c = coef[rr]
    worst = (
        prob.g[pr, rr]
        + rows.root_coef[rr] * tap.values()[pr]
        + np.sum(c * shift[pr], axis=1)
        + np.sum(prob.coef_q[rr] * q[pr], axis=1)
        + np.sum(np.maximum(c, 0.0) * up_v[pr] + np.maximum(-c, 0.0) * dn_v[pr], axis=1)
        - residual[pr, rr]
    )
    return Validation(
        up_mw=up_v,
        down_mw=dn_v,
        shift_mw=shift,
        root_dw=np.nan_to_num(tap.values(), nan=0.0),  # a tap no row reaches stays put
        q_mvar=q,
        residual=residual,
        binding_rows=int(np.sum(worst > -1e-6)),
        problems_solved=n_solves,
    )


def _storage_rows(m, sp, sn, storage: dict, n_p: int, n_u: int) -> None:
    """Energy of storage units under the DSO's shifts: within [0, e_max] after every
    period, at least ``e_end_min`` at the end (discharge at 1/eff, charge at eff)."""
    units = np.flatnonzero(np.isfinite(storage["e_init_mwh"]))
    if not len(units):
        return
    h = float(storage["period_h"])
    eff = storage["efficiency"][units]
    e0 = storage["e_init_mwh"][units]
    rows = np.arange(n_p * len(units)).reshape(n_p, len(units))
    # energy after period p: e0 - h sum_{q <= p} (sp_q / eff - sn_q * eff)
    r, q, j = np.nonzero(np.tril(np.ones((n_p, n_p)))[:, :, None] * np.ones(len(units)))
    cols = q * n_u + units[j]
    row = rows[r, j]
    body = [terms(sp, row, cols, -h / eff[j]), terms(sn, row, cols, h * eff[j])]
    lo = np.broadcast_to(-e0, (n_p, len(units))).copy()
    lo[-1] = np.maximum(storage["e_end_min_mwh"][units], 0.0) - e0
    hi = np.broadcast_to(storage["e_max_mwh"][units] - e0, (n_p, len(units)))
    add_rows(m, "storage_energy", (n_p, len(units)), ("period", "storage"), body, lo, hi)


def limit_violations(
    f: FeederArrays,
    p_mw: np.ndarray,
    q_mvar: np.ndarray,
    vm_pu: np.ndarray,
    polygon_sides: int = 8,
    tol: float = 1e-6,
) -> dict[str, float]:
    """How far a feeder's LinDistFlow state breaks its limits (no margin).

    Parameters
    ----------
    p_mw, q_mvar : ndarray (scenario, time, branch)
    vm_pu : ndarray (scenario, time, bus)

    Returns
    -------
    dict
        ``steps``: (scenario, time) pairs with any violation; ``worst_vm_pu``: largest
        voltage excursion outside the band [pu]; ``worst_flow_mva``: largest excess of a
        branch over its apparent-power polygon [MVA].
    """
    vm = vm_pu[..., 1:]
    dv = np.maximum(np.maximum(vm - f.vm_max_pu[1:], f.vm_min_pu[1:] - vm), 0.0)
    rated = np.flatnonzero(np.isfinite(f.branch_rating_mva))
    excess = np.zeros(p_mw.shape[:2])
    if len(rated):
        t = polygon_directions(polygon_sides)
        proj = np.abs(
            p_mw[..., rated, None] * np.cos(t) + q_mvar[..., rated, None] * np.sin(t)
        ).max(axis=-1)
        excess = np.maximum(proj - f.branch_rating_mva[rated] * np.cos(np.pi / polygon_sides), 0.0)
        excess = excess.max(axis=-1)
    worst_v = dv.max(axis=-1) if dv.size else np.zeros(p_mw.shape[:2])
    bad = (worst_v > tol) | (excess > tol)
    return {
        "steps": int(bad.sum()),
        "worst_vm_pu": float(worst_v.max()) if worst_v.size else 0.0,
        "worst_flow_mva": float(excess.max()) if np.size(excess) else 0.0,
    }
