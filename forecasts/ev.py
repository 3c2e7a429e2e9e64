"""EV charging sessions drawn from ElaadNL statistics, and their power and flexibility.

Three layers:

* data: :class:`EVStatistics` (frozen, read-only arrays) from :func:`load_ev_statistics`,
  and the SimBench 2016 per-charger profiles from :func:`load_ev_observations`
  (``forecasts/data``, see ``EV_PROVENANCE.md``);
* pure functions: :func:`sample_sessions` (one day, one charger type, a ``Generator``
  passed in), :func:`charging_profile_kw` and :func:`flexibility_envelope` (sessions to
  arrays on a regular time grid);
* orchestrator: :func:`ev_scenarios`, seeded scenarios as an ``xarray.Dataset``.

The sessions depend on the day only through its weekday (and the seed), so a study of any
year samples them; the SimBench 2016 profiles serve only to score them
(``forecasts.evaluate``).

Glossary (times are hours from 00:00 of the sampled day, on the clock of the data)

=================  ========================================================================
``arrival_h``      plug-in time [h], in ``[0, 24)`` for the day's own sessions
``departure_h``    plug-out time [h], ``arrival_h < departure_h <= 48``
``energy_kwh``     energy the EV takes in the session [kWh]
``power_kw``       charging power of the session (EV and charger limit) [kW]
``dt_h``           length of a time step [h]
``e_min_kwh``      cumulative energy since the horizon start if every EV charges as late as
                   possible, at the end of each step [kWh]
``e_max_kwh``      the same if every EV charges as early as possible (uncontrolled) [kWh]
``p_max_kw``       mean over the step of the summed power of the connected EVs [kW]
=================  ========================================================================

Modelling choices
-----------------
* **Sessions per charger.** At most one session per charger and day. On weekdays every
  charger gets one (``n_chargers`` is the number of EVs that plug in). At weekends a charger
  gets one with probability ``EVStatistics.weekend_session_probability``: 1 for ``home`` and
  ``public``; 0.251 for ``workplace``, the weekend/weekday ratio of the daily energy of the
  SimBench 2016 workplace profiles (ElaadNL publishes no weekend workplace statistics).
* **Arrival.** 15 min slot drawn from the ElaadNL weekday or weekend (Saturday, Sunday;
  public holidays are not recognised) arrival distribution of the charger type, then uniform
  within the slot. Workplace chargers at weekends use the ``public`` weekend distribution.
* **Connection time and energy.** Each is drawn independently by inverse transform from the
  ElaadNL curve "value exceeded by p % of charging events" (``p = 100 u``, ``u`` uniform,
  linear interpolation between the published whole percentages) and then multiplied by
  ``m(t) / m_bar``: ``m(t)`` is the published mean for the arrival half-hour ``t`` and
  ``m_bar`` its average weighted by the weekday arrival distribution, so (before the bounds
  below) the mean over all weekday sessions equals the mean of the curve and the mean per
  arrival time follows the published table. Half-hours without a published mean
  (workplace, 19:00-04:30) use 1. Scaling shifts the quantiles of the mixture (weekday
  median connection time 4-12 % below the curve's) and stretches the tail for arrival
  times with long mean sessions; the 48 h bound then cuts it.
* **Bounds.** Connection time at least ``MIN_CONNECTION_H`` (the curves reach 0 h) and at
  most up to ``MAX_DEPARTURE_H`` = 48 h after the day's 00:00. Power from the ElaadNL 2020
  curve, at least its smallest positive value (1.9 kW; the curve ends at 0 kW at 100 %),
  capped by ``charger_power_kw`` if given. Energy is capped at ``power_kw * connection``
  so that every session can be served. As connection time and energy are drawn
  independently (ElaadNL publishes no joint distribution), about a quarter of the sessions
  are capped and the mean energy per session is 20-30 % below the curve's mean.
* **Neighbouring days** (:func:`ev_scenarios`). Sessions of the day before and, if the
  horizon reaches into it, the day after are sampled as well and shifted by -24 h / +24 h,
  so overnight connections are present at the start of the horizon. A charger still
  occupied when its next session would arrive skips that session.
* **State at the horizon start.** An EV that arrived before the horizon start charged
  uncontrolled until then; only its remaining energy enters the envelope.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType

import numpy as np
import pandas as pd
import xarray as xr

from forecasts.errors import ForecastError

__all__ = [
    "CHARGER_TYPES",
    "MAX_DEPARTURE_H",
    "MIN_CONNECTION_H",
    "EVStatistics",
    "charging_profile_kw",
    "ev_scenarios",
    "exceedance_value",
    "flexibility_envelope",
    "load_ev_observations",
    "load_ev_statistics",
    "sample_sessions",
]

#: charger types, in the order used for random draws and outputs
CHARGER_TYPES: tuple[str, ...] = ("home", "workplace", "public")
#: shortest connection [h] (the ElaadNL curves reach 0 h at 100 % of events)
MIN_CONNECTION_H = 1.0 / 60.0
#: latest departure [h after the sampled day's 00:00]
MAX_DEPARTURE_H = 48.0
#: year of the ElaadNL charging-power curve used for sampling
POWER_YEAR = "2020"
#: arrival distribution used for workplace chargers at weekends
WEEKEND_WORKPLACE_ARRIVAL = "public"
VALID_RESOLUTIONS: tuple[int, ...] = (5, 15, 30, 60)
SESSION_COLUMNS: tuple[str, ...] = ("arrival_h", "departure_h", "energy_kwh", "power_kw")

_STATISTICS_FILE = "elaadnl_ev_statistics.json"
_OBSERVATIONS_FILE = "simbench_ev_2016_15min.csv.gz"


# --------------------------------------------------------------------------- data


def _frozen(values: object) -> np.ndarray:
    out = np.array(values, dtype=float)  # a copy; None -> nan
    out.setflags(write=False)
    return out


def _frozen_map(mapping: Mapping[str, object]) -> Mapping[str, np.ndarray]:
    return MappingProxyType({k: _frozen(v) for k, v in mapping.items()})


@dataclass(frozen=True)
class EVStatistics:
    """Empirical charging-session statistics (ElaadNL), read-only.

    Attributes
    ----------
    arrival_weekday, arrival_weekend : Mapping[str, numpy.ndarray]
        Probability [-] of arriving in each 15 min slot from 00:00 (96 values summing to 1)
        per charger type; ``arrival_weekend`` has ``home`` and ``public`` only.
    percent_of_events : numpy.ndarray
        0, 1, ..., 100 [%], the abscissa of the exceedance curves.
    connection_time_h, energy_kwh : Mapping[str, numpy.ndarray]
        Per charger type, the connection time [h] and energy [kWh] exceeded by
        ``percent_of_events`` % of sessions (non-increasing).
    power_kw : numpy.ndarray
        Charging power [kW] exceeded by ``percent_of_events`` % of sessions (2020, all types).
    mean_connection_time_h, mean_energy_kwh : Mapping[str, numpy.ndarray]
        Mean connection time [h] and energy [kWh] of sessions arriving in each 30 min slot
        from 00:00 (48 values, NaN where not published).
    weekend_session_probability : Mapping[str, float]
        Probability [-] that a charger gets a session on a Saturday or Sunday.
    """

    arrival_weekday: Mapping[str, np.ndarray]
    arrival_weekend: Mapping[str, np.ndarray]
    percent_of_events: np.ndarray
    connection_time_h: Mapping[str, np.ndarray]
    energy_kwh: Mapping[str, np.ndarray]
    power_kw: np.ndarray
    mean_connection_time_h: Mapping[str, np.ndarray]
    mean_energy_kwh: Mapping[str, np.ndarray]
    weekend_session_probability: Mapping[str, float]

    def __post_init__(self) -> None:
        n_curve = len(self.percent_of_events)
        checks = {
            "arrival_weekday": (self.arrival_weekday, CHARGER_TYPES, 96),
            "arrival_weekend": (self.arrival_weekend, ("home", "public"), 96),
            "connection_time_h": (self.connection_time_h, CHARGER_TYPES, n_curve),
            "energy_kwh": (self.energy_kwh, CHARGER_TYPES, n_curve),
            "mean_connection_time_h": (self.mean_connection_time_h, CHARGER_TYPES, 48),
            "mean_energy_kwh": (self.mean_energy_kwh, CHARGER_TYPES, 48),
        }
        for name, (mapping, types, size) in checks.items():
            for kind in types:
                if kind not in mapping or np.shape(mapping[kind]) != (size,):
                    raise ForecastError(
                        f"EVStatistics.{name}[{kind!r}] must be an array of {size} values"
                    )
        if np.shape(self.power_kw) != (n_curve,):
            raise ForecastError(f"EVStatistics.power_kw must be an array of {n_curve} values")
        for kind in CHARGER_TYPES:
            p = self.weekend_session_probability.get(kind)
            if p is None or not 0.0 <= p <= 1.0:
                raise ForecastError(
                    f"EVStatistics.weekend_session_probability[{kind!r}] must be in [0, 1], got {p}"
                )


@cache
def load_ev_statistics() -> EVStatistics:
    """The ElaadNL statistics shipped in ``forecasts/data`` (cached, read-only).

    Returns
    -------
    EVStatistics
        Arrival shares are converted from percent to probabilities summing to 1.
    """
    path = resources.files("forecasts") / "data" / _STATISTICS_FILE
    raw = json.loads(path.read_text(encoding="utf-8"))
    arrival = raw["arrival"]
    curves = raw["exceedance"]
    means = raw["mean_per_arrival"]

    def shares(table: Mapping[str, list[float]]) -> dict[str, np.ndarray]:
        return {k: np.asarray(v, dtype=float) / np.sum(v) for k, v in table.items()}

    weekend = raw["weekend_session_probability"]
    return EVStatistics(
        arrival_weekday=_frozen_map(shares(arrival["weekday_percent"])),
        arrival_weekend=_frozen_map(shares(arrival["weekend_percent"])),
        percent_of_events=_frozen(curves["percent_of_events"]),
        connection_time_h=_frozen_map(curves["connection_time_h"]),
        energy_kwh=_frozen_map(curves["energy_kwh"]),
        power_kw=_frozen(curves["power_kw_by_year"][POWER_YEAR]),
        mean_connection_time_h=_frozen_map(means["connection_time_h"]),
        mean_energy_kwh=_frozen_map(means["energy_kwh"]),
        weekend_session_probability=MappingProxyType({k: float(weekend[k]) for k in CHARGER_TYPES}),
    )


@cache
def _read_observations() -> pd.DataFrame:
    path = resources.files("forecasts") / "data" / _OBSERVATIONS_FILE
    with resources.as_file(path) as p:
        obs = pd.read_csv(p, parse_dates=["time"], index_col="time")
    # daylight-saving labels, gap-free values: by position on the fixed UTC+1 clock
    obs.index = pd.date_range(obs.index[0], periods=len(obs), freq="15min", name="time")
    return obs


def load_ev_observations() -> pd.DataFrame:
    """SimBench 2016 quarter-hourly mean charging power per charger [kW] (a copy).

    Returns
    -------
    pandas.DataFrame
        Index ``time``: quarter-hour starts on the fixed UTC+1 clock, the same as
        :func:`cases.profiles.load_profiles` (the file keeps SimBench's daylight-saving
        labels; the rows are taken by position).
        Columns ``home`` (mean of the ``HLS_*`` profiles) and ``workplace`` (mean of the
        single-charger ``APLS_*`` profiles) [kW per charger]; see ``EV_PROVENANCE.md``.
    """
    out = _read_observations().copy()
    out.attrs["units"] = "kW"
    return out


# --------------------------------------------------------------------------- checks


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_charger_type(charger_type: object, field: str = "charger_type") -> str:
    if charger_type not in CHARGER_TYPES:
        raise ForecastError(f"{field} must be one of {CHARGER_TYPES}, got {charger_type!r}")
    return str(charger_type)


def _check_count(value: object, field: str) -> int:
    if not _is_int(value) or value < 0:
        raise ForecastError(f"{field} must be an integer >= 0, got {value!r}")
    return int(value)


def _check_probability(value: object, field: str = "plug_in_probability") -> float:
    if not (isinstance(value, numbers.Real) and not isinstance(value, bool) and 0 < value <= 1):
        raise ForecastError(f"{field} must be a number in (0, 1], got {value!r}")
    return float(value)


def _check_fraction(value: object) -> float:
    if not (isinstance(value, numbers.Real) and not isinstance(value, bool) and 0 <= value <= 1):
        raise ForecastError(f"prior_charged_fraction must be a number in [0, 1], got {value!r}")
    return float(value)


def _check_window(resolution_minutes: object, start_hour: object, horizon_hours: object) -> None:
    if resolution_minutes not in VALID_RESOLUTIONS or not _is_int(resolution_minutes):
        raise ForecastError(
            f"resolution_minutes must be one of {VALID_RESOLUTIONS}, got {resolution_minutes!r}"
        )
    if not _is_int(start_hour) or not 0 <= start_hour <= 23:
        raise ForecastError(f"start_hour must be an integer in 0..23 [h], got {start_hour!r}")
    if not _is_int(horizon_hours) or not 1 <= horizon_hours <= 48:
        raise ForecastError(f"horizon_hours must be an integer in 1..48 [h], got {horizon_hours!r}")


def _session_arrays(sessions: pd.DataFrame) -> tuple[np.ndarray, ...]:
    """The four session columns as float arrays, checked for feasibility."""
    missing = [c for c in SESSION_COLUMNS if c not in sessions.columns]
    if missing:
        raise ForecastError(
            f"sessions must have columns {SESSION_COLUMNS}, missing {missing}; "
            "use sample_sessions to make them"
        )
    arr, dep, energy, power = (sessions[c].to_numpy(dtype=float) for c in SESSION_COLUMNS)
    if not np.all(np.isfinite(np.concatenate([arr, dep, energy, power]))):
        raise ForecastError("sessions must hold finite numbers, got NaN or inf")
    if np.any(dep <= arr):
        raise ForecastError("sessions.departure_h must exceed arrival_h in every row")
    if np.any(power <= 0.0) or np.any(energy < 0.0):
        raise ForecastError("sessions.power_kw must be > 0 and energy_kwh >= 0 in every row")
    if np.any(energy > power * (dep - arr) * (1.0 + 1e-9)):
        raise ForecastError(
            "sessions.energy_kwh must not exceed power_kw * (departure_h - arrival_h) "
            "(the EV could not be charged in time)"
        )
    return arr, dep, energy, power


# --------------------------------------------------------------------------- sampling


def exceedance_value(
    percent_of_events: np.ndarray, values: np.ndarray, percent: np.ndarray
) -> np.ndarray:
    """Value exceeded by ``percent`` % of events, interpolated on an exceedance curve.

    Parameters
    ----------
    percent_of_events : numpy.ndarray
        Increasing abscissa of the curve [%], e.g. 0, 1, ..., 100.
    values : numpy.ndarray
        Non-increasing curve values (in their own unit) at ``percent_of_events``.
    percent : numpy.ndarray
        Where to evaluate [%]; ``100 * u`` with ``u`` uniform on [0, 1) draws from the
        distribution the curve describes (inverse transform).

    Returns
    -------
    numpy.ndarray
        Linearly interpolated values, same shape as ``percent``.
    """
    return np.interp(percent, percent_of_events, values)


def _arrival_probabilities(stats: EVStatistics, charger_type: str, weekend: bool) -> np.ndarray:
    if not weekend:
        return stats.arrival_weekday[charger_type]
    if charger_type == "workplace":
        return stats.arrival_weekend[WEEKEND_WORKPLACE_ARRIVAL]
    return stats.arrival_weekend[charger_type]


def _arrival_scale(
    mean_per_half_hour: np.ndarray, arrival_weekday: np.ndarray, arrival_h: np.ndarray
) -> np.ndarray:
    """Factor ``m(t) / m_bar`` [-] for sessions arriving at ``arrival_h`` (see module notes)."""
    weight = arrival_weekday.reshape(48, 2).sum(axis=1)  # 15 min -> 30 min slots
    known = np.isfinite(mean_per_half_hour)
    if not known.any():
        return np.ones(np.shape(arrival_h))
    m_bar = np.sum(weight[known] * mean_per_half_hour[known]) / np.sum(weight[known])
    factor = np.where(known, mean_per_half_hour / m_bar, 1.0)
    slot = np.minimum((np.asarray(arrival_h) * 2.0).astype(int), 47)
    return factor[slot]


def sample_sessions(
    day: dt.date,
    n_chargers: int,
    charger_type: str,
    rng: np.random.Generator,
    *,
    charger_power_kw: float | None = None,
    plug_in_probability: float = 1.0,
    statistics: EVStatistics | None = None,
) -> pd.DataFrame:
    """Draw the charging sessions of one day at ``n_chargers`` chargers of one type.

    At most one session per charger: always on weekdays, with probability
    ``statistics.weekend_session_probability[charger_type]`` on Saturdays and Sundays.
    See the module notes for how each quantity is drawn.

    Parameters
    ----------
    day : datetime.date
        The day; its weekday selects the weekday or weekend statistics.
    n_chargers : int
        Number of chargers (>= 0).
    charger_type : str
        ``"home"``, ``"workplace"`` or ``"public"``.
    rng : numpy.random.Generator
        Source of randomness; exactly ``6 * n_chargers`` uniforms are drawn from it.
    charger_power_kw : float or None
        Rated power of the chargers [kW]; caps the sampled EV charging power.
    plug_in_probability : float
        Probability that a charger gets a session on a weekday [-], in (0, 1]; at weekends
        it is multiplied by ``statistics.weekend_session_probability``. 1 (default) is
        the ElaadNL reading (one session per charger and day);
        :func:`forecasts.evaluate.fit_plug_in_probability` fits it to measured profiles.
    statistics : EVStatistics or None
        Statistics to sample from; default :func:`load_ev_statistics`.

    Returns
    -------
    pandas.DataFrame
        One row per session, index ``charger`` (0 .. n_chargers - 1, chargers without a
        session left out), columns ``arrival_h`` [h] in [0, 24), ``departure_h`` [h]
        (``arrival_h < departure_h <= 48``), ``energy_kwh`` [kWh]
        (``<= power_kw * (departure_h - arrival_h)``) and ``power_kw`` [kW].

    Raises
    ------
    ForecastError
        (a ``ValueError``) for an unknown ``charger_type``, a negative ``n_chargers`` or
        a non-positive ``charger_power_kw``.
    """
    charger_type, n = _check_sample_args(
        day, n_chargers, charger_type, charger_power_kw, plug_in_probability
    )
    stats = load_ev_statistics() if statistics is None else statistics
    weekend = day.weekday() >= 5

    u_session, u_slot, u_offset, u_connection, u_energy, u_power = rng.random((6, n))
    p_session = plug_in_probability * (
        stats.weekend_session_probability[charger_type] if weekend else 1.0
    )
    present = u_session < p_session
    arrival_h = _draw_arrival_h(stats, charger_type, weekend, u_slot, u_offset)
    connection_h = _draw_connection_h(stats, charger_type, arrival_h, u_connection)
    power_kw = _draw_power_kw(stats, u_power, charger_power_kw)
    energy_kwh = _draw_energy_kwh(stats, charger_type, arrival_h, u_energy)
    energy_kwh = np.minimum(energy_kwh, power_kw * connection_h)
    return _sessions_frame(present, arrival_h, connection_h, energy_kwh, power_kw)


def _check_sample_args(
    day: object,
    n_chargers: object,
    charger_type: object,
    charger_power_kw: object,
    plug_in_probability: object,
) -> tuple[str, int]:
    """Validate the arguments of :func:`sample_sessions`.

    Returns
    -------
    tuple[str, int]
        The charger type and the number of chargers [-].
    """
    charger_type = _check_charger_type(charger_type)
    n = _check_count(n_chargers, "n_chargers")
    if charger_power_kw is not None and not (
        isinstance(charger_power_kw, numbers.Real)
        and not isinstance(charger_power_kw, bool)
        and charger_power_kw > 0
    ):
        raise ForecastError(
            f"charger_power_kw must be a positive number [kW] or None, got {charger_power_kw!r}"
        )
    if not isinstance(day, dt.date):
        raise ForecastError(f"day must be a datetime.date, got {type(day).__name__}")
    _check_probability(plug_in_probability)
    return charger_type, n


def _draw_arrival_h(
    stats: EVStatistics,
    charger_type: str,
    weekend: bool,
    u_slot: np.ndarray,
    u_offset: np.ndarray,
) -> np.ndarray:
    """Arrival times [h] from uniforms: a slot by inverse CDF, then uniform within it.

    Parameters
    ----------
    stats : EVStatistics
        Source of the arrival distribution.
    charger_type : str
        Charger type.
    weekend : bool
        Whether to use the weekend distribution.
    u_slot, u_offset : numpy.ndarray
        Uniforms on [0, 1) [-] choosing the slot and the position within it.

    Returns
    -------
    numpy.ndarray
        Arrival times [h] in [0, 24).
    """
    cdf = np.cumsum(_arrival_probabilities(stats, charger_type, weekend))
    slot = np.minimum(np.searchsorted(cdf / cdf[-1], u_slot, side="right"), len(cdf) - 1)
    return (slot + u_offset) * (24.0 / len(cdf))


def _draw_connection_h(
    stats: EVStatistics, charger_type: str, arrival_h: np.ndarray, u_connection: np.ndarray
) -> np.ndarray:
    """Connection times [h]: exceedance curve scaled by arrival time, then bounded.

    Parameters
    ----------
    stats : EVStatistics
        Source of the curves.
    charger_type : str
        Charger type.
    arrival_h : numpy.ndarray
        Arrival times [h].
    u_connection : numpy.ndarray
        Uniforms on [0, 1) [-].

    Returns
    -------
    numpy.ndarray
        Connection times [h] in ``[MIN_CONNECTION_H, MAX_DEPARTURE_H - arrival_h]``.
    """
    connection_h = exceedance_value(
        stats.percent_of_events, stats.connection_time_h[charger_type], 100.0 * u_connection
    ) * _arrival_scale(
        stats.mean_connection_time_h[charger_type], stats.arrival_weekday[charger_type], arrival_h
    )
    return np.clip(connection_h, MIN_CONNECTION_H, MAX_DEPARTURE_H - arrival_h)


def _draw_energy_kwh(
    stats: EVStatistics, charger_type: str, arrival_h: np.ndarray, u_energy: np.ndarray
) -> np.ndarray:
    """Session energies [kWh]: exceedance curve scaled by arrival time (not yet capped).

    Parameters
    ----------
    stats : EVStatistics
        Source of the curves.
    charger_type : str
        Charger type.
    arrival_h : numpy.ndarray
        Arrival times [h].
    u_energy : numpy.ndarray
        Uniforms on [0, 1) [-].

    Returns
    -------
    numpy.ndarray
        Energies [kWh].
    """
    return exceedance_value(
        stats.percent_of_events, stats.energy_kwh[charger_type], 100.0 * u_energy
    ) * _arrival_scale(
        stats.mean_energy_kwh[charger_type], stats.arrival_weekday[charger_type], arrival_h
    )


def _draw_power_kw(
    stats: EVStatistics, u_power: np.ndarray, charger_power_kw: float | None
) -> np.ndarray:
    """Charging powers [kW]: exceedance curve, floored and capped by the charger.

    Parameters
    ----------
    stats : EVStatistics
        Source of the power curve.
    u_power : numpy.ndarray
        Uniforms on [0, 1) [-].
    charger_power_kw : float or None
        Rated charger power [kW], or None for no cap.

    Returns
    -------
    numpy.ndarray
        Powers [kW], at least the curve's smallest positive value.
    """
    power_floor_kw = float(np.min(stats.power_kw[stats.power_kw > 0.0]))
    power_kw = np.maximum(
        exceedance_value(stats.percent_of_events, stats.power_kw, 100.0 * u_power),
        power_floor_kw,
    )
    if charger_power_kw is not None:
        power_kw = np.minimum(power_kw, float(charger_power_kw))
    return power_kw


def _sessions_frame(
    present: np.ndarray,
    arrival_h: np.ndarray,
    connection_h: np.ndarray,
    energy_kwh: np.ndarray,
    power_kw: np.ndarray,
) -> pd.DataFrame:
    """Sessions of the chargers with ``present`` true, indexed by ``charger``.

    Parameters
    ----------
    present : numpy.ndarray
        Boolean per charger: whether it gets a session.
    arrival_h, connection_h : numpy.ndarray
        Arrival and connection times [h] per charger.
    energy_kwh : numpy.ndarray
        Energy per charger [kWh].
    power_kw : numpy.ndarray
        Charging power per charger [kW].

    Returns
    -------
    pandas.DataFrame
        Columns ``SESSION_COLUMNS``, see :func:`sample_sessions`.
    """
    return pd.DataFrame(
        {
            "arrival_h": arrival_h[present],
            "departure_h": (arrival_h + connection_h)[present],
            "energy_kwh": energy_kwh[present],
            "power_kw": power_kw[present],
        },
        index=pd.Index(np.flatnonzero(present), name="charger"),
    )


# --------------------------------------------------------------------------- profiles


def _ramp_sum(break_h: np.ndarray, slope_kw: np.ndarray, edges_h: np.ndarray) -> np.ndarray:
    """``sum_i slope_i * max(0, t - break_i)`` [kWh] at each of the regular ``edges_h``.

    Exact piecewise-linear accumulation in O(sessions + steps): a ramp starting in step
    ``j`` contributes ``slope * (t - break)`` to every edge from ``j`` on.
    """
    t0 = edges_h[0]
    rel_h = edges_h - t0
    first = np.searchsorted(edges_h, break_h, side="left")  # first edge >= break
    n = len(edges_h)
    slope_sum = np.bincount(first, weights=slope_kw, minlength=n + 1)[:n].cumsum()
    moment = np.bincount(first, weights=slope_kw * (break_h - t0), minlength=n + 1)[:n].cumsum()
    return rel_h * slope_sum - moment


def _steps(
    sessions: pd.DataFrame,
    resolution_minutes: int,
    start_hour: int,
    horizon_hours: int,
    prior_charged_fraction: float = 1.0,
) -> dict[str, np.ndarray]:
    """Per-step energies [kWh] of uncontrolled, latest and connected-capacity charging.

    An EV connected before ``start_hour`` got ``prior_charged_fraction`` of what
    uncontrolled charging would have given it by then; from ``start_hour`` on,
    uncontrolled charging delivers the rest at full power, as far as its connection allows.
    Also returns ``continuing_kwh``: the uncontrolled energy delivered in the horizon to
    EVs still connected at its end.
    """
    _check_window(resolution_minutes, start_hour, horizon_hours)
    _check_fraction(prior_charged_fraction)
    arr, dep, energy, power = _session_arrays(sessions)
    dt_h = resolution_minutes / 60.0
    n_steps = horizon_hours * 60 // resolution_minutes
    edges_h = start_hour + dt_h * np.arange(n_steps + 1)
    full_h = energy / power  # time to deliver the energy at full power
    done_at_start_kwh = prior_charged_fraction * power * np.clip(start_hour - arr, 0.0, full_h)
    begin_h = np.maximum(arr, start_hour)
    # what is left, as far as the rest of the connection can deliver it
    remaining_kwh = np.minimum(energy - done_at_start_kwh, power * np.maximum(dep - begin_h, 0.0))
    late = remaining_kwh > 0.0
    end_h = begin_h + remaining_kwh / power
    latest_start_h = dep[late] - remaining_kwh[late] / power[late]
    cumulative = {
        "uncontrolled": _ramp_sum(
            np.concatenate([begin_h[late], end_h[late]]),
            np.concatenate([power[late], -power[late]]),
            edges_h,
        ),
        "latest": _ramp_sum(
            np.concatenate([latest_start_h, dep[late]]),
            np.concatenate([power[late], -power[late]]),
            edges_h,
        ),
        "connected": _ramp_sum(
            np.concatenate([arr, dep]), np.concatenate([power, -power]), edges_h
        ),
    }
    horizon_end_h = edges_h[-1]
    going_on = late & (dep > horizon_end_h)
    continuing = power[going_on] * np.clip(
        np.minimum(end_h[going_on], horizon_end_h) - begin_h[going_on], 0.0, None
    )
    # exact in real arithmetic; clip round-off (~1e-12 kWh) so that sums stay monotone
    return {k: np.maximum(np.diff(v), 0.0) for k, v in cumulative.items()} | {
        "dt_h": dt_h,
        "continuing_kwh": float(continuing.sum()),
    }


def charging_profile_kw(
    sessions: pd.DataFrame,
    *,
    resolution_minutes: int = 15,
    start_hour: int = 0,
    horizon_hours: int = 24,
    prior_charged_fraction: float = 1.0,
) -> np.ndarray:
    """Uncontrolled charging power [kW], summed over sessions, on a regular grid.

    Every EV charges at ``power_kw`` from ``arrival_h`` until ``energy_kwh`` is delivered
    (an EV connected before ``start_hour``: from then on, until the rest is delivered).
    Step ``k`` covers ``[start_hour + k dt, start_hour + (k + 1) dt)`` and holds the mean
    power over the step, i.e. the exact energy in the step divided by ``dt``.

    Parameters
    ----------
    sessions : pandas.DataFrame
        Columns ``arrival_h``, ``departure_h`` [h], ``energy_kwh`` [kWh], ``power_kw`` [kW]
        as from :func:`sample_sessions` (arrivals before ``start_hour`` are allowed).
    resolution_minutes : int
        Step length: 5, 15, 30 or 60 [min].
    start_hour : int
        Start of the horizon (0..23) [h after the day's 00:00].
    horizon_hours : int
        Length of the horizon (1..48) [h].
    prior_charged_fraction : float
        Share of the energy that uncontrolled charging would have delivered before
        ``start_hour`` that an EV connected then did get [-] (1: uncontrolled charging
        before the horizon; less when a previous day's schedule deferred charging).

    Returns
    -------
    numpy.ndarray
        Shape ``(horizon_hours * 60 // resolution_minutes,)`` [kW].
    """
    steps = _steps(sessions, resolution_minutes, start_hour, horizon_hours, prior_charged_fraction)
    return steps["uncontrolled"] / steps["dt_h"]


def flexibility_envelope(
    sessions: pd.DataFrame,
    *,
    resolution_minutes: int = 15,
    start_hour: int = 0,
    horizon_hours: int = 24,
    prior_charged_fraction: float = 1.0,
) -> dict[str, np.ndarray]:
    """Aggregate energy envelope of the sessions over the horizon.

    An EV connected before ``start_hour`` is assumed to have got ``prior_charged_fraction``
    of what uncontrolled charging would have given it by then; from ``start_hour`` on, any
    cumulative energy ``e`` with ``e_min <= e <= e_max`` and step increments
    ``<= p_max_kw * dt`` can be delivered. ``e_max_kwh`` is the cumulative sum of
    :func:`charging_profile_kw` times ``dt``. Energy that EVs still connected at the
    horizon end could take later is not required by ``e_min_kwh``.

    Parameters
    ----------
    sessions : pandas.DataFrame
        As for :func:`charging_profile_kw`.
    resolution_minutes, start_hour, horizon_hours : int
        As for :func:`charging_profile_kw`.
    prior_charged_fraction : float
        As for :func:`charging_profile_kw`.

    Returns
    -------
    dict[str, numpy.ndarray]
        ``e_min_kwh`` and ``e_max_kwh`` [kWh]: cumulative energy since ``start_hour`` at the
        end of each step when charging as late / as early as possible (non-decreasing,
        ``e_min_kwh <= e_max_kwh``); ``p_max_kw`` [kW]: mean over each step of the summed
        ``power_kw`` of the connected EVs; ``e_continuing_kwh`` [kWh] (a scalar): the part
        of ``e_max_kwh[-1]`` delivered to EVs still connected at the horizon end (what
        the next horizon assumes they got, with ``prior_charged_fraction = 1``).
    """
    steps = _steps(sessions, resolution_minutes, start_hour, horizon_hours, prior_charged_fraction)
    e_max = np.cumsum(steps["uncontrolled"])
    e_min = np.minimum(np.cumsum(steps["latest"]), e_max)  # equal up to round-off
    return {
        "e_min_kwh": e_min,
        "e_max_kwh": e_max,
        "p_max_kw": steps["connected"] / steps["dt_h"],
        "e_continuing_kwh": np.asarray(steps["continuing_kwh"]),
    }


# --------------------------------------------------------------------------- scenarios


def _drop_overlaps(days: list[pd.DataFrame], n_chargers: int) -> pd.DataFrame:
    """Concatenate consecutive days' sessions, skipping those whose charger is occupied."""
    kept = []
    free_from_h = np.full(n_chargers, -np.inf)  # departure of each charger's last session
    for sessions in days:
        charger = sessions.index.to_numpy()
        sessions = sessions[sessions["arrival_h"].to_numpy() >= free_from_h[charger]]
        free_from_h[sessions.index.to_numpy()] = sessions["departure_h"].to_numpy()
        kept.append(sessions)
    return pd.concat(kept)


def ev_scenarios(
    day: dt.date,
    n_scenarios: int,
    chargers: Mapping[str, int],
    *,
    seed: int,
    resolution_minutes: int = 15,
    start_hour: int = 0,
    horizon_hours: int = 24,
    plug_in_probability: float = 1.0,
    prior_charged_fraction: float = 1.0,
) -> xr.Dataset:
    """Equiprobable EV charging scenarios: uncontrolled power and flexibility envelope.

    Parameters
    ----------
    day : datetime.date
        Day whose ``start_hour`` starts the horizon.
    n_scenarios : int
        Number of scenarios (>= 1).
    chargers : Mapping[str, int]
        Number of chargers per type, e.g. ``{"home": 40, "workplace": 10}``; charger types
        not given are left out of the result.
    seed : int
        Scenario ``s`` uses ``default_rng(SeedSequence([seed, day.toordinal()]).spawn(n)[s])``
        (sessions of the previous, same and next day, types in ``CHARGER_TYPES`` order), so
        the same seed gives the same numbers bit for bit whatever runs them.
    resolution_minutes : int
        Step length: 5, 15, 30 or 60 [min].
    start_hour : int
        First hour of the horizon (0..23) [h].
    horizon_hours : int
        Length of the horizon (1..48) [h]; it may extend into the next day.
    plug_in_probability : float
        Weekday probability of a session per charger and day [-], see
        :func:`sample_sessions`.
    prior_charged_fraction : float
        Share of their uncontrolled energy that EVs connected before the horizon start
        got before it [-]; a rolling study carries it from the previous day's schedule
        (see :func:`flexibility_envelope`).

    Returns
    -------
    xarray.Dataset
        Dimensions ``scenario``, ``charger_type``, ``time`` (start of each step). Variables
        ``p_uncontrolled_kw``, ``p_max_kw`` [kW], ``e_min_kwh``, ``e_max_kwh`` [kWh] on
        (scenario, charger_type, time), see :func:`flexibility_envelope`;
        ``e_continuing_kwh`` (scenario, charger_type) [kWh]; ``weight`` (scenario) [-]
        summing to 1; coordinate ``n_chargers`` (charger_type).

    Raises
    ------
    ForecastError
        (a ``ValueError``) for an invalid argument; the message names it.
    """
    types = _check_scenario_args(
        day,
        n_scenarios,
        chargers,
        seed,
        resolution_minutes,
        start_hour,
        horizon_hours,
        plug_in_probability,
        prior_charged_fraction,
    )
    window = {
        "resolution_minutes": resolution_minutes,
        "start_hour": start_hour,
        "horizon_hours": horizon_hours,
        "prior_charged_fraction": float(prior_charged_fraction),
    }
    out, continuing = _scenario_arrays(
        day, n_scenarios, chargers, types, seed, window, plug_in_probability
    )
    ds = _scenario_dataset(out, continuing, day, chargers, types, start_hour, resolution_minutes)
    _annotate(ds)
    ds.attrs = {
        "generator": "elaadnl_sessions",
        "seed": seed,
        "day": str(day),
        "resolution_minutes": resolution_minutes,
        "start_hour": start_hour,
        "horizon_hours": horizon_hours,
        "plug_in_probability": float(plug_in_probability),
        "prior_charged_fraction": float(prior_charged_fraction),
        "source": "ElaadNL statistics via ev2gym 2.0.0, see forecasts/data/EV_PROVENANCE.md",
    }
    return ds


def _check_scenario_args(
    day: object,
    n_scenarios: object,
    chargers: object,
    seed: object,
    resolution_minutes: object,
    start_hour: object,
    horizon_hours: object,
    plug_in_probability: object,
    prior_charged_fraction: object,
) -> list[str]:
    """Validate the arguments of :func:`ev_scenarios`.

    Returns
    -------
    list[str]
        The charger types given in ``chargers``, in ``CHARGER_TYPES`` order.
    """
    _check_window(resolution_minutes, start_hour, horizon_hours)
    if not _is_int(n_scenarios) or n_scenarios < 1:
        raise ForecastError(f"n_scenarios must be an integer >= 1, got {n_scenarios!r}")
    if not _is_int(seed) or seed < 0:
        raise ForecastError(f"seed must be an integer >= 0, got {seed!r}")
    if not isinstance(day, dt.date):
        raise ForecastError(f"day must be a datetime.date, got {type(day).__name__}")
    if not isinstance(chargers, Mapping) or not chargers:
        raise ForecastError(
            f"chargers must be a non-empty mapping charger type -> count with types from "
            f"{CHARGER_TYPES}, got {chargers!r}"
        )
    for kind, count in chargers.items():
        _check_charger_type(kind, "chargers key")
        _check_count(count, f"chargers[{kind!r}]")
    types = [k for k in CHARGER_TYPES if k in chargers]
    _check_probability(plug_in_probability)
    _check_fraction(prior_charged_fraction)
    return types


def _scenario_arrays(
    day: dt.date,
    n_scenarios: int,
    chargers: Mapping[str, int],
    types: list[str],
    seed: int,
    window: Mapping[str, int | float],
    plug_in_probability: float,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Sample every scenario and charger type and compute power and envelope.

    Parameters
    ----------
    day, n_scenarios, chargers, seed, plug_in_probability
        As for :func:`ev_scenarios`.
    types : list[str]
        Charger types, in ``CHARGER_TYPES`` order.
    window : Mapping[str, int | float]
        Keyword arguments of :func:`flexibility_envelope` (horizon and prior fraction).

    Returns
    -------
    tuple[dict[str, numpy.ndarray], numpy.ndarray]
        ``p_uncontrolled_kw``, ``p_max_kw`` [kW], ``e_min_kwh``, ``e_max_kwh`` [kWh] of
        shape (scenario, charger_type, time), and ``e_continuing_kwh`` [kWh] of shape
        (scenario, charger_type).
    """
    stats = load_ev_statistics()
    # days whose sessions (arrival in [24 k, 24 k + 24), departure <= 24 k + 48) can
    # overlap the horizon [start_hour, start_hour + horizon_hours)
    offsets = range(-1, math.ceil((window["start_hour"] + window["horizon_hours"]) / 24))
    n_steps = window["horizon_hours"] * 60 // window["resolution_minutes"]
    names = ("p_uncontrolled_kw", "e_min_kwh", "e_max_kwh", "p_max_kw")
    out = {name: np.zeros((n_scenarios, len(types), n_steps)) for name in names}
    continuing = np.zeros((n_scenarios, len(types)))
    children = np.random.SeedSequence([seed, day.toordinal()]).spawn(n_scenarios)
    for s, child in enumerate(children):
        rng = np.random.default_rng(child)
        for j, kind in enumerate(types):
            sessions = _horizon_sessions(
                day, offsets, chargers[kind], kind, rng, plug_in_probability, stats
            )
            out["p_uncontrolled_kw"][s, j] = charging_profile_kw(sessions, **window)
            envelope = flexibility_envelope(sessions, **window)
            for name in ("e_min_kwh", "e_max_kwh", "p_max_kw"):
                out[name][s, j] = envelope[name]
            continuing[s, j] = envelope["e_continuing_kwh"]
    return out, continuing


def _horizon_sessions(
    day: dt.date,
    offsets: range,
    n_chargers: int,
    charger_type: str,
    rng: np.random.Generator,
    plug_in_probability: float,
    stats: EVStatistics,
) -> pd.DataFrame:
    """Sessions of the days ``day + k`` for ``k`` in ``offsets``, on the clock of ``day``.

    Parameters
    ----------
    day : datetime.date
        Day whose 00:00 is hour 0.
    offsets : range
        Day offsets [d], sampled in this order.
    n_chargers : int
        Number of chargers [-].
    charger_type : str
        Charger type.
    rng : numpy.random.Generator
        Source of randomness.
    plug_in_probability : float
        As for :func:`sample_sessions` [-].
    stats : EVStatistics
        Statistics to sample from.

    Returns
    -------
    pandas.DataFrame
        Sessions shifted by ``24 k`` [h], those at an occupied charger dropped.
    """
    days = []
    for k in offsets:
        sessions = sample_sessions(
            day + dt.timedelta(days=k),
            n_chargers,
            charger_type,
            rng,
            plug_in_probability=plug_in_probability,
            statistics=stats,
        )
        days.append(
            sessions.assign(
                arrival_h=sessions["arrival_h"] + 24.0 * k,
                departure_h=sessions["departure_h"] + 24.0 * k,
            )
        )
    return _drop_overlaps(days, n_chargers)


def _scenario_dataset(
    out: Mapping[str, np.ndarray],
    continuing: np.ndarray,
    day: dt.date,
    chargers: Mapping[str, int],
    types: list[str],
    start_hour: int,
    resolution_minutes: int,
) -> xr.Dataset:
    """Assemble the arrays of :func:`_scenario_arrays` into a dataset (without attributes).

    Parameters
    ----------
    out, continuing
        As returned by :func:`_scenario_arrays` [kW, kWh].
    day, chargers
        As for :func:`ev_scenarios`.
    types : list[str]
        Charger types, in ``CHARGER_TYPES`` order.
    start_hour : int
        First hour of the horizon [h].
    resolution_minutes : int
        Step length [min].

    Returns
    -------
    xarray.Dataset
        Variables and coordinates of :func:`ev_scenarios`, plus ``weight`` [-].
    """
    n_scenarios, _, n_steps = out["p_uncontrolled_kw"].shape
    start = pd.Timestamp(day) + pd.Timedelta(hours=start_hour)
    dims = ("scenario", "charger_type", "time")
    return xr.Dataset(
        {name: (dims, values) for name, values in out.items()}
        | {
            "weight": ("scenario", np.full(n_scenarios, 1.0 / n_scenarios)),
            "e_continuing_kwh": (("scenario", "charger_type"), continuing),
        },
        coords={
            "scenario": np.arange(n_scenarios),
            "charger_type": types,
            "time": pd.date_range(start, periods=n_steps, freq=f"{resolution_minutes}min"),
            "n_chargers": ("charger_type", [int(chargers[k]) for k in types]),
        },
    )


def _annotate(ds: xr.Dataset) -> None:
    """Set units and long names of the variables of :func:`ev_scenarios` in place."""
    ds["p_uncontrolled_kw"].attrs = {
        "units": "kW",
        "long_name": "uncontrolled charging power (full power from arrival), step mean",
    }
    ds["e_min_kwh"].attrs = {
        "units": "kWh",
        "long_name": "cumulative energy since horizon start at step end, charging as late "
        "as possible",
    }
    ds["e_max_kwh"].attrs = {
        "units": "kWh",
        "long_name": "cumulative energy since horizon start at step end, charging as early "
        "as possible",
    }
    ds["p_max_kw"].attrs = {"units": "kW", "long_name": "power of connected EVs, step mean"}
    ds["e_continuing_kwh"].attrs = {
        "units": "kWh",
        "long_name": "energy charging as early as possible delivers in the horizon to EVs "
        "still connected at its end",
    }
    ds["weight"].attrs = {"units": "1", "long_name": "scenario probability"}
    ds["n_chargers"].attrs = {"units": "1", "long_name": "number of chargers"}
