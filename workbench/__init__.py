"""Coordination models, Dask runner, AC validation, results and command line."""

from workbench import statistics
from workbench.ac_check import ac_check, ac_sample
from workbench.api import Study, run
from workbench.coordination import MODELS, DayOutcome, coordination_model
from workbench.results import annotate, summary_table, write_results
from workbench.runner import resolve_scheduler, run_study
from workbench.scenarios import fit_study_forecaster, study_scenarios
from workbench.statistics import Statistics

__all__ = [
    "MODELS",
    "DayOutcome",
    "Statistics",
    "Study",
    "ac_check",
    "ac_sample",
    "annotate",
    "coordination_model",
    "fit_study_forecaster",
    "resolve_scheduler",
    "run",
    "run_study",
    "statistics",
    "study_scenarios",
    "summary_table",
    "write_results",
]
