"""Derive ``simbench_feeders.csv``: which SimBench grids can be a radial feeder.

Run in the project's environment (the ``simbench`` package is a dependency)::

    python cases/data/make_simbench_feeders.py

Every code of the LV, MV and MV/LV levels of the installed ``simbench`` package is loaded
(:func:`cases.networks.load_network`) and put through the same steps as a study's feeder:
parallel branches merged, one radial part per substation
(:func:`cases.substations.substation_nets`), and :func:`cases.feeders.feeder_arrays`. A
code is a feeder if every step passes; otherwise the first line of the error is kept as
a short reason. The HV and EHV levels (and the coupled grids that include them) are not
loaded: they are meshed with several in-feeds (``tests/test_taps_and_substations.py``
checks a sample of them). Takes about 20 minutes.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from cases.errors import CaseError
from cases.feeders import feeder_arrays
from cases.networks import load_network, merge_parallel_branches
from cases.simbench import FEEDER_LEVELS, simbench_codes
from cases.substations import substation_nets

HERE = Path(__file__).resolve().parent
OUT = HERE / "simbench_feeders.csv"


def short_reason(message: str, code: str) -> str:
    """The gist of a refusal: ``meshed`` from ``feeder 'x' is meshed (103 branches ...)``."""
    text = message.splitlines()[0].removeprefix(f"feeder '{code}' ").removeprefix(f"{code}: ")
    return text.split(" (")[0].split(";")[0].removeprefix("is ")


def check(code: str) -> dict:
    """One row: the code, its level, whether it is a feeder, its size and the reason."""
    level = code.split("-")[1]
    row = {"code": code, "level": level, "feeder": False, "n_bus": 0, "reason": ""}
    if level not in FEEDER_LEVELS:
        row["reason"] = "HV/EHV level: meshed, several in-feeds (not loaded)"
        return row
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = merge_parallel_branches(load_network(code))
        try:
            parts = substation_nets(net, code)
            arrays = [feeder_arrays(part, code, 100.0) for _, part in parts]
        except CaseError as exc:
            row["reason"] = short_reason(str(exc), code)
            return row
    row["feeder"] = True
    row["n_bus"] = sum(a.n_bus for a in arrays)
    return row


def main() -> None:
    rows = []
    for i, code in enumerate(simbench_codes()):
        rows.append(check(code))
        print(f"{i + 1}/{len(simbench_codes())} {code}: {rows[-1]['feeder']}", flush=True)
    pd.DataFrame(rows).to_csv(OUT, index=False)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
