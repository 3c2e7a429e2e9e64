"""Statistics of a results file: the figures a planner reports, per model, day and scenario.

In the spirit of PyPSA's ``n.statistics``: :class:`Statistics` wraps a results Dataset
(either layout, :mod:`workbench.contract`) and has one method per statistic, each
returning an :class:`xarray.DataArray` on ``(model, day, scenario, <category>)`` with
``units`` and ``long_name``:

=========================  ===========================================  =========
method                     categories                                   units
=========================  ===========================================  =========
``ter_energy``             TER technology (or unit, or bus)             MWh
``der_energy``             DER resource: pv, battery, ev, fixed, load   MWh
``cost``                   cost item, owner (tso, dso, der) or stage    EUR
``reserve_bought``         ter/up, ter/down, der/up, der/down           MWh
``reserve_activated``      ter/up, ter/down, der/up, der/down           MWh
``curtailment``            pv, battery, ev, fixed                       MWh
``load_shed``              network (transmission or the feeder)         MWh
``der_volumes``            offered, accepted, dispatched                MWh
``data_exchanged``         message type (or sender, receiver, kind)     1 or byte
``ac_violations``          voltage_transmission, ..., not_converged     1
``solve_time``             build, translate, solver, wall               s
=========================  ===========================================  =========

Conventions:

- energies are sums over the day's steps of power times the step length; first-stage
  volumes (reserve bought, DER flexibility offered and accepted) are capacity times the
  period length [MW h = MWh];
- what is decided once per day (first stage, messages, solve times) holds the same value
  in every scenario, so every statistic has the same dimensions and its expectation and
  CVaR are the value itself;
- a model-day without a schedule holds NaN.

:meth:`Statistics.expectation` and :meth:`Statistics.cvar` aggregate over scenarios
with the scenario weights (``weight``); the CVaR is :func:`stochastic.risk.cvar` at the
study's ``risk.alpha`` unless another is given. :func:`to_frame` gives the tidy
:class:`pandas.DataFrame` view (columns ``model``, ``day``, ``scenario``,
``statistic``, ``category``, ``value``, ``unit``).

Example
-------
>>> from workbench.results import read_results
>>> from workbench.statistics import Statistics
>>> st = Statistics(read_results("results/default.nc"))  # doctest: +SKIP
>>> st.expectation(st.cost(by="owner"))  # doctest: +SKIP
>>> st.to_frame(["reserve_bought", "reserve_activated"], aggregate="expectation")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr
import yaml

from stochastic import risk
from workbench.contract import to_internal

__all__ = [
    "FRAME_COLUMNS",
    "STATISTICS",
    "Statistics",
    "StatisticsError",
    "stage_hours",
    "to_frame",
]

#: the statistics, in the order :meth:`Statistics.to_frame` gives them
STATISTICS = (
    "ter_energy",
    "der_energy",
    "cost",
    "reserve_bought",
    "reserve_activated",
    "curtailment",
    "load_shed",
    "der_volumes",
    "data_exchanged",
    "ac_violations",
    "solve_time",
)

#: columns of the tidy view
FRAME_COLUMNS = ("model", "day", "scenario", "statistic", "category", "value", "unit")

#: owners of the cost items (coordinate ``cost_owner``)
COST_OWNERS = ("tso", "dso", "der")

#: the DER resources of the ``der`` dimension (coordinate ``der_type``)
DER_TYPES = ("pv", "battery", "ev")

#: the variables each statistic reads
_NEEDS: dict[str, tuple[str, ...]] = {
    "ter_energy": ("ter_p_mw",),
    "der_energy": ("der_p_mw", "demand_mw", "load_shed_mw", "interface_p_mw"),
    "cost": ("cost_item_eur",),
    "reserve_bought": (
        "ter_reserve_up_mw",
        "ter_reserve_down_mw",
        "der_bid_up_mw",
        "der_bid_down_mw",
    ),
    "reserve_activated": (
        "ter_balancing_up_mw",
        "ter_balancing_down_mw",
        "der_activated_up_mw",
        "der_activated_down_mw",
    ),
    "curtailment": ("curtailment_mw",),
    "load_shed": ("load_shed_mw",),
    "der_volumes": (
        "der_bid_up_mw",
        "der_bid_down_mw",
        "der_activated_up_mw",
        "der_activated_down_mw",
    ),
    "data_exchanged": ("message_values", "message_bytes"),
    "ac_violations": (
        "voltage_violations_transmission_ac",
        "voltage_violations_distribution_ac",
        "overloads_ac",
        "ac_checked",
        "ac_converged",
    ),
    "solve_time": ("build_seconds", "translate_seconds", "solver_seconds", "wall_seconds"),
}

#: largest expected spill of the fixed-profile units a file without ``fixed_spill_mw``
#: may hold for it to be read as none in every scenario [MWh]
_SPILL_TOL_MWH = 1e-6


class StatisticsError(ValueError):
    """A statistic the results cannot give (a variable missing, a bad argument)."""


def stage_hours(ds: xr.Dataset) -> tuple[float, float]:
    """Second-stage step and first-stage period lengths of a results file [h].

    The step is the spacing of ``time`` (a single step spans the one-hour horizon); a
    period holds ``time / period`` steps, so a period spanning the whole horizon (one
    ``period``) has its length too.
    """
    n_t, n_p = ds.sizes.get("time", 0), ds.sizes.get("period", 0)
    step_h = (
        float((ds.time.values[1] - ds.time.values[0]) / np.timedelta64(1, "h")) if n_t > 1 else 1.0
    )
    period_h = step_h * (n_t // n_p) if n_t and n_p else 1.0
    return step_h, period_h


def _categories(parts: dict[str, xr.DataArray], dim: str) -> xr.DataArray:
    """One array of the ``parts`` along a new category dimension ``dim``."""
    return xr.concat(
        list(parts.values()), dim=pd.Index(list(parts), name=dim), coords="minimal", join="exact"
    )


def _group(da: xr.DataArray, dim: str, by: str) -> xr.DataArray:
    """``da`` summed over ``dim`` per value of coordinate ``by`` (``by == dim``: as is);
    NaN stays NaN (a model-day without a schedule)."""
    if by == dim:
        return da
    if by not in da.coords or da[by].dims != (dim,):
        choices = [dim, *(n for n, c in da.coords.items() if c.dims == (dim,) and n != dim)]
        raise StatisticsError(f"cannot group '{dim}' by '{by}'; choose one of {', '.join(choices)}")
    return da.groupby(by).sum(skipna=False)


def to_frame(da: xr.DataArray) -> pd.DataFrame:
    """The tidy view of one statistic: one row per model, day, scenario and category.

    Parameters
    ----------
    da : xarray.DataArray
        A statistic of :class:`Statistics` (dims ``model``, ``day``, optionally
        ``scenario``, one category dimension), or its aggregate over scenarios; then the
        ``scenario`` column holds the aggregate's name (``expectation``, ``cvar_0.75``).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`FRAME_COLUMNS`; ``statistic`` is the array's name, ``unit`` its
        ``units``.
    """
    extra = [d for d in da.dims if d not in ("model", "day", "scenario")]
    if len(extra) != 1 or not {"model", "day"} <= set(da.dims):
        raise StatisticsError(
            f"a statistic has dims (model, day[, scenario], <category>), got {da.dims}"
        )
    df = da.to_series().rename("value").reset_index().rename(columns={extra[0]: "category"})
    if "scenario" not in df:
        df["scenario"] = da.attrs.get("aggregate", "")
    df["statistic"] = da.name
    df["unit"] = da.attrs.get("units", "")
    return df[list(FRAME_COLUMNS)]


class Statistics:
    """The statistics of a results Dataset (see the module).

    Parameters
    ----------
    ds : xarray.Dataset
        Results of ``workbench run`` in either layout.
    alpha : float, optional
        CVaR confidence level in (0, 1); by default the study's ``risk.alpha`` (attribute
        ``study_config_yaml``).
    """

    def __init__(self, ds: xr.Dataset, alpha: float | None = None) -> None:
        self.ds = to_internal(ds)
        if "weight" not in self.ds or "scenario" not in self.ds.dims:
            raise StatisticsError(
                "the results have no scenario weights ('weight' on 'scenario'); give a "
                "results file of `workbench run`"
            )
        if alpha is not None:
            risk.check_risk_parameters(alpha, 0.0)
        self._alpha = alpha
        self.step_h, self.period_h = stage_hours(self.ds)

    # ---------------------------------------------------------------------------------
    # the machinery

    @property
    def alpha(self) -> float:
        """CVaR confidence level: the one given, else the study's ``risk.alpha`` (or the
        ``alpha`` attribute of a run's Dataset before it is annotated)."""
        if self._alpha is not None:
            return self._alpha
        text = self.ds.attrs.get("study_config_yaml")
        alpha = ((yaml.safe_load(text) or {}).get("risk") or {}).get("alpha") if text else None
        if alpha is None:  # a run not yet annotated records the level it solved with
            alpha = self.ds.attrs.get("alpha")
        if alpha is None:
            raise StatisticsError(
                "the results carry no study with risk.alpha (attribute 'study_config_yaml'); "
                "give the CVaR level: Statistics(ds, alpha=0.9)"
            )
        risk.check_risk_parameters(float(alpha), 0.0)
        return float(alpha)

    @property
    def weight(self) -> xr.DataArray:
        """Scenario weights (model, day, scenario) [1]."""
        return self.ds["weight"]

    def available(self, name: str) -> bool:
        """Whether the results hold every variable statistic ``name`` reads."""
        if name not in _NEEDS:
            raise StatisticsError(
                f"unknown statistic '{name}'; choose one of {', '.join(STATISTICS)}"
            )
        return all(v in self.ds for v in _NEEDS[name])

    def _need(self, name: str) -> xr.Dataset:
        missing = [v for v in _NEEDS[name] if v not in self.ds]
        if missing:
            raise StatisticsError(
                f"the results lack {', '.join(missing)} for the statistic '{name}'; write "
                "them with `workbench run` of this version"
            )
        return self.ds

    def _finish(self, da: xr.DataArray, name: str, units: str, long_name: str) -> xr.DataArray:
        """Name, attributes, every statistic's dims (scenario broadcast when absent)."""
        if "scenario" not in da.dims:
            da = da.expand_dims(scenario=self.ds["scenario"].to_numpy())
        category = [d for d in da.dims if d not in ("model", "day", "scenario")]
        da = da.transpose("model", "day", "scenario", *category)
        da = da.assign_coords(scenario=self.ds["scenario"])
        da.name = name
        da.attrs = {"units": units, "long_name": long_name}
        return da

    def _energy(self, power: xr.DataArray, *over: str) -> xr.DataArray:
        """Energy of a second-stage power over the day [MWh], summed over ``over``."""
        return power.sum(["time", *over], skipna=False) * self.step_h

    def _volume(self, capacity: xr.DataArray, *over: str) -> xr.DataArray:
        """Capacity of a first-stage period times its length over the day [MWh]."""
        return capacity.sum(["period", *over], skipna=False) * self.period_h

    # ---------------------------------------------------------------------------------
    # aggregations over scenarios

    def expectation(self, da: xr.DataArray) -> xr.DataArray:
        """Weighted mean over ``scenario`` with the scenario weights.

        NaN where a scenario value or weight is missing (a day without a schedule).
        """
        out = (da * self.weight).sum("scenario", skipna=False)
        out.name = da.name
        out.attrs = {
            "units": da.attrs.get("units", ""),
            "long_name": f"expected {da.attrs.get('long_name', da.name)}",
            "aggregate": "expectation",
        }
        return out

    def cvar(self, da: xr.DataArray, alpha: float | None = None) -> xr.DataArray:
        """CVaR over ``scenario`` at level ``alpha`` (default :attr:`alpha`): the weighted
        mean of the costliest ``1 - alpha`` share of probability, by
        :func:`stochastic.risk.cvar` for every model, day and category.

        NaN where a scenario value or weight is missing (a day without a schedule).
        """
        alpha = self.alpha if alpha is None else alpha
        risk.check_risk_parameters(alpha, 0.0)

        def one(values: np.ndarray, weights: np.ndarray) -> float:
            if not (np.isfinite(values).all() and np.isfinite(weights).all()):
                return np.nan
            return risk.cvar(values, weights, alpha)

        out = xr.apply_ufunc(
            one,
            da,
            self.weight,
            input_core_dims=[["scenario"], ["scenario"]],
            vectorize=True,
            output_dtypes=[float],
        )
        out = out.transpose(*(d for d in da.dims if d != "scenario"))
        out.name = da.name
        out.attrs = {
            "units": da.attrs.get("units", ""),
            "long_name": f"CVaR_{alpha:g} of {da.attrs.get('long_name', da.name)}",
            "aggregate": f"cvar_{alpha:g}",
        }
        return out

    def to_frame(
        self,
        names: Sequence[str] | None = None,
        aggregate: Literal["expectation", "cvar"] | None = None,
    ) -> pd.DataFrame:
        """Several statistics in one tidy frame (:func:`to_frame`).

        Parameters
        ----------
        names : sequence of str, optional
            Statistics with their default arguments; by default every one the results
            hold (:meth:`available`).
        aggregate : {"expectation", "cvar"}, optional
            Aggregate over scenarios first.
        """
        names = [n for n in STATISTICS if self.available(n)] if names is None else list(names)
        agg: dict[str | None, Callable[[xr.DataArray], xr.DataArray]] = {
            None: lambda da: da,
            "expectation": self.expectation,
            "cvar": self.cvar,
        }
        if aggregate not in agg:
            raise StatisticsError(
                f"aggregate '{aggregate}' unknown; choose expectation, cvar or None"
            )
        frames = []
        for name in names:
            if name not in STATISTICS:
                raise StatisticsError(
                    f"unknown statistic '{name}'; choose one of {', '.join(STATISTICS)}"
                )
            frames.append(to_frame(agg[aggregate](getattr(self, name)())))
        return pd.concat(frames, ignore_index=True)

    # ---------------------------------------------------------------------------------
    # the statistics

    def ter_energy(self, groupby: str = "gen_technology") -> xr.DataArray:
        """Energy of the transmission energy resources (TER output after balancing) [MWh].

        Parameters
        ----------
        groupby : str
            ``gen_technology`` (default), ``gen_bus`` or ``gen`` (per unit).
        """
        ds = self._need("ter_energy")
        e = _group(self._energy(ds["ter_p_mw"]), "gen", groupby)
        return self._finish(e, "ter_energy", "MWh", "TER energy")

    def der_energy(self) -> xr.DataArray:
        """Net energy into the feeders by resource [MWh]: injection positive.

        Categories: the DER types (``pv`` after curtailment, ``battery`` discharge minus
        charge, ``ev`` minus charging), ``fixed`` (the feeders' fixed-profile units, wind
        and other, after their spill; from each feeder's lossless balance) and ``load``
        (minus the feeder demand served). Their sum is minus the feeders' import.
        """
        ds = self._need("der_energy")
        der_type = ds["der_type"].to_numpy().astype(str)
        parts = {
            kind: self._energy(ds["der_p_mw"].isel(der=np.flatnonzero(der_type == kind)), "der")
            for kind in DER_TYPES
            if (der_type == kind).any()
        }
        network = ds["bus_network"].to_numpy().astype(str)
        feeder_bus = np.flatnonzero(network != "transmission")
        served = (ds["demand_mw"] - ds["load_shed_mw"]).isel(bus=feeder_bus)
        load = -self._energy(served, "bus")
        # fixed units close each feeder's balance: import + DER + fixed = load served
        fixed = -load - sum(parts.values()) - self._energy(ds["interface_p_mw"], "interface")
        parts["fixed"] = fixed
        parts["load"] = load
        return self._finish(
            _categories(parts, "resource"), "der_energy", "MWh", "net energy into the feeders"
        )

    def cost(self, by: Literal["item", "owner", "stage"] = "item") -> xr.DataArray:
        """Cost per scenario [EUR]: first stage and recourse; categories sum to the
        scenario's total cost (``scenario_cost_eur``).

        Parameters
        ----------
        by : {"item", "owner", "stage"}
            ``item``: every ``<owner>/<stage>/<kind>`` (NaN: the model has no such
            item); ``owner``: ``tso``, ``dso``, ``der`` (coordinate ``cost_owner``);
            ``stage``: ``first`` (day-ahead), ``second`` (recourse).
        """
        ds = self._need("cost")
        items = ds["cost_item_eur"]
        if by == "item":
            return self._finish(items, "cost", "EUR", "cost by item")
        if by == "owner":
            if "cost_owner" not in items.coords:
                raise StatisticsError("the results lack the coordinate 'cost_owner'")
            label, keys = items["cost_owner"], COST_OWNERS
        elif by == "stage":
            names = items["cost_item"].to_numpy().astype(str)
            label = xr.DataArray([n.split("/")[1] for n in names], dims="cost_item")
            keys = ("first", "second")
        else:
            raise StatisticsError(f"cost by '{by}' unknown; choose item, owner or stage")
        present = items.notnull().any("cost_item")
        parts = {
            k: items.where(label == k).sum("cost_item", skipna=True).where(present) for k in keys
        }
        return self._finish(_categories(parts, by), "cost", "EUR", f"cost by {by}")

    def _reserve(self, parts: dict[str, xr.DataArray], name: str, long_name: str) -> xr.DataArray:
        da = _categories(parts, "reserve")
        keys = list(parts)
        da = da.assign_coords(
            provider=("reserve", [k.split("/")[0] for k in keys]),
            direction=("reserve", [k.split("/")[1] for k in keys]),
        )
        return self._finish(da, name, "MWh", long_name)

    def reserve_bought(self) -> xr.DataArray:
        """Reserve capacity bought day-ahead (first stage) times its duration [MWh].

        Categories ``<provider>/<direction>`` (coordinates ``provider``: ``ter`` reserve,
        ``der`` flexibility accepted; ``direction``: ``up`` more injection, ``down``
        less).
        """
        ds = self._need("reserve_bought")
        v = self._volume
        parts = {
            "ter/up": v(ds["ter_reserve_up_mw"], "gen"),
            "ter/down": v(ds["ter_reserve_down_mw"], "gen"),
            "der/up": v(ds["der_bid_up_mw"], "der"),
            "der/down": v(ds["der_bid_down_mw"], "der"),
        }
        return self._reserve(parts, "reserve_bought", "reserve bought (capacity x hours)")

    def reserve_activated(self) -> xr.DataArray:
        """Reserve used in the recourse: TER balancing and DER flexibility activated [MWh].

        Categories as :meth:`reserve_bought`. Redispatch beyond the reserve (TER
        emergency and spill) is not reserve and not counted.
        """
        ds = self._need("reserve_activated")
        e = self._energy
        parts = {
            "ter/up": e(ds["ter_balancing_up_mw"], "gen"),
            "ter/down": e(ds["ter_balancing_down_mw"], "gen"),
            "der/up": e(ds["der_activated_up_mw"], "der"),
            "der/down": e(ds["der_activated_down_mw"], "der"),
        }
        return self._reserve(parts, "reserve_activated", "reserve activated")

    def curtailment(self) -> xr.DataArray:
        """Energy curtailed or spilled [MWh]: by DER type (PV, inside and beyond its bid)
        and ``fixed`` (the feeders' fixed-profile units).

        The categories sum to the file's ``curtailment_mwh`` in expectation. A file
        written before ``fixed_spill_mw`` existed holds that spill only in its expected
        ``curtailment_mwh``: when it is nil there (spill is never negative) it is nil in
        every scenario; otherwise the statistic cannot be given per scenario.
        """
        ds = self._need("curtailment")
        der_type = ds["der_type"].to_numpy().astype(str)
        parts = {
            kind: self._energy(
                ds["curtailment_mw"].isel(der=np.flatnonzero(der_type == kind)), "der"
            )
            for kind in DER_TYPES
            if (der_type == kind).any()
        }
        if "fixed_spill_mw" in ds:
            parts["fixed"] = self._energy(ds["fixed_spill_mw"], "interface")
        else:
            parts["fixed"] = self._fixed_spill_from_total(sum(parts.values()))
        return self._finish(
            _categories(parts, "resource"), "curtailment", "MWh", "energy curtailed or spilled"
        )

    def _fixed_spill_from_total(self, der: xr.DataArray) -> xr.DataArray:
        """Zero spill of the fixed units per scenario, proven from the expected total."""
        if "curtailment_mwh" not in self.ds:
            raise StatisticsError(
                "the results lack fixed_spill_mw and curtailment_mwh for the statistic "
                "'curtailment'; write them with `workbench run` of this version"
            )
        rest = self.ds["curtailment_mwh"] - (der * self.weight).sum("scenario", skipna=False)
        worst = float(np.abs(rest).max(skipna=True)) if rest.notnull().any() else 0.0
        if worst > _SPILL_TOL_MWH:
            raise StatisticsError(
                f"the results hold the spill of the fixed-profile units ({worst:.3g} MWh) "
                "only as an expectation; write them again with `workbench run` of this "
                "version for it per scenario (fixed_spill_mw)"
            )
        return xr.zeros_like(der).where(der.notnull())

    def load_shed(self, groupby: str = "bus_network") -> xr.DataArray:
        """Load shed [MWh], by network (``transmission`` or the feeder) or per ``bus``."""
        ds = self._need("load_shed")
        e = _group(self._energy(ds["load_shed_mw"]), "bus", groupby)
        return self._finish(e, "load_shed", "MWh", "load shed")

    def der_volumes(self) -> xr.DataArray:
        """DER flexibility offered and accepted (first stage, capacity x hours) and
        dispatched (activated, up plus down) [MWh].

        ``offered`` only when the results hold ``der_offer_mw``.
        """
        ds = self._need("der_volumes")
        parts = {}
        if "der_offer_mw" in ds:
            parts["offered"] = self._volume(ds["der_offer_mw"], "der")
        parts["accepted"] = self._volume(ds["der_bid_up_mw"] + ds["der_bid_down_mw"], "der")
        parts["dispatched"] = self._energy(
            ds["der_activated_up_mw"] + ds["der_activated_down_mw"], "der"
        )
        return self._finish(
            _categories(parts, "volume"), "der_volumes", "MWh", "DER flexibility volumes"
        )

    def data_exchanged(
        self, unit: Literal["values", "bytes"] = "values", groupby: str = "message"
    ) -> xr.DataArray:
        """Data exchanged between TSO, DSOs and DER per day.

        Parameters
        ----------
        unit : {"values", "bytes"}
            Numbers carried [1] or their payload (float64) [byte].
        groupby : str
            ``message`` (default; ``<sender>-><receiver>:<kind>``), ``message_sender``,
            ``message_receiver`` or ``message_kind``.
        """
        ds = self._need("data_exchanged")
        if unit not in ("values", "bytes"):
            raise StatisticsError(f"unit '{unit}' unknown; choose values or bytes")
        da = _group(ds[f"message_{unit}"], "message", groupby)
        units = "1" if unit == "values" else "byte"
        return self._finish(da, "data_exchanged", units, f"data exchanged ({unit})")

    def ac_violations(self) -> xr.DataArray:
        """The AC power-flow check over the checked steps [1].

        Categories ``voltage_transmission`` / ``voltage_distribution`` (bus-steps outside
        their voltage limits), ``overloads`` (branch-steps above 100 %), ``not_converged``
        (checked steps whose power flow did not converge) and ``checked`` (steps checked).
        """
        ds = self._need("ac_violations")

        def count(name: str) -> xr.DataArray:  # unchecked steps hold -1
            return ds[name].clip(min=0).sum("time", skipna=False)

        checked = ds["ac_checked"].astype(float).sum("time", skipna=False)
        parts = {
            "voltage_transmission": count("voltage_violations_transmission_ac"),
            "voltage_distribution": count("voltage_violations_distribution_ac"),
            "overloads": count("overloads_ac"),
            "not_converged": checked - ds["ac_converged"].astype(float).sum("time", skipna=False),
            "checked": checked,
        }
        return self._finish(_categories(parts, "check"), "ac_violations", "1", "AC check counts")

    def solve_time(self) -> xr.DataArray:
        """Time of a model-day [s]: Pyomo ``build`` (0 when re-used), ``translate``
        (hand-over to HiGHS), ``solver`` (inside HiGHS) and ``wall`` (the task)."""
        ds = self._need("solve_time")
        parts = {k: ds[f"{k}_seconds"] for k in ("build", "translate", "solver", "wall")}
        return self._finish(_categories(parts, "step"), "solve_time", "s", "solve time")
