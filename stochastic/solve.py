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

import numpy as np
import pyomo.environ as pyo  # noqa: F401  (registers Pyomo components before contrib.solver)
from pyomo.contrib.solver.common.factory import SolverFactory
from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition
from pyomo.contrib.solver.solvers import highs as _highs
from pyomo.core.expr.numeric_expr import LinearExpression, MonomialTermExpression
from pyomo.core.expr.numvalue import is_constant, value

from cases.study import StudyConfig
from stochastic.linear import RowArray, VarArray
from stochastic.status import SOLVED_STATUSES

__all__ = [
    "SOLVED_STATUSES",
    "BatchedHighs",
    "InfeasibleError",
    "PersistentSolver",
    "SolveResult",
    "SolveStatus",
    "SolverError",
    "highs_settings",
]


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
    mip_gap : float [-]
        Relative gap between the solution and HiGHS's bound when the model has integer
        variables (0 for an LP solved to optimality).
    """

    status: SolveStatus
    termination: str
    objective: float
    translate_seconds: float
    solver_seconds: float
    n_variables: int
    n_constraints: int
    n_nonzeros: int
    mip_gap: float = 0.0


_STATUS = {
    TerminationCondition.convergenceCriteriaSatisfied: SolveStatus.OPTIMAL,
    TerminationCondition.provenInfeasible: SolveStatus.INFEASIBLE,
    TerminationCondition.locallyInfeasible: SolveStatus.INFEASIBLE,
    TerminationCondition.infeasibleOrUnbounded: SolveStatus.INFEASIBLE,
    TerminationCondition.unbounded: SolveStatus.UNBOUNDED,
    TerminationCondition.maxTimeLimit: SolveStatus.LIMIT,
    TerminationCondition.iterationLimit: SolveStatus.LIMIT,
}


class BatchedHighs(_highs.Highs):
    """Pyomo's persistent HiGHS interface with a batched hand-over of linear rows.

    Rows whose body is a ``LinearExpression`` of numeric-coefficient monomials (how
    :mod:`stochastic.linear` writes every row) are read directly from the expression and
    passed to HiGHS in one ``addRows`` call, with their new variables in one ``addVars``
    call; the interface otherwise walks every expression generically and adds variables
    constraint by constraint. Mutable (parameter) bounds get the interface's own update
    helpers, so ``update_parameters`` works as usual. Any other row takes the standard
    path.
    """

    def add_constraints(self, cons):
        fast, slow, rows = [], [], []
        for con in cons:
            body = con.body
            parsed = None
            if type(body) is LinearExpression:
                parsed = ([], [])
                for arg in body.args:
                    if type(arg) is not MonomialTermExpression:
                        parsed = None
                        break
                    coef, var = arg.args
                    if type(coef) is not float and type(coef) is not int:
                        parsed = None
                        break
                    parsed[0].append(coef)
                    parsed[1].append(var)
            if parsed is None or con in self._named_expressions:
                slow.append(con)
            else:
                fast.append(con)
                rows.append(parsed)
        if fast:
            self._add_linear_rows(fast, rows)
        if slow:
            super().add_constraints(slow)

    def _add_linear_rows(self, cons, rows) -> None:
        new_vars = {}
        referenced = self._referenced_variables
        for _, variables in rows:
            for v in variables:
                if id(v) not in referenced and id(v) not in new_vars:
                    new_vars[id(v)] = v
        if new_vars:
            self.add_variables(list(new_vars.values()))
        self._sol = None
        if self._last_results_object is not None:
            self._last_results_object.solution_loader.invalidate()
        col = self._pyomo_var_to_solver_var_map
        n0 = len(self._pyomo_con_to_solver_con_map)
        inf = _highs.highspy.kHighsInf
        lbs, ubs, starts, index, coefs = [], [], [], [], []
        for i, (con, (c, variables)) in enumerate(zip(cons, rows, strict=True)):
            self._active_constraints[con] = con.expr
            self._named_expressions[con] = []
            self._vars_referenced_by_con[con] = variables
            starts.append(len(coefs))
            for v in variables:
                referenced[id(v)][0][con] = None
                index.append(col[id(v)])
            coefs.extend(c)
            lb = con.lower if con.has_lb() else -inf
            ub = con.upper if con.has_ub() else inf
            if not (is_constant(lb) and is_constant(ub)):
                self._mutable_helpers.setdefault(con, []).append(
                    _highs._MutableConstraintBounds(
                        lower_expr=lb,
                        upper_expr=ub,
                        pyomo_con=con,
                        con_map=self._pyomo_con_to_solver_con_map,
                        highs=self._solver_model,
                    )
                )
            lbs.append(value(lb))
            ubs.append(value(ub))
            self._pyomo_con_to_solver_con_map[con] = n0 + i
            self._solver_con_to_pyomo_con_map[n0 + i] = con
        status = self._solver_model.addRows(
            len(lbs),
            np.array(lbs, dtype=np.double),
            np.array(ubs, dtype=np.double),
            len(coefs),
            np.array(starts),
            np.array(index),
            np.array(coefs, dtype=np.double),
        )
        if status == _highs.highspy.HighsStatus.kError:
            raise SolverError(
                f"HiGHS refused the model's rows ({status}); this is a bug, "
                "please report it with the study file"
            )


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
    batched : bool
        Hand linear rows over in one batch (:class:`BatchedHighs`, the same interface
        class); ``False`` uses the interface as registered (``SolverFactory("highs")``).
    """

    def __init__(
        self,
        model,
        threads: int | None = 1,
        time_limit_s: float | None = None,
        options: dict | None = None,
        batched: bool = True,
    ) -> None:
        self.model = model
        self._solver = BatchedHighs() if batched else SolverFactory("highs")
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
        self._last = None

    def add_rows(self, rows: RowArray) -> None:
        """Hand a row family added to the model after construction (a cut) to HiGHS."""
        tick = time.perf_counter()
        self._solver.add_constraints(list(rows.component.values()))
        self._pending_translate += time.perf_counter() - tick

    def fix(self, var: VarArray, values: np.ndarray | float) -> None:
        """Fix every element of ``var`` at ``values`` (broadcast to its shape).

        Values within round-off outside a bound (a solver's tolerance) are moved onto it.
        """
        flat = np.broadcast_to(np.asarray(values, dtype=float), var.shape).ravel().tolist()
        for item, x in zip(var.data, flat, strict=True):
            lo, hi = item.lb, item.ub
            if lo is not None and x < lo:
                x = lo
            if hi is not None and x > hi:
                x = hi
            item.fix(x)
        self._update_variables(var)

    def set_bounds(
        self, var: VarArray, lb: np.ndarray | float | None, ub: np.ndarray | float | None
    ) -> None:
        """Change the bounds of every element of ``var`` (``None``: unbounded)."""
        shape = var.shape
        lo = [None] * var.size if lb is None else np.broadcast_to(lb, shape).ravel().tolist()
        hi = [None] * var.size if ub is None else np.broadcast_to(ub, shape).ravel().tolist()
        for item, a, b in zip(var.data, lo, hi, strict=True):
            item.setlb(a)
            item.setub(b)
        self._update_variables(var)

    def set_element_bounds(
        self, var: VarArray, index: np.ndarray, lb: np.ndarray, ub: np.ndarray
    ) -> None:
        """Change the bounds of the elements ``index`` (flat positions) of ``var``."""
        items = [var.data[int(i)] for i in np.ravel(index)]
        for item, a, b in zip(items, np.ravel(lb).tolist(), np.ravel(ub).tolist(), strict=True):
            item.setlb(a)
            item.setub(b)
        tick = time.perf_counter()
        self._solver.update_variables(items)
        self._pending_translate += time.perf_counter() - tick

    def unfix(self, var: VarArray) -> None:
        """Release every element of ``var`` (back to its bounds)."""
        for item in var.data:
            item.unfix()
        self._update_variables(var)

    def _update_variables(self, var: VarArray) -> None:
        tick = time.perf_counter()
        self._solver.update_variables(var.data)
        self._pending_translate += time.perf_counter() - tick

    def duals(self, rows: RowArray) -> np.ndarray:
        """Duals of a row family at the last optimal solve, shaped like the rows.

        The sign follows Pyomo: the change of the objective per unit increase of the
        row's bound (for a bus balance, the marginal price of demand) [objective unit per
        row unit].
        """
        if self._last is None:
            raise SolverError("no optimal solve yet: duals are not available")
        cons = list(rows.component.values())
        duals = self._last.solution_loader.get_duals(cons)
        return np.array([duals[c] for c in cons], dtype=float).reshape(rows.shape)

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

        A model with integer variables is solved as a MIP (give the HiGHS option
        ``solver: choose``; ``ipm`` or ``simplex`` make HiGHS drop the integrality): its
        solution is optimal within ``mip_rel_gap``, or, at the time limit, the best one
        found (status ``limit``, loaded, gap in :attr:`SolveResult.mip_gap`). Duals exist
        for LPs only.

        Parameters
        ----------
        raise_on_failure : bool
            Raise :class:`InfeasibleError` / :class:`SolverError` unless optimal (or a
            MIP's solution at the time limit).
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
        integer = bool(np.any(np.asarray(lp.integrality_, dtype=int)))
        usable = status is SolveStatus.OPTIMAL or (
            status is SolveStatus.LIMIT
            and integer
            and res.solution_status in (SolutionStatus.optimal, SolutionStatus.feasible)
        )
        gap = float(highs.getInfo().mip_gap) if integer and usable else 0.0
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
            mip_gap=gap if np.isfinite(gap) else float("nan"),
        )
        self._pending_translate = 0.0
        self._last = res if status is SolveStatus.OPTIMAL and not integer else None
        if usable:  # a MIP stopped at its time limit keeps its best solution
            res.solution_loader.load_vars()
        elif raise_on_failure:
            kind = InfeasibleError if status is SolveStatus.INFEASIBLE else SolverError
            raise kind(
                f"HiGHS stopped with '{result.termination}' ({status.value}); no "
                "optimal solution to report"
            )
        return result


def highs_settings(study: StudyConfig, lp_method: str | None = None) -> tuple[dict, float | None]:
    """HiGHS options and time limit [s] of a study's two-stage solves.

    With ``model.commitment: binary`` the model is a MIP: HiGHS chooses the method (an
    ``ipm`` or ``simplex`` choice would drop the integrality) and stops at
    ``solver.mip_gap`` or ``solver.time_limit_s``. Otherwise the LP method of the study
    (or ``lp_method``) and no time limit.
    """
    if study.model.commitment == "binary":
        return {"solver": "choose", "mip_rel_gap": study.solver.mip_gap}, (
            study.solver.time_limit_s
        )
    return {"solver": lp_method or study.model.lp_method}, None
