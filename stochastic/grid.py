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

    def period_rows(self, n: int) -> np.ndarray:
        """Flat positions of a (period, n) array."""
        return np.arange(self.n_periods * n).reshape(self.n_periods, n)
