"""Probabilistic forecasters of quarter-hourly PV, wind and load (scikit-learn style).

:class:`QuantileForecaster` fits one gradient-boosted quantile regression per level
(``HistGradientBoostingRegressor(loss="quantile")``) on calendar, clear-sky and lagged
features (:mod:`forecasts.features`), plus any covariates the user provides (e.g. their
own numerical-weather-prediction irradiance and temperature). PV is modelled as the
clear-sky index ``k = p / max(cs, floor)`` and multiplied back, so the model learns
cloudiness rather than the daily sun path, and night steps are exactly zero.

Calibration: every ``calibration_every``-th training day is kept out of the regression;
the PIT values of those days give a recalibration map from nominal to model levels
(:func:`forecasts.quantiles.recalibration_map`) and the temporal correlation of the
Gaussian copula (:mod:`forecasts.copula`).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from forecasts.copula import correlation_length_steps, fit_autocorrelation, sample_uniform
from forecasts.errors import ForecastError
from forecasts.features import (
    CLEAR_SKY_FLOOR_PU,
    calendar_features,
    clear_sky_pu,
    day_ahead_lags,
    intraday_lags,
)
from forecasts.history import Source, check_series, source_info
from forecasts.quantiles import (
    quantile_function,
    randomized_pit,
    recalibration_map,
    sort_quantiles,
)

__all__ = ["DEFAULT_LEVELS", "QuantileForecaster"]

STEPS_PER_DAY = 96
#: levels of the fitted quantile regressions [-]
DEFAULT_LEVELS = (0.01, 0.025, *np.round(np.arange(0.05, 0.951, 0.05), 3), 0.975, 0.99)
#: days of history needed before a target day (lags reach one week back)
MIN_HISTORY_DAYS = 7
#: copula trajectories per calibration day, and corrections, when the copula's
#: autocorrelation is matched to the errors' (:meth:`QuantileForecaster._match_autocorrelation`)
_MATCH_SAMPLES = 32
_MATCH_ITERATIONS = 2
#: lags whose fit decides which correction is kept [quarter-hours], and the largest
#: correlation a correction may set [-]
_MATCH_LAGS = 4
_RHO_MAX = 0.999
#: probabilities of the midpoint rule for predictive means [-]
_MEAN_LEVELS = (np.arange(200) + 0.5) / 200
#: PV steps with the sun further below the horizon than this are night (value 0) [deg]
NIGHT_ELEVATION_DEG = -3.0


class QuantileForecaster(BaseEstimator):
    """Quantile forecasts of a quarter-hourly series, day-ahead or one hour ahead.

    Parameters
    ----------
    kind : {"pv", "wind", "load"}
        ``pv`` models the clear-sky index; ``wind``/``load`` the value itself.
    horizon : {"day_ahead", "1h"}
        Issue time: ``issue_hour`` on the day before, or one hour before each step.
    levels : sequence of float
        Quantile levels fitted [-].
    issue_hour : int
        Day-ahead issue hour on the day before [h], 0..24.
    latitude_deg, longitude_deg : float
        Location of the clear-sky model (PV) [deg].
    upper_pu : float or None
        Upper bound of the values [pu]; the lower bound is 0.
    max_iter, learning_rate, max_leaf_nodes, min_samples_leaf
        Passed to ``HistGradientBoostingRegressor``.
    calibration_every : int
        Every n-th training day is held out for calibration (>= 2).
    random_state : int or None
        Seed for the regressions and the randomised PIT.
    n_threads : int
        OpenMP threads of the regressions while fitting and predicting (default 1: the
        forecasters run beside Dask workers and HiGHS on shared cores).

    Attributes
    ----------
    models_ : list of HistGradientBoostingRegressor
        One per level.
    recalibration_ : tuple of numpy.ndarray
        (nominal, model level) grids.
    autocorrelation_ : numpy.ndarray
        Temporal correlation of the copula at lags 0..95 [-]: the empirical
        autocorrelation of the calibration days' errors (observed minus predictive
        mean; :func:`forecasts.copula.fit_autocorrelation`).
    correlation_steps_ : float
        Lag at which ``autocorrelation_`` falls to 1/e [quarter-hours].
    calibration_z_ : numpy.ndarray
        Gaussianised calibrated PIT of the calibration days, (days, 96), NaN at night.
    calibration_observed_pu_, calibration_mean_pu_ : numpy.ndarray
        Observed values and calibrated predictive means of the calibration days, (days,
        96) [pu], NaN at night: the held-out forecast errors (:mod:`forecasts.calibration`).
    calibration_days_ : pandas.DatetimeIndex
    feature_names_ : list of str
    """

    def __init__(
        self,
        kind: Literal["pv", "wind", "load"] = "load",
        horizon: Literal["day_ahead", "1h"] = "day_ahead",
        levels: tuple[float, ...] = DEFAULT_LEVELS,
        issue_hour: int = 12,
        latitude_deg: float = 51.0,
        longitude_deg: float = 10.0,
        upper_pu: float | None = None,
        max_iter: int = 100,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 31,
        min_samples_leaf: int = 40,
        calibration_every: int = 5,
        random_state: int | None = None,
        n_threads: int = 1,
    ) -> None:
        self.kind = kind
        self.horizon = horizon
        self.levels = levels
        self.issue_hour = issue_hour
        self.latitude_deg = latitude_deg
        self.longitude_deg = longitude_deg
        self.upper_pu = upper_pu
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.calibration_every = calibration_every
        self.random_state = random_state
        self.n_threads = n_threads

    # -- design -------------------------------------------------------------------------
    @classmethod
    def for_source(cls, source: str | Source, **params: object) -> QuantileForecaster:
        """A forecaster with the kind, location and bound of a history source.

        Parameters
        ----------
        source : str or Source
            Name in :data:`forecasts.history.SOURCES`, or a user series.
        **params
            Any other constructor parameter (``horizon``, ``levels``, ``max_iter`` ...).
        """
        src = source_info(source)
        return cls(
            kind=src.kind,
            latitude_deg=src.latitude_deg,
            longitude_deg=src.longitude_deg,
            upper_pu=src.upper_pu,
            **params,
        )

    def _check_params(self) -> None:
        if self.kind not in ("pv", "wind", "load"):
            raise ForecastError(f"kind must be one of pv, wind, load; got {self.kind!r}")
        if self.horizon not in ("day_ahead", "1h"):
            raise ForecastError(f"horizon must be 'day_ahead' or '1h'; got {self.horizon!r}")
        if not 0 <= self.issue_hour <= 24:
            raise ForecastError(f"issue_hour must be in 0..24, got {self.issue_hour}")
        lv = np.asarray(self.levels, dtype=float)
        if len(lv) < 3 or (np.diff(lv) <= 0).any() or lv[0] <= 0 or lv[-1] >= 1:
            raise ForecastError("levels must be at least 3 increasing values in (0, 1)")
        if self.calibration_every < 2:
            raise ForecastError(f"calibration_every must be >= 2, got {self.calibration_every}")
        if not isinstance(self.n_threads, int) or self.n_threads < 1:
            raise ForecastError(f"n_threads must be an integer >= 1, got {self.n_threads!r}")

    def _positions(self, history: pd.Series, days) -> np.ndarray:
        first = history.index[0].normalize()
        pos = np.asarray(
            [(pd.Timestamp(d) - first) // pd.Timedelta(days=1) for d in days], dtype=int
        )
        n_days = len(history) // STEPS_PER_DAY
        bad = (pos < MIN_HISTORY_DAYS) | (pos >= n_days)
        if bad.any():
            d = pd.Timestamp(np.asarray(days)[bad][0]).date()
            lo = (first + pd.Timedelta(days=MIN_HISTORY_DAYS)).date()
            hi = history.index[-1].date()
            raise ForecastError(
                f"day {d} cannot be forecast from history {history.name!r}: "
                f"allowed days are {lo} .. {hi} (one week of history is needed first)"
            )
        return pos

    def _transform(self, history: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(target series, scale, active mask) over the whole history, flat."""
        y = history.to_numpy(dtype=float)
        if self.kind != "pv":
            return y, np.ones_like(y), np.ones_like(y, dtype=bool)
        cs, elev = clear_sky_pu(history.index, self.latitude_deg, self.longitude_deg)
        active = elev > NIGHT_ELEVATION_DEG
        scale = np.maximum(cs, CLEAR_SKY_FLOOR_PU)
        return np.where(active, y / scale, 0.0), scale, active

    def _design(
        self, history: pd.Series, pos: np.ndarray, covariates: pd.DataFrame | None
    ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
        """Features, scale, active mask and flat positions of all steps of the target days."""
        target, scale, active = self._transform(history)
        flat = (pos[:, None] * STEPS_PER_DAY + np.arange(STEPS_PER_DAY)).ravel()
        index = history.index[flat]
        x = calendar_features(index)
        if self.kind == "pv":
            cs, elev = clear_sky_pu(history.index, self.latitude_deg, self.longitude_deg)
            x["cs_pu"] = cs[flat]
            x["elevation_deg"] = elev[flat]
            x = x.drop(columns=["weekday", "weekend"])
        if self.horizon == "day_ahead":
            lags = {k: v.ravel() for k, v in day_ahead_lags(target, pos, self.issue_hour).items()}
        else:
            lags = intraday_lags(target, flat)
        for name, values in lags.items():
            x[f"lag_{name}"] = values
        if covariates is not None:
            cov = covariates.reindex(index)
            missing = cov.columns[cov.isna().any()].tolist()
            if missing:
                raise ForecastError(
                    f"covariates: column(s) {missing} have no value for some target "
                    f"quarter-hours (first {index[cov.isna().any(axis=1).to_numpy()][0]}); "
                    "give covariates for every quarter-hour of the days forecast"
                )
            for col in cov.columns:
                x[f"cov_{col}"] = cov[col].to_numpy(dtype=float)
        return x, scale[flat], active[flat], flat

    # -- fit / predict -------------------------------------------------------------------
    def fit(
        self,
        history: pd.Series,
        days: list[dt.date] | pd.DatetimeIndex | None = None,
        covariates: pd.DataFrame | None = None,
    ) -> QuantileForecaster:
        """Fit on target ``days`` of ``history`` (default: every day with a week before it).

        Parameters
        ----------
        history : pandas.Series
            Quarter-hourly values [pu], whole days, no NaN.
        days : list of datetime.date, optional
            Training target days.
        covariates : pandas.DataFrame, optional
            Extra numeric features indexed by quarter-hour time stamps.

        Returns
        -------
        QuantileForecaster
            ``self``.
        """
        self._check_params()
        with threadpool_limits(limits=self.n_threads, user_api="openmp"):
            return self._fit(history, days, covariates)

    def _fit(
        self,
        history: pd.Series,
        days: list[dt.date] | pd.DatetimeIndex | None,
        covariates: pd.DataFrame | None,
    ) -> QuantileForecaster:
        check_series(history, field="history")
        if days is None:
            days = pd.DatetimeIndex(history.index[::STEPS_PER_DAY])[MIN_HISTORY_DAYS:]
        pos = self._positions(history, days)
        if len(pos) < 2 * self.calibration_every:
            raise ForecastError(
                f"{len(pos)} training day(s) is too few; give at least "
                f"{2 * self.calibration_every} days of history before the first forecast day"
            )
        is_cal = np.arange(len(pos)) % self.calibration_every == self.calibration_every - 1
        x, _, active, flat = self._design(history, pos[~is_cal], covariates)
        target, _, _ = self._transform(history)
        rows = active
        self.feature_names_ = list(x.columns)
        rng = np.random.default_rng(self.random_state)
        self.models_ = []
        for level in self.levels:
            model = HistGradientBoostingRegressor(
                loss="quantile",
                quantile=float(level),
                max_iter=self.max_iter,
                learning_rate=self.learning_rate,
                max_leaf_nodes=self.max_leaf_nodes,
                min_samples_leaf=self.min_samples_leaf,
                early_stopping=False,
                random_state=int(rng.integers(2**31)),
            )
            self.models_.append(model.fit(x.to_numpy()[rows], target[flat][rows]))
        # calibration days: PIT -> recalibration map and copula correlation
        cal_pos = pos[is_cal]
        q = self._raw_quantiles(history, cal_pos, covariates)
        y = history.to_numpy(dtype=float)[
            (cal_pos[:, None] * STEPS_PER_DAY + np.arange(STEPS_PER_DAY)).ravel()
        ]
        _, _, act = self._transform(history)
        act = act[(cal_pos[:, None] * STEPS_PER_DAY + np.arange(STEPS_PER_DAY)).ravel()]
        pit = np.full(len(y), np.nan)
        pit[act] = randomized_pit(
            y[act],
            q.reshape(-1, len(self.levels))[act],
            np.asarray(self.levels),
            rng,
            lower=0.0,
            upper=self.upper_pu,
        )
        self.recalibration_ = recalibration_map(pit[act])
        nominal, model_level = self.recalibration_
        calibrated = np.interp(pit, model_level, nominal)
        z = _norm_ppf(np.clip(calibrated, 1e-4, 1 - 1e-4))
        self.calibration_z_ = z.reshape(len(cal_pos), STEPS_PER_DAY)
        self.calibration_days_ = pd.DatetimeIndex(history.index[cal_pos * STEPS_PER_DAY])
        shape = (len(cal_pos), STEPS_PER_DAY)
        self.calibration_observed_pu_ = np.where(act, y, np.nan).reshape(shape)
        self.calibration_mean_pu_ = np.where(
            act.reshape(shape), self.predictive_mean(q), np.nan
        ).reshape(shape)
        # the copula's temporal correlation is fitted to that of the held-out errors
        # themselves: the Gaussianised PIT decorrelates adjacent steps (measured 0.968
        # against 0.991 at 15 min on the aggregate load), which made the scenarios more
        # jagged than the errors
        target = fit_autocorrelation(self.calibration_observed_pu_ - self.calibration_mean_pu_)
        self.autocorrelation_ = self._match_autocorrelation(q, target, rng)
        self.correlation_steps_ = correlation_length_steps(self.autocorrelation_)
        return self

    def _match_autocorrelation(
        self, q: np.ndarray, target: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Copula autocorrelation whose trajectories' deviations have ``target``'s.

        The quantile functions bend the Gaussian ``z``, which lowers the correlation of
        the trajectories' deviations below that of ``z`` (measured 0.94 against 0.96 at
        30 min on the aggregate load). As in NORTA (Cario and Nelson, 1997), the
        Gaussian autocorrelation is corrected lag by lag by the gap between ``target``
        and the autocorrelation of trajectories simulated on the calibration days
        (:data:`_MATCH_SAMPLES` per day, :data:`_MATCH_ITERATIONS` corrections); the
        candidate whose simulated lags 1 to :data:`_MATCH_LAGS` come closest to
        ``target`` is kept (PV's quantile functions change shape from step to step, so
        its deviations stay below ``target`` whatever the Gaussian correlation).

        Parameters
        ----------
        q : numpy.ndarray
            Model quantiles of the calibration days, (days, 96, levels) [pu].
        target : numpy.ndarray
            (96,) the held-out errors' autocorrelation [-].
        """
        mask = np.isfinite(self.calibration_observed_pu_)  # (days, 96)
        lags = slice(1, _MATCH_LAGS + 1)
        rho, best, best_gap = target.copy(), target, np.inf
        for _ in range(_MATCH_ITERATIONS + 1):
            u = sample_uniform(_MATCH_SAMPLES * len(q), STEPS_PER_DAY, rho[None], rng)[:, 0]
            u = u.reshape(len(q), _MATCH_SAMPLES, STEPS_PER_DAY).transpose(0, 2, 1)
            x = self.quantiles_at(q, u)  # (days, 96, samples)
            dev = x - x.mean(axis=-1, keepdims=True)
            dev = np.where(mask[..., None], dev, np.nan).transpose(0, 2, 1)
            simulated = fit_autocorrelation(dev.reshape(-1, STEPS_PER_DAY))
            gap = float(np.abs(target[lags] - simulated[lags]).mean())
            if gap < best_gap:  # a correction that overshoots (saturated lags) is not kept
                best, best_gap = rho, gap
            rho = np.clip(rho + (target - simulated), -_RHO_MAX, _RHO_MAX)
            rho[0] = 1.0
        return best

    def predictive_mean(self, q: np.ndarray) -> np.ndarray:
        """Mean of the calibrated predictive distributions of model quantiles ``q``.

        Parameters
        ----------
        q : numpy.ndarray
            Output of :meth:`predict_quantiles`, shape (..., n_levels) [pu].

        Returns
        -------
        numpy.ndarray
            Shape ``q.shape[:-1]`` [pu] (midpoint rule over 200 probabilities).
        """
        u = np.broadcast_to(_MEAN_LEVELS, (*q.shape[:-1], len(_MEAN_LEVELS)))
        return self.quantiles_at(q, u).mean(axis=-1)

    def _raw_quantiles(
        self, history: pd.Series, pos: np.ndarray, covariates: pd.DataFrame | None
    ) -> np.ndarray:
        x, scale, active, _ = self._design(history, pos, covariates)
        if list(x.columns) != self.feature_names_:
            raise ForecastError(
                f"features {list(x.columns)} differ from those fitted {self.feature_names_}; "
                "give the same covariate columns as in fit"
            )
        xa = x.to_numpy()
        with threadpool_limits(limits=self.n_threads, user_api="openmp"):
            q = np.stack([m.predict(xa) for m in self.models_], axis=-1)
        q = sort_quantiles(q) * scale[:, None]
        q = np.clip(q, 0.0, self.upper_pu)
        q[~active] = 0.0
        return q.reshape(len(pos), STEPS_PER_DAY, len(self.levels))

    def predict_quantiles(
        self,
        history: pd.Series,
        days: list[dt.date] | pd.DatetimeIndex,
        covariates: pd.DataFrame | None = None,
    ) -> np.ndarray:
        """Uncalibrated model quantiles at ``levels`` of every quarter-hour of ``days``.

        Returns
        -------
        numpy.ndarray
            Shape (n_days, 96, n_levels) [pu], non-crossing.
        """
        return self._raw_quantiles(history, self._positions(history, days), covariates)

    def quantiles_at(self, q: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Calibrated values at nominal probabilities ``u`` from model quantiles ``q``.

        Parameters
        ----------
        q : numpy.ndarray
            Output of :meth:`predict_quantiles`, shape (..., n_levels) [pu].
        u : numpy.ndarray
            Nominal probabilities, shape (..., M) broadcasting with ``q[..., :1]`` [-].

        Returns
        -------
        numpy.ndarray
            [pu]
        """
        nominal, model_level = self.recalibration_
        return quantile_function(
            q,
            np.asarray(self.levels),
            np.interp(u, nominal, model_level),
            lower=0.0,
            upper=self.upper_pu,
        )


def _norm_ppf(p: np.ndarray) -> np.ndarray:
    from scipy.special import ndtri

    return ndtri(p)
