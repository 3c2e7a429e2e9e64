"""EV sessions from ElaadNL statistics: feasibility, conservation, envelopes, seeds, errors."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from cases.profiles import load_profiles
from forecasts.errors import ForecastError
from forecasts.ev import (
    CHARGER_TYPES,
    MAX_DEPARTURE_H,
    charging_profile_kw,
    ev_scenarios,
    exceedance_value,
    flexibility_envelope,
    load_ev_observations,
    load_ev_statistics,
    sample_sessions,
)

WEDNESDAY = dt.date(2016, 6, 15)
SATURDAY = dt.date(2016, 6, 18)
STATS = load_ev_statistics()


def _sessions(day=WEDNESDAY, n=2000, kind="home", seed=0, **kwargs) -> pd.DataFrame:
    return sample_sessions(day, n, kind, np.random.default_rng(seed), **kwargs)


def _curve_mean(values: np.ndarray) -> float:
    """Mean of the distribution described by an exceedance curve (area under it / 100 %)."""
    return float(np.trapezoid(values, STATS.percent_of_events) / 100.0)


#: statistics without conditioning on arrival time and with power never binding
UNCONDITIONED = dataclasses.replace(
    STATS,
    mean_connection_time_h={k: np.full(48, np.nan) for k in CHARGER_TYPES},
    mean_energy_kwh={k: np.full(48, np.nan) for k in CHARGER_TYPES},
    power_kw=np.full(101, 1e4),
)


# --------------------------------------------------------------------------- sessions


@pytest.mark.parametrize("kind", CHARGER_TYPES)
@pytest.mark.parametrize("day", [WEDNESDAY, SATURDAY])
@pytest.mark.parametrize("charger_power_kw", [None, 3.7])
def test_sessions_are_feasible(kind, day, charger_power_kw):
    s = _sessions(day, 3000, kind, charger_power_kw=charger_power_kw)
    assert list(s.columns) == ["arrival_h", "departure_h", "energy_kwh", "power_kw"]
    assert s.index.is_unique and s.index.min() >= 0 and s.index.max() < 3000
    assert ((s.arrival_h >= 0) & (s.arrival_h < 24)).all()
    assert (s.departure_h > s.arrival_h).all() and (s.departure_h <= MAX_DEPARTURE_H).all()
    assert (s.power_kw > 0).all() and (s.energy_kwh >= 0).all()
    assert (s.energy_kwh <= s.power_kw * (s.departure_h - s.arrival_h) * (1 + 1e-12)).all()
    if charger_power_kw is not None:
        assert s.power_kw.max() <= charger_power_kw


def test_one_session_per_charger_on_weekdays_fewer_at_workplaces_at_weekends():
    assert len(_sessions(WEDNESDAY, 4000, "workplace")) == 4000
    assert len(_sessions(SATURDAY, 4000, "home")) == 4000
    share = len(_sessions(SATURDAY, 4000, "workplace")) / 4000
    p = STATS.weekend_session_probability["workplace"]
    assert 0.1 < p < 0.5 and share == pytest.approx(p, abs=0.03)
    assert len(_sessions(WEDNESDAY, 0, "public")) == 0


def test_same_generator_seed_same_sessions():
    pd.testing.assert_frame_equal(_sessions(seed=11), _sessions(seed=11))
    assert not np.allclose(_sessions(seed=11).energy_kwh, _sessions(seed=12).energy_kwh)


# --------------------------------------------------------------------------- statistics


def _hourly_shares(arrival_h: pd.Series) -> np.ndarray:
    return np.bincount(arrival_h.astype(int), minlength=24) / len(arrival_h)


def test_weekday_and_weekend_arrivals_follow_their_own_distribution():
    weekday = _hourly_shares(_sessions(WEDNESDAY, 20000, "home").arrival_h)
    weekend = _hourly_shares(_sessions(SATURDAY, 20000, "home").arrival_h)
    src_weekday = STATS.arrival_weekday["home"].reshape(24, 4).sum(axis=1)
    src_weekend = STATS.arrival_weekend["home"].reshape(24, 4).sum(axis=1)
    assert np.abs(src_weekday - src_weekend).max() > 0.02  # the sources differ ...
    np.testing.assert_allclose(weekday, src_weekday, atol=0.01)  # ... and each is followed
    np.testing.assert_allclose(weekend, src_weekend, atol=0.01)


@pytest.mark.parametrize("kind", CHARGER_TYPES)
def test_medians_match_the_source_curves_without_conditioning(kind):
    s = _sessions(WEDNESDAY, 5000, kind, seed=3, statistics=UNCONDITIONED)
    assert s.energy_kwh.median() == pytest.approx(STATS.energy_kwh[kind][50], rel=0.04)
    connection_h = s.departure_h - s.arrival_h
    assert connection_h.median() == pytest.approx(STATS.connection_time_h[kind][50], rel=0.04)


def test_power_median_matches_the_2020_curve():
    s = _sessions(WEDNESDAY, 5000, "public", seed=4)
    assert s.power_kw.median() == pytest.approx(STATS.power_kw[50], rel=0.03)


@pytest.mark.parametrize("kind", CHARGER_TYPES)
def test_conditioning_on_arrival_keeps_the_mean_and_follows_the_table(kind):
    stats = dataclasses.replace(STATS, power_kw=np.full(101, 1e4))  # energy cap never binds
    s = _sessions(WEDNESDAY, 40000, kind, seed=5, statistics=stats)
    assert s.energy_kwh.mean() == pytest.approx(_curve_mean(STATS.energy_kwh[kind]), rel=0.03)
    # mean energy per arrival half-hour is proportional to the published table
    table = STATS.mean_energy_kwh[kind]
    slot = (s.arrival_h * 2).astype(int)
    morning, evening = s.energy_kwh[slot.isin([16, 17])], s.energy_kwh[slot.isin([34, 35])]
    expected = np.nanmean(table[34:36]) / np.nanmean(table[16:18])
    assert evening.mean() / morning.mean() == pytest.approx(expected, rel=0.15)


def test_exceedance_value_inverts_the_curve():
    curve = STATS.energy_kwh["home"]
    assert exceedance_value(STATS.percent_of_events, curve, np.array([50.0]))[0] == curve[50]
    assert exceedance_value(STATS.percent_of_events, curve, np.array([0.5]))[0] == pytest.approx(
        (curve[0] + curve[1]) / 2
    )


def test_statistics_are_read_only():
    with pytest.raises(ValueError, match="read-only"):
        STATS.energy_kwh["home"][0] = 1.0
    with pytest.raises(TypeError):
        STATS.energy_kwh["garage"] = np.zeros(101)


# --------------------------------------------------------------------------- profiles


def _one(arrival_h, departure_h, energy_kwh, power_kw) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "arrival_h": [arrival_h],
            "departure_h": [departure_h],
            "energy_kwh": [energy_kwh],
            "power_kw": [power_kw],
        }
    )


def test_single_session_by_hand():
    # 2 kWh at 4 kW from 01:06 (0.5 h), plugged until 03:00
    s = _one(1.1, 3.0, 2.0, 4.0)
    p = charging_profile_kw(s)
    expected = np.zeros(96)
    expected[4:7] = [0.15 * 4 / 0.25, 4.0, 0.1 * 4 / 0.25]  # steps 01:00, 01:15, 01:30
    np.testing.assert_allclose(p, expected, atol=1e-12)
    env = flexibility_envelope(s)
    e_min = np.zeros(96)
    e_min[10], e_min[11:] = 1.0, 2.0  # latest: 02:30-03:00 at 4 kW
    np.testing.assert_allclose(env["e_min_kwh"], e_min, atol=1e-12)
    np.testing.assert_allclose(env["e_max_kwh"], np.cumsum(expected) * 0.25, atol=1e-12)
    p_max = np.zeros(96)
    p_max[4], p_max[5:12] = 0.6 * 4.0, 4.0
    np.testing.assert_allclose(env["p_max_kw"], p_max, atol=1e-12)


def test_session_from_the_previous_day_enters_with_its_remaining_energy():
    # plugged at 22:00 the day before; 8 of 10 kWh delivered by 00:00, must leave at 02:00
    env = flexibility_envelope(_one(-2.0, 2.0, 10.0, 4.0), resolution_minutes=30)
    np.testing.assert_allclose(env["e_max_kwh"][:4], [2.0, 2.0, 2.0, 2.0], atol=1e-12)
    np.testing.assert_allclose(env["e_min_kwh"][:4], [0.0, 0.0, 0.0, 2.0], atol=1e-12)
    np.testing.assert_allclose(env["p_max_kw"][:5], [4.0, 4.0, 4.0, 4.0, 0.0], atol=1e-12)


def test_deferred_charging_before_the_start_is_carried_into_the_envelope():
    # plugged at 22:00 the day before, 10 kWh at 4 kW; the previous schedule gave it half
    # of the 8 kWh uncontrolled charging would have: 6 kWh are left, due at 02:00
    env = flexibility_envelope(
        _one(-2.0, 2.0, 10.0, 4.0), resolution_minutes=30, prior_charged_fraction=0.5
    )
    np.testing.assert_allclose(env["e_max_kwh"][:4], [2.0, 4.0, 6.0, 6.0], atol=1e-12)
    np.testing.assert_allclose(env["e_min_kwh"][:4], [0.0, 2.0, 4.0, 6.0], atol=1e-12)
    # nothing given before: 10 kWh left, only 8 kWh deliverable in the 2 h left
    env = flexibility_envelope(
        _one(-2.0, 2.0, 10.0, 4.0), resolution_minutes=30, prior_charged_fraction=0.0
    )
    np.testing.assert_allclose(env["e_max_kwh"][:4], [2.0, 4.0, 6.0, 8.0], atol=1e-12)
    np.testing.assert_allclose(env["e_min_kwh"][:4], [2.0, 4.0, 6.0, 8.0], atol=1e-12)


def test_energy_of_evs_connected_at_the_horizon_end():
    # plugged at 22:00 with 10 kWh at 4 kW: 8 kWh by midnight, charging as early as possible
    s = pd.concat([_one(22.0, 30.0, 10.0, 4.0), _one(20.0, 23.0, 3.0, 3.0)])
    env = flexibility_envelope(s, resolution_minutes=60)
    assert float(env["e_continuing_kwh"]) == pytest.approx(8.0)
    assert env["e_max_kwh"][-1] == pytest.approx(11.0)


@pytest.mark.parametrize("minutes", [5, 15, 60])
def test_profile_integrates_to_the_total_energy(minutes):
    s = _sessions(WEDNESDAY, 500, "public", charger_power_kw=11.0)
    p = charging_profile_kw(s, resolution_minutes=minutes, horizon_hours=48)
    assert p.sum() * minutes / 60 == pytest.approx(s.energy_kwh.sum(), rel=1e-10)
    env = flexibility_envelope(s, resolution_minutes=minutes, horizon_hours=48)
    # every session has left by 48 h: both bounds end at the total energy
    assert env["e_min_kwh"][-1] == pytest.approx(s.energy_kwh.sum(), rel=1e-10)
    assert env["e_max_kwh"][-1] == pytest.approx(s.energy_kwh.sum(), rel=1e-10)


@pytest.mark.parametrize(("start_hour", "horizon_hours"), [(0, 24), (12, 24), (6, 4)])
def test_envelope_properties(start_hour, horizon_hours):
    s = _sessions(WEDNESDAY, 800, "home", seed=8)
    window = {"start_hour": start_hour, "horizon_hours": horizon_hours}
    env = flexibility_envelope(s, **window)
    e_min, e_max, p_max = env["e_min_kwh"], env["e_max_kwh"], env["p_max_kw"]
    assert e_min.shape == e_max.shape == p_max.shape == (horizon_hours * 4,)
    assert (e_min <= e_max).all()
    assert (np.diff(e_min) >= 0).all() and (np.diff(e_max) >= 0).all()
    bound = p_max * 0.25 + 1e-9
    assert (np.diff(e_min, prepend=0.0) <= bound).all()
    assert (np.diff(e_max, prepend=0.0) <= bound).all()
    np.testing.assert_allclose(
        e_max, np.cumsum(charging_profile_kw(s, **window)) * 0.25, rtol=1e-12, atol=1e-9
    )


@pytest.mark.parametrize(("coarse", "fine"), [(30, 15), (60, 15), (15, 5)])
def test_resolutions_are_consistent_by_aggregation(coarse, fine):
    s = _sessions(WEDNESDAY, 300, "workplace", seed=9)
    k = coarse // fine
    p_fine = charging_profile_kw(s, resolution_minutes=fine, start_hour=6)
    p_coarse = charging_profile_kw(s, resolution_minutes=coarse, start_hour=6)
    np.testing.assert_allclose(p_coarse, p_fine.reshape(-1, k).mean(axis=1), atol=1e-9)
    env_fine = flexibility_envelope(s, resolution_minutes=fine, start_hour=6)
    env_coarse = flexibility_envelope(s, resolution_minutes=coarse, start_hour=6)
    for name in ("e_min_kwh", "e_max_kwh"):
        np.testing.assert_allclose(env_coarse[name], env_fine[name][k - 1 :: k], atol=1e-9)


# --------------------------------------------------------------------------- scenarios

CHARGERS = {"home": 30, "public": 10, "workplace": 20}


def test_scenarios_same_seed_same_numbers_other_seed_other_numbers():
    a = ev_scenarios(WEDNESDAY, 4, CHARGERS, seed=3)
    b = ev_scenarios(WEDNESDAY, 4, CHARGERS, seed=3)
    c = ev_scenarios(WEDNESDAY, 4, CHARGERS, seed=4)
    for name in ("p_uncontrolled_kw", "e_min_kwh", "e_max_kwh", "p_max_kw"):
        np.testing.assert_array_equal(a[name].values, b[name].values)
    assert not np.allclose(a.p_uncontrolled_kw.values, c.p_uncontrolled_kw.values)
    # scenario streams are spawned: the first scenarios do not depend on their number
    d = ev_scenarios(WEDNESDAY, 2, CHARGERS, seed=3)
    np.testing.assert_array_equal(a.e_max_kwh.values[:2], d.e_max_kwh.values)


def test_scenario_dataset_layout():
    ds = ev_scenarios(WEDNESDAY, 3, CHARGERS, seed=1, resolution_minutes=30, start_hour=12)
    assert list(ds.charger_type.values) == ["home", "workplace", "public"]
    assert ds.p_uncontrolled_kw.dims == ("scenario", "charger_type", "time")
    assert ds.sizes["time"] == 48 and ds.time.values[0] == np.datetime64("2016-06-15T12:00")
    assert ds.weight.sum().item() == pytest.approx(1.0)
    assert ds.n_chargers.sel(charger_type="home").item() == 30
    for name, var in ds.variables.items():
        if name not in ds.dims:
            assert var.attrs.get("units") and var.attrs.get("long_name"), name
    assert (ds.e_min_kwh <= ds.e_max_kwh).all()
    # the horizon reaches into the next morning: home EVs of the evening are still connected
    assert (ds.p_max_kw.sel(charger_type="home").isel(time=-1) > 0).all()


def test_overnight_connections_reach_into_the_day():
    ds = ev_scenarios(WEDNESDAY, 5, {"home": 50}, seed=2)
    assert (ds.p_max_kw.isel(time=0) > 0).all()  # connected since the evening before


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"charger_type": "garage"}, r"charger_type must be one of .*home.*got 'garage'"),
        ({"n_chargers": -1}, r"n_chargers must be an integer >= 0, got -1"),
        ({"n_chargers": 2.5}, r"n_chargers .* got 2.5"),
        ({"charger_power_kw": 0.0}, r"charger_power_kw must be a positive number .* got 0.0"),
        ({"charger_power_kw": -3.7}, r"charger_power_kw .* got -3.7"),
    ],
)
def test_sample_sessions_errors_name_the_field(kwargs, field):
    args = {"day": WEDNESDAY, "n_chargers": 3, "charger_type": "home"} | kwargs
    with pytest.raises(ValueError, match=field) as err:
        sample_sessions(rng=np.random.default_rng(0), **args)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (
            {"resolution_minutes": 10},
            r"resolution_minutes must be one of \(5, 15, 30, 60\), got 10",
        ),
        ({"start_hour": 24}, r"start_hour must be an integer in 0..23"),
        ({"horizon_hours": 0}, r"horizon_hours must be an integer in 1..48"),
        ({"n_scenarios": 0}, r"n_scenarios must be an integer >= 1, got 0"),
        ({"chargers": {"garage": 3}}, r"chargers key must be one of .* got 'garage'"),
        ({"chargers": {"home": -2}}, r"chargers\['home'\] must be an integer >= 0, got -2"),
        ({"seed": -1}, r"seed must be an integer >= 0"),
    ],
)
def test_ev_scenarios_errors_name_the_field(kwargs, field):
    args = {"day": WEDNESDAY, "n_scenarios": 2, "chargers": {"home": 3}, "seed": 0} | kwargs
    with pytest.raises(ValueError, match=field):
        ev_scenarios(**args)


def test_profile_rejects_infeasible_sessions_and_bad_resolution():
    with pytest.raises(ValueError, match="energy_kwh must not exceed"):
        charging_profile_kw(_one(1.0, 2.0, 5.0, 4.0))
    with pytest.raises(ValueError, match="missing"):
        charging_profile_kw(pd.DataFrame({"arrival_h": [1.0]}))
    with pytest.raises(ValueError, match="resolution_minutes"):
        flexibility_envelope(_one(1.0, 2.0, 1.0, 4.0), resolution_minutes=20)


# --------------------------------------------------------------------------- observations


def test_simbench_observations():
    obs = load_ev_observations()
    assert list(obs.columns) == ["home", "workplace"]
    assert len(obs) == 366 * 96 and obs.index[0] == pd.Timestamp("2016-01-01 00:00")
    # the same time labels as the SimBench profiles in cases/data
    assert obs.index.equals(load_profiles().index)
    assert (obs >= 0).all().all() and obs.attrs["units"] == "kW"
    # workplaces charge mostly on weekdays
    daily = obs.resample("D").sum()
    weekend = daily.index.dayofweek >= 5
    assert daily.workplace[weekend].mean() < 0.5 * daily.workplace[~weekend].mean()


def test_plug_in_probability_thins_the_sessions():
    rng = np.random.default_rng(8)
    wednesday = dt.date(2016, 6, 15)
    full = sample_sessions(wednesday, 2000, "home", rng)
    half = sample_sessions(wednesday, 2000, "home", rng, plug_in_probability=0.5)
    assert len(full) == 2000
    assert 900 < len(half) < 1100
    with pytest.raises(ForecastError, match=r"plug_in_probability must be a number in \(0, 1\]"):
        sample_sessions(wednesday, 5, "home", rng, plug_in_probability=0.0)
    with pytest.raises(ForecastError, match="plug_in_probability"):
        ev_scenarios(wednesday, 2, {"home": 3}, seed=1, plug_in_probability=1.5)
