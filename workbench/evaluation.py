"""Out-of-sample proof of a schedule: fresh scenarios, VSS against two baselines, EVPI.

For every model and day of a results file the day-ahead (first-stage) decision is fixed
and the recourse is solved on ``N`` fresh scenarios drawn from the same forecaster on an
independent random stream. Beside it, on the same fresh scenarios, two plans without the
stochastic model's hedging, each evaluated the same way:

* the expected-value plan (one scenario: the probability-weighted mean of the in-sample
  set), the textbook baseline: EEV, and ``vss = EEV - RP``;
* the rule plan: the same mean-scenario schedule with the TER reserve sized by a rule,
  what operators do today (:class:`ReserveRule`: a quantile of the in-sample net-load
  deviation, the largest unit, or a fixed volume): ``vss_vs_rule = rule - RP``.

Perfect information: the wait-and-see solutions (each scenario solved with its own first
stage). The textbook EVPI is in sample, ``RP - WS`` on the scenario set the plan was
optimised on (>= 0, and 0 with one scenario); the same difference on the fresh scenarios
is the out-of-sample gap (``oos_gap``: what a plan optimised on another sample loses
against clairvoyance, sampling error included).

Costs are compared with the study's risk measure ``(1 - beta) E[cost] + beta CVaR_alpha``
(equal weights on the fresh scenarios, the scenario weights in sample). Each difference
is split by cost item (the items of ``cost_item_eur``): the measure is a weighted sum of
scenario costs, ``sum_s p_s c_s`` with ``p = (1 - beta) w + beta q`` (``q`` the CVaR's
tail weights of that cost vector), so ``sum_s p_s c_{s,i}`` per item adds up to the total.

Every second-stage solve is a one-scenario model re-used for a batch of scenarios through
parameter updates. The work is split into units (:class:`workbench.rundir.NamedUnit`):
per model-day the two plans and each batch of scenarios of each kind; a finished unit is
written to the evaluation's run folder at once, so an interrupted evaluation is resumed
with only the missing units computed. Units run in parallel on Dask.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

from cases.archive import STUDY_ATTR
from cases.study import StudyConfig
from cases.system import IntegratedSystem, build_system
from forecasts.generate import ScenarioForecaster
from stochastic.bids import apply_bids, der_bids
from stochastic.extract import cost_book, first_stage_values, first_stage_vars, scenario_summary
from stochastic.linear import add_rows, terms
from stochastic.risk import cvar
from stochastic.solve import PersistentSolver, SolverError, highs_settings
from stochastic.status import SOLVED_STATUSES
from stochastic.twostage import (
    DayData,
    TwoStageModel,
    TwoStageOptions,
    build_two_stage,
    day_data,
)
from workbench.rundir import UNFINISHED, NamedUnit, RunFolder, RunFolderError, UnitSaveError
from workbench.runner import resolve_scheduler
from workbench.scenarios import fit_study_forecaster
from workbench.state import DayState, day_inputs, state_from_results
from workbench.threads import limit_threads

__all__ = [
    "DEFINITIONS",
    "EvaluationReport",
    "ReserveRule",
    "default_evaluation_dir",
    "evaluate_results",
    "evaluation_summary",
    "parse_reserve_rule",
    "reserve_requirement_mw",
]

#: random stream of the fresh scenarios (the study's own scenarios are stream 0)
FRESH_STREAM = 1
_NAME = re.compile(r"^(?P<key>[^\[]+)\[(?P<i>\d+)\]$")
#: kinds of scenario batches: the plan whose first stage is fixed, on which scenarios
FRESH_KINDS = ("oos", "eev", "rule", "ws")
INSIDE_KINDS = ("rp_in", "eev_in", "rule_in", "ws_in")
PLANS = ("ev_plan", "rule_plan")
#: the plan each batch kind fixes (None: the results' own first stage; "free": none)
_PLAN_OF = {
    "oos": None,
    "rp_in": None,
    "eev": "ev_plan",
    "eev_in": "ev_plan",
    "rule": "rule_plan",
    "rule_in": "rule_plan",
    "ws": "free",
    "ws_in": "free",
}
DEFAULT_RESERVE_RULE = "quantile:0.95"

#: what each reported figure is (``workbench evaluate --json`` carries it)
DEFINITIONS = {
    "vss_eur": "EEV - RP on the fresh scenarios: the expected-value (mean-scenario, no "
    "hedging) plan against the stochastic plan, both with their first stage fixed",
    "vss_in_sample_eur": "EEV - RP on the in-sample scenarios (the textbook VSS of the "
    "sample the plan was optimised on; >= 0)",
    "vss_vs_rule_eur": "rule plan - RP on the fresh scenarios: a mean-scenario schedule "
    "with TER reserve sized by the reserve rule (what operators do) against the "
    "stochastic plan",
    "vss_vs_rule_in_sample_eur": "rule plan - RP on the in-sample scenarios",
    "evpi_eur": "RP - WS on the in-sample scenarios the plan was optimised on (textbook "
    "EVPI; >= 0, 0 with one scenario)",
    "oos_gap_eur": "RP - WS on the fresh scenarios: the stochastic plan's cost above "
    "clairvoyant plans out of sample (EVPI plus the loss from sampling error)",
    "by_item": "each difference split by cost item (<payer>/<stage>/<item>); the items "
    "sum to the total",
    "measure": "(1 - beta) E[cost] + beta CVaR_alpha[cost]; equal weights on the fresh "
    "scenarios, the scenario weights in sample",
}


# --------------------------------------------------------------------------- reserve rule
@dataclass(frozen=True)
class ReserveRule:
    """How the rule plan sizes the TER reserve, up and down, per first-stage period.

    Attributes
    ----------
    kind : str
        ``quantile``: the ``value`` quantile (0 < value < 1) of the deviation of the
        system's net load (demand, EV charging, minus PV and wind) from its mean over the
        in-sample scenarios, up and down separately, the largest over the period's steps;
        ``largest_unit``: the largest TER unit's rating, symmetric (the reference
        incident); ``fixed``: ``value`` MW, symmetric.
    value : float
    """

    kind: str
    value: float = 0.0

    def __str__(self) -> str:
        if self.kind == "largest_unit":
            return "largest_unit"
        return f"{self.kind}:{self.value:g}"


def parse_reserve_rule(text: str) -> ReserveRule:
    """``quantile:Q``, ``largest_unit``, ``fixed:MW`` or a number of MW as a rule.

    Raises
    ------
    ValueError
        One line saying what is accepted.
    """
    t = str(text).strip().lower()
    usage = "use quantile:Q (0 < Q < 1), largest_unit, or fixed:MW (a number of MW >= 0)"
    if t == "largest_unit":
        return ReserveRule("largest_unit")
    kind, _, value = t.partition(":")
    if not value:
        kind, value = "fixed", kind
    try:
        x = float(value)
    except ValueError:
        raise ValueError(f"reserve rule '{text}' is not understood; {usage}") from None
    if kind == "quantile" and 0.0 < x < 1.0:
        return ReserveRule("quantile", x)
    if kind == "fixed" and 0.0 <= x < math.inf:
        return ReserveRule("fixed", x)
    raise ValueError(f"reserve rule '{text}' is not understood; {usage}")


def _net_load_mw(data: DayData) -> np.ndarray:
    """System net load per scenario and step (S, T) [MW]: transmission demand, feeder
    demand net of PV and fixed (wind) units, uncontrolled EV charging."""
    net = data.transmission_rhs_mw.sum(axis=-1)
    for rhs, root in zip(data.feeder_p_rhs_mw, data.feeder_root_p_mw, strict=True):
        net = net + rhs.sum(axis=-1) + root
    if data.ev_p_uncontrolled_mw.shape[-1]:
        net = net + data.ev_p_uncontrolled_mw.sum(axis=-1)
    return net


def _weighted_quantile(x: np.ndarray, w: np.ndarray, q: float) -> float:
    """The ``q`` quantile of a discrete distribution (inverted CDF)."""
    order = np.argsort(x, kind="stable")
    cum = np.cumsum(w[order]) / w.sum()
    return float(x[order][min(np.searchsorted(cum, q - 1e-12), len(x) - 1)])


def reserve_requirement_mw(
    rule: ReserveRule, system: IntegratedSystem, data: DayData, options: TwoStageOptions
) -> tuple[np.ndarray, np.ndarray]:
    """TER reserve the rule asks for, up and down, per first-stage period [MW].

    ``data`` is the in-sample scenario set (its weights weight the quantile).
    """
    P, k = options.n_periods, options.steps_per_period
    if rule.kind == "fixed":
        up = np.full(P, rule.value)
        return up, up.copy()
    if rule.kind == "largest_unit":
        up = np.full(P, float(np.max(system.transmission.gen_pmax_mw, initial=0.0)))
        return up, up.copy()
    net = _net_load_mw(data)
    w = data.weight
    dev = net - w @ net
    up = np.array([_weighted_quantile(dev[:, t], w, rule.value) for t in range(net.shape[1])])
    dn = np.array([_weighted_quantile(-dev[:, t], w, rule.value) for t in range(net.shape[1])])
    up, dn = np.maximum(up, 0.0), np.maximum(dn, 0.0)
    return up.reshape(P, k).max(axis=1), dn.reshape(P, k).max(axis=1)


def _require_reserve(tsm: TwoStageModel, up_mw: np.ndarray, down_mw: np.ndarray) -> None:
    """Rows ``sum_g reserve[p, g] >= requirement[p]`` for the TER, up and down.

    A direction the rule asks nothing of gets no rows: reserve is non-negative, so such
    rows cut nothing, and leaving them out keeps the problem the expected-value problem
    itself (the same LP, hence the same vertex where the mean scenario has several optima).
    """
    ter = tsm.parts["ter"]
    for name, req in (("reserve_up_mw", up_mw), ("reserve_down_mw", down_mw)):
        if not np.any(np.asarray(req) > 0.0):
            continue
        var = ter.vars[name]
        P = var.shape[0]
        rows = np.broadcast_to(np.arange(P)[:, None], var.shape)
        add_rows(
            tsm.model,
            f"rule_{name}",
            (P,),
            ("period",),
            [terms(var, rows, var.index())],
            np.asarray(req, dtype=float),
            None,
        )


# --------------------------------------------------------------------------- solves
def _options(study: StudyConfig) -> TwoStageOptions:
    """Options of the evaluation solves: no efficiency weight (a one-scenario model
    minimises that scenario's cost exactly; the plans are the textbook ones)."""
    return replace(TwoStageOptions.from_study(study), recourse_efficiency_weight=0.0)


def _one(scenarios: xr.Dataset, i: int) -> xr.Dataset:
    one = scenarios.isel(scenario=[i])
    return one.assign(weight=("scenario", [1.0]))


def mean_scenario(scenarios: xr.Dataset) -> xr.Dataset:
    """The probability-weighted mean of a scenario set, as a one-scenario set."""
    w = scenarios["weight"]
    out = xr.Dataset(
        {"weight": ("scenario", [1.0])}, coords={"time": scenarios.time, "period": scenarios.period}
    )
    for name in ("value_pu", "ev_p_max_mw", "ev_e_min_mwh", "ev_e_max_mwh", "ev_p_uncontrolled_mw"):
        if name in scenarios:
            mean = (scenarios[name] * w).sum("scenario") / w.sum()
            out[name] = mean.expand_dims(scenario=[0]).transpose("scenario", "time", ...)
    if "expected_pu" in scenarios:  # central profile (feeders with their own profiles)
        out["expected_pu"] = scenarios["expected_pu"]
    return out


def fix_first_stage(tsm: TwoStageModel, solver: PersistentSolver, values: xr.DataArray) -> None:
    """Fix the first-stage variables of ``tsm`` at ``values`` (from ``first_stage_value``).

    Raises
    ------
    ValueError
        When the names or sizes do not match the model (results of another system or
        formulation).
    """
    arrays = first_stage_vars(tsm)
    grouped: dict[str, dict[int, float]] = {}
    for name, value in zip(values["first_stage"].values, values.values, strict=True):
        m = _NAME.match(str(name))
        if m is None or m["key"] not in arrays:
            raise ValueError(
                f"first-stage variable '{name}' of the results is not in the model; the "
                "results were written by another formulation: re-run the study"
            )
        grouped.setdefault(m["key"], {})[int(m["i"])] = float(value)
    for key, var in arrays.items():
        got = grouped.get(key, {})
        if sorted(got) != list(range(var.size)):
            raise ValueError(
                f"the results hold {len(got)} values of '{key}', the model has {var.size}; "
                "re-run the study with this version"
            )
        solver.fix(var, np.array([got[i] for i in range(var.size)]).reshape(var.shape))


_FIELDS = ("cost_eur", "load_shed_mwh", "curtailment_mwh", "spill_mwh")


def _solve_batch(
    system: IntegratedSystem,
    study: StudyConfig,
    scenarios: xr.Dataset,
    indices: list[int],
    first_stage: xr.DataArray | None,
    state: DayState,
    bids: xr.Dataset,
) -> xr.Dataset:
    """Solve each scenario of ``indices`` alone, first stage fixed (or free: wait-and-see,
    the DER following the day's ``bids``), from the day's start ``state``.

    Returns
    -------
    xarray.Dataset
        On ``row`` (one per scenario): ``scenario``, ``feasible`` and the totals of
        :func:`stochastic.extract.scenario_summary`; ``cost_item_eur`` on (row, item)
        [EUR] (NaN where infeasible).
    """
    tick = time.perf_counter()
    limit_threads()
    options = _options(study)
    rows, items, tsm, solver = [], {}, None, None
    for i in indices:
        data = day_data(system, _one(scenarios, i), options, state.battery_e_mwh)
        if tsm is None:
            tsm = build_two_stage(system, data, options)
            highs, limit = highs_settings(study)
            solver = PersistentSolver(tsm.model, time_limit_s=limit, options=highs)
            if first_stage is not None:
                fix_first_stage(tsm, solver, first_stage)
            else:
                apply_bids(solver, tsm, bids)
        else:
            tsm.set_data(data)
            solver.update_parameters(warm_start=True)
        try:
            solver.solve()
        except SolverError:
            rows.append({"scenario": i, "feasible": 0.0})
            continue
        summary = {k: float(v[0]) for k, v in scenario_summary(tsm).items()}
        book = cost_book(tsm).isel(scenario=0)
        for name, value in zip(book.cost_item.values, book.values, strict=True):
            items.setdefault(str(name), {})[i] = float(value)
        rows.append({"scenario": i, "feasible": 1.0, **summary})
    names = sorted(items)
    ds = xr.Dataset(
        {
            "scenario": ("row", np.array([r["scenario"] for r in rows], dtype=np.int64)),
            "feasible": ("row", np.array([r["feasible"] for r in rows])),
            **{f: ("row", np.array([r.get(f, np.nan) for r in rows])) for f in _FIELDS},
            "cost_item_eur": (
                ("row", "item"),
                np.array(
                    [[items[n].get(r["scenario"], np.nan) for n in names] for r in rows]
                ).reshape(len(rows), len(names)),
            ),
        },
        coords={"item": np.array(names, dtype=str)},
    )
    ds.attrs["wall_seconds"] = time.perf_counter() - tick
    return ds


def _plan_task(
    system: IntegratedSystem,
    study: StudyConfig,
    inside: xr.Dataset,
    state: DayState,
    bids: xr.Dataset,
    rule: ReserveRule | None,
) -> xr.Dataset:
    """First stage of the mean-scenario problem, with the TER reserve the ``rule`` asks
    for (None: the expected-value problem, no reserve asked for).

    Returns
    -------
    xarray.Dataset
        ``first_stage_value`` (first_stage); per period the reserve asked for and bought
        (``reserve_*_required_mw``, ``reserve_*_mw``) [MW]; attribute ``status``
        (``optimal`` or the solver's message when the rule cannot be met).
    """
    tick = time.perf_counter()
    limit_threads()
    options = _options(study)
    inside_data = day_data(system, inside, options, state.battery_e_mwh)
    data = day_data(system, mean_scenario(inside), options, state.battery_e_mwh)
    tsm = build_two_stage(system, data, options)
    P = options.n_periods
    up_req, dn_req = np.zeros(P), np.zeros(P)
    if rule is not None:
        up_req, dn_req = reserve_requirement_mw(rule, system, inside_data, options)
        _require_reserve(tsm, up_req, dn_req)
    highs, limit = highs_settings(study)
    solver = PersistentSolver(tsm.model, time_limit_s=limit, options=highs)
    apply_bids(solver, tsm, bids)
    ds = xr.Dataset(
        {
            "reserve_up_required_mw": ("period", up_req),
            "reserve_down_required_mw": ("period", dn_req),
        }
    )
    try:
        solver.solve()
    except SolverError as exc:
        ds.attrs["status"] = f"the plan cannot meet reserve rule '{rule}': {exc}"
        ds.attrs["wall_seconds"] = time.perf_counter() - tick
        return ds
    ter = tsm.parts["ter"].vars
    ds["reserve_up_mw"] = ("period", ter["reserve_up_mw"].values().sum(axis=1))
    ds["reserve_down_mw"] = ("period", ter["reserve_down_mw"].values().sum(axis=1))
    ds["first_stage_value"] = first_stage_values(tsm)
    ds.attrs["status"] = "optimal"
    ds.attrs["wall_seconds"] = time.perf_counter() - tick
    return ds


# --------------------------------------------------------------------------- units
@dataclass
class EvaluationReport:
    """What an evaluation did.

    Attributes
    ----------
    units : int
        Units of the evaluation (plans and scenario batches of every model-day).
    computed, resumed : int
        Units computed by this call; units found finished in the run folder.
    errors : dict
        Unit key -> message of units that raised (computed again by a resume).
    interrupted : bool
    save_errors : list of str
    wall_seconds : float [s]
    """

    units: int = 0
    computed: int = 0
    resumed: int = 0
    errors: dict = field(default_factory=dict)
    interrupted: bool = False
    save_errors: list = field(default_factory=list)
    wall_seconds: float = 0.0


@dataclass(frozen=True)
class _Part:
    """What one unit computes: a plan, or a batch of scenarios of a kind."""

    model: str
    day: object  # datetime.date
    kind: str
    indices: tuple[int, ...] = ()


def default_evaluation_dir(results: str | Path) -> Path:
    """The evaluation's run folder beside a results file: ``x.nc`` -> ``x.evaluate``."""
    return Path(results).with_suffix(".evaluate")


def _day_key(model: str, day) -> str:
    return f"{model.replace(':', '+')}_{day.isoformat()}"


def _parts(
    model_days: list[tuple[str, object, int]], n_fresh: int, batch: int, wait_and_see: bool
) -> dict[str, _Part]:
    """Every unit of an evaluation by key: per model-day the two plans, then the batches of
    ``batch`` scenarios of each kind (fresh kinds on ``n_fresh``, in-sample kinds on the
    day's own scenario count)."""
    out: dict[str, _Part] = {}
    for model, day, n_in in model_days:
        stem = _day_key(model, day)
        for plan in PLANS:
            out[f"{stem}_{plan}"] = _Part(model, day, plan)
        for kinds, n in ((FRESH_KINDS, n_fresh), (INSIDE_KINDS, n_in)):
            for kind in kinds:
                if kind.startswith("ws") and not wait_and_see:
                    continue
                for b in range(math.ceil(n / batch)):
                    idx = tuple(range(b * batch, min((b + 1) * batch, n)))
                    out[f"{stem}_{kind}_{b:03d}"] = _Part(model, day, kind, idx)
    return out


def _fingerprint(results: xr.Dataset) -> str:
    """SHA-256 of the results' study and first-stage decisions (what an evaluation
    depends on; unchanged when the evaluation is written into the file)."""
    h = hashlib.sha256(str(results.attrs.get(STUDY_ATTR, "")).encode("utf-8"))
    x = results["first_stage_value"].transpose("model", "day", "first_stage")
    h.update(np.ascontiguousarray(x.to_numpy(), dtype=float).tobytes())
    h.update("|".join(map(str, results.model.values)).encode("utf-8"))
    return h.hexdigest()


#: settings a resumed evaluation must share with the one that started the folder
_SAME = ("fingerprint", "n_scenarios", "wait_and_see", "reserve_rule")


def _folder_of(
    run_dir, study: StudyConfig, settings: dict, keys: Callable[[int], list[str]]
) -> tuple[RunFolder, str | None]:
    """The locked run folder of an evaluation and the scratch folder to remove after it.

    A folder holding an unfinished evaluation with the same settings is resumed (with its
    own batch size); one holding another unfinished run is refused; any other is created.
    """
    if isinstance(run_dir, RunFolder):
        return run_dir, None
    scratch = None
    if run_dir is None:
        scratch = tempfile.mkdtemp(prefix="workbench-evaluate-")
        path = Path(scratch)
    else:
        path = Path(run_dir)
    old = RunFolder.read_manifest(path)
    if old is None or old.get("state") not in UNFINISHED:
        folder = RunFolder.create(
            path,
            study,
            study.seed,
            settings.get("results") and Path(settings["results"]),
            units=keys(settings["batch_scenarios"]),
            command="evaluate",
            settings=settings,
        )
        return folder, scratch
    folder = RunFolder.open(path)
    kept = folder.manifest.get("settings", {})
    same = all(kept.get(k) == settings.get(k) for k in _SAME)
    if folder.manifest.get("command") != "evaluate" or not same:
        what = folder.manifest.get("command", "run")
        folder.release()
        raise RunFolderError(
            f"run folder '{path}' holds an unfinished {what} of other results or settings; "
            f"resume it with `workbench {what} --resume {path}`, or give another --run-dir"
        )
    return folder, None


def _mark(folder: RunFolder, state: str) -> None:
    try:
        folder.mark(state)
    except OSError:  # a full or read-only folder: the units on disk tell a resume
        pass


def _record(part: _Part, status: str, message: str = "", wall_s: float = 0.0) -> dict:
    return {
        "model": part.model,
        "day": part.day.isoformat(),
        "kind": part.kind,
        "scenarios": list(part.indices),
        "status": status,
        "message": message,
        "wall_seconds": round(wall_s, 3),
    }


def _run_tasks(ex, tasks: list[tuple[str, object]], done, progress: bool, label: str) -> None:
    """Compute ``(key, delayed)`` tasks, calling ``done(key, result, error)`` as each ends
    (in parallel on a Dask cluster, one after the other on a local scheduler)."""
    if not tasks:
        return
    with tqdm(total=len(tasks), desc=label, disable=not progress, unit="unit") as bar:
        if ex.client is None:
            for key, task in tasks:
                tick = time.perf_counter()
                try:
                    (result,) = dask.compute(task, scheduler=ex.kind)
                except Exception as exc:  # recorded; the other units go on
                    done(key, None, exc, time.perf_counter() - tick)
                else:
                    done(key, result, None, time.perf_counter() - tick)
                bar.update()
            return
        from distributed import as_completed

        tick = time.perf_counter()
        futures = ex.client.compute([t for _, t in tasks])
        key_of = {f.key: k for f, (k, _) in zip(futures, tasks, strict=True)}
        pending = {f.key: f for f in futures}
        try:
            for future in as_completed(futures):
                try:
                    result = future.result()
                except Exception as exc:  # recorded; the other units go on
                    done(key_of[future.key], None, exc, time.perf_counter() - tick)
                else:
                    done(key_of[future.key], result, None, time.perf_counter() - tick)
                pending.pop(future.key, None)
                future.release()
                bar.update()
        finally:
            if pending:
                ex.client.cancel(list(pending.values()))


def evaluate_results(
    results: xr.Dataset,
    *,
    n_scenarios: int = 30,
    scheduler=None,
    workers: int | None = None,
    progress: bool = True,
    forecaster: ScenarioForecaster | None = None,
    wait_and_see: bool = True,
    reserve_rule: str | ReserveRule = DEFAULT_RESERVE_RULE,
    run_dir: str | Path | RunFolder | None = None,
    results_path: str | Path | None = None,
    batch_scenarios: int | None = None,
    report: EvaluationReport | None = None,
) -> xr.Dataset:
    """Evaluate every schedule of a results dataset out of sample and against baselines.

    Parameters
    ----------
    results : xarray.Dataset
        Written by ``workbench run`` (holds the study and ``first_stage_value``).
    n_scenarios : int
        Fresh scenarios per day (>= 2).
    scheduler, workers
        See :func:`workbench.runner.resolve_scheduler`.
    progress : bool
    forecaster : ScenarioForecaster, optional
        The study's fitted forecasters (fitted here from the study and seed if missing).
    wait_and_see : bool
        Also solve the wait-and-see problems (EVPI and the out-of-sample gap).
    reserve_rule : str or ReserveRule
        How the rule plan sizes the TER reserve (:func:`parse_reserve_rule`).
    run_dir : path or RunFolder, optional
        Where the finished units go (:mod:`workbench.rundir`). A path holding an
        unfinished evaluation of the same results and settings is resumed: only its
        missing units are computed. Default: a temporary folder, removed at the end.
    results_path : path, optional
        The results file (noted in the run folder, for ``workbench evaluate --resume``).
    batch_scenarios : int, optional
        Scenarios per unit (default: the fresh scenarios over the workers).
    report : EvaluationReport, optional
        Filled with what the evaluation did.

    Raises
    ------
    ValueError
        For results without first-stage decisions, fewer than 2 scenarios or a reserve
        rule that is not understood.
    RunFolderError
        For a run folder that holds another unfinished run, or is in use.

    Returns
    -------
    xarray.Dataset
        ``results`` with the evaluation added (docs/results.md): per (model, day,
        fresh_scenario) the costs of the stochastic (``oos``), expected-value (``eev``),
        rule (``rule``) and wait-and-see (``ws``) solutions; per (model, day) the risk
        measures, ``vss_eur``, ``vss_vs_rule_eur``, ``evpi_eur`` (in sample),
        ``oos_gap_eur`` and their in-sample counterparts; per (model, day, item) the
        splits by cost item.
    """
    rule = _checked_rule(results, n_scenarios, reserve_rule)
    limit_threads()
    report = EvaluationReport() if report is None else report
    study = StudyConfig.from_results(results)  # the seed the run used, its networks
    tick = time.perf_counter()
    model_days = _solved_model_days(results)
    if batch_scenarios is None:
        batch_scenarios = _default_batch(scheduler, workers, n_scenarios)
    settings = {
        "results": None if results_path is None else str(Path(results_path).resolve()),
        "fingerprint": _fingerprint(results),
        "n_scenarios": int(n_scenarios),
        "wait_and_see": bool(wait_and_see),
        "reserve_rule": str(rule),
        "batch_scenarios": int(max(1, batch_scenarios)),
    }

    def keys(batch: int) -> list[str]:
        return list(_parts(model_days, n_scenarios, batch, wait_and_see))

    folder, scratch = _folder_of(run_dir, study, settings, keys)
    try:
        batch = int(folder.manifest["settings"]["batch_scenarios"])
        parts = _parts(model_days, n_scenarios, batch, wait_and_see)
        job = _Job(results, study, rule, n_scenarios, forecaster, scheduler, workers, progress)
        _compute_missing(job, folder, parts, report)
        units = _collect_units(folder, parts, report)
        report.wall_seconds = wall_s = time.perf_counter() - tick
        risk = study.risk
        return _evaluation_dataset(results, units, n_scenarios, risk.alpha, risk.beta, rule, wall_s)
    finally:
        if folder is not run_dir:
            folder.release()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _checked_rule(
    results: xr.Dataset, n_scenarios: int, reserve_rule: str | ReserveRule
) -> ReserveRule:
    """The reserve rule, once the results and the scenario count are known to serve."""
    if n_scenarios < 2:
        raise ValueError(f"--scenarios must be at least 2, got {n_scenarios}")
    if "first_stage_value" not in results:
        raise ValueError(
            "the results hold no first-stage decisions (written by an older version); "
            "re-run the study"
        )
    if isinstance(reserve_rule, ReserveRule):
        return reserve_rule
    return parse_reserve_rule(reserve_rule)


def _solved_model_days(results: xr.Dataset) -> list[tuple]:
    """(model, date, in-sample scenarios) of every model-day with a schedule."""
    model_days = []
    for model in results.model.values:
        for day in results.day.values:
            status = str(results["solver_status"].sel(model=model, day=day).values)
            if status not in SOLVED_STATUSES:
                continue
            n_in = int(results["weight"].sel(model=model, day=day).notnull().sum())
            model_days.append((str(model), pd.Timestamp(day).date(), n_in))
    return model_days


def _default_batch(scheduler, workers: int | None, n_scenarios: int) -> int:
    """Scenarios per unit: the fresh scenarios spread over the workers (at most 4 by
    default, one with the synchronous scheduler)."""
    n_workers = 1 if scheduler in ("sync", "synchronous", "single-threaded") else None
    n_workers = n_workers or workers or min(os.cpu_count() or 1, 4)
    return math.ceil(n_scenarios / n_workers)


@dataclass(frozen=True)
class _Job:
    """What an evaluation is asked to do (see :func:`evaluate_results`)."""

    results: xr.Dataset
    study: StudyConfig
    rule: ReserveRule
    n_scenarios: int
    forecaster: ScenarioForecaster | None
    scheduler: object
    workers: int | None
    progress: bool


def _compute_missing(
    job: _Job, folder: RunFolder, parts: dict[str, _Part], report: EvaluationReport
) -> None:
    """Compute the units the run folder does not hold yet; Ctrl-C marks the folder
    interrupted, a unit that could not be written fails the evaluation (the others kept)."""
    finished = folder.finished()
    report.units = len(parts)
    report.resumed = sum(1 for k in parts if k in finished)
    todo = [k for k in parts if k not in finished]
    try:
        if todo:
            _compute(job, folder, parts, todo, report)
    except KeyboardInterrupt:
        report.interrupted = True
        _mark(folder, "interrupted")
        raise
    if report.save_errors:
        _mark(folder, "failed")
        raise UnitSaveError(
            f"{report.save_errors[0]}; the units computed are kept; once the folder "
            f"can take them, resume with: workbench evaluate --resume {folder.path}"
        )


def _collect_units(folder: RunFolder, parts: dict[str, _Part], report: EvaluationReport):
    """The finished units by model-day; the units that raised go into the report and
    mark the folder failed."""
    units = _read_units(folder, parts)
    report.errors = {
        k: r.get("message", "") for k, r in folder.records().items() if r.get("status") == "error"
    }
    _mark(folder, "failed" if report.errors else "computed")
    return units


@dataclass
class _Saver:
    """Saves each unit as it ends: its dataset and record into the run folder, a plan
    also into ``plans`` (None where it has no solution), one log line."""

    parts: dict
    folder: RunFolder
    plans: dict
    report: EvaluationReport
    log: object

    def __call__(self, key: str, ds, error, wall_s: float) -> None:
        part = self.parts[key]
        if ds is not None:  # the task's own time (wall_s: since its phase started)
            wall_s = float(ds.attrs.pop("wall_seconds", wall_s))
        if error is not None:
            text = str(error).strip().splitlines()
            record = _record(part, "error", f"{type(error).__name__}: {text[0] if text else ''}")
            ds = None
        elif part.kind in PLANS:
            status = ds.attrs.get("status", "optimal")
            record = _record(
                part,
                "optimal" if status == "optimal" else "infeasible",
                "" if status == "optimal" else status,
                wall_s,
            )
            self.plans[(part.model, part.day, part.kind)] = ds if status == "optimal" else None
        else:
            record = _record(part, "optimal", "", wall_s)
        try:
            self.folder.save_unit(NamedUnit(key), ds, record)
        except UnitSaveError as exc:
            self.report.save_errors.append(str(exc))
        self.report.computed += 1
        self.log.info(
            "unit %s: %s %s(%.1f s)",
            key,
            record["status"],
            f"{record['message']} " if record.get("message") else "",
            wall_s,
        )


def _compute(
    job: _Job,
    folder: RunFolder,
    parts: dict[str, _Part],
    todo: list[str],
    report: EvaluationReport,
) -> None:
    """Compute the ``todo`` units: the plans and every batch that does not wait for one
    first, then the batches of the plans just computed; each saved as it ends."""
    study = job.study
    system = build_system(study)
    forecaster = job.forecaster
    if forecaster is None:
        forecaster = fit_study_forecaster(study, study.seed)
    options = _options(study)
    finished = folder.finished(quiet=True)
    log = folder.logger()
    log.info(
        "evaluation of %s: %d units, %d to compute, reserve rule %s",
        folder.manifest.get("settings", {}).get("results") or "results in memory",
        len(parts),
        len(todo),
        job.rule,
    )
    plans: dict[tuple, xr.Dataset | None] = {}
    for key, part in parts.items():
        if part.kind in PLANS and key in finished:
            plans[(part.model, part.day, part.kind)] = _load(folder, key)
    save = _Saver(parts, folder, plans, report, log)
    with resolve_scheduler(job.scheduler, job.workers) as ex:
        sys_d, study_d = (dask.delayed(x, traverse=False) for x in (system, study))
        inputs: dict[tuple, tuple] = {}
        for key in todo:
            md = (parts[key].model, parts[key].day)
            if md not in inputs:
                inputs[md] = _day_inputs(
                    job.results, system, study, forecaster, options, md, job.n_scenarios
                )
        first, later = _first_tasks(parts, todo, inputs, sys_d, study_d, job.rule)
        _run_tasks(ex, first, save, job.progress, "evaluation")
        second = _plan_batches(parts, later, inputs, plans, folder, sys_d, study_d)
        _run_tasks(ex, second, save, job.progress, "evaluation of the plans")


def _first_tasks(parts, todo, inputs, sys_d, study_d, rule) -> tuple[list, list]:
    """The tasks that wait for no plan (the plans, the stochastic plan's and the
    wait-and-see batches) and the keys of the batches that wait for a plan."""
    first, later = [], []
    for key in todo:
        part = parts[key]
        md = (part.model, part.day)
        state, _, inside_d, bids, x_rp = inputs[md]
        if part.kind in PLANS:
            task = dask.delayed(_plan_task, pure=False)(
                sys_d,
                study_d,
                inside_d,
                state,
                bids,
                rule if part.kind == "rule_plan" else None,
            )
            first.append((key, task))
            continue
        plan = _PLAN_OF[part.kind]
        if plan in (None, "free"):
            fixed = x_rp if plan is None else None
            first.append((key, _batch_task(sys_d, study_d, inputs[md], part, fixed)))
        else:
            later.append(key)
    return first, later


def _plan_batches(parts, later, inputs, plans, folder, sys_d, study_d) -> list:
    """The batches of the plans computed (or found finished); a batch whose plan has no
    solution is recorded as skipped."""
    second = []
    for key in later:
        part = parts[key]
        plan_ds = plans.get((part.model, part.day, _PLAN_OF[part.kind]))
        if plan_ds is None:  # the plan failed or could not meet the rule
            folder.save_unit(
                NamedUnit(key), None, _record(part, "skipped", "its plan has no solution")
            )
            continue
        md = (part.model, part.day)
        second.append(
            (key, _batch_task(sys_d, study_d, inputs[md], part, plan_ds["first_stage_value"]))
        )
    return second


def _day_inputs(results, system, study, forecaster, options, md, n_scenarios) -> tuple:
    """A model-day's start state, fresh and in-sample scenarios (delayed), DER bids and
    the stochastic plan's first stage."""
    model, date = md
    day = np.datetime64(pd.Timestamp(date), "ns")
    sel = results.sel(model=model, day=day)
    state = state_from_results(sel, system.fleet)
    seed = study.seed
    fresh, _ = day_inputs(
        system, study, date, seed, forecaster, state, options, n_scenarios, FRESH_STREAM
    )
    inside, inside_data = day_inputs(system, study, date, seed, forecaster, state, options)
    bids = der_bids(system, inside_data, options)
    x_rp = sel["first_stage_value"].dropna("first_stage")
    fresh_d, inside_d = (dask.delayed(x, traverse=False) for x in (fresh, inside))
    return state, fresh_d, inside_d, bids, x_rp


def _batch_task(sys_d, study_d, inputs: tuple, part: _Part, first_stage):
    state, fresh_d, inside_d, bids, _ = inputs
    scen = fresh_d if part.kind in FRESH_KINDS else inside_d
    return dask.delayed(_solve_batch, pure=False)(
        sys_d, study_d, scen, list(part.indices), first_stage, state, bids
    )


def _load(folder: RunFolder, key: str) -> xr.Dataset | None:
    """A finished unit's data in memory (None: it has none)."""
    file = folder.path / "units" / f"{key}.nc"
    if not file.is_file():
        return None
    return xr.load_dataset(file)


def _read_units(folder: RunFolder, parts: dict[str, _Part]) -> dict[tuple, list]:
    """The data of every finished unit: (model, day, kind) -> list of datasets."""
    finished = folder.finished(quiet=True)
    out: dict[tuple, list] = {}
    for key, part in parts.items():
        if key not in finished or finished[key].get("status") != "optimal":
            continue
        ds = _load(folder, key)
        if ds is not None:
            out.setdefault((part.model, part.day, part.kind), []).append(ds)
    return out


# --------------------------------------------------------------------------- figures
def _measure_weights(costs: np.ndarray, weights: np.ndarray, alpha: float, beta: float):
    """Weights ``p`` with ``p @ costs = (1 - beta) E[cost] + beta CVaR_alpha[cost]``:
    ``(1 - beta) w + beta q``, ``q`` the tail weights of the CVaR of these costs."""
    c = np.asarray(costs, dtype=float)
    w = np.asarray(weights, dtype=float) / np.sum(weights)
    order = np.argsort(-c, kind="stable")
    tail = 1.0 - alpha
    before = np.concatenate([[0.0], np.cumsum(w[order])[:-1]])
    q = np.zeros_like(w)
    q[order] = np.minimum(w[order], np.maximum(tail - before, 0.0)) / tail
    return (1.0 - beta) * w + beta * q


def _measure(costs: np.ndarray, alpha: float, beta: float, weights=None) -> dict[str, float]:
    """Expected cost, CVaR and the study's risk measure of scenario costs [EUR]."""
    c = np.asarray(costs, dtype=float)
    w = np.full(len(c), 1.0 / len(c)) if weights is None else np.asarray(weights, dtype=float)
    w = w / w.sum()
    expected = float(w @ c)
    tail = cvar(c, w, alpha)
    return {
        "expected_cost_eur": expected,
        "cvar_eur": tail,
        "objective_eur": (1 - beta) * expected + beta * tail,
    }


@dataclass
class _Costs:
    """Costs of one kind on one model-day: per scenario, and per scenario and item."""

    cost: np.ndarray
    items: np.ndarray  # (scenario, item)
    feasible: np.ndarray
    fields: dict

    def complete(self) -> bool:
        return bool(len(self.cost)) and bool(np.isfinite(self.cost).all())

    def measure(self, w, alpha, beta) -> float:
        return float(_measure(self.cost, alpha, beta, w)["objective_eur"])

    def by_item(self, w, alpha, beta) -> np.ndarray:
        p = _measure_weights(self.cost, w, alpha, beta)
        return p @ np.nan_to_num(self.items)


def _costs(parts: list[xr.Dataset], n: int, items: list[str]) -> _Costs:
    feasible = np.full(n, np.nan)
    book = np.full((n, len(items)), np.nan)
    fields = {f: np.full(n, np.nan) for f in _FIELDS}
    for ds in parts:
        s = ds["scenario"].to_numpy().astype(int)
        feasible[s] = ds["feasible"].to_numpy()
        for f in _FIELDS:
            fields[f][s] = ds[f].to_numpy()
        if ds.sizes.get("item", 0):
            cols = [items.index(str(i)) for i in ds["item"].to_numpy()]
            book[np.ix_(s, cols)] = ds["cost_item_eur"].to_numpy()
    ok = feasible == 1.0
    book[ok] = np.nan_to_num(book[ok])  # an item absent from a batch costs nothing there
    return _Costs(fields["cost_eur"], book, feasible, fields)


_DAY_VARS = {
    "oos_expected_cost_eur": "E of the out-of-sample costs (feasible scenarios)",
    "oos_cvar_eur": "CVaR of the out-of-sample costs (feasible scenarios)",
    "oos_objective_eur": "risk measure of the out-of-sample costs (RP out of sample)",
    "oos_feasible_count": "fresh scenarios with a feasible recourse",
    "oos_expected_load_shed_mwh": "mean load shed over the feasible fresh scenarios",
    "oos_expected_curtailment_mwh": "mean curtailment over the feasible fresh scenarios",
    "eev_eur": "risk measure of the expected-value plan on the fresh scenarios (EEV)",
    "rule_eur": "risk measure of the rule plan on the fresh scenarios",
    "ws_eur": "risk measure of wait-and-see on the fresh scenarios",
    "vss_eur": DEFINITIONS["vss_eur"],
    "vss_vs_rule_eur": DEFINITIONS["vss_vs_rule_eur"],
    "oos_gap_eur": DEFINITIONS["oos_gap_eur"],
    "rp_in_sample_eur": "risk measure of the stochastic plan re-solved on the in-sample scenarios",
    "eev_in_sample_eur": "risk measure of the expected-value plan on the in-sample scenarios",
    "rule_in_sample_eur": "risk measure of the rule plan on the in-sample scenarios",
    "ws_in_sample_eur": "risk measure of wait-and-see on the in-sample scenarios",
    "vss_in_sample_eur": DEFINITIONS["vss_in_sample_eur"],
    "vss_vs_rule_in_sample_eur": DEFINITIONS["vss_vs_rule_in_sample_eur"],
    "evpi_eur": DEFINITIONS["evpi_eur"],
    "eev_reserve_up_mwh": "TER reserve up bought by the expected-value plan",
    "eev_reserve_down_mwh": "TER reserve down bought by the expected-value plan",
    "rule_reserve_up_mwh": "TER reserve up bought by the rule plan",
    "rule_reserve_down_mwh": "TER reserve down bought by the rule plan",
    "rule_reserve_up_required_mwh": "TER reserve up the reserve rule asks for",
    "rule_reserve_down_required_mwh": "TER reserve down the reserve rule asks for",
}
_SPLITS = {
    "vss_by_item_eur": "vss_eur by cost item",
    "vss_vs_rule_by_item_eur": "vss_vs_rule_eur by cost item",
    "evpi_by_item_eur": "evpi_eur by cost item",
    "oos_gap_by_item_eur": "oos_gap_eur by cost item",
}


def _evaluation_dataset(results, units, n_scenarios, alpha, beta, rule, wall_s) -> xr.Dataset:
    models = [str(m) for m in results.model.values]
    days = results.day.values
    items = sorted(
        {
            str(i)
            for parts in units.values()
            for ds in parts
            if "item" in ds.coords
            for i in ds["item"].to_numpy()
        }
    )
    M, D, N, K = len(models), len(days), n_scenarios, len(items)
    per = {
        kind: {f: np.full((M, D, N), np.nan) for f in (*_FIELDS, "feasible")}
        for kind in FRESH_KINDS
    }
    day_vars = {name: np.full((M, D), np.nan) for name in _DAY_VARS}
    splits = {name: np.full((M, D, K), np.nan) for name in _SPLITS}
    equal = np.full(N, 1.0 / N)
    period_h = _options(StudyConfig.from_results(results)).period_h
    for mi, model in enumerate(models):
        for di, day in enumerate(days):
            date = pd.Timestamp(day).date()
            got = {k: _costs(units.get((model, date, k), []), N, items) for k in FRESH_KINDS}
            for kind, c in got.items():
                per[kind]["feasible"][mi, di] = c.feasible
                for f in _FIELDS:
                    per[kind][f][mi, di] = c.fields[f]
            _day_figures(day_vars, splits, mi, di, got, equal, alpha, beta)
            weight = results["weight"].sel(model=model, day=day).to_numpy()
            weight = weight[np.isfinite(weight)]
            inside = {
                k: _costs(units.get((model, date, k), []), len(weight), items) for k in INSIDE_KINDS
            }
            _in_sample_figures(day_vars, splits, mi, di, inside, weight, alpha, beta)
            for plan, prefix in (("ev_plan", "eev"), ("rule_plan", "rule")):
                found = units.get((model, date, plan), [])
                if not found:
                    continue
                p = found[0]
                for d in ("up", "down"):
                    day_vars[f"{prefix}_reserve_{d}_mwh"][mi, di] = (
                        float(p[f"reserve_{d}_mw"].sum()) * period_h
                    )
                    if prefix == "rule":
                        day_vars[f"rule_reserve_{d}_required_mwh"][mi, di] = (
                            float(p[f"reserve_{d}_required_mw"].sum()) * period_h
                        )
    return _with_evaluation(results, per, day_vars, splits, items, n_scenarios, rule, wall_s)


def _day_figures(day_vars, splits, mi, di, got, equal, alpha, beta) -> None:
    """Out-of-sample figures of one model-day."""
    oos = got["oos"]
    ok = np.isfinite(oos.cost)
    day_vars["oos_feasible_count"][mi, di] = ok.sum()
    if ok.any():
        m = _measure(oos.cost[ok], alpha, beta)
        day_vars["oos_expected_cost_eur"][mi, di] = m["expected_cost_eur"]
        day_vars["oos_cvar_eur"][mi, di] = m["cvar_eur"]
        day_vars["oos_objective_eur"][mi, di] = m["objective_eur"]
        day_vars["oos_expected_load_shed_mwh"][mi, di] = np.mean(oos.fields["load_shed_mwh"][ok])
        day_vars["oos_expected_curtailment_mwh"][mi, di] = np.mean(
            oos.fields["curtailment_mwh"][ok]
        )
    if not oos.complete():
        return
    rp = oos.measure(equal, alpha, beta)
    rp_items = oos.by_item(equal, alpha, beta)
    for kind, total, diff, split, sign in (
        ("eev", "eev_eur", "vss_eur", "vss_by_item_eur", 1.0),
        ("rule", "rule_eur", "vss_vs_rule_eur", "vss_vs_rule_by_item_eur", 1.0),
        ("ws", "ws_eur", "oos_gap_eur", "oos_gap_by_item_eur", -1.0),
    ):
        c = got[kind]
        if not c.complete():
            continue
        value = c.measure(equal, alpha, beta)
        day_vars[total][mi, di] = value
        day_vars[diff][mi, di] = sign * (value - rp)
        splits[split][mi, di] = sign * (c.by_item(equal, alpha, beta) - rp_items)


def _in_sample_figures(day_vars, splits, mi, di, inside, weight, alpha, beta) -> None:
    """In-sample figures of one model-day (the scenario weights of the run)."""
    rp = inside["rp_in"]
    if not (len(weight) and rp.complete()):
        return
    rp_value = rp.measure(weight, alpha, beta)
    rp_items = rp.by_item(weight, alpha, beta)
    day_vars["rp_in_sample_eur"][mi, di] = rp_value
    for kind, total, diff, split, sign in (
        ("eev_in", "eev_in_sample_eur", "vss_in_sample_eur", None, 1.0),
        ("rule_in", "rule_in_sample_eur", "vss_vs_rule_in_sample_eur", None, 1.0),
        ("ws_in", "ws_in_sample_eur", "evpi_eur", "evpi_by_item_eur", -1.0),
    ):
        c = inside[kind]
        if not c.complete():
            continue
        value = c.measure(weight, alpha, beta)
        day_vars[total][mi, di] = value
        day_vars[diff][mi, di] = sign * (value - rp_value)
        if split is not None:
            splits[split][mi, di] = sign * (c.by_item(weight, alpha, beta) - rp_items)


def _with_evaluation(results, per, day_vars, splits, items, n_scenarios, rule, wall_s):
    """``results`` with the per-scenario, per-day and per-item evaluation variables."""
    dims3 = ("model", "day", "fresh_scenario")
    out = results.drop_vars(
        [v for v in results.data_vars if v in day_vars or v in splits], errors="ignore"
    )
    if "item" in out.dims:
        out = out.drop_dims("item")
    labels = {
        "oos": "the stochastic solution's first stage",
        "eev": "the expected-value problem's first stage",
        "rule": f"the mean-scenario schedule with reserve rule {rule}",
        "ws": "wait-and-see (perfect information)",
    }
    for kind, arrays in per.items():
        out[f"{kind}_cost_eur"] = (
            dims3,
            arrays["cost_eur"],
            {"units": "EUR", "long_name": f"cost on fresh scenarios, {labels[kind]}"},
        )
        out[f"{kind}_feasible"] = (
            dims3,
            arrays["feasible"],
            {"units": "1", "long_name": f"recourse feasible (1) or not (0), {labels[kind]}"},
        )
        for f in ("load_shed_mwh", "curtailment_mwh", "spill_mwh"):
            out[f"{kind}_{f}"] = (
                dims3,
                arrays[f],
                {
                    "units": "MWh",
                    "long_name": f"{f.rsplit('_', 1)[0]} on fresh scenarios, {labels[kind]}",
                },
            )
    for name, values in day_vars.items():
        unit = "1" if name.endswith("_count") else name.rsplit("_", 1)[-1]
        unit = {"eur": "EUR", "mwh": "MWh"}.get(unit, unit)
        out[name] = (("model", "day"), values, {"units": unit, "long_name": _DAY_VARS[name]})
    for name, values in splits.items():
        out[name] = (("model", "day", "item"), values, {"units": "EUR", "long_name": _SPLITS[name]})
    out = out.assign_coords(fresh_scenario=np.arange(n_scenarios), item=np.array(items, dtype=str))
    out.attrs.update(
        evaluation_scenarios=int(n_scenarios),
        evaluation_stream=FRESH_STREAM,
        evaluation_wall_seconds=round(wall_s, 2),
        evaluation_measure="(1 - beta) E[cost] + beta CVaR_alpha[cost], equal weights",
        evaluation_reserve_rule=str(rule),
    )
    return out


def evaluation_summary(ds: xr.Dataset) -> dict:
    """The evaluation of a dataset as one JSON-ready dict (figures summed over days).

    ``scenarios`` and ``feasible`` count (fresh scenario, day) pairs; ``definitions``
    says what each figure is.
    """

    def total(name: str, sel) -> float | None:
        if name not in ds:
            return None
        v = ds[name].sel(sel).values.astype(float)
        return float(np.nansum(v)) if np.isfinite(v).any() else None

    def split(name: str, sel) -> dict | None:
        if name not in ds or "item" not in ds[name].dims:
            return None
        v = ds[name].sel(sel)
        if not np.isfinite(v.values).any():
            return None
        summed = v.sum("day", skipna=True) if "day" in v.dims else v
        return {str(i): float(x) for i, x in zip(v["item"].values, summed.values, strict=True)}

    models = {}
    for model in ds.model.values:
        sel = {"model": model}
        solved = int(ds["solver_status"].sel(sel).isin(SOLVED_STATUSES).sum())
        n = int(ds.attrs.get("evaluation_scenarios", ds.sizes.get("fresh_scenario", 0)))
        models[str(model)] = {
            "days": solved,
            "reserve_rule": ds.attrs.get("evaluation_reserve_rule"),
            "out_of_sample": {
                "scenarios": n * solved,
                "feasible": int(np.nansum(ds["oos_feasible_count"].sel(sel).values)),
                "expected_cost_eur": total("oos_expected_cost_eur", sel),
                "cvar_eur": total("oos_cvar_eur", sel),
                "load_shed_mwh": total("oos_expected_load_shed_mwh", sel),
                "curtailment_mwh": total("oos_expected_curtailment_mwh", sel),
            },
            "in_sample": {
                "expected_cost_eur": total("expected_cost_eur", sel),
                "cvar_eur": total("cvar_eur", sel),
            },
            "rp_eur": total("oos_objective_eur", sel),
            "eev_eur": total("eev_eur", sel),
            "rule_eur": total("rule_eur", sel),
            "ws_eur": total("ws_eur", sel),
            "vss_eur": total("vss_eur", sel),
            "vss_vs_rule_eur": total("vss_vs_rule_eur", sel),
            "oos_gap_eur": total("oos_gap_eur", sel),
            "rp_in_sample_eur": total("rp_in_sample_eur", sel),
            "eev_in_sample_eur": total("eev_in_sample_eur", sel),
            "rule_in_sample_eur": total("rule_in_sample_eur", sel),
            "ws_in_sample_eur": total("ws_in_sample_eur", sel),
            "vss_in_sample_eur": total("vss_in_sample_eur", sel),
            "vss_vs_rule_in_sample_eur": total("vss_vs_rule_in_sample_eur", sel),
            "evpi_eur": total("evpi_eur", sel),
            "vss_by_item_eur": split("vss_by_item_eur", sel),
            "vss_vs_rule_by_item_eur": split("vss_vs_rule_by_item_eur", sel),
            "evpi_by_item_eur": split("evpi_by_item_eur", sel),
            "oos_gap_by_item_eur": split("oos_gap_by_item_eur", sel),
            "reserve_mwh": {
                f"{plan}_{d}": total(f"{plan}_reserve_{d}_mwh", sel)
                for plan in ("eev", "rule")
                for d in ("up", "down")
            }
            | {
                f"rule_{d}_required": total(f"rule_reserve_{d}_required_mwh", sel)
                for d in ("up", "down")
            },
        }
    first = next(iter(models.values()))
    return {**first, "models": models, "definitions": dict(DEFINITIONS)}
