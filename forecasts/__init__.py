"""Probabilistic forecasts and scenarios of PV, wind, load and EV charging.

* :mod:`forecasts.history` - measured/profiled series embedded in the package;
* :mod:`forecasts.models` - :class:`QuantileForecaster` (quantile regression per level);
* :mod:`forecasts.copula`, :mod:`forecasts.reduction`, :mod:`forecasts.resolution` -
  Gaussian copula scenarios, fast-forward reduction, 5-60 min resolutions;
* :mod:`forecasts.generate` - fitted forecasters of several resources to weighted scenarios;
* :mod:`forecasts.ev` - EV charging sessions, uncontrolled profile and flexibility envelope;
* :mod:`forecasts.evaluate` - CRPS, energy/variogram scores, PIT against baselines;
* :mod:`forecasts.calibration` - spread and lag-1 autocorrelation of held-out errors and
  of scenario sets;
* :mod:`forecasts.scenarios` - the simple profile-noise generator (``method: profile_noise``).

The public names (listed in ``__init__.pyi``) are imported on first use.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
