"""Report figures: one per model and day, titles, units, limits, conservation of the
dispatch stack, legends outside the data.

The results are a small synthetic Dataset in the layout of ``workbench run``
(``docs/results.md``) whose power balance closes by construction, so the figures can be
checked against numbers computed here independently.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from workbench import plots
from workbench.plots import PlotError, weighted_quantiles

DAYS = pd.to_datetime(["2016-06-15", "2016-06-16"])
MODELS = ["tso_managed", "dso_managed"]
S, T, P = 3, 8, 4  # scenarios, 30-min steps from 10:00, hourly periods
WIND_MW = 0.4  # output of f2's fixed-profile unit, known only through the balance
LIMITS = {"f1": (0.95, 1.05), "f2": (0.9, 1.08)}
CONFIG = {
    "name": "tiny",
    "transmission": {"network": "case9", "technologies": {"gen/0": "nuclear"}},
    "feeders": [
        {"name": "f1", "bus": "5", "vm_min_pu": 0.95, "vm_max_pu": 1.05},
        {"name": "f2", "bus": "7", "vm_max_pu": 1.08, "vm_min_pu": 0.9},
    ],
    "resolution": {"first_stage_minutes": 60, "second_stage_minutes": 30},
    "risk": {"alpha": 0.6},
}


def _results(seed: int = 3) -> xr.Dataset:
    """Two models, two days; the DSO-managed model carries flexibility regions."""
    rng = np.random.default_rng(seed)
    M, D = len(MODELS), len(DAYS)
    gens = ["ext_grid/0", "gen/0", "gen/1"]
    ders = ["f1/pv/1", "f1/battery/2", "f1/ev/3", "f2/pv/1"]
    buses = ["transmission/1", "f1/0", "f1/1", "f2/0", "f2/1"]
    shape = (M, D, S, T)
    weight = np.broadcast_to(np.array([0.5, 0.3, 0.2]), (M, D, S)).copy()
    pv = rng.uniform(0.0, 2.0, (*shape, 2))
    der = np.stack(
        [pv[..., 0], rng.uniform(-1.0, 1.0, shape), -rng.uniform(0.0, 0.5, shape), pv[..., 1]],
        axis=-1,
    )
    curt = np.zeros((*shape, 4))
    curt[..., 0] = 0.1 * pv[..., 0]
    ter = rng.uniform(5.0, 20.0, (*shape, 3))
    shed = np.zeros((*shape, 5))
    shed[:, :, 2, 3, 0] = 1.5  # one scenario sheds at one step
    demand = np.zeros((*shape, 5))
    total = ter.sum(-1) + der.sum(-1) + WIND_MW + shed.sum(-1)
    share = np.array([0.6, 0.0, 0.2, 0.0, 0.2])
    demand[:] = total[..., None] * share
    vm = 1.0 + rng.uniform(-0.04, 0.04, (*shape, 5))
    vm[..., 0] = np.nan
    vm_ac = vm + 0.002
    vm_ac[..., 1::2, :] = np.nan  # AC check every other step
    ip = rng.normal(3.0, 1.0, (*shape, 2))
    items = ["der/first/flexibility", "dso/second/shedding", "tso/first/reserve", "tso/second/fuel"]
    cost = rng.uniform(10.0, 100.0, (M, D, S, len(items)))
    cost[..., [0, 2]] = cost[..., :1, [0, 2]]  # first-stage items: equal in every scenario
    fp = ("model", "day", "period")
    coords = {
        "model": MODELS,
        "day": DAYS.values,
        "scenario": np.arange(S),
        "time": pd.to_timedelta(10, "h") + pd.to_timedelta(np.arange(T) * 30, "min"),
        "period": pd.to_timedelta(10, "h") + pd.to_timedelta(np.arange(P), "h"),
        "gen": gens,
        "der": ders,
        "der_type": ("der", ["pv", "battery", "ev", "pv"]),
        "bus": buses,
        "interface": ["f1", "f2"],
        "vertex": np.arange(4),
        "cost_item": items,
        "cost_owner": ("cost_item", [c.split("/")[0] for c in items]),
    }
    sd = ("model", "day", "scenario", "time")
    region_p = np.broadcast_to(np.array([-1.0, 2.0, 2.0, -1.0]), (M, D, P, 2, 4)).copy()
    region_q = np.broadcast_to(np.array([-1.0, -1.0, 1.0, 1.0]), (M, D, P, 2, 4)).copy()
    region_p[0] = region_q[0] = np.nan  # TSO-managed has none
    setpoint = np.full((*shape, 2), np.nan)
    setpoint[1] = ip[1] + 0.5
    ds = xr.Dataset(
        {
            "weight": (("model", "day", "scenario"), weight),
            "ter_p_mw": ((*sd, "gen"), ter, {"units": "MW"}),
            "der_p_mw": ((*sd, "der"), der, {"units": "MW"}),
            "curtailment_mw": ((*sd, "der"), curt, {"units": "MW"}),
            "fixed_spill_mw": ((*sd, "interface"), np.zeros((*shape, 2)), {"units": "MW"}),
            "demand_mw": ((*sd, "bus"), demand, {"units": "MW"}),
            "load_shed_mw": ((*sd, "bus"), shed, {"units": "MW"}),
            "interface_p_mw": ((*sd, "interface"), ip, {"units": "MW"}),
            "interface_q_mvar": ((*sd, "interface"), 0.3 * ip, {"units": "Mvar"}),
            "interface_p_mw_ac": ((*sd, "interface"), ip + 0.01, {"units": "MW"}),
            "interface_setpoint_mw": ((*sd, "interface"), setpoint, {"units": "MW"}),
            "interface_baseline_mw": ((*sd, "interface"), setpoint - 0.2, {"units": "MW"}),
            "vm_pu_linear": ((*sd, "bus"), vm, {"units": "pu"}),
            "vm_pu_ac": ((*sd, "bus"), vm_ac, {"units": "pu"}),
            "offer_region_p_mw": (
                ("model", "day", "period", "interface", "vertex"),
                region_p,
                {"units": "MW"},
            ),
            "offer_region_q_mvar": (
                ("model", "day", "period", "interface", "vertex"),
                region_q,
                {"units": "Mvar"},
            ),
            "cost_item_eur": (("model", "day", "scenario", "cost_item"), cost, {"units": "EUR"}),
            "ter_reserve_up_mw": ((*fp, "gen"), rng.uniform(0, 2, (M, D, P, 3)), {"units": "MW"}),
            "ter_reserve_down_mw": ((*fp, "gen"), rng.uniform(0, 2, (M, D, P, 3)), {"units": "MW"}),
            "der_bid_up_mw": ((*fp, "der"), rng.uniform(0, 1, (M, D, P, 4)), {"units": "MW"}),
            "der_bid_down_mw": ((*fp, "der"), rng.uniform(0, 1, (M, D, P, 4)), {"units": "MW"}),
            "ter_balancing_up_mw": ((*sd, "gen"), rng.uniform(0, 1, (*shape, 3)), {"units": "MW"}),
            "ter_balancing_down_mw": (
                (*sd, "gen"),
                rng.uniform(0, 1, (*shape, 3)),
                {"units": "MW"},
            ),
            "der_activated_up_mw": ((*sd, "der"), rng.uniform(0, 1, (*shape, 4)), {"units": "MW"}),
            "der_activated_down_mw": (
                (*sd, "der"),
                rng.uniform(0, 1, (*shape, 4)),
                {"units": "MW"},
            ),
            "solver_status": (("model", "day"), np.full((M, D), "optimal")),
            "solver_message": (("model", "day"), np.full((M, D), "", dtype="<U64")),
        },
        coords=coords,
    )
    ds.attrs = {"study_name": "tiny", "study_config_yaml": yaml.safe_dump(CONFIG)}
    return ds


@pytest.fixture(scope="module")
def results() -> xr.Dataset:
    return _results()


def _figures(ds, model, day):
    return {
        "demand": plots.plot_demand(ds, model, day),
        "dispatch": plots.plot_dispatch(ds, model, day),
        "uncertainty": plots.plot_uncertainty(ds, model, day),
        "interfaces": plots.plot_interfaces(ds, model, day),
        "voltages": plots.plot_voltages(ds, model, day),
        "regions": plots.plot_flexibility_regions(ds, "dso_managed", day, "f1"),
        "reserves": plots.plot_reserves(ds, model, day),
        "costs": plots.plot_cost_breakdown(ds, model, day),
    }


@pytest.fixture(scope="module")
def figures(results):
    figs = _figures(results, "dso_managed", DAYS[1])
    yield figs
    for f in figs.values():
        plt.close(f)


def _data_axes(fig):
    return [ax for ax in fig.axes if ax.axison]


def _titles_only(monkeypatch):
    """Figures saved as their title text (the drawing is tested elsewhere; this is fast)."""

    def save(fig, path, **kw):
        Path(path).write_text(fig._suptitle.get_text())

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", save)


def test_one_file_per_figure_model_and_day(results, tmp_path, monkeypatch):
    _titles_only(monkeypatch)
    report = plots.write_plots(results, tmp_path, "run", fmt="svg")
    names = sorted(p.name for p in report.paths)
    # the synthetic results hold no flows or bids: those figures are skipped with a note
    assert sorted(s.split(":")[0] for s in report.skipped) == [
        "flexibility",
        "loading",
        "map",
        "models",
    ]
    per_model_day = ["demand", "dispatch", "uncertainty", "interfaces", "voltages"]
    per_model_day += ["reserves", "costs"]
    expected = {
        f"run_{m}_{d.date()}_{k}.svg": (m, str(d.date()))
        for m in ("tso_managed", "dso_managed")
        for d in DAYS
        for k in per_model_day + (["regions-f1", "regions-f2"] if m == "dso_managed" else [])
    }
    assert names == sorted(expected)
    for p in report.paths:
        model, day = expected[p.name]
        title = p.read_text()
        assert f"model {model}, day {day}" in title and title.startswith("tiny: "), p.name


def test_a_chosen_model_and_day_only_and_failed_days_are_reported(tmp_path, monkeypatch):
    _titles_only(monkeypatch)
    ds = _results()
    report = plots.write_plots(ds, tmp_path, "run", model="tso_managed", day="2016-06-16")
    kinds = ("demand", "dispatch", "uncertainty", "interfaces", "voltages", "reserves", "costs")
    assert [p.name for p in report.paths] == [f"run_tso_managed_2016-06-16_{k}.png" for k in kinds]
    ds["solver_status"].loc[{"model": "tso_managed", "day": DAYS[0]}] = "failed"
    ds["solver_message"].loc[{"model": "tso_managed", "day": DAYS[0]}] = "infeasible"
    with pytest.raises(PlotError, match=r"no schedule.*infeasible"):
        plots.write_plots(ds, tmp_path, "x", model="tso_managed", day="2016-06-15")
    report = plots.write_plots(ds, tmp_path, "y", model="tso_managed")
    assert len(report.paths) == 7
    assert [s for s in report.skipped if "no schedule" in s] == [
        "tso_managed 2016-06-15: no schedule (status failed)"
    ]


def test_unknown_model_day_or_format_is_one_clear_error(results, tmp_path):
    with pytest.raises(PlotError, match=r"model 'hybrid'.*available: tso_managed, dso_managed"):
        plots.write_plots(results, tmp_path, "run", model="hybrid")
    with pytest.raises(PlotError, match="day 2016-07-01 is not in the results"):
        plots.write_plots(results, tmp_path, "run", day="2016-07-01")
    with pytest.raises(PlotError, match="choose one"):
        plots.plot_dispatch(results, "tso_managed")
    with pytest.raises(PlotError, match="format 'jpg'"):
        plots.write_plots(results, tmp_path, "run", fmt="jpg")
    with pytest.raises(PlotError, match="DSO-managed"):
        plots.plot_flexibility_regions(results, "tso_managed", DAYS[0], "f1")


def test_titles_name_study_model_and_day(figures):
    for name, fig in figures.items():
        title = fig._suptitle.get_text()
        assert "tiny" in title and "dso_managed" in title and "2016-06-16" in title, name


def _shows_ticks(axis) -> bool:
    return any(t.get_visible() and t.get_text() for t in axis.get_ticklabels())


def test_axis_labels_carry_units(figures):
    """Every axis that shows tick labels names its quantity's unit in brackets."""
    unit = re.compile(r"\[[^\]]+\]")
    for name, fig in figures.items():
        fig.canvas.draw()
        for ax in _data_axes(fig):
            if _shows_ticks(ax.xaxis):
                assert unit.search(ax.get_xlabel()), (name, ax.get_xlabel())
            if ax.get_ylabel() or (_shows_ticks(ax.yaxis) and ax.get_subplotspec().is_first_col()):
                assert unit.search(ax.get_ylabel()), (name, ax.get_ylabel())


def test_time_axis_is_absolute_day_plus_offset(figures):
    ax = figures["dispatch"].axes[0]
    lo, hi = (matplotlib.dates.num2date(v).replace(tzinfo=None) for v in ax.get_xlim())
    # steps from 10:00 to 14:00 on the chosen day (plus margins)
    assert pd.Timestamp("2016-06-16 09:30") < pd.Timestamp(lo) <= pd.Timestamp("2016-06-16 10:00")
    assert pd.Timestamp("2016-06-16 14:00") <= pd.Timestamp(hi) < pd.Timestamp("2016-06-16 14:30")


def test_voltage_axes_carry_the_feeder_limits(figures):
    fig = figures["voltages"]
    axes = _data_axes(fig)
    assert len(axes) == 2
    for ax, feeder in zip(axes, ("f1", "f2"), strict=True):
        assert ax.get_ylabel().startswith(feeder)
        found = {ln.get_gid(): set(np.asarray(ln.get_ydata(), float)) for ln in ax.get_lines()}
        lo, hi = LIMITS[feeder]
        assert found["vm_min_pu"] == {lo} and found["vm_max_pu"] == {hi}


def test_voltage_limits_default_to_the_feeder_config(results):
    cfg = yaml.safe_load(results.attrs["study_config_yaml"])
    del cfg["feeders"][0]["vm_min_pu"]
    ds = results.copy()
    ds.attrs = {**results.attrs, "study_config_yaml": yaml.safe_dump(cfg)}
    from cases.study import FeederConfig

    assert plots.voltage_limits(ds)["f1"] == (
        FeederConfig.model_fields["vm_min_pu"].default,
        1.05,
    )


def _signed_areas(ax) -> dict[str, np.ndarray]:
    """Per stacked collection (gid ``stack:<key>:<sign>``): the thickness in the middle of
    every step, signed, read from the polygon's horizontal edges."""
    out: dict[str, np.ndarray] = {}
    for coll in ax.collections:
        gid = coll.get_gid() or ""
        if not gid.startswith("stack:"):
            continue
        _, key, sign = gid.rsplit(":", 2)
        v = coll.get_paths()[0].vertices
        xs = np.unique(v[:, 0])
        thick = []
        for xm in (xs[:-1] + xs[1:]) / 2:
            a, b = v[:-1], v[1:]
            across = (np.minimum(a[:, 0], b[:, 0]) < xm) & (np.maximum(a[:, 0], b[:, 0]) > xm)
            ys = a[across, 1]
            thick.append(ys.max() - ys.min())
        t = np.array(thick) * (1.0 if sign == "+" else -1.0)
        out[key] = out.get(key, 0.0) + t
    return out


@pytest.mark.parametrize("per_unit", [False, True])
def test_dispatch_stack_sums_to_ter_der_and_demand(results, per_unit):
    model, day = "tso_managed", DAYS[0]
    fig = plots.plot_dispatch(results, model, day, per_unit=per_unit)
    areas = _signed_areas(fig.axes[0])
    plt.close(fig)
    d = results.sel(model=model, day=day)
    w = d.weight.values
    ter = w @ d.ter_p_mw.sum("gen").values
    der = w @ d.der_p_mw.sum("der").values
    own = sum(a for k, a in areas.items() if k not in ("other feeder units", "load shed"))
    np.testing.assert_allclose(own, ter + der, atol=1e-9)
    # the fixed-profile unit and the shedding close the balance to the demand
    np.testing.assert_allclose(areas["other feeder units"], WIND_MW, atol=1e-9)
    shed = np.zeros(T)
    shed[3] = 0.2 * 1.5
    np.testing.assert_allclose(areas["load shed"], shed, atol=1e-9)
    np.testing.assert_allclose(sum(areas.values()), w @ d.demand_mw.sum("bus").values, atol=1e-9)
    keys = set(areas)
    if per_unit:
        assert {"gen/0 (nuclear)", "gen/1 (TER without technology)"} <= keys
        assert {"DER PV f1", "DER PV f2", "DER battery f1", "DER EV f1"} <= keys
    else:
        assert {"nuclear", "external grid (imports)", "DER PV", "DER battery", "DER EV"} <= keys


def test_dispatch_caption_explains_ter_and_signs(figures):
    text = " ".join(t.get_text() for ax in figures["dispatch"].axes for t in ax.texts)
    assert "transmission energy resources" in text
    assert "+ discharging, - charging" in text and "EV" in text


def test_legends_sit_outside_the_data_area(figures):
    for name, fig in figures.items():
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        legends = fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
        assert legends, name
        for leg in legends:
            box = leg.get_window_extent(renderer)
            for ax in _data_axes(fig):
                assert not box.overlaps(ax.get_window_extent(renderer)), name


def test_fan_bands_follow_the_weighted_scenarios(results, tmp_path):
    fig = plots.plot_demand(results, "tso_managed", DAYS[0])
    ax = fig.axes[0]
    d = results.sel(model="tso_managed", day=DAYS[0])
    demand = d.demand_mw.sum("bus").values
    bands = [c for c in ax.collections]
    # the light band of the demand spans min..max of the scenarios
    v = bands[0].get_paths()[0].vertices
    fig.savefig(tmp_path / "demand.pdf")
    assert (tmp_path / "demand.pdf").stat().st_size > 5_000
    plt.close(fig)
    assert v[:, 1].max() == pytest.approx(demand.max())
    assert v[:, 1].min() == pytest.approx(demand.min())


def test_weighted_quantiles_limiting_cases():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 5))
    equal = np.full(7, 1 / 7)
    q = weighted_quantiles(x, equal, [0.0, 0.3, 0.5, 1.0])
    np.testing.assert_allclose(q[0], x.min(0))
    np.testing.assert_allclose(q[-1], x.max(0))
    for i, qi in enumerate([0.3, 0.5]):
        np.testing.assert_allclose(q[i + 1], np.quantile(x, qi, axis=0, method="inverted_cdf"))
    # all weight on one scenario: every quantile above 0 is that scenario
    one = np.zeros(7)
    one[4] = 1.0
    np.testing.assert_allclose(weighted_quantiles(x, one, [0.05, 0.5, 0.95]), [x[4]] * 3)
    with pytest.raises(ValueError, match="sum to 1"):
        weighted_quantiles(x, np.full(7, 0.1), [0.5])


@pytest.mark.parametrize("n", [6, 12, 20, 40])
def test_weighted_quantiles_at_a_sum_of_equal_weights_stay_on_its_scenario(n):
    """With n equal weights, q = k/n is the k-th smallest value (the inverse of the CDF),
    also where the cumulative weights round below k/n (0.05 of 20, 0.5 of 12, ...)."""
    x = np.random.default_rng(n).normal(size=(n, 3))
    q = np.array([0.0, 0.05, 0.5, 0.95, 1.0, *(np.arange(1, n) / n)])
    k = np.maximum(np.ceil(q * n - 1e-9).astype(int), 1) - 1  # exact inverse of k/n
    np.testing.assert_array_equal(weighted_quantiles(x, np.full(n, 1 / n), q), np.sort(x, 0)[k])


def test_plot_command_writes_the_chosen_figures(results, tmp_path, capsys, monkeypatch):
    from workbench.cli import main

    path = tmp_path / "tiny.nc"
    results.to_netcdf(path)
    _titles_only(monkeypatch)
    out = tmp_path / "figs"
    code = main(
        ["plot", str(path), "--model", "tso", "--day", "2016-06-16",
         "--out-dir", str(out), "--format", "svg"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr()
    files = sorted(out.iterdir())
    assert len(files) == 7
    for f in files:
        assert f.name.startswith("tiny_tso_managed_2016-06-16_") and f.suffix == ".svg"
        assert "model tso_managed, day 2016-06-16" in f.read_text()
    assert main(["plot", str(path), "--model", "hybrid"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: model 'hybrid'")


def test_comparison_plots_per_day_carry_the_day_and_the_limits(results, tmp_path):
    for day in DAYS:
        path = tmp_path / f"v_{day.date()}.png"
        captured = []
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(matplotlib.figure.Figure, "savefig", lambda fig, *a, **k: None)
            mp.setattr(plt, "close", captured.append)
            plots.plot_voltage_envelopes(results, path, day)
        fig = captured[0]
        assert str(day.date()) in fig._suptitle.get_text()
        levels = {float(ln.get_ydata()[0]) for ln in fig.axes[0].get_lines()}
        assert {0.95, 1.05, 0.9, 1.08} <= levels
        plt.close(fig)
    with pytest.raises(PlotError, match="choose one"):
        plots.plot_der_by_model(results, tmp_path / "x.png")


# --------------------------------------------------------------------------------------
# figures from a real run (the session's small results file, see tests/conftest.py)


@pytest.fixture(scope="module")
def small(small_results_file):
    from workbench.contract import to_internal
    from workbench.results import read_results

    return to_internal(read_results(small_results_file))


@pytest.fixture(scope="module")
def small_system(small):
    from workbench.rebuild import results_system

    return results_system(small)


def _summary(n_models: int, template: dict) -> dict:
    row = next(iter(template["models"].values()))
    return {"models": {f"m{i}": dict(row) for i in range(n_models)}}


@pytest.mark.parametrize("only", ["tso", "hybrid"])
def test_comparison_bars_have_no_empty_panel_with_one_model(small, tmp_path, only):
    from workbench.compare import compare_models

    summary = compare_models(small)
    one = {"models": {only: summary["models"][only]}}
    keys = [k for k, _ in plots.comparison_panels(one)]
    assert not any("gap_to_centralised" in k for k in keys)
    assert "gap_to_centralised" in " ".join(k for k, _ in plots.comparison_panels(summary))
    captured = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plt, "close", captured.append)
        plots.plot_comparison(one, tmp_path / "bars.png")
    fig = captured[0]
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == len(keys)
    for ax in axes:  # every panel drawn has a finite bar
        heights = [p.get_height() for p in ax.patches]
        assert heights and np.isfinite(heights).all(), ax.get_title()
    plt.close(fig)


def test_vector_files_keep_their_text_and_png_has_the_asked_resolution(results, tmp_path):
    fig = plots.plot_demand(results, "tso_managed", DAYS[0])
    svg = plots.save_figure(fig, tmp_path / "f.svg").read_text()
    assert "<text" in svg and "demand and net load" in svg and "<image" not in svg
    pdf = plots.save_figure(fig, tmp_path / "f.pdf").read_bytes()
    assert b"/FontFile2" in pdf and b"/Subtype /Image" not in pdf  # TrueType, no raster
    plots.save_figure(fig, tmp_path / "f.png", dpi=300)
    height, width = plt.imread(tmp_path / "f.png").shape[:2]
    assert (width, height) == tuple(round(x * 300) for x in fig.get_size_inches())
    plt.close(fig)


def test_plot_command_writes_png_at_the_asked_resolution(results, tmp_path, capsys):
    from workbench.cli import main

    path = tmp_path / "tiny.nc"
    results.to_netcdf(path)
    out = tmp_path / "figs"
    args = ["plot", str(path), "--model", "tso", "--day", "2016-06-16", "--out-dir", str(out)]
    assert main([*args, "--dpi", "150"]) == 0, capsys.readouterr()
    fig = plots.plot_demand(results, "tso_managed", "2016-06-16")
    height, width = plt.imread(out / "tiny_tso_managed_2016-06-16_demand.png").shape[:2]
    assert (width, height) == tuple(round(x * 150) for x in fig.get_size_inches())
    plt.close(fig)


def test_branch_loading_sorts_branches_and_draws_the_rating(small):
    fig = plots.plot_branch_loading(small, "tso_managed", top=5)
    axes = _data_axes(fig)
    d = small.sel(model="tso_managed").isel(day=0)
    assert [ax.get_ylabel().split(":")[0] for ax in axes] == ["transmission", "f1", "f2"]
    for ax, network in zip(axes, ("transmission", "f1", "f2"), strict=True):
        limit = [ln for ln in ax.get_lines() if ln.get_gid() == "loading_limit"]
        assert set(limit[0].get_ydata()) == {100.0}
        v = d.loading_percent_ac.sel(branch=d.branch.str.startswith(f"{network}/"))
        worst = v.max(["scenario", "time"]).sortby(lambda x: -x)  # most loaded first
        names = [str(b).split("/", 1)[1] for b in worst.branch.values[:5]]
        assert [t.get_text() for t in ax.get_xticklabels()] == names
    plt.close(fig)


def test_element_statistics_against_numpy(small):
    d = small.sel(model="hybrid").isel(day=0)
    buses = [str(b) for b in d.bus.values if str(b).startswith("f2/")]
    vm = d.vm_pu_ac.sel(bus=buses).transpose("scenario", "time", "bus").to_numpy()
    flat = vm.reshape(-1, len(buses))
    worst = plots.element_statistic(d, "vm_pu_ac", buses, "worst")
    far = np.nanargmax(np.abs(flat - 1.0), axis=0)
    np.testing.assert_allclose(worst, flat[far, np.arange(len(buses))])
    np.testing.assert_allclose(
        plots.element_statistic(d, "vm_pu_ac", buses, "min"), np.nanmin(flat, 0)
    )
    w = d.weight.to_numpy()
    np.testing.assert_allclose(
        plots.element_statistic(d, "vm_pu_ac", buses, at="11:00"), w @ vm[:, 4]
    )
    lin = d.vm_pu_linear.sel(bus=buses).transpose("scenario", "time", "bus").to_numpy()
    np.testing.assert_allclose(
        plots.element_statistic(d, "vm_pu_linear", buses, "mean"), w @ lin.mean(axis=1)
    )
    with pytest.raises(PlotError, match="no vm_pu_ac at 11:15"):
        plots.element_statistic(d, "vm_pu_ac", buses, at="11:15")  # not an AC-checked step
    with pytest.raises(PlotError, match="no step starts at 11:07"):
        plots.element_statistic(d, "vm_pu_ac", buses, at="11:07")


def _bus_values(ax) -> list[float]:
    """Values of the coloured bus collections of a map."""
    from matplotlib.collections import PatchCollection

    out = []
    for c in ax.collections:
        if isinstance(c, PatchCollection) and c.get_array() is not None:
            out += list(np.asarray(c.get_array(), float))
    return out


def test_transmission_map_marks_the_feeders_and_colours_by_voltage(small):
    fig = plots.plot_network_map(small, "tso_managed", network="transmission")
    ax = fig.axes[0]
    marks = {ln.get_gid() for ln in ax.get_lines() if (ln.get_gid() or "").startswith("interface")}
    assert marks == {"interface:4", "interface:6"}  # buses named 5 and 7 of case9
    assert {t.get_text() for t in ax.texts} >= {"f1", "f2"}
    d = small.sel(model="tso_managed").isel(day=0)
    buses = [str(b) for b in d.bus.values if str(b).startswith("transmission/")]
    expected = plots.element_statistic(d, "vm_pu_ac", buses)
    found = _bus_values(ax)
    assert sorted(found) == pytest.approx(sorted(expected[np.isfinite(expected)]))
    assert "tso_managed" in fig._suptitle.get_text()
    plt.close(fig)
    fig = plots.plot_network_map(small, "hybrid", network="f2", statistic="max")
    marks = [ln.get_gid() for ln in fig.axes[0].get_lines() if ln.get_gid()]
    assert marks == ["interface:0"]  # the CIGRE MV root
    assert {a.get_ylabel() for a in fig.axes[1:]} == {"bus voltage [pu]", "branch loading [%]"}
    plt.close(fig)


def test_a_network_that_cannot_be_rebuilt_is_skipped_with_a_note(small, tmp_path, monkeypatch):
    _titles_only(monkeypatch)
    cfg = yaml.safe_load(small.attrs["study_config_yaml"])
    cfg["feeders"][0]["network"] = "<pandapower net: 33 buses>"
    ds = small.copy()
    ds.attrs = {**small.attrs, "study_config_yaml": yaml.safe_dump(cfg)}
    report = plots.write_plots(ds, tmp_path, "r", model="tso_managed")
    kinds = {p.stem.split("_")[-1] for p in report.paths}
    assert {"map-transmission", "map-f2", "loading"} <= kinds
    assert "map-f1" not in kinds and not any(k.startswith("flexibility") for k in kinds)
    notes = [s for s in report.skipped if s.startswith(("map-f1:", "flexibility:"))]
    assert len(notes) == 2 and all("keep only its name" in s for s in notes)
    assert all("\n" not in s for s in report.skipped)


def test_a_network_kept_in_the_results_is_drawn(small, tmp_path, monkeypatch):
    import json

    import pandapower as pp

    from cases.networks import load_network

    _titles_only(monkeypatch)
    cfg = yaml.safe_load(small.attrs["study_config_yaml"])
    cfg["feeders"][0]["network"] = "<pandapower net: 33 buses>"
    ds = small.copy()
    ds.attrs = {
        **small.attrs,
        "study_config_yaml": yaml.safe_dump(cfg),
        "study_networks_json": json.dumps({"feeders.0": pp.to_json(load_network("case33bw"))}),
    }
    report = plots.write_plots(ds, tmp_path, "r", model="tso_managed")
    kinds = {p.stem.split("_")[-1] for p in report.paths}
    assert {"map-f1", "flexibility-f1"} <= kinds
    assert not [s for s in report.skipped if s.startswith(("map", "flexibility"))]


def test_net_demand_from_the_flows_of_a_tree():
    # root 0 -> 1 -> {2, 3}; 3 -> 4; demands 1, 2, 3, 4 at buses 1..4
    parent = np.array([-1, 0, 1, 1, 3])
    demand = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    flows = np.array([10.0, 2.0, 7.0, 4.0])  # into buses 1..4: the demand below each
    from workbench.interface_regions import net_demand

    np.testing.assert_allclose(net_demand(flows[None], parent)[0], demand)


@pytest.mark.parametrize("model", ["tso_managed", "hybrid"])
@pytest.mark.parametrize("feeder", ["f1", "f2"])
def test_the_scheduled_interface_point_lies_in_its_region(small, small_system, model, feeder):
    """Any model, not only DSO-managed: the expected import of each period lies in the
    P-Q region computed around it, the region has an area, and moving the import away
    from the schedule costs something, more the farther."""
    flex = plots.interface_flexibility_of(small, model, None, feeder, small_system)
    assert len(flex.regions) == small.sizes["period"]
    for p, region in enumerate(flex.regions):
        assert region is not None and region.area > 1e-3
        point = np.array([flex.p_mw[p], flex.q_mvar[p]])
        assert region.contains(point, tol=1e-6), (p, point, region.vertices)
        dp, cost = flex.cost_dp_mw[p], flex.cost_eur_per_h[p]
        ok = np.isfinite(dp) & np.isfinite(cost)
        dp, cost = dp[ok], cost[ok]
        assert cost[np.argmin(np.abs(dp))] == pytest.approx(0.0, abs=1e-6)
        assert (cost >= -1e-6).all()
        up, down = dp >= 0, dp <= 0
        assert np.all(np.diff(cost[up]) >= -1e-6) and np.all(np.diff(cost[down][::-1]) >= -1e-6)
        assert region.vertices[:, 0].min() <= flex.p_mw[p] + dp.min() + 1e-6


def test_the_region_figure_draws_the_schedule_in_the_region(small, small_system):
    flex = plots.interface_flexibility_of(small, "hybrid", None, "f1", small_system)
    fig = plots.plot_interface_flexibility(small, "hybrid", None, "f1", flexibility=flex)
    panels = [ax for ax in fig.axes if any(c.get_gid() == "region" for c in ax.patches)]
    assert len(panels) == small.sizes["period"]
    for ax, p in zip(panels, flex.p_mw, strict=True):
        star = next(ln for ln in ax.get_lines() if ln.get_gid() == "schedule")
        assert star.get_xdata()[0] == pytest.approx(p)
    cost = next(ax for ax in fig.axes if ax.get_gid() == "cost_curves")
    assert len(cost.get_lines()) >= small.sizes["period"]
    assert "[EUR/h]" in cost.get_ylabel() and "[MW]" in cost.get_xlabel()
    plt.close(fig)


@pytest.mark.parametrize("n_models", [1, 6])
def test_one_page_comparison_of_one_to_six_models(small, n_models):
    from workbench.compare import compare_models

    summary = _summary(n_models, compare_models(small))
    fig = plots.plot_model_comparison(small, summary)
    bars = [
        ax for ax in fig.axes if any((p.get_gid() or "").startswith("bar:") for p in ax.patches)
    ]
    assert len(bars) == 5
    for ax in bars:
        assert [t.get_text() for t in ax.get_xticklabels()] == list(summary["models"])
        assert "[" in ax.get_ylabel()
    cost = next(ax for ax in bars if ax.get_ylabel() == "cost [EUR]")
    heights = [p.get_height() for p in cost.patches if p.get_gid() == "bar:expected_cost_eur"]
    assert heights == pytest.approx([summary["models"]["m0"]["expected_cost_eur"]] * n_models)
    assert tuple(fig.get_size_inches()) == pytest.approx((11.69, 8.27))
    plt.close(fig)
    with pytest.raises(PlotError, match="1 to 6 models"):
        plots.plot_model_comparison(small, _summary(7, summary))


def test_every_figure_is_named_in_the_help_and_the_readme(capsys):
    from workbench.cli import main

    assert main(["plot", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for name in plots.REPORT_FIGURES:
        assert name in text, name
        assert f"`{name}`" in readme, name
    assert main(["compare", "--help"]) == 0
    compare = " ".join(capsys.readouterr().out.split())
    for name in ("bars.png", "<day>_der.png", "<day>_voltages.png", "<day>_regions.png"):
        assert f"<results>_compare_{name}" in compare, name
        assert f"`<results>_compare_{name}`" in readme, name
    assert "--dpi" in text and "--map-at" in text


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 8).flatmap(
        lambda n: st.tuples(
            arrays(np.float64, (n, 3), elements=st.floats(-1e3, 1e3)),
            arrays(np.float64, n, elements=st.floats(0.01, 1.0)),
        )
    )
)
def test_weighted_quantiles_are_scenario_values_ordered_in_q(data):
    x, raw = data
    w = raw / raw.sum()
    q = weighted_quantiles(x, w, [0.0, 0.05, 0.5, 0.95, 1.0])
    assert np.all(np.diff(q, axis=0) >= 0)  # monotone in the probability
    for j in range(x.shape[1]):
        assert set(q[:, j]) <= set(x[:, j])  # always one of the scenarios
        # the weight below the q-quantile is less than q, the weight up to it at least q
        for qi, v in zip([0.05, 0.5, 0.95], q[1:4, j], strict=True):
            assert w[x[:, j] < v].sum() < qi + 1e-9 <= w[x[:, j] <= v].sum() + 2e-9


def _bar_tops(ax) -> dict[float, float]:
    """Height of every stack of vertical bars by its x position."""
    tops: dict[float, float] = {}
    for patch in ax.patches:
        x = round(patch.get_x() + patch.get_width() / 2, 6)
        tops[x] = tops.get(x, 0.0) + patch.get_height()
    return tops


def test_reserve_bars_are_the_bought_and_activated_volumes(results, figures):
    """Bought: capacity times 1 h periods; activated: energy of 30-min steps, per scenario
    and weighted; both TER plus DER, per direction (computed here from the variables)."""
    d = results.sel(model="dso_managed", day=DAYS[1])
    w = d.weight.values
    for ax, direction in zip(_data_axes(figures["reserves"]), ("up", "down"), strict=True):
        bought = float(d[f"ter_reserve_{direction}_mw"].sum() + d[f"der_bid_{direction}_mw"].sum())
        per_scenario = 0.5 * (
            d[f"ter_balancing_{direction}_mw"].sum(("time", "gen")).values
            + d[f"der_activated_{direction}_mw"].sum(("time", "der")).values
        )
        tops = _bar_tops(ax)
        want = [bought, float(w @ per_scenario), *per_scenario]
        np.testing.assert_allclose([tops[x] for x in sorted(tops)], want, rtol=1e-12)


def test_cost_bars_sum_to_the_expected_cost_and_the_line_is_the_cvar(results, figures):
    d = results.sel(model="dso_managed", day=DAYS[1])
    w = d.weight.values
    total = d.cost_item_eur.sum("cost_item").values
    by_owner, by_item = _data_axes(figures["costs"])
    tops = _bar_tops(by_owner)
    np.testing.assert_allclose([tops[x] for x in sorted(tops)], [w @ total, *total], rtol=1e-12)
    # CVaR at alpha 0.6: the costliest 40 % of probability, computed by hand
    order = np.argsort(-total)
    tail, left = 0.0, 0.4
    for s in order:
        take = min(w[s], left)
        tail, left = tail + take * total[s], left - take
    line = next(ln for ln in by_owner.lines if ln.get_linestyle() == "--")
    assert line.get_ydata()[0] == pytest.approx(tail / 0.4, rel=1e-12)
    widths = [p.get_width() for p in by_item.patches]
    assert sum(widths) == pytest.approx(w @ total, rel=1e-12)


def _setpoint_artists(fig) -> tuple[list, list]:
    """Drawn set-points: x extents of the in-region bars and bands, and x positions of the
    flagged markers, over every axis."""
    bars, flagged = [], []
    for ax in fig.axes:
        for artist in [*ax.lines, *ax.patches]:
            gid = artist.get_gid()
            if gid == "setpoints":
                if hasattr(artist, "get_xdata"):  # a line
                    x = np.asarray(artist.get_xdata(), dtype=float)
                elif hasattr(artist, "get_width"):  # a span drawn as a rectangle
                    x = np.array([artist.get_x(), artist.get_x() + artist.get_width()])
                else:  # a span drawn as a polygon
                    x = np.asarray(artist.get_xy(), dtype=float)[:, 0]
                bars.append((ax, x.min(), x.max()))
            elif gid == "setpoints_outside":
                flagged.extend(np.asarray(artist.get_xdata(), dtype=float))
    return bars, flagged


def test_drawn_setpoints_lie_in_their_region_or_are_flagged(results):
    """Set-points pushed beyond the region's P range [-1, 2] in some scenario-steps: every
    bar stays within the region, every set-point outside it is a flagged marker."""
    ds = results.copy(deep=True)
    sp = ds["interface_setpoint_mw"]
    base = ds["interface_baseline_mw"]
    dso = {"model": "dso_managed", "day": DAYS[1]}
    sp.loc[{**dso, "scenario": 0, "interface": "f1"}] = base.sel(**dso, scenario=0).sel(
        interface="f1"
    ) + np.linspace(-3.0, 3.0, T)
    dp = (sp - base).sel(**dso).transpose("scenario", "time", "interface").values
    region = ds["offer_region_p_mw"].sel(**dso).transpose("period", "interface", "vertex").values
    k = T // P
    outside = sum(
        int(plots.setpoints_outside_region(region[p, f], dp[:, p * k : (p + 1) * k, f]).sum())
        for p in range(P)
        for f in range(2)
    )
    assert outside == 5  # -3, -2.14, -1.29, 2.14 and 3 of the linspace
    # the per-model figure of f1, every period
    fig = plots.plot_flexibility_regions(ds, "dso_managed", DAYS[1], "f1")
    bars, flagged = _setpoint_artists(fig)
    assert bars and len(flagged) == 5
    for _, lo, hi in bars:
        assert -1.0 - 1e-9 <= lo and hi <= 2.0 + 1e-9
    plt.close(fig)
    # the comparison figure: a region every 4 hours (here the first period only)
    fig = plots.regions_figure(ds, DAYS[1])
    bars, flagged = _setpoint_artists(fig)
    in_first = dp[:, :k]
    want = int(plots.setpoints_outside_region(region[0, 0], in_first[..., 0]).sum()) + int(
        plots.setpoints_outside_region(region[0, 1], in_first[..., 1]).sum()
    )
    assert len(flagged) == want
    for _, lo, hi in bars:
        assert -1.0 - 1e-9 <= lo and hi <= 2.0 + 1e-9
    plt.close(fig)
