"""Quarter-hourly values at 60, 30, 15 and 5 min, consistent by aggregation.

Coarser resolutions are block means. Five-minute values are a mean-preserving linear
refinement: each quarter-hour of mean ``m`` becomes ``(m - d, m, m + d)`` with ``d`` a sixth
of the central difference of the neighbouring quarter-hours, limited so the values stay
within the bounds; the mean of the three is exactly ``m``. Hence every resolution's
values average to the next coarser one's.
"""

from __future__ import annotations

import numpy as np

from forecasts.errors import ForecastError

__all__ = ["VALID_MINUTES", "check_minutes", "from_quarter_hours"]

VALID_MINUTES = (5, 15, 30, 60)


def check_minutes(minutes: int, field: str = "resolution_minutes") -> int:
    """Return ``minutes`` if it is a supported resolution, else raise ForecastError."""
    if minutes not in VALID_MINUTES:
        raise ForecastError(
            f"{field}: unknown resolution {minutes!r} min; allowed: "
            f"{', '.join(map(str, VALID_MINUTES))}"
        )
    return minutes


def from_quarter_hours(
    values: np.ndarray,
    minutes: int,
    *,
    lower: float | None = 0.0,
    upper: float | None = None,
    axis: int = -1,
) -> np.ndarray:
    """Quarter-hourly values along ``axis`` at ``minutes`` resolution.

    Parameters
    ----------
    values : numpy.ndarray
        Quarter-hour means [any unit]; the length along ``axis`` is whole hours for 60 min.
    minutes : int
        5, 15, 30 or 60 [min].
    lower, upper : float, optional
        Bounds respected by the 5-min refinement [unit of ``values``].

    Returns
    -------
    numpy.ndarray
    """
    check_minutes(minutes)
    v = np.moveaxis(np.asarray(values, dtype=float), axis, -1)
    if minutes == 15:
        out = v.copy()
    elif minutes in (30, 60):
        k = minutes // 15
        out = v.reshape(*v.shape[:-1], v.shape[-1] // k, k).mean(axis=-1)
    else:
        padded = np.concatenate([v[..., :1], v, v[..., -1:]], axis=-1)
        d = (padded[..., 2:] - padded[..., :-2]) / 6.0
        room_lo = np.inf if lower is None else v - lower
        room_hi = np.inf if upper is None else upper - v
        d = np.clip(d, -np.minimum(room_lo, room_hi), np.minimum(room_lo, room_hi))
        out = np.stack([v - d, v, v + d], axis=-1).reshape(*v.shape[:-1], 3 * v.shape[-1])
    return np.moveaxis(out, -1, axis)
