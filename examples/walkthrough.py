# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Walkthrough: one study from its definition to a figure
#
# This notebook (a [jupytext](https://jupytext.readthedocs.io) percent script: open it in
# Jupyter with jupytext installed, or run it with `python examples/walkthrough.py
# [OUT_DIR]`) takes a built-in study, makes it small, runs two coordination models on
# the same scenarios, and reads the summary, the costs, a first-stage schedule and a
# figure from the results. It takes about a minute of CPU time.

# %%
import sys
import tempfile
from pathlib import Path

import numpy as np

from workbench import Study, read_results, run, summary_table
from workbench.plots import plot_dispatch

# the results go to OUT_DIR when given (as the tests do), else to a new temporary folder
OUT = Path(sys.argv[1]) if len(sys.argv) == 2 else Path(tempfile.mkdtemp(prefix="walkthrough-"))

# %% [markdown]
# ## 1. The study
#
# `congested` is the IEEE 9-bus transmission system with a 33-bus feeder that carries
# three times its peak load in PV behind a thin line, and a CIGRE MV feeder with
# batteries and EV chargers: four midday hours of 2016-06-15. `replace()` returns a new,
# validated study; here: two coordination models (TSO-managed, where the TSO dispatches
# every DER in one problem, and hybrid, where each DSO first validates the DER bids on
# its feeder), hourly recourse on six scenarios, a CVaR over the costliest half of them
# (three scenarios: fewer would make a run warn) and no AC power flow check.

# %%
study = Study.from_yaml("congested").replace(
    models=["tso_managed", "hybrid"],
    scenarios={"n_scenarios": 6},
    resolution={"second_stage_minutes": 60},
    risk={"alpha": 0.5, "beta": 0.5},
    **{"ac_check.enabled": False},
)
print(f"{study.name}: {study.transmission.network}, feeders {[f.name for f in study.feeders]}")
print(f"{study.horizon_hours} h from {study.start_date} {study.start_hour}:00")
print(f"models {study.models}")

# %% [markdown]
# ## 2. Run
#
# `run` runs every model on every day in this process (the default scheduler `sync`),
# returns the results as an `xarray.Dataset` and writes them to netCDF.

# %%
ds = run(study, out=OUT / "walkthrough.nc")
assert list(ds.model.values) == ["tso_managed", "hybrid"]
assert (ds.solver_status == "optimal").all()
ds  # noqa: B018  (in a notebook: the Dataset's dimensions, variables and attributes)

# %% [markdown]
# ## 3. The summary
#
# The table `workbench run` prints: costs, energies and solver times per model.

# %%
print(summary_table(ds))

# %% [markdown]
# ## 4. A few results
#
# Expected cost and CVaR of the day per model [EUR]. With β = 0.5 the objective weighs
# both; the hybrid model's TSO sees only the volumes its DSOs validated, so it cannot be
# cheaper than the centralised TSO-managed model on the same scenarios.

# %%
costs = ds[["expected_cost_eur", "cvar_eur"]].to_dataframe()[["expected_cost_eur", "cvar_eur"]]
print(costs.round(0))
# `model` and `day` are dimensions also with one entry each: select the study's one day
day = ds.isel(day=0)
objective = 0.5 * day.expected_cost_eur + 0.5 * day.cvar_eur
assert objective.sel(model="tso_managed").item() <= objective.sel(model="hybrid").item() * 1.001

# %% [markdown]
# The expected cost is the scenario costs weighted by the scenario probabilities, and
# each scenario's cost items (by owner, stage and kind) add up to its total. The hybrid
# model's expected cost by who pays it [EUR]:

# %%
hybrid = day.sel(model="hybrid")
weight = hybrid.weight  # scenario probabilities, summing to 1
assert np.isclose(float(weight.sum()), 1.0)
assert np.isclose(float(hybrid.scenario_cost_eur @ weight), float(hybrid.expected_cost_eur))
by_owner = (hybrid.cost_item_eur * weight).sum("scenario").groupby("cost_owner").sum()
print(by_owner.to_pandas().round(0))
assert np.isclose(float(by_owner.sum()), float(hybrid.expected_cost_eur))

# %% [markdown]
# The first stage has no scenario dimension: one day-ahead schedule of the transmission
# units [MW] for every scenario, hour by hour.

# %%
schedule = hybrid.ter_schedule_mw
assert "scenario" not in schedule.dims
print(schedule.to_pandas().round(1))

# %% [markdown]
# The expected import of each feeder [MW] (negative: the feeder exports its PV surplus).

# %%
imports = (hybrid.interface_p_mw * weight).sum("scenario").to_pandas()
print(imports.round(3))

# %% [markdown]
# ## 5. A figure
#
# The expected dispatch per technology of one model, as `workbench plot` writes it;
# in a notebook the figure shows below the cell.

# %%
figure = plot_dispatch(ds, model="hybrid")
figure.savefig(OUT / "walkthrough_dispatch.png", dpi=80)
assert (OUT / "walkthrough_dispatch.png").stat().st_size > 5_000

# %% [markdown]
# ## 6. The file
#
# The written file holds the same numbers and the study it was run with
# (`attrs["study_config_yaml"]`); `workbench compare` and `workbench evaluate` read it.

# %%
again = read_results(OUT / "walkthrough.nc")
np.testing.assert_array_equal(again.scenario_cost_eur, ds.scenario_cost_eur)
print(f"results: {OUT / 'walkthrough.nc'}")
