"""The simple scenario generator: reproducible, consistent across resolutions, weighted."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from forecasts import ScenarioError, generate_scenarios

DAY = dt.date(2016, 6, 15)


def test_same_seed_same_numbers_other_seed_other_numbers():
    a = generate_scenarios(DAY, 5, seed=3)
    b = generate_scenarios(DAY, 5, seed=3)
    c = generate_scenarios(DAY, 5, seed=4)
    np.testing.assert_array_equal(a.value_pu.values, b.value_pu.values)
    assert not np.allclose(a.value_pu.values, c.value_pu.values)


def test_scenario_streams_do_not_depend_on_the_number_of_scenarios():
    a = generate_scenarios(DAY, 3, seed=3)
    b = generate_scenarios(DAY, 6, seed=3)
    # the first scenarios come from the same spawned streams
    np.testing.assert_array_equal(a.value_pu.values[0], b.value_pu.values[0])


def test_weights_sum_to_one_and_dims():
    ds = generate_scenarios(DAY, 7, seed=1)
    assert ds.weight.sum().item() == pytest.approx(1.0)
    assert ds.value_pu.dims == ("scenario", "time", "resource")
    assert ds.sizes["time"] == 96 and ds.sizes["period"] == 24
    assert ds.value_pu.attrs["units"] == "pu"


def test_hourly_values_are_means_of_the_second_stage_values():
    ds = generate_scenarios(DAY, 4, seed=2, resolution_minutes=15)
    v = ds.value_pu.values.reshape(4, 24, 4, -1).mean(axis=2)
    np.testing.assert_allclose(ds.value_hourly_pu.values, v, atol=1e-12)


@pytest.mark.parametrize("minutes", [5, 30, 60])
def test_resolutions_are_consistent_by_aggregation(minutes):
    fine = generate_scenarios(DAY, 2, seed=5, resolution_minutes=minutes)
    assert fine.sizes["time"] == 24 * 60 // minutes
    np.testing.assert_allclose(
        fine.value_hourly_pu.values,
        fine.value_pu.values.reshape(2, 24, -1, 5).mean(axis=2),
        atol=1e-12,
    )


def test_pv_and_wind_within_capacity_loads_non_negative():
    ds = generate_scenarios(DAY, 20, seed=0, pv_sigma=0.9, wind_sigma=0.9, load_sigma=0.5)
    pv = ds.value_pu.sel(resource=["pv", "wind"])
    assert float(pv.min()) >= 0.0 and float(pv.max()) <= 1.0
    assert float(ds.value_pu.min()) >= 0.0
    # PV is zero at night in every scenario
    night = ds.value_pu.sel(resource="pv").isel(time=slice(0, 12))
    assert float(night.max()) == 0.0


def test_zero_noise_gives_the_central_profile():
    ds = generate_scenarios(DAY, 3, seed=0, pv_sigma=0, load_sigma=0, wind_sigma=0)
    np.testing.assert_allclose(
        ds.value_pu.values, np.broadcast_to(ds.expected_pu.values, ds.value_pu.shape)
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"resolution_minutes": 10}, "resolution_minutes must be one of"),
        ({"n_scenarios": 0}, "n_scenarios must be at least 1"),
        ({"horizon_hours": 5, "start_hour": 22}, "must lie within the day"),
    ],
)
def test_invalid_requests(kwargs, match):
    args = {"n_scenarios": 2, "seed": 0, **kwargs}
    n = args.pop("n_scenarios")
    with pytest.raises(ScenarioError, match=match):
        generate_scenarios(DAY, n, **args)
