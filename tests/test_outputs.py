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
