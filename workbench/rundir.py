"""The run folder: every finished unit of a study on disk at once, resumable.

A study expands into *units*, one per coordination model and day (its schedule and the
AC checks of its scenario batches). The runner writes each finished unit into the run
folder as soon as it arrives, so an interrupted or failed run loses only the units in
flight, and ``workbench run --resume RUN_DIR`` computes only the missing ones::

    RUN_DIR/
        manifest.json          study, seed, units, output file, state (running/complete)
        run.log                one line per unit and the run's summary
        units/<unit>.nc        the unit's results (times relative to midnight)
        units/<unit>.json      the unit's record: status, message, times, memory, the
                               storage state the next day starts from

The record is written after the results, so a unit with a record is complete. A unit
whose record says ``error`` (an exception or a lost worker, not a modelling outcome) is
computed again on resume. The final Dataset is assembled lazily from the unit files
(dask arrays), so a large study never has to fit in memory.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr
import yaml

from cases.study import StudyConfig, parse_study
from workbench.results import OutputError, _netcdf_ready

__all__ = ["RunFolder", "RunFolderError", "Unit", "default_run_dir"]

MANIFEST = "manifest.json"
UNITS = "units"
LOG = "run.log"
_FORMAT = "workbench run folder 1"


class RunFolderError(OutputError):
    """A run folder that cannot be used (one line saying why and what to do)."""


@dataclass(frozen=True, order=True)
class Unit:
    """One coordination model on one day.

    Attributes
    ----------
    model : str
    day : datetime.date
    """

    model: str
    day: dt.date

    @property
    def key(self) -> str:
        """File name stem of the unit (``tso_managed_2016-06-15``)."""
        return f"{self.model.replace(':', '+')}_{self.day.isoformat()}"


def default_run_dir(out: Path) -> Path:
    """The run folder beside a result file: ``results/x.nc`` -> ``results/x.run``."""
    return out.with_suffix(".run")


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


@dataclass
class RunFolder:
    """A run folder (see the module docstring).

    Attributes
    ----------
    path : pathlib.Path
    manifest : dict
    """

    path: Path
    manifest: dict
    _opened: list = field(default_factory=list, repr=False)

    # ------------------------------------------------------------------ create / open
    @classmethod
    def create(
        cls, path: str | Path, study: StudyConfig, seed: int, out: Path | None = None
    ) -> RunFolder:
        """Start a run folder for ``study``.

        A folder that holds a finished run of this workbench, or one that finished no
        unit, is replaced; one that holds finished units of an unfinished run, or anything
        else, is left as it is (an error says what to do).

        Raises
        ------
        RunFolderError
        """
        path = Path(path)
        cls.check_new(path)
        if path.is_dir() and any(path.iterdir()):
            shutil.rmtree(path / UNITS, ignore_errors=True)
        try:
            (path / UNITS).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunFolderError(f"run folder '{path}' cannot be created: {exc}") from None
        if not os.access(path, os.W_OK):
            raise RunFolderError(f"run folder '{path}' is not writable; give another --run-dir")
        manifest = {
            "format": _FORMAT,
            "written_by": "workbench",
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "state": "running",
            "seed": int(seed),
            "out": None if out is None else str(Path(out).resolve()),
            "units": [u.key for u in study_units(study)],
            "study_config_yaml": yaml.safe_dump(study.model_dump(mode="json"), sort_keys=False),
        }
        folder = cls(path, manifest)
        folder._save_manifest()
        (path / LOG).unlink(missing_ok=True)
        return folder

    @classmethod
    def check_new(cls, path: str | Path) -> None:
        """Check, without touching anything, that :meth:`create` may use ``path``.

        Raises
        ------
        RunFolderError
        """
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise RunFolderError(f"run folder '{path}' is a file; give another --run-dir")
        if path.is_dir() and any(path.iterdir()):
            old = cls._read_manifest(path, quiet=True)
            if old is None:
                raise RunFolderError(
                    f"run folder '{path}' exists and is not a run folder of this workbench; "
                    "give another --run-dir (an existing folder is never emptied)"
                )
            done = len(cls(path, old).finished())
            if old.get("state") != "complete" and done:
                raise RunFolderError(
                    f"run folder '{path}' holds an unfinished run ({done} of "
                    f"{len(old['units'])} units done); resume it with `workbench run "
                    f"--resume {path}`, or give another --run-dir"
                )
        parent = path if path.exists() else path.parent
        while not parent.exists():
            parent = parent.parent
        if not os.access(parent, os.W_OK | os.X_OK):
            raise RunFolderError(
                f"run folder '{path}': '{parent}' is not writable; give another --run-dir"
            )

    @classmethod
    def open(cls, path: str | Path) -> RunFolder:
        """Open an existing run folder (to resume it).

        Raises
        ------
        RunFolderError
            When ``path`` is no run folder of this workbench.
        """
        path = Path(path)
        manifest = cls._read_manifest(path, quiet=False)
        if not os.access(path, os.W_OK):
            raise RunFolderError(f"run folder '{path}' is not writable")
        (path / UNITS).mkdir(exist_ok=True)
        return cls(path, manifest)

    @staticmethod
    def _read_manifest(path: Path, quiet: bool) -> dict | None:
        file = path / MANIFEST
        why = None
        if not path.is_dir():
            why = "does not exist" if not path.exists() else "is not a folder"
        elif not file.is_file():
            why = f"has no {MANIFEST}"
        else:
            try:
                manifest = json.loads(file.read_text())
                if manifest.get("format") != _FORMAT:
                    why = f"has a {MANIFEST} this version does not read"
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                why = f"has an unreadable {MANIFEST} ({exc})"
        if why is None:
            return manifest
        if quiet:
            return None
        raise RunFolderError(
            f"run folder '{path}' {why}; give --resume a folder that `workbench run` "
            "created (it prints its name)"
        )

    def _save_manifest(self) -> None:
        _write_json(self.path / MANIFEST, self.manifest)

    # ------------------------------------------------------------------ contents
    def study(self) -> StudyConfig:
        """The study the run folder was created for."""
        return parse_study(yaml.safe_load(self.manifest["study_config_yaml"]), str(self.path))

    @property
    def seed(self) -> int:
        return int(self.manifest["seed"])

    @property
    def out(self) -> Path | None:
        out = self.manifest.get("out")
        return None if out is None else Path(out)

    def records(self) -> dict[str, dict]:
        """Records of the units on disk, by unit key."""
        out = {}
        for key in self.manifest["units"]:
            file = self.path / UNITS / f"{key}.json"
            try:
                out[key] = json.loads(file.read_text())
            except (OSError, json.JSONDecodeError):
                continue
        return out

    def finished(self) -> dict[str, dict]:
        """Records of the units that need no computing again (all but ``error``)."""
        return {k: r for k, r in self.records().items() if r.get("status") != "error"}

    def save_unit(self, unit: Unit, ds: xr.Dataset | None, record: dict) -> None:
        """Write a unit: its results (if any), then its record (which marks it done)."""
        units = self.path / UNITS
        target = units / f"{unit.key}.nc"
        if ds is not None:
            tmp = units / f".{unit.key}.{os.getpid()}.tmp.nc"
            try:
                _netcdf_ready(ds).to_netcdf(tmp, engine="netcdf4")
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
        else:
            target.unlink(missing_ok=True)
        _write_json(units / f"{unit.key}.json", record)

    def mark(self, state: str, **extra) -> None:
        """Record the run's state (``running``, ``interrupted``, ``complete``)."""
        self.manifest.update(state=state, **extra)
        self._save_manifest()

    def close(self) -> None:
        """Close the unit files an assembled Dataset reads from."""
        for ds in self._opened:
            ds.close()
        self._opened.clear()

    def remove_units(self) -> None:
        """Delete the unit files (after the final result is written)."""
        self.close()
        shutil.rmtree(self.path / UNITS, ignore_errors=True)

    def logger(self) -> logging.Logger:
        """A logger that appends to the run folder's ``run.log``."""
        log = logging.getLogger(f"workbench.run.{self.path.resolve()}")
        log.setLevel(logging.INFO)
        log.propagate = False
        if not log.handlers:
            handler = logging.FileHandler(self.path / LOG, encoding="utf-8")
            handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
            log.addHandler(handler)
        return log

    def close_log(self) -> None:
        """Close the log file (before the folder may be moved or removed)."""
        log = logging.getLogger(f"workbench.run.{self.path.resolve()}")
        for handler in list(log.handlers):
            handler.close()
            log.removeHandler(handler)

    # ------------------------------------------------------------------ assemble
    def assemble(self, study: StudyConfig) -> xr.Dataset:
        """The study's Dataset from the unit files, lazily (dask arrays).

        A unit without a schedule (a modelling failure or an error) takes the shape of
        a solved unit with every value missing, its status and message. When no unit has
        a schedule, only ``solver_status`` and ``solver_message`` on (model, day), with
        the attribute ``all_failed``.
        """
        records = self.records()
        opened: dict[str, xr.Dataset] = {}
        for unit in study_units(study):
            file = self.path / UNITS / f"{unit.key}.nc"
            if unit.key in records and file.is_file():
                ds = xr.open_dataset(file, chunks={})
                self._opened.append(ds)
                for var in ds.variables.values():  # text is small, and dask cannot
                    if var.dtype.kind in "OUS":  # concatenate it with missing values
                        var.load()
                opened[unit.key] = ds
        if not opened:
            return _status_only(study, records)
        template = next(iter(opened.values()))
        from workbench.runner import failed_like

        stacked = []
        for model in study.models:
            days = []
            for day in study.days:
                unit = Unit(model, day)
                ds = opened.get(unit.key)
                if ds is None:
                    rec = records.get(unit.key, {})
                    ds = failed_like(template)
                    ds["solver_status"] = xr.DataArray(rec.get("status", "missing"))
                    ds["solver_message"] = xr.DataArray(rec.get("message", "not computed"))
                    ds["wall_seconds"] = ds["wall_seconds"].copy(
                        data=rec.get("wall_seconds", np.nan)
                    )
                days.append(ds.expand_dims(day=[np.datetime64(day, "ns")]))
            stacked.append(
                xr.concat(
                    days, dim="day", join="outer", data_vars="all", combine_attrs="drop_conflicts"
                ).expand_dims(model=[model])
            )
        return xr.concat(
            stacked, dim="model", join="outer", data_vars="all", combine_attrs="drop_conflicts"
        )


def study_units(study: StudyConfig) -> list[Unit]:
    """The units of a study, model by model, days in order."""
    return [Unit(m, d) for m in study.models for d in study.days]


def _status_only(study: StudyConfig, records: dict[str, dict]) -> xr.Dataset:
    """Status and message of every model-day (a study in which nothing has a schedule)."""
    models, days = list(study.models), list(study.days)
    status = np.full((len(models), len(days)), "missing", dtype=object)
    message = np.full((len(models), len(days)), "not computed", dtype=object)
    for i, m in enumerate(models):
        for j, d in enumerate(days):
            rec = records.get(Unit(m, d).key)
            if rec is not None:
                status[i, j], message[i, j] = rec["status"], rec.get("message", "")
    ds = xr.Dataset(
        {
            "solver_status": (("model", "day"), status.astype(str)),
            "solver_message": (("model", "day"), message.astype(str)),
        },
        coords={"model": models, "day": [np.datetime64(d, "ns") for d in days]},
    )
    ds.attrs["all_failed"] = 1
    return ds
