"""The results' layout: dimensions, timestamps, time bounds and CF metadata.

Units compute and store their data per model and day, with ``time`` and ``period`` as
offsets from the start of the day (the *internal layout*: every variable on ``model`` and
``day``). Every entry point gives the *contract layout* (:func:`to_contract`):
:func:`workbench.run`, :func:`workbench.runner.run_study`,
:func:`workbench.results.read_results` and the file.

Dimensions
    ``model`` and ``day`` are always dimensions, of one entry too (xarray's convention:
    selecting or reducing is the caller's choice, never the layout's). A figure of a
    one-model, one-day study is ``ds.objective_eur.item()`` or
    ``float(ds.objective_eur.sum())``; with several, select first
    (``ds.objective_eur.sel(model="hybrid")``).

Time in memory
    ``time`` (start of a second-stage step) and ``period`` (start of a first-stage
    period) are timestamps on the study's clock, local standard time without daylight
    saving (``UTC+01:00``, the clock of every embedded series), so
    ``ds.sel(time="2016-06-15 18:00")`` selects that quarter-hour. The days of a study
    follow each other along them; ``day`` (local midnight) remains only on per-day figures
    (costs, solve times, statuses). CF cell bounds give each interval:
    ``time_bnds`` (time, nv) and ``period_bnds`` (period, nv) hold start and end, named by
    ``time.attrs["bounds"]`` and ``period.attrs["bounds"]``. Only ``time`` carries
    ``standard_name = "time"`` and ``axis = "T"``, so ``ds.cf["T"]`` is one coordinate.

Time in the file (:func:`to_file_clock`)
    A CF reader knows no local clock: a time coordinate is an instant, and units without
    an offset mean UTC. A file whose values were local times but whose reader shows UTC
    (or the other way round) is misread without a warning. So the file stores the
    instants in UTC and says so everywhere a reader looks: the values are minutes since
    the first study day's local midnight *written in UTC*
    (``minutes since 2016-06-14 23:00:00+00:00``), the ``long_name`` says UTC, and a
    string coordinate beside each (``time_local``, ``period_local``, ``day_local``)
    labels the same instant on the study's clock with its offset
    (``2016-06-15T10:00+01:00``). A bare ``xarray.open_dataset``, ``ncdump -t`` or any
    other CF tool thus shows ``2016-06-15T09:00`` next to "UTC" and
    ``2016-06-15T10:00+01:00``: nothing to misread. :func:`from_file_clock` (inside
    :func:`workbench.results.read_results`) turns them back to the study's clock and
    drops the labels, so a file reads back equal to the Dataset that was written.
    Keeping local times in memory and UTC in the file was chosen over tz-aware
    coordinates, which xarray stores as objects (no ``.sel`` by string, no netCDF).

Older files (model and day squeezed to scalars when of one entry, units
``minutes since <day> 00:00:00+01:00``, no bounds) read back in the current layout.
:func:`to_internal` turns either layout back into the internal one, for the commands
that read results (summary, compare, evaluate, plots).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import xarray as xr

__all__ = [
    "BOUNDS",
    "CONVENTIONS",
    "TIME_ZONE",
    "UTC_OFFSET",
    "LayoutError",
    "from_file_clock",
    "to_contract",
    "to_file_clock",
    "to_internal",
]

CONVENTIONS = "CF-1.10"
#: the clock of every series the workbench ships and of every timestamp it gives
TIME_ZONE = "UTC+01:00"
UTC_OFFSET = pd.Timedelta(hours=1)
_OFFSET_TEXT = TIME_ZONE.removeprefix("UTC")  # "+01:00"
_TIME_COORDS = ("time", "period", "day")
_FLAT = ("time", "period")
#: the CF bounds variable of each interval coordinate
BOUNDS = {"time": "time_bnds", "period": "period_bnds"}
_NV = "nv"


class LayoutError(ValueError):
    """A Dataset that is not in a results layout this module can read or complete."""


#: attributes of the coordinates (long_name, and units/standard_name where they exist)
COORD_ATTRS: dict[str, dict[str, str]] = {
    "model": {"long_name": "TSO-DSO coordination model (and variant)"},
    "day": {"long_name": f"study day (its local midnight, {TIME_ZONE})"},
    "time": {
        "long_name": f"start of the second-stage (recourse) step, local standard time "
        f"({TIME_ZONE}, no daylight saving)",
        "standard_name": "time",
        "axis": "T",
    },
    "period": {
        "long_name": f"start of the first-stage (day-ahead) period, local standard time "
        f"({TIME_ZONE}, no daylight saving)",
    },
    "time_bnds": {
        "long_name": f"start and end of the second-stage step, local standard time ({TIME_ZONE})"
    },
    "period_bnds": {
        "long_name": f"start and end of the first-stage period, local standard time ({TIME_ZONE})"
    },
    "scenario": {"long_name": "scenario of the day (its weight is `weight`)"},
    "gen": {"long_name": "transmission energy resource (TER: bulk generator), <table>/<index>"},
    "gen_bus": {"long_name": "transmission bus of the TER unit"},
    "gen_technology": {"long_name": "technology of the TER unit (its fuel cost)"},
    "der": {"long_name": "distributed energy resource, <feeder>/<type>/<bus>"},
    "der_type": {"long_name": "DER type (pv, battery, ev)"},
    "der_bus": {"long_name": "feeder bus of the DER, <feeder>/<bus>"},
    "der_feeder": {"long_name": "feeder of the DER"},
    "interface": {"long_name": "TSO-DSO interface: the feeder's coupling transformer"},
    "interface_bus": {"long_name": "transmission bus the feeder hangs from"},
    "bus": {"long_name": "bus, transmission/<name> or <feeder>/<bus>"},
    "bus_network": {"long_name": "network of the bus: transmission or the feeder"},
    "branch": {"long_name": "branch, <network>/<line|trafo|switch>/<index>"},
    "cost_item": {"long_name": "cost item, <payer>/<stage>/<item>"},
    "cost_owner": {"long_name": "who pays the cost item (tso, dso, der)"},
    "first_stage": {"long_name": "first-stage (here-and-now) variable, by model name"},
    "message": {"long_name": "TSO-DSO message type, <sender>-><receiver>:<kind>"},
    "message_sender": {"long_name": "sender of the message"},
    "message_receiver": {"long_name": "receiver of the message"},
    "message_kind": {"long_name": "kind of the message"},
    "fresh_scenario": {"long_name": "fresh (out-of-sample) scenario"},
    "item": {"long_name": "cost item of the evaluation, <payer>/<stage>/<item>"},
    "edge": {"long_name": "edge of the first-stage period (start, end) where a knot is read"},
}

#: the time coordinates' long_name in a file, where they hold instants in UTC
FILE_LONG_NAMES: dict[str, str] = {
    "time": "start of the second-stage (recourse) step, UTC (time_local: on the study's clock)",
    "period": "start of the first-stage (day-ahead) period, UTC (period_local: on the "
    "study's clock)",
    "day": f"study day: its local midnight ({TIME_ZONE}) as an instant in UTC (day_local: "
    "on the study's clock)",
    "time_bnds": "start and end of the second-stage step, UTC",
    "period_bnds": "start and end of the first-stage period, UTC",
}

_CLOCK = f"on the study's clock: local standard time ({TIME_ZONE}, no daylight saving), ISO 8601"
#: the string labels beside the time coordinates in a file
LABEL_LONG_NAMES: dict[str, str] = {
    "time_local": f"start of the second-stage (recourse) step {_CLOCK}",
    "period_local": f"start of the first-stage (day-ahead) period {_CLOCK}",
    "day_local": f"study day (its local midnight) {_CLOCK}",
}

#: attributes of variables that no extraction step labels itself
VARIABLE_ATTRS: dict[str, dict[str, str]] = {
    "solver_status": {"long_name": "status of the model-day (optimal, failed, error, missing)"},
    "solver_message": {"long_name": "solver or error message of the model-day"},
}
#: yes/no variables (CF flags)
FLAGS = ("ac_converged", "ac_checked", "vm_setpoint_from_acopf")


def _is_datetime(ds: xr.Dataset, name: str) -> bool:
    return name in ds.variables and np.issubdtype(ds[name].dtype, np.datetime64)


def _is_offset(ds: xr.Dataset, name: str) -> bool:
    return name in ds.variables and np.issubdtype(ds[name].dtype, np.timedelta64)


def _minutes(value: float | None) -> np.timedelta64 | None:
    if value is None:
        return None
    if not value > 0:
        raise LayoutError(f"an interval length must be positive [min], got {value!r}")
    return np.timedelta64(round(float(value) * 60_000), "ms")


def to_contract(
    ds: xr.Dataset,
    *,
    step_minutes: float | None = None,
    period_minutes: float | None = None,
) -> xr.Dataset:
    """The contract layout (see the module) of a Dataset in either layout.

    Idempotent: a Dataset already in the contract layout is returned with its metadata
    refreshed. One in an older layout (squeezed ``model``/``day``, no bounds) is
    completed.

    Parameters
    ----------
    ds : xarray.Dataset
        Results in the internal or a contract layout.
    step_minutes : float, optional
        Length of a second-stage step [min]; by default from the bounds ``ds`` carries,
        else from the spacing of ``time`` within a day.
    period_minutes : float, optional
        Length of a first-stage period [min]; by default from the bounds or the spacing
        of ``period``, and a single period a day spans all the day's steps.

    Raises
    ------
    LayoutError
        For a Dataset without ``model`` and ``day``, or whose interval lengths cannot be
        told (a single step a day and no ``step_minutes``).
    """
    out = ds
    stale = [d for d in _FLAT if _is_datetime(out, d) and not _is_datetime(out, BOUNDS[d])]
    squeezed = [d for d in ("model", "day") if d in out.coords and d not in out.dims]
    if stale or squeezed:  # an older file: rebuilt from the internal layout
        out = to_internal(out)
    lengths = {"time": _minutes(step_minutes), "period": _minutes(period_minutes)}
    if "day" in out.dims and any(_is_offset(out, d) for d in _FLAT if d in out.dims):
        offset_bounds = _offset_bounds(out, lengths)
        out = out.drop_vars([b for b in BOUNDS.values() if b in out.variables])
        for dim in _FLAT:
            if dim in out.dims and _is_offset(out, dim):
                out = _flatten(out, dim, offset_bounds[dim])
    for dim, length in lengths.items():  # explicit lengths replace carried bounds
        if length is not None and _is_datetime(out, dim):
            starts = out[dim].to_numpy()
            out = out.assign_coords(
                {BOUNDS[dim]: ((dim, _NV), np.stack([starts, starts + length], axis=1))}
            )
    out = out.copy()
    for name, attrs in COORD_ATTRS.items():
        if name in out.coords:
            out[name].attrs = {**out[name].attrs, **attrs}
    for dim, bounds in BOUNDS.items():
        if dim in out.coords and bounds in out.coords:
            out[dim].attrs["bounds"] = bounds
    for name, attrs in VARIABLE_ATTRS.items():
        if name in out.data_vars:
            out[name].attrs = {**attrs, **out[name].attrs}
    for name in FLAGS:
        if name in out.data_vars:
            out[name].attrs = {
                **out[name].attrs,
                "flag_values": "0 1",
                "flag_meanings": "no yes",
            }
    out.attrs["Conventions"] = CONVENTIONS
    out.attrs["time_zone"] = TIME_ZONE
    return out


def _offset_bounds(
    ds: xr.Dataset, lengths: dict[str, np.timedelta64 | None]
) -> dict[str, np.ndarray]:
    """Start and end offsets (n, 2) of each step and period of a day, internal layout."""
    out: dict[str, np.ndarray] = {}
    for dim in _FLAT:
        if dim not in ds.dims:
            continue
        starts = ds[dim].to_numpy()
        length = lengths[dim]
        if length is None and _is_offset(ds, BOUNDS[dim]):
            out[dim] = ds[BOUNDS[dim]].transpose(dim, ...).to_numpy()
            continue
        if length is None and len(starts) > 1:
            gaps = np.unique(np.diff(starts))
            if len(gaps) != 1:
                raise LayoutError(f"'{dim}' is not evenly spaced within a day: {starts}")
            length = gaps[0]
        if length is None and dim == "period" and "time" in out:  # one period: the whole day
            length = out["time"][-1, 1] - out["time"][0, 0]
        if length is None:
            raise LayoutError(
                f"one '{dim}' a day: its length cannot be told from the data; pass "
                f"{'step' if dim == 'time' else 'period'}_minutes (the study's resolution)"
            )
        out[dim] = np.stack([starts, starts + length], axis=1)
    return out


def _flatten(ds: xr.Dataset, dim: str, offset_bounds: np.ndarray) -> xr.Dataset:
    """Variables on (day, ``dim`` offsets) onto one timestamp dimension ``dim``, with its
    bounds from the offsets' ``offset_bounds`` (n, 2)."""
    names = [n for n, v in ds.variables.items() if "day" in v.dims and dim in v.dims]
    names = [n for n in names if n not in ds.indexes]
    days = ds["day"].to_numpy()
    stamps = (days[:, None] + ds[dim].to_numpy()[None, :]).ravel()
    bounds = (days[:, None, None] + offset_bounds[None, :, :]).reshape(-1, 2)
    flat = {}
    for name in names:
        v = ds[name].variable
        other = [d for d in v.dims if d not in ("day", dim)]
        v = v.transpose(*other, "day", dim)
        data = v.data.reshape((*v.shape[:-2], v.shape[-2] * v.shape[-1]))
        order = [d for d in ds[name].dims if d != "day"]
        flat[name] = xr.Variable((*other, dim), data, v.attrs).transpose(*order)
    out = ds.drop_vars([*names, dim])
    out = out.assign_coords({dim: stamps, BOUNDS[dim]: ((dim, _NV), bounds)})
    for name, v in flat.items():
        if name in ds.coords:
            out = out.assign_coords({name: v})
        else:
            out[name] = v
    return out


def to_internal(ds: xr.Dataset) -> xr.Dataset:
    """The internal layout (every variable on ``model`` and ``day``; ``time`` and
    ``period`` as offsets from the day's start, their bounds too) of a Dataset in either
    layout, older files' included.

    Raises
    ------
    LayoutError
        For a Dataset without ``model`` or ``day`` coordinates.
    """
    out = ds
    for dim in _FLAT:
        if dim in out.dims and _is_datetime(out, dim):
            name = BOUNDS[dim]
            bounds = out[name].transpose(dim, ...).to_numpy() if _is_datetime(out, name) else None
            out = _unflatten(out.drop_vars(name) if name in out.variables else out, dim)
            if bounds is not None:
                first_day = out["day"].to_numpy()[0]
                offsets = bounds[: out.sizes[dim]] - first_day
                out = out.assign_coords({name: ((dim, _NV), offsets)})
    for dim in ("model", "day"):
        if dim not in out.coords:
            raise LayoutError(f"the results have no '{dim}' coordinate")
        values = np.atleast_1d(out[dim].to_numpy())
        attrs = out[dim].attrs
        if dim not in out.dims:
            out = out.drop_vars(dim)
        lacking = {n: v for n, v in out.data_vars.items() if dim not in v.dims}
        out = out.assign({n: v.expand_dims({dim: values}) for n, v in lacking.items()})
        if dim not in out.dims:  # no data variable at all
            out = out.expand_dims({dim: values})
        out[dim].attrs = attrs
    return out.transpose("model", "day", ...)


def _unflatten(ds: xr.Dataset, dim: str) -> xr.Dataset:
    """Variables on timestamp ``dim`` back onto (day, ``dim`` offsets)."""
    stamps = pd.DatetimeIndex(ds[dim].to_numpy())
    days = stamps.normalize()
    if "day" in ds.dims:
        day_values = pd.DatetimeIndex(ds["day"].to_numpy())
    elif "day" in ds.coords:
        day_values = pd.DatetimeIndex(np.atleast_1d(ds["day"].to_numpy()))
    else:
        day_values = pd.DatetimeIndex(days.unique())
    n_day = len(day_values)
    if len(stamps) % n_day:
        raise LayoutError(f"'{dim}' has {len(stamps)} steps, not a whole number per day")
    offsets = (stamps - days)[: len(stamps) // n_day]
    names = [n for n, v in ds.variables.items() if dim in v.dims and n not in ds.indexes]
    split = {}
    for name in names:
        v = ds[name].variable
        other = [d for d in v.dims if d != dim]
        v = v.transpose(*other, dim)
        data = v.data.reshape((*v.shape[:-1], n_day, len(offsets)))
        order = ["day", *ds[name].dims]  # the step dimension where it was
        split[name] = xr.Variable((*other, "day", dim), data, v.attrs).transpose(*order)
    out = ds.drop_vars([*names, dim])
    if "day" in out.coords and "day" not in out.dims:
        out = out.drop_vars("day")
    out = out.assign_coords({dim: np.asarray(offsets), "day": day_values.to_numpy()})
    for name, v in split.items():
        if name in ds.coords:
            out = out.assign_coords({name: v})
        else:
            out[name] = v
    return out


_OFFSET_UNITS = re.compile(
    r"since\s+\S+[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d*)?)?\s*([+-])(\d{1,2}):?(\d{2})?\s*$"
)
_ZONE = re.compile(r"^UTC([+-])(\d{2}):(\d{2})$")


def _units_offset(units: str) -> pd.Timedelta | None:
    """The UTC offset named at the end of CF time units, if any."""
    m = _OFFSET_UNITS.search(units)
    if m is None:
        return None
    sign = 1 if m.group(1) == "+" else -1
    return sign * pd.Timedelta(hours=int(m.group(2)), minutes=int(m.group(3) or 0))


def _zone_offset(zone: str) -> pd.Timedelta:
    """The offset of a ``time_zone`` attribute (``UTC+01:00``)."""
    m = _ZONE.match(zone)
    if m is None:
        raise LayoutError(f"time_zone '{zone}' is not of the form UTC+hh:mm")
    sign = 1 if m.group(1) == "+" else -1
    return sign * pd.Timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))


def _stamp_names(ds: xr.Dataset) -> list[str]:
    """The timestamps of ``ds``: time, period, day and their bounds (coordinates in memory,
    data variables in a file opened without ``decode_coords="all"``)."""
    return [n for n in (*_TIME_COORDS, *BOUNDS.values()) if _is_datetime(ds, n)]


def to_file_clock(ds: xr.Dataset) -> xr.Dataset:
    """Timestamps as the file stores them: instants in UTC, with units
    ``minutes since <first day's local midnight in UTC>+00:00``, a ``long_name`` that
    says UTC and a string label on the study's clock beside each (``time_local``,
    ``period_local``, ``day_local``; see the module)."""
    out = ds.copy()
    names = _stamp_names(out)
    if not names:
        return out
    first = min(np.min(out[n].to_numpy()) for n in names)
    reference = pd.Timestamp(first).normalize() - UTC_OFFSET
    encoding = {
        "units": f"minutes since {reference:%Y-%m-%d %H:%M:%S}+00:00",
        "calendar": "proleptic_gregorian",
        "dtype": "int64",
    }
    labels = {}
    for name in names:
        local = out[name].to_numpy()
        attrs = dict(out[name].attrs)
        attrs["long_name"] = FILE_LONG_NAMES.get(name, attrs.get("long_name", name))
        if name in _TIME_COORDS:
            text = pd.DatetimeIndex(local.ravel()).strftime("%Y-%m-%dT%H:%M") + _OFFSET_TEXT
            label = f"{name}_local"
            shaped = np.asarray(text, dtype=str).reshape(local.shape)
            labels[label] = (out[name].dims, shaped, {"long_name": LABEL_LONG_NAMES[label]})
        utc = local - UTC_OFFSET.to_timedelta64()
        out = out.assign_coords({name: (out[name].dims, utc, attrs)})
        out[name].encoding = dict(encoding)
    out = out.assign_coords(labels)
    # bounds are data variables in a file (CF does not count them as coordinates), with
    # no coordinates of their own
    bounds = [b for b in BOUNDS.values() if b in out.coords]
    out = out.reset_coords(bounds)
    for name in bounds:
        out[name].encoding["coordinates"] = None
    return out


def from_file_clock(ds: xr.Dataset) -> xr.Dataset:
    """The inverse of :func:`to_file_clock` on a decoded file: timestamps back on the
    study's clock, the string labels dropped. Files of any version: timestamps whose
    units name an offset are instants (UTC once decoded); those without one were
    written on the study's clock and stay."""
    out = ds
    clock = _zone_offset(str(out.attrs.get("time_zone", TIME_ZONE))).to_timedelta64()
    for name in _stamp_names(out):
        parent = next((d for d, b in BOUNDS.items() if b == name), name)
        units = out[name].encoding.get("units") or out[parent].encoding.get("units", "")
        if _units_offset(str(units)) is None:
            continue
        attrs = dict(out[name].attrs)
        out = out.assign_coords({name: (out[name].dims, out[name].to_numpy() + clock, attrs)})
    labels = [f"{n}_local" for n in _TIME_COORDS if f"{n}_local" in out.variables]
    return out.drop_vars(labels)
