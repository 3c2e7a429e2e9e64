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
from tabulate import tabulate

from cases.archive import study_archive
from cases.study import StudyConfig
from workbench.contract import (
    TIME_ZONE,
    from_file_clock,
    to_contract,
    to_file_clock,
)
from workbench.statistics import Statistics

__all__ = [
    "OutputError",
    "annotate",
    "check_output",
    "contract_layout",
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


def local_io():
    """Inside: files are read and written by this process alone (Dask's synchronous
    scheduler and plain locks), also while a ``distributed.Client`` is the default
    scheduler: its workers may run on other machines, without the run's files, and a
    distributed lock would hang a write that Ctrl-C interrupts."""
    import dask

    return dask.config.set(scheduler="synchronous")


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


_RUN_ATTRS = ("all_failed", "data_sources", "scenario_method", "forecast_fit_seconds")


def annotate(
    ds: xr.Dataset, study: StudyConfig, seed: int, scheduler: str, run_id: str | None = None
) -> xr.Dataset:
    """Record the study (with the networks its YAML cannot name), seed, versions, solver
    status and the run's id in ``attrs``, in the contract layout
    (:func:`workbench.contract.to_contract`: ``model`` and ``day`` kept as dimensions,
    timestamps with bounds of the study's resolution, CF metadata)."""
    ds = ds.copy()
    status = ds["solver_status"].to_numpy().astype(str).ravel().tolist()
    # what the run recorded of its data: sources, scenario method, forecaster fit time,
    # the scenarios' calibration figures
    kept = {k: v for k, v in ds.attrs.items() if k in _RUN_ATTRS or k.startswith("calibration_")}
    created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    versions = package_versions()
    ds.attrs = kept | {
        "title": f"stochastic day-ahead schedule: {study.name}",
        "source": f"tsodso-workbench {versions['tsodso-workbench']}, HiGHS {versions['highspy']}",
        "history": f"{created} workbench run of study '{study.name}' (seed {int(seed)})",
        "comment": "power in MW/Mvar, energy in MWh, cost in EUR, voltage in pu; time, "
        "period and day are instants in UTC in the file (time_local, period_local, "
        f"day_local: on the study's clock, {TIME_ZONE}) and on the study's clock once read "
        "with workbench.results.read_results; per-day figures are on `day`",
        "study_name": study.name,
        **study_archive(study),
        "seed": int(seed),
        "scheduler": scheduler,
        "solver": "HiGHS via pyomo.contrib.solver (persistent)",
        "solver_status": ", ".join(sorted(set(status))),
        "created": created,
        **({} if run_id is None else {"run_id": run_id}),
        **{f"version_{k}": v for k, v in versions.items()},
    }
    return contract_layout(ds, study)


def contract_layout(ds: xr.Dataset, study: StudyConfig) -> xr.Dataset:
    """``ds`` (either layout) in the contract layout, its time bounds of the study's
    resolution (:func:`workbench.contract.to_contract`)."""
    res = study.resolution
    return to_contract(
        ds, step_minutes=res.second_stage_minutes, period_minutes=res.first_stage_minutes
    )


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
    ready = to_file_clock(_netcdf_ready(ds))
    ready.attrs[_MARK[0]] = _MARK[1]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")
    try:
        if suffix == ".nc":
            with local_io():
                ready.to_netcdf(tmp, engine="netcdf4")
            os.replace(tmp, path)
        else:
            if ready.chunks:  # zarr takes uniform chunks only: one per model and day
                ready = ready.chunk({d: 1 if d in ("model", "day") else -1 for d in ready.dims})
            with warnings.catch_warnings(), local_io():  # zarr 3: consolidated metadata is
                warnings.filterwarnings("ignore", message="Consolidated metadata")  # optional
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


def written_by_run(path: str | Path) -> str | None:
    """The id of the run that wrote the results at ``path`` (None: no run of this
    workbench, or nothing readable there)."""
    path = Path(path)
    try:
        if path.is_dir():
            with xr.open_zarr(path) as ds:
                return ds.attrs.get("run_id")
        with xr.open_dataset(path) as ds:
            return ds.attrs.get("run_id")
    except Exception:  # anything unreadable was not written by a run
        return None


#: variables every results file of a run with some schedule holds (the commands that
#: read results rely on them)
CORE_VARIABLES = (
    "solver_status",
    "objective_eur",
    "expected_cost_eur",
    "cvar_eur",
    "first_stage_cost_eur",
    "scenario_cost_eur",
    "weight",
)


def read_results(path: str | Path, require: tuple[str, ...] = ()) -> xr.Dataset:
    """Open a results file written by :func:`write_results` (loaded into memory).

    The Dataset is in the contract layout, as :func:`workbench.run` returns it: ``model``
    and ``day`` are dimensions (of one entry too), ``time`` and ``period`` timestamps on
    the study's clock with their bounds (see :mod:`workbench.contract`). Files of earlier
    versions (one-entry ``model``/``day`` squeezed, no bounds) read back in this layout.

    Parameters
    ----------
    path : path
    require : tuple of str
        Variables the caller needs (e.g. :data:`CORE_VARIABLES`); a file of a study where
        no model-day has a schedule (``attrs["all_failed"]``) lacks them by design and is
        not checked.

    Raises
    ------
    ValueError
        For a missing file, one that is not a results dataset of this workbench, or one
        that lacks a variable it should hold (one line naming them).
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(
            f"results file '{path}' does not exist; give a file written by `workbench run`"
        )
    try:
        with local_io():
            if path.suffix.lower() == ".zarr":
                ds = xr.open_zarr(path, decode_coords="all").load()
            else:
                with xr.open_dataset(path, decode_coords="all") as f:
                    ds = f.load()
    except (OSError, ValueError) as exc:
        raise ValueError(f"'{path}' cannot be read as a netCDF or zarr dataset: {exc}") from None
    if "study_config_yaml" not in ds.attrs or "model" not in ds.coords:
        raise ValueError(
            f"'{path}' is not a results file of `workbench run` (no study in its attributes)"
        )
    needed = () if ds.attrs.get("all_failed") else require
    missing = [name for name in dict.fromkeys(needed) if name not in ds.variables]
    if missing:
        raise ValueError(
            f"'{path}' lacks the variable(s) {', '.join(missing)} of a results file; give a "
            "complete file written by `workbench run` (run the study again if it was edited)"
        )
    return to_contract(from_file_clock(ds), **_resolution(ds.attrs))


def _resolution(attrs: dict) -> dict[str, int | None]:
    """The step and period lengths [min] of the study a file records (None if it does
    not: test files, or a study without a ``resolution``)."""
    try:
        study = yaml.safe_load(str(attrs.get("study_config_yaml", "")))
    except yaml.YAMLError:
        study = None
    res = study.get("resolution") if isinstance(study, dict) else None
    res = res if isinstance(res, dict) else {}
    return {
        "step_minutes": res.get("second_stage_minutes"),
        "period_minutes": res.get("first_stage_minutes"),
    }


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    """Header, rule and rows; the first column left-aligned, the others right-aligned."""
    text = tabulate(
        rows,
        headers=head,
        tablefmt="simple",
        disable_numparse=True,
        colalign=("left", *("right",) * (len(head) - 1)),
    )
    return text.splitlines()


def _ac_row(model: str, d: xr.Dataset, checks: xr.DataArray | None) -> list[str]:
    """One model's AC check: flows converged of run, violations, largest voltage error."""
    if checks is None or float(checks.sel(check="checked").sum()) == 0:
        return [model, "off", "", "", "", ""]

    def n(kind: str) -> int:
        return round(float(checks.sel(check=kind).sum()))

    vm_err = "n/a"
    if "vm_pu_ac" in d:
        diff = np.abs(d["vm_pu_ac"] - d["vm_pu_linear"])
        vm_err = f"{float(diff.max()):.4f}" if np.isfinite(diff).any() else "n/a"
    return [
        model,
        f"{n('checked') - n('not_converged'):,} of {n('checked'):,}",
        f"{n('voltage_transmission'):,}",
        f"{n('voltage_distribution'):,}",
        f"{n('overloads'):,}",
        vm_err,
    ]


def summary_table(ds: xr.Dataset) -> str:
    """The main figures per coordination model, in lines under 100 characters.

    Costs, energies and times are sums over the study's days (the first line says how
    many); the AC check is told in words, one line per model. The figures come from
    :class:`workbench.statistics.Statistics`.
    """
    st = Statistics(ds)
    ds = st.ds
    days = [str(d)[:10] for d in ds.day.to_numpy()]
    span = days[0] if len(days) == 1 else f"{days[0]} .. {days[-1]}"
    n_scen = ds.sizes.get("scenario", 0)
    lines = [
        f"{ds.sizes['model']} model(s), {len(days)} day(s) ({span}), {n_scen} scenarios per day.",
        f"Costs [EUR], energies [MWh] and times [s] are sums over the {len(days)} day(s).",
        "",
    ]
    ex = st.expectation
    by_stage = st.cost(by="stage")
    cost = by_stage.sum("stage", skipna=False)
    # sums over days and categories (a day without a schedule adds nothing)
    figures = {
        "E[cost]": ex(cost),
        "CVaR": st.cvar(cost),
        "day-ahead": ex(by_stage.sel(stage="first")),
        "shed": ex(st.load_shed()).sum("bus_network", skipna=False),
        "curtailed": ex(st.curtailment()).sum("resource", skipna=False),
    }
    times = ex(st.solve_time())
    checks = st.ac_violations() if st.available("ac_violations") else None
    costs, solves, ac = [], [], []
    for model in ds.model.to_numpy():
        d = ds.sel(model=model)

        def total(da: xr.DataArray, model=model) -> float:
            return float(da.sel(model=model).sum())

        costs.append(
            [
                str(model),
                f"{total(figures['E[cost]']):,.0f}",
                f"{total(figures['CVaR']):,.0f}",
                f"{total(figures['day-ahead']):,.0f}",
                f"{total(figures['shed']):.2f}",
                f"{total(figures['curtailed']):.2f}",
            ]
        )
        solves.append(
            [
                str(model),
                f"{total(times.sel(step='build')):.1f}",
                f"{total(times.sel(step='translate')):.1f}",
                f"{total(times.sel(step='solver')):.1f}",
                f"{int(d['n_variables'].max()):,}",
                f"{int(d['n_constraints'].max()):,}",
            ]
        )
        ac.append(_ac_row(str(model), d, None if checks is None else checks.sel(model=model)))
    lines += _table(["model", "E[cost]", "CVaR", "day-ahead", "shed MWh", "curtailed MWh"], costs)
    lines += ["(E[cost]: expected over scenarios; CVaR: mean of the costliest tail; day-ahead:"]
    lines += [" first-stage cost, reserve and flexibility capacity, included in both)", ""]
    lines += _table(
        ["model", "build s", "translate s", "HiGHS s", "largest LP: vars", "constraints"],
        solves,
    )
    lines += ["", "AC power flow check of the schedules, over checked scenario-steps:"]
    lines += _table(["model", "converged", "V trans.", "V dist.", "overloads", "max|dV| pu"], ac)
    lines += [
        "(V trans. / V dist.: bus-steps outside their voltage limits on the transmission /",
        " feeder buses; overloads: branch-steps above 100 %; max|dV|: largest gap between the",
        " AC and the linearised voltage)",
    ]
    return "\n".join(lines)
