# The public names of `workbench`: type checkers read them here, and `__init__.py`
# imports each on first use from this list (lazy_loader.attach_stub).
from . import statistics
from .ac_check import ac_check, ac_sample
from .api import Study, run
from .coordination import MODELS, DayOutcome, coordination_model
from .results import annotate, read_results, summary_table, write_results
from .runner import resolve_scheduler, run_study
from .scenarios import fit_study_forecaster, study_scenarios
from .statistics import Statistics

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
    "read_results",
    "resolve_scheduler",
    "run",
    "run_study",
    "statistics",
    "study_scenarios",
    "summary_table",
    "write_results",
]
