"""DER fleet on the feeders: PV, batteries, EV chargers and fixed-profile units.

Each unit table is a ``pandas.DataFrame`` with one row per unit and the columns listed
in :class:`DerFleet`; ``feeder`` is the feeder's position in the system and ``bus`` the
bus position inside the feeder (see :class:`cases.feeders.FeederArrays`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandapower as pp
import pandas as pd

from cases.errors import CaseError
from cases.feeders import FeederArrays
from cases.study import DerConfig

__all__ = ["DerFleet", "build_fleet", "classify_sgen", "empty_fleet", "network_sgen_unit"]

PV_COLUMNS = ["name", "feeder", "bus", "p_mw", "s_mva"]
BATTERY_COLUMNS = [
    "name",
    "feeder",
    "bus",
    "p_mw",
    "e_mwh",
    "efficiency",
    "soc_init",
    "soc_end_min",
]
EV_COLUMNS = [
    "name",
    "feeder",
    "bus",
    "p_mw",
    "n_chargers",
    "charger_type",
    "plug_in_probability",
    "efficiency",
]
FIXED_COLUMNS = ["name", "feeder", "bus", "p_mw", "profile"]


@dataclass(frozen=True, eq=False)
class DerFleet:
    """All DER of a system.

    Attributes
    ----------
    pv : DataFrame
        ``name, feeder, bus, p_mw`` [MWp], ``s_mva`` [MVA inverter rating].
    battery : DataFrame
        ``name, feeder, bus, p_mw`` [MW], ``e_mwh`` [MWh], ``efficiency`` [-] (one way),
        ``soc_init`` [-] (fraction of ``e_mwh`` at the start of the study, and of every day
        with ``model.storage_state: cyclic``), ``soc_end_min`` [-] (least fraction at the end
        of every day).
    ev : DataFrame
        Charger pools: ``name, feeder, bus, p_mw`` [MW, rated power of the pool],
        ``n_chargers``, ``charger_type`` (``home``, ``workplace``, ``public``),
        ``plug_in_probability`` [-], ``efficiency`` [-]. Sessions are drawn per scenario.
    fixed : DataFrame
        Uncontrollable injections: ``name, feeder, bus, p_mw`` [MW rated],
        ``profile`` (``wind``: the wind profile; ``constant``: ``p_mw`` at every step,
        for generators of another kind, see :func:`classify_sgen`).
    """

    pv: pd.DataFrame
    battery: pd.DataFrame
    ev: pd.DataFrame
    fixed: pd.DataFrame

    @property
    def n_units(self) -> int:
        return len(self.pv) + len(self.battery) + len(self.ev)

    def names(self) -> list[str]:
        """Names of all dispatchable units: PV, then batteries, then EV."""
        return [*self.pv.name, *self.battery.name, *self.ev.name]


def empty_fleet() -> DerFleet:
    return DerFleet(
        pd.DataFrame(columns=PV_COLUMNS),
        pd.DataFrame(columns=BATTERY_COLUMNS),
        pd.DataFrame(columns=EV_COLUMNS),
        pd.DataFrame(columns=FIXED_COLUMNS),
    )


def _largest_load_buses(arrays: FeederArrays, count: int | None) -> np.ndarray:
    load_buses = np.flatnonzero(arrays.load_p_mw > 0)
    order = load_buses[np.argsort(-arrays.load_p_mw[load_buses], kind="stable")]
    return np.sort(order if count is None else order[:count])


def build_fleet(
    feeders: list[tuple[FeederArrays, pp.pandapowerNet, DerConfig]],
) -> DerFleet:
    """Place the DER fleet of every feeder.

    Parameters
    ----------
    feeders : list of (FeederArrays, pandapowerNet, DerConfig)
        The feeder's arrays, its (scaled) network and its DER settings.
    """
    pv, bat, ev, fixed = [], [], [], []
    for f, (arrays, net, cfg) in enumerate(feeders):
        fname = arrays.name
        pv_buses = _largest_load_buses(arrays, None if cfg.pv.buses == "all" else cfg.pv.buses)
        for b in pv_buses:
            p = cfg.pv.kwp_per_kw_load * arrays.load_p_mw[b]
            if p > 0:
                pv.append(
                    (f"{fname}/pv/{arrays.bus_index[b]}", f, b, p, p * cfg.pv.inverter_kva_per_kwp)
                )
        for b in _largest_load_buses(arrays, cfg.battery.buses):
            p = cfg.battery.kw_per_kw_load * arrays.load_p_mw[b]
            if p > 0:
                bat.append(
                    (
                        f"{fname}/battery/{arrays.bus_index[b]}",
                        f,
                        b,
                        p,
                        p * cfg.battery.hours,
                        cfg.battery.efficiency,
                        cfg.battery.soc_init,
                        cfg.battery.end_fraction,
                    )
                )
        for b in _largest_load_buses(arrays, cfg.ev.buses):
            p = cfg.ev.kw_per_kw_load * arrays.load_p_mw[b]
            if p > 0:
                ev.append(
                    (
                        f"{fname}/ev/{arrays.bus_index[b]}",
                        f,
                        b,
                        p,
                        max(1, round(p * 1000.0 / cfg.ev.charger_kw)),
                        cfg.ev.charger_type,
                        cfg.ev.plug_in_probability,
                        cfg.ev.efficiency,
                    )
                )
        if cfg.include_network_der:
            _network_der(net, arrays, f, cfg, pv, bat, fixed)
    return DerFleet(
        pd.DataFrame(pv, columns=PV_COLUMNS),
        pd.DataFrame(bat, columns=BATTERY_COLUMNS),
        pd.DataFrame(ev, columns=EV_COLUMNS),
        pd.DataFrame(fixed, columns=FIXED_COLUMNS),
    )


#: type / profile prefixes (upper case) of each kind of generator
_PV = ("PV", "LV_RES", "LV_")  # SimBench's aggregated LV generation is rooftop PV
_WIND = ("WP", "WT", "WIND")
_OTHER = (
    "BM",
    "BIOMASS",
    "HYDRO",
    "CHP",
    "FUEL CELL",
    "RESIDENTIAL FUEL CELL",
    "GAS",
    "DIESEL",
    "OTHER",
    "CONSTANT",
)


def classify_sgen(sgen_type: object, profile: object = None) -> str | None:
    """Kind of a feeder generator: ``pv``, ``wind``, ``other`` (constant), or None.

    The ``type`` decides (``PV*``, SimBench ``lv_RES``; ``WP*``, ``WT``, ``Wind*``;
    ``Biomass*``, ``Hydro*``, ``CHP*``, fuel cells, ``Other``); a missing or unknown type
    falls back on a SimBench ``profile`` name (``PV3``, ``lv_rural1``, ``WP4``, ``BM1``,
    ``Hydro2``).

    Parameters
    ----------
    sgen_type, profile : str or None
        The ``type`` and ``profile`` columns of the sgen.
    """
    for value in (sgen_type, profile):
        text = str(value).strip().upper() if isinstance(value, str) else ""
        if not text:
            continue
        if text.startswith(_PV):
            return "pv"
        if text.startswith(_WIND):
            return "wind"
        if text.startswith(_OTHER):
            return "other"
    return None


def network_sgen_unit(feeder: str, kind: str, sgen: int) -> str:
    """Fleet name of the unit made of a feeder network's sgen ``sgen`` of ``kind``
    (``pv``, ``wind`` or ``other``, see :func:`classify_sgen`)."""
    return f"{feeder}/{kind}/sgen{sgen}"


def _network_der(net, arrays: FeederArrays, f: int, cfg: DerConfig, pv, bat, fixed) -> None:
    """Turn the feeder network's own sgens and storage into fleet units."""
    fname = arrays.name
    for idx, row in net.sgen[net.sgen.in_service].iterrows():
        if row.bus not in set(arrays.bus_index.tolist()):
            raise CaseError(f"feeder '{fname}': sgen {idx} sits on a bus outside the feeder")
        b = arrays.position(int(row.bus))
        p = float(row.p_mw * row.scaling)
        if p < 0:
            raise CaseError(f"feeder '{fname}': sgen {idx} has negative p_mw = {row.p_mw}")
        kind = classify_sgen(row.get("type"), row.get("profile"))
        if kind is None:
            raise CaseError(
                f"feeder '{fname}': sgen {idx} (type {row.get('type')!r}, profile "
                f"{row.get('profile')!r}) is neither PV, wind nor another known kind; set its "
                "'type' to 'PV', 'Wind' or 'Other' (a constant injection at p_mw)"
            )
        sn = row.sn_mva if row.sn_mva == row.sn_mva and row.sn_mva > 0 else p
        if kind == "pv":
            pv.append(
                (
                    network_sgen_unit(fname, "pv", idx),
                    f,
                    b,
                    p,
                    max(float(sn), p * cfg.pv.inverter_kva_per_kwp),
                )
            )
        elif kind == "wind":
            fixed.append((network_sgen_unit(fname, "wind", idx), f, b, p, "wind"))
        else:
            fixed.append((network_sgen_unit(fname, "other", idx), f, b, p, "constant"))
    for idx, row in net.storage[net.storage.in_service].iterrows():
        b = arrays.position(int(row.bus))
        e = float(row.max_e_mwh) if row.max_e_mwh == row.max_e_mwh else np.nan
        p = float(row.get("max_p_mw", np.nan))
        p = p if p == p and p > 0 else float(row.sn_mva)
        if not (e > 0 and p > 0):
            raise CaseError(
                f"feeder '{fname}': storage {idx} needs positive max_e_mwh and "
                f"max_p_mw (or sn_mva), got {row.max_e_mwh} and {p}"
            )
        soc = row.soc_percent / 100 if row.soc_percent == row.soc_percent else cfg.battery.soc_init
        end = cfg.battery.end_fraction if cfg.battery.soc_end_min is not None else soc
        bat.append((f"{fname}/battery/storage{idx}", f, b, p, e, cfg.battery.efficiency, soc, end))
