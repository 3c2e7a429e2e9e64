"""Results contract: attributes, summary table and writing to netCDF or zarr."""

from __future__ import annotations

import datetime as dt
import importlib.metadata as md
import os
import platform
import shutil
import warnings
from pathlib import Path

import numpy as np
import xarray as xr
import yaml

from cases.study import StudyConfig

__all__ = [
    "OutputError",
    "annotate",
    "check_output",
    "read_results",
    "summary_table",
    "write_results",
]

_PACKAGES = (
    "numpy",
    "xarray",
    "pyomo",
    "highspy",
    "pandapower",
    "dask",
    "distributed",
    "scikit-learn",
    "pandas",
    "scipy",
)


def package_versions() -> dict[str, str]:
    """Versions of the packages that shape the results."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "not installed"
    try:
        out["tsodso-workbench"] = md.version("tsodso-workbench")
    except md.PackageNotFoundError:
        out["tsodso-workbench"] = "source"
    return out


def annotate(ds: xr.Dataset, study: StudyConfig, seed: int, scheduler: str) -> xr.Dataset:
    """Record the study, seed, versions and solver status in ``attrs``."""
    ds = ds.copy()
    status = ds["solver_status"].to_numpy().astype(str).ravel().tolist()
    kept = {k: v for k, v in ds.attrs.items() if k == "all_failed"}
    ds.attrs = kept | {
        "title": f"stochastic day-ahead schedule: {study.name}",
        "study_name": study.name,
        "study_config_yaml": yaml.safe_dump(study.model_dump(mode="json"), sort_keys=False),
        "seed": int(seed),
        "scheduler": scheduler,
        "solver": "HiGHS via pyomo.contrib.solver (persistent)",
        "solver_status": ", ".join(sorted(set(status))),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "conventions": "power in MW/Mvar, energy in MWh, cost in EUR; time and period are "
        "offsets from the start of each day",
        **{f"version_{k}": v for k, v in package_versions().items()},
    }
    return ds


def _netcdf_ready(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` as netCDF stores it: flags as int8, text as str, no encoding carried over
    from the files it was read from (a flag filled with NaN in a concatenation must not
    be cast back to int8)."""
    out = ds.copy()
    for var in out.variables.values():
        var.encoding = {}
    for name, var in ds.variables.items():
        if var.dtype == bool:
            out[name] = var.astype(np.int8)
            out[name].attrs = {**var.attrs, "flag_values": "0 1"}
        elif var.dtype == object:
            out[name] = var.astype(str)
    return out


class OutputError(ValueError):
    """An output path that cannot take the results (a user error, found before any work)."""


#: every file this workbench writes carries this attribute (a store with it may be replaced)
_MARK = ("written_by", "workbench")


def _is_our_store(path: Path) -> bool:
    """Whether folder ``path`` is a zarr store of results written by the workbench."""
    try:
        return xr.open_zarr(path).attrs.get(_MARK[0]) == _MARK[1]
    except Exception:  # any folder zarr cannot read as a store is not ours
        return False


def check_output(path: str | Path) -> Path:
    """Check that results can be written to ``path``, before any computation.

    The extension is ``.nc`` or ``.zarr``; an existing ``.nc`` is a regular file and an
    existing ``.zarr`` a results store of the workbench (another folder is never
    replaced); the nearest existing folder above it is writable.

    Raises
    ------
    OutputError
        With one line saying what is wrong and how to fix it.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".nc", ".zarr"):
        raise OutputError(f"output '{path}' must end in .nc or .zarr (netCDF or zarr store)")
    if path.exists() or path.is_symlink():
        if suffix == ".nc" and not path.is_file():
            kind = "a folder" if path.is_dir() else "not a regular file"
            raise OutputError(f"output '{path}' is {kind}; give a new .nc file name")
        if suffix == ".zarr" and not (path.is_dir() and _is_our_store(path)):
            raise OutputError(
                f"output '{path}' exists and is not a results store of this workbench; "
                "give a new .zarr name (an existing folder is never replaced)"
            )
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"output '{path}': '{parent}' is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(
            f"output '{path}': folder '{parent}' is not writable; give a path in a folder "
            "you can write to"
        )
    return path


def write_results(ds: xr.Dataset, path: str | Path) -> Path:
    """Write to ``.nc`` (netCDF4) or ``.zarr``, creating the folder.

    The data are written to a temporary name beside ``path`` and then renamed, so a
    failed or interrupted write leaves an existing file at ``path`` as it was.

    Raises
    ------
    OutputError
        For a path :func:`check_output` refuses.
    OSError
        When the write itself fails (disk full, ...).
    """
    path = check_output(path)
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    ready = _netcdf_ready(ds)
    ready.attrs[_MARK[0]] = _MARK[1]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")
    try:
        if suffix == ".nc":
            ready.to_netcdf(tmp, engine="netcdf4")
            os.replace(tmp, path)
        else:
            if ready.chunks:  # zarr takes uniform chunks only: one per model and day
                ready = ready.chunk({d: 1 if d in ("model", "day") else -1 for d in ready.dims})
            with warnings.catch_warnings():  # zarr 3: consolidated metadata is an extension
                warnings.filterwarnings("ignore", message="Consolidated metadata")
                ready.to_zarr(tmp, mode="w")
            _replace_directory(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
    return path


def _replace_directory(new: Path, path: Path) -> None:
    """Put directory ``new`` at ``path``; an old store there is removed only afterwards."""
    if not path.exists():
        os.replace(new, path)
        return
    old = path.with_name(f".{path.name}.{os.getpid()}.old")
    os.replace(path, old)
    try:
        os.replace(new, path)
    except OSError:
        os.replace(old, path)
        raise
    shutil.rmtree(old)


def read_results(path: str | Path) -> xr.Dataset:
    """Open a results file written by :func:`write_results` (loaded into memory).

    Raises
    ------
    ValueError
        For a missing file or one that is not a results dataset of this workbench.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(
            f"results file '{path}' does not exist; give a file written by `workbench run`"
        )
    try:
        if path.suffix.lower() == ".zarr":
            ds = xr.open_zarr(path).load()
        else:
            with xr.open_dataset(path) as f:
                ds = f.load()
    except (OSError, ValueError) as exc:
        raise ValueError(f"'{path}' cannot be read as a netCDF or zarr dataset: {exc}") from None
    if "study_config_yaml" not in ds.attrs or "model" not in ds.dims:
        raise ValueError(
            f"'{path}' is not a results file of `workbench run` (no study in its attributes)"
        )
    return ds


def summary_table(ds: xr.Dataset) -> str:
    """A plain-text table of the main figures per coordination model (summed over days)."""
    rows = []
    for model in ds.model.to_numpy():
        d = ds.sel(model=model)
        vm_err = np.nan
        if "vm_pu_ac" in d:
            diff = np.abs(d["vm_pu_ac"] - d["vm_pu_linear"])
            vm_err = float(diff.max()) if np.isfinite(diff).any() else np.nan
        viol_t = (
            int(d["voltage_violations_transmission_ac"].clip(min=0).sum())
            if "voltage_violations_transmission_ac" in d
            else -1
        )
        viol_d = (
            int(d["voltage_violations_distribution_ac"].clip(min=0).sum())
            if "voltage_violations_distribution_ac" in d
            else -1
        )
        over = int(d["overloads_ac"].clip(min=0).sum()) if "overloads_ac" in d else -1
        checked = int(d["ac_checked"].sum()) if "ac_checked" in d else 0
        converged = int(d["ac_converged"].sum()) if "ac_converged" in d else 0
        if checked == 0:
            ac = "off"
        elif converged == 0:
            ac = f"no AC flow converged in {checked}"
        else:
            ac = f"{viol_t}/{viol_d}/{over} in {converged}"
            ac += f" ({checked - converged} not converged)" if converged < checked else ""
        rows.append(
            [
                str(model),
                f"{float(d['expected_cost_eur'].sum()):,.0f}",
                f"{float(d['cvar_eur'].sum()):,.0f}",
                f"{float(d['first_stage_cost_eur'].sum()):,.0f}",
                f"{float(d['load_shed_mwh'].sum()):.2f}",
                f"{float(d['curtailment_mwh'].sum()):.2f}",
                f"{vm_err:.4f}" if np.isfinite(vm_err) else "n/a",
                ac,
                f"{float(d['build_seconds'].sum()):.1f}",
                f"{float(d['translate_seconds'].sum()):.1f}",
                f"{float(d['solver_seconds'].sum()):.1f}",
                f"{int(d['n_variables'].max()):,}/{int(d['n_constraints'].max()):,}",
            ]
        )
    head = [
        "model",
        "E[cost] EUR",
        "CVaR EUR",
        "day-ahead EUR",
        "shed MWh",
        "curtail MWh",
        "max|dV| pu",
        "AC viol. Vt/Vd/I",
        "build s",
        "translate s",
        "HiGHS s",
        "vars/cons",
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    line = "  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True))
    body = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join([line, "-" * len(line), *body])
