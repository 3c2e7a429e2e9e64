"""On-load tap changers at the TSO-DSO transformers as a decision of the feeder models."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from cases import build_system, parse_study
from tests.conftest import SMALL_STUDY
from workbench.ac_check import TAP_STEP_PU, ac_check
from workbench.coordination import coordination_model


def _schedule(oltc: bool):
    spec = copy.deepcopy(SMALL_STUDY)
    spec["scenarios"] = {"n_scenarios": 3, "method": "profile_noise", "pv_sigma": 0.4}
    spec["start_hour"], spec["horizon_hours"] = 17, 3  # evening peak: voltages sag
    spec["model"] = {"oltc": oltc, "oltc_range_pu": 0.05}
    study = parse_study(spec, "oltc")
    system = build_system(study)
    out = coordination_model("tso_managed").schedule_days(system, study, study.days, study.seed)
    return system, out[0]


@pytest.fixture(scope="module")
def both():
    return _schedule(False), _schedule(True)


def test_the_tap_changer_never_raises_cost(both):
    (_, fixed), (system, free) = both
    assert free.status == fixed.status == "optimal"
    assert float(free.schedule.expected_cost_eur) <= float(fixed.schedule.expected_cost_eur) * (
        1 + 1e-7
    )
    # the roots move within their range, and somewhere away from the set-point
    vm = free.schedule.vm_pu_linear.values
    nb_t = system.transmission.n_bus
    offsets = np.cumsum([nb_t] + [f.arrays.n_bus for f in system.feeders])[:-1]
    for fi, feeder in enumerate(system.feeders):
        root = vm[..., offsets[fi]]
        assert np.all(np.abs(root - feeder.arrays.v_root_pu) <= 0.05 + 1e-6)
    moved = [
        np.abs(vm[..., offsets[fi]] - f.arrays.v_root_pu).max()
        for fi, f in enumerate(system.feeders)
    ]
    assert max(moved) > 1e-3


def test_ac_check_applies_the_root_voltage_rounded_to_a_tap(both):
    _, (system, free) = both
    ds = free.schedule
    checked = ac_check(system, free.data, ds, [0], [0, 5])
    nb_t = system.transmission.n_bus
    offsets = np.cumsum([nb_t] + [f.arrays.n_bus for f in system.feeders])[:-1]
    for fi, feeder in enumerate(system.feeders):
        v0 = feeder.arrays.v_root_pu
        for t in (0, 5):
            lin = float(ds.vm_pu_linear.values[0, t, offsets[fi]])
            want = v0 + TAP_STEP_PU * round((lin - v0) / TAP_STEP_PU)
            got = float(checked.vm_pu_ac.values[0, t, offsets[fi]])
            assert got == pytest.approx(want, abs=2e-4)
