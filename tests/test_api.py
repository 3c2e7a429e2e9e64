"""The Python API: ``Study.from_yaml`` / ``replace`` / ``to_yaml`` and ``workbench.run``."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import yaml

from cases import StudyConfigError, builtin_studies, load_study
from workbench import Study, run
from workbench.cli import main
from workbench.results import OutputError, read_results

#: a study that runs in a few seconds: case9, one feeder, 2 hours, hourly recourse,
#: 3 scenarios from the observed day with noise (no forecaster to fit), no AC check
TINY = {
    "name": "tiny",
    "seed": 11,
    "start_date": "2016-06-15",
    "start_hour": 11,
    "horizon_hours": 2,
    "transmission": {"network": "case9"},
    "feeders": [
        {
            "name": "f1",
            "network": "case33bw",
            "bus": "5",
            "share": 0.2,
            "der": {"pv": {"kwp_per_kw_load": 1.5}, "battery": {"buses": 1}, "ev": {"buses": 1}},
        }
    ],
    "resolution": {"second_stage_minutes": 60},
    "scenarios": {"method": "profile_noise", "n_scenarios": 3, "pv_sigma": 0.4},
    "risk": {"alpha": 0.5, "beta": 0.5},
    "ac_check": {"enabled": False},
}
# 3 scenarios hold less than the 3 a CVaR tail should: expected here, not a finding
pytestmark = pytest.mark.filterwarnings("ignore::stochastic.risk.CvarTailWarning")

#: variables that measure the machine, not the model
TIMINGS = ("build_seconds", "translate_seconds", "solver_seconds", "wall_seconds")


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("api") / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


# -- Study ------------------------------------------------------------------------------


def test_study_is_the_study_config_and_loads_a_builtin():
    study = Study.from_yaml("default")
    assert type(study) is Study
    assert study == load_study(builtin_studies()["default"])
    assert study.name == "default" and study.risk.alpha == 0.7


def test_from_yaml_of_a_file_resolves_like_load_study(tiny_file):
    study = Study.from_yaml(tiny_file)
    assert study == load_study(str(tiny_file))
    assert study.feeders[0].network == "case33bw" and study.horizon_hours == 2


def test_from_yaml_errors_are_study_config_errors(tmp_path):
    with pytest.raises(StudyConfigError, match="not found"):
        Study.from_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("risk: {beta: 2}\n")
    with pytest.raises(StudyConfigError, match=r"risk\.beta"):
        Study.from_yaml(bad)


def test_to_yaml_round_trips(tmp_path):
    study = Study.from_yaml("default").replace(**{"feeders.0.line_max_i_ka": {3: 0.2}})
    path = tmp_path / "again.yaml"
    text = study.to_yaml(path)
    assert path.read_text() == text
    assert Study.from_yaml(path) == study
    assert yaml.safe_load(text)["risk"]["beta"] == 0.3


def test_replace_merges_a_mapping_into_its_section():
    study = Study.from_yaml("default")
    new = study.replace(risk={"beta": 0.5}, n_days=2)
    assert new.risk.beta == 0.5 and new.risk.alpha == study.risk.alpha == 0.7
    assert new.n_days == 2
    assert new.risk.recourse_efficiency_weight == study.risk.recourse_efficiency_weight
    # a new object; the old one is unchanged
    assert study.risk.beta == 0.3 and study.n_days == 1
    assert new.feeders == study.feeders and new.transmission == study.transmission
    # deeper mappings merge too; a list replaces
    deeper = study.replace(forecast={"sources": {"pv": "entsoe_de"}}, models=["hybrid"])
    assert deeper.forecast.sources.pv == "entsoe_de"
    assert deeper.forecast.sources.wind == study.forecast.sources.wind
    assert deeper.models == ("hybrid",)
    assert study.replace() == study


def test_replace_dotted_names_equal_the_nested_form():
    study = Study.from_yaml("default")
    dotted = study.replace(**{"risk.beta": 0.5, "feeders.1.share": 0.2})
    assert dotted.risk.beta == 0.5 and dotted.risk.alpha == 0.7
    assert dotted.feeders[1].share == 0.2 and dotted.feeders[0].share == 1.0
    assert dotted.feeders[1].der == study.feeders[1].der
    assert study.replace(**{"risk.beta": 0.5}) == study.replace(risk={"beta": 0.5})
    # a config object replaces the whole section
    other = study.replace(risk=study.risk.model_copy(update={"beta": 1.0}))
    assert other.risk.beta == 1.0 and other.risk.alpha == 0.7


def test_replace_validates_like_a_study_file(tmp_path):
    study = Study.from_yaml("default")
    cases = [
        ({"risk": {"gamma": 1}}, r"unknown key 'risk\.gamma'; allowed keys here: alpha, beta"),
        ({"risk.gamma": 1}, r"unknown key 'risk\.gamma'; allowed keys here: alpha, beta"),
        ({"riskk.beta": 1}, r"unknown key 'riskk'"),
        ({"risk.beta": 2}, r"risk\.beta: Input should be less than or equal to 1 \(given: 2\)"),
        ({"n_days": 0}, r"n_days: Input should be greater than or equal to 1"),
        ({"seed.x": 1}, r"'seed' is a value, not a section"),
        ({"feeders.7.share": 0.1}, r"'7' is no index of the list 'feeders' \(use 0\.\.2\)"),
        ({"models": ["nobody"]}, r"models\.0: Input should be 'tso_managed'"),
    ]
    for changes, message in cases:
        with pytest.raises(StudyConfigError, match=message) as info:
            study.replace(**changes)
        text = str(info.value)
        assert "\n" not in text and text.startswith("study 'default' replace(): ")
    # the same message as for a file with the same mistake, but for the source
    path = tmp_path / "beta.yaml"
    path.write_text(study.replace(risk={"beta": 0.4}).to_yaml().replace("beta: 0.4", "beta: 2"))
    with pytest.raises(StudyConfigError) as from_file:
        Study.from_yaml(path)
    with pytest.raises(StudyConfigError) as from_replace:
        study.replace(risk={"beta": 2})
    assert str(from_file.value).split(": ", 1)[1] == str(from_replace.value).split(": ", 1)[1]


# -- run --------------------------------------------------------------------------------


def test_run_refuses_bad_arguments_before_any_work(tmp_path):
    with pytest.raises(TypeError, match="study must be a Study"):
        run(42)
    with pytest.raises(StudyConfigError, match="not found"):
        run(tmp_path / "nothing.yaml")
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        run("default", workers=0)
    with pytest.raises(TypeError, match="scheduler must be"):
        run("default", scheduler=3)
    with pytest.raises(ValueError, match="scheduler"):
        run("default", scheduler="no scheduler here")
    with pytest.raises(OutputError):
        run("default", out=tmp_path)  # a folder


@pytest.fixture(scope="module")
def cli_file(tiny_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "tiny.nc"
    argv = ["run", str(tiny_file), "--out", str(out), "--scheduler", "sync"]
    assert main([*argv, "--no-progress", "--no-plots"]) == 0
    return read_results(out)


@pytest.fixture(scope="module")
def api_run(tiny_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("api_out") / "sub" / "tiny.nc"
    ds = run(Study.from_yaml(tiny_file), out=out)
    return ds, out


def _comparable(ds: xr.Dataset) -> xr.Dataset:
    """Values as a netCDF file holds them (flags as int8, text as str), without timings."""
    ds = ds.drop_vars([v for v in TIMINGS if v in ds])
    for name, var in ds.variables.items():
        if var.dtype == bool:
            ds[name] = var.astype(np.int8)
        elif var.dtype == object:
            ds[name] = var.astype(str)
    return ds


def test_run_returns_the_dataset_the_cli_writes(api_run, cli_file):
    ds, _ = api_run
    assert isinstance(ds, xr.Dataset)
    assert str(ds.solver_status.item()) == "optimal"
    assert set(ds.data_vars) == set(cli_file.data_vars)
    assert dict(ds.sizes) == dict(cli_file.sizes)
    mine, theirs = _comparable(ds), _comparable(cli_file)
    for name in theirs.variables:
        np.testing.assert_array_equal(
            mine[name].to_numpy(), theirs[name].to_numpy(), err_msg=name, strict=False
        )
        assert mine[name].attrs.get("units") == theirs[name].attrs.get("units"), name
    for key in ("study_config_yaml", "seed", "scheduler", "solver_status", "version_pyomo"):
        assert ds.attrs[key] == cli_file.attrs[key], key
    assert ds.attrs["seed"] == 11 and ds.attrs["scheduler"] == "sync"
    # the costs are real numbers: the scenario costs weigh up to the expected cost
    expected = float((ds.weight * ds.scenario_cost_eur).sum("scenario").item())
    assert expected == pytest.approx(float(ds.expected_cost_eur.item()), rel=1e-9)
    assert float(ds.cvar_eur.item()) >= expected - 1e-6


def test_run_with_out_writes_the_same_dataset(api_run, cli_file):
    ds, out = api_run
    assert out.is_file()
    assert not [p for p in out.parent.iterdir() if p.name != out.name]  # no temporary left
    written = read_results(out)
    xr.testing.assert_equal(_comparable(written), _comparable(ds))
    assert written.attrs["study_config_yaml"] == cli_file.attrs["study_config_yaml"]


def test_every_entry_point_gives_the_same_dimensions(api_run, cli_file, tiny_file):
    """``run``, ``run_study``, the command line's file and ``read_results`` of ``run``'s
    file: one layout, ``model`` and ``day`` kept as dimensions of one entry."""
    from workbench.runner import run_study

    ds, out = api_run
    direct = run_study(Study.from_yaml(tiny_file), scheduler="sync", progress=False)
    for other in (direct, cli_file, read_results(out)):
        assert dict(other.sizes) == dict(ds.sizes)
        assert set(other.variables) == set(ds.variables)
        for name, var in ds.variables.items():
            assert other[name].dims == var.dims, name
    np.testing.assert_array_equal(direct.time.values, ds.time.values)
    np.testing.assert_array_equal(direct.time_bnds.values, ds.time_bnds.values)
    assert ds.sizes["model"] == 1 and ds.sizes["day"] == 1
    assert ds.expected_cost_eur.dims == ("model", "day")
    assert ds.der_p_mw.dims == ("model", "scenario", "time", "der")
    assert ds.expected_cost_eur.item() == float(ds.expected_cost_eur.sum())


@pytest.mark.slow
def test_run_on_a_dask_client_and_by_address_gives_the_same_numbers(api_run, tiny_file):
    from distributed import Client, LocalCluster

    ds, _ = api_run
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        on_client = run(tiny_file, scheduler=client)
        by_address = run(tiny_file, scheduler=cluster.scheduler_address)
    for other in (on_client, by_address):
        np.testing.assert_array_equal(
            other.scenario_cost_eur.to_numpy(), ds.scenario_cost_eur.to_numpy()
        )
    assert on_client.attrs["scheduler"].startswith("distributed.Client(tcp://")
    assert by_address.attrs["scheduler"] == cluster.scheduler_address


# -- networks given as objects: kept through replace, in the results, in a run folder --


def _own_nets():
    """A transmission net and a feeder net that no built-in name gives (changed ratings)."""
    import pandapower.networks as pn

    trans, feeder = pn.case9(), pn.case33bw()
    trans.line["max_i_ka"] *= 1.3
    feeder.line["max_i_ka"] = 0.9
    return trans, feeder


def test_nets_survive_any_number_of_replace_calls():
    trans, feeder = _own_nets()
    study = Study.from_yaml("default").replace(transmission={"network": trans})
    study = study.replace(seed=1).replace(**{"risk.beta": 0.1}).replace(name="again")
    study = study.replace(feeders=[{**TINY["feeders"][0], "network": feeder}])
    study = study.replace(**{"feeders.0.share": 0.25}).replace(n_days=2)
    assert study.transmission.network is trans
    assert study.feeders[0].network is feeder and study.feeders[0].share == 0.25
    assert "<pandapower net" in study.to_yaml()  # the text names them by their label


def test_a_study_with_nets_reruns_from_its_results_alone(tmp_path):
    import pandapower as pp

    trans, feeder = _own_nets()
    feeder_file = tmp_path / "feeder.json"
    pp.to_json(feeder, str(feeder_file))
    study = Study.from_yaml(_tiny_path(tmp_path)).replace(
        transmission={"network": trans}, **{"feeders.0.network": str(feeder_file)}
    )
    first = run(study, seed=5, out=tmp_path / "first.nc")
    feeder_file.unlink()  # the file the study named is gone; the results keep its net
    again_study = Study.from_results(tmp_path / "first.nc")
    assert again_study.seed == 5
    assert isinstance(again_study.feeders[0].network, pp.pandapowerNet)
    np.testing.assert_allclose(again_study.transmission.network.line.max_i_ka, trans.line.max_i_ka)
    again = run(again_study)
    np.testing.assert_allclose(
        again.scenario_cost_eur.to_numpy(), first.scenario_cost_eur.to_numpy(), rtol=1e-9
    )
    np.testing.assert_allclose(again.ter_p_mw.to_numpy(), first.ter_p_mw.to_numpy(), atol=1e-6)


def test_a_run_folder_of_a_study_with_nets_resumes_from_the_command_line(tmp_path, capsys):
    import copy

    from workbench.runner import run_study

    trans, _ = _own_nets()
    data = copy.deepcopy(TINY)
    data["n_days"] = 2
    study = Study.from_yaml(_tiny_path(tmp_path, data)).replace(transmission={"network": trans})
    run_dir = tmp_path / "nets.run"
    run_study(study, run_dir=run_dir, scheduler="sync", progress=False)
    for f in (run_dir / "units").glob("*2016-06-16*"):  # the second day is lost
        f.unlink()
    out = tmp_path / "nets.nc"
    assert main(["run", "--resume", str(run_dir), "--out", str(out), "--scheduler", "sync",
                 "--no-progress", "--no-plots"]) == 0  # fmt: skip
    assert "1 computed, 1 found finished" in capsys.readouterr().out
    kept = Study.from_results(out)
    np.testing.assert_allclose(kept.transmission.network.line.max_i_ka, trans.line.max_i_ka)


def _tiny_path(tmp_path, data=None):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data or TINY))
    return path
