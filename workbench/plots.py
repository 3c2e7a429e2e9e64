"""PNG plots of a run: dispatch, interface flows, voltage envelope (first model, first day)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr

from workbench.compare import stage_hours

__all__ = [
    "plot_comparison",
    "plot_der_by_model",
    "plot_dispatch",
    "plot_evaluation",
    "plot_forecast_fan",
    "plot_interfaces",
    "plot_regions",
    "plot_voltage_envelopes",
    "plot_voltages",
    "write_comparison_plots",
    "write_plots",
]


def _hours(ds: xr.Dataset) -> np.ndarray:
    return ds.time.to_numpy().astype("timedelta64[m]").astype(float) / 60.0


def plot_dispatch(ds: xr.Dataset, path: Path) -> Path:
    """Expected TER output and DER injection by type, with the day-ahead TER schedule."""
    w = ds["weight"]
    h = _hours(ds)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ter = (ds["ter_p_mw"].sum("gen") * w).sum("scenario")
    ax.plot(h, ter, label="TER output (expected)", color="k")
    sched = ds["ter_schedule_mw"].sum("gen").to_numpy()
    ax.step(
        np.arange(len(sched)),
        sched,
        where="post",
        color="k",
        ls="--",
        label="TER day-ahead schedule",
    )
    ax2 = ax.twinx()
    for kind, color in (("pv", "orange"), ("battery", "tab:green"), ("ev", "tab:purple")):
        sel = ds["der_type"] == kind
        if int(sel.sum()):
            der = (ds["der_p_mw"].where(sel).sum("der") * w).sum("scenario")
            ax2.plot(h, der, color=color, label=f"{kind} injection (expected)")
    ax.set_xlabel("hour of day [h]")
    ax.set_ylabel("TER [MW]")
    ax2.set_ylabel("DER [MW]")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper left", fontsize=8)
    ax.set_title("Dispatch")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_interfaces(ds: xr.Dataset, path: Path) -> Path:
    """Interface active power per feeder: scenario range, expectation and AC check."""
    h = _hours(ds)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for i, name in enumerate(ds.interface.to_numpy()):
        p = ds["interface_p_mw"].sel(interface=name)
        color = f"C{i}"
        ax.fill_between(h, p.min("scenario"), p.max("scenario"), color=color, alpha=0.25)
        ax.plot(h, (p * ds["weight"]).sum("scenario"), color=color, label=str(name))
        if "interface_p_mw_ac" in ds:
            ac = ds["interface_p_mw_ac"].sel(interface=name).isel(scenario=0)
            ok = np.isfinite(ac.to_numpy())
            ax.plot(h[ok], ac.to_numpy()[ok], ".", color=color, ms=3)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xlabel("hour of day [h]")
    ax.set_ylabel("P into feeder [MW]")
    ax.set_title("Interface flows (band: scenario range, line: expected, dots: AC, scenario 0)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_voltages(ds: xr.Dataset, path: Path) -> Path:
    """Envelope of feeder bus voltages over buses and scenarios, linear model and AC."""
    h = _hours(ds)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    feeder = ~ds.bus.str.startswith("transmission/")
    lin = ds["vm_pu_linear"].where(feeder)
    ax.fill_between(
        h,
        lin.min(("scenario", "bus")),
        lin.max(("scenario", "bus")),
        alpha=0.3,
        label="LinDistFlow range",
    )
    if "vm_pu_ac" in ds:
        ac = ds["vm_pu_ac"].where(feeder)
        lo, hi = ac.min(("scenario", "bus")).to_numpy(), ac.max(("scenario", "bus")).to_numpy()
        ok = np.isfinite(lo)
        ax.plot(h[ok], lo[ok], "v", ms=3, color="tab:red", label="AC min")
        ax.plot(h[ok], hi[ok], "^", ms=3, color="tab:red", label="AC max")
    ax.set_xlabel("hour of day [h]")
    ax.set_ylabel("voltage [pu]")
    ax.set_title("Feeder voltage envelope")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_plots(ds: xr.Dataset, out: Path) -> list[Path]:
    """Write the three plots next to ``out`` (``<stem>_dispatch.png`` ...)."""
    d = ds.isel(model=0, day=0)
    base = out.with_suffix("")
    return [
        plot_dispatch(d, Path(f"{base}_dispatch.png")),
        plot_interfaces(d, Path(f"{base}_interfaces.png")),
        plot_voltages(d, Path(f"{base}_voltages.png")),
    ]


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_forecast_fan(ds: xr.Dataset, path: Path) -> Path:
    """Fan chart of every resource of the first day: 5-95 %, 25-75 % bands, scenarios."""
    d = ds.isel(day=0)
    resources = [str(r) for r in d.resource.to_numpy()]
    fig, axes = plt.subplots(1, len(resources), figsize=(3.2 * len(resources), 3.4), sharex=True)
    q_h = d.time_15min.to_numpy().astype("timedelta64[m]").astype(float) / 60.0
    s_h = d.time_60min.to_numpy().astype("timedelta64[m]").astype(float) / 60.0
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


def plot_comparison(summary: dict, path: Path) -> Path:
    """Bar chart of the coordination models: cost, curtailment, violations, exchange."""
    models = list(summary["models"])
    panels = [
        ("expected_cost_eur", "expected cost [EUR]"),
        ("cost_gap_to_centralised_eur", "expected-cost gap to TSO-managed [EUR]"),
        ("objective_gap_to_centralised_eur", "objective gap to TSO-managed [EUR]"),
        ("curtailment_mwh", "curtailment [MWh]"),
        ("der_dispatched_mwh", "DER flexibility dispatched [MWh]"),
        ("feeder_limit_violations", "feeder limit violations [scenario-steps]"),
        ("data_exchanged_values", "numbers exchanged per day"),
        ("exchange_rounds", "message rounds per day"),
    ]
    colors = _model_colors(models)
    fig, axes = plt.subplots(2, 4, figsize=(15, 7))
    for ax, (key, label) in zip(axes.ravel(), panels, strict=True):
        vals = [summary["models"][m].get(key) for m in models]
        vals = [np.nan if v is None else float(v) for v in vals]
        ax.bar(models, vals, color=[colors[m] for m in models])
        if np.nanmin(np.r_[vals, 0.0]) >= 0:
            ax.set_ylim(bottom=0, top=max(np.nanmax(np.r_[vals, 0.0]) * 1.1, 1.0))
        ax.set_title(label, fontsize=9)
        ax.tick_params(axis="x", labelsize=8, labelrotation=35)
        for tick in ax.get_xticklabels():
            tick.set_horizontalalignment("right")
    days = {summary["models"][m]["days"] for m in models}
    fig.suptitle(f"Coordination models compared (sums over {', '.join(map(str, days))} day(s))")
    return _save(fig, path)


def plot_der_by_model(ds: xr.Dataset, path: Path) -> Path:
    """Expected DER injection by type for every model (first day)."""
    d0 = ds.isel(day=0) if "day" in ds.dims else ds
    models = [str(m) for m in d0.model.values]
    h = _hours(d0)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), sharex=True)
    colors = _model_colors(models)
    for ax, kind in zip(axes, ("pv", "battery", "ev"), strict=True):
        sel = d0["der_type"] == kind
        for m in models:
            d = d0.sel(model=m)
            if d["solver_status"].item() != "optimal" or not int(sel.sum()):
                continue
            inj = (d["der_p_mw"].where(sel).sum("der") * d["weight"]).sum("scenario")
            ax.plot(h, inj, color=colors[m], label=m)
        ax.set_title(f"{kind} injection, expected [MW]", fontsize=9)
        ax.set_xlabel("hour of day [h]")
    axes[0].legend(fontsize=8)
    day = str(np.datetime_as_string(ds.day.values[0], unit="D")) if "day" in ds.dims else ""
    fig.suptitle(f"DER dispatch per model, {day} (batteries: + discharge, EV: - charging)")
    return _save(fig, path)


def plot_voltage_envelopes(ds: xr.Dataset, path: Path) -> Path:
    """Lowest and highest feeder voltage over scenarios per step, one panel per model
    (first day), with the feeders' voltage limits."""
    d0 = ds.isel(day=0) if "day" in ds.dims else ds
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
        ax.axhline(0.95, color="k", ls=":", lw=1, label="0.95 / 1.05 pu")
        ax.axhline(1.05, color="k", ls=":", lw=1)
        ax.set_title(m, fontsize=9)
        if d["solver_status"].item() != "optimal":
            ax.text(0.5, 0.5, "no schedule", transform=ax.transAxes, ha="center")
            continue
        vm = d[source].values[..., feeder]
        lo = np.nanmin(vm, axis=(0, 2))
        hi = np.nanmax(vm, axis=(0, 2))
        ax.fill_between(h, lo, hi, color=colors[m], alpha=0.4, label="lowest-highest")
    for ax in axes.ravel()[n:]:
        ax.set_axis_off()
    for ax in axes[-1]:
        ax.set_xlabel("hour of day [h]")
    for ax in axes[:, 0]:
        ax.set_ylabel("feeder bus voltage [pu]")
    axes[0, 0].legend(fontsize=7, loc="lower left")
    kind = "AC power flow" if source == "vm_pu_ac" else "LinDistFlow"
    fig.suptitle(f"Feeder voltage envelopes per model ({kind}, all scenarios and feeder buses)")
    return _save(fig, path)


def plot_regions(ds: xr.Dataset, path: Path) -> Path:
    """DSO-managed offers: each feeder's P-Q region every 4 hours, with the range of the
    TSO's set-points (change of import from the baseline over the scenarios)."""
    d = ds.sel(model="dso_managed")
    d = d.isel(day=0) if "day" in d.dims else d
    names = [str(i) for i in d.interface.values]
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 4), squeeze=False)
    cmap = plt.get_cmap("viridis")
    n_p = d.sizes["period"]
    k = d.sizes["time"] // n_p
    _, period_h = stage_hours(d)
    stride = max(1, round(4.0 / period_h))  # a region every 4 hours
    for ax, (f, name) in zip(axes[0], enumerate(names), strict=True):
        for p in range(0, n_p, stride):
            pv = d.offer_region_p_mw.values[p, f]
            qv = d.offer_region_q_mvar.values[p, f]
            ok = np.isfinite(pv)
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
            dp = (d.interface_setpoint_mw - d.interface_baseline_mw).values[
                :, p * k : (p + 1) * k, f
            ]
            ax.plot([dp.min(), dp.max()], [0, 0], color=color, lw=4, alpha=0.6)
        ax.set_xlabel("import change dP [MW]")
        ax.set_ylabel("reactive import change dQ [Mvar]")
        ax.set_title(
            f"{name}: region deliverable in every scenario (lines),\n"
            "TSO set-points over the scenarios (bars)",
            fontsize=9,
        )
        ax.legend(fontsize=7)
    day = str(np.datetime_as_string(ds.day.values[0], unit="D")) if "day" in ds.dims else ""
    fig.suptitle(f"DSO-managed flexibility offers, {day}")
    return _save(fig, path)


def write_comparison_plots(ds: xr.Dataset, summary: dict, out: Path) -> list[Path]:
    """The comparison plots beside ``out``: ``<stem>_compare_{bars,der,voltages}.png``
    and, with the DSO-managed model, ``<stem>_compare_regions.png``."""
    stem = out.with_suffix("")
    paths = [
        plot_comparison(summary, Path(f"{stem}_compare_bars.png")),
        plot_der_by_model(ds, Path(f"{stem}_compare_der.png")),
        plot_voltage_envelopes(ds, Path(f"{stem}_compare_voltages.png")),
    ]
    if "dso_managed" in ds.model.values and "offer_region_p_mw" in ds:
        paths.append(plot_regions(ds, Path(f"{stem}_compare_regions.png")))
    return paths
