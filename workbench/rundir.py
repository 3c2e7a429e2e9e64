"""The run folder: every finished unit of a study on disk at once, resumable.

A study expands into *units*, one per coordination model and day (its schedule and the
AC checks of its scenario batches). The runner writes each finished unit into the run
folder as soon as it arrives, so an interrupted or failed run loses only the units in
flight, and ``workbench run --resume RUN_DIR`` computes only the missing ones::

    RUN_DIR/
        manifest.json          run id, study, seed, units, output file, state
        networks/<slot>.json   networks the study's YAML cannot name (net objects, files)
        run.log                one line per unit and the run's summary
        .lock                  held (an OS file lock) while a process works in the folder
        units/<unit>.nc        the unit's results (times relative to midnight)
        units/<unit>.json      the unit's record: status, message, times, memory, the size
                               and SHA-256 of its ``.nc``, the storage state the next day
                               starts from

A unit is finished only when its record and its data agree: the record is written after
the data, and names the data's size and checksum. A unit whose ``.nc`` is missing,
truncated or garbled, or whose record says ``error`` (an exception or a lost worker, not
a modelling outcome), is computed again, with a warning. The final Dataset is assembled
lazily from the unit files (dask arrays), so a large study never has to fit in memory.

States of a run (``manifest["state"]``): ``running``; ``interrupted`` (Ctrl-C or
SIGTERM); ``failed`` (some unit has an ``error`` record or could not be saved);
``computed`` (every unit finished, no results file written, e.g. from Python);
``complete`` (the results are written to ``out``). Only a ``complete`` run may be replaced
by a new one; every other is resumed.

One process at a time: the folder is locked (:mod:`filelock`, an OS lock the kernel frees
when the process ends, so a killed run leaves no stale lock). A unit that cannot be saved
(disk full, file-size limit, the folder made read-only) is saved to a rescue folder in
the system's temporary directory, named after the run id, which ``--resume`` takes back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import socket
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr
from filelock import FileLock, Timeout

from cases.archive import NETWORKS_ATTR, STUDY_ATTR, restore_study, study_archive
from cases.study import StudyConfig
from workbench.results import OutputError, _netcdf_ready, local_io

__all__ = [
    "NamedUnit",
    "RunFolder",
    "RunFolderError",
    "RunFolderWarning",
    "Unit",
    "UnitSaveError",
    "default_run_dir",
    "rescue_dir",
]

MANIFEST = "manifest.json"
UNITS = "units"
NETWORKS = "networks"
LOG = "run.log"
LOCK = ".lock"
OWNER = ".lock.owner.json"
_FORMAT = "workbench run folder 1"
#: states of a run in which another run may not start in its folder
UNFINISHED = ("running", "interrupted", "failed", "computed")


class RunFolderError(OutputError):
    """A run folder that cannot be used (one line saying why and what to do)."""


class UnitSaveError(RunFolderError):
    """A finished unit that could not be written to the run folder."""


class RunFolderWarning(UserWarning):
    """Something found in a run folder that the run handles (a damaged unit computed
    again, a rescued unit taken back, the study file edited since the run started)."""


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


@dataclass(frozen=True, order=True)
class NamedUnit:
    """A unit of another command than ``run`` (``workbench evaluate``: a plan or a batch of
    scenarios of one model-day), known by its key alone.

    Attributes
    ----------
    key : str
        File name stem of the unit.
    """

    key: str


def default_run_dir(out: Path) -> Path:
    """The run folder beside a result file: ``results/x.nc`` -> ``results/x.run``."""
    return out.with_suffix(".run")


def rescue_dir(run_id: str) -> Path:
    """Where the units of run ``run_id`` go when its run folder cannot take them."""
    return Path(tempfile.gettempdir()) / f"workbench-rescue-{run_id}"


def _write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary name beside ``path``, flush it to disk, rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_json(path: Path, data: dict) -> None:
    _write_bytes(path, json.dumps(data, indent=1).encode("utf-8"))


def _digest(path: Path) -> str:
    """SHA-256 of a file, in hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_data(units: Path, key: str, record: dict) -> str | None:
    """Why the data of a unit's record cannot be used (None: it can)."""
    data = record.get("data", "unrecorded")
    file = units / f"{key}.nc"
    if data is None:  # the unit has no schedule: nothing to check
        return None
    if not file.is_file():
        return "its data file is missing"
    if data == "unrecorded":  # a record of an earlier version: the file must open
        try:
            xr.open_dataset(file).close()
        except (OSError, ValueError, RuntimeError) as exc:
            return f"its data file cannot be read ({exc})"
        return None
    size = file.stat().st_size
    if size != data.get("bytes"):
        return f"its data file has {size:,} bytes, its record says {data.get('bytes'):,}"
    if _digest(file) != data.get("sha256"):
        return "its data file differs from its record (checksum)"
    return None


@dataclass
class RunFolder:
    """A run folder (see the module docstring), locked by this process while open.

    Attributes
    ----------
    path : pathlib.Path
    manifest : dict
    """

    path: Path
    manifest: dict
    _opened: list = field(default_factory=list, repr=False)
    _lock: FileLock | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ create / open
    @classmethod
    def create(
        cls,
        path: str | Path,
        study: StudyConfig,
        seed: int,
        out: Path | None = None,
        *,
        study_file: str | Path | None = None,
        replace_out: bool = False,
        units: list[str] | None = None,
        command: str = "run",
        settings: dict | None = None,
    ) -> RunFolder:
        """Start a run folder for ``study`` and lock it.

        A folder that holds a complete run of this workbench, or one that finished no
        unit, is reused (its units, log and networks replaced); one that holds finished
        units of an unfinished run, or anything else, is left as it is (an error says
        what to do).

        Parameters
        ----------
        path : path
        study : StudyConfig
        seed : int
        out : path, optional
            The results file the run will write.
        study_file : path, optional
            The study file the run was started from (a resume notes when it changed).
        replace_out : bool
            Whether the run may replace an existing ``out`` it did not write (the user
            gave ``--out`` or ``--force``).
        units : list of str, optional
            Keys of the units (default: one per model and day of ``study``).
        command : str
            The ``workbench`` command whose run this is (its ``--resume`` continues it).
        settings : dict, optional
            The command's settings a resume continues with (JSON-ready).

        Raises
        ------
        RunFolderError
        """
        path = Path(path)
        cls.check_new(path)
        fresh = not path.exists()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunFolderError(f"run folder '{path}' cannot be created: {exc}") from None
        folder = cls(path, {})
        folder._acquire()
        with folder._unlocked_on_error():
            cls.check_new(path)  # again, now that no other process can change it
            if not fresh:
                for name in (UNITS, NETWORKS):
                    shutil.rmtree(path / name, ignore_errors=True)
                (path / LOG).unlink(missing_ok=True)
            (path / UNITS).mkdir(exist_ok=True)
            archive = study_archive(study)
            nets = json.loads(archive.pop(NETWORKS_ATTR, "{}"))
            if nets:
                (path / NETWORKS).mkdir(exist_ok=True)
                for slot, text in nets.items():
                    _write_bytes(path / NETWORKS / f"{slot}.json", text.encode("utf-8"))
            folder.manifest = {
                "format": _FORMAT,
                "written_by": "workbench",
                "run_id": uuid.uuid4().hex,
                "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "state": "running",
                "seed": int(seed),
                "out": None if out is None else str(Path(out).resolve()),
                "replace_out": bool(replace_out),
                "command": command,
                "settings": dict(settings or {}),
                "units": [u.key for u in study_units(study)] if units is None else list(units),
                "networks": sorted(nets),
                "study_file": None if study_file is None else str(Path(study_file).resolve()),
                "study_file_sha256": None if study_file is None else _file_digest(study_file),
                **archive,
            }
            folder._save_manifest()
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
        if path.is_dir() and any(p.name not in (LOCK, OWNER) for p in path.iterdir()):
            old = cls._read_manifest(path, quiet=True)
            if old is None:
                raise RunFolderError(
                    f"run folder '{path}' exists and is not a run folder of this workbench; "
                    "give another --run-dir (an existing folder is never emptied)"
                )
            cls._check_unlocked(path)
            folder = cls(path, old)
            done = len(folder.finished(quiet=True))
            if old.get("state") != "complete" and done:
                raise RunFolderError(
                    f"run folder '{path}' holds an unfinished run ({done} of "
                    f"{len(old['units'])} units done); resume it with `workbench "
                    f"{old.get('command', 'run')} --resume {path}`, or give another --run-dir"
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
        """Open an existing run folder (to resume it) and lock it.

        Units saved to the run's rescue folder (:func:`rescue_dir`) are taken back.

        Raises
        ------
        RunFolderError
            When ``path`` is no run folder of this workbench, or another process works
            in it.
        """
        path = Path(path)
        manifest = cls._read_manifest(path, quiet=False)
        if not os.access(path, os.W_OK):
            raise RunFolderError(
                f"run folder '{path}' is not writable; make it writable (chmod u+w) and "
                "resume again"
            )
        folder = cls(path, manifest)
        folder._acquire()
        with folder._unlocked_on_error():
            if "run_id" not in manifest:  # written by an earlier version
                manifest["run_id"] = uuid.uuid4().hex
                folder._save_manifest()
            (path / UNITS).mkdir(exist_ok=True)
            folder._take_back_rescued()
        return folder

    @classmethod
    def read_manifest(cls, path: str | Path) -> dict | None:
        """The manifest of a run folder, or None when ``path`` is none (nothing is locked
        or changed)."""
        return cls._read_manifest(Path(path), quiet=True)

    def holds(self, study: StudyConfig) -> bool:
        """Whether this folder's run is of ``study`` (its keys and networks)."""
        archive = study_archive(study)
        if archive[STUDY_ATTR] != self.manifest.get(STUDY_ATTR):
            return False
        nets = json.loads(archive.get(NETWORKS_ATTR, "{}"))
        if sorted(nets) != sorted(self.manifest.get("networks", [])):
            return False
        for slot, text in nets.items():
            try:
                kept = (self.path / NETWORKS / f"{slot}.json").read_text(encoding="utf-8")
            except OSError:
                return False
            if kept != text:
                return False
        return True

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
                if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
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

    # ------------------------------------------------------------------ the lock
    @staticmethod
    def _owner_text(path: Path) -> str:
        try:
            owner = json.loads((path / OWNER).read_text())
            return f" (pid {owner['pid']} on {owner['host']}, since {owner['since']})"
        except (OSError, ValueError, KeyError, TypeError):
            return ""

    @classmethod
    def _check_unlocked(cls, path: Path) -> None:
        """Raise if another process holds the folder's lock (nothing is created)."""
        if not (path / LOCK).exists():
            return
        probe = FileLock(str(path / LOCK), timeout=0)
        try:
            probe.acquire()
        except Timeout:
            raise RunFolderError(
                f"run folder '{path}' is in use by another run{cls._owner_text(path)}; wait "
                "for it to end, or give another --run-dir"
            ) from None
        except OSError as exc:
            raise RunFolderError(f"run folder '{path}' cannot be locked: {exc}") from None
        probe.release()

    def _acquire(self) -> None:
        """Lock the folder for this process (released by :meth:`release` or its end)."""
        lock = FileLock(str(self.path / LOCK), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise RunFolderError(
                f"run folder '{self.path}' is in use by another run"
                f"{self._owner_text(self.path)}; wait for it to end, or give another "
                "--run-dir"
            ) from None
        except OSError as exc:
            raise RunFolderError(f"run folder '{self.path}' cannot be locked: {exc}") from None
        self._lock = lock
        owner = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        try:
            _write_json(self.path / OWNER, owner)
        except OSError:  # the lock holds without its note
            pass

    @contextlib.contextmanager
    def _unlocked_on_error(self) -> Iterator[None]:
        """Inside: anything that fails unlocks the folder again (an OS error becomes a
        :class:`RunFolderError` naming the folder)."""
        try:
            yield
        except OSError as exc:
            self.release()
            raise RunFolderError(f"run folder '{self.path}' cannot be written: {exc}") from None
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """Close the unit files and the log, and unlock the folder."""
        self.close()
        self.close_log()
        if self._lock is not None and self._lock.is_locked:
            (self.path / OWNER).unlink(missing_ok=True)
            self._lock.release()
        self._lock = None

    # ------------------------------------------------------------------ contents
    @property
    def run_id(self) -> str:
        return str(self.manifest["run_id"])

    def study(self) -> StudyConfig:
        """The study the run folder was created for (with its kept networks)."""
        nets = {}
        for slot in self.manifest.get("networks", []):
            file = self.path / NETWORKS / f"{slot}.json"
            try:
                nets[slot] = file.read_text(encoding="utf-8")
            except OSError as exc:
                raise RunFolderError(
                    f"run folder '{self.path}': the network kept for '{slot}' cannot be read "
                    f"({exc}); the run cannot be resumed, start a new one"
                ) from None
        text = json.dumps(nets) if nets else None
        return restore_study(self.manifest[STUDY_ATTR], text, f"run folder '{self.path}'")

    def study_file_changed(self) -> bool:
        """Whether the study file the run started from differs from it now."""
        file, digest = self.manifest.get("study_file"), self.manifest.get("study_file_sha256")
        if not file or not digest:
            return False
        return _file_digest(file) != digest

    @property
    def seed(self) -> int:
        return int(self.manifest["seed"])

    @property
    def out(self) -> Path | None:
        out = self.manifest.get("out")
        return None if out is None else Path(out)

    def records(self) -> dict[str, dict]:
        """Records of the units on disk, by unit key (whether their data agree or not)."""
        out = {}
        for key in self.manifest["units"]:
            file = self.path / UNITS / f"{key}.json"
            try:
                record = json.loads(file.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                continue
            if isinstance(record, dict) and "status" in record:
                out[key] = record
        return out

    def damaged(self) -> dict[str, str]:
        """Units whose record and data disagree: unit key -> what is wrong."""
        units = self.path / UNITS
        out = {}
        for key, record in self.records().items():
            why = _check_data(units, key, record)
            if why is not None:
                out[key] = why
        return out

    def finished(self, quiet: bool = False) -> dict[str, dict]:
        """Records of the units that need no computing again: not ``error``, their data
        as recorded. Each damaged unit is told once as a :class:`RunFolderWarning`
        unless ``quiet``."""
        damaged = self.damaged()
        if not quiet:
            for key, why in damaged.items():
                warnings.warn(
                    f"unit {key} in '{self.path}': {why}; it is computed again",
                    RunFolderWarning,
                    stacklevel=2,
                )
        return {
            k: r
            for k, r in self.records().items()
            if r.get("status") != "error" and k not in damaged
        }

    def failed_units(self) -> list[str]:
        """Units whose record says ``error`` (computed again by a resume)."""
        return sorted(k for k, r in self.records().items() if r.get("status") == "error")

    def save_unit(self, unit: Unit | NamedUnit, ds: xr.Dataset | None, record: dict) -> None:
        """Write a unit: its results (if any), then its record (which marks it done).

        Raises
        ------
        UnitSaveError
            When the folder cannot take it (disk full, size limit, permissions): one line
            naming the folder, the unit and the cause. Nothing written so far is lost.
        """
        try:
            _save_unit_files(self.path / UNITS, unit, ds, record)
        except (OSError, RuntimeError) as exc:
            raise UnitSaveError(
                f"could not save unit {unit.key} in run folder '{self.path}': {_cause(exc)}"
            ) from None

    def rescue_unit(self, unit: Unit | NamedUnit, ds: xr.Dataset | None, record: dict) -> Path:
        """Save a unit the run folder could not take to :func:`rescue_dir`, where
        :meth:`open` takes it back. Returns the rescue folder.

        Raises
        ------
        UnitSaveError
            When that fails too.
        """
        folder = rescue_dir(self.run_id)
        try:
            (folder / UNITS).mkdir(parents=True, exist_ok=True)
            _save_unit_files(folder / UNITS, unit, ds, record)
        except (OSError, RuntimeError) as exc:
            raise UnitSaveError(
                f"could not save unit {unit.key} in the rescue folder '{folder}' either: "
                f"{_cause(exc)}"
            ) from None
        return folder

    def _take_back_rescued(self) -> None:
        """Move the units of this run found in its rescue folder into the run folder."""
        folder = rescue_dir(self.run_id)
        if not (folder / UNITS).is_dir():
            return
        taken = []
        for rec_file in sorted((folder / UNITS).glob("*.json")):
            key = rec_file.stem
            if key not in self.manifest["units"]:
                continue
            try:
                record = json.loads(rec_file.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                continue
            if _check_data(folder / UNITS, key, record) is not None:
                continue
            data = folder / UNITS / f"{key}.nc"
            if data.is_file():
                _write_bytes(self.path / UNITS / f"{key}.nc", data.read_bytes())
            _write_json(self.path / UNITS / f"{key}.json", record)
            taken.append(key)
        shutil.rmtree(folder, ignore_errors=True)  # the run made it; all of it is copied
        if taken:
            warnings.warn(
                f"{len(taken)} unit(s) saved to '{folder}' when '{self.path}' could not take "
                f"them are taken back ({', '.join(taken)})",
                RunFolderWarning,
                stacklevel=3,
            )

    def mark(self, state: str, **extra) -> None:
        """Record the run's state (see the module docstring)."""
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
        if not any(isinstance(h, logging.FileHandler) for h in log.handlers):
            handler = _RunLogHandler(self.path / LOG, encoding="utf-8")
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
        damaged = self.damaged()
        records = {
            k: r if k not in damaged else {"status": "missing", "message": damaged[k]}
            for k, r in self.records().items()
        }
        opened: dict[str, xr.Dataset] = {}
        for unit in study_units(study):
            file = self.path / UNITS / f"{unit.key}.nc"
            if unit.key in records and unit.key not in damaged and file.is_file():
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


class _RunLogHandler(logging.FileHandler):
    """The run log's file handler. A line that cannot be written (disk full, folder made
    read-only) is dropped: the run says what failed on the terminal, and a logging
    traceback per line would bury it."""

    def handleError(self, record: logging.LogRecord) -> None:
        return


def _file_digest(path: str | Path) -> str | None:
    """SHA-256 of a file, or None when it cannot be read."""
    try:
        return _digest(Path(path))
    except OSError:
        return None


def _cause(exc: BaseException) -> str:
    """An OS or netCDF error in words (``[Errno 28] No space left on device``)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, RuntimeError) and "HDF" in text:  # netCDF's words for a failed write
        text += " (the disk is full, a file-size limit is reached, or the folder is read-only)"
    return text


def _save_unit_files(
    units: Path, unit: Unit | NamedUnit, ds: xr.Dataset | None, record: dict
) -> None:
    """The unit's ``.nc`` (to a temporary name, flushed, renamed), then its record with the
    data's size and checksum."""
    target = units / f"{unit.key}.nc"
    record = dict(record)
    if ds is not None:
        tmp = units / f".{unit.key}.{os.getpid()}.tmp.nc"
        try:
            with local_io():
                _netcdf_ready(ds).to_netcdf(tmp, engine="netcdf4")
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            record["data"] = {"bytes": tmp.stat().st_size, "sha256": _digest(tmp)}
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    else:
        record["data"] = None
        target.unlink(missing_ok=True)
    _write_json(units / f"{unit.key}.json", record)
