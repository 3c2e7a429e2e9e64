"""Features for the forecasters: calendar, clear sky and lagged observations.

Pure functions on quarter-hourly series (fixed UTC+1 clock, see :mod:`forecasts.history`).
Every lagged feature of a target quarter-hour uses only observations known at the
forecast's issue time:

* **day-ahead**: issued at ``issue_hour`` on the day before the target day (12:00 by
  default, the European day-ahead gate closure); ``issue_hour=24`` means at midnight.
* **intraday 1 h ahead**: issued one hour before the target quarter-hour starts; the
  latest known value is the quarter-hour that ends at issue time.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from forecasts.errors import ForecastError

__all__ = [
    "CLEAR_SKY_FLOOR_PU",
    "calendar_features",
    "clear_sky_pu",
    "day_ahead_lags",
    "intraday_lags",
    "persistence_day_ahead",
    "persistence_intraday",
]

STEPS_PER_DAY = 96
#: below this clear-sky value [pu] the clear-sky index is taken relative to the floor,
#: which keeps it bounded at dawn and dusk
CLEAR_SKY_FLOOR_PU = 0.02
#: quarter-hours between the target step's start and the end of the latest known one
INTRADAY_LAG_STEPS = 5


def calendar_features(index: pd.DatetimeIndex) -> pd.DataFrame:
    """Hour of day [h], day of year (sine, cosine), weekday (0 = Monday) and weekend flag."""
    hour = index.hour + index.minute / 60.0
    doy = 2.0 * np.pi * (index.dayofyear - 1) / 365.25
    return pd.DataFrame(
        {
            "hour_h": hour,
            "doy_sin": np.sin(doy),
            "doy_cos": np.cos(doy),
            "weekday": index.weekday,
            "weekend": (index.weekday >= 5).astype(float),
        },
        index=index,
    )


@lru_cache(maxsize=16)
def _clear_sky(
    start: pd.Timestamp, n: int, lat: float, lon: float
) -> tuple[np.ndarray, np.ndarray]:
    from pvlib import clearsky, solarposition

    # interval means: evaluate at the middle of each quarter-hour, on the UTC+1 clock
    mid = pd.date_range(start, periods=n, freq="15min") + pd.Timedelta(minutes=7.5)
    mid = mid.tz_localize("Etc/GMT-1")
    pos = solarposition.get_solarposition(mid, lat, lon, method="nrel_numpy")
    ghi = clearsky.haurwitz(pos["apparent_zenith"])["ghi"].to_numpy()
    return ghi / 1000.0, pos["apparent_elevation"].to_numpy()


def clear_sky_pu(
    index: pd.DatetimeIndex, latitude_deg: float, longitude_deg: float
) -> tuple[np.ndarray, np.ndarray]:
    """Clear-sky irradiance and sun elevation for quarter-hourly time stamps.

    Uses pvlib's solar position (NREL SPA, numpy) and the Haurwitz clear-sky model at the
    middle of each quarter-hour.

    Returns
    -------
    cs_pu : numpy.ndarray
        Clear-sky global horizontal irradiance [pu of 1000 W/m2].
    elevation_deg : numpy.ndarray
        Apparent sun elevation [deg].
    """
    if len(index) and not (np.diff(index.asi8) == pd.Timedelta("15min").value).all():
        raise ForecastError("clear-sky features need a gap-free quarter-hourly index")
    cs, elev = _clear_sky(index[0], len(index), float(latitude_deg), float(longitude_deg))
    return cs.copy(), elev.copy()


def _by_day(values: np.ndarray) -> np.ndarray:
    return values.reshape(-1, STEPS_PER_DAY)


def persistence_day_ahead(values: np.ndarray, day_pos: np.ndarray, issue_hour: int) -> np.ndarray:
    """Last observed value at the same time of day, as known at the day-ahead issue time.

    Parameters
    ----------
    values : numpy.ndarray
        Quarter-hourly history, whole days, shape (n_days * 96,).
    day_pos : numpy.ndarray of int
        Positions (day numbers in ``values``) of the target days; each must be >= 2.
    issue_hour : int
        Issue hour on the day before [h], 0..24.

    Returns
    -------
    numpy.ndarray
        Shape (len(day_pos), 96).
    """
    days = _by_day(values)
    cut = issue_hour * 4
    out = days[day_pos - 2].copy()
    out[:, :cut] = days[day_pos - 1, :cut]
    return out


def day_ahead_lags(
    values: np.ndarray, day_pos: np.ndarray, issue_hour: int
) -> dict[str, np.ndarray]:
    """Lagged features of the target days, each of shape (len(day_pos), 96).

    ``persist``: :func:`persistence_day_ahead`; ``mean_24h``: mean over the 24 h before
    issue; ``last``: the last quarter-hour before issue; ``week``: the same quarter-hour one
    week before the target (zero where the history is shorter).
    """
    flat = values
    cut = (day_pos - 1) * STEPS_PER_DAY + issue_hour * 4
    csum = np.concatenate([[0.0], np.cumsum(flat)])
    lo = np.maximum(cut - STEPS_PER_DAY, 0)
    mean_24h = (csum[cut] - csum[lo]) / np.maximum(cut - lo, 1)
    days = _by_day(flat)
    week = np.where((day_pos >= 7)[:, None], days[np.maximum(day_pos - 7, 0)], 0.0)
    ones = np.ones((1, STEPS_PER_DAY))
    return {
        "persist": persistence_day_ahead(flat, day_pos, issue_hour),
        "mean_24h": mean_24h[:, None] * ones,
        "last": flat[cut - 1][:, None] * ones,
        "week": week,
    }


def persistence_intraday(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """The latest value known one hour ahead of each target quarter-hour (flat positions)."""
    return values[positions - INTRADAY_LAG_STEPS]


def intraday_lags(values: np.ndarray, positions: np.ndarray) -> dict[str, np.ndarray]:
    """Lagged features one hour ahead, for flat target positions (each >= 96 * 7).

    ``last``: latest known value; ``mean_1h``: mean of the latest known hour; ``day``: the
    same quarter-hour one day before; ``week``: one week before.
    """
    lag = INTRADAY_LAG_STEPS
    last = values[positions - lag]
    mean_1h = np.mean([values[positions - lag - i] for i in range(4)], axis=0)
    return {
        "last": last,
        "mean_1h": mean_1h,
        "day": values[positions - STEPS_PER_DAY],
        "week": values[np.maximum(positions - 7 * STEPS_PER_DAY, 0)],
    }
