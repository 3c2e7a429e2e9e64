"""Sweep the risk weight beta on a Dask cluster: expected cost against CVaR.

One study per beta (the built-in ``congested`` study, TSO-managed, hourly recourse on
6 scenarios, CVaR of the worst half), each run as one task on a ``LocalCluster`` of two
worker processes. The objective is ``first stage + (1 - beta + eps) E[C2] + beta
CVaR[C2]`` (``eps``: ``risk.recourse_efficiency_weight``), so a larger beta buys a
smaller CVaR with a larger expected cost. About 70 s of CPU time in all::

    python examples/beta_sweep.py [OUT_DIR]

writes ``beta_sweep.png`` (and prints the table) in OUT_DIR.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from workbench import Study, run

BETAS = (0.0, 0.25, 0.5, 0.75, 1.0)


def solve(study: Study) -> dict[str, float]:
    """Run one study on a worker, in the worker's process; return its day's figures."""
    warnings.filterwarnings("ignore")  # the CVaR tail warning, once per study
    ds = run(study, scheduler="sync")  # one model, one day: (model, day) of shape (1, 1)
    assert str(ds.solver_status.item()) == "optimal", ds.solver_message.item()
    return {
        "beta": study.risk.beta,
        "expected_eur": ds.expected_cost_eur.item(),
        "cvar_eur": ds.cvar_eur.item(),
        "first_stage_eur": ds.first_stage_cost_eur.item(),
        "objective_eur": ds.objective_eur.item(),
    }


def check(rows: list[dict[str, float]], eps: float) -> None:
    """Assert the risk trade-off that the weighted objective implies.

    With ``A = FS + (1 + eps) E[C2]`` and the risk premium ``h = CVaR - E`` (the same for
    total and second-stage costs), the objective is ``A + beta h``; for two optima at
    beta1 < beta2, adding their optimality conditions gives ``h`` non-increasing and ``A``
    non-decreasing in beta, exactly. E and CVaR themselves follow up to the ``eps`` term:
    E may fall by at most ``eps |dE[C2]|`` and CVaR rise by at most
    ``2 eps |dE[C2]| / beta2``. On top, HiGHS's optimality tolerance: 1e-6 of the cost.
    """
    e = np.array([r["expected_eur"] for r in rows])
    c = np.array([r["cvar_eur"] for r in rows])
    fs = np.array([r["first_stage_eur"] for r in rows])
    beta = np.array([r["beta"] for r in rows])
    e2, c2 = e - fs, c - fs
    slack = 1e-6 * float(np.abs(e).max())
    # the objective the model minimised is the one stated above
    objective = fs + (1 - beta + eps) * e2 + beta * c2
    np.testing.assert_allclose([r["objective_eur"] for r in rows], objective, rtol=1e-9)
    premium, a = c - e, fs + (1 + eps) * e2
    assert np.all(np.diff(premium) <= slack), f"CVaR - E rises with beta: {premium}"
    assert np.all(np.diff(a) >= -slack), f"FS + (1+eps) E[C2] falls with beta: {a}"
    d_e2 = np.abs(np.diff(e2))
    assert np.all(np.diff(e) >= -(eps * d_e2 + slack)), f"E[cost] falls with beta: {e}"
    assert np.all(np.diff(c) <= 2 * eps * d_e2 / beta[1:] + slack), f"CVaR rises with beta: {c}"
    # the limiting cases: beta = 0 has the least expected cost, beta = 1 the least CVaR,
    # and on this study the trade-off is real, not flat
    assert e[0] <= e.min() + slack and c[-1] <= c.min() + slack
    assert e[-1] > e[0] + 1.0 and c[-1] < c[0] - 1.0, (e, c)


def main(out_dir: Path) -> None:
    from distributed import Client, LocalCluster

    base = Study.from_yaml("congested").replace(
        models=["tso_managed"],
        scenarios={"n_scenarios": 6},
        resolution={"second_stage_minutes": 60},
        risk={"alpha": 0.5},  # the CVaR is the mean of the worst 3 of 6 scenarios
        ac_check={"enabled": False},
    )
    studies = [base.replace(risk={"beta": beta}) for beta in BETAS]
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        rows = client.gather(client.map(solve, studies, pure=False))
    rows.sort(key=lambda r: r["beta"])

    print(" beta   E[cost] EUR   CVaR EUR   day-ahead EUR")
    for r in rows:
        print(
            f"{r['beta']:5.2f}  {r['expected_eur']:12,.1f}  {r['cvar_eur']:9,.1f}"
            f"  {r['first_stage_eur']:14,.1f}"
        )
    check(rows, base.risk.recourse_efficiency_weight)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([r["expected_eur"] for r in rows], [r["cvar_eur"] for r in rows], "o-")
    for r in rows:
        ax.annotate(f"β={r['beta']:g}", (r["expected_eur"], r["cvar_eur"]), fontsize=8)
    ax.set_xlabel("expected cost [EUR]")
    ax.set_ylabel("CVaR$_{0.5}$ [EUR]")
    ax.set_title("risk trade-off, congested study")
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / "beta_sweep.png", dpi=120)
    print(f"plot: {out_dir / 'beta_sweep.png'}")


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="example-"))
    main(out)
