"""Coordination models, Dask runner, AC validation, results and command line."""

from workbench.ac_check import ac_check, ac_sample
from workbench.coordination import DayOutcome, solve_days, study_scenarios
from workbench.results import annotate, summary_table, write_results
from workbench.runner import resolve_scheduler, run_study

__all__ = [
    "DayOutcome",
    "ac_check",
    "ac_sample",
    "annotate",
    "resolve_scheduler",
    "run_study",
    "solve_days",
    "study_scenarios",
    "summary_table",
    "write_results",
]
