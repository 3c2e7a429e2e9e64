"""The results' layout: model and day always dimensions, timestamps on the study's clock
with CF bounds, instants in UTC in the file, older files, and the way back to the
internal layout."""

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
from tests.results_doc import doc_mismatches
from workbench.cli import main
from workbench.contract import LayoutError, from_file_clock, to_contract, to_internal
from workbench.results import read_results, write_results


def _internal(models=("tso_managed", "hybrid"), days=("2016-06-15", "2016-06-16")) -> xr.Dataset:
    """A Dataset in the internal layout whose values say where they belong."""
    rng = np.random.default_rng(0)
    nm, nd, ns, nt, npd = len(models), len(days), 3, 8, 4
    time = pd.to_timedelta(np.arange(nt) * 3, unit="h")
    period = pd.to_timedelta(np.arange(npd) * 6, unit="h")
    p = rng.normal(size=(nm, nd, ns, nt, 2))
    eur = {"units": "EUR"}
    md, mds = ("model", "day"), ("model", "day", "scenario")
    return xr.Dataset(
        {
            "objective_eur": (md, rng.normal(size=(nm, nd)), eur),
            "expected_cost_eur": (md, rng.normal(size=(nm, nd)), eur),
            "cvar_eur": (md, rng.normal(size=(nm, nd)), eur),
            "first_stage_cost_eur": (md, rng.normal(size=(nm, nd)), eur),
            "scenario_cost_eur": (mds, rng.normal(size=(nm, nd, ns)), eur),
            "weight": (mds, np.full((nm, nd, ns), 1 / ns), {"units": "1"}),
            "der_p_mw": (("model", "day", "scenario", "time", "der"), p, {"units": "MW"}),
            "ter_schedule_mw": (("model", "day", "period"), rng.normal(size=(nm, nd, npd))),
            "solver_status": (md, np.full((nm, nd), "optimal")),
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


def test_one_model_one_day_keeps_its_dimensions():
    c = to_contract(_internal(("tso_managed",), ("2016-06-15",)))
    assert c.objective_eur.dims == ("model", "day") and c.objective_eur.shape == (1, 1)
    assert c.der_p_mw.dims == ("model", "scenario", "time", "der")
    assert c.objective_eur.item() == float(c.objective_eur.sum())
    assert c.model.values.tolist() == ["tso_managed"]


def test_bounds_are_the_intervals_of_steps_and_periods():
    c = to_contract(_internal())  # 3-h steps, 6-h periods, from the spacing
    assert c.time.attrs["bounds"] == "time_bnds" and c.period.attrs["bounds"] == "period_bnds"
    assert c.time_bnds.dims == ("time", "nv") and c.period_bnds.dims == ("period", "nv")
    np.testing.assert_array_equal(c.time_bnds.values[:, 0], c.time.values)
    np.testing.assert_array_equal(c.time_bnds.values[:, 1] - c.time.values, np.timedelta64(3, "h"))
    assert c.period_bnds.values[5].tolist() == [
        pd.Timestamp("2016-06-16 06:00").value,
        pd.Timestamp("2016-06-16 12:00").value,
    ]
    assert c.cf.bounds["time"] == ["time_bnds"] and c.cf.bounds["period"] == ["period_bnds"]
    assert c.cf["T"].name == "time"  # the one time axis: period and day are not T
    # an explicit resolution wins over the spacing; the bounds survive the round trip
    c = to_contract(_internal(), step_minutes=60, period_minutes=120)
    assert (c.time_bnds.values[:, 1] - c.time.values == np.timedelta64(1, "h")).all()
    again = to_contract(to_internal(c))
    np.testing.assert_array_equal(again.time_bnds.values, c.time_bnds.values)
    np.testing.assert_array_equal(again.period_bnds.values, c.period_bnds.values)


def test_one_step_a_day_needs_the_resolution():
    ds = _internal().isel(time=[0], period=[0])
    with pytest.raises(LayoutError, match="pass step_minutes"):
        to_contract(ds)
    c = to_contract(ds, step_minutes=180)  # one period a day spans the day's one step
    assert c.period_bnds.values[1, 1] == np.datetime64("2016-06-16T03:00")
    # a single period a day spans all the day's steps
    c = to_contract(_internal().isel(period=[0]))
    assert (c.period_bnds.values[:, 1] - c.period.values == np.timedelta64(24, "h")).all()


def _written(tmp_path, ds=None):
    ds = to_contract(_internal()) if ds is None else ds
    ds.attrs["study_config_yaml"] = "name: x\n"
    return ds, write_results(ds, tmp_path / "r.nc")


def test_file_stores_utc_instants_that_no_cf_reader_misreads(tmp_path):
    ds, path = _written(tmp_path)
    with netCDF4.Dataset(path) as nc:  # what ncdump or any CF tool sees
        for name in ("time", "period", "day"):
            units = nc[name].units
            assert units.startswith("minutes since") and units.endswith("+00:00"), units
            assert "UTC" in nc[name].long_name, name
            assert f"{name}_local" in nc.variables, name
        assert nc["time"].bounds == "time_bnds" and nc["period"].bounds == "period_bnds"
        first = cftime.num2pydate(nc["time"][0], nc["time"].units)  # the instant, in UTC
        assert first.isoformat() == "2016-06-14T23:00:00"
        assert nc["time_local"][0] == "2016-06-15T00:00+01:00"
        assert nc["time_bnds"].dimensions == ("time", "nv")
        end = cftime.num2pydate(nc["time_bnds"][0, 1], nc["time"].units)
        assert end.isoformat() == "2016-06-15T02:00:00"  # a 3-h step, in UTC
    with xr.open_dataset(path) as raw:  # plain xarray: the UTC instant, labelled as such
        assert raw.time.values[0] == np.datetime64("2016-06-14T23:00")
        assert "UTC" in raw.time.attrs["long_name"]
        assert raw.time_local.values[0] == "2016-06-15T00:00+01:00"
        assert raw.day_local.values.tolist() == ["2016-06-15T00:00+01:00", "2016-06-16T00:00+01:00"]
        assert raw.cf["T"].name == "time" and raw.cf.bounds["time"] == ["time_bnds"]
        local = from_file_clock(raw)  # bounds and all, back on the study's clock
        np.testing.assert_array_equal(local.time_bnds.values[:, 0], ds.time.values)
        assert "time_bnds" in local.coords and "time_local" not in local.variables


def test_file_reads_back_as_written_on_the_study_clock(tmp_path):
    ds, path = _written(tmp_path)
    back = read_results(path)
    xr.testing.assert_identical(back.drop_attrs(), ds.drop_attrs())
    assert back.time.values[0] == np.datetime64("2016-06-15T00:00")
    assert "time_local" not in back.variables  # a label of the file only
    assert back.der_p_mw.sel(time="2016-06-16 06:00").sizes == {"model": 2, "scenario": 3, "der": 2}
    # one model, one day: read back with both dimensions
    one, path = _written(tmp_path, to_contract(_internal(("a",), ("2016-06-15",))))
    back = read_results(path)
    assert back.objective_eur.dims == ("model", "day") and back.objective_eur.shape == (1, 1)
    assert back.der_p_mw.dims == one.der_p_mw.dims


def _old_file(path, models=("tso_managed",)):
    """A results file as the workbench wrote it before: one-entry model and day squeezed
    to scalar coordinates, instants with the local offset in the units, no bounds."""
    ds = _internal(models, ("2016-06-15",))
    flat = ds.isel(model=0, day=0)  # model and day: scalar coordinates
    utc = np.datetime64("2016-06-15") - np.timedelta64(1, "h")  # local midnight in UTC
    flat = flat.assign_coords(
        time=("time", utc + ds.time.values, {"standard_name": "time", "axis": "T"}),
        period=("period", utc + ds.period.values, {"standard_name": "time"}),
        day=utc,
    )
    flat.attrs = {
        "study_config_yaml": yaml.safe_dump(
            {"name": "old", "resolution": {"second_stage_minutes": 180, "first_stage_minutes": 360}}
        ),
        "time_zone": "UTC+01:00",
        "Conventions": "CF-1.10",
    }
    units = "minutes since 2016-06-15T00:00:00+01:00"  # as xarray wrote them
    enc = {n: {"units": units, "dtype": "int64"} for n in ("time", "period", "day")}
    flat.to_netcdf(path, encoding=enc)
    with netCDF4.Dataset(path) as nc:  # as the old writer left it
        assert nc["time"].units == units and nc["time"][0] == 0 and "time_bnds" not in nc.variables
    return ds


def test_files_of_the_old_layout_read_back_in_the_current_one(tmp_path):
    path = tmp_path / "old.nc"
    ds = _old_file(path)
    back = read_results(path)
    assert back.objective_eur.dims == ("model", "day") and back.model.values.tolist() == [
        "tso_managed"
    ]
    assert back.der_p_mw.dims == ("model", "scenario", "time", "der")
    assert back.time.values[0] == np.datetime64("2016-06-15T00:00")  # the study's clock
    assert back.time.attrs["bounds"] == "time_bnds"
    assert (back.time_bnds.values[:, 1] - back.time.values == np.timedelta64(3, "h")).all()
    assert back.period_bnds.values[0, 1] == np.datetime64("2016-06-15T06:00")
    internal = to_internal(back)
    for name in ds.data_vars:
        assert internal[name].dims == ds[name].dims, name
        np.testing.assert_array_equal(internal[name].values, ds[name].values, err_msg=name)
    np.testing.assert_array_equal(internal.time.values, ds.time.values)
    # to_internal reads the old layout as it is, too
    with xr.open_dataset(path) as raw:
        old = to_internal(from_file_clock(raw.load()))
    np.testing.assert_array_equal(old.der_p_mw.values, ds.der_p_mw.values)
    assert old.objective_eur.dims == ("model", "day")


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
    assert ds.cf.axes["T"] == ["time"]  # cf_xarray finds the one time axis
    assert ds.cf["T"].name == "time"
    assert ds.cf.bounds["time"] == ["time_bnds"] and ds.cf.bounds["period"] == ["period_bnds"]
    # 15-min steps and 60-min periods from the study, days apart
    assert (ds.time_bnds.diff("nv") == np.timedelta64(15, "m")).all()
    assert (ds.period_bnds.diff("nv") == np.timedelta64(60, "m")).all()
    assert ds.period_bnds.values[3, 1] == np.datetime64("2016-06-15T20:00")
    assert ds.period_bnds.values[4, 0] == np.datetime64("2016-06-16T16:00")
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
            assert units.startswith("minutes since") and units.endswith("+00:00")
            assert "UTC" in nc[name].long_name


def test_select_by_timestamp_and_by_element(small_file):
    ds = read_results(small_file)
    step = ds.der_p_mw.sel(time="2016-06-15 18:00")
    assert "time" not in step.dims and np.isfinite(step).all()
    assert ds.sizes["day"] == 2 and ds.sizes["time"] == 2 * 4 * 4  # 15-min steps
    assert str(ds.time.values[-1])[:16] == "2016-06-16T19:45"
    assert float(ds.objective_eur.sel(model="tso_managed", day="2016-06-16")) > 0
    assert ds.model.values.tolist() == ["tso_managed"]  # one model: still a dimension
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


def test_docs_describe_every_variable_of_the_file(small_file):
    """docs/results.md names each variable with the dimensions and units it has."""
    assert doc_mismatches(read_results(small_file)) == []
