"""What every coordination model returns: one outcome per day."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import xarray as xr

from stochastic.twostage import DayData

__all__ = ["DayOutcome"]


@dataclass(frozen=True, eq=False)
class DayOutcome:
    """Result of one coordination model on one day.

    Attributes
    ----------
    model : str
    day : datetime.date
    schedule : xarray.Dataset or None
        ``None`` when no optimal schedule was found.
    data : DayData
    status : str
    message : str
    wall_seconds : float [s]
    """

    model: str
    day: dt.date
    schedule: xr.Dataset | None
    data: DayData
    status: str
    message: str
    wall_seconds: float
