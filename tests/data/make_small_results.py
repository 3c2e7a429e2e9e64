"""Write the small results file the figure tests read (the ``small_results_file``
fixture of ``tests/conftest.py`` writes it once per test session).

Usage (from the repository root; writes ``tests/data/small_results.nc`` to look at)::

    python tests/data/make_small_results.py

The small study of ``tests/conftest.py`` (case9 with a case33bw and a CIGRE MV feeder)
over four hours with the TSO-managed and hybrid models, two scenarios and the AC check
at every fourth step: a real run, so the figures are tested on what ``workbench run``
writes (about a minute).
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from cases import parse_study  # noqa: E402
from tests.conftest import SMALL_STUDY  # noqa: E402
from workbench.results import annotate, write_results  # noqa: E402
from workbench.runner import run_study  # noqa: E402

OUT = Path(__file__).with_name("small_results.nc")


def small_results_study():
    """The study of the file: the small study, two models, two scenarios."""
    data = copy.deepcopy(SMALL_STUDY)
    data["name"] = "small_results"
    data["models"] = ["tso_managed", "hybrid"]
    data["scenarios"]["n_scenarios"] = 2
    data["risk"] = {"alpha": 0.5, "beta": 0.0}
    data["ac_check"] = {"every_n_steps": 4, "max_scenarios": 2}
    return parse_study(data, "small_results")


def write_small_results(path: Path) -> Path:
    """Run the study of :func:`small_results_study` and write its results to ``path``."""
    study = small_results_study()
    ds = run_study(study, scheduler="sync", progress=False)
    return write_results(annotate(ds, study, study.seed, "sync"), path)


def main() -> None:
    write_small_results(OUT)
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
