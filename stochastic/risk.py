"""Risk measure: Conditional Value-at-Risk of the scenario cost (Rockafellar-Uryasev).

``CVaR_alpha[C] = min_eta  eta + E[(C - eta)^+] / (1 - alpha)`` is the expected cost in
the worst ``1 - alpha`` share of probability. The objective of a two-stage problem is
``(1 - beta) E[C] + beta CVaR_alpha[C]``; ``beta = 0`` is risk-neutral.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo

from stochastic.linear import ParamArray, Terms, VarArray, add_param, add_rows, add_var, terms

__all__ = [
    "MIN_TAIL_SCENARIOS",
    "Cvar",
    "CvarTailWarning",
    "add_cvar",
    "check_risk_parameters",
    "check_weights",
    "cvar",
    "cvar_tail_message",
]

#: scenarios the CVaR tail should hold at least, (1 - alpha) * S
MIN_TAIL_SCENARIOS = 3


class CvarTailWarning(UserWarning):
    """The CVaR tail holds fewer than :data:`MIN_TAIL_SCENARIOS` equally weighted scenarios."""


def cvar_tail_message(alpha: float, n_scenarios: int) -> str | None:
    """A warning text when ``(1 - alpha) * n_scenarios < MIN_TAIL_SCENARIOS``, else None.

    With fewer scenarios in the tail the CVaR is (nearly) the worst scenario alone.
    """
    tail = (1.0 - alpha) * n_scenarios
    if tail >= MIN_TAIL_SCENARIOS - 1e-9:
        return None
    need = int(np.ceil(MIN_TAIL_SCENARIOS / (1.0 - alpha) - 1e-9))
    alpha_max = 1 - MIN_TAIL_SCENARIOS / n_scenarios
    other = f"alpha <= {alpha_max:.2f}" if alpha_max > 0 else "beta: 0 (risk-neutral)"
    return (
        f"the CVaR tail holds {tail:.2g} scenario(s) at alpha = {alpha} and {n_scenarios} "
        f"scenarios, so the CVaR rests on the worst scenario alone; use at least {need} "
        f"scenarios or {other}"
    )


def check_risk_parameters(alpha: float, beta: float) -> None:
    """Raise ``ValueError`` unless ``0 < alpha < 1`` and ``0 <= beta <= 1``."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"CVaR confidence level alpha must be in (0, 1), got {alpha}")
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"CVaR weight beta must be in [0, 1], got {beta}")


def check_weights(weights: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """Return scenario weights as floats after checking they are >= 0 and sum to 1."""
    w = np.asarray(weights, dtype=float)
    if w.ndim != 1 or len(w) == 0:
        raise ValueError("scenario weights must be a non-empty 1-D array")
    if (w < 0).any() or not np.isfinite(w).all():
        raise ValueError(f"scenario weights must be finite and non-negative, got {w}")
    if abs(w.sum() - 1.0) > tol:
        raise ValueError(f"scenario weights must sum to 1, they sum to {w.sum():.12g}")
    return w


def cvar(costs: np.ndarray, weights: np.ndarray, alpha: float) -> float:
    """CVaR of a discrete cost distribution, computed by sorting (independent of any LP).

    Parameters
    ----------
    costs : ndarray (scenario,)
    weights : ndarray (scenario,)  summing to 1
    alpha : float in (0, 1)

    Returns
    -------
    float
        Weighted mean of the costs in the upper ``1 - alpha`` tail, splitting the
        scenario at the quantile.
    """
    check_risk_parameters(alpha, 0.0)
    w = check_weights(weights, tol=1e-6)
    order = np.argsort(-np.asarray(costs, dtype=float), kind="stable")
    c, w = np.asarray(costs, dtype=float)[order], w[order]
    tail = 1.0 - alpha
    taken = np.minimum(w, np.maximum(tail - np.concatenate([[0.0], np.cumsum(w)[:-1]]), 0.0))
    return float(np.dot(taken, c) / tail)


@dataclass(frozen=True, eq=False)
class Cvar:
    """Handles of the risk block.

    Attributes
    ----------
    cost : VarArray (scenario,) [EUR]
        Second-stage cost of each scenario.
    eta : VarArray (1,) [EUR]
        Value-at-Risk auxiliary variable.
    excess : VarArray (scenario,) [EUR]
        ``max(cost - eta, 0)``.
    weight, alpha, beta : ParamArray
    efficiency : ParamArray
        Weight of the expected cost added to the objective (keeps every scenario's
        recourse efficient where the CVaR ignores it, e.g. at ``beta = 1``).
    """

    cost: VarArray
    eta: VarArray
    excess: VarArray
    weight: ParamArray
    alpha: ParamArray
    beta: ParamArray
    efficiency: ParamArray

    def objective_terms(self):
        """``(1 - beta + eps) sum_s w_s cost_s + beta (eta + sum_s w_s excess_s / (1 - alpha))``.

        ``eps`` is the efficiency weight. Returns a list of (coefficient expression,
        VarData) pairs.
        """
        a, b, e = self.alpha.data[0], self.beta.data[0], self.efficiency.data[0]
        out = [((1 - b + e) * w, c) for w, c in zip(self.weight.data, self.cost.data, strict=True)]
        out.append((b, self.eta.data[0]))
        out += [
            (b * w / (1 - a), z) for w, z in zip(self.weight.data, self.excess.data, strict=True)
        ]
        return out


def add_cvar(
    block: pyo.Block,
    n_scenarios: int,
    cost_terms: list[Terms],
    weights: np.ndarray,
    alpha: float,
    beta: float,
    n_steps: int = 1,
    efficiency_weight: float = 0.0,
) -> Cvar:
    """Scenario cost definition and CVaR auxiliaries.

    The cost of each (scenario, step) is defined by its own row and the scenario cost
    sums them; short rows keep the LP sparse for the simplex and interior-point solvers.

    Parameters
    ----------
    block : pyomo Block
    n_scenarios : int
    cost_terms : list of Terms
        Second-stage cost [EUR], rows indexing the flat (scenario, step) array.
    weights : ndarray (scenario,)
    alpha, beta : float
        Validated by :func:`check_risk_parameters`.
    n_steps : int
        Number of steps per scenario in the row index of ``cost_terms``.
    efficiency_weight : float
        See :class:`Cvar` (``efficiency``).
    """
    check_risk_parameters(alpha, beta)
    w = check_weights(weights)
    if len(w) != n_scenarios:
        raise ValueError(f"{len(w)} weights for {n_scenarios} scenarios")
    S, T = n_scenarios, n_steps
    step_cost = add_var(block, "step_cost_eur", (S, T), ("scenario", "time"))
    cost = add_var(block, "cost_eur", (S,), ("scenario",))
    eta = add_var(block, "eta_eur", (1,), ("one",))
    excess = add_var(block, "excess_eur", (S,), ("scenario",), 0.0, None)
    st = np.arange(S * T)
    add_rows(
        block,
        "step_cost_definition",
        (S, T),
        ("scenario", "time"),
        [terms(step_cost, st, st, 1.0), *[_negate(t) for t in cost_terms]],
        0.0,
        0.0,
    )
    s = np.arange(S)
    add_rows(
        block,
        "cost_definition",
        (S,),
        ("scenario",),
        [terms(cost, s, s, 1.0), terms(step_cost, st // T, st, -1.0)],
        0.0,
        0.0,
    )
    add_rows(
        block,
        "tail",
        (S,),
        ("scenario",),
        [terms(excess, s, s, 1.0), terms(cost, s, s, -1.0), terms(eta, s, 0, 1.0)],
        0.0,
        None,
    )
    return Cvar(
        cost,
        eta,
        excess,
        add_param(block, "weight", w, ("scenario",)),
        add_param(block, "alpha", np.array([alpha]), ("one",)),
        add_param(block, "beta", np.array([beta]), ("one",)),
        add_param(block, "efficiency_weight", np.array([efficiency_weight]), ("one",)),
    )


def _negate(t: Terms) -> Terms:
    return Terms(t.var, t.row, t.col, -t.coef)
