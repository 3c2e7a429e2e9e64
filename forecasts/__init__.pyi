# The public names of `forecasts`: type checkers read them here, and `__init__.py`
# imports each on first use from this list (lazy_loader.attach_stub).
from .errors import ForecastError
from .ev import ev_scenarios, sample_sessions
from .evaluate import evaluate_all, evaluate_ev, evaluate_source
from .generate import ScenarioForecaster, fit_scenario_forecaster, forecast_scenarios
from .history import SOURCES, load_history
from .models import QuantileForecaster
from .scenarios import RESOURCES, ScenarioError, generate_scenarios, hourly

__all__ = [
    "RESOURCES",
    "SOURCES",
    "ForecastError",
    "QuantileForecaster",
    "ScenarioError",
    "ScenarioForecaster",
    "ev_scenarios",
    "evaluate_all",
    "evaluate_ev",
    "evaluate_source",
    "fit_scenario_forecaster",
    "forecast_scenarios",
    "generate_scenarios",
    "hourly",
    "load_history",
    "sample_sessions",
]
