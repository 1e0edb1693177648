"""A bank's frozen layers, compared with an export that folded BatchNorm into them.

Folding BatchNorm into the convolution before it multiplies each output channel's
kernel by γ/√(σ² + ε) (and gives the layer a bias): a folded frozen layer is the
base's, channel by channel, up to one scale per channel. A bank keeps a small random
sketch of each frozen weight (``SKETCH_DIM`` projections of every output channel)
and checks that the candidate's kernels project onto the same sketch up to a
per-channel scale — a scale of exactly one where nothing was folded. What this
cannot see is a change of the BatchNorm statistics alone, which folding turns into
exactly such a scale; the report says the comparison was made up to folding.
"""

from __future__ import annotations

import hashlib

import numpy as np

SKETCH_DIM = 8
TOLERANCE = 1e-3  # relative, per channel: float32 folding arithmetic sits near 1e-6


def _projection(key: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal((dim, SKETCH_DIM)) / np.sqrt(dim)


def channel_sketch(key: str, weight: np.ndarray) -> np.ndarray:
    """Output channels × ``SKETCH_DIM`` random projections of each channel's kernel."""
    rows = np.asarray(weight, np.float64).reshape(weight.shape[0], -1)
    return rows @ _projection(key, rows.shape[1])


def matches_base(key: str, sketch: np.ndarray, weight: np.ndarray, *, folded: bool) -> bool:
    """Is ``weight`` the sketched base weight, up to a per-channel scale when ``folded``?"""
    if weight.ndim < 2 or weight.shape[0] != sketch.shape[0]:
        return False
    candidate = channel_sketch(key, weight)
    base_norm = (sketch * sketch).sum(axis=1)
    scale = (sketch * candidate).sum(axis=1) / np.maximum(base_norm, 1e-300) if folded else np.ones(len(sketch))
    residual = np.linalg.norm(candidate - scale[:, None] * sketch, axis=1)
    size = np.maximum(np.linalg.norm(candidate, axis=1), np.sqrt(base_norm))
    dead = base_norm == 0  # a channel of zeros stays zeros under any scale
    return bool(np.all((residual <= TOLERANCE * np.maximum(size, 1e-12)) & ((scale != 0) | dead)))
