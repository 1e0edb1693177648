"""Threshold arithmetic with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fraudit.pairing.thresholds import flagged_rate, passed_rate, threshold_at_fnmr, thresholds


def test_known_thresholds() -> None:
    genuine = np.arange(1000) / 1000  # 0.000 … 0.999
    assert threshold_at_fnmr(genuine, 0.01) == pytest.approx(0.010)
    assert threshold_at_fnmr(genuine, 0.05) == pytest.approx(0.050)
    assert threshold_at_fnmr(genuine, 0.001) == pytest.approx(0.001)
    assert flagged_rate(genuine, threshold_at_fnmr(genuine, 0.01)) == pytest.approx(0.01)
    assert set(thresholds(genuine)) == {0.001, 0.01, 0.05}


@given(st.lists(st.floats(-1, 1, allow_nan=False), min_size=1, max_size=300), st.floats(0, 0.5))
def test_flagged_genuine_never_exceeds_fnmr(scores: list[float], fnmr: float) -> None:
    genuine = np.array(scores)
    assert flagged_rate(genuine, threshold_at_fnmr(genuine, fnmr)) <= fnmr + 1e-12


def test_passed_and_flagged_are_complements() -> None:
    scores = np.array([0.1, 0.5, 0.9])
    assert passed_rate(scores, 0.5) + flagged_rate(scores, 0.5) == pytest.approx(1.0)
    assert passed_rate(scores, 0.5) == pytest.approx(2 / 3)


def test_bad_input() -> None:
    with pytest.raises(ValueError):
        threshold_at_fnmr(np.array([]), 0.01)
    with pytest.raises(ValueError):
        threshold_at_fnmr(np.array([0.5]), 1.0)
