"""Run a built-in study from Python and read costs and a time series from the results.

The built-in ``congested`` study (IEEE 9-bus transmission system, a 33-bus feeder with
three times its peak load in PV and a CIGRE MV feeder with batteries and EV chargers)
made smaller: TSO-managed coordination only, hourly recourse on 3 scenarios, no AC
power flow check (``ac_check.enabled: true`` adds it; pandapower's first power flow in a
process compiles for about 20 s). Runs in about 15 s of CPU time::

    python examples/run_study.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

from cases import parse_study
from workbench import Study, run
from workbench.results import read_results


def main(out_dir: Path) -> None:
    # 1. a built-in study, changed with replace(): a new study, validated like a file
    study = Study.from_yaml("congested").replace(
        models=["tso_managed"],
        scenarios={"n_scenarios": 3},  # keeps method: profile_noise and pv_sigma: 0.4
        resolution={"second_stage_minutes": 60},
        risk={"alpha": 2 / 3},  # the CVaR is the worst of the 3 scenarios
        **{"ac_check.enabled": False},
    )
    print(f"study '{study.name}': {study.horizon_hours} h from {study.start_hour}:00")

    # 2. run it in this process; the results are returned and written to a netCDF file
    ds = run(study, out=out_dir / "congested_small.nc")
    # one model and one day: both stay dimensions (of one entry), as for every study
    assert ds.sizes["model"] == 1 and ds.sizes["day"] == 1
    tso = ds.sel(model="tso_managed").isel(day=0)  # the one model-day, those dims dropped
    assert str(tso.solver_status.item()) == "optimal", tso.solver_message.item()

    # 3. costs [EUR]: expected cost and CVaR of the day, from the scenario costs
    expected_eur = float(tso.expected_cost_eur)
    cvar_eur = float(tso.cvar_eur)
    weight = tso.weight.to_numpy()
    scenario_eur = tso.scenario_cost_eur.to_numpy()
    print(f"expected cost {expected_eur:,.0f} EUR, CVaR {cvar_eur:,.0f} EUR")
    assert np.isclose(weight.sum(), 1.0)
    assert np.isclose(weight @ scenario_eur, expected_eur, rtol=1e-9)
    assert np.isclose(cvar_eur, scenario_eur.max(), rtol=1e-9)  # alpha = 2/3 of 3 equal
    # every cost item (owner/stage/kind) of a scenario adds up to its total cost
    items = tso.cost_item_eur.sum("cost_item").to_numpy()
    np.testing.assert_allclose(items, scenario_eur, rtol=1e-9)
    by_owner = (tso.cost_item_eur * tso.weight).sum("scenario").groupby("cost_owner").sum()
    for owner, eur in zip(by_owner.cost_owner.values, by_owner.to_numpy(), strict=True):
        print(f"  paid by {owner}: {eur:,.0f} EUR")
    assert np.isclose(float(by_owner.sum()), expected_eur, rtol=1e-9)

    # 4. a time series: the expected import of each feeder [MW], hour by hour
    import_mw = (tso.interface_p_mw * tso.weight).sum("scenario").to_pandas()
    import_mw.index = import_mw.index.strftime("%H:%M")  # local standard time (UTC+1)
    print("expected feeder import [MW] (negative: the feeder exports)")
    print(import_mw.round(3).to_string())
    assert import_mw.shape == (study.horizon_hours, len(study.feeders))
    # conservation: the 33-bus feeder has no units besides its DER and LinDistFlow drops
    # the losses, so its import is its demand, less shedding, less its DER injection
    buses = [b for b in tso.bus.values if b.startswith("f1/")]
    ders = [d for d in tso.der.values if d.startswith("f1/")]
    demand_mw = (tso.demand_mw - tso.load_shed_mw).sel(bus=buses).sum("bus")
    balance_mw = demand_mw - tso.der_p_mw.sel(der=ders).sum("der")
    np.testing.assert_allclose(balance_mw, tso.interface_p_mw.sel(interface="f1"), atol=1e-6)

    # 5. the first stage: the hourly schedule of the transmission units [MW]
    schedule_mw = tso.ter_schedule_mw.to_pandas()
    print(f"day-ahead schedule [MW]: {schedule_mw.sum(axis=1).round(1).tolist()}")
    assert schedule_mw.shape == (study.horizon_hours, tso.sizes["gen"])
    assert "scenario" not in tso.ter_schedule_mw.dims  # first stage: one for all scenarios

    # 6. the file holds the same numbers, and the study it was run with
    again = read_results(out_dir / "congested_small.nc")
    np.testing.assert_array_equal(again.scenario_cost_eur.to_numpy(), ds.scenario_cost_eur)
    assert parse_study(yaml.safe_load(again.attrs["study_config_yaml"])) == study
    print(f"results: {out_dir / 'congested_small.nc'}")


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="example-"))
    main(out)
