"""Faces at a model's input size."""

from __future__ import annotations

import numpy as np
from PIL import Image


def resize_faces(faces: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of a uint8 batch to size×size (a no-op at the right size)."""
    if faces.shape[1:3] == (size, size):
        return faces
    return np.stack([np.asarray(Image.fromarray(f).resize((size, size), Image.Resampling.BILINEAR)) for f in faces])
