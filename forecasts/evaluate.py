"""Out-of-sample evaluation of the forecasts against climatology and persistence.

Scores (from ``scoringrules``): CRPS of every quarter-hour (ensemble estimator), the
energy score and the variogram score (p = 0.5) of whole-day scenario sets, PIT histograms
and 10-90 % interval coverage. For PV only steps with the sun above -3 deg count (night
values are exactly zero in every forecast and observation).

Baselines
---------
climatology
    The observed values at the same quarter-hour of the training days within +-15 days of
    the target's day of year (circular), as an ensemble; for scenario scores, those days'
    whole trajectories.
persistence
    Day-ahead: the latest value observed at the same time of day before issue.
    One hour ahead: the latest value, for PV scaled by the ratio of clear-sky irradiance.

EV charging (:func:`evaluate_ev`) is scored on the SimBench 2016 per-charger profiles:
the forecast is the uncontrolled charging power per charger of a pool of ``n_chargers``
chargers whose sessions are drawn from the ElaadNL statistics (:mod:`forecasts.ev`), with
the weekday plug-in probability fitted to the training weeks' energy
(:func:`fit_plug_in_probability`). The ensemble is the set of equiprobable scenarios.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from forecasts.calibration import (
    block_means,
    error_calibration,
    scenario_deviation_calibration,
)
from forecasts.errors import ForecastError
from forecasts.ev import ev_scenarios, load_ev_observations, load_ev_statistics, sample_sessions
from forecasts.features import (
    CLEAR_SKY_FLOOR_PU,
    INTRADAY_LAG_STEPS,
    clear_sky_pu,
    persistence_day_ahead,
)
from forecasts.history import SOURCES, Source, load_history, source_info
from forecasts.models import MIN_HISTORY_DAYS, NIGHT_ELEVATION_DEG, QuantileForecaster
from forecasts.quantiles import coverage, randomized_pit
from forecasts.reduction import energy_selection, fast_forward_selection


def _sr():
    """``scoringrules``, imported on first use (its kernels take seconds to load, which
    every other command would pay)."""
    import scoringrules

    return scoringrules


__all__ = [
    "SKILL_SCORES",
    "ResourceScores",
    "bootstrap_skill",
    "calibration_table",
    "climatology_members",
    "ev_history",
    "evaluate_all",
    "evaluate_ev",
    "evaluate_source",
    "fit_plug_in_probability",
    "scores_table",
    "skills_table",
    "small_sample_warning",
    "split_days",
]

STEPS_PER_DAY = 96
CLIMATOLOGY_WINDOW_DAYS = 15
#: probabilities of the deterministic ensemble that represents a quantile forecast
_ENSEMBLE_U = (np.arange(100) + 0.5) / 100

#: skill score -> (score, reference score); skill = 1 - score / reference
SKILL_SCORES = {
    "crps_skill_vs_climatology": ("crps", "crps_climatology"),
    "crps_skill_vs_persistence": ("crps", "crps_persistence"),
    "energy_score_skill_vs_climatology": ("energy_score", "energy_score_climatology"),
}
#: confidence level and resamples of the skill intervals (block bootstrap over held-out days)
SKILL_INTERVAL_LEVEL = 0.95
SKILL_INTERVAL_RESAMPLES = 1000
#: fewer held-out days than this make every skill score uncertain (a warning says so)
MIN_CONFIDENT_DAYS = 30


@dataclass
class ResourceScores:
    """Scores of one resource and horizon on the held-out days (means over steps/days).

    All scores are in the unit of the series [pu] except skill, coverage and PIT [-].
    """

    crps: float
    crps_climatology: float
    crps_persistence: float
    coverage_10_90: float
    pit_histogram: list[float]
    n_days: int
    energy_score: float | None = None
    energy_score_independent: float | None = None
    energy_score_climatology: float | None = None
    energy_score_reduced: float | None = None
    variogram_score: float | None = None
    variogram_score_independent: float | None = None
    skill_intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def crps_skill_vs_climatology(self) -> float:
        return 1.0 - self.crps / self.crps_climatology

    @property
    def crps_skill_vs_persistence(self) -> float:
        return 1.0 - self.crps / self.crps_persistence

    @property
    def energy_score_skill_vs_climatology(self) -> float | None:
        if self.energy_score is None or self.energy_score_climatology is None:
            return None
        return 1.0 - self.energy_score / self.energy_score_climatology

    def skills(self) -> dict[str, float]:
        """The skill scores that apply (:data:`SKILL_SCORES`) [-]."""
        out = {name: getattr(self, name) for name in SKILL_SCORES}
        return {k: float(v) for k, v in out.items() if v is not None}

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("extra", "skill_intervals")}
        out.update(self.skills())
        out["skill_intervals"] = {k: [lo, hi] for k, (lo, hi) in self.skill_intervals.items()}
        out["skill_interval_level"] = SKILL_INTERVAL_LEVEL
        out["skill_interval_resamples"] = SKILL_INTERVAL_RESAMPLES
        out.update(self.extra)
        return out


def bootstrap_skill(
    score_per_day: np.ndarray,
    reference_per_day: np.ndarray,
    *,
    n_resamples: int = SKILL_INTERVAL_RESAMPLES,
    level: float = SKILL_INTERVAL_LEVEL,
    block_days: int = 1,
    seed: int = 0,
) -> tuple[float, float]:
    """Confidence interval of the skill ``1 - sum(score) / sum(reference)`` over days.

    A circular moving-block bootstrap over the held-out days: each resample joins blocks
    of ``block_days`` consecutive days starting at random days until it holds as many
    days as the sample; the interval is the percentile interval of the resampled skill.
    Whole days are resampled, so the correlation of the steps inside a day is kept.

    Parameters
    ----------
    score_per_day, reference_per_day : numpy.ndarray
        (days,) the score of the forecast and of the reference summed (or averaged)
        over each day's steps [unit of the series].
    n_resamples : int
        Bootstrap resamples.
    level : float
        Confidence level in (0, 1) [-].
    block_days : int
        Days per block (1: days are independent blocks).
    seed : int

    Returns
    -------
    (float, float)
        Lower and upper bound of the skill [-].
    """
    score = np.asarray(score_per_day, dtype=float)
    reference = np.asarray(reference_per_day, dtype=float)
    if score.shape != reference.shape or score.ndim != 1 or len(score) == 0:
        raise ValueError(
            f"bootstrap_skill needs two equally long 1-d arrays of daily scores, got shapes "
            f"{score.shape} and {reference.shape}"
        )
    if not 0.0 < level < 1.0 or n_resamples < 1 or block_days < 1:
        raise ValueError(
            f"bootstrap_skill: level must be in (0, 1), n_resamples and block_days >= 1; "
            f"got {level}, {n_resamples}, {block_days}"
        )
    n = len(score)
    block = min(block_days, n)
    n_blocks = -(-n // block)
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n, size=(n_resamples, n_blocks))
    idx = ((starts[:, :, None] + np.arange(block)) % n).reshape(n_resamples, -1)[:, :n]
    with np.errstate(divide="ignore", invalid="ignore"):  # a reference of 0: -inf skill
        skill = 1.0 - score[idx].sum(axis=1) / reference[idx].sum(axis=1)
    tail = 0.5 * (1.0 - level)
    lo, hi = np.quantile(skill, [tail, 1.0 - tail])
    return float(lo), float(hi)


def _attach_intervals(
    scores: ResourceScores, daily: dict[str, np.ndarray], seed: int
) -> ResourceScores:
    """Bootstrap intervals of every skill score whose daily scores are in ``daily``."""
    for i, (name, (score, reference)) in enumerate(SKILL_SCORES.items()):
        if score in daily and reference in daily:
            scores.skill_intervals[name] = bootstrap_skill(
                daily[score], daily[reference], seed=seed + i
            )
    return scores


def split_days(history: pd.Series) -> tuple[pd.DatetimeIndex, pd.DatetimeIndex]:
    """Training and held-out days of a history.

    Multi-year history: held out = the last calendar year, trained on the years before.
    One year: held out = every fourth ISO week, trained on the other weeks. The first
    week is never a target (its lags would reach before the data).
    """
    days = pd.DatetimeIndex(history.index[::STEPS_PER_DAY])[MIN_HISTORY_DAYS:]
    years = days.year.unique()
    if len(years) >= 2:
        test = days.year == years[-1]
    else:
        test = days.isocalendar().week.to_numpy() % 4 == 0
    return days[~test], days[test]


def _positions(history: pd.Series, days: pd.DatetimeIndex) -> np.ndarray:
    return ((days - history.index[0].normalize()) // pd.Timedelta(days=1)).to_numpy()


def climatology_members(
    history: pd.Series, train_days: pd.DatetimeIndex, day: pd.Timestamp
) -> np.ndarray:
    """Whole-day trajectories of the training days within +-15 days of ``day``'s day of year.

    Returns
    -------
    numpy.ndarray
        (members, 96) [pu].
    """
    diff = np.abs(train_days.dayofyear.to_numpy() - day.dayofyear)
    diff = np.minimum(diff, 366 - diff)
    chosen = train_days[diff <= CLIMATOLOGY_WINDOW_DAYS]
    if len(chosen) == 0:
        raise ForecastError(f"no training day within +-15 days of {day.date()} for climatology")
    return history.to_numpy().reshape(-1, STEPS_PER_DAY)[_positions(history, chosen)]


def _active(history: pd.Series, source: str | Source) -> np.ndarray:
    src = source if isinstance(source, Source) else SOURCES.get(source)
    if src is None or src.kind != "pv":
        return np.ones(len(history), dtype=bool)
    _, elev = clear_sky_pu(history.index, src.latitude_deg, src.longitude_deg)
    return elev > NIGHT_ELEVATION_DEG


def _reduced_energy_scores(
    obs: np.ndarray, ens: np.ndarray, n_keep: int
) -> tuple[float, float, float]:
    """Energy scores of the ``n_keep`` scenarios kept by energy and fast-forward selection,
    and the expected energy score of ``n_keep`` random draws from ``ens``.

    For random draws ``E[ES] = E|X - y| - (1 - 1/n_keep) E|X - X'| / 2`` (the ensemble
    estimator counts each member against itself), the yardstick of a reduction.
    """
    out = []
    for select in (energy_selection, fast_forward_selection):
        idx, w = select(ens, n_keep)
        out.append(float(_sr().es_ensemble(obs, ens[idx], ens_w=w)))
    n = len(ens)
    to_obs = float(np.linalg.norm(ens - obs, axis=1).mean())
    sq = (ens**2).sum(axis=1)
    pair = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * ens @ ens.T, 0.0))
    spread = float(pair.sum() / (n * (n - 1)))
    out.append(to_obs - 0.5 * (1.0 - 1.0 / n_keep) * spread)
    return out[0], out[1], out[2]


def _record_reduction(
    scores: ResourceScores,
    es_red: list[tuple[float, float, float]],
    n_samples: int,
    n_keep: int,
) -> None:
    """Reduced-set energy scores (energy selection; fast forward in ``extra``)."""
    if not es_red:
        return
    energy, ffs, draws = np.mean(es_red, axis=0)
    assert scores.energy_score is not None
    scores.energy_score_reduced = float(energy)
    scores.extra["reduction"] = f"{n_samples} -> {n_keep} (energy selection)"
    scores.extra["reduction_energy_score_increase"] = float(energy / scores.energy_score - 1)
    scores.extra["energy_score_reduced_fast_forward"] = float(ffs)
    scores.extra["reduction_energy_score_increase_fast_forward"] = float(
        ffs / scores.energy_score - 1
    )
    scores.extra["reduction_energy_score_increase_random_draws"] = float(
        draws / scores.energy_score - 1
    )


@dataclass
class _HeldOut:
    """The training days and the scored held-out days of a history.

    Attributes
    ----------
    train, test : pandas.DatetimeIndex
        Training days and scored held-out days.
    pos : numpy.ndarray
        (days,) positions of the held-out days in the history [day].
    values : numpy.ndarray
        (steps,) the whole history [unit of the series].
    y : numpy.ndarray
        (days, 96) observations of the held-out days [unit of the series].
    """

    train: pd.DatetimeIndex
    test: pd.DatetimeIndex
    pos: np.ndarray
    values: np.ndarray
    y: np.ndarray


def _held_out(history: pd.Series, test_day_step: int, empty_message: str) -> _HeldOut:
    """Split ``history`` and keep every ``test_day_step``-th held-out day.

    Raises
    ------
    ForecastError
        With ``empty_message`` when no held-out day is left.
    """
    train, test = split_days(history)
    test = test[::test_day_step]
    if len(test) == 0:
        raise ForecastError(empty_message)
    pos = _positions(history, test)
    values = history.to_numpy(dtype=float)
    return _HeldOut(train, test, pos, values, values.reshape(-1, STEPS_PER_DAY)[pos])


def _day_range(days: pd.DatetimeIndex) -> str:
    """``first .. last (n days)`` of a set of days."""
    return f"{days[0].date()} .. {days[-1].date()} ({len(days)} days)"


def _climatology_crps(history: pd.Series, held: _HeldOut) -> tuple[np.ndarray, list[np.ndarray]]:
    """CRPS of the climatology ensemble on each held-out quarter-hour.

    Returns
    -------
    crps : numpy.ndarray
        (days, 96) [unit of the series].
    members : list of numpy.ndarray
        Per held-out day, the climatology trajectories (members, 96) [unit of the series].
    """
    crps_clim = np.empty_like(held.y)
    members_per_day = []
    for i, day in enumerate(held.test):
        members = climatology_members(history, held.train, day)
        members_per_day.append(members)
        crps_clim[i] = _sr().crps_ensemble(held.y[i], members.T)
    return crps_clim, members_per_day


@dataclass
class _ScenarioScores:
    """Per-day scenario scores of a forecast, its independent variant and climatology.

    Energy and variogram scores [unit of the series]; ``es_red`` holds the reduced-set
    energy scores of :func:`_reduced_energy_scores`.
    """

    es: list[float] = field(default_factory=list)
    es_ind: list[float] = field(default_factory=list)
    es_clim: list[float] = field(default_factory=list)
    es_red: list[tuple[float, float, float]] = field(default_factory=list)
    vs: list[float] = field(default_factory=list)
    vs_ind: list[float] = field(default_factory=list)
    calibration: list[dict[str, float]] = field(default_factory=list)

    def add(
        self,
        obs: np.ndarray,
        ens: np.ndarray,
        ind: np.ndarray,
        clim: np.ndarray,
        n_samples: int,
        n_keep: int,
    ) -> None:
        """Score one day: ``obs`` (steps,), ensembles (members, steps) [unit of the series]."""
        self.es.append(_sr().es_ensemble(obs, ens))
        self.es_ind.append(_sr().es_ensemble(obs, ind))
        self.es_clim.append(_sr().es_ensemble(obs, clim))
        self.vs.append(_sr().vs_ensemble(obs, ens))
        self.vs_ind.append(_sr().vs_ensemble(obs, ind))
        if n_keep < n_samples:
            self.es_red.append(_reduced_energy_scores(obs, ens, n_keep))

    def record(
        self,
        scores: ResourceScores,
        daily: dict[str, np.ndarray],
        n_samples: int,
        n_keep: int,
    ) -> None:
        """Store the mean scores in ``scores`` and the daily ones in ``daily``."""
        scores.energy_score = float(np.mean(self.es))
        scores.energy_score_independent = float(np.mean(self.es_ind))
        scores.energy_score_climatology = float(np.mean(self.es_clim))
        scores.variogram_score = float(np.mean(self.vs))
        scores.variogram_score_independent = float(np.mean(self.vs_ind))
        _record_reduction(scores, self.es_red, n_samples, n_keep)
        if self.calibration:
            for name in ("spread", "lag1"):
                values = [c[name] for c in self.calibration if np.isfinite(c[name])]
                scores.extra[f"scenario_{name}"] = float(np.mean(values)) if values else None
        daily.update(
            energy_score=np.array(self.es), energy_score_climatology=np.array(self.es_clim)
        )


@dataclass
class _MarginalScores:
    """Marginal (per quarter-hour) scores of a quantile forecast.

    Attributes
    ----------
    crps_steps : numpy.ndarray
        (days, 96) CRPS [unit of the series].
    quantiles_1090 : numpy.ndarray
        (days, 96, 3) recalibrated 10/50/90 % quantiles [unit of the series].
    coverage_10_90 : float
        Share of active observations inside the 10-90 % interval [-].
    pit : numpy.ndarray
        Recalibrated randomised PIT values of the active steps [-].
    pit_histogram : numpy.ndarray
        (10,) share of PIT values per tenth [-].
    """

    crps_steps: np.ndarray
    quantiles_1090: np.ndarray
    coverage_10_90: float
    pit: np.ndarray
    pit_histogram: np.ndarray


def _marginal_scores(
    fc: QuantileForecaster,
    q: np.ndarray,
    y: np.ndarray,
    act: np.ndarray,
    upper_pu: float,
    rng: np.random.Generator,
) -> _MarginalScores:
    """CRPS, 10-90 % coverage and PIT of the quantile forecast ``q`` (days, 96, levels)."""
    ens = fc.quantiles_at(q, np.broadcast_to(_ENSEMBLE_U, (*q.shape[:2], len(_ENSEMBLE_U))))
    crps_steps = _sr().crps_ensemble(y, ens)
    q1090 = fc.quantiles_at(q, np.broadcast_to([0.1, 0.5, 0.9], (*q.shape[:2], 3)))
    cov = coverage(y[act], q1090[..., 0][act], q1090[..., 2][act])
    nominal, model_level = fc.recalibration_
    pit_raw = randomized_pit(y[act], q[act], np.asarray(fc.levels), rng, lower=0.0, upper=upper_pu)
    pit = np.interp(pit_raw, model_level, nominal)
    hist = np.histogram(pit, bins=10, range=(0.0, 1.0))[0] / len(pit)
    return _MarginalScores(crps_steps, q1090, cov, pit, hist)


def _persistence(
    history: pd.Series, held: _HeldOut, src: Source, horizon: str, issue_hour: int
) -> np.ndarray:
    """Persistence forecast of the held-out days, (days, 96) [unit of the series].

    Day-ahead: the value at the same time of day before issue. One hour ahead: the
    latest value, for PV scaled by the ratio of clear-sky irradiance.
    """
    if horizon == "day_ahead":
        return persistence_day_ahead(held.values, held.pos, issue_hour)
    flat = (held.pos[:, None] * STEPS_PER_DAY + np.arange(STEPS_PER_DAY)).ravel()
    last = held.values[flat - INTRADAY_LAG_STEPS]
    if src.kind == "pv":
        cs, _ = clear_sky_pu(history.index, src.latitude_deg, src.longitude_deg)
        cs = np.maximum(cs, CLEAR_SKY_FLOOR_PU)
        last = np.clip(last / cs[flat - INTRADAY_LAG_STEPS] * cs[flat], 0.0, src.upper_pu)
    return last.reshape(held.y.shape)


def _source_scores(
    held: _HeldOut,
    act: np.ndarray,
    marginal: _MarginalScores,
    crps_clim: np.ndarray,
    persist: np.ndarray,
) -> tuple[ResourceScores, dict[str, np.ndarray]]:
    """Marginal scores over the active steps, and the daily sums of each CRPS.

    Returns
    -------
    scores : ResourceScores
    daily : dict
        ``crps``, ``crps_climatology``, ``crps_persistence``: (days,) [unit of the series].
    """
    y, crps_steps = held.y, marginal.crps_steps
    daily = {
        "crps": np.where(act, crps_steps, 0.0).sum(axis=1),
        "crps_climatology": np.where(act, crps_clim, 0.0).sum(axis=1),
        "crps_persistence": np.where(act, np.abs(y - persist), 0.0).sum(axis=1),
    }
    scores = ResourceScores(
        crps=float(crps_steps[act].mean()),
        crps_climatology=float(crps_clim[act].mean()),
        crps_persistence=float(np.abs(y - persist)[act].mean()),
        coverage_10_90=marginal.coverage_10_90,
        pit_histogram=[float(h) for h in marginal.pit_histogram],
        n_days=len(held.test),
    )
    return scores, daily


def _copula_scenario_scores(
    fc: QuantileForecaster,
    q: np.ndarray,
    held: _HeldOut,
    act: np.ndarray,
    clim_members: list[np.ndarray],
    n_samples: int,
    n_keep: int,
    rng: np.random.Generator,
    calibration: tuple[int, float] = (30, float("nan")),
) -> _ScenarioScores:
    """Score ``n_samples`` copula and independent trajectories of each held-out day.

    Only the active steps of each day count; ``q`` is (days, 96, levels) [pu]. The
    calibration figures of each day's trajectories are taken at ``calibration[0]``
    minutes, the spread relative to the level ``calibration[1]`` [pu].
    """
    calibration_minutes, level = calibration
    from forecasts.copula import sample_uniform

    scen = _ScenarioScores()
    weight = np.full(n_samples, 1.0 / n_samples)
    for i in range(len(held.test)):
        rows = act[i]
        obs = held.y[i, rows]
        u_cop = sample_uniform(n_samples, STEPS_PER_DAY, fc.autocorrelation_, rng)[:, 0]
        u_ind = sample_uniform(
            n_samples, STEPS_PER_DAY, fc.autocorrelation_, rng, independent=True
        )[:, 0]
        day = fc.quantiles_at(q[i], u_cop.T).T
        scen.calibration.append(
            scenario_deviation_calibration(block_means(day, calibration_minutes), weight, level)
        )
        cop = day[:, rows]
        ind = fc.quantiles_at(q[i], u_ind.T).T[:, rows]
        scen.add(obs, cop, ind, clim_members[i][:, rows], n_samples, n_keep)
    return scen


def evaluate_source(
    source: str | Source,
    horizon: str = "day_ahead",
    *,
    history: pd.Series | None = None,
    test_day_step: int = 1,
    n_samples: int = 500,
    reduced_scenarios: int = 10,
    max_iter: int = 100,
    issue_hour: int = 12,
    covariates: pd.DataFrame | None = None,
    seed: int = 0,
    keep_forecasts: bool = False,
    calibration_minutes: int = 30,
) -> tuple[ResourceScores, dict[str, Any]]:
    """Fit on the training days of ``source`` and score the held-out days.

    Parameters
    ----------
    source : str or Source
        History source (:data:`forecasts.history.SOURCES`) or a user series.
    horizon : {"day_ahead", "1h"}
    history : pandas.Series, optional
        Use this series instead of the source's embedded one (same kind).
    test_day_step : int
        Score every n-th held-out day (1: all).
    n_samples : int
        Copula trajectories per day for the scenario scores (day-ahead only).
    reduced_scenarios : int
        Size of the fast-forward reduced set whose energy score is reported.
    max_iter, issue_hour : see :class:`~forecasts.models.QuantileForecaster`
    covariates : pandas.DataFrame, optional
        Extra features (e.g. weather forecasts) indexed by quarter-hour.
    seed : int
    keep_forecasts : bool
        Also return the quantile forecasts, observations and PIT values (for plots).
    calibration_minutes : int
        Resolution of the calibration figures (15, 30, 60) [min]: day-ahead, ``extra``
        holds ``error_spread`` and ``error_lag1`` of the held-out errors (observed minus
        predictive mean) and ``scenario_spread`` and ``scenario_lag1`` of the copula
        trajectories (:mod:`forecasts.calibration`); both spreads are relative to the
        held-out days' mean observed level.

    Returns
    -------
    scores : ResourceScores
    details : dict
        ``forecaster`` and, with ``keep_forecasts``, ``days``, ``observed_pu``,
        ``quantiles_pu`` (days, 96, 3) at 0.1/0.5/0.9 and ``pit``.
    """
    if history is None:
        history = load_history(source, field="forecast.evaluation")
    src = source_info(source)
    held = _held_out(
        history, test_day_step, f"forecast.evaluation: no held-out day left for {source!r}"
    )
    fc = QuantileForecaster.for_source(
        source, horizon=horizon, issue_hour=issue_hour, max_iter=max_iter, random_state=seed
    ).fit(history, held.train, covariates)
    q = fc.predict_quantiles(history, held.test, covariates)  # (D, 96, L)
    act = _active(history, source).reshape(-1, STEPS_PER_DAY)[held.pos]
    rng = np.random.default_rng(seed)
    marginal = _marginal_scores(fc, q, held.y, act, src.upper_pu, rng)
    crps_clim, clim_members = _climatology_crps(history, held)
    persist = _persistence(history, held, src, horizon, issue_hour)
    scores, daily = _source_scores(held, act, marginal, crps_clim, persist)
    if horizon == "day_ahead":
        errors = error_calibration(
            np.where(act, held.y, np.nan),
            np.where(act, fc.predictive_mean(q), np.nan),
            calibration_minutes,
        )
        scen = _copula_scenario_scores(
            fc,
            q,
            held,
            act,
            clim_members,
            n_samples,
            reduced_scenarios,
            rng,
            (calibration_minutes, errors["level"]),
        )
        scen.record(scores, daily, n_samples, reduced_scenarios)
        scores.extra["copula_correlation_steps"] = float(fc.correlation_steps_)
        scores.extra["error_spread"] = errors["spread"]
        scores.extra["error_lag1"] = errors["lag1"]
        scores.extra["calibration_minutes"] = calibration_minutes
    _attach_intervals(scores, daily, seed)
    scores.extra["source"] = src.name
    scores.extra["horizon"] = horizon
    scores.extra["train_days"] = _day_range(held.train)
    scores.extra["test_days"] = _day_range(held.test)
    details: dict[str, Any] = {"forecaster": fc}
    if keep_forecasts:
        details.update(
            days=held.test,
            observed_pu=held.y,
            quantiles_pu=marginal.quantiles_1090,
            pit=marginal.pit,
            active=act,
        )
    return scores, details


# --------------------------------------------------------------------------- EV charging

#: sessions drawn to estimate the mean energy of one weekday session
_EV_ENERGY_DRAWS = 20_000


def ev_history(charger_type: str) -> pd.Series:
    """SimBench 2016 mean charging power per charger on the fixed UTC+1 clock [kW]."""
    obs = load_ev_observations()
    if charger_type not in obs.columns:
        raise ForecastError(
            f"forecast.evaluation.ev.charger_type: no measured profile for {charger_type!r}; "
            f"choose one of {sorted(obs.columns)}"
        )
    series = obs[charger_type].astype(float)
    series.attrs["units"] = "kW"
    return series


def fit_plug_in_probability(
    history: pd.Series, train_days: pd.DatetimeIndex, charger_type: str, seed: int = 0
) -> float:
    """Weekday probability of a session per charger that matches the measured energy.

    Ratio of the mean weekday energy per charger of the training days [kWh] to the mean
    energy of one sampled weekday session [kWh], capped at 1.

    Returns
    -------
    float
        Plug-in probability [-] in (0, 1].
    """
    weekday = train_days[train_days.dayofweek < 5]
    if len(weekday) == 0:
        raise ForecastError("forecast.evaluation.ev: no weekday among the training days")
    energy_kwh = history.to_numpy().reshape(-1, STEPS_PER_DAY)[_positions(history, weekday)]
    measured_kwh = float(energy_kwh.sum(axis=1).mean() * 0.25)
    sessions = sample_sessions(
        dt.date(2016, 6, 15),  # a Wednesday; weekday statistics do not depend on the date
        _EV_ENERGY_DRAWS,
        charger_type,
        np.random.default_rng(seed),
        statistics=load_ev_statistics(),
    )
    session_kwh = float(sessions["energy_kwh"].mean())
    if measured_kwh <= 0.0:
        raise ForecastError("forecast.evaluation.ev: the measured profile has no energy")
    return min(1.0, measured_kwh / session_kwh)


def _ev_ensemble(
    test: pd.DatetimeIndex,
    charger_type: str,
    n_chargers: int,
    n_samples: int,
    seed: int,
    plug_in_probability: float,
) -> np.ndarray:
    """Uncontrolled charging scenarios per charger of each held-out day.

    Returns
    -------
    numpy.ndarray
        (days, n_samples, 96) [kW per charger].
    """
    ens = np.empty((len(test), n_samples, STEPS_PER_DAY))
    for i, day in enumerate(test):
        ds = ev_scenarios(
            day.date(),
            n_samples,
            {charger_type: n_chargers},
            seed=seed,
            plug_in_probability=plug_in_probability,
        )
        ens[i] = ds["p_uncontrolled_kw"].isel(charger_type=0).to_numpy() / n_chargers
    return ens


def _ensemble_pit(ens: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Randomised PIT of ``y`` (days, 96) in the ensemble ``ens`` (days, members, 96) [-]."""
    below = (ens < y[:, None, :]).mean(axis=1)
    ties = (ens == y[:, None, :]).mean(axis=1)
    return below + ties * rng.random(y.shape)


def _shuffled_scenario_scores(
    ens: np.ndarray,
    held: _HeldOut,
    clim_members: list[np.ndarray],
    n_samples: int,
    n_keep: int,
    rng: np.random.Generator,
) -> _ScenarioScores:
    """Score the scenarios of each day against their steps shuffled across scenarios."""
    scen = _ScenarioScores()
    for i in range(len(held.test)):
        shuffled = rng.permuted(ens[i], axis=0)
        scen.add(held.y[i], ens[i], shuffled, clim_members[i], n_samples, n_keep)
    return scen


def _ev_marginal_scores(
    held: _HeldOut,
    crps: np.ndarray,
    crps_clim: np.ndarray,
    persist: np.ndarray,
    pit: np.ndarray,
) -> tuple[ResourceScores, dict[str, np.ndarray]]:
    """Marginal EV scores over all steps, and the daily sums of each CRPS.

    ``crps``, ``crps_clim``, ``persist`` and ``pit`` are (days, 96) [kW per charger; PIT -].
    """
    y = held.y
    scores = ResourceScores(
        crps=float(crps.mean()),
        crps_climatology=float(crps_clim.mean()),
        crps_persistence=float(np.abs(y - persist).mean()),
        coverage_10_90=float(np.mean((pit >= 0.1) & (pit <= 0.9))),
        pit_histogram=[float(h) for h in np.histogram(pit, bins=10, range=(0, 1))[0] / pit.size],
        n_days=len(held.test),
    )
    daily = {
        "crps": crps.sum(axis=1),
        "crps_climatology": crps_clim.sum(axis=1),
        "crps_persistence": np.abs(y - persist).sum(axis=1),
    }
    return scores, daily


def evaluate_ev(
    charger_type: str = "home",
    n_chargers: int = 6,
    *,
    test_day_step: int = 1,
    n_samples: int = 200,
    reduced_scenarios: int = 10,
    issue_hour: int = 12,
    seed: int = 0,
    keep_forecasts: bool = False,
    calibration_minutes: int = 30,
) -> tuple[ResourceScores, dict[str, Any]]:
    """Score day-ahead EV charging scenarios on the held-out SimBench weeks.

    Parameters
    ----------
    charger_type : {"home", "workplace"}
        Charger type with a measured profile.
    n_chargers : int
        Size of the charger pool whose mean power per charger is forecast. The observed
        series is the mean of six single-charger SimBench profiles, so 6 (default) is the
        pool comparable with it.
    test_day_step : int
        Score every n-th held-out day.
    n_samples : int
        Scenarios per day (the ensemble).
    reduced_scenarios : int
        Size of the fast-forward reduced set whose energy score is reported.
    issue_hour : int
        Issue hour of the persistence baseline on the day before [h].
    seed : int
    keep_forecasts : bool
        Also return observations and the 10/50/90 % quantiles (for plots).
    calibration_minutes : int
        Resolution of the calibration figures [min] (see :func:`evaluate_source`; the
        point forecast is the scenarios' mean).

    Returns
    -------
    scores : ResourceScores
        In kW per charger. Most quarter-hours have no charging in both the observation
        and many scenarios; ``coverage_10_90`` is therefore the share of randomised PIT
        values in [0.1, 0.9] (for a continuous forecast the same as the share of
        observations inside the 10-90 % interval, and not inflated by ties at zero).
    details : dict
        ``plug_in_probability`` and, with ``keep_forecasts``, ``days``, ``observed_pu``
        (kW), ``quantiles_pu`` (days, 96, 3) and ``pit``.
    """
    history = ev_history(charger_type)
    held = _held_out(
        history, test_day_step, "forecast.evaluation.test_day_step leaves no held-out day for ev"
    )
    p_plug = fit_plug_in_probability(history, held.train, charger_type, seed)
    rng = np.random.default_rng(seed)
    ens = _ev_ensemble(held.test, charger_type, n_chargers, n_samples, seed, p_plug)
    crps = _sr().crps_ensemble(held.y, np.moveaxis(ens, 1, -1))
    q = np.moveaxis(np.quantile(ens, [0.1, 0.5, 0.9], axis=1), 0, -1)  # (D, 96, 3)
    pit = _ensemble_pit(ens, held.y, rng)
    crps_clim, clim_members = _climatology_crps(history, held)
    scen = _shuffled_scenario_scores(ens, held, clim_members, n_samples, reduced_scenarios, rng)
    persist = persistence_day_ahead(held.values, held.pos, issue_hour)
    scores, daily = _ev_marginal_scores(held, crps, crps_clim, persist, pit)
    errors = error_calibration(held.y, ens.mean(axis=1), calibration_minutes)
    weight = np.full(n_samples, 1.0 / n_samples)
    scen.calibration = [
        scenario_deviation_calibration(block_means(e, calibration_minutes), weight, errors["level"])
        for e in ens
    ]
    scen.record(scores, daily, n_samples, reduced_scenarios)
    _attach_intervals(scores, daily, seed)
    scores.extra.update(
        error_spread=errors["spread"],
        error_lag1=errors["lag1"],
        calibration_minutes=calibration_minutes,
        source=f"simbench_ev_{charger_type}",
        horizon="day_ahead",
        units="kW per charger",
        n_chargers=n_chargers,
        plug_in_probability=p_plug,
        train_days=_day_range(held.train),
        test_days=_day_range(held.test),
    )
    details: dict[str, Any] = {"plug_in_probability": p_plug}
    if keep_forecasts:
        details.update(days=held.test, observed_pu=held.y, quantiles_pu=q, pit=pit.ravel())
    return scores, details


# --------------------------------------------------------------------------- all resources

#: keys of :func:`evaluate_all`, in order
EVALUATION_KEYS = ("pv", "load", "pv_1h", "load_1h", "ev")


def evaluate_all(
    *,
    pv_source: str = "entsoe_de",
    load_source: str = "simbench_load_transmission",
    ev_charger_type: str = "home",
    ev_n_chargers: int = 6,
    test_day_step: int = 1,
    n_samples: int = 500,
    ev_n_samples: int = 200,
    reduced_scenarios: int = 10,
    max_iter: int = 100,
    issue_hour: int = 12,
    covariates: dict[str, pd.DataFrame] | None = None,
    seed: int = 0,
    keep_forecasts: bool = False,
    progress: Any = None,
    scheduler_sources: dict[str, str | Source] | None = None,
    calibration_minutes: int = 30,
) -> tuple[dict[str, ResourceScores], dict[str, dict[str, Any]]]:
    """Evaluate PV and load (day-ahead and one hour ahead) and EV charging (day-ahead).

    Parameters
    ----------
    pv_source, load_source : str
        History sources (:data:`forecasts.history.SOURCES`).
    ev_charger_type, ev_n_chargers
        EV pool, see :func:`evaluate_ev`.
    covariates : dict, optional
        Covariate tables keyed ``pv`` or ``load``.
    progress : callable, optional
        Called with each key before it is evaluated.
    scheduler_sources : dict, optional
        The sources the scheduler forecasts (resource -> source, ``forecast.sources``):
        each source not already scored as ``pv`` or ``load`` is scored day-ahead too,
        under the key ``scheduler_<resource>``.
    calibration_minutes : int
        Resolution of the calibration figures (the study's second-stage resolution) [min].

    Returns
    -------
    scores : dict
        Keys ``pv``, ``load``, ``pv_1h``, ``load_1h``, ``ev`` and ``scheduler_<resource>``.
    details : dict
        Per key, the ``details`` of :func:`evaluate_source` / :func:`evaluate_ev`.
    """
    covariates = covariates or {}
    scores: dict[str, ResourceScores] = {}
    details: dict[str, dict[str, Any]] = {}
    for key in EVALUATION_KEYS:
        if progress is not None:
            progress(key)
        if key == "ev":
            scores[key], details[key] = evaluate_ev(
                ev_charger_type,
                ev_n_chargers,
                test_day_step=test_day_step,
                n_samples=ev_n_samples,
                reduced_scenarios=reduced_scenarios,
                issue_hour=issue_hour,
                seed=seed,
                keep_forecasts=keep_forecasts,
                calibration_minutes=calibration_minutes,
            )
            continue
        resource, _, suffix = key.partition("_")
        scores[key], details[key] = evaluate_source(
            pv_source if resource == "pv" else load_source,
            "1h" if suffix else "day_ahead",
            test_day_step=test_day_step,
            n_samples=n_samples,
            reduced_scenarios=reduced_scenarios,
            max_iter=max_iter,
            issue_hour=issue_hour,
            covariates=covariates.get(resource),
            seed=seed,
            keep_forecasts=keep_forecasts,
            calibration_minutes=calibration_minutes,
        )
    for resource, source in (scheduler_sources or {}).items():
        scored = source_info(source)
        if scored.file is None and scored.name in (pv_source, load_source):
            continue
        key = f"scheduler_{resource}"
        if progress is not None:
            progress(key)
        scores[key], details[key] = evaluate_source(
            source,
            "day_ahead",
            test_day_step=test_day_step,
            n_samples=n_samples,
            reduced_scenarios=reduced_scenarios,
            max_iter=max_iter,
            issue_hour=issue_hour,
            seed=seed,
            keep_forecasts=keep_forecasts,
            calibration_minutes=calibration_minutes,
        )
    return scores, details


def scores_table(scores: dict[str, ResourceScores]) -> str:
    """A plain-text table of the main scores, one row per key, then :func:`skills_table`
    and :func:`calibration_table`."""

    def num(v: float | None) -> str:
        return "-" if v is None else f"{v:.4f}"

    rows = {
        key: {
            "CRPS": num(s.crps),
            "clim.": num(s.crps_climatology),
            "pers.": num(s.crps_persistence),
            "skill": f"{s.crps_skill_vs_climatology:.1%}",
            "cov10-90": f"{s.coverage_10_90:.1%}",
            "ES": num(s.energy_score),
            "ES ind.": num(s.energy_score_independent),
            "ES red.": num(s.energy_score_reduced),
            "days": s.n_days,
            "unit": s.extra.get("units", "pu"),
        }
        for key, s in scores.items()
    }
    blocks = [_text_table(rows, col_space=8), skills_table(scores), calibration_table(scores)]
    return "\n\n".join(b for b in blocks if b)


def calibration_table(scores: dict[str, ResourceScores]) -> str:
    """Held-out error spread and lag-1 autocorrelation beside the scenarios', per key.

    Rows without scenario figures (one hour ahead) are left out.
    """

    def cell(v: Any, pct: bool) -> str:
        if v is None or not np.isfinite(v):
            return "-"
        return f"{v:.2%}" if pct else f"{v:.3f}"

    rows = {
        key: {
            "error spread": cell(s.extra.get("error_spread"), True),
            "scen. spread": cell(s.extra.get("scenario_spread"), True),
            "error lag-1": cell(s.extra.get("error_lag1"), False),
            "scen. lag-1": cell(s.extra.get("scenario_lag1"), False),
            "step [min]": s.extra.get("calibration_minutes", "-"),
        }
        for key, s in scores.items()
        if "scenario_spread" in s.extra
    }
    if not rows:
        return ""
    return _text_table(rows, "calibration")


def _skill_cell(scores: ResourceScores, name: str) -> str:
    value = scores.skills().get(name)
    if value is None:
        return "-"
    lo, hi = scores.skill_intervals.get(name, (np.nan, np.nan))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{value:+.1%}"
    return f"{value:+.1%} [{lo:+.1%}, {hi:+.1%}]"


def skills_table(scores: dict[str, ResourceScores]) -> str:
    """A plain-text table of every skill score with its bootstrap interval, one row per key."""
    pct = f"{SKILL_INTERVAL_LEVEL:.0%}"
    heads = {
        "crps_skill_vs_climatology": f"CRPS vs clim. [{pct}]",
        "crps_skill_vs_persistence": f"CRPS vs pers. [{pct}]",
        "energy_score_skill_vs_climatology": f"ES vs clim. [{pct}]",
    }
    rows = {
        key: {heads[name]: _skill_cell(s, name) for name in SKILL_SCORES} | {"days": s.n_days}
        for key, s in scores.items()
    }
    return _text_table(rows, "skill")


def _text_table(rows: dict[str, dict[str, Any]], corner: str = "", col_space: int = 0) -> str:
    """Rows (key -> column -> cell) as aligned text: keys left, cells right-aligned, with
    ``corner`` above the keys."""
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.columns.name = corner or None
    return frame.to_string(col_space=col_space)


def small_sample_warning(
    scores: dict[str, ResourceScores], min_days: int = MIN_CONFIDENT_DAYS
) -> str | None:
    """One line saying that the skill scores rest on a small sample, else None.

    Returned when a resource was scored on fewer than ``min_days`` held-out days, or when
    the interval of a skill score straddles 0 (its sign is not settled by the sample).
    """
    few = {k: s.n_days for k, s in scores.items() if s.n_days < min_days}
    straddle = sum(lo < 0.0 < hi for s in scores.values() for lo, hi in s.skill_intervals.values())
    if not few and not straddle:
        return None
    days = sorted({s.n_days for s in scores.values()})
    counts = f"{days[0]}" if len(days) == 1 else f"{days[0]} to {days[-1]}"
    pct = f"{SKILL_INTERVAL_LEVEL:.0%}"
    message = f"{counts} held-out days scored per resource"
    if few:
        message += (
            f" (fewer than {min_days}): the skill scores are uncertain, see their {pct} intervals"
        )
    else:
        message += f": some skill scores are uncertain, see their {pct} intervals"
    if straddle:
        message += f" ({straddle} include 0)"
    if few:
        message += "; a smaller test day step scores more days"
    return message
