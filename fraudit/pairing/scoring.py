"""Run-time scoring (thesis §5.3.4): each image through both models and the
translator; a score below the pair's threshold means the candidate and the
trusted model disagree about who this is — a possible trigger."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fraudit.faces.folders import read_face
from fraudit.pairing.embedders import Embedder
from fraudit.pairing.pair import PairCalibration
from fraudit.rates import format_rate


def score_faces(pair: PairCalibration, candidate: Embedder, trusted: Embedder, faces: np.ndarray) -> np.ndarray:
    """Pair scores of uint8 faces (N×H×W×3), in the direction the pair was fitted."""
    return pair.score_sides(candidate.embed(faces), trusted.embed(faces))


def score_images(pair: PairCalibration, candidate: Embedder, trusted: Embedder,
                 images: Sequence[Path], *, fnmr: float = 0.01) -> list[dict[str, Any]]:
    """One row per image: score, threshold at ``fnmr`` and whether it is flagged."""
    threshold = pair.threshold(fnmr)
    size = max(candidate.input_size, trusted.input_size)
    faces = np.stack([read_face(path, size) for path in images])
    scores = score_faces(pair, candidate, trusted, faces)
    return [{"image": str(path), "score": float(s), "threshold": threshold, "fnmr": format_rate(fnmr), "flagged": bool(s < threshold)}
            for path, s in zip(images, scores)]
