"""Draw the example figures of docs/figures.md from the small results file of the tests.

Usage (from the repository root)::

    python docs/gen_figures.py

Writes ``docs/figures/*.png`` (small, screen resolution) from
``tests/data/small_results.nc`` (the small study: case9 with a case33bw and a CIGRE MV
feeder, TSO-managed and hybrid models, four hours).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import matplotlib.pyplot as plt  # noqa: E402

from workbench import plots  # noqa: E402
from workbench.results import read_results  # noqa: E402

OUT = ROOT / "docs" / "figures"
RESULTS = ROOT / "tests" / "data" / "small_results.nc"


def main() -> None:
    ds = read_results(RESULTS)
    OUT.mkdir(exist_ok=True)
    figures = {
        "map-transmission": plots.plot_network_map(ds, "hybrid", network="transmission"),
        "map-f2": plots.plot_network_map(ds, "hybrid", network="f2"),
        "loading": plots.plot_branch_loading(ds, "hybrid", top=10),
        "flexibility-f1": plots.plot_interface_flexibility(ds, "hybrid", interface="f1"),
        "models": plots.plot_model_comparison(ds),
    }
    for name, fig in figures.items():
        path = plots.save_figure(fig, OUT / f"{name}.png", dpi=60)
        plt.close(fig)
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
