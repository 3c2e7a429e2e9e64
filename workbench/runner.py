"""Dask runner: days and scenario batches as independent tasks, results into one Dataset.

Task graph per study:
  * one *solve* task per coordination model and chunk of consecutive days (the model is
    built once per chunk and re-solved with new parameters for the following days; with
    carried storage state all days of a model form one chunk, solved in order),
  * one *AC check* task per model, day and batch of scenarios.
The scheduler is a fresh ``LocalCluster`` by default, an existing Dask scheduler given by
its address, a ``distributed.Client``, or a local Dask scheduler name (``sync``,
``threads``, ``processes``), resolved in one place: :func:`resolve_scheduler`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import shutil
import socket
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import xarray as xr
import yaml
from dask.callbacks import Callback
from tqdm.auto import tqdm

from cases.study import StudyConfig
from cases.system import IntegratedSystem, build_system
from forecasts.generate import ScenarioForecaster
from stochastic.risk import CvarTailWarning, cvar_tail_message
from stochastic.status import SOLVED_STATUSES
from workbench.ac_check import ac_check, ac_sample, voltage_setpoints
from workbench.console import (
    Phase,
    known_noise_filtered,
    library_logs_collected,
    library_logs_to,
    versions,
    warnings_to_log,
)
from workbench.coordination import DayOutcome, coordination_model
from workbench.coordination.common import clear_slots
from workbench.results import contract_layout, local_io
from workbench.rundir import UNFINISHED, RunFolder, RunFolderError, Unit, UnitSaveError
from workbench.scenarios import check_forecast_sources, data_description, fit_study_forecaster
from workbench.threads import limit_threads

__all__ = ["Executor", "RunReport", "plan_units", "resolve_scheduler", "run_study"]

LOCAL_SCHEDULERS = ("sync", "synchronous", "single-threaded", "threads", "processes")


@dataclass
class Executor:
    """A resolved scheduler: computes lists of delayed objects, with a progress bar.

    Attributes
    ----------
    kind : str
        ``distributed`` or a local scheduler name.
    n_workers : int
    client : distributed.Client or None
    description : str
    dashboard_link : str or None
        The Dask dashboard's address, when it is on.
    """

    kind: str
    n_workers: int
    client: object | None
    description: str
    dashboard_link: str | None = None

    def compute(self, delayeds: list, progress: bool = True, label: str = "tasks") -> list:
        """Compute delayed objects, showing a progress bar over finished tasks."""
        if self.client is not None:
            from distributed import as_completed

            futures = self.client.compute(delayeds)
            with tqdm(total=len(futures), desc=label, disable=not progress, unit="task") as bar:
                for _ in as_completed(futures):
                    bar.update()
            return self.client.gather(futures)
        with _TqdmCallback(label, disable=not progress):
            return list(dask.compute(*delayeds, scheduler=self.kind))


class _TqdmCallback(Callback):
    """Progress bar for Dask's local schedulers."""

    def __init__(self, label: str, disable: bool) -> None:
        super().__init__()
        self._label, self._disable, self._bar = label, disable, None

    def _start_state(self, dsk, state) -> None:
        total = sum(len(state[k]) for k in ("ready", "waiting", "running", "finished"))
        self._bar = tqdm(total=total, desc=self._label, disable=self._disable, unit="task")

    def _posttask(self, key, result, dsk, state, worker_id) -> None:
        if self._bar is not None:
            self._bar.update()

    def _finish(self, dsk, state, errored) -> None:
        if self._bar is not None:
            self._bar.close()


@contextlib.contextmanager
def resolve_scheduler(
    scheduler=None, workers: int | None = None, dashboard: bool = False
) -> Iterator[Executor]:
    """Resolve a scheduler specification into an :class:`Executor`.

    Parameters
    ----------
    scheduler : None, str or distributed.Client
        ``None``: start a ``LocalCluster`` (closed on exit); ``sync`` / ``threads`` /
        ``processes``: Dask's local schedulers; an address such as ``tcp://host:8786``
        (or ``host:port``): connect to that Dask scheduler; a ``Client``: use it.
    workers : int, optional
        Workers of the LocalCluster (default: CPU count, at most 4); ignored otherwise.
    dashboard : bool
        Serve the LocalCluster's dashboard (127.0.0.1:8787, or a free port); off, nothing
        listens for HTTP.

    Raises
    ------
    ValueError
        For a non-positive ``workers``.
    ConnectionError
        When no Dask scheduler answers at the given address.
    """
    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be a positive integer, got {workers}")
    if scheduler is not None and not isinstance(scheduler, str):
        info = scheduler.scheduler_info()
        yield Executor(
            "distributed",
            max(len(info.get("workers", {})), 1),
            scheduler,
            f"Dask client {scheduler}",
        )
        return
    if scheduler in LOCAL_SCHEDULERS:
        n = (
            1
            if scheduler in ("sync", "synchronous", "single-threaded")
            else (workers or min(os.cpu_count() or 1, 4))
        )
        kind = "sync" if n == 1 and scheduler != "threads" else scheduler
        yield Executor(kind, n, None, f"Dask '{scheduler}' scheduler")
        return
    from distributed import Client, LocalCluster

    if scheduler is None:
        n = workers or min(os.cpu_count() or 1, 4)
        # the scheduler always serves HTTP; off, on a free loopback port and then closed
        address = "127.0.0.1:8787" if dashboard else "127.0.0.1:0"
        with dask.config.set({"distributed.scheduler.allowed-failures": RETRIES}):
            with known_noise_filtered():  # only while the cluster starts
                cluster = LocalCluster(
                    n_workers=n,
                    threads_per_worker=1,
                    processes=True,
                    memory_limit="auto",
                    dashboard_address=address,
                    scheduler_kwargs={"dashboard": dashboard},
                    silence_logs=40,
                    preload=["workbench.worker_setup"],
                )
            with cluster, Client(cluster) as client:
                if not dashboard:
                    cluster.scheduler.http_server.stop()
                link = client.dashboard_link if dashboard else None
                yield Executor("distributed", n, client, f"LocalCluster with {n} workers", link)
        return
    address = check_scheduler(scheduler)
    try:
        client = Client(address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise ConnectionError(
            f"no Dask scheduler answers at '{scheduler}' ({exc}); start one "
            "with `dask scheduler` or leave out --scheduler to run "
            "locally"
        ) from None
    try:
        n = max(len(client.scheduler_info().get("workers", {})), 1)
        yield Executor(
            "distributed", n, client, f"Dask scheduler at {address}", client.dashboard_link
        )
    finally:
        client.close()


#: times a task is tried again when its worker dies (LocalCluster)
RETRIES = 2

#: how long a Dask scheduler may take to answer before the run gives up [s]
HANDSHAKE_SECONDS = 10.0


def scheduler_address(text: str) -> str:
    """``--scheduler`` as a Dask address (``host:port`` -> ``tcp://host:port``).

    Raises
    ------
    ValueError
        For text that is not ``[protocol://]host:port`` (one line saying so).
    """
    import re

    address = text if "://" in text else f"tcp://{text}"
    host_port = r"[A-Za-z0-9_.\-\[\]:]+:\d{1,5}"
    if not re.fullmatch(rf"((tcp|tls|ucx|ws|wss)://{host_port}|inproc://\S+)", address):
        raise ValueError(
            f"--scheduler '{text}' is not a Dask scheduler address; give host:port (e.g. "
            f"tcp://10.0.0.5:8786), or one of {', '.join(LOCAL_SCHEDULERS)}"
        )
    return address


def check_scheduler(text: str) -> str:
    """The Dask address of ``--scheduler`` text, checked: the scheduler there answers
    within :data:`HANDSHAKE_SECONDS`. Local scheduler names pass through.

    Raises
    ------
    ValueError
        For text that is no address.
    ConnectionError
        When nothing answers as a Dask scheduler there.
    """
    if text in LOCAL_SCHEDULERS:
        return text
    address = scheduler_address(text)
    _probe_scheduler(address, text)
    return address


def _refused_fast(address: str, text: str) -> None:
    """A TCP address where nothing listens is refused at once (Dask's own connect would
    retry until its timeout)."""
    import socket as sock
    from urllib.parse import urlsplit

    parts = urlsplit(address)
    if parts.scheme != "tcp" or parts.port is None:
        return
    try:
        with sock.create_connection((parts.hostname, parts.port), timeout=HANDSHAKE_SECONDS):
            return
    except ConnectionRefusedError:
        why = "connection refused: nothing listens there"
    except OSError as exc:
        why = exc.strerror or str(exc) or type(exc).__name__
    raise ConnectionError(
        f"no Dask scheduler answers at '{text}' ({why}); start one with `dask scheduler` "
        "or leave out --scheduler to run locally"
    )


def _probe_scheduler(address: str, text: str) -> None:
    """Ask the scheduler at ``address`` who it is, within :data:`HANDSHAKE_SECONDS`.

    A port that accepts a connection but never answers would otherwise hold the run for
    minutes. The probe runs on its own event loop in a daemon thread, so it is bounded
    whether or not the caller has an event loop.
    """
    import asyncio
    import threading

    from distributed.comm import connect

    _refused_fast(address, text)
    outcome: dict = {}

    async def ask() -> None:
        comm = await connect(address, timeout=HANDSHAKE_SECONDS)
        try:
            await comm.write({"op": "identity"})
            outcome["reply"] = await comm.read()
        finally:
            await comm.close()

    def run() -> None:
        try:
            asyncio.run(asyncio.wait_for(ask(), HANDSHAKE_SECONDS))
        except Exception as exc:  # reported below as one line
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="scheduler-probe", daemon=True)
    thread.start()
    thread.join(HANDSHAKE_SECONDS + 2.0)
    reply = outcome.get("reply")
    if isinstance(reply, dict) and reply.get("type") == "Scheduler":
        return
    error = outcome.get("error")
    if isinstance(error, asyncio.TimeoutError | TimeoutError) or (
        error is None and (thread.is_alive() or "reply" not in outcome)
    ):
        why = f"it did not answer within {HANDSHAKE_SECONDS:.0f} s"
    elif isinstance(error, OSError):
        why = str(error)
    else:  # an answer Dask cannot read (e.g. a length header of 2.82 EiB)
        why = "something answers there, but not as a Dask scheduler"
    raise ConnectionError(
        f"no Dask scheduler answers at '{text}' ({why}); start one with `dask scheduler` "
        "or leave out --scheduler to run locally"
    )


def failed_like(template: xr.Dataset) -> xr.Dataset:
    """A dataset shaped like ``template`` with every numeric value missing."""
    out = template.copy(deep=True)
    for name, var in out.data_vars.items():
        if np.issubdtype(var.dtype, np.floating):
            out[name] = var.copy(data=np.full(var.shape, np.nan))
        elif np.issubdtype(var.dtype, np.integer):
            out[name] = var.copy(data=np.full(var.shape, -1))
    out["solver_status"] = xr.DataArray("failed", attrs=template["solver_status"].attrs)
    return out


def _setpoint_task(system: IntegratedSystem, outcome: DayOutcome) -> xr.Dataset | None:
    """TER voltage set-points of a day from AC OPFs at the scheduled power."""
    if outcome.schedule is None:
        return None
    limit_threads()
    with library_logs_collected() as notes:
        vm, ok = voltage_setpoints(system, outcome.schedule, outcome.data)
    ds = xr.Dataset(
        {
            "ter_vm_setpoint_pu": (
                ("period", "gen"),
                vm,
                {"units": "pu", "long_name": "TER voltage set-point used in the AC check"},
            ),
            "vm_setpoint_from_acopf": (
                ("period",),
                ok,
                {"long_name": "set-points from an AC OPF (else the case's own)"},
            ),
        },
        coords={"period": outcome.schedule.period, "gen": outcome.schedule.gen},
    )
    ds.attrs["peak_memory_mb"] = _peak_memory_mb()
    ds.attrs["library_log"] = "\n".join(notes)
    return ds


def _ac_task(
    system: IntegratedSystem,
    outcome: DayOutcome,
    scenarios: list[int],
    every_n_steps: int,
    setpoints: xr.Dataset | None,
) -> xr.Dataset | None:
    if outcome.schedule is None:
        return None
    limit_threads()
    steps = list(range(0, outcome.data.n_steps, every_n_steps))
    vm = None if setpoints is None else setpoints["ter_vm_setpoint_pu"].to_numpy()
    with library_logs_collected() as notes:
        ds = ac_check(system, outcome.data, outcome.schedule, scenarios, steps, vm_setpoints=vm)
    ds.attrs["peak_memory_mb"] = _peak_memory_mb()
    ds.attrs["library_log"] = "\n".join(notes)
    return ds


def _relative_time(ds: xr.Dataset, day: dt.date) -> xr.Dataset:
    """Replace absolute time stamps by offsets from midnight (days stack on ``day``)."""
    start = np.datetime64(pd.Timestamp(day))
    return ds.assign_coords(time=ds.time.to_numpy() - start, period=ds.period.to_numpy() - start)


def _day_dataset(
    outcome: DayOutcome, ac_parts: list, template: xr.Dataset | None
) -> xr.Dataset | None:
    """One model-day: the schedule merged with its AC checks, times relative to midnight.

    A day without a schedule becomes ``template`` (a relative-time day dataset) with every
    value missing and its status and message, so that nothing else is lost.
    """
    if outcome.schedule is None:
        if template is None:
            return None
        ds = failed_like(template)
    else:
        ds = outcome.schedule
        if ac_parts and ac_parts[0] is not None and "ter_vm_setpoint_pu" in ac_parts[0]:
            ds = xr.merge([ds, ac_parts[0]], combine_attrs="drop_conflicts")
            ac_parts = ac_parts[1:]
        parts = [p for p in ac_parts if p is not None]
        if parts:
            ds = xr.merge(
                [ds, xr.concat(parts, dim="scenario")], join="outer", combine_attrs="drop_conflicts"
            )
        ds = _relative_time(ds, outcome.day)
    ds = ds.copy()
    ds["wall_seconds"] = xr.DataArray(
        outcome.wall_seconds, attrs={"units": "s", "long_name": "solve task wall time"}
    )
    ds["solver_message"] = xr.DataArray(outcome.message)
    return ds


def _solve_unit(
    model: str, system, study, day: dt.date, seed: int, forecaster, state
) -> DayOutcome:
    """Schedule one model-day (a unit) from the storage state it starts with."""
    limit_threads()
    schedule_days = coordination_model(model).schedule_days
    out = schedule_days(system, study, [day], seed, forecaster=forecaster, state=state)[0]
    return dataclasses.replace(out, peak_memory_mb=_peak_memory_mb())


def _end_state(outcome: DayOutcome):
    """The state the day after ``outcome`` starts from."""
    return outcome.end_state


def _finish_unit(outcome: DayOutcome, *ac_parts) -> tuple[xr.Dataset | None, dict]:
    """A unit's results (schedule and AC checks, times relative to midnight) and record."""
    peaks = [outcome.peak_memory_mb, _peak_memory_mb()]
    parts, notes = [], []
    for part in ac_parts:  # each task measured the memory of the process it ran in
        if part is not None:
            part = part.copy()
            peaks.append(part.attrs.pop("peak_memory_mb", 0.0))
            notes += [n for n in part.attrs.pop("library_log", "").split("\n") if n]
        parts.append(part)
    ds = _day_dataset(outcome, parts, None)

    def seconds(name: str) -> float:
        return float(ds[name]) if ds is not None and name in ds else 0.0

    state = outcome.end_state
    record = {
        "model": outcome.model,
        "day": outcome.day.isoformat(),
        "status": outcome.status,
        "message": outcome.message,
        "wall_seconds": round(outcome.wall_seconds, 3),
        "solver_seconds": round(seconds("solver_seconds"), 3),
        "build_seconds": round(seconds("build_seconds"), 3),
        "peak_memory_mb": round(max(peaks), 1),
        "worker": f"{socket.gethostname()}:{os.getpid()}",
        "library_log": sorted(set(notes)),
        "calibration": outcome.calibration,
        "end_state": None
        if state is None
        else {
            "battery_e_mwh": np.asarray(state.battery_e_mwh, dtype=float).tolist(),
            "ev_charged_fraction": np.asarray(state.ev_charged_fraction, dtype=float).tolist(),
        },
    }
    return ds, record


def _peak_memory_mb() -> float:
    """Peak resident memory of this process so far [MB]."""
    import resource

    scale = 1.0 if sys.platform == "darwin" else 1024.0  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def _error_record(unit: Unit, exc: BaseException, after: Unit | None = None) -> dict:
    """The record of a unit that raised (or whose worker died) instead of finishing;
    ``after``: the day before it in its chain, whose failure stopped it."""
    text = str(exc).strip().splitlines()
    message = f"{type(exc).__name__}: {text[0] if text else ''}".strip()
    if after is not None:
        message = f"not computed: {after.day.isoformat()} before it failed ({message})"
    return {
        "model": unit.model,
        "day": unit.day.isoformat(),
        "status": "error",
        "message": message,
    }


def _state_from_record(record: dict | None):
    """The storage state a unit's record passes to the next day (None: initial)."""
    from workbench.state import DayState

    if not record or not record.get("end_state"):
        return None
    st = record["end_state"]
    return DayState(
        np.asarray(st["battery_e_mwh"], dtype=float),
        np.asarray(st["ev_charged_fraction"], dtype=float),
    )


def plan_units(study: StudyConfig, finished: dict[str, dict]) -> list[tuple[object, list[Unit]]]:
    """The units still to compute, as chains: ``(start state, units in order)``.

    With carried storage state each run of consecutive unfinished days of a model is one
    chain, starting from the state the finished day before it ended with (the initial
    state for the study's first day); a finished day is never computed again, also when
    a day before it is (a day's end state depends only on its own start state, so the
    finished day's result stands). Otherwise every unfinished day is a chain of its own.
    """
    chains = []
    for model in study.models:
        units = [Unit(model, d) for d in study.days]
        if study.model.storage_state != "carried":
            chains.extend((None, [u]) for u in units if u.key not in finished)
            continue
        chain: list[Unit] = []
        for i, unit in enumerate(units):
            if unit.key in finished:
                continue
            if chain and units[i - 1] is chain[-1]:
                chain.append(unit)
                continue
            before = finished.get(units[i - 1].key) if i else None
            chain = [unit]
            chains.append((_state_from_record(before), chain))
    return chains


@dataclass
class RunReport:
    """What a run did.

    Attributes
    ----------
    units : int
        Units of the study.
    computed : int
        Units computed by this run.
    resumed : int
        Units found finished in the run folder.
    failed : dict
        Unit key -> (status, message) of units without an optimal schedule.
    interrupted : bool
    save_errors, rescued, lost : list
        Messages of unit saves that failed; units saved to the rescue folder instead;
        units saved nowhere.
    rescue_dir : str or None
    wall_seconds, solver_seconds : float [s]
        Wall time of the run; time inside HiGHS summed over the units computed.
    peak_worker_memory_mb : float [MB]
        Largest peak resident memory of a process that computed a unit.
    dashboard_link : str or None
    """

    units: int = 0
    computed: int = 0
    resumed: int = 0
    failed: dict = field(default_factory=dict)
    interrupted: bool = False
    wall_seconds: float = 0.0
    solver_seconds: float = 0.0
    peak_worker_memory_mb: float = 0.0
    dashboard_link: str | None = None
    save_errors: list = field(default_factory=list)
    rescued: list = field(default_factory=list)
    lost: list = field(default_factory=list)
    rescue_dir: str | None = None

    def save_line(self, folder: RunFolder) -> str:
        """One line on units the run folder could not take: where they are, what to do."""
        kept = len(folder.finished(quiet=True))
        where = f"{kept} of {self.units} units are kept in '{folder.path}'"
        if self.rescued:
            where += f", {len(self.rescued)} in the rescue folder '{self.rescue_dir}'"
        if self.lost:
            where += f"; {len(self.lost)} could not be saved anywhere ({', '.join(self.lost)})"
        return (
            f"{self.save_errors[0]}; {where}; once the folder can take them, resume with: "
            f"workbench run --resume {folder.path}"
        )

    def lines(self) -> list[str]:
        """The report as lines for the terminal and the log."""
        out = [
            f"units: {self.units} ({self.computed} computed, {self.resumed} found finished, "
            f"{len(self.failed)} without a schedule); wall {self.wall_seconds:.1f} s, "
            f"HiGHS {self.solver_seconds:.1f} s, peak worker memory "
            f"{self.peak_worker_memory_mb:.0f} MB"
        ]
        for key, (status, message) in sorted(self.failed.items()):
            cause = likely_cause(message)
            out.append(
                f"  {key}: {status}: {message or 'no message'}"
                + (f" (likely: {cause})" if cause else "")
            )
        return out


#: words in a unit's message -> what most likely caused it
_CAUSES = (
    (
        ("infeasible",),
        "limits that cannot all hold: feeder voltage bands or line ratings too tight for "
        "the load and PV, or generation short of the load",
    ),
    (("unbounded",), "a cost that is missing or negative, so nothing bounds the objective"),
    (
        ("killedworker", "memoryerror", "memory"),
        "a worker ran out of memory or died: fewer workers or more memory per worker",
    ),
    (("time limit", "timelimit"), "the solver's time limit"),
)


def likely_cause(message: str) -> str | None:
    """The most likely cause of a unit's failure message, in words (None: no guess)."""
    text = (message or "").lower()
    for words, cause in _CAUSES:
        if any(w in text for w in words):
            return cause
    return None


class _UnitGraph:
    """Delayed tasks of units: solve, set-point and AC-check tasks, and a finishing task
    that returns the unit's results and record."""

    def __init__(self, study, seed, sample, n_workers, sys_d, study_d, fc_d) -> None:
        self.study, self.seed, self.sample = study, seed, sample
        self.n_workers = n_workers
        self.sys_d, self.study_d, self.fc_d = sys_d, study_d, fc_d
        #: key of each AC-check task -> power flows it runs
        self.flows: dict[str, int] = {}

    def flows_per_unit(self) -> int:
        """Power flows of the AC check of one unit (0 when the AC check is off)."""
        if not self.study.ac_check.enabled:
            return 0
        n_steps = self.study.horizon_hours * 60 // self.study.resolution.second_stage_minutes
        steps = len(range(0, n_steps, self.sample.every_n_steps))
        return steps * len(self.sample.scenarios(self.study.scenarios.n_scenarios))

    def unit(self, unit: Unit, state) -> tuple:
        """``(finish, end_state, steps)`` delayed objects of one unit starting from
        ``state``; ``steps`` are its solve and AC-check tasks (for progress)."""
        solve = dask.delayed(_solve_unit, pure=False)(
            unit.model, self.sys_d, self.study_d, unit.day, self.seed, self.fc_d, state
        )
        parts = []
        if self.study.ac_check.enabled:
            n_s = self.study.scenarios.n_scenarios
            scen = np.array(self.sample.scenarios(n_s))
            batches = np.array_split(scen, min(self.n_workers, len(scen)))
            setpoints = dask.delayed(_setpoint_task, pure=False)(self.sys_d, solve)
            per_scenario = self.flows_per_unit() // len(scen)
            checks = [
                dask.delayed(_ac_task, pure=False)(
                    self.sys_d, solve, [int(s) for s in b], self.sample.every_n_steps, setpoints
                )
                for b in batches
                if len(b)
            ]
            for task, b in zip(checks, [b for b in batches if len(b)], strict=True):
                self.flows[task.key] = per_scenario * len(b)
            parts = [setpoints, *checks]
        finish = dask.delayed(_finish_unit, pure=False)(solve, *parts)
        end = dask.delayed(_end_state, pure=False)(solve)
        return finish, end, [solve, *parts]


def _compute_units(ex: Executor, graph: _UnitGraph, chains, save, progress: bool, log=None) -> None:
    """Compute the chains of units, calling ``save(unit, ds, record)`` as each finishes.

    Progress in phases with counts: scheduling (units done of all, failed) and, when
    the study has it, the AC check (power flows done of all; a unit without a schedule
    has none to run, so the count stays below the total).
    A unit that raises, or whose worker dies more than :data:`RETRIES` times, is saved with
    an ``error`` record and the others go on (later days of its chain fail with it).
    """
    total = sum(len(units) for _, units in chains)
    schedule = Phase("scheduling", total, "units", enabled=progress, log=log)
    schedule.counts["failed"] = 0
    ac = None
    if graph.flows_per_unit():
        ac = Phase(
            "AC check",
            total * graph.flows_per_unit(),
            "power flows",
            enabled=progress,
            log=log,
            position=1,
        )
    try:

        def done(unit: Unit, ds, record: dict) -> None:
            save(unit, ds, record)
            schedule.update(failed=int(record["status"] not in SOLVED_STATUSES))

        def step_done(key) -> None:
            if ac is not None and key in graph.flows:
                ac.update(graph.flows[key])

        if ex.client is None:
            _compute_in_process(ex, graph, chains, done, step_done)
        else:
            _compute_distributed(ex, graph, chains, done, step_done)
    finally:
        for phase in (schedule, ac):
            if phase is not None:
                phase.close()


class _StepCallback(Callback):
    """Tells ``step_done`` the key of every task Dask's local schedulers finish."""

    def __init__(self, step_done) -> None:
        super().__init__()
        self._step_done = step_done

    def _posttask(self, key, result, dsk, state, worker_id) -> None:
        if result is not None:  # None: the unit had no schedule to check
            self._step_done(key)


def _compute_in_process(ex: Executor, graph: _UnitGraph, chains, done, step_done) -> None:
    for state, units in chains:
        for i, unit in enumerate(units):
            finish, end, _ = graph.unit(unit, state)
            try:
                with _StepCallback(step_done):
                    (ds, record), state = dask.compute(finish, end, scheduler=ex.kind)
            except Exception as exc:  # recorded; the chain stops here
                done(unit, None, _error_record(unit, exc))
                for later in units[i + 1 :]:
                    done(later, None, _error_record(later, exc, after=unit))
                break
            done(unit, ds, record)


def _compute_distributed(ex: Executor, graph: _UnitGraph, chains, done, step_done) -> None:
    from distributed import as_completed

    units_of_tasks, tasks = [], []  # every task, so a long unit shows its steps
    chain = _ChainErrors(done)
    for state, units in chains:
        for before, unit in zip([None, *units[:-1]], units, strict=True):
            finish, state, steps = graph.unit(unit, state)
            units_of_tasks += [None] * len(steps) + [unit]
            tasks += [*steps, finish]
            chain.before[unit] = before
    futures = ex.client.compute(tasks)
    unit_of = {f.key: u for f, u in zip(futures, units_of_tasks, strict=True)}
    pending = {f.key: f for f in futures}
    try:
        for future in as_completed(futures):
            unit = unit_of[future.key]
            if unit is None:  # a step: its errors reach the unit's finishing task
                if future.status == "finished" and future.type is not type(None):
                    step_done(future.key)  # (None: the unit had no schedule to check)
            else:
                try:
                    ds, record = future.result()
                except Exception as exc:  # recorded; the other units go on
                    chain.failed(unit, exc)
                else:
                    chain.finished(unit, ds, record)
            pending.pop(future.key, None)
            future.release()
    finally:
        if pending:  # only what is still wanted (cancelling a released key upsets Dask)
            ex.client.cancel(list(pending.values()))


class _ChainErrors:
    """Records errors of chained units in chain order: a day that failed only because
    the day before it did says so (Dask hands both the same exception, in any order)."""

    def __init__(self, done) -> None:
        self.done = done
        self.before: dict[Unit, Unit | None] = {}
        self.status: dict[Unit, str] = {}
        self.held: dict[Unit, BaseException] = {}

    def finished(self, unit: Unit, ds, record: dict) -> None:
        self.done(unit, ds, record)
        self.status[unit] = record["status"]
        self._release(unit)

    def failed(self, unit: Unit, exc: BaseException) -> None:
        before = self.before.get(unit)
        if before is not None and before not in self.status:
            self.held[unit] = exc  # wait for the day before
            return
        after = before if before is not None and self.status[before] == "error" else None
        self.done(unit, None, _error_record(unit, exc, after=after))
        self.status[unit] = "error"
        self._release(unit)

    def _release(self, unit: Unit) -> None:
        for later, exc in list(self.held.items()):
            if self.before.get(later) == unit:
                del self.held[later]
                self.failed(later, exc)


def run_study(
    study: StudyConfig,
    *,
    scheduler=None,
    workers: int | None = None,
    seed: int | None = None,
    progress: bool = True,
    system: IntegratedSystem | None = None,
    forecaster: ScenarioForecaster | None = None,
    run_dir: str | os.PathLike | RunFolder | None = None,
    dashboard: bool = False,
    report: RunReport | None = None,
) -> xr.Dataset:
    """Run every coordination model of a study on every day, in parallel with Dask.

    Each unit (one model on one day: its schedule and AC checks) is written to a run
    folder as soon as it finishes (:mod:`workbench.rundir`); units already there are not
    computed again, so a run folder of an interrupted run is resumed by passing it again.

    Parameters
    ----------
    study : StudyConfig
    scheduler, workers, dashboard
        See :func:`resolve_scheduler`.
    seed : int, optional
        Overrides the study's seed.
    progress : bool
        Show a progress bar (units done, failed, time left).
    system : IntegratedSystem, optional
        A system already built from ``study``.
    forecaster : ScenarioForecaster, optional
        Forecasters already fitted for ``study`` (``scenarios.method: forecast``); fitted
        here (seeded with ``seed``) when missing.
    run_dir : path or RunFolder, optional
        Where the units go. A path is created, or resumed when it holds an unfinished run
        of the same study and seed (pass it again after an interruption or a failure; only
        the missing units are computed); a :class:`RunFolder` (opened by the caller) is
        used as it is. The folder is locked while the run works in it and ends in the
        state ``computed`` (every unit finished) or ``failed``. Default: a temporary
        folder, removed after the results are loaded into memory.
    report : RunReport, optional
        Filled with what the run did (units, failures, times, memory).

    Raises
    ------
    RunFolderError
        For a run folder that cannot be used (another study's unfinished run, in use by
        another process, not writable).
    UnitSaveError
        After computing, when some unit could not be saved in the run folder (disk full,
        size limit, permissions): one line naming the folder and the cause; the units are
        in the run folder or its rescue folder, and a resume takes them back.

    Returns
    -------
    xarray.Dataset
        Dimensions ``model``, ``day``, ``scenario``, ``time``, ``period``, ``gen``, ``der``,
        ``interface``, ``bus``, ``branch``, in the layout of :func:`workbench.run` and the
        results file (:mod:`workbench.contract`, ``docs/results.md``). Lazy (dask arrays)
        when ``run_dir`` is given, in memory otherwise. When no model-day has a schedule,
        only ``solver_status`` and ``solver_message`` on (model, day), with the attribute
        ``all_failed``.
    """
    limit_threads()
    check_forecast_sources(study)
    message = cvar_tail_message(study.risk.alpha, study.scenarios.n_scenarios)
    if message is not None and study.risk.beta > 0:
        warnings.warn(message, CvarTailWarning, stacklevel=2)
    seed = study.seed if seed is None else seed
    report = RunReport() if report is None else report
    tick = time.perf_counter()
    folder, scratch = _run_folder_of(run_dir, study, seed)
    try:
        log = folder.logger()
        _log_study(log, study, seed, message if study.risk.beta > 0 else None)
        with warnings_to_log(log), library_logs_to(log):
            out = _run_units(
                study,
                seed,
                folder,
                log,
                scheduler,
                workers,
                dashboard,
                progress,
                system,
                forecaster,
                report,
            )
        report.wall_seconds = time.perf_counter() - tick
        for line in report.lines():
            log.info(line)
        if scratch is not None:
            with local_io():  # the unit files are on this machine only
                out = out.load()
        return out
    finally:
        if folder is not run_dir:  # opened here: unlocked here (the data stay readable)
            folder.release()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _run_folder_of(run_dir, study: StudyConfig, seed: int) -> tuple[RunFolder, str | None]:
    """The locked run folder of :func:`run_study` and the scratch folder to remove after
    it (None: the folder is the caller's).

    A path holding an unfinished run of the same study and seed is resumed; one holding
    an unfinished run of another study is refused (a :class:`RunFolderError` saying how
    to resume it); any other is created as :meth:`RunFolder.create` allows.
    """
    import tempfile

    if isinstance(run_dir, RunFolder):
        return run_dir, None
    if run_dir is None:
        scratch = tempfile.mkdtemp(prefix="workbench-run-")
        return RunFolder.create(scratch, study, seed), scratch
    path = Path(run_dir)
    old = RunFolder.read_manifest(path)
    if old is None or old.get("state") not in UNFINISHED:
        return RunFolder.create(path, study, seed), None
    folder = RunFolder.open(path)
    if folder.seed != seed or not folder.holds(study):
        folder.release()
        raise RunFolderError(
            f"run folder '{path}' holds an unfinished run of another study or seed "
            f"('{folder.study().name}', seed {folder.seed}); resume it with "
            f"run_study(RunFolder.open('{path}').study(), run_dir='{path}') or `workbench "
            "run --resume`, or give another run_dir"
        )
    return folder, None


def _mark(folder: RunFolder, state: str) -> None:
    """Record the run's state if the folder can still take it (it may be full or
    read-only; the units on disk tell a resume what is done either way)."""
    try:
        folder.mark(state)
    except OSError:
        pass


def _log_study(log, study: StudyConfig, seed: int, tail_warning: str | None) -> None:
    """The run log's head: versions, the study as YAML, the CVaR tail warning if any."""
    log.info("versions: %s", ", ".join(f"{k} {v}" for k, v in versions().items()))
    log.info(
        "study '%s' (%s), seed %d:\n%s",
        study.name,
        study.description or "no description",
        seed,
        yaml.safe_dump(study.model_dump(mode="json"), sort_keys=False).rstrip(),
    )
    if tail_warning is not None:
        log.warning("CvarTailWarning: %s", tail_warning)


def _fit_forecasters(study: StudyConfig, seed: int, progress: bool, log) -> ScenarioForecaster:
    """Fit the study's forecasters, one phase of the run (resources fitted of all)."""
    n = len(study.forecast.sources.model_fields)
    with Phase("fitting forecasters", n, "resources", enabled=progress, log=log) as phase:
        return fit_study_forecaster(study, seed, progress=lambda resource: phase.update())


def _run_units(
    study, seed, folder, log, scheduler, workers, dashboard, progress, system, forecaster, report
) -> xr.Dataset:
    """Compute the units of ``study`` missing from ``folder`` and assemble the Dataset."""
    finished = folder.finished()
    chains = plan_units(study, finished)
    report.units = len(study.models) * len(study.days)
    todo = {u.key for _, units in chains for u in units}
    report.resumed = sum(1 for k in finished if k not in todo)
    log.info(
        "study '%s', seed %d: %d units, %d to compute", study.name, seed, report.units, len(todo)
    )
    fit_seconds = 0.0
    if chains:
        system = system or build_system(study)
        sample = ac_sample(study.ac_check.every_n_steps, study.ac_check.max_scenarios)
        if forecaster is None and study.scenarios.method == "forecast":
            fit_tick = time.perf_counter()
            forecaster = _fit_forecasters(study, seed, progress, log)
            fit_seconds = time.perf_counter() - fit_tick
        with resolve_scheduler(scheduler, workers, dashboard) as ex:
            report.dashboard_link = ex.dashboard_link
            if ex.dashboard_link:
                print(f"Dask dashboard: {ex.dashboard_link}", file=sys.stderr, flush=True)
                log.info("Dask dashboard: %s", ex.dashboard_link)
            log.info("scheduler: %s", ex.description)
            # read-only inputs are one task each, which every unit task depends on: a
            # worker fetches each once, and a lost worker's copy is made again (data
            # scattered to a worker that dies cannot be recovered)
            sys_d, study_d, fc_d = (
                dask.delayed(x, traverse=False) for x in (system, study, forecaster)
            )
            graph = _UnitGraph(study, seed, sample, ex.n_workers, sys_d, study_d, fc_d)

            def save(unit: Unit, ds, record: dict) -> None:
                try:
                    folder.save_unit(unit, ds, record)
                except UnitSaveError as exc:  # the run goes on; the unit goes elsewhere
                    report.save_errors.append(str(exc))
                    try:
                        report.rescue_dir = str(folder.rescue_unit(unit, ds, record))
                        report.rescued.append(unit.key)
                    except UnitSaveError as again:
                        report.save_errors.append(str(again))
                        report.lost.append(unit.key)
                report.computed += 1
                report.solver_seconds += record.get("solver_seconds", 0.0)
                report.peak_worker_memory_mb = max(
                    report.peak_worker_memory_mb, record.get("peak_memory_mb", 0.0)
                )
                log.info(
                    "unit %s: %s %s(%.1f s, HiGHS %.1f s, %s)",
                    unit.key,
                    record["status"],
                    f"{record['message']} " if record.get("message") else "",
                    record.get("wall_seconds", float("nan")),
                    record.get("solver_seconds", float("nan")),
                    record.get("worker", "-"),
                )
                for note in record.get("library_log", ()):
                    log.warning("unit %s: %s", unit.key, note)

            try:
                _compute_units(ex, graph, chains, save, progress, log)
            except KeyboardInterrupt:
                report.interrupted = True
                _mark(folder, "interrupted")
                log.info("interrupted: %d units kept", len(folder.finished(quiet=True)))
                raise
            finally:
                if ex.client is None:  # models kept in this process are not needed now
                    clear_slots()
    if report.save_errors:
        _mark(folder, "failed")
        raise UnitSaveError(report.save_line(folder))
    records = folder.records()
    for key, rec in records.items():
        if rec.get("status") not in SOLVED_STATUSES:
            report.failed[key] = (rec.get("status"), rec.get("message", ""))
    _mark(folder, "failed" if folder.failed_units() else "computed")
    out = contract_layout(folder.assemble(study), study)
    if not out.attrs.get("all_failed"):
        out.attrs["scenario_method"] = study.scenarios.method
        out.attrs["data_sources"] = data_description(study)
        out.attrs["forecast_fit_seconds"] = round(fit_seconds, 2)
        out.attrs.update(calibration_attrs(records, study.resolution.second_stage_minutes))
    return out


def calibration_attrs(records: dict[str, dict], minutes: int) -> dict[str, float]:
    """``calibration_<resource>_<figure>`` attributes: the mean over the study's days.

    Each unit's record holds its day's figures
    (:func:`workbench.scenarios.scenario_set_calibration`); the models of one day share
    its scenarios, so each day counts once.
    """
    by_day = {}
    for rec in records.values():
        if rec.get("calibration"):
            by_day.setdefault(rec.get("day"), rec["calibration"])
    values: dict[str, list[float]] = {}
    for day_figures in by_day.values():
        for resource, figures in day_figures.items():
            for name, value in figures.items():
                if value is not None and np.isfinite(value):
                    values.setdefault(f"calibration_{resource}_{name}", []).append(float(value))
    out = {key: round(float(np.mean(v)), 4) for key, v in sorted(values.items())}
    if out:
        out["calibration_minutes"] = minutes
    return out
