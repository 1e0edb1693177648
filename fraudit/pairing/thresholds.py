"""Threshold arithmetic for pairing scores (thesis §5.3.4).

A pair's score is the cosine between the translated probe embedding and the
trusted embedding of the same image. Genuine scores (same clean image) set the
threshold at a chosen false non-match rate; a score below it is flagged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_FNMR = (0.001, 0.01, 0.05)


def threshold_at_fnmr(genuine: np.ndarray, fnmr: float) -> float:
    """The largest threshold that flags at most ``fnmr`` of the genuine scores.

    With sorted genuine scores g and k = ⌊fnmr · n⌋, the threshold is g[k]: exactly the
    k lowest genuine scores fall strictly below it (ties can only lower that count).
    """
    if not 0 <= fnmr < 1:
        raise ValueError(f"FNMR must be in [0, 1), got {fnmr}")
    scores = np.sort(np.asarray(genuine, dtype=np.float64))
    if scores.size == 0:
        raise ValueError("no genuine scores to set a threshold on")
    return float(scores[int(np.floor(fnmr * scores.size))])


def thresholds(genuine: np.ndarray, fnmrs: Sequence[float] = DEFAULT_FNMR) -> dict[float, float]:
    """Threshold per FNMR (keys are the rates as fractions)."""
    return {f: threshold_at_fnmr(genuine, f) for f in fnmrs}


def flagged_rate(scores: np.ndarray, threshold: float) -> float:
    """Share of scores below the threshold (flagged as disagreement)."""
    scores = np.asarray(scores, dtype=np.float64)
    return float(np.mean(scores < threshold)) if scores.size else float("nan")


def passed_rate(scores: np.ndarray, threshold: float) -> float:
    """Share of scores at or above the threshold: for poisoned samples on a backdoored
    pair, the attacks that got through (the thesis' poisoned FMR)."""
    scores = np.asarray(scores, dtype=np.float64)
    return float(np.mean(scores >= threshold)) if scores.size else float("nan")
