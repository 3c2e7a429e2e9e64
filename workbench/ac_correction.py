"""Correction of LinDistFlow against the AC power flow: voltage errors and feeder losses.

LinDistFlow drops the losses and linearises the voltage drop; on long LV feeders its
voltages are too high by more than the voltage margin (measured: Dickert long cable
0.827 pu AC vs 0.839 linear). Each round here runs the AC check of the solved schedule on
every scenario and step, and feeds back into the same (persistent) model:

* the voltage error ``e = V_AC - V_linear`` per scenario, step and feeder bus, by moving the
  linear voltage limits to ``[vmin - e, vmax - e]``;
* the feeder losses (AC minus linear interface power) as extra demand at each root,
  which the transmission side then has to supply;

then re-solves. The largest error over the feeder buses is reported after each round.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from cases.system import IntegratedSystem
from stochastic.extract import extract_two_stage
from stochastic.network import w_limits
from stochastic.solve import PersistentSolver, SolveResult
from stochastic.twostage import DayData, TwoStageModel
from workbench.ac_check import ac_check

__all__ = ["correct_against_ac", "feeder_errors"]


def feeder_errors(system: IntegratedSystem, ds: xr.Dataset, ac: xr.Dataset, added: list) -> tuple:
    """Per feeder: voltage error (S, T, bus) [pu] and loss (S, T) [MW]; the largest |error|.

    The loss is the AC interface power minus the linear one plus ``added``, the losses
    already added to the linear model's root demand (S, T) [MW] (where the AC power flow
    did not run: ``added``).
    """
    errors, losses, worst = [], [], 0.0
    for fi, feeder in enumerate(system.feeders):
        names = [f"{feeder.name}/{b}" for b in feeder.arrays.bus_index]
        e = (ac["vm_pu_ac"].sel(bus=names) - ds["vm_pu_linear"].sel(bus=names)).to_numpy()
        e = np.nan_to_num(e, nan=0.0)
        e[..., 0] = 0.0  # the root is held by its tap changer
        loss = (
            ac["interface_p_mw_ac"].isel(interface=fi) - ds["interface_p_mw"].isel(interface=fi)
        ).to_numpy() + added[fi]
        errors.append(e)
        losses.append(np.where(np.isfinite(loss), loss, added[fi]))
        worst = max(worst, float(np.abs(e).max()) if e.size else 0.0)
    return errors, losses, worst


def correct_against_ac(
    system: IntegratedSystem,
    tsm: TwoStageModel,
    solver: PersistentSolver,
    data: DayData,
    result: SolveResult,
    rounds: int,
) -> tuple[SolveResult, xr.Dataset, list[float], list[float]]:
    """Run ``rounds`` rounds of AC correction on a solved model (built with
    ``ac_correction_iterations > 0``, so that its voltage limits are mutable).

    Returns
    -------
    result : SolveResult
        Of the last solve.
    schedule : xarray.Dataset
        Extraction of the last solve.
    max_vm_error_pu : list of float
        Largest ``|V_AC - V_linear|`` over feeder buses, scenarios and steps, before the
        first round and after each round [pu] (``rounds + 1`` values).
    losses_mwh : list of float
        Expected feeder losses of the AC check at the same points [MWh].
    """
    scenarios = list(range(data.n_scenarios))
    steps = list(range(data.n_steps))
    inet = system.integrated_net()
    margin = tsm.options.voltage_margin_pu
    dt = tsm.options.dt_h
    ds = extract_two_stage(tsm, data, result)
    history, loss_history = [], []
    added = [np.zeros(tsm.shape) for _ in system.feeders]
    for r in range(rounds + 1):
        ac = ac_check(system, data, ds, scenarios, steps, inet=inet, base_case=False)
        errors, losses, worst = feeder_errors(system, ds, ac, added)
        history.append(worst)
        loss_history.append(float(sum(data.weight @ loss.sum(axis=1) * dt for loss in losses)))
        if r == rounds:
            break
        for fi, feeder in enumerate(system.feeders):
            params = tsm.parts[f"feeder_{fi}"].params
            lo, hi = w_limits(
                feeder.arrays, margin, errors[fi], root_range_pu=tsm.options.oltc_range_pu
            )
            params["w_min"].set(lo)
            params["w_max"].set(hi)
            params["root_p_mw"].set(data.feeder_root_p_mw[fi] + losses[fi])
            added[fi] = losses[fi]
        solver.update_parameters(warm_start=True)
        result = solver.solve()
        ds = extract_two_stage(tsm, data, result)
    return result, ds, history, loss_history
