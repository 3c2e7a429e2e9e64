"""Historical profiles shipped with the package (see ``cases/data/PROVENANCE.md``)."""

from __future__ import annotations

import datetime as dt
from functools import cache
from importlib import resources

import pandas as pd

from cases.errors import CaseError

__all__ = ["PROFILE_COLUMNS", "day_profiles", "load_profiles"]

PROFILE_COLUMNS = (
    "load_residential_p_pu",
    "load_commercial_p_pu",
    "load_transmission_p_pu",
    "pv_p_pu",
    "wind_p_pu",
)


@cache
def _read() -> pd.DataFrame:
    path = resources.files("cases") / "data" / "profiles_2016_15min.csv.gz"
    with resources.as_file(path) as p:
        df = pd.read_csv(p, parse_dates=["time"], index_col="time")
    # SimBench labels follow German daylight saving time (02:00-02:45 of 27 March missing,
    # of 30 October twice) while the values are a gap-free quarter-hour series: taken by
    # position, the index is the fixed UTC+1 clock
    df.index = pd.date_range(df.index[0], periods=len(df), freq="15min", name="time")
    return df


def load_profiles() -> pd.DataFrame:
    """All 2016 quarter-hourly profiles [pu], on the fixed UTC+1 clock (a copy)."""
    return _read().copy()


def day_profiles(day: dt.date, hours: int = 24, start_hour: int = 0) -> pd.DataFrame:
    """Quarter-hourly profiles [pu] of ``hours`` hours of ``day`` from ``start_hour``.

    Raises
    ------
    CaseError
        If the day is outside the embedded year.
    """
    df = _read()
    start = pd.Timestamp(day) + pd.Timedelta(hours=start_hour)
    stop = start + pd.Timedelta(hours=hours)
    sel = df.loc[(df.index >= start) & (df.index < stop)]
    if len(sel) != hours * 4:
        raise CaseError(
            f"day {day} is outside the embedded profiles "
            f"({df.index[0].date()} .. {df.index[-1].date()})"
        )
    return sel.copy()
