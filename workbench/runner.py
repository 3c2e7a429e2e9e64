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
import datetime as dt
import operator
import os
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import dask
import numpy as np
import pandas as pd
import xarray as xr
from dask.callbacks import Callback
from tqdm.auto import tqdm

from cases.study import StudyConfig
from cases.system import IntegratedSystem, build_system
from forecasts.generate import ScenarioForecaster
from stochastic.risk import CvarTailWarning, cvar_tail_message
from workbench.ac_check import ac_check, ac_sample, voltage_setpoints
from workbench.coordination import DayOutcome, coordination_model
from workbench.scenarios import check_forecast_sources, fit_study_forecaster
from workbench.threads import limit_threads

__all__ = ["Executor", "resolve_scheduler", "run_study"]

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
    """

    kind: str
    n_workers: int
    client: object | None
    description: str

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
def resolve_scheduler(scheduler=None, workers: int | None = None) -> Iterator[Executor]:
    """Resolve a scheduler specification into an :class:`Executor`.

    Parameters
    ----------
    scheduler : None, str or distributed.Client
        ``None``: start a ``LocalCluster`` (closed on exit); ``sync`` / ``threads`` /
        ``processes``: Dask's local schedulers; an address such as ``tcp://host:8786``
        (or ``host:port``): connect to that Dask scheduler; a ``Client``: use it.
    workers : int, optional
        Workers of the LocalCluster (default: CPU count, at most 4); ignored otherwise.

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
        with (
            LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=40,
            ) as cluster,
            Client(cluster) as client,
        ):
            yield Executor("distributed", n, client, f"LocalCluster with {n} workers")
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
        yield Executor("distributed", n, client, f"Dask scheduler at {address}")
    finally:
        client.close()


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


def _probe_scheduler(address: str, text: str) -> None:
    """Ask the scheduler at ``address`` who it is, within :data:`HANDSHAKE_SECONDS`.

    A port that accepts a connection but never answers would otherwise hold the run for
    minutes. The probe runs on its own event loop in a daemon thread, so it is bounded
    whether or not the caller has an event loop.
    """
    import asyncio
    import threading

    from distributed.comm import connect

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
    why = outcome.get("error") or (
        f"it did not answer within {HANDSHAKE_SECONDS:.0f} s"
        if thread.is_alive() or "reply" not in outcome
        else "it is not a Dask scheduler"
    )
    if isinstance(why, asyncio.TimeoutError | TimeoutError):
        why = f"it did not answer within {HANDSHAKE_SECONDS:.0f} s"
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
    vm, ok = voltage_setpoints(system, outcome.schedule, outcome.data)
    return xr.Dataset(
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
    return ac_check(system, outcome.data, outcome.schedule, scenarios, steps, vm_setpoints=vm)


def _relative_time(ds: xr.Dataset, day: dt.date) -> xr.Dataset:
    """Replace absolute time stamps by offsets from midnight (days stack on ``day``)."""
    start = np.datetime64(pd.Timestamp(day))
    return ds.assign_coords(time=ds.time.to_numpy() - start, period=ds.period.to_numpy() - start)


def _status_only(study, done: list[DayOutcome]) -> xr.Dataset:
    """The results of a study in which no model-day has a schedule: each model-day's
    status and message (attribute ``all_failed``)."""
    models = list(study.models)
    days = [np.datetime64(d) for d in study.days]
    status = np.full((len(models), len(days)), "failed", dtype=object)
    message = np.full((len(models), len(days)), "", dtype=object)
    for o in done:
        i, j = models.index(o.model), days.index(np.datetime64(o.day))
        status[i, j], message[i, j] = o.status, o.message
    ds = xr.Dataset(
        {
            "solver_status": (("model", "day"), status.astype(str)),
            "solver_message": (("model", "day"), message.astype(str)),
        },
        coords={"model": models, "day": days},
    )
    ds.attrs["all_failed"] = 1
    return ds


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


def _task_graph(study, days, seed, sample, n_workers, sys_d, study_d, fc_d) -> tuple:
    """Delayed tasks: per model and chunk of days one solve task, per model-day its
    set-point task and AC-check tasks over scenario batches.

    Returns the per-day outcomes and, per day, its list of AC tasks (empty with the
    AC check off).
    """
    # carried storage state chains the days: one chunk, solved in order
    rolling = study.model.storage_state == "carried"
    n_chunks = 1 if rolling else max(1, min(len(days), n_workers))
    chunks = [list(c) for c in np.array_split(np.array(days, dtype=object), n_chunks) if len(c)]
    n_s = study.scenarios.n_scenarios
    outcomes, ac_tasks = [], []
    for model in study.models:
        schedule_days = coordination_model(model).schedule_days
        for chunk in chunks:
            solved = dask.delayed(schedule_days, pure=False)(
                sys_d, study_d, chunk, seed, forecaster=fc_d
            )
            for i in range(len(chunk)):
                out = dask.delayed(operator.getitem, pure=True)(solved, i)
                outcomes.append(out)
                if not study.ac_check.enabled:
                    ac_tasks.append([])
                    continue
                batches = np.array_split(np.array(sample.scenarios(n_s)), min(n_workers, n_s))
                setpoints = dask.delayed(_setpoint_task, pure=False)(sys_d, out)
                checks = [
                    dask.delayed(_ac_task, pure=False)(
                        sys_d, out, [int(s) for s in b], sample.every_n_steps, setpoints
                    )
                    for b in batches
                    if len(b)
                ]
                ac_tasks.append([setpoints, *checks])
    return outcomes, ac_tasks


def run_study(
    study: StudyConfig,
    *,
    scheduler=None,
    workers: int | None = None,
    seed: int | None = None,
    progress: bool = True,
    system: IntegratedSystem | None = None,
    forecaster: ScenarioForecaster | None = None,
) -> xr.Dataset:
    """Run every coordination model of a study on every day, in parallel with Dask.

    Parameters
    ----------
    study : StudyConfig
    scheduler, workers
        See :func:`resolve_scheduler`.
    seed : int, optional
        Overrides the study's seed.
    progress : bool
        Show a progress bar.
    system : IntegratedSystem, optional
        A system already built from ``study``.
    forecaster : ScenarioForecaster, optional
        Forecasters already fitted for ``study`` (``scenarios.method: forecast``); fitted
        here (seeded with ``seed``) when missing.

    Returns
    -------
    xarray.Dataset
        Dimensions ``model``, ``day``, ``scenario``, ``time``, ``period``, ``gen``, ``der``,
        ``interface``, ``bus``, ``branch``; see ``docs/results.md``. When no model-day has
        a schedule, only ``solver_status`` and ``solver_message`` on (model, day), with the
        attribute ``all_failed``.
    """
    limit_threads()
    check_forecast_sources(study)
    message = cvar_tail_message(study.risk.alpha, study.scenarios.n_scenarios)
    if message is not None and study.risk.beta > 0:
        warnings.warn(message, CvarTailWarning, stacklevel=2)
    seed = study.seed if seed is None else seed
    system = system or build_system(study)
    sample = ac_sample(study.ac_check.every_n_steps, study.ac_check.max_scenarios)
    tick = time.perf_counter()
    fit = forecaster is None and study.scenarios.method == "forecast"
    if progress and fit:
        print(
            f"fitting forecasters of {len(study.forecast.sources.model_fields)} resources "
            f"on the history before {study.start_date} ...",
            file=sys.stderr,
            flush=True,
        )
    if fit:
        forecaster = fit_study_forecaster(study, seed)
    fit_seconds = time.perf_counter() - tick
    with resolve_scheduler(scheduler, workers) as ex:
        if ex.client is not None and forecaster is not None:
            # fitted models are tens of MB: send them to every worker once, not in the graph
            fc_d = ex.client.scatter(forecaster, broadcast=True, hash=False)
        else:
            fc_d = dask.delayed(forecaster, traverse=False)
        sys_d = dask.delayed(system, traverse=False)
        study_d = dask.delayed(study, traverse=False)
        outcomes, ac_tasks = _task_graph(
            study, study.days, seed, sample, ex.n_workers, sys_d, study_d, fc_d
        )
        flat = [t for tasks in ac_tasks for t in tasks]
        results = ex.compute([*outcomes, *flat], progress=progress, label="schedule + AC check")
    done = results[: len(outcomes)]
    ac_flat = iter(results[len(outcomes) :])
    ac_results = [[next(ac_flat) for _ in tasks] for tasks in ac_tasks]
    per_model: dict[str, list] = {m: [] for m in study.models}
    days_ds = [
        _day_dataset(o, ac, None) if o.schedule is not None else None
        for o, ac in zip(done, ac_results, strict=True)
    ]
    template = next((d for d in days_ds if d is not None), None)
    for outcome, ac, ds in zip(done, ac_results, days_ds, strict=True):
        if ds is None:
            ds = _day_dataset(outcome, ac, template)
        if ds is not None:
            per_model[outcome.model].append(ds.expand_dims(day=[np.datetime64(outcome.day)]))
    stacked = []
    for model, items in per_model.items():
        if items:
            stacked.append(
                xr.concat(
                    items, dim="day", join="outer", data_vars="all", combine_attrs="drop_conflicts"
                ).expand_dims(model=[model])
            )
    if not stacked:  # nothing solved: the status of every model-day is still a result
        return _status_only(study, done)
    out = xr.concat(
        stacked, dim="model", join="outer", data_vars="all", combine_attrs="drop_conflicts"
    )
    out.attrs["scenario_method"] = study.scenarios.method
    out.attrs["forecast_fit_seconds"] = round(fit_seconds, 2)
    return out
