"""Studies on any day their sources cover, and user time series with their own time zone.

References are independent of the code under test: the ENTSO-E file read with pandas, a
ramp whose value is the UTC time itself (so a wrong offset shows as a wrong value), and
the calendar (weekdays).
"""

from __future__ import annotations

import datetime as dt
import warnings
from importlib import resources

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from cases.profiles import load_profiles, typical_year_day
from cases.study import load_study, parse_study
from forecasts.errors import ForecastError
from forecasts.history import load_history, read_user_series, user_source
from workbench.scenarios import check_forecast_sources, observed_day, study_scenarios

DAY = dt.date(2019, 6, 15)
EPOCH = pd.Timestamp("2019-01-01", tz="UTC")


def _entsoe_file() -> pd.DataFrame:
    """The embedded ENTSO-E file read directly (UTC+1 quarter-hours)."""
    path = resources.files("forecasts") / "data" / "entsoe_solar_2017_2020_15min.csv.gz"
    with resources.as_file(path) as p:
        return pd.read_csv(p, parse_dates=["time"], index_col="time")


def _ramp(utc: pd.DatetimeIndex) -> np.ndarray:
    """A value that is the instant itself: hours since 2019-01-01 UTC / 10^4 [pu]."""
    return ((utc - EPOCH) / pd.Timedelta(hours=1)).to_numpy() / 1e4


def _clock_to_utc(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """UTC instants of naive UTC+1 stamps."""
    return (index - pd.Timedelta(hours=1)).tz_localize("UTC")


ENTSOE_STUDY = {
    "name": "y2019",
    "start_date": str(DAY),
    "transmission": {"network": "case9"},
    "feeders": [{"name": "f1", "network": "cigre_mv", "bus": "5", "share": 0.2}],
    "forecast": {"sources": {"pv": "entsoe_de"}, "max_iter": 10, "n_samples": 60},
}


# ---- the typical-year rule ------------------------------------------------------------
def test_typical_year_day_keeps_the_weekday_and_the_season():
    day = dt.date(2017, 1, 1)
    while day <= dt.date(2020, 12, 31):
        typical = typical_year_day(day)
        assert typical.year == 2016 and typical.weekday() == day.weekday(), day
        # nearest same-weekday day: within 3 days, a week more at the year's ends only
        distance = abs((typical - dt.date(2016, day.month, day.day)).days)
        year_end = (day.month, day.day) <= (1, 7) or (day.month, day.day) >= (12, 25)
        assert distance <= 3 or (year_end and distance <= 7), day
        day += dt.timedelta(days=1)
    for d in (dt.date(2016, 1, 1), dt.date(2016, 2, 29), dt.date(2016, 12, 31)):
        assert typical_year_day(d) == d


def test_typical_year_load_follows_the_mapped_2016_day():
    study = parse_study({**ENTSOE_STUDY, "scenarios": {"method": "profile_noise"}})
    observed = observed_day(study, DAY)
    profiles = load_profiles()
    typical = typical_year_day(DAY)
    assert typical == dt.date(2016, 6, 18) and typical.weekday() == DAY.weekday() == 5
    expected = profiles.loc[str(typical), "load_residential_p_pu"].to_numpy()
    np.testing.assert_array_equal(observed["load_residential"].to_numpy(), expected)


# ---- ENTSO-E PV drives a 2019 day -----------------------------------------------------
def test_observed_day_of_2019_is_the_entsoe_file():
    study = parse_study({**ENTSOE_STUDY, "scenarios": {"method": "profile_noise"}})
    check_forecast_sources(study)
    observed = observed_day(study, DAY)
    reference = _entsoe_file().loc[str(DAY), "pv_de_p_pu"].to_numpy()
    assert len(reference) == 96
    np.testing.assert_array_equal(observed["pv"].to_numpy(), reference)
    assert (observed["pv"].iloc[:12] == 0).all()  # 00:00-03:00 UTC+1: night
    assert observed["pv"].max() > 0.3


def test_profile_noise_scenarios_of_2019_are_the_entsoe_day_without_noise():
    study = parse_study({**ENTSOE_STUDY, "scenarios": {"method": "profile_noise", "pv_sigma": 0.0}})
    scen = study_scenarios(study, DAY, 0)
    reference = _entsoe_file().loc[str(DAY), "pv_de_p_pu"].to_numpy()
    for s in range(scen.sizes["scenario"]):
        np.testing.assert_allclose(scen.value_pu.sel(resource="pv")[s].to_numpy(), reference)


@pytest.mark.slow
def test_forecast_history_of_a_2019_study_ends_before_its_day():
    """Scenario PV of a forecast 2019 day is zero where the sun is down."""
    study = parse_study(ENTSOE_STUDY)
    scen = study_scenarios(study, DAY, 0)
    pv = scen.value_pu.sel(resource="pv").to_numpy()  # (scenario, time)
    night = np.r_[0:12, 88:96]  # 00:00-03:00 and 22:00-24:00 UTC+1 in mid-June
    assert (pv[:, night] == 0).all()
    assert pv.max() > 0.1 and "entsoe_de" in scen.attrs["sources"]


@pytest.mark.slow
def test_a_2019_study_with_entsoe_pv_runs():
    from workbench.runner import run_study

    data = {
        **ENTSOE_STUDY,
        "scenarios": {"n_scenarios": 3},
        "resolution": {"second_stage_minutes": 60},
        "risk": {"beta": 0.0},
        "ac_check": {"enabled": False},
    }
    study = parse_study(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = run_study(study, scheduler="sync", progress=False)

    def one(da: xr.DataArray) -> np.ndarray:  # the one model and day
        return da.isel({d: 0 for d in ("model", "day") if d in da.dims}).to_numpy()

    assert str(one(ds.solver_status)) == "optimal"
    assert pd.Timestamp(np.atleast_1d(ds.day.values)[0]).date() == DAY
    pv = ds.der_type.values == "pv"
    offer = one(ds.der_offer_mw)[:, pv].sum(axis=1)  # (period,)
    dispatch = one(ds.der_p_mw)[..., pv].sum(axis=2)  # (scenario, time)
    hourly = _entsoe_file().loc[str(DAY), "pv_de_p_pu"].to_numpy().reshape(24, 4).mean(axis=1)
    night = hourly == 0
    assert night.sum() >= 6
    assert np.abs(offer[night]).max() < 1e-9 and offer.max() > 0
    assert np.abs(dispatch[:, night]).max() < 1e-6
    assert "entsoe_de" in ds.attrs["data_sources"]
    assert "2019-06-15 -> 2016-06-18" in ds.attrs["data_sources"]


# ---- days outside the sources ---------------------------------------------------------
def test_a_day_after_every_source_is_one_line_naming_each_range():
    study = parse_study({**ENTSOE_STUDY, "start_date": "2021-06-15"})
    with pytest.raises(ForecastError) as err:
        check_forecast_sources(study)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("start_date 2021-06-15:")
    assert "'entsoe_de' (pv) covers 2017-01-01 .. 2020-12-31" in msg
    assert "'simbench_wind'" in msg and "2016-01-01 .. 2020-12-31" in msg
    assert "choose start_date in 2017-02-05 .. 2020-12-31" in msg


def test_a_day_too_early_to_train_says_so():
    study = parse_study({**ENTSOE_STUDY, "start_date": "2017-01-20"})
    with pytest.raises(ForecastError, match="too early to train on the 35 days"):
        check_forecast_sources(study)
    # without forecasting, the day itself is enough
    check_forecast_sources(
        parse_study(
            {**ENTSOE_STUDY, "start_date": "2017-01-20", "scenarios": {"method": "profile_noise"}}
        )
    )


def test_the_last_days_must_be_covered_too():
    study = parse_study({**ENTSOE_STUDY, "start_date": "2020-12-30", "n_days": 3})
    with pytest.raises(ForecastError, match=r"start_date 2020-12-30 .. 2021-01-01: .*n_days 3"):
        check_forecast_sources(study)


# ---- user series ----------------------------------------------------------------------
def _write_csv(path, local: pd.DatetimeIndex, values: np.ndarray, column: str = "p") -> None:
    frame = pd.DataFrame({"time": local.strftime("%Y-%m-%d %H:%M"), column: values})
    path.write_text(frame.to_csv(index=False))


@pytest.mark.parametrize(
    ("time_zone", "freq"),
    [
        ("Europe/Berlin", "60min"),
        ("Europe/Berlin", "15min"),
        ("UTC", "5min"),
        ("Etc/GMT-1", "30min"),
    ],
)
def test_user_csv_lands_on_the_right_quarter_hours(tmp_path, time_zone, freq):
    """Across both 2019 daylight-saving changes, each quarter-hour gets its instant's value."""
    utc = pd.date_range("2019-03-25", "2019-11-05", freq=freq, tz="UTC", inclusive="left")
    local = utc.tz_convert(time_zone).tz_localize(None)
    path = tmp_path / "series.csv"
    _write_csv(path, local, _ramp(utc))
    series = read_user_series(
        user_source({"file": str(path), "column": "p", "time_zone": time_zone}, "load")
    )
    assert len(series) % 96 == 0 and series.index[0] == series.index[0].normalize()
    step = pd.Timedelta(freq)
    inst = _clock_to_utc(series.index)
    if step >= pd.Timedelta(minutes=15):  # held over its quarter-hours
        expected = _ramp(inst.floor(freq))
    else:  # mean of the 5-min values: the value at the middle 5 min
        expected = _ramp(inst + pd.Timedelta(minutes=5))
    np.testing.assert_allclose(series.to_numpy(), expected, atol=1e-12)
    # spot checks: in Berlin summer time 14:00 local is 13:00 on the UTC+1 clock
    if time_zone == "Europe/Berlin":
        ts = pd.Timestamp("2019-07-01 13:00")
        assert series[ts] == pytest.approx(
            _ramp(pd.DatetimeIndex([pd.Timestamp("2019-07-01 12:00", tz="UTC")]))[0]
        )
        winter = pd.Timestamp("2019-11-01 13:00")  # CET = UTC+1: unshifted
        assert series[winter] == pytest.approx(
            _ramp(pd.DatetimeIndex([pd.Timestamp("2019-11-01 12:00", tz="UTC")]))[0]
        )


def test_user_netcdf_equals_the_same_csv(tmp_path):
    utc = pd.date_range("2019-06-01", "2019-06-10", freq="60min", tz="UTC", inclusive="left")
    nc = tmp_path / "series.nc"
    xr.Dataset({"p": ("time", _ramp(utc))}, coords={"time": utc.tz_localize(None)}).to_netcdf(nc)
    csv = tmp_path / "series.csv"
    _write_csv(csv, utc.tz_localize(None), _ramp(utc))
    from_nc = read_user_series(
        user_source({"file": str(nc), "column": "p", "time_zone": "UTC"}, "load")
    )
    from_csv = read_user_series(
        user_source({"file": str(csv), "column": "p", "time_zone": "UTC"}, "load")
    )
    pd.testing.assert_series_equal(from_nc, from_csv, check_names=False)
    # UTC 00:00 is 01:00 on the UTC+1 clock: the first whole day starts at UTC 23:00
    assert from_nc.index[0] == pd.Timestamp("2019-06-02 00:00")
    assert from_nc.iloc[0] == pytest.approx(
        _ramp(pd.DatetimeIndex([pd.Timestamp("2019-06-01 23:00", tz="UTC")]))[0]
    )
    # a netCDF variable in Berlin time is shifted by the summer offset
    nc_berlin = tmp_path / "berlin.nc"
    xr.Dataset(
        {"p": ("time", _ramp(utc))},
        coords={"time": utc.tz_convert("Europe/Berlin").tz_localize(None)},
    ).to_netcdf(nc_berlin)
    berlin = read_user_series(
        user_source({"file": str(nc_berlin), "column": "p", "time_zone": "Europe/Berlin"}, "load")
    )
    common = berlin.index.intersection(from_nc.index)
    assert len(common) >= 96 * 7
    np.testing.assert_allclose(berlin[common], from_nc[common], atol=1e-12)


def test_a_study_takes_pv_from_a_user_file_next_to_it(tmp_path):
    """ENTSO-E PV written in Berlin local time comes back as the ENTSO-E day."""
    entsoe = load_history("entsoe_de").loc["2019-05-01":"2019-06-30"]
    utc = entsoe.index.tz_localize("Etc/GMT-1").tz_convert("UTC")
    _write_csv(
        tmp_path / "my_pv.csv",
        utc.tz_convert("Europe/Berlin").tz_localize(None),
        entsoe.to_numpy(),
        "p_pu",
    )
    data = {
        **ENTSOE_STUDY,
        "scenarios": {"method": "profile_noise"},
        "forecast": {
            "sources": {"pv": {"file": "my_pv.csv", "column": "p_pu", "time_zone": "Europe/Berlin"}}
        },
    }
    study_path = tmp_path / "study.yaml"
    study_path.write_text(yaml.safe_dump(data))
    study = load_study(study_path)
    assert study.forecast.sources.pv.file == str(tmp_path / "my_pv.csv")
    check_forecast_sources(study)
    observed = observed_day(study, DAY)
    np.testing.assert_allclose(observed["pv"].to_numpy(), entsoe.loc[str(DAY)].to_numpy())
    # the file's whole days bound the study
    late = parse_study({**study.model_dump(mode="json"), "start_date": "2019-07-15"})
    with pytest.raises(
        ForecastError, match=r"my_pv.csv' column 'p_pu' \(pv\) covers 2019-05-01 .. 2019-06-30"
    ):
        check_forecast_sources(late)


@pytest.mark.parametrize(
    ("problem", "needle"),
    [
        ("negative", "negative pv value -0.1"),
        ("above_one", "exceeds 1"),
        ("nan", "NaN"),
        ("gap", "gap or irregular step"),
        ("step7", "does not divide a day"),
        ("bad_time", "is not a date and time"),
        ("dst_gap", "not valid local times of Europe/Berlin"),
        ("unsorted", "must increase"),
    ],
)
def test_a_bad_user_series_is_one_line(tmp_path, problem, needle):
    times = pd.date_range("2019-06-10", "2019-06-13", freq="15min", inclusive="left")
    if problem == "step7":
        times = pd.date_range("2019-06-10", "2019-06-13", freq="7min", inclusive="left")
    if problem == "dst_gap":  # 02:00-02:59 of 31 March does not exist in Berlin
        times = pd.date_range("2019-03-30", "2019-04-02", freq="15min", inclusive="left")
    values = np.full(len(times), 0.2)
    text = times.strftime("%Y-%m-%d %H:%M").tolist()
    if problem == "negative":
        values[50] = -0.1
    elif problem == "above_one":
        values[50] = 1.5
    elif problem == "nan":
        values[50] = np.nan
    elif problem == "bad_time":
        text[50] = "noon"
    elif problem == "unsorted":
        text[50], text[51] = text[51], text[50]
    frame = pd.DataFrame({"time": text, "p": values})
    if problem == "gap":
        frame = frame.drop(index=[50, 51])
    path = tmp_path / "pv.csv"
    path.write_text(frame.to_csv(index=False))
    with pytest.raises(ForecastError) as err:
        read_user_series(
            user_source({"file": str(path), "column": "p", "time_zone": "Europe/Berlin"}, "pv"),
            field="forecast.sources.pv",
        )
    msg = str(err.value)
    assert "\n" not in msg and needle in msg and "pv.csv" in msg, msg


def test_a_bad_user_source_spec_is_one_line(tmp_path):
    path = tmp_path / "pv.csv"
    path.write_text("time,p\n2019-06-10 00:00,0\n")
    with pytest.raises(ForecastError, match="no column 'power'; its columns: \\['p'\\]"):
        read_user_series(
            user_source({"file": str(path), "column": "power", "time_zone": "UTC"}, "pv")
        )
    with pytest.raises(ForecastError, match="unknown time zone 'Mars/Olympus'"):
        user_source({"file": str(path), "column": "p", "time_zone": "Mars/Olympus"}, "pv")
    with pytest.raises(ForecastError, match="not found"):
        read_user_series(
            user_source({"file": str(tmp_path / "x.csv"), "column": "p", "time_zone": "UTC"}, "pv")
        )
    with pytest.raises(ForecastError, match="neither CSV"):
        (tmp_path / "pv.xlsx").write_text("x")
        read_user_series(
            user_source(
                {"file": str(tmp_path / "pv.xlsx"), "column": "p", "time_zone": "UTC"}, "pv"
            )
        )


def test_a_user_series_trains_a_forecaster(tmp_path):
    """A user PV file is a forecast history: scenarios of its next day are zero at night."""
    from forecasts.generate import fit_scenario_forecaster, forecast_scenarios

    entsoe = load_history("entsoe_de").loc["2019-05-01":"2019-06-30"]
    utc = entsoe.index.tz_localize("Etc/GMT-1").tz_convert("UTC")
    _write_csv(tmp_path / "pv.csv", utc.tz_localize(None), entsoe.to_numpy(), "p_pu")
    source = user_source(
        {"file": str(tmp_path / "pv.csv"), "column": "p_pu", "time_zone": "UTC"}, "pv"
    )
    fc = fit_scenario_forecaster({"pv": source}, before=DAY, until=DAY, max_iter=10)
    assert fc.sources == ("pv.csv:p_pu",)
    scen = forecast_scenarios(fc, DAY, 4, seed=0, n_samples=50)
    pv = scen.value_pu.sel(resource="pv").to_numpy()
    night = entsoe.loc[str(DAY)].to_numpy() == 0
    assert night.sum() >= 20 and (pv[:, night] == 0).all()
    assert pv.max() > 0.1 and (pv <= 1.0).all()
    with pytest.raises(ForecastError, match="leaves 24 training day"):  # 8 .. 31 May
        fit_scenario_forecaster({"pv": source}, before=dt.date(2019, 6, 1), max_iter=10)


@pytest.mark.slow
def test_workbench_run_on_2019_writes_where_its_data_came_from(tmp_path):
    """End to end: the CLI runs a 2019 day and the file says which 2016 day stood in."""
    from workbench.cli import main
    from workbench.results import read_results

    data = {
        **ENTSOE_STUDY,
        "scenarios": {"n_scenarios": 2, "method": "profile_noise", "pv_sigma": 0.0},
        "resolution": {"second_stage_minutes": 60},
        "risk": {"beta": 0.0},
        "ac_check": {"enabled": False},
    }
    study = tmp_path / "s2019.yaml"
    study.write_text(yaml.safe_dump(data))
    out = tmp_path / "o.nc"
    args = ["run", str(study), "--out", str(out), "--no-plots", "--no-progress"]
    assert main([*args, "--scheduler", "sync"]) == 0
    ds = read_results(out)
    assert "pv: entsoe_de" in ds.attrs["data_sources"]
    assert (
        "load_residential: simbench_load_residential (2016 as a typical year"
        in (ds.attrs["data_sources"])
    )
    assert "2019-06-15 -> 2016-06-18" in ds.attrs["data_sources"]
    pv = (ds.der_type == "pv").to_numpy()
    dispatch = ds.der_p_mw.isel(model=0).to_numpy()[..., pv].sum(axis=-1)  # (scenario, time)
    hourly = _entsoe_file().loc[str(DAY), "pv_de_p_pu"].to_numpy().reshape(24, 4).mean(axis=1)
    assert np.abs(dispatch[:, hourly == 0]).max() < 1e-6 and dispatch.max() > 0


def test_stamps_with_a_utc_offset_are_taken_as_written(tmp_path):
    utc = pd.date_range("2019-10-20", "2019-11-02", freq="60min", tz="UTC", inclusive="left")
    berlin = utc.tz_convert("Europe/Berlin")  # offsets +02:00, then +01:00 after 27 October
    with_offset = tmp_path / "offset.csv"
    pd.DataFrame({"time": berlin.strftime("%Y-%m-%dT%H:%M%z"), "p": _ramp(utc)}).to_csv(
        with_offset, index=False
    )
    naive = tmp_path / "naive.csv"
    _write_csv(naive, berlin.tz_localize(None), _ramp(utc))
    a = read_user_series(
        user_source({"file": str(with_offset), "column": "p", "time_zone": "UTC"}, "load")
    )
    b = read_user_series(
        user_source({"file": str(naive), "column": "p", "time_zone": "Europe/Berlin"}, "load")
    )
    pd.testing.assert_series_equal(a, b, check_names=False)
    np.testing.assert_allclose(a.to_numpy(), _ramp(_clock_to_utc(a.index).floor("60min")))
