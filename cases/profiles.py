"""Historical profiles shipped with the package (see ``cases/data/PROVENANCE.md``)."""

from __future__ import annotations

import datetime as dt
from functools import cache
from importlib import resources

import pandas as pd

from cases.errors import CaseError

__all__ = [
    "PROFILE_COLUMNS",
    "PROFILE_YEAR",
    "TYPICAL_YEAR_LAST",
    "day_profiles",
    "load_profiles",
    "typical_year_day",
]

#: the year of the embedded SimBench profiles
PROFILE_YEAR = 2016
#: last day the embedded profiles serve as a typical year (the end of the embedded
#: measured PV data, so every embedded source can be combined with every other)
TYPICAL_YEAR_LAST = dt.date(2020, 12, 31)

PROFILE_COLUMNS = (
    "load_residential_p_pu",
    "load_commercial_p_pu",
    "load_transmission_p_pu",
    "pv_p_pu",
    "wind_p_pu",
    "load_aggregate_p_pu",
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


def typical_year_day(day: dt.date) -> dt.date:
    """The day of the profile year (2016) that stands for ``day`` in the typical-year rule.

    It is the 2016 day with the same weekday nearest to the same calendar date (at most
    three days away), moved by a week where that would leave 2016 (the last and first
    days of a year). Days of 2016 stand for themselves. The
    weekday is kept so that a Monday's load stays a Monday's load; public holidays are
    not aligned.

    Parameters
    ----------
    day : datetime.date
        Any day.

    Returns
    -------
    datetime.date
        A day of :data:`PROFILE_YEAR` with ``day``'s weekday.
    """
    same = dt.date(PROFILE_YEAR, day.month, day.day)  # 2016 is a leap year
    weeks = round((day - same).days / 7)
    out = day - dt.timedelta(weeks=weeks)
    if out.year > PROFILE_YEAR:
        out -= dt.timedelta(weeks=1)
    elif out.year < PROFILE_YEAR:
        out += dt.timedelta(weeks=1)
    return out


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
