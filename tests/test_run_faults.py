"""Faults injected into real runs: nothing finished is lost, nothing foreign is touched.

A second process that holds a run folder, a kill -9 of the run that held it, a real
file-size limit while units are saved, deleted / truncated / garbled unit files, a
kill -9 of the only Dask worker, Ctrl-C to the whole process group, a resume that would
write where its run did not say, and a Python run folder passed again.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from cases import parse_study
from tests.conftest import SMALL_STUDY
from tests.test_units import _count_solves
from workbench.cli import main
from workbench.results import read_results
from workbench.rundir import RunFolder, RunFolderError, RunFolderWarning
from workbench.runner import RunReport, run_study

ROOT = Path(__file__).resolve().parents[1]
RUN = ["--no-plots", "--no-progress"]
COMPARED = ("scenario_cost_eur", "ter_p_mw", "der_p_mw", "storage_start_energy_mwh")


def _study_data(n_days: int = 3, ac: bool = False) -> dict:
    """The small study over ``n_days`` carried days, without forecasters to fit."""
    data = copy.deepcopy(SMALL_STUDY)
    data.update(n_days=n_days, name="faults")
    data["scenarios"] = {"n_scenarios": 2, "method": "profile_noise"}
    data["risk"] = {"alpha": 0.5, "beta": 0.3}
    data["ac_check"] = {"every_n_steps": 4, "max_scenarios": 1} if ac else {"enabled": False}
    return data


def _write_study(tmp: Path, **kw) -> Path:
    path = tmp / "faults.yaml"
    path.write_text(yaml.safe_dump(_study_data(**kw)))
    return path


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def _cli(*args: str, **kw) -> subprocess.CompletedProcess:
    """``workbench ARGS`` in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "workbench.cli", *args],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=900,
        **kw,
    )


def _same(a: xr.Dataset, b: xr.Dataset) -> None:
    for name in COMPARED:
        if name in a:
            np.testing.assert_allclose(a[name].values, b[name].values, rtol=1e-7, atol=1e-6)
    assert a.solver_status.values.tolist() == b.solver_status.values.tolist()


@pytest.fixture(scope="module")
def clean():
    """The three-day study run in one go, in this process (the reference)."""
    study = parse_study(_study_data(), "faults")
    return run_study(study, scheduler="sync", progress=False).load()


def _file(path: Path) -> xr.Dataset:
    """A results file, in the layout :func:`run_study` returns."""
    return read_results(path)


# ---------------------------------------------------------------------------- the lock
HOLD = """
import sys, time
from cases import parse_study
from tests.conftest import SMALL_STUDY
from tests.test_units import _count_solves
from workbench.rundir import RunFolder
folder = RunFolder.create(sys.argv[1], parse_study(SMALL_STUDY, "s"), 0)
print("holding", flush=True)
time.sleep(600)
"""


def test_a_folder_in_use_is_refused_and_a_killed_holder_leaves_no_stale_lock(tmp_path, capsys):
    run_dir = tmp_path / "faults.run"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run_dir)], stdout=subprocess.PIPE, text=True, env=_env()
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        study = _write_study(tmp_path)
        out = tmp_path / "faults.nc"
        args = ["run", str(study), "--out", str(out), "--scheduler", "sync", *RUN]
        assert main(args) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and "in use by another run" in lines[0], lines
        assert f"pid {holder.pid}" in lines[0]
        with pytest.raises(RunFolderError, match="in use"):
            RunFolder.open(run_dir)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # the kernel freed the lock with the process: the folder opens (and is not emptied)
    folder = RunFolder.open(run_dir)
    assert (run_dir / "manifest.json").is_file()
    folder.release()


def test_two_runs_into_one_folder_never_interleave(tmp_path, capsys):
    study = _write_study(tmp_path, n_days=2)
    out = tmp_path / "faults.nc"
    args = ["run", str(study), "--out", str(out), "--scheduler", "sync", *RUN]
    first = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    run_dir = tmp_path / "faults.run"
    deadline = time.monotonic() + 300
    while not (run_dir / "manifest.json").is_file():
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.1)
    assert main(args) == 2  # while the first is alive
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "in use by another run" in lines[0], lines
    _, stderr = first.communicate(timeout=600)
    assert first.returncode == 0, stderr
    with xr.open_dataset(out) as ds:
        assert (ds.solver_status.values == "optimal").all()


# ---------------------------------------------------------------------------- unit files
@pytest.mark.parametrize("damage", ["deleted", "truncated", "garbled"])
def test_a_damaged_unit_file_is_computed_again_with_a_note(tmp_path, monkeypatch, clean, damage):

    study = parse_study(_study_data(), "faults")
    run_dir = tmp_path / "run"
    kw = {"scheduler": "sync", "progress": False}
    run_study(study, run_dir=run_dir, **kw)
    data = run_dir / "units" / "tso_managed_2016-06-16.nc"
    raw = data.read_bytes()
    if damage == "deleted":
        data.unlink()
    elif damage == "truncated":
        data.write_bytes(raw[: len(raw) // 2])
    else:
        data.write_bytes(bytes(b ^ 0x5A for b in raw[:4096]) + raw[4096:])
    solved = _count_solves(monkeypatch)
    with pytest.warns(RunFolderWarning, match="tso_managed_2016-06-16.*computed again"):
        ds = run_study(study, run_dir=run_dir, **kw)  # passed again: resumed
    # only the damaged day; the day after it keeps its result (its start state is known)
    assert solved == ["tso_managed_2016-06-16"]
    _same(ds.load(), clean)


def test_a_unit_the_folder_cannot_take_is_rescued_and_taken_back(tmp_path, monkeypatch, clean):
    import workbench.rundir as rundir

    study = parse_study(_study_data(), "faults")
    folder = RunFolder.create(tmp_path / "run", study, study.seed)
    original = rundir._save_unit_files

    def full_disk(units, unit, ds, record):
        if units.parent == folder.path and unit.day.day == 16:
            raise OSError(28, "No space left on device")
        return original(units, unit, ds, record)

    monkeypatch.setattr(rundir, "_save_unit_files", full_disk)
    kw = {"scheduler": "sync", "progress": False}
    report = RunReport()
    with pytest.raises(rundir.UnitSaveError) as caught:
        run_study(study, run_dir=folder, report=report, **kw)
    message = str(caught.value)
    assert "No space left on device" in message and str(folder.path) in message
    assert "2 of 3 units are kept" in message and "rescue folder" in message
    assert "resume with: workbench run --resume" in message
    assert report.rescued == ["tso_managed_2016-06-16"]
    folder.release()
    monkeypatch.setattr(rundir, "_save_unit_files", original)
    with pytest.warns(RunFolderWarning, match="taken back"):
        again = RunFolder.open(tmp_path / "run")
    assert not rundir.rescue_dir(again.run_id).exists()
    report = RunReport()
    ds = run_study(study, run_dir=again, report=report, **kw)
    assert report.computed == 0 and report.resumed == 3
    _same(ds.load(), clean)
    again.release()


def test_a_real_file_size_limit_while_units_are_saved_is_one_line_and_resumable(tmp_path, clean):
    import resource

    study = _write_study(tmp_path)
    out = tmp_path / "faults.nc"
    run_dir = tmp_path / "faults.run"

    def limit() -> None:  # ulimit -f 64: no file may grow beyond 64 KB
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))

    done = _cli("run", str(study), "--out", str(out), "--scheduler", "sync", *RUN, preexec_fn=limit)
    err = [line for line in done.stderr.strip().splitlines() if not line.startswith("warning:")]
    assert done.returncode == 2, done.stderr
    assert len(err) == 1 and err[0].startswith("error: could not save unit"), err
    assert str(run_dir) in err[0] and "file-size limit" in err[0], err  # netCDF's HDF error
    assert f"resume with: workbench run --resume {run_dir}" in err[0]
    assert "Traceback" not in done.stderr and not out.exists()
    # with room again, the resume computes what could not be saved and writes the result
    again = _cli("run", "--resume", str(run_dir), "--scheduler", "sync", *RUN)
    assert again.returncode == 0, again.stderr
    _same(_file(out), clean)


# ---------------------------------------------------------------------------- workers
def test_a_kill_of_the_only_worker_is_retried_and_nothing_is_lost(tmp_path, monkeypatch, clean):
    import psutil

    study = _write_study(tmp_path)
    out = tmp_path / "faults.nc"
    original = RunFolder.save_unit
    killed: list[int] = []

    def save_and_kill(self, unit, ds, record):
        original(self, unit, ds, record)
        if not killed:  # kill -9 the one worker process of the LocalCluster
            workers = [
                p
                for p in psutil.Process().children(recursive=True)
                if "multiprocessing.spawn" in " ".join(p.cmdline())
            ]
            assert len(workers) == 1
            killed.append(workers[0].pid)
            os.kill(workers[0].pid, signal.SIGKILL)

    monkeypatch.setattr(RunFolder, "save_unit", save_and_kill)
    assert main(["run", str(study), "--out", str(out), "--workers", "1", *RUN]) == 0
    assert killed
    _same(_file(out), clean)
    manifest = RunFolder.read_manifest(tmp_path / "faults.run")
    assert manifest["state"] == "complete"


def test_a_run_with_a_failed_unit_is_never_complete_and_keeps_its_units(
    tmp_path, monkeypatch, capsys
):
    import workbench.runner as runner

    study = _write_study(tmp_path)
    out = tmp_path / "faults.nc"
    original = runner._solve_unit

    def broken(model, system, study, day, *args):
        if day.day == 17:
            raise MemoryError("worker lost")
        return original(model, system, study, day, *args)

    monkeypatch.setattr(runner, "_solve_unit", broken)
    assert main(["run", str(study), "--out", str(out), "--scheduler", "sync", *RUN]) == 1
    err = capsys.readouterr().err
    run_dir = tmp_path / "faults.run"
    assert f"workbench run --resume {run_dir}" in err
    assert RunFolder.read_manifest(run_dir)["state"] == "failed"
    assert len(list((run_dir / "units").glob("*.nc"))) == 2  # kept, although written
    monkeypatch.setattr(runner, "_solve_unit", original)
    assert main(["run", "--resume", str(run_dir), "--scheduler", "sync", *RUN]) == 0
    assert "1 computed, 2 found finished" in capsys.readouterr().out
    assert RunFolder.read_manifest(run_dir)["state"] == "complete"


@pytest.mark.slow  # a LocalCluster of two workers, signalled from outside (about 40 s)
@pytest.mark.parametrize("how", ["ctrl-c to the group", "sigterm to the driver"])
def test_a_stop_from_outside_is_one_line_and_the_resume_keeps_every_day(tmp_path, how):
    study = _write_study(tmp_path, n_days=4, ac=True)
    out = tmp_path / "faults.nc"
    run_dir = tmp_path / "faults.run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workbench.cli",
            "run",
            str(study),
            "--out",
            str(out),
            "--workers",
            "2",
            *RUN,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        start_new_session=True,  # its own process group, as a terminal gives it
    )
    deadline = time.monotonic() + 600
    while not list((run_dir / "units").glob("*.json")) if run_dir.exists() else True:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    if how == "ctrl-c to the group":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        os.kill(proc.pid, signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130
    lines = [line for line in stderr.strip().splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("interrupted: "), stderr[-3000:]
    kept = int(lines[0].split()[1])
    again = _cli("run", "--resume", str(run_dir), "--scheduler", "sync", *RUN)
    assert again.returncode == 0, again.stderr
    assert f"{4 - kept} computed, {kept} found finished" in again.stdout


# ---------------------------------------------------------------------------- files
def test_a_resume_writes_only_where_its_run_said_and_replaces_nothing_foreign(tmp_path, capsys):
    study = parse_study(_study_data(n_days=1), "faults")
    run_dir = tmp_path / "py.run"
    run_study(study, run_dir=run_dir, scheduler="sync", progress=False)
    assert RunFolder.read_manifest(run_dir)["state"] == "computed"
    # started from Python without a result file: the resume must be told where
    assert main(["run", "--resume", str(run_dir), *RUN]) == 2
    assert "--out" in capsys.readouterr().err
    theirs = tmp_path / "theirs.nc"
    theirs.write_bytes(b"another tool's file")
    assert main(["run", "--resume", str(run_dir), "--out", str(theirs), *RUN]) == 0  # told
    with xr.open_dataset(theirs) as ds:
        assert ds.attrs["run_id"] == RunFolder.read_manifest(run_dir)["run_id"]


def test_a_new_run_never_replaces_a_result_file_it_was_not_told_to(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    study = _write_study(tmp_path, n_days=1)
    (tmp_path / "results").mkdir()
    theirs = tmp_path / "results" / "faults.nc"
    theirs.write_bytes(b"a checked result")
    assert main(["run", str(study), "--scheduler", "sync", *RUN]) == 2
    line = capsys.readouterr().err.strip()
    assert "did not write it" in line and "--force" in line
    assert theirs.read_bytes() == b"a checked result"
    scores = tmp_path / "results" / "faults_forecast.nc"
    scores.write_bytes(b"scenarios kept for a paper")
    assert main(["forecast", str(study), "--no-plots"]) == 2  # the same for forecasts
    assert "--force" in capsys.readouterr().err
    assert scores.read_bytes() == b"scenarios kept for a paper"
    assert main(["run", str(study), "--scheduler", "sync", "--force", *RUN]) == 0
    with xr.open_dataset(theirs) as ds:
        assert (ds.solver_status.values == "optimal").all()


def test_a_python_run_folder_passed_again_resumes(tmp_path):
    study = parse_study(_study_data(n_days=2), "faults")
    kw = {"scheduler": "sync", "progress": False}
    first = run_study(study, run_dir=tmp_path / "run", **kw).load()
    report = RunReport()
    again = run_study(study, run_dir=tmp_path / "run", report=report, **kw).load()
    assert (report.computed, report.resumed) == (0, 2)
    _same(again, first)
    other = study.replace(seed=study.seed + 1)
    folder = RunFolder.open(tmp_path / "run")
    folder.mark("interrupted")  # an unfinished run of another seed is refused
    folder.release()
    with pytest.raises(RunFolderError, match="another study or seed"):
        run_study(other, run_dir=tmp_path / "run", **kw)


def test_resume_after_the_study_file_was_edited_says_which_study_it_uses(tmp_path, capsys):
    study = _write_study(tmp_path, n_days=1)
    folder = RunFolder.create(
        tmp_path / "r",
        parse_study(_study_data(n_days=1), "s"),
        7,
        tmp_path / "o.nc",
        study_file=study,
    )
    folder.release()
    study.write_text(study.read_text().replace("n_days: 1", "n_days: 2"))
    assert main(["run", "--resume", str(tmp_path / "r"), "--scheduler", "sync", *RUN]) == 0
    err = capsys.readouterr().err
    assert "changed since the run started" in err and "the study it started with" in err
    with xr.open_dataset(tmp_path / "o.nc") as ds:
        assert ds.sizes.get("day", 1) == 1
