"""The results file's layout: timestamps on the study's clock, CF metadata, squeezed
one-entry dimensions, and the way back to the internal layout."""

from __future__ import annotations

import copy

import cf_xarray  # noqa: F401  (registers the .cf accessor)
import cftime
import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from tests.conftest import SMALL_STUDY
from workbench.cli import main
from workbench.contract import to_contract, to_internal
from workbench.results import read_results, write_results


def _internal(models=("tso_managed", "hybrid"), days=("2016-06-15", "2016-06-16")) -> xr.Dataset:
    """A Dataset in the internal layout whose values say where they belong."""
    rng = np.random.default_rng(0)
    nm, nd, ns, nt, npd = len(models), len(days), 3, 8, 4
    time = pd.to_timedelta(np.arange(nt) * 3, unit="h")
    period = pd.to_timedelta(np.arange(npd) * 6, unit="h")
    p = rng.normal(size=(nm, nd, ns, nt, 2))
    return xr.Dataset(
        {
            "objective_eur": (("model", "day"), rng.normal(size=(nm, nd)), {"units": "EUR"}),
            "der_p_mw": (("model", "day", "scenario", "time", "der"), p, {"units": "MW"}),
            "ter_schedule_mw": (("model", "day", "period"), rng.normal(size=(nm, nd, npd))),
            "solver_status": (("model", "day"), np.full((nm, nd), "optimal")),
        },
        coords={
            "model": list(models),
            "day": pd.to_datetime(list(days)).to_numpy(),
            "scenario": np.arange(ns),
            "time": time,
            "period": period,
            "der": ["f/pv/1", "f/ev/2"],
            "der_type": ("der", ["pv", "ev"]),
        },
    )


def test_days_follow_each_other_on_timestamps():
    ds = _internal()
    c = to_contract(ds)
    assert c.sizes["time"] == 16 and c.sizes["period"] == 8
    assert "day" not in c.der_p_mw.dims and c.objective_eur.dims == ("model", "day")
    # the value of day 2, 06:00 sits at 2016-06-16 06:00
    got = c.der_p_mw.sel(model="hybrid", time="2016-06-16 06:00", scenario=1, der="f/ev/2")
    want = ds.der_p_mw.sel(model="hybrid", scenario=1, der="f/ev/2").isel(day=1, time=2)
    assert float(got) == float(want)
    assert c.period.values[4] == np.datetime64("2016-06-16T00:00")
    assert c.attrs["Conventions"].startswith("CF-")
    assert c.time.attrs["standard_name"] == "time" and c.time.attrs["axis"] == "T"


@pytest.mark.parametrize(
    "models,days", [(("a", "b"), ("2016-06-15", "2016-06-16")), (("a",), ("2016-01-31",))]
)
def test_internal_layout_round_trips(models, days):
    ds = _internal(models, days)
    back = to_internal(to_contract(ds))
    for name in ds.data_vars:
        assert back[name].dims == ds[name].dims, name  # the same order, for positional readers
        assert back[name].equals(ds[name]), name
    assert (back.time.values == ds.time.values).all()


def test_one_model_one_day_is_scalar():
    c = to_contract(_internal(("tso_managed",), ("2016-06-15",)))
    assert float(c.objective_eur) == float(c.objective_eur.values)
    assert c.model.item() == "tso_managed" and c.day.values == np.datetime64("2016-06-15")
    assert c.der_p_mw.dims == ("scenario", "time", "der")


def test_file_stores_instants_with_offset_and_reads_back_local(tmp_path):
    ds = to_contract(_internal())
    ds.attrs["study_config_yaml"] = "name: x\n"
    path = write_results(ds, tmp_path / "r.nc")
    with netCDF4.Dataset(path) as nc:
        units = nc["time"].units
        raw = nc["time"][:]
        assert units.endswith("+01:00")
        first = cftime.num2pydate(raw[0], units)  # CF reading: the instant, in UTC
        assert first.isoformat() == "2016-06-14T23:00:00"
        assert raw[0] == 0  # minutes since local midnight of the first day
    back = read_results(path)
    assert (back.time.values == ds.time.values).all()
    assert (back.day.values == ds.day.values).all()
    with xr.open_dataset(path) as raw_ds:  # plain xarray decodes CF instants to UTC
        assert raw_ds.time.values[0] == np.datetime64("2016-06-14T23:00")


def test_zarr_reads_back_local(tmp_path):
    ds = to_contract(_internal())
    ds.attrs["study_config_yaml"] = "name: x\n"
    back = read_results(write_results(ds, tmp_path / "r.zarr"))
    assert (back.time.values == ds.time.values).all()
    assert back.der_p_mw.sel(time="2016-06-15 21:00").shape == (2, 3, 2)


@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    """The small study over two days through the command line."""
    tmp = tmp_path_factory.mktemp("cf")
    data = copy.deepcopy(SMALL_STUDY)
    data["n_days"] = 2
    data["start_hour"] = 16  # 16:00-20:00 of each day
    data["ac_check"] = {"every_n_steps": 8, "max_scenarios": 1}
    path = tmp / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    out = tmp / "run.nc"
    args = ["run", str(path), "--out", str(out), "--scheduler", "sync", "--no-progress"]
    assert main([*args, "--no-plots"]) == 0
    return out


def test_results_file_passes_basic_cf_checks(small_file):
    ds = read_results(small_file)
    assert ds.attrs["Conventions"] == "CF-1.10"
    for key in ("title", "source", "history", "comment"):
        assert ds.attrs[key], key
    assert "time" in ds.cf.axes["T"]  # cf_xarray finds the time axis
    assert set(ds.cf.standard_names["time"]) >= {"time", "period"}
    for name, coord in ds.coords.items():
        assert coord.attrs.get("long_name"), f"coordinate {name} has no long_name"
    for name, var in ds.data_vars.items():
        if var.dtype.kind in "fi" and "flag_values" not in var.attrs:
            assert "units" in var.attrs, f"{name} has no units"
        assert var.attrs.get("long_name"), f"{name} has no long_name"
    with netCDF4.Dataset(small_file) as nc:
        for name in ("time", "period", "day"):
            units = nc[name].units
            cftime.num2date(nc[name][:], units, nc[name].calendar)  # CF-decodable
            assert units.startswith("minutes since") and units.endswith("+01:00")


def test_select_by_timestamp_and_by_element(small_file):
    ds = read_results(small_file)
    step = ds.der_p_mw.sel(time="2016-06-15 18:00")
    assert "time" not in step.dims and np.isfinite(step).all()
    assert ds.sizes["day"] == 2 and ds.sizes["time"] == 2 * 4 * 4  # 15-min steps
    assert str(ds.time.values[-1])[:16] == "2016-06-16T19:45"
    assert float(ds.objective_eur.sel(day="2016-06-16")) > 0
    assert ds.model.item() == "tso_managed"  # one model: a scalar coordinate
    # coordinates users select by
    for name in ("gen_bus", "gen_technology", "der_bus", "der_feeder", "der_type"):
        assert name in ds.coords, name
    pv = ds.der_p_mw.where(ds.der_type == "pv", drop=True)
    assert pv.sizes["der"] > 0
    assert all(str(b).startswith("transmission/") for b in ds.gen_bus.values)
    assert all(
        str(b).startswith(f"{f}/")
        for b, f in zip(ds.der_bus.values, ds.der_feeder.values, strict=True)
    )
