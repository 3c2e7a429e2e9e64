"""The TSO-managed LP, row for row, against its reference (``tests/data/tso_managed_lp.json.gz``).

A refactoring of the model code must leave this LP unchanged; a deliberate change of the
formulation re-writes the reference with ``python tests/data/make_reference_lp.py`` in the
same commit, so every change of the LP is visible in the history.
"""

from __future__ import annotations

import copy
from pathlib import Path

from cases import build_system, parse_study
from stochastic.solve import PersistentSolver
from stochastic.twostage import TwoStageOptions, build_two_stage, day_data
from tests.conftest import SMALL_STUDY, scenarios_with_ev
from tests.lp_snapshot import compare_lp, lp_snapshot, read_lp

REFERENCE = Path(__file__).parent / "data" / "tso_managed_lp.json.gz"


def _study():
    spec = copy.deepcopy(SMALL_STUDY)
    spec["horizon_hours"] = 2
    spec["scenarios"] = {"n_scenarios": 2, "method": "profile_noise", "pv_sigma": 0.4}
    # the data the snapshot was taken with (it checks the formulation, not the data)
    spec["forecast"] = {
        **spec["forecast"],
        "sources": {"load_transmission": "simbench_load_transmission"},
    }
    return parse_study(spec, "lp reference")


def build_reference_lp() -> dict:
    """Snapshot of the LP of the reference study (2 scenarios, 2 h, 15 min)."""
    study = _study()
    system = build_system(study)
    options = TwoStageOptions.from_study(study)
    data = day_data(system, scenarios_with_ev(study, system, study.start_date, study.seed), options)
    tsm = build_two_stage(system, data, options)
    return lp_snapshot(PersistentSolver(tsm.model), tsm.model)


def test_tso_managed_lp_equals_reference():
    diff = compare_lp(build_reference_lp(), read_lp(REFERENCE))
    assert not diff, "\n".join(diff)
