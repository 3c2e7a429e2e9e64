"""Probabilistic forecasts and scenarios of PV, wind, load and EV charging.

* :mod:`forecasts.history` - measured/profiled series embedded in the package;
* :mod:`forecasts.models` - :class:`QuantileForecaster` (quantile regression per level);
* :mod:`forecasts.copula`, :mod:`forecasts.reduction`, :mod:`forecasts.resolution` -
  Gaussian copula scenarios, fast-forward reduction, 5-60 min resolutions;
* :mod:`forecasts.generate` - fitted forecasters of several resources to weighted scenarios;
* :mod:`forecasts.ev` - EV charging sessions, uncontrolled profile and flexibility envelope;
* :mod:`forecasts.evaluate` - CRPS, energy/variogram scores, PIT against baselines;
* :mod:`forecasts.scenarios` - the simple profile-noise generator (``method: profile_noise``).
"""

from forecasts.errors import ForecastError
from forecasts.ev import ev_scenarios, sample_sessions
from forecasts.evaluate import evaluate_all, evaluate_ev, evaluate_source
from forecasts.generate import ScenarioForecaster, fit_scenario_forecaster, forecast_scenarios
from forecasts.history import SOURCES, load_history
from forecasts.models import QuantileForecaster
from forecasts.scenarios import RESOURCES, ScenarioError, generate_scenarios, hourly

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
