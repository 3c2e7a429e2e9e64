"""Command line: ``workbench run | forecast | evaluate | compare | cases | opf | flexibility``.

User mistakes (bad study files, unknown cases, impossible options) print one line
starting with ``error:`` and exit with code 2; nothing already written is removed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import sys
import time
import warnings
from pathlib import Path

import click

from stochastic.status import SOLVED_STATUSES
from workbench.threads import limit_threads

# Only click and light modules at the top: `workbench --help` and `--version` must not load
# pandapower, Pyomo, xarray or Dask. Each command imports what it uses.

__all__ = ["main"]


def _user_errors() -> tuple[type[Exception], ...]:
    """The exception types that are user mistakes (one ``error:`` line, exit code 2)."""
    from cases.errors import CaseError, StudyConfigError
    from forecasts.errors import ForecastError
    from workbench.results import OutputError

    return (CaseError, StudyConfigError, ForecastError, ConnectionError, OutputError)


def _solver_error() -> type[Exception]:
    from stochastic.solve import SolverError

    return SolverError


def check_output(path: str | Path) -> Path:
    """:func:`workbench.results.check_output`, imported when a command writes results."""
    from workbench.results import check_output as check

    return check(path)


def _quiet_libraries() -> None:
    """Library log records below errors stay off the terminal (a run's go to its log);
    third-party warnings a user cannot act on are filtered one by one."""
    from workbench.console import filter_known_noise

    logging.getLogger("pandapower").setLevel(logging.ERROR)
    logging.getLogger("distributed").setLevel(logging.ERROR)
    logging.getLogger("pyomo").setLevel(logging.ERROR)
    filter_known_noise()


def _load(study: str, days: bool = True):
    """Load a study file (or built-in name) and check what ``cases`` cannot check alone
    (the data sources and, with ``days``, the days they cover)."""
    from cases.study import load_study
    from workbench.scenarios import check_forecast_sources

    cfg = load_study(study)
    check_forecast_sources(cfg, days=days)
    return cfg


def _model_aliases() -> dict[str, str]:
    """The coordination models' names on the command line: short name or full -> full."""
    from cases.study import MODEL_SHORT_NAMES

    return {short: full for full, short in MODEL_SHORT_NAMES.items()} | {
        full: full for full in MODEL_SHORT_NAMES
    }


def _model_names(text: str) -> tuple[str, ...]:
    """``--models`` as coordination model names (``all`` or a comma-separated list)."""
    from cases.study import COORDINATION_MODELS

    if text.strip() == "all":
        return tuple(COORDINATION_MODELS)
    aliases = _model_aliases()
    names = [t.strip() for t in text.split(",") if t.strip()]
    bad = [n for n in names if n not in aliases]
    if bad or not names:
        raise click.BadParameter(
            f"unknown model(s) {bad or [text]}; use {', '.join(aliases)} or all",
            param_hint="--models",
        )
    full = tuple(dict.fromkeys(aliases[n] for n in names))
    return full


def _check_scheduler(scheduler: str | None) -> None:
    """A ``--scheduler`` that is no address, or where no scheduler answers, is one error
    line before any work."""
    if scheduler is None:
        return
    from workbench.runner import check_scheduler

    try:
        check_scheduler(scheduler)
    except ValueError as exc:
        message = str(exc).removeprefix("--scheduler ")
        raise click.BadParameter(message, param_hint="--scheduler") from None


def _write_or_rescue(
    ds, out: Path, kept: str | None = None, refused: str | None = None
) -> tuple[Path, bool]:
    """Write the results to ``out``; when that fails (disk full, permissions changed during
    the run, ...) or is ``refused`` (why not), to a new folder in the system's temporary
    directory instead, saying so, so that the computation is not lost. Returns the path
    and whether it is the rescue copy; exits with 1 if both fail, after the line ``kept``
    (where the computation still is)."""
    import tempfile

    from workbench.results import OutputError, write_results

    try:
        if refused is not None:
            raise OutputError(refused)
        return write_results(ds, out), False
    except Exception as exc:  # whatever failed, the computation is written elsewhere
        click.echo(f"error: could not write '{out}': {exc}", err=True)
        # netCDF: the other writer, in case the failure was the format's
        rescue = Path(tempfile.mkdtemp(prefix="workbench-rescue-")) / f"{out.stem}.nc"
        try:
            path = write_results(ds, rescue)
        except Exception as again:
            click.echo(f"error: could not write a copy to '{rescue}' either: {again}", err=True)
            shutil.rmtree(rescue.parent, ignore_errors=True)  # the empty folder made above
            if kept:
                click.echo(f"error: {kept}", err=True)
            sys.exit(1)
        click.echo(f"error: the results were written to '{path}' instead", err=True)
        return path, True


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """``--version``: the workbench's and its key dependencies' versions, then exit."""
    if not value or ctx.resilient_parsing:
        return
    from workbench.console import version_text

    click.echo(version_text())
    ctx.exit()


def _verbose() -> bool:
    """Whether ``--verbose`` was given, before the command or after it."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx and (ctx.find_root().params.get("verbose") or ctx.meta.get("verbose")))


def _remember_verbose(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta["verbose"] = True


#: ``-v`` / ``--verbose`` after a command too (``workbench run STUDY -v``)
_verbose_option = click.option(
    "-v",
    "--verbose",
    is_flag=True,
    expose_value=False,
    callback=_remember_verbose,
    help="More detail on stderr (same as `workbench -v`).",
)


@contextlib.contextmanager
def _one_line_warnings():
    """Inside: a warning that reaches the terminal is one line, ``warning: <message>``."""
    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = " ".join(str(message).split())
        click.echo(f"warning: {text}", err=True)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the versions of the workbench and its key dependencies and exit.",
)
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="More detail on stderr: one line per unit with its solver summary, the phases.",
)
def cli(verbose: bool) -> None:
    """Stochastic day-ahead scheduling under TSO-DSO coordination."""


@cli.command()
@click.argument("study", required=False, default=None)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=True, path_type=Path),
    default=None,
    help="Result file (.nc or .zarr); default results/<study name>.nc.",
)
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Workers of the local Dask cluster (default: CPU count, at most 4).",
)
@click.option(
    "--scheduler",
    default=None,
    metavar="ADDRESS",
    help="Address of an existing Dask scheduler (tcp://host:8786), or sync/threads.",
)
@click.option(
    "--seed", type=click.IntRange(min=0), default=None, help="Override the study's random seed."
)
@click.option(
    "--models",
    default=None,
    metavar="LIST",
    help="Coordination models to run, comma-separated (tso, hybrid, dso, variants "
    "hybrid:prevalidation, dso:local_market, dso:target) or 'all'; default: the "
    "study's 'models'.",
)
@click.option(
    "--run-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder for the finished units and the log; default: the result's name with "
    ".run (results/<study>.run).",
)
@click.option(
    "--resume",
    type=click.Path(path_type=Path),
    default=None,
    metavar="RUN_DIR",
    help="Continue an interrupted run from its run folder: only missing units are computed.",
)
@click.option(
    "--keep-units",
    is_flag=True,
    help="Keep the unit files after the result is written (always kept while a unit failed).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace an existing result file that this run did not write (an explicit --out "
    "says the same for its file).",
)
@click.option(
    "--dashboard", is_flag=True, help="Serve the local Dask dashboard and print its link."
)
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
@click.option("--no-plots", is_flag=True, help="Do not write PNG plots.")
@_verbose_option
def run(
    study: str | None,
    out: Path | None,
    workers: int | None,
    scheduler: str | None,
    seed: int | None,
    models: str | None,
    run_dir: Path | None,
    resume: Path | None,
    keep_units: bool,
    force: bool,
    dashboard: bool,
    no_progress: bool,
    no_plots: bool,
) -> None:
    """Run a study (a YAML file or a built-in study name; default: the default study).

    Each finished unit (one model on one day) is written to the run folder at once;
    after Ctrl-C, a failure or a lost machine, `workbench run --resume RUN_DIR` computes
    only the missing units.
    """
    from workbench.rundir import RunFolder
    from workbench.runner import RunReport, run_study

    if workers is not None and workers < 1:
        raise click.BadParameter(
            f"must be a positive integer, got {workers}", param_hint="--workers"
        )
    _check_scheduler(scheduler)
    cfg, folder, out, used_seed, replace_out = _run_folder(
        study, out, seed, models, run_dir, resume, force
    )
    tick = time.perf_counter()
    try:
        system = _announce(cfg)
        if not isinstance(folder, RunFolder):  # created once the study's system is built
            folder = RunFolder.create(
                folder,
                cfg,
                used_seed,
                out,
                study_file=_study_file(study),
                replace_out=replace_out,
            )
    except BaseException:
        if isinstance(folder, RunFolder):
            folder.release()
        raise
    click.echo(f"run folder: {folder.path} (log: {folder.path / 'run.log'})")
    _log_to_terminal(folder)
    report = RunReport()
    try:
        with _terminate_as_interrupt():
            ds = run_study(
                cfg,
                scheduler=scheduler,
                workers=workers,
                seed=used_seed,
                progress=not no_progress,
                system=system,
                run_dir=folder,
                dashboard=dashboard,
                report=report,
            )
            try:
                _finish_run(
                    ds, cfg, used_seed, scheduler, folder, out, report, keep_units, no_plots, tick
                )
            finally:
                _log_beside_results(folder)
    except KeyboardInterrupt:  # during the run or while the result is written
        if folder.manifest.get("state") == "complete":
            click.echo(f"interrupted: the results are written to {folder.out}", err=True)
            sys.exit(130)
        kept = len(folder.finished(quiet=True))
        click.echo(
            f"interrupted: {kept} of {report.units or len(folder.manifest['units'])} units "
            f"are kept in {folder.path}; resume with: workbench run --resume {folder.path}",
            err=True,
        )
        sys.exit(130)
    finally:
        folder.release()


def _study_file(study: str | None) -> Path | None:
    """The study file a run starts from (None for a built-in study's name)."""
    path = Path(study or "default")
    return path if path.is_file() else None


def _log_to_terminal(folder) -> None:
    """With ``--verbose``, the run log's lines (units, solver summaries, phases) on stderr."""
    if not _verbose():
        return
    log = folder.logger()
    if not any(getattr(h, "_workbench_terminal", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("log: %(message)s"))
        # the study's configuration stays in the file; phases have their own lines
        handler.addFilter(lambda r: "\n" not in r.getMessage() and not hasattr(r, "phase"))
        handler._workbench_terminal = True
        log.addHandler(handler)


def _log_beside_results(folder) -> None:
    """Copy the run log beside the written results (``results/x.nc`` -> ``results/x.log``).

    Only once the results are written: an interrupted or failed run keeps the previous
    log of that result, and its own stays in the run folder.
    """
    import os

    if folder.manifest.get("state") != "complete" or folder.out is None:
        return
    source = folder.path / "run.log"
    target = folder.out.with_suffix(".log")
    if not source.is_file():
        return
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        click.echo(f"warning: could not copy the run log to '{target}': {exc}", err=True)
        return
    click.echo(f"log:     {target}")


def _run_folder(study, out, seed, models, run_dir, resume, force):
    """The study, run folder (resumed, or the path of a new one), result path, seed and
    whether the run may replace an existing result file it did not write, all checked
    before any work.

    A result file that exists is replaced only when the user says so: ``--out`` names it,
    or ``--force``; a resume writes only where its run said it would (or to ``--out``)."""
    from workbench.rundir import RunFolder, default_run_dir

    if resume is None:
        cfg = _load(study or "default")
        if models is not None:
            cfg = cfg.model_copy(update={"models": _model_names(models)})
        replace_out = out is not None or force
        out = check_output(out or Path("results") / f"{cfg.name}.nc")
        _check_replace(out, None, replace_out)
        used_seed = cfg.seed if seed is None else seed
        folder = run_dir or default_run_dir(out)
        RunFolder.check_new(folder)
        return cfg, folder, out, used_seed, replace_out
    given = [
        n
        for n, v in (
            ("STUDY", study),
            ("--seed", seed),
            ("--models", models),
            ("--run-dir", run_dir),
        )
        if v is not None
    ]
    if given:
        raise click.UsageError(
            f"--resume continues the run folder's own study; leave out {', '.join(given)}"
        )
    folder = RunFolder.open(resume)
    try:
        if folder.manifest.get("command", "run") != "run":
            raise click.UsageError(
                f"'{resume}' holds a `workbench {folder.manifest['command']}` run; resume it "
                f"with `workbench {folder.manifest['command']} --resume {resume}`"
            )
        if folder.manifest.get("state") == "complete":
            raise click.UsageError(
                f"the run in '{resume}' finished (results: {folder.out}); start a new run "
                "instead of --resume"
            )
        if out is None and folder.out is None:
            raise click.UsageError(
                f"the run in '{resume}' was started without a results file (from Python); "
                "give --out FILE.nc to write its results there"
            )
        replace_out = out is not None or force or bool(folder.manifest.get("replace_out"))
        out = check_output(out or folder.out)
        _check_replace(out, folder.run_id, replace_out)
        cfg = folder.study()
        if folder.study_file_changed():
            click.echo(
                f"note: '{folder.manifest['study_file']}' changed since the run started; "
                f"the run goes on with the study it started with (kept in '{resume}'); "
                "start a new run to use the edited file",
                err=True,
            )
        folder.mark("running", out=str(out.resolve()), replace_out=replace_out)
    except BaseException:
        folder.release()
        raise
    return cfg, folder, out, folder.seed, replace_out


def _check_replace(out: Path, run_id: str | None, allowed: bool) -> None:
    """Refuse (one line) to replace an existing result file that the run ``run_id`` did
    not write, unless the user allowed it (``--out`` or ``--force``)."""
    from workbench.results import written_by_run

    if allowed or not (out.exists() or out.is_symlink()):
        return
    if run_id is not None and written_by_run(out) == run_id:
        return
    raise click.UsageError(
        f"result file '{out}' exists and this run did not write it; give --force to replace "
        "it, or --out another file"
    )


def _announce(cfg):
    """Build the study's system and print one line about it (and the CVaR tail warning)."""
    from cases.system import build_system
    from stochastic.risk import CvarTailWarning, cvar_tail_message

    system = build_system(cfg)
    message = cvar_tail_message(cfg.risk.alpha, cfg.scenarios.n_scenarios)
    if message is not None and cfg.risk.beta > 0:
        click.echo(f"warning: {message}", err=True)
    warnings.filterwarnings("ignore", category=CvarTailWarning)
    fleet = system.fleet
    click.echo(
        f"study '{cfg.name}': {cfg.transmission.network} with {len(system.feeders)} feeders "
        f"({', '.join(f'{f.name}={f.network} x{f.copies:.2f}' for f in system.feeders)}), "
        f"{len(fleet.pv)} PV, {len(fleet.battery)} batteries, {len(fleet.ev)} EV chargers; "
        f"{cfg.n_days} day(s) from {cfg.start_date}, {cfg.scenarios.n_scenarios} scenarios, "
        f"{cfg.resolution.first_stage_minutes}/{cfg.resolution.second_stage_minutes} min"
    )
    return system


@contextlib.contextmanager
def _terminate_as_interrupt():
    """SIGTERM (a batch system's stop) ends the run like Ctrl-C: finished units are kept."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _finish_run(ds, cfg, seed, scheduler, folder, out, report, keep_units, no_plots, tick):
    """Write the assembled results, then free the unit files; summary, plots, exit code."""
    from workbench.contract import to_internal
    from workbench.plots import write_plots
    from workbench.results import annotate, read_results, summary_table, written_by_run

    ds = annotate(ds, cfg, seed, scheduler or "LocalCluster", run_id=folder.run_id)
    kept = (
        f"nothing is lost: every unit is in {folder.path}; once the result can be written, "
        f"write it with: workbench run --resume {folder.path}"
    )
    refused = None
    if (
        (out.exists() or out.is_symlink())
        and not folder.manifest.get("replace_out")
        and written_by_run(out) != folder.run_id
    ):  # another run wrote it while this one computed
        refused = f"'{out}' appeared during the run and this run did not write it"
    path, rescued = _write_or_rescue(ds, out, kept, refused)
    failed_units = folder.failed_units()
    if rescued:
        click.echo(f"error: {kept.split(';')[0]}", err=True)
    elif failed_units:  # a resume computes them again: the units stay
        folder.mark("failed", out=str(path.resolve()))
        folder.close()
    else:
        folder.mark("complete", out=str(path.resolve()))
        folder.close()
        if not keep_units:
            folder.remove_units()
    log = folder.logger()
    log.info("results: %s", path)
    if ds.attrs.get("all_failed"):
        ds = to_internal(ds)
        causes = "; ".join(
            f"{str(d)[:10]} {m}: {ds.solver_message.sel(model=m, day=d).item() or 'failed'}"
            for m in ds.model.values
            for d in ds.day.values
        )
        click.echo(f"error: no model-day has a schedule ({causes}); status in {path}", err=True)
        sys.exit(1)
    ds = read_results(path)
    click.echo(summary_table(ds))
    click.echo(f"results: {path}")
    if not no_plots:
        plotted = write_plots(ds, path.parent, path.stem)
        for p in plotted.paths:
            click.echo(f"plot:    {p}")
        for note in plotted.skipped:
            click.echo(f"plot:    skipped {note}")
    for line in report.lines():
        click.echo(line)
    click.echo(f"wall time {time.perf_counter() - tick:.1f} s")
    folder.close_log()
    failed = [
        str(x) for x in ds["solver_status"].to_numpy().ravel() if str(x) not in SOLVED_STATUSES
    ]
    if rescued:
        sys.exit(1)
    if failed:
        click.echo(
            f"error: {len(failed)} model-day(s) have no optimal schedule "
            f"({', '.join(sorted(set(failed)))}); see 'solver_message' in {path}",
            err=True,
        )
    if failed_units:
        click.echo(
            f"error: {len(failed_units)} unit(s) failed with an error (not a modelling "
            f"outcome: {', '.join(failed_units)}); every other unit is kept in {folder.path}; "
            f"compute the failed ones again with: workbench run --resume {folder.path}",
            err=True,
        )
    if failed or failed_units:
        sys.exit(1)


@cli.command()
@click.argument("study", required=False, default="default")
@click.option(
    "--evaluate",
    is_flag=True,
    help="Score out-of-sample forecasts of PV, load (day-ahead, 1 h) and EV charging "
    "against climatology and persistence instead of writing the study's scenarios.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=True, path_type=Path),
    default=None,
    help="Result file (.nc or .zarr); default results/<study>_forecast.nc "
    "(with --evaluate: results/<study>_forecast_scores.nc).",
)
@click.option(
    "--seed", type=click.IntRange(min=0), default=None, help="Override the study's random seed."
)
@click.option(
    "--test-day-step",
    type=click.IntRange(min=1, max=28),
    default=None,
    help="With --evaluate: score every n-th held-out day (default from the study).",
)
@click.option("--no-plots", is_flag=True, help="Do not write PNG plots.")
@click.option(
    "--force", is_flag=True, help="Replace an existing default result file (as --out does)."
)
def forecast(
    study: str,
    evaluate: bool,
    as_json: bool,
    out: Path | None,
    seed: int | None,
    test_day_step: int | None,
    no_plots: bool,
    force: bool,
) -> None:
    """Probabilistic forecasts of a study: scenario sets at 5-60 min, or their scores."""
    # scenario sets check the days with the history they need; scores use their own days
    cfg = _load(study, days=False)
    used_seed = cfg.seed if seed is None else seed
    suffix = "_forecast_scores.nc" if evaluate else "_forecast.nc"
    replace = out is not None or force
    out = check_output(out or Path("results") / f"{cfg.name}{suffix}")
    _check_replace(out, None, replace)
    tick = time.perf_counter()

    def say(message: str) -> None:
        click.echo(message, err=as_json)

    def step(what: str) -> None:
        say(f"[{time.perf_counter() - tick:6.1f} s] {what}")

    if evaluate:
        _forecast_evaluation(cfg, used_seed, out, test_day_step, as_json, no_plots, say, step)
    else:
        _forecast_scenarios(cfg, used_seed, out, as_json, no_plots, say, step)
    say(f"wall time {time.perf_counter() - tick:.1f} s")


def _forecast_scenarios(cfg, seed, out, as_json, no_plots, say, step) -> None:
    from workbench.forecasting import study_forecast
    from workbench.plots import plot_forecast_fan
    from workbench.results import write_results

    ds = study_forecast(cfg, seed, progress=step)
    path = write_results(ds, out)
    energy = ds["value_60min_pu"].sum("time_60min")  # pu h per day
    expected = (energy * ds["weight"]).sum("scenario")
    summary = {
        str(r): {
            "expected_pu_h_per_day": [float(v) for v in expected.sel(resource=r).to_numpy()],
            "min_pu_h_per_day": [float(v) for v in energy.sel(resource=r).min("scenario")],
            "max_pu_h_per_day": [float(v) for v in energy.sel(resource=r).max("scenario")],
        }
        for r in ds.resource.to_numpy()
    }
    if as_json:
        click.echo(
            json.dumps(
                {"file": str(path), "days": [str(d.date()) for d in ds.day.to_index()], **summary}
            )
        )
    else:
        say(f"{'resource':<20} energy per day [pu h]: expected (scenario min .. max)")
        for r, v in summary.items():
            cells = "  ".join(
                f"{e:7.3f} ({lo:.3f} .. {hi:.3f})"
                for e, lo, hi in zip(
                    v["expected_pu_h_per_day"],
                    v["min_pu_h_per_day"],
                    v["max_pu_h_per_day"],
                    strict=True,
                )
            )
            say(f"{r:<20} {cells}")
    say(f"results: {path}")
    if not no_plots:
        fan = plot_forecast_fan(ds, path.with_name(f"{path.stem}_fan.png"))
        say(f"plot:    {fan}")


def _forecast_evaluation(cfg, seed, out, test_day_step, as_json, no_plots, say, step) -> None:
    from forecasts.evaluate import scores_table
    from workbench.forecasting import scores_dataset, study_evaluation
    from workbench.plots import plot_evaluation
    from workbench.results import write_results

    scores, details = study_evaluation(
        cfg, seed, test_day_step=test_day_step, keep_forecasts=not no_plots, progress=step
    )
    ds = scores_dataset(scores, {"study": cfg.name, "seed": seed})
    path = write_results(ds, out)
    _warn_small_sample(scores)
    if as_json:
        click.echo(json.dumps({k: s.as_dict() for k, s in scores.items()}))
    else:
        say(scores_table(scores))
    say(f"results: {path}")
    if not no_plots:
        figure = plot_evaluation(scores, details, path.with_name(f"{path.stem}.png"))
        say(f"plot:    {figure}")


def _warn_small_sample(scores) -> None:
    """One ``warning:`` line on stderr when the held-out sample leaves the skill uncertain."""
    from forecasts.evaluate import small_sample_warning

    message = small_sample_warning(scores)
    if message is not None:
        click.echo(f"warning: {message}", err=True)


@cli.command()
@click.argument("results", type=click.Path(path_type=Path), required=False)
@click.option(
    "--scenarios",
    "n_scenarios",
    type=click.IntRange(min=2, max=10000),
    default=None,
    help="Fresh scenarios per day.  [default: 30]",
)
@click.option(
    "--reserve-rule",
    default=None,
    metavar="RULE",
    help="Reserve of the operators' baseline plan (a mean-scenario schedule): "
    "quantile:Q (the Q quantile of the in-sample net-load deviation), largest_unit, or "
    "fixed:MW.  [default: quantile:0.95]",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Local Dask workers.")
@click.option(
    "--scheduler",
    default=None,
    metavar="ADDRESS",
    help="Address of an existing Dask scheduler (tcp://host:8786), or sync/threads.",
)
@click.option(
    "--run-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder for the finished units; default: the results' name with .evaluate.",
)
@click.option(
    "--resume",
    type=click.Path(path_type=Path),
    default=None,
    metavar="RUN_DIR",
    help="Continue an interrupted evaluation from its run folder: only missing units are computed.",
)
@click.option(
    "--batch-scenarios",
    type=click.IntRange(min=1),
    default=None,
    help="Scenarios per unit (default: the fresh scenarios over the workers).",
)
@click.option("--no-wait-and-see", is_flag=True, help="Skip the wait-and-see solves (no EVPI).")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def evaluate(
    results: Path | None,
    n_scenarios: int | None,
    reserve_rule: str | None,
    as_json: bool,
    workers: int | None,
    scheduler: str | None,
    run_dir: Path | None,
    resume: Path | None,
    batch_scenarios: int | None,
    no_wait_and_see: bool,
    no_progress: bool,
) -> None:
    """Out-of-sample evaluation of a results file: fresh scenarios, VSS, EVPI.

    The day-ahead decisions of RESULTS are fixed and the recourse is solved on fresh
    scenarios from the same forecaster; beside them the expected-value plan (VSS) and a
    mean-scenario plan with reserve sized by a rule (VSS against the rule), and the
    wait-and-see solutions (EVPI in sample, the gap out of sample). The evaluation is
    added to RESULTS. Each finished unit (a plan or a batch of scenarios of a model-day)
    is kept in the run folder; after Ctrl-C, `workbench evaluate --resume RUN_DIR`
    computes only the missing ones.
    """
    from workbench.contract import to_contract, to_internal
    from workbench.evaluation import (
        DEFAULT_RESERVE_RULE,
        EvaluationReport,
        default_evaluation_dir,
        evaluate_results,
    )
    from workbench.results import write_results

    wait_and_see = not no_wait_and_see
    if resume is not None:
        given = [
            n
            for n, v in (
                ("RESULTS", results),
                ("--scenarios", n_scenarios),
                ("--reserve-rule", reserve_rule),
                ("--run-dir", run_dir),
                ("--batch-scenarios", batch_scenarios),
            )
            if v is not None
        ] + (["--no-wait-and-see"] if no_wait_and_see else [])
        kept = _resumed_evaluation(resume, given)
        results = Path(kept["results"])
        n_scenarios, reserve_rule = kept["n_scenarios"], kept["reserve_rule"]
        wait_and_see, batch_scenarios = kept["wait_and_see"], kept["batch_scenarios"]
        run_dir = resume
    if results is None:
        raise click.UsageError("give RESULTS (a results file) or --resume RUN_DIR")
    n_scenarios = 30 if n_scenarios is None else n_scenarios
    reserve_rule = DEFAULT_RESERVE_RULE if reserve_rule is None else reserve_rule
    ds = _evaluation_input(results, reserve_rule)
    _check_scheduler(scheduler)
    run_dir = run_dir or default_evaluation_dir(results)
    report = EvaluationReport()
    try:
        with _terminate_as_interrupt():
            out = evaluate_results(
                to_internal(ds),
                n_scenarios=n_scenarios,
                scheduler=scheduler,
                workers=workers,
                progress=not no_progress,
                wait_and_see=wait_and_see,
                reserve_rule=reserve_rule,
                run_dir=run_dir,
                results_path=results,
                batch_scenarios=batch_scenarios,
                report=report,
            )
            out = out.load()
            ds.close()
            write_results(to_contract(out), results)
    except KeyboardInterrupt:
        _evaluation_interrupted(run_dir, report)
    _evaluation_finished(out, report, results, run_dir, as_json)


def _resumed_evaluation(resume: Path, given: list[str]) -> dict:
    """The settings an unfinished evaluation in the run folder ``resume`` was started
    with; one usage error for options given beside ``--resume`` or a folder that cannot
    be resumed from the command line."""
    from workbench.rundir import RunFolder

    if given:
        raise click.UsageError(
            f"--resume continues the evaluation's own settings; leave out {', '.join(given)}"
        )
    manifest = RunFolder.read_manifest(resume)
    if manifest is None or manifest.get("command") != "evaluate":
        raise click.BadParameter(
            f"'{resume}' is no run folder of `workbench evaluate`", param_hint="--resume"
        )
    if manifest.get("state") == "complete":
        raise click.UsageError(
            f"the evaluation in '{resume}' finished; start a new one instead of --resume"
        )
    kept = manifest.get("settings", {})
    if not kept.get("results"):
        raise click.UsageError(
            f"the evaluation in '{resume}' was started from Python without a results "
            "file; resume it from Python"
        )
    return kept


def _evaluation_input(results: Path, reserve_rule: str):
    """The results file to evaluate, read once the reserve rule and the file's name are
    known to serve (one parameter error otherwise)."""
    from workbench.evaluation import parse_reserve_rule
    from workbench.results import CORE_VARIABLES, read_results

    try:
        parse_reserve_rule(reserve_rule)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--reserve-rule") from None
    if results.suffix.lower() not in (".nc", ".zarr"):
        raise click.BadParameter(f"'{results}' must end in .nc or .zarr", param_hint="RESULTS")
    try:
        return read_results(results, require=(*CORE_VARIABLES, "first_stage_value"))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="RESULTS") from None


def _evaluation_interrupted(run_dir: Path, report) -> None:
    """Say how many units Ctrl-C left in the run folder and how to resume; exit 130."""
    from workbench.rundir import RunFolder

    manifest = RunFolder.read_manifest(run_dir) or {}
    folder = RunFolder(Path(run_dir), manifest) if manifest else None
    kept = len(folder.finished(quiet=True)) if folder is not None else 0
    click.echo(
        f"interrupted: {kept} of {report.units or len(manifest.get('units', []))} units "
        f"are kept in {run_dir}; resume with: workbench evaluate --resume {run_dir}",
        err=True,
    )
    sys.exit(130)


def _evaluation_finished(out, report, results: Path, run_dir: Path, as_json: bool) -> None:
    """Mark a complete evaluation's folder (its units merged into the results), print the
    summary; exit 1 naming the units that failed, which stay to be resumed."""
    from workbench.evaluation import evaluation_summary
    from workbench.rundir import RunFolder

    if not report.errors:
        folder = RunFolder.open(run_dir)
        try:
            folder.mark("complete")
            folder.remove_units()
        finally:
            folder.release()
    summary = evaluation_summary(out)
    summary["units"] = {
        "total": report.units,
        "computed": report.computed,
        "resumed": report.resumed,
        "errors": len(report.errors),
    }
    if as_json:
        click.echo(json.dumps(summary))
    else:
        _print_evaluation(summary, results)
    if report.errors:
        click.echo(
            f"error: {len(report.errors)} unit(s) failed with an error "
            f"({', '.join(sorted(report.errors))}); the others are kept in {run_dir}; "
            f"compute the failed ones again with: workbench evaluate --resume {run_dir}",
            err=True,
        )
        sys.exit(1)


def _print_evaluation(summary: dict, results: Path) -> None:
    """The evaluation summary as lines for the terminal."""
    oos, ins = summary["out_of_sample"], summary["in_sample"]

    def eur(x):
        return "n/a" if x is None else f"{x:,.0f} EUR"

    def items(split):
        if not split:
            return ""
        top = sorted(split.items(), key=lambda kv: -abs(kv[1]))[:4]
        return " (" + ", ".join(f"{k} {v:+,.0f}" for k, v in top if abs(v) >= 0.5) + ")"

    click.echo(
        f"out of sample: {oos['feasible']} of {oos['scenarios']} fresh scenarios feasible; "
        f"E[cost] {eur(oos['expected_cost_eur'])}, CVaR {eur(oos['cvar_eur'])}, "
        f"shed {oos['load_shed_mwh'] or 0:.2f} MWh, curtailed {oos['curtailment_mwh'] or 0:.2f} MWh"
    )
    click.echo(
        f"in sample:     E[cost] {eur(ins['expected_cost_eur'])}, CVaR {eur(ins['cvar_eur'])}"
    )
    click.echo(
        f"VSS {eur(summary['vss_eur'])}{items(summary['vss_by_item_eur'])}, in sample "
        f"{eur(summary['vss_in_sample_eur'])}"
    )
    click.echo(
        f"VSS against reserve rule {summary['reserve_rule']}: "
        f"{eur(summary['vss_vs_rule_eur'])}{items(summary['vss_vs_rule_by_item_eur'])}, in "
        f"sample {eur(summary['vss_vs_rule_in_sample_eur'])}"
    )
    click.echo(
        f"EVPI (in sample) {eur(summary['evpi_eur'])}; out-of-sample gap to wait-and-see "
        f"{eur(summary['oos_gap_eur'])}"
    )
    click.echo(f"results: {results}")


@cli.command()
@click.argument("results", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.option("--no-plots", is_flag=True, help="Do not write PNG plots.")
def compare(results: Path, as_json: bool, no_plots: bool) -> None:
    """Compare the coordination models of a results file (one entry per model).

    Writes beside the file, unless --no-plots, <results>_compare_bars.png and per day
    <results>_compare_<day>_der.png, <results>_compare_<day>_voltages.png and (with a
    DSO-managed model) <results>_compare_<day>_regions.png.
    """
    from workbench.compare import compare_models, compare_table
    from workbench.contract import to_internal
    from workbench.results import CORE_VARIABLES, read_results

    try:
        ds = to_internal(read_results(results, require=CORE_VARIABLES))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="RESULTS") from None
    summary = compare_models(ds)
    click.echo(json.dumps(summary) if as_json else compare_table(summary))
    if not no_plots:
        from workbench.plots import write_comparison_plots

        for p in write_comparison_plots(ds, summary, Path(results)):
            click.echo(f"plot: {p}", err=as_json)


@cli.command()
@click.argument("results", type=click.Path(path_type=Path))
@click.option("--day", default=None, help="Only this day (YYYY-MM-DD); default: every day.")
@click.option(
    "--model", default=None, help="Only this model (e.g. hybrid, dso); default: every model."
)
@click.option(
    "--out-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder for the figures; default: beside RESULTS.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["png", "svg", "pdf"]),
    default="png",
    show_default=True,
    help="File format of the figures.",
)
@click.option("--per-unit", is_flag=True, help="Dispatch per TER unit and per feeder's DER type.")
@click.option(
    "--dpi",
    type=click.IntRange(50, 1200),
    default=110,
    show_default=True,
    help="Resolution of PNG files (300 for print); SVG and PDF keep text as text.",
)
@click.option(
    "--map-at",
    default=None,
    metavar="HH:MM",
    help="Network maps at this time (expected over scenarios); default: the worst of the day.",
)
def plot(
    results: Path,
    day: str | None,
    model: str | None,
    out_dir: Path | None,
    fmt: str,
    per_unit: bool,
    dpi: int,
    map_at: str | None,
) -> None:
    """Write the report figures of a results file, one file per figure, model and day.

    Figures, named <stem>_<model>_<day>_<figure>.<format>: demand (demand and net
    load), dispatch (per technology), uncertainty (scenario fans), interfaces (feeder
    P and Q), voltages (feeder envelopes), loading (most loaded branches),
    map-transmission and map-<feeder> (network maps coloured by voltage and loading),
    flexibility-<feeder> (P-Q region and cost curve of any model) and, for DSO-managed
    models, regions-<feeder> (the offered regions); without --model also
    <stem>_models.<format>, the models on one page.
    """
    from workbench.plots import write_plots
    from workbench.results import read_results

    try:
        ds = read_results(results)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="RESULTS") from None
    folder = out_dir if out_dir is not None else Path(results).parent
    if model is not None:
        model = _model_aliases().get(model, model)  # short names as in --models
    report = write_plots(ds, folder, Path(results).stem, model, day, fmt, per_unit, dpi, map_at)
    for p in report.paths:
        click.echo(f"plot: {p}")
    for note in report.skipped:
        click.echo(f"skipped {note}")


@cli.command()
def cases() -> None:
    """List built-in networks and studies."""
    from cases.networks import FEEDER_ALIASES, builtin_case_names
    from cases.simbench import FEEDER_LEVELS, simbench_feeder_codes
    from cases.study import builtin_studies, load_study

    names = [n for n in builtin_case_names() if n not in FEEDER_ALIASES]
    click.echo("transmission / any cases (pandapower built-in; or give a pandapower JSON file):")
    click.echo("  " + ", ".join(names))
    click.echo("distribution feeders: " + ", ".join(["case33bw", *FEEDER_ALIASES]))
    click.echo(
        f"SimBench feeders ({'/'.join(FEEDER_LEVELS)} levels; simbench:<code> or the bare "
        "code; with their own 2016 profiles):"
    )
    click.echo("  " + ", ".join(simbench_feeder_codes()))
    click.echo("studies:")
    for name, path in sorted(builtin_studies().items()):
        click.echo(f"  {name:<12} {load_study(path).description}  ({path})")


@cli.command()
@click.argument("case")
@click.option(
    "--model",
    type=click.Choice(["dc", "lindistflow"]),
    default="dc",
    show_default=True,
    help="Network model.",
)
@click.option(
    "--substation",
    type=click.IntRange(min=0),
    default=None,
    help="LinDistFlow of a network with several ext_grids: only the part this ext_grid "
    "feeds (default: every part).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def opf(case: str, model: str, substation: int | None, as_json: bool) -> None:
    """Single-period deterministic OPF of a pandapower case (name or JSON file)."""
    from cases.errors import CaseError
    from cases.networks import NoCostWarning, load_network
    from stochastic.single_period import solve_dc_opf, solve_lindistflow_opf

    if substation is not None and model != "lindistflow":
        raise CaseError("--substation picks a feeder part; use it with --model lindistflow")
    net = load_network(case)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NoCostWarning)
        if model == "dc":
            res = solve_dc_opf(net, case)
        else:
            res = solve_lindistflow_opf(net, case, substation=substation)
    for w in caught:
        if issubclass(w.category, NoCostWarning):
            click.echo(f"warning: {w.message}", err=True)
    record = {
        "case": case,
        "model": model,
        "status": res.status,
        "objective_eur_per_h": res.objective_eur_per_h,
        "max_vm_error_pu": res.max_vm_error_pu,
        "build_seconds": res.build_seconds,
        "translate_seconds": res.translate_seconds,
        "solver_seconds": res.solver_seconds,
        "n_variables": res.n_variables,
        "n_constraints": res.n_constraints,
    }
    if as_json:
        click.echo(json.dumps(record))
        return
    line = f"{case}  {model}  {res.status}  objective {res.objective_eur_per_h:,.4f} EUR/h"
    if res.max_vm_error_pu is not None:
        line += f"  max |V_lin - V_ac| {res.max_vm_error_pu:.4f} pu"
    click.echo(line)


@cli.command()
@click.argument("network")
@click.option(
    "--directions",
    type=click.IntRange(min=3, max=720),
    default=16,
    show_default=True,
    help="Directions of the sweep.",
)
@click.option(
    "--voltage-margin",
    type=click.FloatRange(min=0.0, max=0.05),
    default=0.0,
    show_default=True,
    help="Tightening of the voltage band in the linear model [pu].",
)
@click.option(
    "--ac-rounds",
    type=click.IntRange(min=0, max=10),
    default=2,
    show_default=True,
    help="Linearisations of the losses (and voltage errors) per direction at the AC "
    "power flow of the dispatch found; 0: lossless LinDistFlow.",
)
@click.option(
    "--samples",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Check the region against AC power flows of this many random set-points inside "
    "the units' limits (share of the AC-feasible ones inside the outer polygon).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def flexibility(
    network: str,
    directions: int,
    voltage_margin: float,
    ac_rounds: int,
    samples: int,
    as_json: bool,
) -> None:
    """P-Q flexibility region at the root of a radial network (name or JSON file).

    The region of interface powers (res_ext_grid sign: positive = drawn from the
    transmission grid) reachable by dispatching the network's controllable sgen, storage
    and load elements within their min/max p and q, inside the voltage limits (min_vm_pu /
    max_vm_pu, else 0.95 / 1.05) and branch ratings (max_loading_percent), by LinDistFlow
    with the interface losses linearised at the AC power flow of each direction's dispatch;
    inner and outer polygons from a direction sweep, inner vertices checked by AC power flow.
    """
    from cases.networks import load_network
    from workbench.flexibility import COVERAGE_TOL_MVA, network_flexibility, sample_ac_interface

    net = load_network(network)
    region = network_flexibility(
        net,
        network,
        n_directions=directions,
        voltage_margin_pu=voltage_margin,
        ac_rounds=ac_rounds,
    )
    record = {"network": network, **region.summary()}
    if samples:
        drawn = sample_ac_interface(net, samples, seed=0, label=network)
        record["ac_samples"] = samples
        record["ac_samples_feasible"] = int(drawn.feasible.sum())
        record["ac_sample_coverage"] = drawn.coverage(region.sweep.outer, COVERAGE_TOL_MVA)
    if as_json:
        click.echo(json.dumps(record))
        return
    click.echo(
        f"{network}: {record['controllable_elements']} controllable elements, "
        f"{directions} directions"
    )
    click.echo(
        f"  inner polygon: {record['vertices']} vertices, area "
        f"{record['area_inner_mw_mvar']:.4f} MW Mvar; outer polygon area "
        f"{record['area_outer_mw_mvar']:.4f} MW Mvar"
    )
    for (p, q), ok in zip(record["inner_vertices_mw_mvar"], region.vertex_ac_feasible, strict=True):
        click.echo(f"    P {p:10.4f} MW  Q {q:10.4f} Mvar  AC {'ok' if ok else 'VIOLATION'}")
    click.echo(
        f"  AC-feasible vertices {record['vertices_ac_feasible']}/{record['vertices']}, "
        f"max |V_lin - V_ac| {record['max_vm_error_pu']:.4f} pu"
    )
    if samples:
        click.echo(
            f"  AC check: {record['ac_samples_feasible']} of {samples} random set-points "
            f"AC-feasible, {100 * record['ac_sample_coverage']:.1f} % of them inside the "
            f"outer polygon (within {COVERAGE_TOL_MVA} MVA)"
        )
    if not record["base_ac_feasible"]:
        click.echo(
            "  note: the network at its own set-points already violates a voltage or "
            "loading limit in AC"
        )


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 failed run, 2 user error)."""
    limit_threads()
    _quiet_libraries()
    try:
        with _one_line_warnings():
            cli.main(args=argv, prog_name="workbench", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.Abort:
        click.echo("error: aborted", err=True)
        return 130
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        click.echo(f"error: {exc.format_message()}{hint}", err=True)
        return 2
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        return 2
    except _user_errors() as exc:  # evaluated only when an exception gets here
        click.echo(f"error: {exc}", err=True)
        return 2
    except _solver_error() as exc:
        click.echo(f"error: {exc}", err=True)
        return 1
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
