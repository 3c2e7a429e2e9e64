"""Compare the three coordination models and their variants on one small study.

The built-in ``congested`` study runs every coordination model: TSO-managed (one
centralised problem with every network), hybrid (the DSO validates the DER bids),
DSO-managed (the DSO offers a P-Q region at its interface and disaggregates the TSO's
set-point), and their variants; here with hourly recourse on 3 scenarios and no AC
check, on a Dask ``LocalCluster`` of two workers (one unit per model). About 2 min of CPU
time::

    python examples/compare_models.py [OUT_DIR]
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from cases.study import MODEL_SHORT_NAMES
from workbench import Study, run
from workbench.compare import compare_models, compare_table


def main(out_dir: Path) -> None:
    study = Study.from_yaml("congested").replace(
        scenarios={"n_scenarios": 3},
        resolution={"second_stage_minutes": 60},
        risk={"alpha": 2 / 3},
        ac_check={"enabled": False},
    )
    warnings.filterwarnings("ignore", message="the CVaR tail holds")
    ds = run(study, scheduler="local", workers=2, out=out_dir / "congested_models.nc")
    check(ds, study)
    print(f"results: {out_dir / 'congested_models.nc'}")


def check(ds: xr.Dataset, study: Study) -> None:
    """Assert what the comparison shows (see the docs page)."""
    assert ds.sizes["model"] == len(study.models) == 6
    status = ds.solver_status.to_series()
    assert (status == "optimal").all(), status.to_dict()

    # the comparison `workbench compare` prints, as a dict: one entry per model
    summary = compare_models(ds)["models"]
    print(compare_table({"models": summary}))
    beta, eps = study.risk.beta, study.risk.recourse_efficiency_weight
    centralised = summary["tso"]
    full_name = {short: full for full, short in MODEL_SHORT_NAMES.items()}
    for name, row in summary.items():
        # each model's objective: first stage + (1 - beta + eps) E[C2] + beta CVaR[C2]
        d = ds.sel(model=full_name[name])
        fs = d.first_stage_cost_eur.item()  # the study's one day
        e2, c2 = row["expected_cost_eur"] - fs, row["cvar_eur"] - fs
        assert np.isclose(row["objective_eur"], fs + (1 - beta + eps) * e2 + beta * c2)
        # the centralised model minimises it over the largest feasible set (every network
        # and every DER bid in one problem), so no other model does better (up to
        # HiGHS's tolerance, 1e-6 of the cost)
        gap = row["objective_gap_to_centralised_eur"]
        assert np.isclose(gap, row["objective_eur"] - centralised["objective_eur"], atol=1e-6)
        assert gap >= -1e-6 * centralised["objective_eur"], f"{name} beats it by {-gap} EUR"
        assert np.isclose(
            row["cost_gap_to_centralised_eur"],
            row["expected_cost_eur"] - centralised["expected_cost_eur"],
            atol=1e-6,
        )
        # nothing is shed on this study, and every model accepts at most what is offered
        assert row["load_shed_mwh"] <= 1e-6, (name, row["load_shed_mwh"])
        assert row["der_accepted_mwh"] <= row["der_offered_mwh"] + 1e-6, name
    # the models differ in what they tell each other (the message ledger): in the
    # TSO-managed model the DSOs send their network data to the TSO, in the DSO-managed
    # model each DSO sends one offer per period at its interface; on this study the
    # first exchanges the most data of all models, more than twice the second's
    exchanged = {name: row["data_exchanged_bytes"] for name, row in summary.items()}
    print("data exchanged [byte]:", exchanged)
    assert all(v > 0 for v in exchanged.values())
    assert exchanged["tso"] == max(exchanged.values()) > 2 * exchanged["dso"]


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="example-"))
    main(out)
