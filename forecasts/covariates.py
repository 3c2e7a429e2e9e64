"""User covariates (e.g. a weather model's irradiance and temperature) from CSV files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from forecasts.errors import ForecastError

__all__ = ["read_covariates"]


def read_covariates(path: str | Path, *, field: str = "covariates") -> pd.DataFrame:
    """Read a covariate table: a ``time`` column plus numeric columns.

    Times are quarter-hours on the UTC+1 clock of the history (``2019-06-01 12:15``);
    every value must be a finite number. The forecasters then use each column as a
    feature; give values for every quarter-hour of the training and forecast days.

    Raises
    ------
    ForecastError
        Missing file, no ``time`` column, non-numeric or missing values.
    """
    p = Path(path)
    if not p.is_file():
        raise ForecastError(f"{field}: covariate file '{p}' not found")
    try:
        frame = pd.read_csv(p)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ForecastError(f"{field}: '{p}' is not a readable CSV table ({first})") from None
    if "time" not in frame.columns or frame.shape[1] < 2:
        raise ForecastError(
            f"{field}: '{p}' needs a 'time' column and at least one numeric column "
            f"(found columns {list(frame.columns)})"
        )
    times = pd.to_datetime(frame["time"], errors="coerce")
    if times.isna().any():
        row = int(np.flatnonzero(times.isna().to_numpy())[0])
        raise ForecastError(
            f"{field}: '{p}' row {row + 2}: time {frame['time'].iloc[row]!r} is not a date "
            "and time; write e.g. 2019-06-01 12:15"
        )
    frame["time"] = times
    frame = frame.set_index("time").sort_index()
    bad = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise ForecastError(f"{field}: column(s) {bad} of '{p}' are not numeric")
    values = frame.to_numpy(dtype=float)
    if not np.isfinite(values).all():
        col = frame.columns[~np.isfinite(values).all(axis=0)][0]
        raise ForecastError(f"{field}: column {col!r} of '{p}' holds NaN or infinite values")
    return frame
