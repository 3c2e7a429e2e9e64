"""Solving Pyomo models with HiGHS through Pyomo's persistent ``contrib.solver`` interface.

The model is handed to the solver once (``set_instance``: Pyomo translates it into a
HiGHS model); later solves after a change of mutable parameters only push the changed
numbers (``update_parameters``) and warm-start HiGHS. Translation and solver time are
timed separately.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass

import pyomo.environ as pyo  # noqa: F401  (registers Pyomo components before contrib.solver)
from pyomo.contrib.solver.common.factory import SolverFactory
from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition

__all__ = ["InfeasibleError", "PersistentSolver", "SolveResult", "SolveStatus", "SolverError"]


class SolveStatus(enum.Enum):
    """Outcome of a solve, independent of the solver's own vocabulary."""

    OPTIMAL = "optimal"
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    LIMIT = "limit"
    ERROR = "error"


class SolverError(RuntimeError):
    """The solver failed or stopped without a usable solution."""


class InfeasibleError(SolverError):
    """The model has no feasible solution."""


@dataclass(frozen=True)
class SolveResult:
    """Typed result of one solve.

    Attributes
    ----------
    status : SolveStatus
    termination : str
        The solver interface's termination condition.
    objective : float
        Objective value (nan when there is no solution).
    translate_seconds : float [s]
        Time to hand the model (or its changes) to HiGHS.
    solver_seconds : float [s]
        Time inside HiGHS.
    n_variables, n_constraints, n_nonzeros : int
        Size of the problem HiGHS received.
    """

    status: SolveStatus
    termination: str
    objective: float
    translate_seconds: float
    solver_seconds: float
    n_variables: int
    n_constraints: int
    n_nonzeros: int


_STATUS = {
    TerminationCondition.convergenceCriteriaSatisfied: SolveStatus.OPTIMAL,
    TerminationCondition.provenInfeasible: SolveStatus.INFEASIBLE,
    TerminationCondition.locallyInfeasible: SolveStatus.INFEASIBLE,
    TerminationCondition.infeasibleOrUnbounded: SolveStatus.INFEASIBLE,
    TerminationCondition.unbounded: SolveStatus.UNBOUNDED,
    TerminationCondition.maxTimeLimit: SolveStatus.LIMIT,
    TerminationCondition.iterationLimit: SolveStatus.LIMIT,
}


class PersistentSolver:
    """HiGHS via ``pyomo.contrib.solver`` (factory name ``highs``), kept across solves.

    Parameters
    ----------
    model : pyomo ConcreteModel
    threads : int or None
        HiGHS threads (``None``: HiGHS default).
    time_limit_s : float or None [s]
    options : dict
        Extra HiGHS options (e.g. ``{"solver": "ipm"}``).
    """

    def __init__(
        self,
        model,
        threads: int | None = 1,
        time_limit_s: float | None = None,
        options: dict | None = None,
    ) -> None:
        self.model = model
        self._solver = SolverFactory("highs")
        cfg = self._solver.config
        cfg.load_solutions = False
        cfg.raise_exception_on_nonoptimal_result = False
        if threads is not None:
            cfg.threads = threads
        if time_limit_s is not None:
            cfg.time_limit = time_limit_s
        cfg.solver_options = {"presolve": "on", **(options or {})}
        # the model is built once; later changes are mutable parameters only
        upd = self._solver.config.auto_updates
        upd.check_for_new_or_removed_constraints = False
        upd.check_for_new_or_removed_vars = False
        upd.check_for_new_or_removed_params = False
        upd.check_for_new_objective = False
        upd.update_constraints = False
        upd.update_vars = False
        upd.update_named_expressions = False
        upd.update_objective = False
        upd.update_parameters = False
        tick = time.perf_counter()
        self._solver.set_instance(model)
        self._pending_translate = time.perf_counter() - tick

    def update_parameters(self, warm_start: bool = True) -> None:
        """Push changed mutable parameter values to HiGHS.

        Parameters
        ----------
        warm_start : bool
            Keep HiGHS's last basis for the next solve (good after small changes such as
            the risk parameters). ``False`` discards it, so the next solve starts with
            presolve; faster after a change of all scenario data (another day).
        """
        tick = time.perf_counter()
        self._solver.update_parameters()
        if not warm_start:
            self._solver._solver_model.clearSolver()
        self._pending_translate += time.perf_counter() - tick

    def solve(self, raise_on_failure: bool = True) -> SolveResult:
        """Solve and load the solution into the Pyomo variables.

        Parameters
        ----------
        raise_on_failure : bool
            Raise :class:`InfeasibleError` / :class:`SolverError` unless optimal.
        """
        tick = time.perf_counter()
        res = self._solver.solve(self.model)
        wall = time.perf_counter() - tick
        status = _STATUS.get(res.termination_condition, SolveStatus.ERROR)
        if status is SolveStatus.OPTIMAL and res.solution_status not in (
            SolutionStatus.optimal,
            SolutionStatus.feasible,
        ):
            status = SolveStatus.ERROR
        timer = res.timing_info.timer
        try:
            solver_s = float(timer.timers["optimize"].total_time)
        except (AttributeError, KeyError, TypeError):
            solver_s = wall
        highs = self._solver._solver_model
        lp = highs.getLp()
        result = SolveResult(
            status=status,
            termination=str(res.termination_condition.name),
            objective=float(res.incumbent_objective)
            if res.incumbent_objective is not None
            else float("nan"),
            translate_seconds=self._pending_translate + max(wall - solver_s, 0.0),
            solver_seconds=solver_s,
            n_variables=int(lp.num_col_),
            n_constraints=int(lp.num_row_),
            n_nonzeros=len(lp.a_matrix_.value_),
        )
        self._pending_translate = 0.0
        if status is SolveStatus.OPTIMAL:
            res.solution_loader.load_vars()
        elif raise_on_failure:
            kind = InfeasibleError if status is SolveStatus.INFEASIBLE else SolverError
            raise kind(
                f"HiGHS stopped with '{result.termination}' ({status.value}); no "
                "optimal solution to report"
            )
        return result
