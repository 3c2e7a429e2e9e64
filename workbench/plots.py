"""Figures of a run: one per model and day for a report, and the cross-model comparison.

The report figures (:func:`plot_demand`, :func:`plot_dispatch`, :func:`plot_uncertainty`,
:func:`plot_interfaces`, :func:`plot_voltages`, :func:`plot_flexibility_regions`) take the
results Dataset of ``workbench run`` (``docs/results.md``), a model and a day, and return
a :class:`matplotlib.figure.Figure`; :func:`write_plots` writes them for every model and
day (or a chosen one), one file each. Time axes are absolute: the day plus the step's
offset; a step's value holds until the next step starts.
"""

from __future__ import annotations

import copy
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
import yaml
from matplotlib.figure import Figure

from stochastic.flexibility import p_range_excess_mw
from stochastic.status import SOLVED_STATUSES
from workbench.compare import stage_hours
from workbench.contract import to_internal
from workbench.results import OutputError
from workbench.statistics import Statistics, StatisticsError

__all__ = [
    "FORMATS",
    "PlotError",
    "PlotReport",
    "dispatch_categories",
    "has_flexibility_regions",
    "plot_comparison",
    "plot_cost_breakdown",
    "plot_demand",
    "plot_der_by_model",
    "plot_dispatch",
    "plot_evaluation",
    "plot_flexibility_regions",
    "plot_forecast_fan",
    "plot_interfaces",
    "plot_regions",
    "plot_reserves",
    "plot_uncertainty",
    "plot_voltage_envelopes",
    "plot_voltages",
    "setpoints_outside_region",
    "voltage_limits",
    "weighted_quantiles",
    "write_comparison_plots",
    "write_plots",
]

#: file formats :func:`write_plots` writes
FORMATS = ("png", "svg", "pdf")

#: the figures :func:`write_plots` writes per model and day (``<feeder>``: one per feeder)
REPORT_FIGURES = (
    "demand",
    "dispatch",
    "uncertainty",
    "interfaces",
    "voltages",
    "loading",
    "map-transmission",
    "map-<feeder>",
    "flexibility-<feeder>",
    "regions-<feeder>",
)

#: resolution of raster (PNG) figures [dots per inch]; 300 for print
DPI = 110

#: vector files keep their words as text: SVG as ``<text>`` elements, PDF (and PS) with
#: the fonts embedded as TrueType (type 42), so a figure's text can be searched, copied
#: and edited in a report; a fixed hash salt makes SVG files reproducible
VECTOR_RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "workbench",
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
}

#: scenario-fan quantiles: outer band, inner band, median
FAN_QUANTILES = (0.0, 0.05, 0.5, 0.95, 1.0)

CAPTION_TER = (
    "TER: transmission energy resources (bulk generators on the transmission network), "
    "by technology. DER: distributed energy resources on the feeders."
)
CAPTION_SIGNS = (
    "Signs: injection into the grid is positive. Battery: + discharging, - charging. "
    "EV chargers: - charging (they only consume). Areas below zero are consumption by "
    "storage and EVs; the areas above zero then exceed the demand by that amount."
)

#: colours of the dispatch categories (technologies of cases/data/ter_technologies_2016.csv)
_COLORS = {
    "nuclear": "#7b3294",
    "lignite": "#8c510a",
    "hard_coal": "#404040",
    "ccgt": "#f4a582",
    "ocgt": "#d6604d",
    "oil": "#67001f",
    "external grid (imports)": "#969696",
    "TER without technology": "#4d4d4d",
    "DER PV": "#fdd835",
    "DER battery": "#1a9850",
    "DER EV": "#2166ac",
    "other feeder units": "#80cdc1",
    "load shed": "#e41a1c",
}


class PlotError(OutputError):
    """A plot that cannot be drawn from the results: an unknown model or day, a model-day
    without a schedule, a variable the figure needs missing."""


@dataclass
class PlotReport:
    """What :func:`write_plots` wrote (``paths``) and which model-days it skipped, and why."""

    paths: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _plot_layout(ds: xr.Dataset) -> xr.Dataset:
    """The results in the layout the figures read (dims ``model``, ``day``, ``scenario``,
    ``time`` as offsets from midnight, ...), from either layout (see
    :mod:`workbench.contract`)."""
    return to_internal(ds)


# --------------------------------------------------------------------------------------
# selection, time axis, statistics


def _day_label(day) -> str:
    return str(pd.Timestamp(day).date())


def _model_days(ds: xr.Dataset, model: str | None, day) -> tuple[list[str], list]:
    """The models and days asked for (all when None), checked against the results."""
    models = [str(m) for m in ds.model.values]
    days = [pd.Timestamp(d) for d in ds.day.values]
    if model is not None:
        if str(model) not in models:
            raise PlotError(
                f"model '{model}' is not in the results; available: {', '.join(models)}"
            )
        models = [str(model)]
    if day is not None:
        try:
            want = pd.Timestamp(day).normalize()
        except (TypeError, ValueError):
            raise PlotError(f"day '{day}' is not a date; give it as YYYY-MM-DD") from None
        match = [d for d in days if d.normalize() == want]
        if not match:
            raise PlotError(
                f"day {want.date()} is not in the results; available: "
                f"{', '.join(_day_label(d) for d in days)}"
            )
        days = match
    return models, days


def _select(ds: xr.Dataset, model: str | None, day) -> tuple[xr.Dataset, str, pd.Timestamp]:
    """One model-day with a schedule; ``model`` / ``day`` may be None when the results
    hold only one."""
    models, days = _model_days(ds, model, day)
    for what, values in (("model", models), ("day", days)):
        if len(values) != 1:
            raise PlotError(
                f"the results hold {len(values)} {what}s; choose one ({what}=...): "
                f"{', '.join(map(str, values if what == 'model' else map(_day_label, values)))}"
            )
    m, d = models[0], days[0]
    one = ds.sel(model=m, day=d.to_datetime64())
    status = str(one["solver_status"].values) if "solver_status" in one else "missing"
    if status not in SOLVED_STATUSES:
        msg = str(one["solver_message"].values) if "solver_message" in one else ""
        raise PlotError(
            f"model '{m}' on {_day_label(d)} has no schedule (status {status}"
            f"{': ' + msg if msg else ''}); choose another model or day"
        )
    return one, m, d


def _need(d: xr.Dataset, *names: str) -> None:
    missing = [n for n in names if n not in d]
    if missing:
        raise PlotError(
            f"the results lack {', '.join(missing)}; write them with `workbench run` of "
            "this version"
        )


def _study_config(ds: xr.Dataset) -> dict:
    text = ds.attrs.get("study_config_yaml")
    if not text:
        raise PlotError(
            "the results carry no study configuration (attribute 'study_config_yaml'); "
            "they were not written by `workbench run`"
        )
    return yaml.safe_load(text) or {}


def _study_name(ds: xr.Dataset) -> str:
    if ds.attrs.get("study_name"):
        return str(ds.attrs["study_name"])
    return str(_study_config(ds).get("name", "study"))


def _step(d: xr.Dataset, ds: xr.Dataset) -> pd.Timedelta:
    t = pd.to_timedelta(d.time.values)
    if len(t) > 1:
        return pd.Timedelta(np.diff(t.values).min())
    minutes = _study_config(ds).get("resolution", {}).get("second_stage_minutes")
    if minutes is None:
        raise PlotError("one time step and no resolution.second_stage_minutes in the config")
    return pd.Timedelta(minutes=int(minutes))


def _edges(d: xr.Dataset, ds: xr.Dataset, day: pd.Timestamp) -> np.ndarray:
    """Absolute step starts (day + time offset) and the end of the last step."""
    t = day + pd.to_timedelta(d.time.values)
    return np.r_[t.values, (t[-1] + _step(d, ds)).to_datetime64()]


def _middles(edges: np.ndarray) -> np.ndarray:
    """Middle of every step, for values drawn as markers."""
    return edges[:-1] + (edges[1:] - edges[:-1]) / 2


def _ext(y) -> np.ndarray:
    """Values per step with the last repeated, for drawing as steps over :func:`_edges`."""
    y = np.asarray(y, dtype=float)
    return np.concatenate([y, y[..., -1:]], axis=-1)


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, q) -> np.ndarray:
    """Quantiles of scenario values under scenario weights (inverse of the weighted CDF).

    Parameters
    ----------
    values : ndarray (scenario, ...)
        One value per scenario and any trailing shape.
    weights : ndarray (scenario,)
        Scenario probabilities [1], summing to 1.
    q : sequence of float
        Probabilities in [0, 1]; 0 gives the minimum, 1 the maximum.

    Returns
    -------
    ndarray (len(q), ...)
        The smallest scenario value whose cumulative weight reaches each ``q``; scenarios
        of weight 0 are not values of the distribution.

    Notes
    -----
    NumPy's weighted ``inverted_cdf`` quantile, with ``q`` lowered by 1e-12: a probability
    that is a sum of weights (0.05 of 20 equal scenarios) stays on its scenario, whatever
    the rounding of the cumulative weights (NumPy alone moves it to the next scenario).
    """
    values = np.asarray(values, dtype=float)
    w = np.asarray(weights, dtype=float)
    q = np.asarray(q, dtype=float)
    if w.ndim != 1 or len(w) != values.shape[0]:
        raise ValueError(f"weights {w.shape} do not match {values.shape[0]} scenarios")
    if not np.isclose(w.sum(), 1.0, atol=1e-6) or (w < 0).any():
        raise ValueError(f"scenario weights must be >= 0 and sum to 1, got sum {w.sum():.6g}")
    p = np.clip(q - 1e-12, 0.0, 1.0)
    return np.quantile(values, p, axis=0, weights=w, method="inverted_cdf")


def _expected(da: xr.DataArray, w: xr.DataArray) -> np.ndarray:
    return (da * w).sum("scenario").to_numpy()


def _by_scenario(da: xr.DataArray) -> np.ndarray:
    """Values of a (scenario, time) quantity as an array in that order."""
    return da.transpose("scenario", "time").to_numpy()


def _chosen_interface(d: xr.Dataset, interface: str | None) -> str:
    """``interface`` checked against the model-day ``d`` (the only one when None)."""
    names = _interface_names(d)
    if interface is None:
        if len(names) != 1:
            raise PlotError(f"choose an interface: {', '.join(names)}")
        interface = names[0]
    if interface not in names:
        raise PlotError(f"interface '{interface}' unknown; available: {', '.join(names)}")
    return interface


def _interface_names(d: xr.Dataset) -> list[str]:
    return [str(i) for i in d.interface.values]


def _steps(ax, x, y, **kw) -> None:
    """Values per step ``y`` drawn as steps over the edges ``x``."""
    ax.step(x, _ext(y), where="post", **kw)


def _fan(ax, x, values: np.ndarray, w: np.ndarray, color, label: str) -> None:
    """5-95 % and min-max bands and the median of (scenario, time) values, as steps."""
    lo, q05, med, q95, hi = weighted_quantiles(values, w, FAN_QUANTILES)
    ax.fill_between(x, _ext(lo), _ext(hi), step="post", color=color, alpha=0.15, lw=0)
    ax.fill_between(
        x,
        _ext(q05),
        _ext(q95),
        step="post",
        color=color,
        alpha=0.35,
        lw=0,
        label=f"{label}: 5-95 % (light: min-max)",
    )
    _steps(ax, x, med, color=color, lw=1.5, label=f"{label}: median")


# --------------------------------------------------------------------------------------
# figure frame: title, time axis, legend outside, caption


def _figure(n_rows: int = 1, n_cols: int = 1, caption: str | None = None, height=3.2, **kw):
    """A constrained-layout figure with ``n_rows`` x ``n_cols`` axes and, with a caption,
    a text row below them; ``height`` [in] of every row, or one per row."""
    width = 11.0 if n_cols == 1 else 5.2 * n_cols + 2.5
    rows = n_rows + (1 if caption else 0)
    heights = list(height) if np.iterable(height) else [height] * n_rows
    ratios = heights + ([0.8] if caption else [])
    fig = plt.figure(figsize=(width, sum(ratios) + 0.9), layout="constrained")
    gs = fig.add_gridspec(rows, n_cols, height_ratios=ratios)
    axes = np.empty((n_rows, n_cols), dtype=object)
    for r in range(n_rows):
        for c in range(n_cols):
            share = axes[0, c] if r else None
            axes[r, c] = fig.add_subplot(gs[r, c], sharex=share if kw.get("sharex") else None)
    if caption:
        cap = fig.add_subplot(gs[n_rows, :])
        cap.set_axis_off()
        text = "\n".join(textwrap.wrap(caption, int(width * 15)))
        note = cap.text(0.0, 1.0, text, va="top", ha="left", fontsize=8, transform=cap.transAxes)
        note.set_in_layout(False)
    return fig, axes


def _title(fig: Figure, ds: xr.Dataset, what: str, model: str, day: pd.Timestamp) -> None:
    fig.suptitle(f"{_study_name(ds)}: {what}\nmodel {model}, day {_day_label(day)}")


def _time_axis(ax, day: pd.Timestamp, bottom: bool = True) -> None:
    """Clock-time ticks; the axis label and tick labels only on the ``bottom`` axes of a
    column."""
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    if bottom:
        ax.set_xlabel(f"time on {_day_label(day)} [hh:mm]")
    else:
        ax.tick_params(labelbottom=False)


def _grid_labels(axes, xlabel: str, ylabel: str) -> None:
    """Axis labels of a grid of panels: x on the bottom row, y on the left column."""
    for ax in axes[-1]:
        ax.set_xlabel(xlabel)
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel)


def _legend_outside(fig: Figure, axes) -> None:
    """One legend for the figure, right of the axes (never over the data)."""
    handles, labels, seen = [], [], set()
    for ax in np.ravel(axes):
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in seen:
                seen.add(lab)
                handles.append(h)
                labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc="outside right upper", fontsize=8)


def _scenario_note(w: np.ndarray) -> str:
    return f"{len(w)} scenarios (weights {w.min():.3g}..{w.max():.3g})"


# --------------------------------------------------------------------------------------
# the power balance


def _pv_available(d: xr.Dataset) -> xr.DataArray:
    pv = d["der_type"] == "pv"
    return (d["der_p_mw"] + d["curtailment_mw"].fillna(0.0)).where(pv).sum("der")


def _other_units(d: xr.Dataset) -> xr.DataArray:
    """Output of the feeders' fixed-profile units (wind, CHP, the network's own
    generators), net of their spill: what closes the lossless balance
    TER + DER + other = demand - shed [MW] (scenario, time)."""
    return (
        d["demand_mw"].sum("bus")
        - d["load_shed_mw"].sum("bus")
        - d["ter_p_mw"].sum("gen")
        - d["der_p_mw"].sum("der")
    )


def _ter_technologies(ds: xr.Dataset, gens) -> dict[str, str]:
    """Category of every TER unit: its technology in the study, ``external grid`` for an
    ``ext_grid`` without one, ``TER without technology`` otherwise (the case's cost)."""
    tech = (_study_config(ds).get("transmission") or {}).get("technologies") or {}
    out = {}
    for g in map(str, gens):
        if g in tech:
            out[g] = str(tech[g])
        elif g.startswith("ext_grid/"):
            out[g] = "external grid (imports)"
        else:
            out[g] = "TER without technology"
    return out


def dispatch_categories(
    ds: xr.Dataset, model: str | None = None, day=None, per_unit: bool = False
) -> dict[str, np.ndarray]:
    """Expected injection per dispatch category over the day [MW], by (time,).

    Categories: TER per technology (per unit with ``per_unit``), ``DER PV``,
    ``DER battery``, ``DER EV`` (per feeder with ``per_unit``), ``other feeder units``
    (fixed-profile units, from the balance) and ``load shed``; injection positive.
    Their sum is the expected demand [MW] (lossless linear models).
    """
    ds = _plot_layout(ds)
    d, _, _ = _select(ds, model, day)
    _need(d, "weight", "ter_p_mw", "der_p_mw", "demand_mw", "load_shed_mw")
    w = d["weight"]
    out: dict[str, np.ndarray] = {}
    techs = _ter_technologies(ds, d.gen.values)
    ter = d["ter_p_mw"]
    for g, tech in techs.items():
        key = f"{g} ({tech})" if per_unit else tech
        out[key] = out.get(key, 0.0) + _expected(ter.sel(gen=g), w)
    der_type = d["der_type"].values.astype(str)
    feeder = np.array([n.split("/")[0] for n in d.der.values.astype(str)])
    for kind, label in (("pv", "PV"), ("battery", "battery"), ("ev", "EV")):
        groups = sorted(set(feeder[der_type == kind])) if per_unit else [None]
        for f in groups:
            sel = der_type == kind if f is None else (der_type == kind) & (feeder == f)
            if not sel.any():
                continue
            key = f"DER {label}" if f is None else f"DER {label} {f}"
            out[key] = _expected(d["der_p_mw"].isel(der=np.flatnonzero(sel)).sum("der"), w)
    other = _expected(_other_units(d), w)
    if np.abs(other).max() > 1e-6:
        out["other feeder units"] = other
    shed = _expected(d["load_shed_mw"].sum("bus"), w)
    if shed.max() > 1e-6:
        out["load shed"] = shed
    return out


def _category_color(key: str, i: int):
    for name, color in _COLORS.items():
        if key == name or key.endswith(f"({name})") or key.startswith(f"{name} "):
            return color
    return plt.get_cmap("tab20")(i % 20)


# --------------------------------------------------------------------------------------
# the figures


def plot_demand(ds: xr.Dataset, model: str | None = None, day=None) -> Figure:
    """Demand and net load over the day with their scenario fans.

    Net load is the demand minus the available PV (before curtailment) and the feeders'
    fixed-profile units (wind, ...): what TER, storage, EV and shedding must cover.

    Parameters
    ----------
    ds : xarray.Dataset
        Results of ``workbench run``.
    model, day : str, date-like, optional
        The model and day; may be left out when the results hold only one.

    Returns
    -------
    matplotlib.figure.Figure
    """
    ds = _plot_layout(ds)
    d, model, day = _select(ds, model, day)
    _need(d, "demand_mw", "der_p_mw", "curtailment_mw", "weight")
    w = d["weight"].to_numpy()
    x = _edges(d, ds, day)
    demand = d["demand_mw"].sum("bus")
    net = demand - _pv_available(d) - _other_units(d)
    fig, axes = _figure(
        caption=(
            "Net load = demand - available PV (before curtailment) - fixed-profile feeder "
            "units (wind, CHP; from the power balance). Bands over the "
            f"{_scenario_note(w)}: dark 5-95 %, light min-max; line: weighted median."
        )
    )
    ax = axes[0, 0]
    _fan(ax, x, _by_scenario(demand), w, "tab:blue", "demand")
    _fan(ax, x, _by_scenario(net), w, "tab:orange", "net load")
    ax.set_ylabel("active power [MW]")
    ax.axhline(0.0, color="grey", lw=0.5)
    _time_axis(ax, day)
    _title(fig, ds, "demand and net load (scenario fans)", model, day)
    _legend_outside(fig, axes)
    return fig


def plot_dispatch(
    ds: xr.Dataset, model: str | None = None, day=None, per_unit: bool = False
) -> Figure:
    """Expected dispatch per technology as stacked areas, with the expected demand.

    Injections stack upwards from zero, consumption (battery and EV charging) downwards;
    the signed areas of a step sum to the expected demand.

    Parameters
    ----------
    ds : xarray.Dataset
        Results of ``workbench run``.
    model, day : str, date-like, optional
        The model and day; may be left out when the results hold only one.
    per_unit : bool
        One area per TER unit and per feeder's DER type instead of per technology.

    Returns
    -------
    matplotlib.figure.Figure
        Each area is a ``fill_between`` collection with gid ``stack:<category>:<+|->``.
    """
    ds = _plot_layout(ds)
    d, model, day = _select(ds, model, day)
    cats = dispatch_categories(ds, model, day, per_unit=per_unit)
    w = d["weight"].to_numpy()
    x = _edges(d, ds, day)
    committed = "ter_commitment" in d and bool(np.isfinite(d["ter_commitment"]).all())
    caption = (
        f"{CAPTION_TER} {CAPTION_SIGNS} Expected values over the {_scenario_note(w)}. "
        "Other feeder units: fixed-profile generators of the feeders (wind, CHP), "
        "from the power balance."
    )
    if committed:
        caption += (
            " Lower panel: unit commitment, filled where a unit is on (shade: the on/off "
            "value of a relaxed commitment), hatched where off; > marks a start-up."
        )
    fig, axes = _figure(
        n_rows=2 if committed else 1,
        caption=caption,
        height=[4.2, 0.25 * d.sizes["gen"] + 0.6] if committed else 4.2,
        sharex=committed,
    )
    ax = axes[0, 0]
    up = np.zeros(len(x) - 1)
    down = np.zeros(len(x) - 1)
    for i, (key, y) in enumerate(cats.items()):
        color = plt.get_cmap("tab20")(i % 20) if per_unit else _category_color(key, i)
        pos, neg = np.maximum(y, 0.0), np.minimum(y, 0.0)
        labelled = False
        for part, base, sign in ((pos, up, "+"), (neg, down, "-")):
            if not (np.abs(part) > 1e-9).any():
                continue
            ax.fill_between(
                x,
                _ext(base),
                _ext(base + part),
                step="post",
                color=color,
                lw=0,
                label=None if labelled else key,
                gid=f"stack:{key}:{sign}",
            )
            labelled = True
            base += part
    demand = _expected(d["demand_mw"].sum("bus"), d["weight"])
    _steps(ax, x, demand, color="k", lw=1.6, label="demand (expected)")
    ax.axhline(0.0, color="k", lw=0.6)
    if "ter_reference_mw" in d and not per_unit:
        ref = d["ter_reference_mw"].sum("gen").to_numpy()
        _steps(
            ax,
            x,
            ref,
            color="tab:red",
            lw=1.2,
            ls="--",
            label="TER day-ahead schedule as followed (all units)",
        )
    ax.set_ylabel("active power [MW]\n(+ injection, - consumption)")
    _time_axis(ax, day, bottom=not committed)
    if committed:
        _draw_commitment(axes[1, 0], x, d)
        _time_axis(axes[1, 0], day)
    _title(
        fig,
        ds,
        "expected dispatch" + (" per unit" if per_unit else " per technology"),
        model,
        day,
    )
    _legend_outside(fig, axes)
    return fig


def _draw_commitment(ax, x: np.ndarray, d: xr.Dataset) -> None:
    """On/off of every TER per period (rows: units), start-ups marked."""
    u = d["ter_commitment"].transpose("period", "gen").to_numpy()
    n_periods, n_gen = u.shape
    xp = x[:: (len(x) - 1) // n_periods]
    ax.fill_between(
        [xp[0], xp[-1]],
        -0.5,
        n_gen - 0.5,
        facecolor="none",
        hatch="///",
        edgecolor="0.75",
        lw=0,
        gid="commitment:off",
    )
    on = np.ma.masked_less(u.T, 1e-6)
    ax.pcolormesh(
        xp, np.arange(n_gen + 1) - 0.5, on, cmap="Greens", vmin=0.0, vmax=1.0, gid="commitment:on"
    )
    if "ter_startup" in d:
        p, g = np.nonzero(d["ter_startup"].transpose("period", "gen").to_numpy() > 0.5)
        if len(p):
            ax.scatter(xp[p], g, marker=">", color="k", s=18, zorder=3, gid="startup")
    names = [str(n) for n in d["gen"].to_numpy()]
    if "gen_technology" in d.coords:
        tech = [str(t) for t in d["gen_technology"].to_numpy()]
        names = [n if t == "case" else f"{n} ({t})" for n, t in zip(names, tech, strict=True)]
    ax.set_yticks(np.arange(n_gen), names, fontsize=7)
    ax.set_ylim(n_gen - 0.5, -0.5)
    ax.set_ylabel("TER on/off")


def plot_uncertainty(ds: xr.Dataset, model: str | None = None, day=None) -> Figure:
    """Scenario fans of the key uncertain quantities: available PV, demand and the total
    import of the feeders from transmission.

    Parameters
    ----------
    ds : xarray.Dataset
        Results of ``workbench run``.
    model, day : str, date-like, optional
        The model and day; may be left out when the results hold only one.

    Returns
    -------
    matplotlib.figure.Figure
        Three panels sharing the time axis; thin grey lines are the scenarios.
    """
    ds = _plot_layout(ds)
    d, model, day = _select(ds, model, day)
    _need(d, "demand_mw", "der_p_mw", "curtailment_mw", "interface_p_mw", "weight")
    w = d["weight"].to_numpy()
    x = _edges(d, ds, day)
    panels = [
        ("DER PV available [MW]", _pv_available(d), "goldenrod", "PV available"),
        ("demand [MW]", d["demand_mw"].sum("bus"), "tab:blue", "demand"),
        (
            "feeder import from\ntransmission [MW]",
            d["interface_p_mw"].sum("interface"),
            "tab:green",
            "interface P (all feeders)",
        ),
    ]
    fig, axes = _figure(
        3,
        caption=f"{_scenario_note(w)}; dark band 5-95 %, light min-max, thick line: median, "
        "thin grey lines: the scenarios.",
        height=2.4,
        sharex=True,
    )
    for r, (ylabel, da, color, label) in enumerate(panels):
        ax = axes[r, 0]
        v = _by_scenario(da)
        for s in range(v.shape[0]):
            _steps(ax, x, v[s], color="grey", lw=0.5, alpha=0.6)
        _fan(ax, x, v, w, color, label)
        ax.set_ylabel(ylabel)
        _time_axis(ax, day, bottom=r == len(panels) - 1)
    _title(fig, ds, "scenario fans of the uncertain quantities", model, day)
    _legend_outside(fig, axes)
    return fig


#: the expected schedule on the interface P panel: variable and line style
_SCHEDULE_LINES = (
    ("interface_setpoint_mw", {"color": "tab:red", "lw": 1.4}, "TSO set-point (expected)"),
    (
        "interface_baseline_mw",
        {"color": "tab:purple", "lw": 1.0, "ls": ":"},
        "import at the DER bids (expected)",
    ),
)


def _draw_schedule(ax, x, f: xr.Dataset, weight: xr.DataArray) -> None:
    """The expected schedule the model set at one interface [MW]: the TSO set-point and
    the import at the DER bids (DSO-managed models), where the results carry them."""
    for name, style, label in _SCHEDULE_LINES:
        if name in f and np.isfinite(f[name]).any():
            _steps(ax, x, _expected(f[name], weight), label=label, **style)


def _draw_ac_points(ax, x, ac: xr.DataArray) -> None:
    """The AC power-flow import [MW] as markers mid-step, the checked steps only."""
    values = _by_scenario(ac)
    t = _middles(x)
    for s in range(values.shape[0]):
        ok = np.isfinite(values[s])
        ax.plot(
            t[ok],
            values[s][ok],
            ".",
            color="tab:red",
            ms=3,
            label="P AC power flow (checked steps)",
        )


def _draw_interface_p(ax, x, f: xr.Dataset, weight: xr.DataArray) -> None:
    """One interface's import P [MW]: scenario fan, expectation, schedule and AC check.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    x : ndarray
        Step edges (absolute time).
    f : xarray.Dataset
        The results of one model-day at one interface.
    weight : xarray.DataArray
        Scenario weights [1].
    """
    p = f["interface_p_mw"]
    _fan(ax, x, _by_scenario(p), weight.to_numpy(), "tab:green", "P linear model")
    _steps(ax, x, _expected(p, weight), color="k", lw=1.0, ls="--", label="P expected")
    _draw_schedule(ax, x, f, weight)
    if "interface_p_mw_ac" in f:
        _draw_ac_points(ax, x, f["interface_p_mw_ac"])


def _draw_interface_row(
    axes, x, f: xr.Dataset, weight: xr.DataArray, day: pd.Timestamp, bottom: bool
) -> None:
    """One feeder's row of the interface figure: P [MW] (left) and Q [Mvar] (right).

    Parameters
    ----------
    axes : pair of matplotlib.axes.Axes
    x : ndarray
        Step edges (absolute time).
    f : xarray.Dataset
        The results of one model-day at one interface.
    weight : xarray.DataArray
        Scenario weights [1].
    day : pandas.Timestamp
    bottom : bool
        The last row: time-axis label and tick labels.
    """
    ax_p, ax_q = axes
    name = str(f["interface"].item())
    _draw_interface_p(ax_p, x, f, weight)
    _fan(
        ax_q,
        x,
        _by_scenario(f["interface_q_mvar"]),
        weight.to_numpy(),
        "tab:cyan",
        "Q linear model",
    )
    ax_p.set_ylabel(f"{name}: P [MW]")
    ax_q.set_ylabel(f"{name}: Q [Mvar]")
    for ax in (ax_p, ax_q):
        ax.axhline(0.0, color="grey", lw=0.5)
        _time_axis(ax, day, bottom=bottom)


def plot_interfaces(ds: xr.Dataset, model: str | None = None, day=None) -> Figure:
    """TSO-DSO interface P and Q per feeder: scenario spread, expectation, the schedule
    the model set (DSO-managed: TSO set-point and the import at the DER bids) and the AC
    check where it ran.

    Parameters
    ----------
    ds : xarray.Dataset
        Results of ``workbench run``.
    model, day : str, date-like, optional
        The model and day; may be left out when the results hold only one.

    Returns
    -------
    matplotlib.figure.Figure
        One row per feeder: P (left) and Q (right), positive into the feeder.
    """
    ds = _plot_layout(ds)
    d, model, day = _select(ds, model, day)
    _need(d, "interface_p_mw", "interface_q_mvar", "weight")
    w = d["weight"].to_numpy()
    x = _edges(d, ds, day)
    names = _interface_names(d)
    fig, axes = _figure(
        len(names),
        2,
        caption=f"Positive: power from transmission into the feeder. {_scenario_note(w)}; "
        "dark band 5-95 %, light min-max, line: median.",
        height=2.6,
        sharex=True,
    )
    for r, name in enumerate(names):
        f = d.sel(interface=name)
        _draw_interface_row(axes[r], x, f, d["weight"], day, bottom=r == len(names) - 1)
    _title(fig, ds, "TSO-DSO interface flows per feeder", model, day)
    _legend_outside(fig, axes)
    return fig


def voltage_limits(ds: xr.Dataset) -> dict[str, tuple[float, float]]:
    """Each feeder's voltage limits ``(vm_min_pu, vm_max_pu)`` [pu] from the study
    configuration of the results (the config's defaults where a feeder leaves them out)."""
    from cases.study import FeederConfig

    fields = FeederConfig.model_fields
    out = {}
    for f in _study_config(ds).get("feeders") or []:
        out[str(f["name"])] = (
            float(f.get("vm_min_pu", fields["vm_min_pu"].default)),
            float(f.get("vm_max_pu", fields["vm_max_pu"].default)),
        )
    return out


def plot_voltages(ds: xr.Dataset, model: str | None = None, day=None) -> Figure:
    """Voltage envelopes per feeder: lowest and highest bus voltage over the feeder's
    buses and the scenarios per step, with the feeder's limits and the AC check.

    Parameters
    ----------
    ds : xarray.Dataset
        Results of ``workbench run``.
    model, day : str, date-like, optional
        The model and day; may be left out when the results hold only one.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per feeder; the limits are horizontal lines (gid ``vm_min_pu`` and
        ``vm_max_pu``).
    """
    ds = _plot_layout(ds)
    d, model, day = _select(ds, model, day)
    _need(d, "vm_pu_linear")
    limits = voltage_limits(ds)
    x = _edges(d, ds, day)
    names = _interface_names(d)
    unknown = [n for n in names if n not in limits]
    if unknown:
        raise PlotError(f"feeders {unknown} are not in the results' study configuration")
    bus = d.bus.values.astype(str)
    fig, axes = _figure(
        len(names),
        caption="Envelope over the feeder's buses and all scenarios per step. LinDistFlow: "
        "the linear model of the optimisation; AC: pandapower power flow of the dispatch "
        "(checked steps and scenarios only).",
        height=2.6,
        sharex=True,
    )
    for r, name in enumerate(names):
        ax = axes[r, 0]
        sel = np.flatnonzero(np.char.startswith(bus, f"{name}/"))
        lin = d["vm_pu_linear"].isel(bus=sel).transpose("scenario", "time", "bus").to_numpy()
        ax.fill_between(
            x,
            _ext(np.nanmin(lin, axis=(0, 2))),
            _ext(np.nanmax(lin, axis=(0, 2))),
            step="post",
            color="tab:blue",
            alpha=0.35,
            lw=0,
            label="LinDistFlow min-max",
        )
        if "vm_pu_ac" in d:
            ac = d["vm_pu_ac"].isel(bus=sel).transpose("scenario", "time", "bus").to_numpy()
            ok = np.isfinite(ac).any(axis=(0, 2))
            if ok.any():
                t = _middles(x)[ok]
                ax.plot(
                    t,
                    np.nanmin(ac[:, ok], axis=(0, 2)),
                    "v",
                    color="tab:red",
                    ms=4,
                    label="AC lowest",
                )
                ax.plot(
                    t,
                    np.nanmax(ac[:, ok], axis=(0, 2)),
                    "^",
                    color="tab:red",
                    ms=4,
                    label="AC highest",
                )
        lo, hi = limits[name]
        ax.axhline(
            lo,
            color="k",
            ls="--",
            lw=1.0,
            label=f"feeder voltage limits {lo:g} / {hi:g} pu",
            gid="vm_min_pu",
        )
        ax.axhline(hi, color="k", ls="--", lw=1.0, gid="vm_max_pu")
        ax.set_ylabel(f"{name}: voltage [pu]")
        _time_axis(ax, day, bottom=r == len(names) - 1)
    _title(fig, ds, "feeder voltage envelopes", model, day)
    _legend_outside(fig, axes)
    return fig


def has_flexibility_regions(ds: xr.Dataset, model: str | None = None, day=None) -> bool:
    """Whether a model-day carries DSO flexibility regions (DSO-managed models)."""
    ds = _plot_layout(ds)
    if "offer_region_p_mw" not in ds:
        return False
    d, _, _ = _select(ds, model, day)
    return bool(np.isfinite(d["offer_region_p_mw"].values).any())


def _region_interface(ds: xr.Dataset, d: xr.Dataset, model: str, day, interface) -> str:
    """The interface whose regions to draw (the only one when None), checked against the
    model-day ``d`` of the results ``ds``."""
    if not has_flexibility_regions(ds, model, day):
        raise PlotError(
            f"model '{model}' has no flexibility regions; they come from the DSO-managed "
            "models (dso_managed, dso_managed:local_market, dso_managed:target)"
        )
    return _chosen_interface(d, interface)


def _period_grid(n_periods: int):
    """A figure with one panel per period, up to 6 a row, sharing both axes."""
    cols = min(n_periods, 6)
    rows = -(-n_periods // cols)
    fig = plt.figure(figsize=(2.6 * cols + 2.8, 2.5 * rows + 1.8), layout="constrained")
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
    return fig, axes


def _setpoint_changes(f: xr.Dataset) -> np.ndarray | None:
    """The TSO set-points' change from the import at the DER bids dP [MW], by (scenario,
    time); None without set-points."""
    if "interface_setpoint_mw" in f and "interface_baseline_mw" in f:
        return _by_scenario(f["interface_setpoint_mw"] - f["interface_baseline_mw"])
    return None


def _draw_region(ax, pv: np.ndarray, qv: np.ndarray) -> None:
    """One period's region: the polygon of vertices dP [MW], dQ [Mvar] (NaN: unused)."""
    ok = np.isfinite(pv) & np.isfinite(qv)
    ax.axhline(0.0, color="grey", lw=0.5)
    ax.axvline(0.0, color="grey", lw=0.5)
    if ok.any():
        ax.fill(
            pv[ok],
            qv[ok],
            color="tab:blue",
            alpha=0.3,
            lw=1.2,
            ec="tab:blue",
            label="region deliverable in every scenario",
        )
    else:
        ax.text(
            0.5,
            0.5,
            "no region\n(empty)",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=8,
        )


#: how far [MW] a set-point's import change may lie beyond its region's P range and
#: still count as inside (the regions' vertices come from LP solves)
SETPOINT_TOL_MW = 1e-4


def setpoints_outside_region(
    region_p_mw: np.ndarray, dp_mw: np.ndarray, tol_mw: float = SETPOINT_TOL_MW
) -> np.ndarray:
    """Which TSO set-points lie outside a period's region.

    The TSO sets the active import only; a set-point is inside when some reactive
    import of the region goes with it, i.e. when its import change lies within the P
    range of the region's vertices.

    Parameters
    ----------
    region_p_mw : ndarray (vertex,) [MW]
        Import changes of the region's vertices (``nan``: padding; all ``nan``: empty).
    dp_mw : ndarray [MW]
        Import changes of the set-points from the baseline (``nan``: none).
    tol_mw : float [MW]

    Returns
    -------
    ndarray of bool, shaped like ``dp_mw``
        ``True`` for a set-point outside the region (every set-point of an empty region).
    """
    excess = p_range_excess_mw(region_p_mw, dp_mw)
    return np.isfinite(excess) & (excess > tol_mw)


def _draw_setpoints(ax, seg: np.ndarray, w: np.ndarray, region_p_mw: np.ndarray) -> None:
    """The TSO set-points of one period: range of dP [MW] over the period's (scenario,
    step) values ``seg`` inside the region (band), those outside it as flagged markers
    (gid ``setpoints_outside``), and their expectation under the weights ``w`` [1] (line)."""
    if not np.isfinite(seg).any():
        return
    out = setpoints_outside_region(region_p_mw, seg)
    inside = np.where(out, np.nan, seg)
    if np.isfinite(inside).any():
        ax.axvspan(
            np.nanmin(inside),
            np.nanmax(inside),
            color="tab:red",
            alpha=0.2,
            gid="setpoints",
            label="TSO set-points dP in the region: range over steps and scenarios",
        )
    if out.any():
        ax.plot(
            seg[out],
            np.zeros(int(out.sum())),
            "x",
            color="black",
            ms=6,
            gid="setpoints_outside",
            label="TSO set-point dP outside the region (flagged)",
        )
    ax.axvline(
        float(np.nansum(w @ np.nan_to_num(seg)) / seg.shape[1]),
        color="tab:red",
        lw=1.4,
        label="TSO set-point dP: expected",
    )


def plot_flexibility_regions(
    ds: xr.Dataset, model: str | None = None, day=None, interface: str | None = None
) -> Figure:
    """The DSO's P-Q flexibility region of one interface per period, with the TSO's
    set-points.

    The region holds the import changes (dP, dQ) from the import at the DER bids that
    the DSO can deliver in every scenario of the period. The TSO sets P only: its
    set-points are drawn as the range of dP over the period's steps and scenarios (band)
    and their expectation (line).

    Parameters
    ----------
    ds : xarray.Dataset
        Results of ``workbench run`` with a DSO-managed model.
    model, day : str, date-like, optional
        The model and day; may be left out when the results hold only one.
    interface : str, optional
        The feeder; may be left out when there is only one.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per period.
    """
    ds = _plot_layout(ds)
    d, model, day = _select(ds, model, day)
    interface = _region_interface(ds, d, model, day, interface)
    f = d.sel(interface=interface)
    n_p = d.sizes["period"]
    k = d.sizes["time"] // n_p
    fig, axes = _period_grid(n_p)
    dp = _setpoint_changes(f)
    starts = day + pd.to_timedelta(d.period.values)
    for p, ax in enumerate(axes.ravel()):
        if p >= n_p:
            ax.set_axis_off()
            continue
        region_p = f["offer_region_p_mw"].transpose("period", "vertex").values[p]
        _draw_region(ax, region_p, f["offer_region_q_mvar"].transpose("period", "vertex").values[p])
        if dp is not None:
            _draw_setpoints(ax, dp[:, p * k : (p + 1) * k], d["weight"].to_numpy(), region_p)
        ax.set_title(f"{starts[p]:%H:%M}", fontsize=9)
    _grid_labels(axes, "import change dP [MW]", "reactive import\nchange dQ [Mvar]")
    what = f"DSO flexibility region of feeder {interface} per period (start time)"
    _title(fig, ds, what, model, day)
    _legend_outside(fig, axes)
    return fig


# --------------------------------------------------------------------------------------
# network maps and branch loading

#: statistics over the scenarios and steps a map shows (or a time of day, ``at``)
MAP_STATISTICS = ("worst", "max", "min", "mean")

#: colour scales: voltage around 1 pu, loading from 0 to past the rating
_VM_CMAP, _LOADING_CMAP = "coolwarm", "YlOrRd"


def _source(d: xr.Dataset, source: str | None) -> str:
    """``ac`` (the AC check, where it ran) or ``linear`` (the optimisation's model); by
    default ``ac`` when the results hold AC values."""
    if source is None:
        has_ac = "loading_percent_ac" in d and bool(np.isfinite(d["loading_percent_ac"]).any())
        return "ac" if has_ac else "linear"
    if source not in ("ac", "linear"):
        raise PlotError(f"source '{source}' unknown; choose ac or linear")
    _need(d, f"loading_percent_{source}")
    return source


def _source_label(source: str) -> str:
    return "AC power flow, checked steps" if source == "ac" else "linear model of the schedule"


def _at_step(d: xr.Dataset, at) -> int:
    """Position of the step starting at the time of day ``at`` ("HH:MM")."""
    try:
        want = pd.to_timedelta(str(at) + (":00" if str(at).count(":") == 1 else ""))
    except ValueError:
        raise PlotError(f"time '{at}' is not a time of day; give it as HH:MM") from None
    offsets = pd.to_timedelta(d.time.values)
    hits = np.flatnonzero(offsets == want)
    if not len(hits):
        starts = [f"{t.components.hours:02d}:{t.components.minutes:02d}" for t in offsets]
        raise PlotError(
            f"no step starts at {at}; steps start at {', '.join(starts[:8])}"
            f"{', ...' if len(starts) > 8 else ''}"
        )
    return int(hits[0])


def element_statistic(
    d: xr.Dataset, name: str, elements: list[str], statistic: str = "worst", at=None
) -> np.ndarray:
    """One value per element (bus or branch) of a (scenario, time, element) variable.

    Parameters
    ----------
    d : xarray.Dataset
        One model-day (internal layout).
    name : str
        ``vm_pu_ac``, ``vm_pu_linear``, ``loading_percent_ac`` or ``loading_percent_linear``.
    elements : list of str
        Names on the variable's element dimension (``bus`` or ``branch``).
    statistic : {"worst", "max", "min", "mean"}
        Over the scenarios and the steps with values: ``worst`` is the voltage farthest
        from 1 pu (signed as it is) or the highest loading; ``mean`` the expectation over
        the scenarios, averaged over the steps (both over the scenario-steps with a value:
        the AC check may run on some scenarios only).
    at : str, optional
        A time of day ("HH:MM"): the expectation over the scenarios (with a value) at
        that step instead.

    Returns
    -------
    ndarray
        ``nan`` where an element has no value (not checked, DC bus).
    """
    da = d[name]
    dim = "bus" if "bus" in da.dims else "branch"
    v = da.sel({dim: elements}).transpose("scenario", "time", dim).to_numpy()
    w = d["weight"].to_numpy()
    if at is not None:
        k = _at_step(d, at)
        step = v[:, k]
        if not np.isfinite(step).any():
            raise PlotError(f"the results hold no {name} at {at}; choose a checked step")
        return _weighted_mean(step[:, None], w)
    if statistic not in MAP_STATISTICS:
        raise PlotError(
            f"statistic '{statistic}' unknown; choose one of {', '.join(MAP_STATISTICS)}"
        )
    flat = v.reshape(-1, v.shape[-1])
    has = np.isfinite(flat).any(axis=0)
    out = np.full(flat.shape[1], np.nan)
    if not has.any():
        return out
    f = flat[:, has]
    if statistic == "worst" and name.startswith("vm_pu"):
        dev = np.nan_to_num(np.abs(f - 1.0), nan=-1.0)
        out[has] = f[np.argmax(dev, axis=0), np.arange(f.shape[1])]
    elif statistic in ("worst", "max"):
        out[has] = np.nanmax(f, axis=0)
    elif statistic == "min":
        out[has] = np.nanmin(f, axis=0)
    else:
        out = _weighted_mean(v, w)
    return out


def _weighted_mean(v: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Mean of (scenario, time, element) values over the scenario-steps that have one,
    each weighted by its scenario's probability (``nan`` without any)."""
    ws = w[:, None, None] * np.isfinite(v)
    total = ws.sum(axis=(0, 1))
    return np.where(
        total > 0, (ws * np.nan_to_num(v)).sum(axis=(0, 1)) / np.maximum(total, 1e-300), np.nan
    )


def _with_coordinates(net):
    """The network with bus coordinates: its own, or a generic layout (igraph) where it
    has none; and whether the layout is generic."""
    geo = net.bus["geo"] if "geo" in net.bus else None
    if geo is not None and geo.notna().all():
        return net, False
    from pandapower.plotting import create_generic_coordinates

    net = copy.deepcopy(net)
    create_generic_coordinates(net, library="igraph", overwrite=True)
    return net, True


def _bus_labels(net, prefix: str) -> pd.Series:
    """How the results name each bus of ``net`` after ``<prefix>/``: a transmission bus
    by its name (its index where it has none), a feeder bus by its index."""
    index = net.bus.index
    if prefix != "transmission":
        return pd.Series(index.astype(str), index=index)
    return pd.Series(
        [
            str(n) if n is not None and n == n else str(b)
            for n, b in zip(net.bus.name, index, strict=True)
        ],
        index=index,
    )


def _draw_network(ax, net, prefix: str, vm: dict, loading: dict, norms) -> tuple[dict, float]:
    """Lines, transformers and buses of ``net`` on ``ax``, coloured by the values in
    ``vm`` (bus name -> pu) and ``loading`` (branch name -> %), grey without one;
    returns each bus's coordinates (x, y) and the buses' marker size."""
    from pandapower.plotting import (
        create_bus_collection,
        create_line_collection,
        create_trafo_collection,
    )
    from pandapower.plotting.plotting_toolbox import get_collection_sizes

    vm_norm, loading_norm = norms
    sizes = get_collection_sizes(net, bus_size=1.2, trafo_size=1.2)
    collections = []
    for table in ("line", "trafo"):
        served = net[table].index[net[table].in_service]
        values = np.array([loading.get(f"{prefix}/{table}/{i}", np.nan) for i in served])
        ok = np.isfinite(values)
        for idx, z in ((served[ok], values[ok]), (served[~ok], None)):
            if not len(idx):
                continue
            style = (
                {"cmap": plt.get_cmap(_LOADING_CMAP), "norm": loading_norm, "z": pd.Series(z, idx)}
                if z is not None
                else {"color": "0.7"}
            )
            if table == "line":
                coll = create_line_collection(
                    net, idx, use_bus_geodata=True, linewidths=2.2, plot_colormap=False, **style
                )
            else:
                coll = create_trafo_collection(
                    net, idx, size=sizes["trafo"], plot_colormap=False, **style
                )
            collections.append(coll)
    served = net.bus.index[net.bus.in_service]
    labels = _bus_labels(net, prefix)
    values = np.array([vm.get(f"{prefix}/{labels[b]}", np.nan) for b in served])
    ok = np.isfinite(values)
    if ok.any():
        collections.append(
            create_bus_collection(
                net,
                served[ok],
                size=sizes["bus"],
                z=values[ok],
                cmap=plt.get_cmap(_VM_CMAP),
                norm=vm_norm,
                plot_colormap=False,
                zorder=3,
            )
        )
    if (~ok).any():
        collections.append(
            create_bus_collection(net, served[~ok], size=sizes["bus"], color="0.5", zorder=3)
        )
    from pandapower.plotting import draw_collections

    draw_collections([c for c in collections if c is not None], ax=ax, plot_colorbars=False)
    from pandapower.plotting.plotting_toolbox import _get_coords_from_geojson

    coords = net.bus.geo.loc[served].apply(_get_coords_from_geojson)
    return {b: tuple(coords[b]) for b in served}, sizes["bus"]


def _mark_interface(ax, xy, bus: int, label: str | None) -> None:
    """An open square around an interface bus of a network map (gid ``interface:<bus>``)."""
    ax.plot(*xy, "s", ms=16, mfc="none", mec="k", mew=1.6, zorder=4, gid=f"interface:{bus}",
            label=label)  # fmt: skip


def _mark_interfaces(ax, d: xr.Dataset, net, network: str, coords) -> None:
    """On the transmission map, the buses the feeders hang from with the feeders' names;
    on a feeder's map, its root."""
    if network != "transmission":
        root = int(net.ext_grid.bus[net.ext_grid.in_service].iloc[0])
        host = str(d.interface_bus.sel(interface=network).item()) if network in d.interface else ""
        _mark_interface(ax, coords[root], root, f"interface (root, from {host})")
        return
    labels = _bus_labels(net, network)
    hosts: dict[int, list[str]] = {}
    for f, b in zip(d.interface.values, d.interface_bus.values, strict=True):
        hit = labels.index[labels == str(b).split("/", 1)[1]]
        hosts.setdefault(int(hit[0]), []).append(str(f))
    for b, feeders in hosts.items():
        x, y = coords[b]
        first = b == next(iter(hosts))
        _mark_interface(ax, coords[b], b, "feeder attachment (interface bus)" if first else None)
        ax.annotate(
            ", ".join(feeders),
            (x, y),
            xytext=(8, 8),
            textcoords="offset points",
            fontsize=9,
            weight="bold",
        )


def plot_network_map(
    ds: xr.Dataset,
    model: str | None = None,
    day=None,
    network: str = "transmission",
    statistic: str = "worst",
    at=None,
    source: str | None = None,
    net=None,
) -> Figure:
    """Map of one network: buses coloured by voltage, branches by loading.

    The transmission map marks the buses the feeders hang from (squares) with the
    feeders' names; a feeder's map marks its root (the interface). Positions are the
    network's own coordinates, or a generic layout (igraph) where it has none.

    Parameters
    ----------
    ds : xarray.Dataset
        Results of ``workbench run``.
    model, day : str, date-like, optional
        The model and day; may be left out when the results hold only one.
    network : str
        ``transmission`` or a feeder's name.
    statistic : {"worst", "max", "min", "mean"}
        Over the scenarios and steps (see :func:`element_statistic`).
    at : str, optional
        A time of day ("HH:MM"): the expectation over the scenarios at that step.
    source : {"ac", "linear"}, optional
        The AC check (default where it ran) or the schedule's linear model (no voltages
        on the DC transmission model).
    net : pandapowerNet, optional
        The network (default: rebuilt from the results' study,
        :func:`workbench.rebuild.results_network`).

    Returns
    -------
    matplotlib.figure.Figure
        Colour bars ``voltage [pu]`` and ``branch loading [%]``.
    """
    from workbench.rebuild import results_network

    ds = _plot_layout(ds)
    d, model, day = _select(ds, model, day)
    source = _source(d, source)
    if net is None:
        net = results_network(ds, network)
    net, generic = _with_coordinates(net)
    buses = [str(b) for b in d.bus.values if str(b).startswith(f"{network}/")]
    branches = [str(b) for b in d.branch.values if str(b).startswith(f"{network}/")]
    vm_name = f"vm_pu_{source}"
    vm = dict(zip(buses, element_statistic(d, vm_name, buses, statistic, at), strict=True))
    loading = dict(
        zip(
            branches,
            element_statistic(d, f"loading_percent_{source}", branches, statistic, at),
            strict=True,
        )
    )
    finite_vm = [v for v in vm.values() if np.isfinite(v)]
    span = max([0.05, *(abs(v - 1.0) for v in finite_vm)])
    vm_norm = matplotlib.colors.Normalize(1.0 - span, 1.0 + span)
    top = max([100.0, *(v for v in loading.values() if np.isfinite(v))])
    loading_norm = matplotlib.colors.Normalize(0.0, top)
    fig = plt.figure(figsize=(9.5, 7.5), layout="constrained")
    ax = fig.add_subplot()
    coords, _ = _draw_network(ax, net, network, vm, loading, (vm_norm, loading_norm))
    _mark_interfaces(ax, d, net, network, coords)
    fig.colorbar(
        matplotlib.cm.ScalarMappable(vm_norm, _VM_CMAP), ax=ax, shrink=0.6, label="bus voltage [pu]"
    )
    fig.colorbar(
        matplotlib.cm.ScalarMappable(loading_norm, _LOADING_CMAP),
        ax=ax,
        shrink=0.6,
        label="branch loading [%]",
    )
    what = f"expected at {at}" if at is not None else f"{statistic} over scenarios and steps"
    note = "; generic layout" if generic else ""
    _title(fig, ds, f"{network} network: {what} ({_source_label(source)}{note})", model, day)
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.01), fontsize=8, frameon=False)
    return fig


def _networks(d: xr.Dataset) -> list[str]:
    """``transmission`` and the feeders, in the results' order."""
    return ["transmission", *_interface_names(d)]


def plot_branch_loading(
    ds: xr.Dataset,
    model: str | None = None,
    day=None,
    source: str | None = None,
    top: int = 15,
) -> Figure:
    """Loading of the most loaded branches of every network over scenarios and steps.

    One panel per network (transmission, then each feeder) with its ``top`` branches by
    highest loading, most loaded first: the range over the scenarios and steps (thin
    line), the weighted 5-95 % band (bar) and median (dot), the 100 % rating line and
    the highest loading written above each of the three worst.

    Parameters
    ----------
    ds : xarray.Dataset
        Results of ``workbench run``.
    model, day : str, date-like, optional
        The model and day; may be left out when the results hold only one.
    source : {"ac", "linear"}, optional
        The AC check (default where it ran; its checked steps) or the schedule's linear
        model (DC flows on transmission, LinDistFlow on the feeders; every step).
    top : int
        Branches shown per network.

    Returns
    -------
    matplotlib.figure.Figure
        The rating lines have gid ``loading_limit``; the branch names are the x tick
        labels (``<line|trafo>/<index>``).
    """
    ds = _plot_layout(ds)
    d, model, day = _select(ds, model, day)
    source = _source(d, source)
    name = f"loading_percent_{source}"
    w = d["weight"].to_numpy()
    networks = _networks(d)
    branches = d.branch.values.astype(str)
    fig, axes = _figure(
        len(networks),
        caption=f"Branch loading of the {_source_label(source)}: apparent power over the "
        "rating (DC model: active power). Per branch: min-max over the scenarios and steps "
        "(line), weighted 5-95 % (bar), weighted median (dot); the three most loaded are "
        f"labelled with their highest loading. {_scenario_note(w)}.",
        height=2.6,
    )
    for r, network in enumerate(networks):
        ax = axes[r, 0]
        sel = [b for b in branches if b.startswith(f"{network}/")]
        v = d[name].sel(branch=sel).transpose("scenario", "time", "branch").to_numpy()
        steps = np.isfinite(v).any(axis=(0, 2))
        keep = np.isfinite(v[:, steps]).any(axis=(0, 1))
        ax.axhline(100.0, color="k", ls="--", lw=1.0, gid="loading_limit", label="rating (100 %)")
        ax.set_ylabel(f"{network}:\nloading [%]")
        if not keep.any():
            ax.text(0.5, 0.5, "no loading in the results", transform=ax.transAxes, ha="center")
            continue
        v = np.nan_to_num(v[:, steps][..., keep])  # (scenario, step, branch)
        sel = [s for s, k in zip(sel, keep, strict=True) if k]
        flat = v.reshape(-1, v.shape[-1])
        weights = np.repeat(w, v.shape[1]) / v.shape[1]
        lo, q05, med, q95, hi = weighted_quantiles(flat, weights, FAN_QUANTILES)
        order = np.argsort(-hi, kind="stable")[:top]
        x = np.arange(len(order))
        ax.vlines(x, lo[order], hi[order], color="tab:red", lw=1.0, label="min-max")
        ax.bar(
            x,
            q95[order] - q05[order],
            bottom=q05[order],
            width=0.5,
            color="tab:red",
            alpha=0.4,
            label="weighted 5-95 %",
        )
        ax.plot(x, med[order], "o", color="k", ms=4, label="weighted median")
        for i in range(min(3, len(order))):
            ax.annotate(
                f"{hi[order[i]]:.0f} %",
                (x[i], hi[order[i]]),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                fontsize=8,
            )
        ax.set_xticks(x, [sel[i].split("/", 1)[1] for i in order], rotation=45, ha="right")
        ax.set_xlim(-0.6, max(len(order), 3) - 0.4)
        ax.set_ylim(0.0, max(110.0, float(hi[order].max()) * 1.12))
    axes[-1, 0].set_xlabel("branch (most loaded first) [-]")
    _title(fig, ds, f"branch loading, {top} most loaded per network", model, day)
    _legend_outside(fig, axes)
    return fig


def interface_flexibility_of(
    ds: xr.Dataset, model: str | None = None, day=None, interface: str | None = None, system=None
):
    """The P-Q regions and cost curves of one model-day at one feeder (any model), see
    :func:`workbench.interface_regions.interface_flexibility`; ``system`` is rebuilt
    from the results' study when not given."""
    from stochastic.twostage import TwoStageOptions
    from workbench.interface_regions import interface_flexibility
    from workbench.rebuild import results_study, results_system

    ds = _plot_layout(ds)
    d, model, day = _select(ds, model, day)
    interface = _chosen_interface(d, interface)
    options = TwoStageOptions.from_study(results_study(ds))
    return interface_flexibility(d, system or results_system(ds), options, interface)


def plot_interface_flexibility(
    ds: xr.Dataset,
    model: str | None = None,
    day=None,
    interface: str | None = None,
    system=None,
    flexibility=None,
) -> Figure:
    """A feeder's P-Q region around the model's schedule per period, and its cost curve.

    For any coordination model: the interface powers the feeder's DER could reach from
    the model's dispatch within their device limits and the feeder's limits, at the
    period's expected state (:mod:`workbench.interface_regions`), with the model's
    expected interface import (star) and its scenario-steps (dots); below, the least cost
    of the DER redispatch that moves the import P by dP from the schedule.

    Parameters
    ----------
    ds : xarray.Dataset
        Results of ``workbench run``.
    model, day : str, date-like, optional
        The model and day; may be left out when the results hold only one.
    interface : str, optional
        The feeder; may be left out when there is only one.
    system : IntegratedSystem, optional
        The study's system (default: rebuilt from the results).
    flexibility : FeederFlexibility, optional
        Regions computed before (default: computed here).

    Returns
    -------
    matplotlib.figure.Figure
        One panel per period (the region has gid ``region``, the expected schedule
        ``schedule``) and the cost-curve panel below them (gid ``cost_curves``).
    """
    ds = _plot_layout(ds)
    _, model, day = _select(ds, model, day)
    flex = flexibility or interface_flexibility_of(ds, model, day, interface, system)
    n_p = len(flex.regions)
    cols = min(n_p, 6)
    rows = -(-n_p // cols)
    fig = plt.figure(figsize=(2.6 * cols + 2.8, 2.5 * rows + 5.4), layout="constrained")
    gs = fig.add_gridspec(rows + 2, cols, height_ratios=[2.5] * rows + [3.4, 0.8])
    cap = fig.add_subplot(gs[rows + 1, :])
    cap.set_axis_off()
    caption = (
        "Region: the import (P, Q) the feeder's DER can reach from the model's dispatch within "
        "their device limits (PV up to its available power, batteries their rated power, EV "
        "pools up to their offered charging, PV inverters' reactive range) and the feeder's "
        "LinDistFlow limits, at the period's expected state (scenario-weighted mean); each "
        "scenario-step has a region of its own around its point. Cost: least DER redispatch "
        "cost at the activation prices (PV curtailment, battery and EV activation) per hour."
    )
    note = cap.text(
        0.0,
        1.0,
        "\n".join(textwrap.wrap(caption, int((2.6 * cols + 2.8) * 15))),
        va="top",
        ha="left",
        fontsize=8,
        transform=cap.transAxes,
    )
    note.set_in_layout(False)
    starts = day + pd.to_timedelta(flex.period_start)
    first = None
    panels = []
    for p in range(n_p):
        ax = fig.add_subplot(gs[p // cols, p % cols], sharex=first, sharey=first)
        first = first or ax
        panels.append(ax)
        region = flex.regions[p]
        if region is None:
            ax.text(
                0.5,
                0.5,
                "no region: the schedule\nbreaks the feeder's limits",
                transform=ax.transAxes,
                ha="center",
                va="center",
                fontsize=8,
            )
        else:
            v = region.vertices
            ax.fill(
                v[:, 0],
                v[:, 1],
                color="tab:blue",
                alpha=0.3,
                ec="tab:blue",
                lw=1.2,
                gid="region",
                label="P-Q region at the expected state",
            )
        pts_p, pts_q = flex.points_p_mw[p], flex.points_q_mvar[p]
        ax.errorbar(
            flex.p_mw[p],
            flex.q_mvar[p],
            xerr=[[flex.p_mw[p] - pts_p.min()], [pts_p.max() - flex.p_mw[p]]],
            yerr=[[flex.q_mvar[p] - pts_q.min()], [pts_q.max() - flex.q_mvar[p]]],
            fmt="none",
            ecolor="0.35",
            elinewidth=0.8,
            capsize=2,
            label="scheduled import: range over the scenario-steps",
        )
        ax.plot(
            flex.p_mw[p],
            flex.q_mvar[p],
            "*",
            color="tab:red",
            ms=11,
            gid="schedule",
            label="scheduled import: expected",
        )
        ax.set_title(f"{starts[p]:%H:%M}", fontsize=9)
        if p % cols == 0:
            ax.set_ylabel("import Q [Mvar]")
        if p // cols == rows - 1 or p + cols >= n_p:
            ax.set_xlabel("import P [MW]")
    cost_ax = fig.add_subplot(gs[rows, :])
    cmap = plt.get_cmap("viridis")
    for p in range(n_p):
        ok = np.isfinite(flex.cost_dp_mw[p]) & np.isfinite(flex.cost_eur_per_h[p])
        if ok.any():
            cost_ax.plot(
                flex.cost_dp_mw[p][ok],
                flex.cost_eur_per_h[p][ok],
                "-o",
                ms=3,
                color=cmap(p / max(n_p - 1, 1)),
                label=f"{starts[p]:%H:%M}",
            )
    cost_ax.set_gid("cost_curves")
    cost_ax.axvline(0.0, color="grey", lw=0.5)
    cost_ax.set_xlabel("import change dP from the schedule [MW] (+: more drawn from transmission)")
    cost_ax.set_ylabel("least DER redispatch\ncost [EUR/h]")
    cost_ax.legend(
        title="period start",
        fontsize=7,
        ncols=max(1, -(-n_p // 8)),
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
    )
    _title(
        fig,
        ds,
        f"feeder {flex.interface} interface: P-Q region per period, cost curve",
        model,
        day,
    )
    handles, labels = panels[0].get_legend_handles_labels()
    for ax in panels[1:]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="outside right upper", fontsize=8)
    return fig


#: the one-page comparison: panel title and its series (key of compare_models, label)
_PAGE_PANELS = (
    (
        "cost [EUR]",
        (("expected_cost_eur", "expected cost"), ("cvar_eur", "CVaR")),
    ),
    (
        "DER flexibility [MWh]",
        (
            ("der_offered_mwh", "offered"),
            ("der_accepted_mwh", "accepted"),
            ("der_dispatched_mwh", "dispatched"),
        ),
    ),
    (
        "energy not used or not served [MWh]",
        (("curtailment_mwh", "curtailment"), ("load_shed_mwh", "load shed")),
    ),
    (
        "AC violations [bus- / branch-steps]",
        (
            ("ac_violations_transmission", "transmission voltage"),
            ("ac_violations_distribution", "distribution voltage"),
            ("ac_not_converged", "AC flow not converged"),
        ),
    ),
    (
        "solve time [s]",
        (("solver_s", "HiGHS"), ("wall_s", "wall")),
    ),
)


def _grouped_bars(ax, models: list[str], rows: dict, series) -> None:
    """Bars of several series side by side per model; a series no model has is left out
    and a value a model lacks is written ``n/a``."""
    series = [(k, lab) for k, lab in series if any(rows[m].get(k) is not None for m in models)]
    x = np.arange(len(models))
    if not series:
        ax.text(0.5, 0.5, "not in the results", transform=ax.transAxes, ha="center")
        ax.set_xticks(x, models)
        return
    width = 0.8 / len(series)
    for i, (key, label) in enumerate(series):
        vals = np.array([np.nan if rows[m].get(key) is None else rows[m][key] for m in models])
        pos = x - 0.4 + width * (i + 0.5)
        bars = ax.bar(pos, np.nan_to_num(vals), width, label=label, color=f"C{i}", gid=f"bar:{key}")
        ax.bar_label(
            bars,
            labels=["" if not np.isfinite(v) else _table_cell(float(v)) for v in vals],
            fontsize=6,
            padding=1,
        )
        for px in pos[~np.isfinite(vals)]:
            ax.text(px, 0, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
    values = [rows[m].get(k) for m in models for k, _ in series]
    values = [float(v) for v in values if v is not None]
    if min(values, default=0.0) >= 0.0:  # zero bars sit on the axis, not mid-panel
        ax.set_ylim(0.0, max(max(values, default=0.0) * 1.15, 1.0))
    ax.set_xticks(x, models, rotation=20, ha="right")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)


def _table_cell(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        v = 0.0 if abs(v) < 1e-6 else v
        return f"{v:,.3g}" if abs(v) < 100 else f"{v:,.0f}"
    return f"{v:,}"


def plot_model_comparison(ds: xr.Dataset, summary: dict | None = None) -> Figure:
    """The coordination models of a results file on one page.

    Costs (expected, CVaR), DER volumes (offered, accepted, dispatched), curtailment and
    shedding, AC violations (transmission, distribution, non-converged flows) and solve
    times as grouped bars, one group per model, and a table of the key numbers; sums over
    the days of the file (:func:`workbench.compare.compare_models`). For 1 to 6 models.

    Parameters
    ----------
    ds : xarray.Dataset
        Results of ``workbench run``.
    summary : dict, optional
        ``compare_models(ds)`` (computed here when not given).

    Returns
    -------
    matplotlib.figure.Figure
        A4 landscape; bars have gid ``bar:<key>`` (keys of ``compare_models``).
    """
    from workbench.compare import compare_models

    ds = _plot_layout(ds)
    summary = summary or compare_models(ds)
    rows = summary["models"]
    models = list(rows)
    if not 1 <= len(models) <= 6:
        raise PlotError(
            f"a one-page comparison holds 1 to 6 models, the results have {len(models)}; "
            "choose some with `workbench run --models`"
        )
    fig = plt.figure(figsize=(11.69, 8.27), layout="constrained")
    gs = fig.add_gridspec(3, 2, height_ratios=[1.0, 1.0, 1.0])
    for i, (title, series) in enumerate(_PAGE_PANELS):
        ax = fig.add_subplot(gs[i // 2, i % 2])
        _grouped_bars(ax, models, rows, series)
        ax.set_ylabel(title)
    table_ax = fig.add_subplot(gs[2, 1])
    table_ax.set_axis_off()
    keys = (
        ("days", "days with a schedule"),
        ("objective_gap_to_centralised_eur", "objective gap to TSO-managed [EUR]"),
        ("feeder_limit_violations", "feeder limit violations [scenario-steps]"),
        ("worst_vm_pu", "worst AC voltage [pu]"),
        ("worst_loading_percent", "worst AC loading [%]"),
        ("problems_solved", "problems solved"),
        ("data_exchanged_bytes", "data exchanged [byte]"),
    )
    cells = [[_table_cell(rows[m].get(k)) for m in models] for k, _ in keys]
    table = table_ax.table(
        cellText=cells,
        rowLabels=[label for _, label in keys],
        colLabels=models,
        loc="center",
        cellLoc="right",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(7)
    table.set_gid("summary_table")
    days = sorted({rows[m]["days"] for m in models})
    fig.suptitle(
        f"{_study_name(ds)}: coordination models compared "
        f"(sums over {', '.join(map(str, days))} day(s), expected values over scenarios)"
    )
    return fig


# --------------------------------------------------------------------------------------
# writing


def save_figure(fig: Figure, path: str | Path, dpi: int = DPI) -> Path:
    """Write ``fig`` in the format of the file's suffix (``png``, ``svg``, ``pdf``).

    Vector formats keep text as text (:data:`VECTOR_RC`); ``dpi`` [1/inch] sets the
    resolution of PNG files and of any raster part of a vector file.
    """
    with matplotlib.rc_context(VECTOR_RC):
        fig.savefig(path, dpi=dpi)
    return Path(path)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)


def write_plots(
    ds: xr.Dataset,
    out_dir: str | Path,
    stem: str,
    model: str | None = None,
    day=None,
    fmt: str = "png",
    per_unit: bool = False,
    dpi: int = DPI,
    map_at=None,
) -> PlotReport:
    """Write the report figures of every model and day (or the chosen ones).

    Files ``<out_dir>/<stem>_<model>_<day>_<figure>.<fmt>`` (``:`` in a model name
    becomes ``-``); figures ``demand``, ``dispatch``, ``uncertainty``, ``interfaces``,
    ``voltages``, ``reserves``, ``costs``, ``loading``, ``map-transmission``,
    ``map-<feeder>``, ``flexibility-<feeder>`` and, for the DSO-managed models,
    ``regions-<feeder>``; without a chosen model also the one-page comparison
    ``<stem>_models.<fmt>``. A figure whose network cannot be rebuilt from the results'
    study, or whose variables the results lack, is skipped with a note.

    Parameters
    ----------
    ds : xarray.Dataset
        Results of ``workbench run``.
    out_dir : path
        Folder for the files (created).
    stem : str
        Start of every file name (e.g. the results file's stem).
    model, day : str, date-like, optional
        Only this model / day (an error when it has no schedule).
    fmt : {"png", "svg", "pdf"}
    per_unit : bool
        Dispatch per TER unit and per feeder's DER type.
    dpi : int [1/inch]
        Resolution of PNG files (300 for print); vector files keep text as text.
    map_at : str, optional
        Network maps at this time of day ("HH:MM", expected over the scenarios) instead
        of the worst over the scenarios and steps.

    Returns
    -------
    PlotReport
        The files written and what was skipped (model-days without a schedule, figures
        that cannot be drawn from these results), and why.
    """
    if fmt not in FORMATS:
        raise PlotError(f"format '{fmt}' unknown; choose one of {', '.join(FORMATS)}")
    ds = _plot_layout(ds)
    models, days = _model_days(ds, model, day)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = PlotReport()
    figures = (
        ("demand", plot_demand),
        ("dispatch", lambda *a: plot_dispatch(*a, per_unit=per_unit)),
        ("uncertainty", plot_uncertainty),
        ("interfaces", plot_interfaces),
        ("voltages", plot_voltages),
        ("reserves", plot_reserves),
        ("costs", plot_cost_breakdown),
        *_network_figures(ds, map_at, report),
    )
    for m in models:
        for d in days:
            status = str(ds["solver_status"].sel(model=m, day=d.to_datetime64()).values)
            if status not in SOLVED_STATUSES:
                if model is not None and day is not None:
                    _select(ds, m, d)  # raises with the reason
                report.skipped.append(f"{m} {_day_label(d)}: no schedule (status {status})")
                continue
            base = f"{stem}_{_slug(m)}_{_day_label(d)}"
            todo = list(figures)
            if has_flexibility_regions(ds, m, d):
                for name in map(str, ds.interface.values):
                    todo.append(
                        (
                            f"regions-{_slug(name)}",
                            lambda a, b, c, name=name: plot_flexibility_regions(a, b, c, name),
                        )
                    )
            for kind, func in todo:
                fig = func(ds, m, d)
                path = out_dir / f"{base}_{kind}.{fmt}"
                save_figure(fig, path, dpi)
                plt.close(fig)
                report.paths.append(path)
    missing = [n for n in _NEEDS["models"] if n not in ds]
    if model is None and missing:
        report.skipped.append(f"models: the results lack {', '.join(missing)}")
    elif model is None:
        from workbench.statistics import StatisticsError

        try:
            fig = plot_model_comparison(ds.sel(day=[dd.to_datetime64() for dd in days]))
        except StatisticsError as exc:  # a statistic these results cannot give
            report.skipped.append(f"models: {exc}")
        else:
            report.paths.append(save_figure(fig, out_dir / f"{stem}_models.{fmt}", dpi))
            plt.close(fig)
    return report


#: variables the figures drawn from the network data or the comparison need
_NEEDS = {
    "models": (
        "weight",
        "der_bid_up_mw",
        "der_bid_down_mw",
        "der_activated_up_mw",
        "der_activated_down_mw",
    ),
    "loading": ("weight",),
    "map": ("weight", "interface_bus"),
    "flexibility": (
        "p_mw_linear",
        "q_mvar_linear",
        "der_q_mvar",
        "der_bid_schedule_mw",
        "der_offered_down_mw",
        "interface_q_mvar",
        "der_bus",
    ),
}


def _network_figures(ds: xr.Dataset, map_at, report: PlotReport) -> list[tuple[str, object]]:
    """The figures of every model-day that need the networks or their flows: ``loading``,
    the maps and the interface flexibility; the networks and the system are rebuilt once
    here. What cannot be drawn from these results goes to ``report.skipped``."""
    from workbench.rebuild import RebuildError, results_network, results_system

    def lacking(kind: str) -> list[str]:
        need = list(_NEEDS[kind])
        if not any(f"loading_percent_{s}" in ds for s in ("ac", "linear")):
            need.append("loading_percent_linear")
        return [n for n in need if n not in ds]

    todo: list[tuple[str, object]] = []
    feeders = [str(f) for f in ds.interface.values] if "interface" in ds.dims else []
    for kind in ("loading", "map", "flexibility"):
        missing = lacking(kind)
        if missing:
            report.skipped.append(f"{kind}: the results lack {', '.join(missing)}")
    if not lacking("loading"):
        todo.append(("loading", plot_branch_loading))
    if not lacking("map"):
        for network in ["transmission", *feeders]:
            try:
                net = results_network(ds, network)
            except RebuildError as exc:
                report.skipped.append(f"map-{network}: {exc}")
                continue
            todo.append(
                (
                    f"map-{_slug(network)}",
                    lambda a, b, c, network=network, net=net: plot_network_map(
                        a, b, c, network, at=map_at, net=net
                    ),
                )
            )
    if feeders and not lacking("flexibility"):
        try:
            system = results_system(ds)
        except RebuildError as exc:
            report.skipped.append(f"flexibility: {exc}")
            return todo
        for name in feeders:
            todo.append(
                (
                    f"flexibility-{_slug(name)}",
                    lambda a, b, c, name=name: plot_interface_flexibility(
                        a, b, c, name, system=system
                    ),
                )
            )
    return todo


def _to_hours(offsets: xr.DataArray) -> np.ndarray:
    """Time offsets from midnight in hours [h]."""
    return offsets.to_numpy().astype("timedelta64[m]").astype(float) / 60.0


def _hours(ds: xr.Dataset) -> np.ndarray:
    return _to_hours(ds.time)


def _save(fig: plt.Figure, path: Path, dpi: int = DPI) -> Path:
    fig.tight_layout()
    save_figure(fig, path, dpi)
    plt.close(fig)
    return path


def plot_forecast_fan(ds: xr.Dataset, path: Path) -> Path:
    """Fan chart of every resource of the first day: 5-95 %, 25-75 % bands, scenarios."""
    d = ds.isel(day=0)
    resources = [str(r) for r in d.resource.to_numpy()]
    fig, axes = plt.subplots(1, len(resources), figsize=(3.2 * len(resources), 3.4), sharex=True)
    q_h = _to_hours(d.time_15min)
    s_h = _to_hours(d.time_60min)
    for ax, res in zip(np.atleast_1d(axes), resources, strict=True):
        q = d["quantile_pu"].sel(resource=res)
        ax.fill_between(q_h, q.sel(quantile=0.05), q.sel(quantile=0.95), alpha=0.2, color="C0")
        ax.fill_between(q_h, q.sel(quantile=0.25), q.sel(quantile=0.75), alpha=0.35, color="C0")
        ax.plot(q_h, q.sel(quantile=0.5), color="C0", lw=1.2, label="median")
        for k in range(d.sizes["scenario"]):
            ax.step(
                s_h,
                d["value_60min_pu"].sel(resource=res).isel(scenario=k),
                where="post",
                color="k",
                lw=0.6,
                alpha=0.6,
            )
        ax.set_title(res, fontsize=9)
        ax.set_xlabel("hour of day [h]")
    np.atleast_1d(axes)[0].set_ylabel("[pu]")
    fig.suptitle(
        f"{pd.Timestamp(d.day.item()).date()}: 5-95 % and 25-75 % bands, median, hourly "
        "scenarios (black)",
        fontsize=9,
    )
    return _save(fig, path)


def plot_evaluation(scores: dict, details: dict, path: Path) -> Path:
    """PIT histograms (top) and one held-out day's 10-50-90 % forecast (bottom) per key."""
    keys = list(scores)
    fig, axes = plt.subplots(2, len(keys), figsize=(3.2 * len(keys), 6.0))
    axes = np.asarray(axes).reshape(2, len(keys))
    for j, key in enumerate(keys):
        s = scores[key]
        ax = axes[0, j]
        ax.bar(np.arange(0.05, 1.0, 0.1), s.pit_histogram, width=0.095, color="C0")
        ax.axhline(0.1, color="k", lw=0.8, ls="--")
        ax.set_title(f"{key}: PIT, cov. 10-90 {s.coverage_10_90:.0%}", fontsize=9)
        ax.set_xlabel("PIT [-]")
        d = details.get(key, {})
        ax = axes[1, j]
        if "observed_pu" not in d:
            ax.set_axis_off()
            continue
        y = d["observed_pu"]
        i = int(np.argmax(y.sum(axis=1) >= np.median(y.sum(axis=1))))  # a typical day
        h = np.arange(y.shape[1]) / 4.0
        q = d["quantiles_pu"][i]
        ax.fill_between(h, q[:, 0], q[:, 2], alpha=0.3, color="C0", label="10-90 %")
        ax.plot(h, q[:, 1], color="C0", label="median")
        ax.plot(h, y[i], color="k", lw=1.0, label="observed")
        ax.set_title(str(pd.Timestamp(d["days"][i]).date()), fontsize=9)
        ax.set_xlabel("hour of day [h]")
        ax.set_ylabel(f"[{s.extra.get('units', 'pu')}]")
        ax.legend(fontsize=7)
    return _save(fig, path)


def _model_colors(models) -> dict:
    palette = plt.get_cmap("tab10").colors
    return {m: palette[i % len(palette)] for i, m in enumerate(models)}


def comparison_panels(summary: dict) -> list[tuple[str, str]]:
    """The panels of :func:`plot_comparison` that carry a value: ``(key, label)``.

    A panel whose value no model has is left out, and so are the gaps to the TSO-managed
    model unless the summary holds it and another model to compare with it.
    """
    models = summary["models"]
    panels = [
        ("expected_cost_eur", "expected cost [EUR]"),
        ("cost_gap_to_centralised_eur", "expected-cost gap to TSO-managed [EUR]"),
        ("objective_gap_to_centralised_eur", "objective gap to TSO-managed [EUR]"),
        ("curtailment_mwh", "curtailment [MWh]"),
        ("der_dispatched_mwh", "DER flexibility dispatched [MWh]"),
        ("feeder_limit_violations", "feeder limit violations [scenario-steps]"),
        ("data_exchanged_values", "numbers exchanged per day [1]"),
        ("exchange_rounds", "message rounds per day [1]"),
    ]
    gaps = "tso" in models and len(models) > 1
    return [
        (key, label)
        for key, label in panels
        if (gaps or "_gap_to_centralised" not in key)
        and any(models[m].get(key) is not None for m in models)
    ]


def plot_comparison(summary: dict, path: Path, dpi: int = DPI) -> Path:
    """Bar chart of the coordination models: cost, curtailment, violations, exchange.

    Only the panels of :func:`comparison_panels` are drawn (no empty panel).
    """
    models = list(summary["models"])
    panels = comparison_panels(summary)
    colors = _model_colors(models)
    cols = min(len(panels), 4)
    rows = -(-len(panels) // cols)
    width = max(0.5 * len(models), 3.0)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols + 1, 3.5 * rows), squeeze=False)
    for ax, (key, label) in zip(axes.ravel(), panels, strict=False):
        vals = [summary["models"][m].get(key) for m in models]
        vals = [np.nan if v is None else float(v) for v in vals]
        ax.bar(models, vals, color=[colors[m] for m in models])
        if np.nanmin(np.r_[vals, 0.0]) >= 0:
            ax.set_ylim(bottom=0, top=max(np.nanmax(np.r_[vals, 0.0]) * 1.1, 1.0))
        ax.set_title(label, fontsize=9)
        ax.tick_params(axis="x", labelsize=8, labelrotation=35)
        for tick in ax.get_xticklabels():
            tick.set_horizontalalignment("right")
    for ax in axes.ravel()[len(panels) :]:
        ax.remove()
    days = {summary["models"][m]["days"] for m in models}
    fig.suptitle(f"Coordination models compared (sums over {', '.join(map(str, days))} day(s))")
    return _save(fig, path, dpi)


def _one_day(ds: xr.Dataset, day) -> tuple[xr.Dataset, pd.Timestamp]:
    """The results of one day, every model (``day`` may be None with one day)."""
    _, days = _model_days(ds, None, day)
    if len(days) != 1:
        raise PlotError(
            f"the results hold {len(days)} days; choose one (day=...): "
            f"{', '.join(map(_day_label, days))}"
        )
    return ds.sel(day=days[0].to_datetime64()), days[0]


def plot_der_by_model(ds: xr.Dataset, path: Path, day=None) -> Path:
    """Expected DER injection by type for every model on one day."""
    ds = _plot_layout(ds)
    d0, day = _one_day(ds, day)
    models = [str(m) for m in d0.model.values]
    h = _hours(d0)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), sharex=True)
    colors = _model_colors(models)
    for ax, kind in zip(axes, ("pv", "battery", "ev"), strict=True):
        sel = d0["der_type"] == kind
        for m in models:
            d = d0.sel(model=m)
            if d["solver_status"].item() not in SOLVED_STATUSES or not int(sel.sum()):
                continue
            inj = (d["der_p_mw"].where(sel).sum("der") * d["weight"]).sum("scenario")
            ax.plot(h, inj, color=colors[m], label=m)
        ax.set_title(f"{kind} injection, expected [MW]", fontsize=9)
        ax.set_xlabel("hour of day [h]")
    axes[0].legend(fontsize=8)
    fig.suptitle(
        f"{_study_name(ds)}: DER dispatch per model, {_day_label(day)} "
        "(batteries: + discharge, EV: - charging)"
    )
    return _save(fig, path)


def plot_voltage_envelopes(ds: xr.Dataset, path: Path, day=None) -> Path:
    """Lowest and highest feeder voltage over scenarios per step, one panel per model
    (one day), with the feeders' voltage limits."""
    ds = _plot_layout(ds)
    d0, day = _one_day(ds, day)
    limits = sorted(set(voltage_limits(ds).values()))
    models = [str(m) for m in d0.model.values]
    h = _hours(d0)
    n = len(models)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.2 * cols, 3.2 * rows), sharex=True, sharey=True, squeeze=False
    )
    colors = _model_colors(models)
    feeder = ~np.char.startswith(d0.bus.values.astype(str), "transmission/")
    source = "vm_pu_ac" if "vm_pu_ac" in d0 else "vm_pu_linear"
    for ax, m in zip(axes.ravel(), models, strict=False):
        d = d0.sel(model=m)
        for lo, hi in limits:
            ax.axhline(lo, color="k", ls=":", lw=1, label=f"feeder limits {lo:g} / {hi:g} pu")
            ax.axhline(hi, color="k", ls=":", lw=1)
        ax.set_title(m, fontsize=9)
        if d["solver_status"].item() not in SOLVED_STATUSES:
            ax.text(0.5, 0.5, "no schedule", transform=ax.transAxes, ha="center")
            continue
        vm = d[source].values[..., feeder]
        ok = np.isfinite(vm).any(axis=(0, 2))  # steps the AC check ran
        if not ok.any():
            ax.text(0.5, 0.5, "no voltages", transform=ax.transAxes, ha="center")
            continue
        lo = np.nanmin(vm[:, ok], axis=(0, 2))
        hi = np.nanmax(vm[:, ok], axis=(0, 2))
        ax.fill_between(h[ok], lo, hi, color=colors[m], alpha=0.4, label="lowest-highest")
    for ax in axes.ravel()[n:]:
        ax.set_axis_off()
    _grid_labels(axes, "hour of day [h]", "feeder bus voltage [pu]")
    axes[0, 0].legend(fontsize=7, loc="lower left")
    kind = "AC power flow" if source == "vm_pu_ac" else "LinDistFlow"
    fig.suptitle(
        f"{_study_name(ds)}: feeder voltage envelopes per model, {_day_label(day)} "
        f"({kind}, all scenarios and feeder buses)"
    )
    return _save(fig, path)


def plot_regions(ds: xr.Dataset, path: Path, day=None) -> Path:
    """DSO-managed offers: each feeder's P-Q region every 4 hours, with the range of the
    TSO's set-points (change of import from the baseline over the scenarios), one day;
    saved to ``path`` (see :func:`regions_figure`)."""
    return _save(regions_figure(ds, day), path)


def regions_figure(ds: xr.Dataset, day=None) -> Figure:
    """The figure of :func:`plot_regions`.

    Each region is the set of import changes deliverable in every scenario of its
    period. The TSO's view bounds a feeder's import by the region's P range only where
    the network cuts into what the aggregated devices can do; elsewhere the devices
    bound it in each scenario, so in a scenario with more PV available than the least
    one the TSO may curtail beyond the region. Set-points inside the region's P range
    are drawn as bars (gid ``setpoints``), those outside it as flagged markers (gid
    ``setpoints_outside``)."""
    ds = _plot_layout(ds)
    d, day = _one_day(ds, day)
    d = d.sel(model="dso_managed")
    names = _interface_names(d)
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 4), squeeze=False)
    cmap = plt.get_cmap("viridis")
    n_p = d.sizes["period"]
    k = d.sizes["time"] // n_p
    _, period_h = stage_hours(d)
    stride = max(1, round(4.0 / period_h))  # a region every 4 hours
    region_p = d.offer_region_p_mw.transpose("period", "interface", "vertex").values
    region_q = d.offer_region_q_mvar.transpose("period", "interface", "vertex").values
    change = (d.interface_setpoint_mw - d.interface_baseline_mw).transpose(
        "scenario", "time", "interface"
    )
    for ax, (f, name) in zip(axes[0], enumerate(names), strict=True):
        flagged = False
        for p in range(0, n_p, stride):
            pv, qv = region_p[p, f], region_q[p, f]
            ok = np.isfinite(pv)
            dp = change.values[:, p * k : (p + 1) * k, f]
            out = setpoints_outside_region(pv, dp)
            if out.any():  # set-points outside the drawn region: flagged markers
                ax.plot(
                    dp[out],
                    np.zeros(int(out.sum())),
                    "x",
                    color="black",
                    ms=6,
                    gid="setpoints_outside",
                    label=None if flagged else "set-point outside its region",
                )
                flagged = True
            if ok.sum() < 1:
                continue
            color = cmap(p / max(n_p - 1, 1))
            x, y = np.r_[pv[ok], pv[ok][:1]], np.r_[qv[ok], qv[ok][:1]]
            minute = (
                round(float(d.period.values[p] / np.timedelta64(1, "m")))
                if np.issubdtype(d.period.dtype, np.timedelta64)
                else round(p * period_h * 60)
            )
            ax.plot(x, y, color=color, label=f"{minute // 60:02d}:{minute % 60:02d}")
            inside = dp[~out & np.isfinite(dp)]
            if len(inside):
                ax.plot(
                    [inside.min(), inside.max()],
                    [0, 0],
                    color=color,
                    lw=4,
                    alpha=0.6,
                    gid="setpoints",
                )
        ax.set_xlabel("import change dP [MW]")
        ax.set_ylabel("reactive import change dQ [Mvar]")
        ax.set_title(
            f"{name}: region deliverable in every scenario (lines),\n"
            "TSO set-points in it over the scenarios (bars)"
            + (", outside it (x)" if flagged else ""),
            fontsize=9,
        )
        ax.legend(fontsize=7)
    fig.suptitle(f"{_study_name(ds)}: DSO-managed flexibility offers, {_day_label(day)}")
    return fig


def write_comparison_plots(ds: xr.Dataset, summary: dict, out: Path) -> list[Path]:
    """The comparison plots beside ``out``: ``<stem>_compare_bars.png`` (sums over the
    days) and per day ``<stem>_compare_<day>_{der,voltages}.png`` and, with the
    DSO-managed model, ``<stem>_compare_<day>_regions.png``."""
    ds = _plot_layout(ds)
    stem = out.with_suffix("")
    paths = [plot_comparison(summary, Path(f"{stem}_compare_bars.png"))]
    for day in ds.day.values:
        base = f"{stem}_compare_{_day_label(day)}"
        paths.append(plot_der_by_model(ds, Path(f"{base}_der.png"), day))
        paths.append(plot_voltage_envelopes(ds, Path(f"{base}_voltages.png"), day))
        if "dso_managed" in ds.model.values and "offer_region_p_mw" in ds:
            paths.append(plot_regions(ds, Path(f"{base}_regions.png"), day))
    return paths


# --------------------------------------------------------------------------------------
# report figures from the statistics (workbench.statistics)

#: colours of the reserve providers, bought (dark) and activated (light)
_RESERVE_COLORS = {
    ("ter", "bought"): "#2166ac",
    ("der", "bought"): "#1a9850",
    ("ter", "activated"): "#92c5de",
    ("der", "activated"): "#a6d96a",
}
#: colours of the cost owners
_OWNER_COLORS = {"tso": "#4575b4", "dso": "#fdae61", "der": "#1a9850"}


def _statistics(ds: xr.Dataset, *calls: str) -> tuple[Statistics, list[xr.DataArray]]:
    """The statistics of the results named by ``calls`` (``"cost"``, or ``"cost:owner"``
    for ``cost(by="owner")``); a variable missing is a PlotError."""
    try:
        st = Statistics(ds)
        out = []
        for call in calls:
            name, _, by = call.partition(":")
            out.append(getattr(st, name)(**({"by": by} if by else {})))
        return st, out
    except StatisticsError as exc:
        raise PlotError(str(exc)) from None


#: x axis of the bars per scenario
_SCENARIO_AXIS = "expected, then per scenario (s<i> and its weight [1])"


def _scenario_labels(w: np.ndarray) -> list[str]:
    return [f"s{i}\n{x:.2g}" for i, x in enumerate(w)]


def plot_reserves(ds: xr.Dataset, model: str | None = None, day=None) -> Figure:
    """Reserve bought day-ahead and activated in the recourse, per direction [MWh].

    One panel per direction (up: more injection, down: less). Bars: the reserve bought
    (first-stage capacity times hours: TER reserve, DER flexibility accepted), the
    expected reserve activated (TER balancing, DER flexibility activated) and the
    activation in every scenario, each split by provider. From
    :meth:`workbench.statistics.Statistics.reserve_bought` and
    :meth:`~workbench.statistics.Statistics.reserve_activated`.
    """
    ds = _plot_layout(ds)
    _, m, d = _select(ds, model, day)
    st, (bought, activated) = _statistics(ds, "reserve_bought", "reserve_activated")
    at = {"model": m, "day": d.to_datetime64()}
    w = st.weight.sel(at).to_numpy()
    caption = (
        "Bought: day-ahead (first-stage) capacity times its hours, TER reserve and DER "
        "flexibility accepted. Activated: energy of TER balancing and DER flexibility "
        "activated, expected over the scenarios and per scenario (label: scenario and its "
        "weight). Up: more injection; down: less injection (PV: curtailment). " + CAPTION_TER
    )
    fig, axes = _figure(1, 2, caption=caption, height=3.6)
    labels = ["bought", "activated\nexpected", *_scenario_labels(w)]
    x = np.arange(len(labels))
    for ax, direction in zip(axes[0], ("up", "down"), strict=True):
        bottom = np.zeros(len(labels))
        for provider in ("ter", "der"):
            key = f"{provider}/{direction}"
            b = float(bought.sel(at).sel(reserve=key).isel(scenario=0))
            a = activated.sel(at).sel(reserve=key)
            exp = float(st.expectation(activated.sel(reserve=key)).sel(at))
            vals = np.r_[b, exp, a.to_numpy()]
            for k, sel in (("bought", slice(0, 1)), ("activated", slice(1, None))):
                ax.bar(
                    x[sel],
                    vals[sel],
                    0.7,
                    bottom=bottom[sel],
                    color=_RESERVE_COLORS[(provider, k)],
                    label=f"{provider.upper()} {k}",
                )
            bottom += vals
        ax.axvline(1.5, color="0.5", lw=0.8)
        ax.set_xticks(x, labels, fontsize=7)
        ax.set_title(f"{direction}ward reserve", fontsize=10)
        ax.set_ylim(bottom=0)
        ax.set_ylabel("reserve [MWh]")
        ax.set_xlabel(_SCENARIO_AXIS)
    _legend_outside(fig, axes)
    _title(fig, ds, "reserve bought and activated", m, d)
    return fig


def plot_cost_breakdown(ds: xr.Dataset, model: str | None = None, day=None) -> Figure:
    """Cost by owner and by item [EUR].

    Left: the cost by owner (tso, dso, der), expected and per scenario, with the CVaR of
    the total; right: the expected cost of every item, coloured by its owner. First
    stage included; the items sum to the expected cost. From
    :meth:`workbench.statistics.Statistics.cost`.
    """
    ds = _plot_layout(ds)
    _, m, d = _select(ds, model, day)
    st, (owners, items) = _statistics(ds, "cost:owner", "cost:item")
    at = {"model": m, "day": d.to_datetime64()}
    w = st.weight.sel(at).to_numpy()
    try:
        alpha = st.alpha
    except StatisticsError as exc:
        raise PlotError(str(exc)) from None
    cvar = float(st.cvar(owners.sum("owner", skipna=False), alpha).sel(at))
    caption = (
        "Items are <payer>/<stage>/<kind> (first: day-ahead capacity; second: recourse). "
        "Owners: tso (TER fuel, reserve, balancing, shedding at transmission), dso "
        "(feeder shedding, own use), der (flexibility, activation, curtailment, "
        f"degradation). CVaR at alpha = {alpha:g} of the total cost; scenario labels "
        "give the scenario and its weight."
    )
    fig, axes = _figure(1, 2, caption=caption, height=3.8)
    ax = axes[0, 0]
    labels = ["expected", *_scenario_labels(w)]
    x = np.arange(len(labels))
    bottom = np.zeros(len(labels))
    for owner in owners["owner"].to_numpy():
        one = owners.sel(owner=owner)
        vals = np.r_[float(st.expectation(one).sel(at)), one.sel(at).to_numpy()]
        ax.bar(x, vals, 0.7, bottom=bottom, color=_OWNER_COLORS.get(str(owner)), label=owner)
        bottom += vals
    ax.axhline(cvar, color="k", ls="--", lw=1, label=f"CVaR of the total ({cvar:,.0f})")
    ax.axvline(0.5, color="0.5", lw=0.8)
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_title("by owner", fontsize=10)
    ax.set_ylabel("cost [EUR]")
    ax.set_xlabel(_SCENARIO_AXIS)
    ax = axes[0, 1]
    exp = st.expectation(items).sel(at)
    exp = exp.where(exp.notnull() & (np.abs(exp) > 1e-6), drop=True)
    owner_of = [str(c).split("/")[0] for c in exp.cost_item.to_numpy()]
    y = np.arange(exp.sizes["cost_item"])
    ax.barh(y, exp.to_numpy(), color=[_OWNER_COLORS.get(o, "0.5") for o in owner_of])
    ax.set_yticks(y, exp.cost_item.to_numpy().astype(str), fontsize=7)
    ax.invert_yaxis()
    ax.set_title("expected, by item", fontsize=10)
    ax.set_xlabel("cost [EUR]")
    _legend_outside(fig, axes)
    _title(fig, ds, "cost by owner and item", m, d)
    return fig
