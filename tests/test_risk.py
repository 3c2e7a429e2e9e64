"""CVaR and scenario weights: hand-computed cases and properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from stochastic.risk import check_weights, cvar


def test_cvar_hand_computed_equal_weights():
    costs = np.array([10.0, 40.0, 20.0, 30.0])
    w = np.full(4, 0.25)
    assert cvar(costs, w, 0.75) == pytest.approx(40.0)  # worst 25 %: one scenario
    assert cvar(costs, w, 0.5) == pytest.approx(35.0)  # worst half: 40 and 30
    # alpha = 0.6: tail 0.4 = all of 40 (0.25) and 0.15 of 30
    assert cvar(costs, w, 0.6) == pytest.approx((0.25 * 40 + 0.15 * 30) / 0.4)


def test_cvar_hand_computed_unequal_weights():
    costs = np.array([100.0, 0.0])
    w = np.array([0.1, 0.9])
    assert cvar(costs, w, 0.9) == pytest.approx(100.0)
    assert cvar(costs, w, 0.8) == pytest.approx(50.0)


@given(arrays(np.float64, st.integers(1, 12), elements=st.floats(-1e6, 1e6)), st.floats(0.01, 0.99))
def test_cvar_between_mean_and_max(costs, alpha):
    w = np.full(len(costs), 1.0 / len(costs))
    value = cvar(costs, w, alpha)
    assert costs @ w - 1e-6 * (1 + abs(costs).max()) <= value
    assert value <= costs.max() + 1e-6 * (1 + abs(costs).max())


@given(arrays(np.float64, st.integers(2, 8), elements=st.floats(-1e3, 1e3)))
def test_cvar_non_decreasing_in_alpha(costs):
    w = np.full(len(costs), 1.0 / len(costs))
    values = [cvar(costs, w, a) for a in (0.1, 0.3, 0.5, 0.7, 0.9)]
    assert np.all(np.diff(values) >= -1e-9 * (1 + abs(costs).max()))


@pytest.mark.parametrize(
    "weights, match",
    [
        ([0.5, 0.6], "must sum to 1"),
        ([1.2, -0.2], "non-negative"),
        ([], "non-empty"),
        ([np.nan, 1.0], "finite"),
    ],
)
def test_bad_weights(weights, match):
    with pytest.raises(ValueError, match=match):
        check_weights(np.array(weights, dtype=float))


def test_cvar_tail_warning_when_fewer_than_three_scenarios_in_the_tail():
    from stochastic.risk import cvar_tail_message

    message = cvar_tail_message(0.9, 6)
    assert message is not None and "use at least 30 scenarios" in message
    assert cvar_tail_message(0.7, 10) is None
    assert cvar_tail_message(0.9, 30) is None
    assert cvar_tail_message(0.9, 29) is not None
