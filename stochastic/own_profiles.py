"""Scenarios for feeders that carry their own per-element profiles (SimBench).

A scenario set gives, per resource (``load_residential``, ``load_commercial``, ``pv``,
``wind``), scenario values ``value_pu`` (scenario, time) and the central profile
``expected_pu`` (time) they scatter around. A feeder whose network carries its own
profiles (:class:`cases.simbench.FeederProfiles`) keeps each element's own shape on the
study day as its expected value and takes the resource's forecast uncertainty from the
scenario set:

- a load follows ``own_t * value_{s,t} / expected_t`` of its resource (residential or
  commercial): the scenario's *relative* deviation, as load errors are relative (its
  reactive power likewise, with its own reactive profile);
- a PV or wind generator follows ``clip(own_t + value_{s,t} - expected_t, 0, 1)`` [pu of
  capacity] where its own profile produces (``own_t > 0``) and 0 elsewhere: the scenario's
  deviation in per unit of capacity, as PV and wind errors are quoted, added to the
  element's shape; a generator at night stays at 0 whatever the generic profile does;
- other generators (biomass, hydro) follow their own profile without uncertainty.

So every element's scenario mean is its own observed profile (up to the clipping), and
the spread of the scenarios is that of the resource's forecast. The study's added DER
(PV fleet units placed by ``der.pv``) have no own profile and follow the resource.

The own profiles are quarter-hourly; other resolutions are block means (30, 60 min) or
the mean-preserving refinement of :func:`forecasts.resolution.from_quarter_hours` (5 min).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from cases.der import DerFleet, network_sgen_unit
from cases.simbench import FeederProfiles
from cases.system import Feeder, IntegratedSystem
from forecasts.resolution import from_quarter_hours

__all__ = ["feeder_own_load", "own_profile_steps", "own_unit_injections", "scenario_deviation"]

#: a generator's own profile counts as producing above this [pu of capacity]
PRODUCING_PU = 0.0
#: a load resource's central value below this gives no relative deviation [pu]
LOAD_FLOOR_PU = 1e-6


def _expected(scenarios: xr.Dataset) -> xr.DataArray:
    if "expected_pu" not in scenarios:
        raise ValueError(
            "the scenario set has no central profile 'expected_pu' (time, resource), which "
            "a feeder with its own profiles (SimBench) needs to place its elements' "
            "scenarios; issue scenarios with forecasts.generate or forecasts.scenarios"
        )
    return scenarios["expected_pu"].transpose("time", "resource")


def scenario_deviation(scenarios: xr.Dataset, resource: str, relative: bool) -> np.ndarray:
    """The scenarios' deviation from the central profile of ``resource``, (S, T).

    ``relative``: ``value / expected`` [-] (1 where ``expected`` is below
    :data:`LOAD_FLOOR_PU`); else ``value - expected`` [pu].
    """
    v = scenarios["value_pu"].transpose("scenario", "time", "resource")
    value = v.sel(resource=resource).to_numpy()
    expected = _expected(scenarios).sel(resource=resource).to_numpy()[None, :]
    if not relative:
        return value - expected
    return np.divide(
        value,
        expected,
        out=np.ones_like(value),
        where=np.broadcast_to(expected > LOAD_FLOOR_PU, value.shape),
    )


def own_profile_steps(
    profiles: FeederProfiles, time: np.ndarray, minutes: int, horizon_hours: int
) -> np.ndarray:
    """The own profiles at the scenario steps, (T, column) [pu].

    Parameters
    ----------
    time : ndarray of datetime64
        Start of every scenario step (the first is the start of the horizon).
    minutes : int
        Step length [min].
    horizon_hours : int
        Horizon [h].
    """
    quarter = profiles.window(pd.Timestamp(time[0]), horizon_hours)
    return from_quarter_hours(quarter, minutes, lower=0.0, axis=0)


def feeder_own_load(
    feeder: Feeder, scenarios: xr.Dataset, minutes: int, horizon_hours: int
) -> tuple[np.ndarray, np.ndarray]:
    """Load P and Q per bus of a feeder with own profiles, each (S, T, bus) [MW, Mvar]."""
    prof = feeder.profiles
    own = own_profile_steps(prof, scenarios["time"].to_numpy(), minutes, horizon_hours)
    p, q = 0.0, 0.0
    for kind, resource in enumerate(("load_residential", "load_commercial")):
        ratio = scenario_deviation(scenarios, resource, relative=True)[..., None]
        p = p + ratio * (own @ prof.load_p_mw[kind])[None]
        q = q + ratio * (own @ prof.load_q_mvar[kind])[None]
    return np.asarray(p), np.asarray(q)


def own_unit_injections(
    system: IntegratedSystem,
    scenarios: xr.Dataset,
    minutes: int,
    horizon_hours: int,
    pv_available_mw: np.ndarray,
    fixed_p_mw: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """PV availability and fixed injections with the feeders' own generator profiles.

    Units made of a feeder network's sgens whose feeder carries own profiles are replaced;
    the others (and feeders without own profiles) keep the values given.

    Parameters
    ----------
    pv_available_mw : (S, T, pv) [MW]
    fixed_p_mw : (S, T, fixed) [MW]

    Returns
    -------
    (pv_available_mw, fixed_p_mw), new arrays.
    """
    fleet: DerFleet = system.fleet
    pv, fixed = pv_available_mw.copy(), fixed_p_mw.copy()
    dev = {}
    for f_i, feeder in enumerate(system.feeders):
        prof = feeder.profiles
        if prof is None:
            continue
        own = own_profile_steps(prof, scenarios["time"].to_numpy(), minutes, horizon_hours)
        for table, out, kinds in (
            (fleet.pv, pv, ("pv",)),
            (fleet.fixed, fixed, ("wind", "other")),
        ):
            names = {
                network_sgen_unit(feeder.name, kind, sgen): (col, kind)
                for sgen, col in prof.sgen_column.items()
                for kind in kinds
            }
            for u, (name, p_mw, unit_feeder) in enumerate(
                zip(table.name, table.p_mw, table.feeder, strict=True)
            ):
                if unit_feeder != f_i or name not in names:
                    continue
                col, kind = names[name]
                shape = own[:, col][None, :]
                if kind == "other":
                    out[..., u] = np.broadcast_to(shape, out.shape[:2]) * p_mw
                    continue
                if kind not in dev:
                    dev[kind] = scenario_deviation(scenarios, kind, relative=False)
                value = np.where(shape > PRODUCING_PU, (shape + dev[kind]).clip(0.0, 1.0), 0.0)
                out[..., u] = value * p_mw
    return pv, fixed
