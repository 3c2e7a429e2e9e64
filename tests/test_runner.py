"""End-to-end runs through the Dask runner and the command line."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import xarray as xr
import yaml

from tests.conftest import SMALL_STUDY
from workbench.cli import main
from workbench.contract import to_internal
from workbench.runner import resolve_scheduler, run_study


@pytest.fixture(scope="module")
def small_run(small_study, small_system, small_forecaster):
    return run_study(
        small_study,
        scheduler="sync",
        progress=False,
        system=small_system,
        forecaster=small_forecaster,
    )


def test_results_contract(small_run):
    ds = small_run
    for dim in (
        "model",
        "day",
        "scenario",
        "time",
        "period",
        "gen",
        "der",
        "interface",
        "bus",
        "branch",
    ):
        assert dim in ds.dims, dim
    assert ds.model.values.tolist() == ["tso_managed"]
    assert "scenario" not in ds.ter_schedule_mw.dims
    for name in (
        "expected_cost_eur",
        "cvar_eur",
        "der_bid_up_mw",
        "der_p_mw",
        "curtailment_mw",
        "interface_p_mw",
        "vm_pu_ac",
        "loading_percent_ac",
        "solver_seconds",
        "build_seconds",
        "message_values",
        "exchange_rounds",
        "voltage_violations_distribution_ac",
    ):
        assert name in ds, name
        assert "units" in ds[name].attrs, name
    assert (ds.solver_status == "optimal").all()


def test_ac_check_agrees_with_the_linear_model(small_run):
    ds = small_run.isel(model=0, day=0)
    checked = ds.ac_checked.values.astype(bool)
    assert checked.sum() == ds.sizes["scenario"] * 4  # every 4th of 16 steps
    assert ds.ac_converged.values[checked].all()
    feeder = ~ds.bus.str.startswith("transmission/")
    diff = np.abs(ds.vm_pu_ac - ds.vm_pu_linear).where(feeder)
    assert float(diff.max()) < 0.01
    # interface power: the AC import exceeds the lossless linear one by the losses of the
    # feeder and its coupling transformer (positive, a few percent of the flows)
    gap = (ds.interface_p_mw_ac - ds.interface_p_mw).values[checked]
    scale = np.abs(ds.interface_p_mw.values).max(axis=(0, 1))
    assert np.all(gap > -1e-3)
    assert np.all(gap < 0.1 * scale)


def test_same_seed_same_results(small_study, small_system, small_run, small_forecaster):
    again = run_study(
        small_study,
        scheduler="sync",
        progress=False,
        system=small_system,
        forecaster=small_forecaster,
    )
    np.testing.assert_array_equal(
        again.scenario_cost_eur.values, small_run.scenario_cost_eur.values
    )
    other = run_study(
        small_study,
        scheduler="sync",
        progress=False,
        system=small_system,
        seed=99,
        forecaster=small_forecaster,
    )
    assert not np.allclose(other.scenario_cost_eur.values, small_run.scenario_cost_eur.values)


@pytest.mark.slow
def test_local_cluster_gives_the_same_numbers_as_sync(
    small_study, small_system, small_run, small_forecaster
):
    dist = run_study(
        small_study, workers=2, progress=False, system=small_system, forecaster=small_forecaster
    )
    np.testing.assert_allclose(
        dist.scenario_cost_eur.values, small_run.scenario_cost_eur.values, rtol=1e-9
    )


@pytest.mark.slow
def test_existing_scheduler_by_address(small_study, small_system, small_run):
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
        ds = run_study(
            small_study, scheduler=cluster.scheduler_address, progress=False, system=small_system
        )
    np.testing.assert_allclose(
        ds.scenario_cost_eur.values, small_run.scenario_cost_eur.values, rtol=1e-9
    )


def test_cli_run_writes_netcdf_and_plots(tmp_path, capsys):
    data = copy.deepcopy(SMALL_STUDY)
    data["n_days"] = 2
    data["ac_check"] = {"every_n_steps": 8, "max_scenarios": 2}
    path = tmp_path / "two_days.yaml"
    path.write_text(yaml.safe_dump(data))
    out = tmp_path / "out" / "run.nc"
    code = main(["run", str(path), "--out", str(out), "--scheduler", "sync", "--no-progress"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "tso_managed" in text and str(out) in text
    ds = xr.open_dataset(out)
    assert ds.sizes["day"] == 2
    assert ds.attrs["seed"] == 7 and "version_pyomo" in ds.attrs
    assert yaml.safe_load(ds.attrs["study_config_yaml"])["name"] == "small"
    assert int(ds.ac_checked.sum()) == 2 * 2 * 2  # days x scenarios x steps checked
    # days are independent: both are solved and differ
    costs = ds.expected_cost_eur.sel(model="tso_managed").values  # (day,)
    assert np.all(np.isfinite(costs)) and costs[0] != costs[1]
    # the report figures of every model and day, named by both
    for day in ("2016-06-15", "2016-06-16"):
        for suffix in ("demand", "dispatch", "uncertainty", "interfaces", "voltages"):
            figure = tmp_path / "out" / f"run_tso_managed_{day}_{suffix}.png"
            assert figure.stat().st_size > 1000
            assert f"plot:    {figure}" in text
    ds.close()


def test_a_failed_day_keeps_its_place_and_says_why(small_run, small_study):
    from workbench.coordination import DayOutcome
    from workbench.runner import _day_dataset

    template = to_internal(small_run).isel(model=0, day=0).drop_vars(["model", "day"])
    outcome = DayOutcome(
        "tso_managed",
        small_study.start_date,
        None,
        None,
        "failed",
        "HiGHS stopped with 'provenInfeasible'",
        1.5,
    )
    ds = _day_dataset(outcome, [], template)
    assert str(ds.solver_status.values) == "failed"
    assert "provenInfeasible" in str(ds.solver_message.values)
    assert np.isnan(ds.expected_cost_eur.item()) and np.isnan(ds.der_p_mw.values).all()
    np.testing.assert_array_equal(ds.time.values, template.time.values)
    assert ds.wall_seconds.item() == 1.5


def test_unreachable_scheduler_is_a_clear_error():
    with (
        pytest.raises(ConnectionError, match="no Dask scheduler answers"),
        resolve_scheduler("tcp://127.0.0.1:1"),
    ):
        pass


def test_cases_command_lists_networks_and_studies(capsys):
    assert main(["cases"]) == 0
    out = capsys.readouterr().out
    assert "case39" in out and "cigre_mv" in out and "default" in out


def test_ac_check_uses_acopf_setpoints_and_reports_the_base_case(small_run, small_system):
    ds = small_run.isel(model=0, day=0)
    assert bool(ds.vm_setpoint_from_acopf.all())
    vm = ds.ter_vm_setpoint_pu.values
    tnet = small_system.transmission_net
    assert (
        tnet.bus.min_vm_pu.min() - 1e-4 <= vm.min() and vm.max() <= tnet.bus.max_vm_pu.max() + 1e-4
    )
    checked = ds.ac_checked.values.astype(bool)
    assert (ds.voltage_violations_transmission_ac.values[checked] == 0).all()
    for name in (
        "voltage_violations_transmission_base_ac",
        "voltage_violations_distribution_base_ac",
        "overloads_base_ac",
    ):
        counts = ds[name].values
        assert (counts[checked] >= 0).all() and (counts[~checked] == -1).all(), name


def test_a_study_without_feeders_runs(tmp_path, capsys):
    path = tmp_path / "tonly.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "tonly",
                "start_hour": 10,
                "horizon_hours": 2,
                "transmission": {"network": "case9"},
                "scenarios": {"n_scenarios": 2, "method": "profile_noise"},
                "ac_check": {"every_n_steps": 4},
            }
        )
    )
    out = tmp_path / "tonly.nc"
    args = ["run", str(path), "--out", str(out), "--scheduler", "sync", "--no-progress"]
    assert main([*args, "--no-plots"]) == 0, capsys.readouterr()
    ds = xr.open_dataset(out)
    assert ds.sizes["interface"] == 0 and ds.sizes["der"] == 0
    assert (ds.solver_status == "optimal").all() and int(ds.ac_converged.sum()) > 0
    ds.close()
