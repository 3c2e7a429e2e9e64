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
    assert ds.sizes["model"] == len(study.models) == 6
    status = ds.solver_status.to_series()
    assert (status == "optimal").all(), status.to_dict()

    # the comparison `workbench compare` prints, as a dict: one entry per model
    summary = compare_models(ds)["models"]
    print(compare_table({"models": summary}))
    beta = study.risk.beta
    centralised = summary["tso"]
    for name, row in summary.items():
        # the risk-adjusted objective (1 - beta) E + beta CVaR of each model, from its
        # expected cost and CVaR; the centralised model minimises it over the largest
        # feasible set (every network and every DER bid in one problem), so no other
        # model does better (up to HiGHS's tolerance, 1e-6 of the cost)
        risk_adjusted = (1 - beta) * row["expected_cost_eur"] + beta * row["cvar_eur"]
        best = (1 - beta) * centralised["expected_cost_eur"] + beta * centralised["cvar_eur"]
        gap = row["objective_gap_to_centralised_eur"]
        assert np.isclose(risk_adjusted - best, gap, rtol=1e-6, atol=1e-3), (name, gap)
        assert gap >= -1e-6 * abs(best), f"{name} beats the centralised optimum by {-gap} EUR"
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
    print(f"results: {out_dir / 'congested_models.nc'}")


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="example-"))
    main(out)
