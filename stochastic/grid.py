"""The two-stage time grid: scenarios, second-stage steps, first-stage periods.

Every block of the two-stage model addresses its rows and columns through one
:class:`StageGrid`: second-stage arrays have the leading shape ``(scenario, time)``,
first-stage arrays ``(period,)`` and carry no scenario index; a first-stage value holds
for every step inside its period (``step_period``). The helpers here turn those shapes
into the flat COO positions that :func:`stochastic.linear.terms` takes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stochastic.linear import Terms, VarArray, terms

__all__ = ["SECOND_STAGE_DIMS", "StageGrid"]

#: leading dimensions of every second-stage array
SECOND_STAGE_DIMS = ("scenario", "time")


@dataclass(frozen=True, eq=False)
class StageGrid:
    """Scenarios, steps and periods of a two-stage model.

    Attributes
    ----------
    n_scenarios : int
    n_steps : int
        Second-stage steps.
    n_periods : int
        First-stage periods.
    step_h : float [h]
        Length of a second-stage step.
    period_h : float [h]
        Length of a first-stage period.
    """

    n_scenarios: int
    n_steps: int
    n_periods: int
    step_h: float
    period_h: float

    def __post_init__(self) -> None:
        if self.n_scenarios < 1 or self.n_periods < 1:
            raise ValueError("a stage grid needs at least one scenario and one period")
        if self.n_steps % self.n_periods:
            raise ValueError(
                f"{self.n_steps} steps do not split into {self.n_periods} equal periods"
            )

    @property
    def steps_per_period(self) -> int:
        return self.n_steps // self.n_periods

    @property
    def step_period(self) -> np.ndarray:
        """Period of every step, shape (time,)."""
        return np.arange(self.n_steps) // self.steps_per_period

    @property
    def shape(self) -> tuple[int, int]:
        """Leading shape of second-stage arrays: (scenario, time)."""
        return (self.n_scenarios, self.n_steps)

    # -- second-stage rows -------------------------------------------------------------
    def rows(self, n: int) -> np.ndarray:
        """Flat positions of a (scenario, time, n) array."""
        return np.arange(self.n_scenarios * self.n_steps * n).reshape(
            self.n_scenarios, self.n_steps, n
        )

    def cost_rows(self, n: int) -> np.ndarray:
        """Row of each (scenario, time) cost seen from a (scenario, time, n) array."""
        flat = np.arange(self.n_scenarios * self.n_steps).reshape(self.n_scenarios, self.n_steps, 1)
        return np.broadcast_to(flat, (self.n_scenarios, self.n_steps, n))

    # -- first-stage columns in second-stage rows -------------------------------------
    def first_cols(self, var: VarArray) -> np.ndarray:
        """Positions of a first-stage (period, n) variable seen from (scenario, time, n)."""
        if var.shape[0] != self.n_periods:
            raise ValueError(
                f"first-stage variable {var.component.name} has {var.shape[0]} periods, "
                f"the grid {self.n_periods}"
            )
        return np.broadcast_to(
            var.index()[self.step_period][None], (self.n_scenarios, self.n_steps, var.shape[1])
        )

    def first_terms(self, var: VarArray, rows: np.ndarray, coef=1.0) -> Terms:
        """Terms of a first-stage (period, n) variable in (scenario, time, n) rows."""
        return terms(var, rows, self.first_cols(var), coef)

    def trajectory_size(self, follow: str) -> int:
        """Number of values that define the followed trajectory of one unit.

        ``ramp``: the knots, the values at the ``n_periods + 1`` period boundaries;
        ``step``: one value per period.
        """
        _check_follow(follow)
        return self.n_periods + 1 if follow == "ramp" else self.n_periods

    def reference_weights(self, follow: str) -> np.ndarray:
        """How the trajectory values become the reference of every step, (time, n_traj).

        Parameters
        ----------
        follow : {"step", "ramp"}
            ``step``: every step takes its period's value (``n_traj = n_periods``).
            ``ramp``: the trajectory is the linear interpolation of the knots, its values
            at the period boundaries (``n_traj = n_periods + 1``); each step takes it at
            its midpoint, which is also the step's mean.
        """
        T, P, k = self.n_steps, self.n_periods, self.steps_per_period
        w = np.zeros((T, self.trajectory_size(follow)))
        if follow == "step":
            w[np.arange(T), self.step_period] = 1.0
            return w
        tau = (np.arange(k) + 0.5) / k
        for p in range(P):
            w[p * k : (p + 1) * k, p] = 1.0 - tau
            w[p * k : (p + 1) * k, p + 1] = tau
        return w

    def energy_weights(self, follow: str) -> np.ndarray:
        """Mean of the reference over each period, (period, n_traj).

        The published schedule of a period is the energy the trajectory delivers in it
        divided by the period's length: ``(K_p + K_{p+1}) / 2`` for ``ramp`` (midpoints
        of equal steps average to the period's midpoint), the value itself for ``step``.
        """
        w = self.reference_weights(follow)
        return w.reshape(self.n_periods, self.steps_per_period, -1).mean(axis=1)

    def edge_weights(self, follow: str) -> np.ndarray:
        """Trajectory at the start and the end of each period, (period, edge, n_traj).

        ``edge`` is (start, end). The trajectory is linear inside a period, so its
        extremes over the period are at these two edges.
        """
        P = self.n_periods
        w = np.zeros((P, 2, self.trajectory_size(follow)))
        p = np.arange(P)
        w[p, 0, p] = 1.0
        w[p, 1, p + 1 if follow == "ramp" else p] = 1.0
        return w

    def reference_terms(
        self, var: VarArray, rows: np.ndarray, weights: np.ndarray, coef=1.0
    ) -> Terms:
        """Terms of the reference trajectory ``weights @ var`` in (scenario, time, n) rows.

        Parameters
        ----------
        var : VarArray (n_traj, n)
        rows : ndarray (scenario, time, n)
        weights : ndarray (time, period)
            From :meth:`reference_weights` (or any (time, n_traj) map).
        coef : float or ndarray broadcasting to (n,)
        """
        t, p = np.nonzero(weights)
        n = var.shape[1]
        coefs = weights[t, p][None, :, None] * np.broadcast_to(np.asarray(coef, float), (n,))
        S = self.n_scenarios
        return terms(
            var,
            rows[:, t, :],
            np.broadcast_to(var.index()[p][None], (S, len(t), n)),
            np.broadcast_to(coefs, (S, len(t), n)),
        )

    def period_rows(self, n: int) -> np.ndarray:
        """Flat positions of a (period, n) array."""
        return np.arange(self.n_periods * n).reshape(self.n_periods, n)


def _check_follow(follow: str) -> None:
    if follow not in ("step", "ramp"):
        raise ValueError(f"follow must be 'step' or 'ramp', got {follow!r}")
