"""PNG plots of a run: dispatch, interface flows, voltage envelope (first model, first day)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

__all__ = ["plot_dispatch", "plot_interfaces", "plot_voltages", "write_plots"]


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
