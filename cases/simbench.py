"""SimBench networks and the per-element profiles a network carries.

A SimBench network is named ``simbench:<code>`` or by its bare code (``1-MV-rural--0-sw``,
``1-LV-rural1--0-sw``; :func:`simbench_codes` lists them all). It is read from the data
shipped in the ``simbench`` package (ODbL), with its 2016 quarter-hourly profiles in
``net.profiles`` and each load's and generator's profile name in its ``profile`` column.

:func:`network_profiles` reads those profiles from any network that carries them (a
SimBench network, or one written to JSON with ``pandapower.to_json`` and read back). The
rows are taken by position onto the fixed UTC+1 clock of :mod:`cases.profiles` (SimBench's
labels follow German daylight saving time while the values are a gap-free quarter-hour
series), so every day of 2016 has 96 quarter-hours.
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import re
import warnings
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
import pandapower as pp
import pandas as pd

from cases.errors import CaseError

__all__ = [
    "SIMBENCH_PREFIX",
    "FeederProfiles",
    "NetworkProfiles",
    "check_simbench_feeder",
    "feeder_profiles",
    "is_simbench_spec",
    "load_simbench",
    "network_profiles",
    "simbench_codes",
    "simbench_feeder_codes",
]

SIMBENCH_PREFIX = "simbench:"
#: the year of the SimBench profiles
PROFILE_YEAR = 2016
#: what a bare SimBench code looks like (``1-MV-rural--0-sw``, ``1-HVMV-mixed-1.105-0-no_sw``)
_CODE = re.compile(r"^[0-9]-[A-Za-z_]+-[^\s/\\]*-[0-2]-(sw|no_sw)$")
#: a load profile counted as commercial (SimBench ``G0-A``, ``G3-M``; CIGRE ``CI1``)
_COMMERCIAL = re.compile(r"(^|\W)(CI|C|G)\d", re.IGNORECASE)


@cache
def simbench_codes() -> tuple[str, ...]:
    """All SimBench network codes of the installed ``simbench`` package, sorted."""
    import simbench

    return tuple(sorted(simbench.collect_all_simbench_codes()))


#: SimBench voltage levels whose grids can be radial feeders, one substation each; the HV
#: and EHV levels (and the coupled grids that include them) are meshed with several
#: in-feeds, and SimBench grids cannot be the transmission network
FEEDER_LEVELS = ("LV", "MV", "MVLV")


def _level(code: str) -> str:
    parts = code.split("-")
    return parts[1] if len(parts) > 2 else ""


@cache
def _feeder_table() -> dict[str, tuple[bool, str]]:
    """code -> (usable as a feeder, reason if not), from ``data/simbench_feeders.csv``
    (derived by ``data/make_simbench_feeders.py``)."""
    path = resources.files("cases") / "data" / "simbench_feeders.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        return {r["code"]: (r["feeder"] == "True", r["reason"]) for r in csv.DictReader(fh)}


@cache
def simbench_feeder_codes() -> tuple[str, ...]:
    """The SimBench codes usable as feeders, sorted: levels :data:`FEEDER_LEVELS` and,
    where ``data/simbench_feeders.csv`` knows the code, radial (some ``no_sw`` grids
    close their rings)."""
    table = _feeder_table()
    return tuple(
        c for c in simbench_codes() if _level(c) in FEEDER_LEVELS and table.get(c, (True, ""))[0]
    )


def check_simbench_feeder(spec: str, label: str) -> None:
    """Raise :class:`CaseError` if SimBench ``spec`` is not a feeder grid (without loading it).

    Raises
    ------
    CaseError
        An HV or EHV grid (or a coupled grid including one): meshed, with several
        in-feeds; or a grid known to be meshed (``data/simbench_feeders.csv``).
    """
    code = _code_of(spec)
    usable, reason = _feeder_table().get(code, (True, ""))
    if _level(code) not in FEEDER_LEVELS:
        reason = f"{_level(code)} level: meshed with several in-feeds"
    elif usable:
        return
    raise CaseError(
        f"{label}: SimBench grid '{code}' cannot be a radial feeder ({reason}); use an "
        f"{', '.join(FEEDER_LEVELS)} code such as 1-MV-rural--0-sw (see `workbench cases`)"
    )


def is_simbench_spec(spec: str) -> bool:
    """True for ``simbench:<anything>`` and for text shaped like a bare SimBench code."""
    return spec.startswith(SIMBENCH_PREFIX) or bool(_CODE.match(spec))


def _code_of(spec: str) -> str:
    code = spec.removeprefix(SIMBENCH_PREFIX).strip()
    codes = simbench_codes()
    if code not in codes:
        level = code.split("-")[1] if code.count("-") >= 2 else ""
        near = [c for c in codes if c.split("-")[1] == level and c.endswith("-sw")][:4] or [
            "1-MV-rural--0-sw",
            "1-MV-semiurb--0-sw",
            "1-LV-rural1--0-sw",
            "1-HV-mixed--0-sw",
        ]
        raise CaseError(
            f"unknown SimBench code '{code}'; use one of the {len(codes)} codes of the simbench "
            f"package, e.g. {', '.join(near)} (list them all with `workbench cases`)"
        )
    return code


@cache
def _read(code: str) -> pp.pandapowerNet:
    import simbench

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return simbench.get_simbench_net(code)


def load_simbench(spec: str) -> pp.pandapowerNet:
    """The SimBench network ``spec`` (``simbench:<code>`` or the bare code), a fresh copy.

    Its profiles are in ``net.profiles`` (see :func:`network_profiles`). The package's
    data are read once per process (a few seconds) and copied on every call.

    Raises
    ------
    CaseError
        If the code is not a SimBench code; the message names valid ones.
    """
    return copy.deepcopy(_read(_code_of(spec)))


@dataclass(frozen=True, eq=False)
class NetworkProfiles:
    """The relative (per-unit) profiles a network's loads and generators follow.

    Attributes
    ----------
    values_pu : DataFrame [pu]
        Quarter-hourly values of 2016 on the fixed UTC+1 clock, one column per profile
        used (SimBench ``H0-A_pload``, ``PV3``, ...); an element's power is its ``p_mw`` /
        ``q_mvar`` times its column.
    load_p, load_q : Series of str
        Column of each load's active / reactive power (index: load index; ``None`` for a
        load without a profile, which stays at its ``p_mw`` / ``q_mvar``).
    load_commercial : Series of bool
        Whether a load counts as commercial (its name or profile is ``G0-A``-like), else
        residential.
    sgen : Series of str
        Column of each sgen's active power (index: sgen index; ``None`` without profile).
    """

    values_pu: pd.DataFrame
    load_p: pd.Series
    load_q: pd.Series
    load_commercial: pd.Series
    sgen: pd.Series

    def window(self, start: pd.Timestamp, hours: int) -> pd.DataFrame:
        """The quarter-hourly values [pu] of ``hours`` hours from ``start``.

        Raises
        ------
        CaseError
            If the window is not inside the profiles' year.
        """
        return _window(self.values_pu, pd.Timestamp(start), hours)

    def day(self, day: dt.date, hours: int = 24, start_hour: int = 0) -> pd.DataFrame:
        """The quarter-hourly values [pu] of ``hours`` hours of ``day`` from ``start_hour``."""
        return self.window(pd.Timestamp(day) + pd.Timedelta(hours=start_hour), hours)


def _window(values: pd.DataFrame, start: pd.Timestamp, hours: int) -> pd.DataFrame:
    idx = values.index
    first = int((start - idx[0]) / pd.Timedelta(minutes=15))
    n = 4 * int(hours)
    if first < 0 or first + n > len(idx) or idx[first] != start:
        raise CaseError(
            f"the network's own profiles cover {idx[0].date()} .. {idx[-1].date()} at "
            f"15 min; {start} + {hours} h is outside them: choose days of {PROFILE_YEAR}"
        )
    return values.iloc[first : first + n]


def _column(profile: object, suffix: str, available: pd.Index, what: str) -> str | None:
    if not isinstance(profile, str) or not profile.strip():
        return None
    name = profile + suffix
    if name not in available:
        raise CaseError(
            f"{what} follows profile '{profile}', which the network's profiles "
            f"(net.profiles) do not hold; add the column '{name}' or clear its 'profile'"
        )
    return name


def network_profiles(net: pp.pandapowerNet, label: str = "network") -> NetworkProfiles | None:
    """The per-element profiles a network carries, or None if it carries none.

    A network carries profiles when it has SimBench-style ``net.profiles`` tables
    (``load`` with ``<profile>_pload`` / ``<profile>_qload`` columns; ``renewables`` and
    ``powerplants`` with one column per generator profile) and a ``profile`` column on its
    loads or sgens naming them. The tables must hold a whole number of days of quarter-hours.

    Raises
    ------
    CaseError
        If an element names a profile the tables do not hold, or the tables are not
        quarter-hourly days.
    """
    tables = net.get("profiles") if hasattr(net, "get") else None
    if not isinstance(tables, dict):
        return None
    has_load = "profile" in net.load and net.load.profile.notna().any()
    has_sgen = "profile" in net.sgen and net.sgen.profile.notna().any()
    if not (has_load or has_sgen):
        return None
    loads = tables.get("load", pd.DataFrame())
    gens = [
        t.drop(columns="time", errors="ignore")
        for t in (tables.get("renewables"), tables.get("powerplants"))
        if isinstance(t, pd.DataFrame) and len(t)
    ]
    gen_table = pd.concat(gens, axis=1) if gens else pd.DataFrame()
    gen_table = gen_table.loc[:, ~gen_table.columns.duplicated()]
    load_cols = loads.columns.drop("time", errors="ignore") if len(loads) else pd.Index([])
    load_profile = net.load.profile if has_load else pd.Series(None, index=net.load.index)
    sgen_profile = net.sgen.profile if has_sgen else pd.Series(None, index=net.sgen.index)
    load_p = pd.Series(
        [_column(p, "_pload", load_cols, f"{label}: load {i}") for i, p in load_profile.items()],
        index=net.load.index,
        dtype=object,
    )
    load_q = pd.Series(
        [_column(p, "_qload", load_cols, f"{label}: load {i}") for i, p in load_profile.items()],
        index=net.load.index,
        dtype=object,
    )
    sgen = pd.Series(
        [_column(p, "", gen_table.columns, f"{label}: sgen {i}") for i, p in sgen_profile.items()],
        index=net.sgen.index,
        dtype=object,
    )
    used_load = sorted({c for c in (*load_p, *load_q) if c is not None})
    used_gen = sorted({c for c in sgen if c is not None})
    parts = [loads[used_load].reset_index(drop=True)] if used_load else []
    parts += [gen_table[used_gen].reset_index(drop=True)] if used_gen else []
    values = pd.concat(parts, axis=1).astype(float)
    if len(values) == 0 or len(values) % 96:
        raise CaseError(
            f"{label}: the profiles in net.profiles have {len(values)} rows; whole days of "
            "quarter-hours (96 a day) are needed"
        )
    # taken by position: the fixed UTC+1 clock of cases.profiles
    values.index = pd.date_range(
        pd.Timestamp(PROFILE_YEAR, 1, 1), periods=len(values), freq="15min", name="time"
    )
    names = net.load.name.fillna("").astype(str) if "name" in net.load else ""
    commercial = pd.Series(
        [
            bool(_COMMERCIAL.search(str(n))) or bool(_COMMERCIAL.search(str(p or "")))
            for n, p in zip(names, load_profile.where(load_profile.notna(), ""), strict=True)
        ],
        index=net.load.index,
    )
    return NetworkProfiles(
        values_pu=values,
        load_p=load_p,
        load_q=load_q,
        load_commercial=commercial,
        sgen=sgen,
    )


@dataclass(frozen=True, eq=False)
class FeederProfiles:
    """A feeder's own profiles, as weights onto its bus positions.

    Attributes
    ----------
    values_pu : DataFrame [pu]
        Quarter-hourly 2016 values (fixed UTC+1 clock), one column per profile used plus a
        column ``constant`` of ones for elements without a profile.
    load_p_mw, load_q_mvar : ndarray (2, column, bus) [MW], [Mvar]
        Nominal power of the in-service loads following each column, per bus position,
        residential (``[0]``) and commercial (``[1]``): the demand of one step is
        ``values @ load_p_mw[k]``.
    sgen_column : dict of int to int
        Column position per in-service sgen index (``constant`` without a profile).
    """

    values_pu: pd.DataFrame
    load_p_mw: np.ndarray
    load_q_mvar: np.ndarray
    sgen_column: dict[int, int]

    def window(self, start: pd.Timestamp, hours: int) -> np.ndarray:
        """Quarter-hourly values (4 * hours, column) [pu] from ``start``.

        Raises
        ------
        CaseError
            If the window is not inside the profiles' year.
        """
        return _window(self.values_pu, pd.Timestamp(start), hours).to_numpy()


def feeder_profiles(
    net: pp.pandapowerNet, bus_index: np.ndarray, profiles: NetworkProfiles
) -> FeederProfiles:
    """Weights of a (scaled) feeder's loads and sgens onto its own profiles.

    Parameters
    ----------
    net : pandapowerNet
        The feeder as used (after scaling: its loads' ``p_mw`` are the weights).
    bus_index : ndarray of int
        pandapower bus per bus position (:attr:`cases.feeders.FeederArrays.bus_index`).
    profiles : NetworkProfiles
        From :func:`network_profiles` of the same network.
    """
    used = sorted(
        {c for s in (profiles.load_p, profiles.load_q, profiles.sgen) for c in s if c is not None}
    )
    values = profiles.values_pu[used].assign(constant=1.0)
    col = {c: i for i, c in enumerate(values.columns)}
    pos = {int(b): i for i, b in enumerate(bus_index)}
    shape = (2, len(col), len(bus_index))
    load_p, load_q = np.zeros(shape), np.zeros(shape)
    loads = net.load[net.load.in_service.astype(bool)]
    for idx, row in loads.iterrows():
        if int(row.bus) not in pos:
            continue
        kind = int(bool(profiles.load_commercial.get(idx, False)))
        cp = profiles.load_p.get(idx) or "constant"
        cq = profiles.load_q.get(idx) or "constant"
        load_p[kind, col[cp], pos[int(row.bus)]] += float(row.p_mw * row.scaling)
        load_q[kind, col[cq], pos[int(row.bus)]] += float(row.q_mvar * row.scaling)
    sgens = net.sgen[net.sgen.in_service.astype(bool)]
    sgen_column = {int(i): col[profiles.sgen.get(i) or "constant"] for i in sgens.index}
    return FeederProfiles(values, load_p, load_q, sgen_column)
