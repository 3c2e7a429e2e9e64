"""Output paths are checked before any work; a failed write destroys nothing."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from workbench.cli import main
from workbench.results import OutputError, check_output, write_results


def _ds(value: float = 1.0) -> xr.Dataset:
    return xr.Dataset({"x": ("t", np.full(3, value), {"units": "1"})})


@pytest.mark.parametrize(
    ("make", "name", "needle"),
    [
        (None, "run.txt", "must end in .nc"),
        ("dir", "run.nc", "is a folder"),
        ("dir_with_file", "run.zarr", "not a results store"),
        ("file", "run.zarr", "not a results store"),
        ("file_parent", "f/run.nc", "is not a folder"),
    ],
)
def test_a_bad_output_is_one_line_before_any_work(tmp_path, capsys, make, name, needle):
    target = tmp_path / name
    if make == "dir":
        target.mkdir()
    elif make == "dir_with_file":
        target.mkdir()
        (target / "notes.txt").write_text("mine")
    elif make == "file":
        target.write_text("mine")
    elif make == "file_parent":
        (tmp_path / "f").write_text("a file, not a folder")
    assert main(["run", "default", "--out", str(target), "--no-plots"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and needle in err[0], err
    assert str(target) in err[0]
    if make == "dir_with_file":
        assert (target / "notes.txt").read_text() == "mine"  # nothing deleted
    if make == "file":
        assert target.read_text() == "mine"


def test_a_results_store_of_the_workbench_may_be_replaced(tmp_path):
    path = tmp_path / "run.zarr"
    write_results(_ds(1.0), path)
    assert check_output(path) == path
    write_results(_ds(2.0), path)
    assert float(xr.open_zarr(path).x[0]) == 2.0


def test_a_failed_write_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "run.nc"
    write_results(_ds(1.0), path)

    def full(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", full)
    with pytest.raises(OSError, match="No space"):
        write_results(_ds(2.0), path)
    monkeypatch.undo()
    with xr.open_dataset(path) as ds:
        assert float(ds.x[0]) == 1.0
    assert [p.name for p in tmp_path.iterdir()] == ["run.nc"]  # no temporary left


def test_results_that_cannot_be_written_are_rescued(tmp_path, monkeypatch, capsys):
    from workbench.cli import _write_or_rescue

    real = xr.Dataset.to_netcdf
    target = tmp_path / "run.nc"

    def full_here(self, path, *args, **kwargs):
        if str(tmp_path) in str(path):
            raise OSError(28, "No space left on device")
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(xr.Dataset, "to_netcdf", full_here)
    path, rescued = _write_or_rescue(_ds(3.0), target)
    assert rescued and path.exists() and not target.exists()
    with xr.open_dataset(path) as ds:
        assert float(ds.x[0]) == 3.0
    err = capsys.readouterr().err
    assert "No space" in err and str(path) in err


def test_unwritable_folder_is_refused(tmp_path):
    import os

    if os.geteuid() == 0:
        pytest.skip("root may write anywhere")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="not writable"):
            check_output(folder / "run.nc")
    finally:
        folder.chmod(0o700)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "is empty"),
        (b"\x00\x01\x02 binary", "is binary"),
        ("name: caf\u00e9".encode("latin-1"), "not UTF-8"),
        (b"prices: {voll_eur_per_mwh: .inf}\n", "prices.voll_eur_per_mwh"),
        (b"prices: {voll_eur_per_mwh: 1.0e300}\n", "prices.voll_eur_per_mwh"),
        (b"prices: {spill_eur_per_mwh: .nan}\n", "prices.spill_eur_per_mwh"),
        (b"transmission: {marginal_cost_eur_per_mwh: {gen/0: .inf}}\n", "gen/0"),
        (
            b"feeders: [{name: a, network: case33bw, bus: '5', vm_min_pu: 0.999,"
            b" vm_max_pu: 1.001}]\n",
            "voltage_margin_pu",
        ),
    ],
)
def test_a_bad_study_file_is_one_line(tmp_path, capsys, content, needle):
    path = tmp_path / "study.yaml"
    path.write_bytes(content)
    assert main(["run", str(path), "--no-plots"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and needle in err[0], err


def test_a_scheduler_that_is_no_address_is_one_line(capsys):
    assert main(["run", "congested", "--scheduler", "foo bar", "--no-plots"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--scheduler" in err[0] and "foo bar" in err[0], err


def test_a_port_that_accepts_but_never_answers_is_refused_in_bounded_time():
    import socket
    import threading
    import time

    from workbench.runner import HANDSHAKE_SECONDS, check_scheduler

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    port = server.getsockname()[1]
    held = []
    threading.Thread(target=lambda: held.append(server.accept()), daemon=True).start()
    tick = time.perf_counter()
    try:
        with pytest.raises(ConnectionError, match="did not answer"):
            check_scheduler(f"127.0.0.1:{port}")
    finally:
        server.close()
    # bounded by the handshake timeout, not by the minutes a silent peer can hold a client
    assert time.perf_counter() - tick < HANDSHAKE_SECONDS + 20


def test_relative_paths_in_a_study_resolve_against_the_study_file(tmp_path, monkeypatch):
    import pandapower as pp
    import pandapower.networks as pn

    from cases.study import load_study

    folder = tmp_path / "project"
    (folder / "nets").mkdir(parents=True)
    pp.to_json(pn.case33bw(), str(folder / "nets" / "feeder.json"))
    (folder / "study.yaml").write_text(
        "feeders: [{name: a, network: nets/feeder.json, bus: '4'}]\n"
    )
    monkeypatch.chdir(tmp_path)  # elsewhere than the study file
    cfg = load_study(folder / "study.yaml")
    assert cfg.feeders[0].network == str((folder / "nets" / "feeder.json").resolve())
    from cases import build_system

    assert build_system(cfg).feeders[0].arrays.n_bus >= 33


def test_a_study_where_every_day_fails_still_writes_its_status(tmp_path, monkeypatch, capsys):
    from stochastic.solve import PersistentSolver, SolverError

    def fail(self, *args, **kwargs):
        raise SolverError("HiGHS stopped with 'infeasible'")

    monkeypatch.setattr(PersistentSolver, "solve", fail)
    study = tmp_path / "tiny.yaml"
    study.write_text(
        "name: tiny\nstart_hour: 10\nhorizon_hours: 2\ntransmission: {network: case9}\n"
        "feeders: [{name: f1, network: case33bw, bus: '5', share: 0.2}]\n"
        "scenarios: {n_scenarios: 2, method: profile_noise}\nrisk: {beta: 0.0}\n"
    )
    out = tmp_path / "tiny.nc"
    args = ["run", str(study), "--out", str(out), "--scheduler", "sync"]
    code = main([*args, "--no-plots", "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "2016-06-15 tso_managed" in err[0] and "infeasible" in err[0]
    with xr.open_dataset(out) as ds:
        assert ds.solver_status.values.ravel().tolist() == ["failed"]
        assert "infeasible" in str(ds.solver_message.values.ravel()[0])


def test_a_garbled_covariate_time_names_its_row(tmp_path):
    from forecasts.covariates import read_covariates
    from forecasts.errors import ForecastError

    path = tmp_path / "cov.csv"
    path.write_text("time,temp\n2016-06-01 00:00,12\nnot-a-time,13\n")
    with pytest.raises(ForecastError, match=r"row 3: time 'not-a-time' is not a date"):
        read_covariates(path)
