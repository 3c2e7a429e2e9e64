"""The results file's layout: CF conventions, timestamps, squeezed one-entry dimensions.

Units compute and store their data per model and day, with ``time`` and ``period`` as
offsets from the start of the day (the *internal layout*: every variable on ``model`` and
``day``). Users get the *contract layout* (:func:`to_contract`):

- ``time`` (second stage) and ``period`` (first stage) are timestamps on the study's clock,
  local standard time without daylight saving (``UTC+01:00``, the clock of every embedded
  series), so ``ds.sel(time="2016-06-15 18:00")`` selects that quarter-hour; the days of a
  study follow each other along them, and ``day`` remains only on per-day figures
  (costs, solve times, statuses);
- a ``model`` or ``day`` dimension of one entry is dropped and kept as a scalar
  coordinate, so ``float(ds.objective_eur)`` is the objective of a one-model, one-day study;
- CF-1.10 metadata: ``Conventions``, ``standard_name``/``axis`` on the time coordinates,
  ``long_name`` on every coordinate. In a file the timestamps are stored as minutes since
  local midnight of the first day with the offset in the units
  (``minutes since 2016-06-15 00:00:00+01:00``), so every CF reader finds the right
  instant; :func:`workbench.results.read_results` gives them back on the study's clock,
  while a bare ``xarray.open_dataset`` gives them in UTC (CF's decoding).

:func:`to_internal` turns either layout back into the internal one, for the commands that
read results (summary, compare, evaluate, plots).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import xarray as xr

__all__ = [
    "CONVENTIONS",
    "TIME_ZONE",
    "UTC_OFFSET",
    "from_file_clock",
    "to_contract",
    "to_file_clock",
    "to_internal",
]

CONVENTIONS = "CF-1.10"
#: the clock of every series the workbench ships and of every timestamp it writes
TIME_ZONE = "UTC+01:00"
UTC_OFFSET = pd.Timedelta(hours=1)
_TIME_COORDS = ("time", "period", "day")
_FLAT = ("time", "period")

#: attributes of the coordinates (long_name, and units/standard_name where they exist)
COORD_ATTRS: dict[str, dict[str, str]] = {
    "model": {"long_name": "TSO-DSO coordination model (and variant)"},
    "day": {
        "long_name": f"study day (local midnight, {TIME_ZONE})",
        "standard_name": "time",
    },
    "time": {
        "long_name": f"start of the second-stage (recourse) step, local standard time "
        f"({TIME_ZONE}, no daylight saving)",
        "standard_name": "time",
        "axis": "T",
    },
    "period": {
        "long_name": f"start of the first-stage (day-ahead) period, local standard time "
        f"({TIME_ZONE}, no daylight saving)",
        "standard_name": "time",
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
}


#: attributes of variables that no extraction step labels itself
VARIABLE_ATTRS: dict[str, dict[str, str]] = {
    "solver_status": {"long_name": "status of the model-day (optimal, failed, error, missing)"},
    "solver_message": {"long_name": "solver or error message of the model-day"},
}
#: yes/no variables (CF flags)
FLAGS = ("ac_converged", "ac_checked", "vm_setpoint_from_acopf")


def to_contract(ds: xr.Dataset) -> xr.Dataset:
    """The contract layout of a Dataset in the internal layout (see the module).

    Idempotent: a Dataset already in the contract layout is returned with its metadata
    refreshed.
    """
    out = ds
    for dim in _FLAT:
        if dim in out.dims and "day" in out.dims and np.issubdtype(out[dim].dtype, np.timedelta64):
            out = _flatten(out, dim)
    for dim in ("model", "day"):
        if dim in out.dims and out.sizes[dim] == 1:
            out = out.squeeze(dim)
    out = out.copy()
    for name, attrs in COORD_ATTRS.items():
        if name in out.coords:
            out[name].attrs = {**out[name].attrs, **attrs}
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


def _flatten(ds: xr.Dataset, dim: str) -> xr.Dataset:
    """Variables on (day, ``dim`` offsets) onto one timestamp dimension ``dim``."""
    names = [n for n, v in ds.variables.items() if "day" in v.dims and dim in v.dims]
    names = [n for n in names if n not in ds.indexes]
    stamps = (ds["day"].to_numpy()[:, None] + ds[dim].to_numpy()[None, :]).ravel()
    flat = {}
    for name in names:
        v = ds[name].variable
        other = [d for d in v.dims if d not in ("day", dim)]
        v = v.transpose(*other, "day", dim)
        data = v.data.reshape((*v.shape[:-2], v.shape[-2] * v.shape[-1]))
        order = [d for d in ds[name].dims if d != "day"]
        flat[name] = xr.Variable((*other, dim), data, v.attrs).transpose(*order)
    out = ds.drop_vars([*names, dim])
    out = out.assign_coords({dim: stamps})
    for name, v in flat.items():
        if name in ds.coords:
            out = out.assign_coords({name: v})
        else:
            out[name] = v
    return out


def to_internal(ds: xr.Dataset) -> xr.Dataset:
    """The internal layout (every variable on ``model`` and ``day``; ``time`` and
    ``period`` as offsets from the day's start) of a Dataset in either layout."""
    out = ds
    for dim in _FLAT:
        if dim in out.dims and np.issubdtype(out[dim].dtype, np.datetime64):
            out = _unflatten(out, dim)
    for dim in ("model", "day"):
        if dim not in out.coords:
            raise ValueError(f"the results have no '{dim}' coordinate")
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
        raise ValueError(f"'{dim}' has {len(stamps)} steps, not a whole number per day")
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


def _units_offset(units: str) -> pd.Timedelta | None:
    """The UTC offset named at the end of CF time units, if any."""
    m = _OFFSET_UNITS.search(units)
    if m is None:
        return None
    sign = 1 if m.group(1) == "+" else -1
    return sign * pd.Timedelta(hours=int(m.group(2)), minutes=int(m.group(3) or 0))


def to_file_clock(ds: xr.Dataset) -> xr.Dataset:
    """Timestamps as CF stores them: the instants in UTC, with units naming the local
    offset (``minutes since <first day> 00:00:00+01:00``)."""
    out = ds.copy()
    for name in _TIME_COORDS:
        if name in out.coords and np.issubdtype(out[name].dtype, np.datetime64):
            local = pd.DatetimeIndex(np.atleast_1d(out[name].to_numpy()))
            first = local.min().normalize()
            values = out[name].to_numpy() - UTC_OFFSET.to_timedelta64()
            attrs = dict(out[name].attrs)
            out = out.assign_coords({name: (out[name].dims, values, attrs)})
            out[name].encoding = {
                "units": f"minutes since {first:%Y-%m-%d} 00:00:00+01:00",
                "calendar": "proleptic_gregorian",
                "dtype": "int64",
            }
    return out


def from_file_clock(ds: xr.Dataset) -> xr.Dataset:
    """The inverse of :func:`to_file_clock` on a decoded file: timestamps back on the
    study's clock (only those whose stored units carry the offset)."""
    out = ds
    for name in _TIME_COORDS:
        if name not in out.coords or not np.issubdtype(out[name].dtype, np.datetime64):
            continue
        offset = _units_offset(str(out[name].encoding.get("units", "")))
        if offset is not None:
            attrs = dict(out[name].attrs)
            values = out[name].to_numpy() + offset.to_timedelta64()
            out = out.assign_coords({name: (out[name].dims, values, attrs)})
    return out
