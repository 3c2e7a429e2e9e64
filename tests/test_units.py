"""Units on disk: interrupt and resume, a lost worker, a failing unit, the CLI's resume."""

from __future__ import annotations

import copy
import os
import signal

import numpy as np
import pytest
import xarray as xr
import yaml

import workbench.runner as runner
from cases import build_system, parse_study
from tests.conftest import SMALL_STUDY
from workbench.cli import main
from workbench.rundir import RunFolder, RunFolderError, Unit
from workbench.runner import RunReport, plan_units, run_study

COMPARED = ("scenario_cost_eur", "der_p_mw", "storage_start_energy_mwh", "ter_p_mw")


def _three_days(storage_state: str = "carried") -> dict:
    data = copy.deepcopy(SMALL_STUDY)
    data.update(n_days=3, ac_check={"enabled": False})
    data["model"] = {"storage_state": storage_state}
    return data


@pytest.fixture(scope="module")
def study():
    return parse_study(_three_days(), "three days")


@pytest.fixture(scope="module")
def system(study):
    return build_system(study)


@pytest.fixture(scope="module")
def clean(study, system, small_forecaster):
    """The study run at once, in-process."""
    return run_study(
        study, scheduler="sync", progress=False, system=system, forecaster=small_forecaster
    )


def _same(a: xr.Dataset, b: xr.Dataset) -> None:
    for name in COMPARED:
        if name in a:
            np.testing.assert_allclose(a[name].values, b[name].values, rtol=1e-7, atol=1e-6)
    assert a.solver_status.values.tolist() == b.solver_status.values.tolist()


def _count_solves(monkeypatch) -> list[str]:
    solved: list[str] = []
    original = runner._solve_unit

    def counting(model, system, study, day, *args):
        solved.append(Unit(model, day).key)
        return original(model, system, study, day, *args)

    monkeypatch.setattr(runner, "_solve_unit", counting)
    return solved


def _fail_on_the_16th(monkeypatch, message: str):
    """Make every unit of 16 June raise ``RuntimeError(message)``; returns the original."""
    original = runner._solve_unit

    def broken(model, system, study, day, *args):
        if day.day == 16:
            raise RuntimeError(message)
        return original(model, system, study, day, *args)

    monkeypatch.setattr(runner, "_solve_unit", broken)
    return original


def test_interrupt_then_resume_computes_only_the_missing_units(
    tmp_path, monkeypatch, study, system, clean, small_forecaster
):
    folder = RunFolder.create(tmp_path / "run", study, study.seed)
    original = RunFolder.save_unit

    def save_then_interrupt(self, unit, ds, record):
        original(self, unit, ds, record)
        raise KeyboardInterrupt

    monkeypatch.setattr(RunFolder, "save_unit", save_then_interrupt)
    kw = {"scheduler": "sync", "progress": False, "system": system, "forecaster": small_forecaster}
    with pytest.raises(KeyboardInterrupt):
        run_study(study, run_dir=folder, **kw)
    monkeypatch.setattr(RunFolder, "save_unit", original)
    folder.release()  # the caller's folder: the caller unlocks it
    again = RunFolder.open(tmp_path / "run")
    assert again.manifest["state"] == "interrupted"
    assert list(again.finished()) == ["tso_managed_2016-06-15"]
    # the next day starts from the state the finished day ended with
    assert [len(u) for _, u in plan_units(study, again.finished())] == [2]

    solved = _count_solves(monkeypatch)
    report = RunReport()
    resumed = run_study(study, run_dir=again, report=report, **kw)
    assert solved == ["tso_managed_2016-06-16", "tso_managed_2016-06-17"]
    assert (report.computed, report.resumed, report.units) == (2, 1, 3)
    _same(resumed.load(), clean)
    again.release()


def test_a_failing_unit_is_recorded_and_the_others_go_on(
    tmp_path, monkeypatch, system, small_forecaster
):
    cyclic = parse_study(_three_days("cyclic"), "cyclic")
    original = _fail_on_the_16th(monkeypatch, "a modelling bug on the 16th")
    folder = RunFolder.create(tmp_path / "run", cyclic, cyclic.seed)
    kw = {"scheduler": "sync", "progress": False, "system": system, "forecaster": small_forecaster}
    report = RunReport()
    ds = run_study(cyclic, run_dir=folder, report=report, **kw).load()
    assert ds.solver_status.values.ravel().tolist() == ["optimal", "error", "optimal"]
    assert "modelling bug" in str(ds.solver_message.isel(model=0, day=1).values)
    assert np.isnan(ds.expected_cost_eur.isel(model=0, day=1).item())
    assert np.isfinite(ds.expected_cost_eur.isel(model=0, day=[0, 2]).values).all()
    assert list(report.failed) == ["tso_managed_2016-06-16"]
    assert "RuntimeError: a modelling bug" in "\n".join(report.lines())
    folder.release()
    # an error is not a result: resuming computes that unit alone
    monkeypatch.setattr(runner, "_solve_unit", original)
    solved = _count_solves(monkeypatch)
    report = RunReport()
    ds = run_study(cyclic, run_dir=tmp_path / "run", report=report, **kw)  # resumed
    assert solved == ["tso_managed_2016-06-16"] and report.computed == 1
    assert ds.solver_status.values.ravel().tolist() == ["optimal"] * 3


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_one_or_two_workers_give_the_in_process_numbers(
    workers, study, system, clean, small_forecaster
):
    ds = run_study(
        study, workers=workers, progress=False, system=system, forecaster=small_forecaster
    )
    _same(ds, clean)


@pytest.mark.slow  # the same at model level: test_twostage.py::test_rebuilt_model_equals...
def test_a_rebuilt_model_gives_the_numbers_of_a_reused_one(
    monkeypatch, study, system, clean, small_forecaster
):
    import workbench.coordination.common as common

    common.clear_slots()
    monkeypatch.setattr(common, "MODEL_CACHE_SIZE", 0)
    ds = run_study(
        study, scheduler="sync", progress=False, system=system, forecaster=small_forecaster
    )
    _same(ds, clean)


def test_a_killed_worker_is_replaced_and_the_study_completes(
    tmp_path, monkeypatch, study, system, clean, small_forecaster
):
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0"
        ) as cluster,
        Client(cluster) as client,
    ):
        original = RunFolder.save_unit
        killed: list[str] = []

        def save_and_kill(self, unit, ds, record):
            original(self, unit, ds, record)
            busy = [w for w, keys in client.processing().items() if keys]
            if busy and not killed:
                killed.append(busy[0])
                pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
                os.kill(pid, signal.SIGKILL)

        monkeypatch.setattr(RunFolder, "save_unit", save_and_kill)
        folder = RunFolder.create(tmp_path / "run", study, study.seed)
        report = RunReport()
        ds = run_study(
            study,
            scheduler=client,
            progress=False,
            system=system,
            forecaster=small_forecaster,
            run_dir=folder,
            report=report,
        ).load()
    assert killed, "no worker was busy when the first unit finished"
    assert report.computed == 3 and not report.failed
    _same(ds, clean)
    folder.release()


def test_cli_sigterm_keeps_units_and_resume_finishes(tmp_path, monkeypatch, capsys):
    data = _three_days()
    data["n_days"] = 2
    data["scenarios"] = {"n_scenarios": 4, "method": "profile_noise"}  # nothing to fit
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(data))
    out = tmp_path / "res" / "two.nc"
    original = RunFolder.save_unit

    def save_then_terminate(self, unit, ds, record):
        original(self, unit, ds, record)
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(RunFolder, "save_unit", save_then_terminate)
    args = ["--scheduler", "sync", "--no-progress", "--no-plots"]
    assert main(["run", str(path), "--out", str(out), *args]) == 130
    err = capsys.readouterr().err
    run_dir = tmp_path / "res" / "two.run"
    assert f"resume with: workbench run --resume {run_dir}" in err
    assert "1 of 2 units are kept" in err and not out.exists()
    # a fresh run onto the unfinished folder is refused, with what to do
    monkeypatch.setattr(RunFolder, "save_unit", original)
    assert main(["run", str(path), "--out", str(out), *args]) == 2
    line = capsys.readouterr().err.strip().splitlines()
    assert len(line) == 1 and "--resume" in line[0] and "unfinished run" in line[0]
    # --resume takes its study from the folder and no other study
    assert main(["run", str(path), "--resume", str(run_dir), *args]) == 2
    assert "leave out STUDY" in capsys.readouterr().err
    assert main(["run", "--resume", str(run_dir), *args]) == 0
    text = capsys.readouterr().out
    assert "1 computed, 1 found finished" in text and str(out) in text
    with xr.open_dataset(out) as ds:
        assert ds.sizes["day"] == 2 and (ds.solver_status.values == "optimal").all()
    assert not (run_dir / "units").exists()  # freed after the result was written
    log = (run_dir / "run.log").read_text()
    assert "1 found finished" in log and "results:" in log


def test_a_foreign_folder_is_never_a_run_folder(tmp_path, study):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(RunFolderError, match="not a run folder"):
        RunFolder.create(mine, study, 1)
    with pytest.raises(RunFolderError, match=r"has no manifest\.json"):
        RunFolder.open(mine)
    assert (mine / "notes.txt").read_text() == "keep"


def test_the_dashboard_listens_only_when_asked():
    import urllib.request

    from workbench.runner import resolve_scheduler

    for dashboard in (False, True):
        with resolve_scheduler(None, 1, dashboard=dashboard) as ex:
            port = ex.client.scheduler_info()["services"]["dashboard"]
            url = f"http://127.0.0.1:{port}/health"
            if dashboard:
                assert ex.dashboard_link and ex.dashboard_link.startswith("http://127.0.0.1:")
                assert urllib.request.urlopen(url, timeout=5).read() == b"ok"
            else:
                assert ex.dashboard_link is None
                with pytest.raises(OSError):
                    urllib.request.urlopen(url, timeout=5)


def test_a_failed_unit_names_its_likely_cause():
    from workbench.runner import likely_cause

    report = RunReport(
        units=2, failed={"tso_managed_2016-06-15": ("failed", "HiGHS: 'infeasible'")}
    )
    assert "voltage bands or line ratings" in report.lines()[1]
    assert "memory" in likely_cause("KilledWorker: attempted to run task 3 times")
    assert likely_cause("RuntimeError: a bug") is None


def test_a_zarr_result_is_assembled_from_units_of_several_models(tmp_path, capsys):
    data = {
        "name": "z",
        "start_hour": 10,
        "horizon_hours": 2,
        "models": ["tso_managed", "hybrid"],
        "transmission": {"network": "case9"},
        "feeders": [{"name": "f1", "network": "case33bw", "bus": "5", "share": 0.2}],
        "scenarios": {"n_scenarios": 2, "method": "profile_noise"},
        "risk": {"beta": 0.0},
        "ac_check": {"every_n_steps": 4, "max_scenarios": 1},
    }
    path = tmp_path / "z.yaml"
    path.write_text(yaml.safe_dump(data))
    out = tmp_path / "z.zarr"
    args = ["run", str(path), "--out", str(out), "--scheduler", "sync", "--no-progress"]
    assert main([*args, "--no-plots"]) == 0, capsys.readouterr().err
    ds = xr.open_zarr(out)
    assert ds.sizes["model"] == 2 and (ds.solver_status.values == "optimal").all()
    # a variable only the hybrid model has is missing, not zero, for the other
    assert np.isnan(ds.validation_residual.sel(model="tso_managed").values).all()
    assert np.isfinite(ds.expected_cost_eur.values).all()


def test_a_write_over_the_size_limit_keeps_the_old_file_and_every_unit(
    tmp_path, monkeypatch, capsys
):
    import resource

    import workbench.cli as cli
    from workbench.results import write_results

    data = _three_days()
    data.update(n_days=2, scenarios={"n_scenarios": 2, "method": "profile_noise"})
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    out = tmp_path / "s.nc"
    write_results(xr.Dataset({"x": ("t", [1.0, 2.0])}), out)  # an earlier result
    before = out.read_bytes()
    original = cli._write_or_rescue

    def over_the_limit(ds, target, kept, refused=None):  # no file beyond 20 kB while writing
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, hard))
        try:
            return original(ds, target, kept, refused)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            signal.signal(signal.SIGXFSZ, previous)

    monkeypatch.setattr(cli, "_write_or_rescue", over_the_limit)
    args = ["--scheduler", "sync", "--no-progress", "--no-plots"]
    assert main(["run", str(path), "--out", str(out), *args]) == 1
    err = capsys.readouterr().err
    assert f"could not write '{out}'" in err
    assert out.read_bytes() == before  # the earlier result is intact
    run_dir = tmp_path / "s.run"
    assert len(list((run_dir / "units").glob("*.json"))) == 2  # every unit on disk
    assert f"write it with: workbench run --resume {run_dir}" in err
    assert not list(tmp_path.glob(".s.nc*"))  # no temporary left beside it
    # with room again, resuming computes nothing and writes the result
    monkeypatch.setattr(cli, "_write_or_rescue", original)
    assert main(["run", "--resume", str(run_dir), *args]) == 0
    assert "0 computed, 2 found finished" in capsys.readouterr().out
    with xr.open_dataset(out) as ds:
        assert ds.sizes["day"] == 2


def test_a_day_stopped_by_the_day_before_says_so_in_any_order():
    import datetime as dt

    from workbench.runner import _ChainErrors

    d1, d2, d3 = (Unit("tso_managed", dt.date(2016, 6, 15 + i)) for i in range(3))
    saved: dict = {}
    chain = _ChainErrors(lambda unit, ds, record: saved.__setitem__(unit, record))
    chain.before.update({d1: None, d2: d1, d3: d2})
    boom = RuntimeError("solver crashed")
    chain.failed(d3, boom)  # Dask may report the later day first
    chain.failed(d2, boom)
    assert not saved  # both wait for the first day
    chain.finished(d1, None, {"status": "optimal"})
    assert saved[d2]["message"] == "RuntimeError: solver crashed"
    assert saved[d3]["message"].startswith("not computed: 2016-06-16 before it failed")


def test_in_process_a_failed_day_stops_its_chain_and_says_so(
    tmp_path, monkeypatch, study, system, small_forecaster
):
    _fail_on_the_16th(monkeypatch, "solver crashed")
    kw = {"scheduler": "sync", "progress": False, "system": system, "forecaster": small_forecaster}
    ds = run_study(study, **kw).load()
    assert ds.solver_status.values.ravel().tolist() == ["optimal", "error", "error"]
    assert "not computed: 2016-06-16" in str(ds.solver_message.isel(model=0, day=2).values)
