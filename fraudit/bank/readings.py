"""How a layer's weight is read as a set of vectors (thesis §4.3).

A 2-D weight θ ∈ R^{R×C} gives C *forward* vectors of length R (one per input
neuron, its column) and R *backward* vectors of length C (one per output neuron,
its row). A convolution weight gives one flattened kernel per output channel,
the *unchanged* reading.
"""

from __future__ import annotations

import enum

import numpy as np


class Reading(enum.StrEnum):
    FORWARD = "forward"
    BACKWARD = "backward"
    UNCHANGED = "unchanged"


def read_vectors(weight: np.ndarray, reading: Reading) -> np.ndarray:
    """The layer as an (n_vectors, dim) array."""
    if reading is Reading.UNCHANGED:
        return weight.reshape(weight.shape[0], -1)
    if weight.ndim != 2:
        raise ValueError(f"{reading} reading needs a 2-D weight, got shape {weight.shape}")
    return weight.T if reading is Reading.FORWARD else weight


def readings_for(shape: tuple[int, ...]) -> tuple[Reading, ...]:
    return (Reading.FORWARD, Reading.BACKWARD) if len(shape) == 2 else (Reading.UNCHANGED,)
