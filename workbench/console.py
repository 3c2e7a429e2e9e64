"""What a run tells its user: versions, progress per phase, warnings and the log.

* :func:`versions` / :func:`version_text`: the package's and its key dependencies' versions
  (``workbench --version``, the run log, the results' attributes).
* :class:`Phase`: progress of one phase of a run (fitting forecasters, scheduling, AC
  check) with counts; a bar on a terminal, one line when stderr is no terminal.
* :func:`known_noise_filtered`: third-party warnings a user cannot act on, filtered one by
  one by category and message (never a whole category).
* :func:`library_logs_to` and :func:`warnings_to_log`: third-party log records and Python
  warnings of a run go to the run's log, not to the terminal.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
import warnings
from collections.abc import Iterator
from importlib import metadata
from typing import IO

from tqdm.auto import tqdm

__all__ = [
    "KEY_DEPENDENCIES",
    "KNOWN_NOISE",
    "Phase",
    "filter_known_noise",
    "known_noise_filtered",
    "library_logs_collected",
    "library_logs_to",
    "version_text",
    "versions",
    "warnings_to_log",
]

#: distribution names whose versions a run reports
KEY_DEPENDENCIES = (
    "numpy",
    "pandas",
    "xarray",
    "pyomo",
    "highspy",
    "pandapower",
    "scikit-learn",
    "dask",
    "distributed",
)

#: (category, message regex, module regex) of third-party warnings that say nothing a user
#: of the workbench can act on
KNOWN_NOISE: tuple[tuple[type[Warning], str, str], ...] = (
    # the dashboard moves to a free port by itself; the link printed says which
    (UserWarning, r"Port \d+ is already in use", r"distributed\..*"),
)

#: loggers of libraries whose records go to the run log instead of the terminal
LIBRARY_LOGGERS = ("pandapower",)


def versions() -> dict[str, str]:
    """Versions of the workbench and of :data:`KEY_DEPENDENCIES` (``-`` when missing)."""
    out = {"tsodso-workbench": _version("tsodso-workbench")}
    out.update({name: _version(name) for name in KEY_DEPENDENCIES})
    out["python"] = sys.version.split()[0]
    return out


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "-"


def version_text() -> str:
    """Two lines: the workbench's version, then the key dependencies'."""
    v = versions()
    head = f"workbench {v.pop('tsodso-workbench')} (Python {v.pop('python')})"
    return head + "\n" + ", ".join(f"{k} {x}" for k, x in v.items())


@contextlib.contextmanager
def known_noise_filtered() -> Iterator[None]:
    """Inside: the warnings of :data:`KNOWN_NOISE` are not shown (each by its category,
    message and module); every other warning is shown as before."""
    with warnings.catch_warnings():
        for category, message, module in KNOWN_NOISE:
            warnings.filterwarnings("ignore", message=message, category=category, module=module)
        yield


def filter_known_noise() -> None:
    """Filter the warnings of :data:`KNOWN_NOISE` for the rest of the process (the
    command line's entry point and Dask worker tasks)."""
    for category, message, module in KNOWN_NOISE:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)


class _ToLog(logging.Handler):
    def __init__(self, log: logging.Logger) -> None:
        super().__init__()
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        self.log.log(record.levelno, "%s: %s", record.name, record.getMessage())


@contextlib.contextmanager
def _library_records_to(handler: logging.Handler) -> Iterator[None]:
    """Inside: records of :data:`LIBRARY_LOGGERS` go to ``handler`` only (not propagated
    to the terminal); the loggers are restored afterwards."""
    saved = []
    for name in LIBRARY_LOGGERS:
        lib = logging.getLogger(name)
        saved.append((lib, lib.propagate))
        lib.addHandler(handler)
        lib.propagate = False
    try:
        yield
    finally:
        for lib, propagate in saved:
            lib.removeHandler(handler)
            lib.propagate = propagate


@contextlib.contextmanager
def library_logs_to(log: logging.Logger) -> Iterator[None]:
    """Inside: records of :data:`LIBRARY_LOGGERS` (pandapower's power-flow and OPF notes,
    which name internals the user never sees) go to ``log`` instead of the terminal.

    Records of this process only; Dask worker processes keep the level their tasks set.
    """
    with _library_records_to(_ToLog(log)):
        yield


class _ToList(logging.Handler):
    def __init__(self, notes: list[str]) -> None:
        super().__init__(level=logging.WARNING)
        self.notes = notes

    def emit(self, record: logging.LogRecord) -> None:
        self.notes.append(f"{record.name}: {record.getMessage()}")


@contextlib.contextmanager
def library_logs_collected() -> Iterator[list[str]]:
    """Inside: warnings and errors logged by :data:`LIBRARY_LOGGERS` are appended to the
    list yielded instead of reaching the terminal (a Dask task returns them with its result,
    so that the run log gets them wherever the task ran)."""
    notes: list[str] = []
    with _library_records_to(_ToList(notes)):
        yield notes


@contextlib.contextmanager
def warnings_to_log(log: logging.Logger) -> Iterator[None]:
    """Inside: every warning shown is also written to ``log`` (then shown as before)."""
    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        log.warning("%s: %s", category.__name__, str(message).strip().replace("\n", " "))
        previous(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


class Phase:
    """Progress of one phase of a run, with counts.

    On a terminal a tqdm bar on stderr; otherwise (a log file, a batch job) one line when
    the phase ends. The line (with the phase's time) also goes to ``log``.

    Parameters
    ----------
    name : str
        What the phase does (``scheduling``).
    total : int
        Items of the phase.
    unit : str
        What an item is, plural (``units``, ``power flows``).
    enabled : bool
        Show anything at all on ``stream`` (the log gets the line regardless).
    log : logging.Logger, optional
    stream : file, optional
        Default ``sys.stderr``.
    position : int
        Line of the bar (phases that run at the same time take different lines).
    """

    def __init__(
        self,
        name: str,
        total: int,
        unit: str,
        *,
        enabled: bool = True,
        log: logging.Logger | None = None,
        stream: IO[str] | None = None,
        position: int = 0,
    ) -> None:
        self.name, self.total, self.unit = name, int(total), unit
        self.enabled, self.log = enabled, log
        self.stream = sys.stderr if stream is None else stream
        self.done, self.counts = 0, {}
        self._tick = time.perf_counter()
        self._closed = False
        tty = enabled and bool(getattr(self.stream, "isatty", lambda: False)())
        self._bar = (
            tqdm(
                total=self.total,
                desc=name,
                unit=f" {unit}",
                file=self.stream,
                position=position,
                leave=True,
                dynamic_ncols=True,
            )
            if tty
            else None
        )

    def update(self, n: int = 1, **counts: int) -> None:
        """``n`` more items done; ``counts`` (e.g. ``failed=1``) are added to the tallies."""
        self.done += n
        for key, value in counts.items():
            self.counts[key] = self.counts.get(key, 0) + value
        if self._bar is not None:
            if counts or self.counts:
                self._bar.set_postfix(self.counts, refresh=False)
            self._bar.update(n)

    def line(self) -> str:
        """The phase as one line: ``scheduling: 3 of 4 units, 1 failed (12.0 s)``."""
        tallies = "".join(f", {v} {k}" for k, v in self.counts.items())
        seconds = time.perf_counter() - self._tick
        return f"{self.name}: {self.done} of {self.total} {self.unit}{tallies} ({seconds:.1f} s)"

    def close(self) -> None:
        """End the phase: close the bar, or print its line; write the line to the log."""
        if self._closed:
            return
        self._closed = True
        line = self.line()
        if self._bar is not None:
            self._bar.close()
        elif self.enabled:
            print(line, file=self.stream, flush=True)
        if self.log is not None:
            self.log.info(line, extra={"phase": self.name})

    def __enter__(self) -> Phase:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
