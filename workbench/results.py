"""Results contract: attributes, summary table and writing to netCDF or zarr."""

from __future__ import annotations

import datetime as dt
import importlib.metadata as md
import platform
from pathlib import Path

import numpy as np
import xarray as xr
import yaml

from cases.study import StudyConfig

__all__ = ["annotate", "summary_table", "write_results"]

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
    ds.attrs = {
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
    out = ds.copy()
    for name, var in ds.variables.items():
        if var.dtype == bool:
            out[name] = var.astype(np.int8)
            out[name].attrs = {**var.attrs, "flag_values": "0 1"}
        elif var.dtype == object:
            out[name] = var.astype(str)
    return out


def write_results(ds: xr.Dataset, path: str | Path) -> Path:
    """Write to ``.nc`` (netCDF4) or ``.zarr``, creating the folder.

    Raises
    ------
    ValueError
        For another file extension.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".nc", ".zarr"):
        raise ValueError(f"output '{path}' must end in .nc (netCDF) or .zarr")
    path.parent.mkdir(parents=True, exist_ok=True)
    ready = _netcdf_ready(ds)
    if suffix == ".nc":
        ready.to_netcdf(path, engine="netcdf4")
    else:
        ready.to_zarr(path, mode="w")
    return path


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
        rows.append(
            [
                str(model),
                f"{float(d['expected_cost_eur'].sum()):,.0f}",
                f"{float(d['cvar_eur'].sum()):,.0f}",
                f"{float(d['first_stage_cost_eur'].sum()):,.0f}",
                f"{float(d['load_shed_mwh'].sum()):.2f}",
                f"{float(d['curtailment_mwh'].sum()):.2f}",
                f"{vm_err:.4f}",
                f"{viol_t}/{viol_d}/{over} in {checked}",
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
