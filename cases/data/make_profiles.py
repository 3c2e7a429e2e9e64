"""Derive ``profiles_2016_15min.csv.gz`` from the SimBench package data.

Run once with the ``data`` extra installed (``pip install -e ".[data]"``)::

    python cases/data/make_profiles.py

The script reads the 2016 quarter-hourly profiles that ship inside the ``simbench``
package (folder ``simbench/networks/1-complete_data-mixed-all-0-sw``), keeps a few
normalised columns, adds the aggregate load of the whole SimBench dataset
(``load_aggregate_p_pu``, see :func:`aggregate_load_mw`) and writes them, rounded to 4
decimals, next to this file. See ``PROVENANCE.md`` for the source and licence
(ODbL 1.0 / DbCL 1.0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

#: output column -> (SimBench file, SimBench column)
COLUMNS: dict[str, tuple[str, str]] = {
    "load_residential_p_pu": ("LoadProfile.csv", "lv_semiurb4_pload"),
    "load_commercial_p_pu": ("LoadProfile.csv", "mv_comm_pload"),
    "load_transmission_p_pu": ("LoadProfile.csv", "hv_mixed1_pload"),
    "pv_p_pu": ("RESProfile.csv", "PV3"),
    "wind_p_pu": ("RESProfile.csv", "WP4"),
}
#: load profiles left out of the aggregate: the EHV ``HSexp*`` profiles are near zero most
#: of the time with spikes to their rated power (HSexp0: mean 7 % of its peak), a pattern
#: of exchanges rather than of consumption
AGGREGATE_EXCLUDED_PREFIX = "HSexp"


def aggregate_load_mw(loads: pd.DataFrame, profiles: pd.DataFrame) -> np.ndarray:
    """Total active load of every SimBench load [MW]: sum of ``pLoad`` x its profile.

    Parameters
    ----------
    loads : pandas.DataFrame
        SimBench ``Load.csv`` (columns ``profile`` and ``pLoad`` [MW]).
    profiles : pandas.DataFrame
        SimBench ``LoadProfile.csv`` (``<profile>_pload`` columns [pu of pLoad]).

    Returns
    -------
    numpy.ndarray
        One value per row of ``profiles`` [MW].
    """
    kept = loads[~loads["profile"].str.startswith(AGGREGATE_EXCLUDED_PREFIX)]
    rated_mw = kept.groupby("profile")["pLoad"].sum()
    columns = [f"{name}_pload" for name in rated_mw.index]
    return profiles[columns].to_numpy(dtype=float) @ rated_mw.to_numpy(dtype=float)


def main() -> None:
    import simbench

    src = Path(simbench.__file__).parent / "networks" / "1-complete_data-mixed-all-0-sw"
    frames = {}
    for fname in sorted({f for f, _ in COLUMNS.values()}):
        cols = ["time"] + [c for f, c in COLUMNS.values() if f == fname]
        frames[fname] = pd.read_csv(src / fname, sep=";", usecols=cols)
    time = pd.to_datetime(frames["LoadProfile.csv"]["time"], format="%d.%m.%Y %H:%M")
    out = pd.DataFrame({"time": time})
    for name, (fname, col) in COLUMNS.items():
        out[name] = frames[fname][col].to_numpy().clip(min=0.0)
    loads = pd.read_csv(src / "Load.csv", sep=";")
    profiles = pd.read_csv(src / "LoadProfile.csv", sep=";")
    out["load_aggregate_p_pu"] = aggregate_load_mw(loads, profiles).clip(min=0.0)
    # the SimBench year holds 2016 plus one day of 2017; keep 2016
    out = out[out["time"].dt.year == 2016]
    # loads are normalised to their own annual peak (1.0 = peak); PV and wind to capacity
    for name in out.columns[1:]:
        if name.startswith("load_"):
            out[name] = out[name] / out[name].max()
    dest = Path(__file__).with_name("profiles_2016_15min.csv.gz")
    out.to_csv(dest, index=False, float_format="%.4f", compression="gzip")
    print(f"wrote {dest} ({len(out)} rows, simbench {simbench.__version__})")


if __name__ == "__main__":
    main()
