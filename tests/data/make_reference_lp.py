"""Write the reference LP of the TSO-managed model on the LP test study.

Usage (from the repository root)::

    python tests/data/make_reference_lp.py

Run it only when a change of the formulation is intended: ``tests/test_lp_reference.py``
then checks that later code changes keep the LP row-for-row the same.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.lp_snapshot import write_lp  # noqa: E402
from tests.test_lp_reference import REFERENCE, build_reference_lp  # noqa: E402


def main() -> None:
    write_lp(build_reference_lp(), REFERENCE)
    print(f"wrote {REFERENCE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
