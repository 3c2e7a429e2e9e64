"""The short way in: a study object and one ``run`` call that returns the results.

>>> from workbench import Study, run
>>> study = Study.from_yaml("default").replace(n_days=1, risk={"beta": 0.5})
>>> ds = run(study, out="results/mine.nc")  # doctest: +SKIP
>>> float(ds.expected_cost_eur.sum())  # doctest: +SKIP
>>> ds.objective_eur.sel(model="tso_managed").item()  # one day  # doctest: +SKIP

:func:`run` does what ``workbench run`` does around :func:`workbench.runner.run_study`:
it checks the study's forecast sources, the scheduler and the output path before any
work, records the study, seed, scheduler and package versions in the Dataset's
attributes and, when ``out`` is given, writes the file (to a temporary name, then renamed).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import xarray as xr

from cases.study import StudyConfig, load_study
from workbench.results import annotate, check_output, write_results
from workbench.runner import check_scheduler, run_study
from workbench.scenarios import check_forecast_sources

__all__ = ["Study", "run"]

#: the study definition: :class:`cases.study.StudyConfig`, with ``from_yaml``,
#: ``replace`` and ``to_yaml``
Study = StudyConfig


class RunWarning(UserWarning):
    """Some model-day of a run has no optimal schedule (see ``solver_status``)."""


def _as_study(study: StudyConfig | str | os.PathLike) -> StudyConfig:
    if isinstance(study, StudyConfig):
        return study
    if isinstance(study, str | os.PathLike):
        return load_study(study)
    raise TypeError(
        f"study must be a Study, a YAML file path or a built-in study name, got "
        f"{type(study).__name__}; e.g. run(Study.from_yaml('default'))"
    )


def _scheduler(scheduler: Any) -> tuple[Any, str]:
    """``run``'s scheduler as :func:`workbench.runner.resolve_scheduler` takes it, and the
    name recorded in the results (``attrs["scheduler"]``)."""
    if scheduler == "local":
        return None, "LocalCluster"
    if isinstance(scheduler, str):
        return check_scheduler(scheduler), scheduler
    if hasattr(scheduler, "scheduler_info") and hasattr(scheduler, "submit"):
        return scheduler, f"distributed.Client({scheduler.scheduler.address})"
    raise TypeError(
        f"scheduler must be 'sync', 'local', a Dask scheduler address or a "
        f"distributed.Client, got {type(scheduler).__name__}"
    )


def run(
    study: StudyConfig | str | os.PathLike,
    *,
    scheduler: Any = "sync",
    workers: int | None = None,
    seed: int | None = None,
    out: str | os.PathLike | None = None,
    progress: bool = False,
) -> xr.Dataset:
    """Run every coordination model of a study on every day; return the results.

    Parameters
    ----------
    study : Study, path or str
        A study object, a study YAML file or the name of a built-in study
        (:func:`cases.builtin_studies`).
    scheduler : str or distributed.Client
        ``"sync"`` (default): one unit after the other in this process; ``"local"``: a
        Dask ``LocalCluster`` of ``workers`` processes, closed afterwards; ``"threads"``
        or ``"processes"``: Dask's local schedulers; an address (``tcp://host:8786``) of
        a running Dask scheduler; or a ``distributed.Client``, which stays open.
    workers : int, optional
        Workers of the ``LocalCluster`` (default: CPU count, at most 4).
    seed : int, optional
        Overrides the study's seed [-].
    out : path, optional
        Also write the results there (``.nc`` or ``.zarr``; a temporary name beside it,
        then renamed, so a failed write leaves an existing file as it was).
    progress : bool
        Show a progress bar on stderr.

    Returns
    -------
    xarray.Dataset
        In memory, in the layout of :func:`workbench.runner.run_study` and of the results
        file as :func:`workbench.results.read_results` gives it (``docs/results.md``,
        :mod:`workbench.contract`): dimensions ``model``, ``day``, ``scenario``, ``time``
        and ``period`` (timestamps on the study's clock, bounds ``time_bnds`` and
        ``period_bnds``), ``gen``, ``der``, ...; ``model`` and ``day`` stay dimensions
        with one entry too (``ds.objective_eur.item()`` for a one-model, one-day
        study). ``attrs`` hold the study
        (YAML), seed, scheduler and package versions. A model-day without an optimal
        schedule keeps its place with its ``solver_status`` and ``solver_message`` (and a
        :class:`RunWarning`).

    Raises
    ------
    StudyConfigError
        For a study file or name that cannot be loaded.
    ForecastError
        For a forecast source that does not exist.
    OutputError
        For an ``out`` that cannot take the results (a folder, a foreign ``.zarr``).
    ValueError, ConnectionError
        For a scheduler that is no address, or where no Dask scheduler answers.
    """
    cfg = _as_study(study)
    check_forecast_sources(cfg)
    if workers is not None and (isinstance(workers, bool) or workers < 1):
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    resolved, scheduler_name = _scheduler(scheduler)
    path = None if out is None else check_output(Path(out))
    used_seed = cfg.seed if seed is None else int(seed)
    ds = run_study(
        cfg,
        scheduler=resolved,
        workers=workers,
        seed=used_seed,
        progress=progress,
    )
    ds = annotate(ds, cfg, used_seed, scheduler_name)
    if path is not None:
        write_results(ds, path)
    failed = sorted({str(s) for s in ds["solver_status"].to_numpy().ravel()} - {"optimal"})
    if failed:
        warnings.warn(
            f"some model-day(s) have no optimal schedule ({', '.join(failed)}); see "
            "ds.solver_status and ds.solver_message",
            RunWarning,
            stacklevel=2,
        )
    return ds
