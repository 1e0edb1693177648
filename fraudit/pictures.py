"""Pictures that travel inside reports: PNG bytes of uint8 pixels, base64 for JSON,
and a row of faces side by side (what a reviewer looks at before the numbers)."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image


def png_bytes(pixels: np.ndarray) -> bytes:
    """H×W×3 (or H×W) uint8 pixels as a PNG file's bytes."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def png_base64(pixels: np.ndarray) -> str:
    return base64.b64encode(png_bytes(pixels)).decode("ascii")


def face_row(faces: list[np.ndarray] | np.ndarray, *, zoom: int = 1, gap: int = 2) -> np.ndarray:
    """Faces (each H×W×3 uint8, one size) in one row on white, enlarged ``zoom`` times
    (a report page enlarges them itself: evidence keeps them at their own size)."""
    faces = [np.asarray(f, np.uint8) for f in faces]
    h, w = faces[0].shape[:2]
    row = np.full((h, len(faces) * (w + gap) - gap, 3), 255, np.uint8)
    for i, face in enumerate(faces):
        row[:, i * (w + gap) : i * (w + gap) + w] = face
    return row.repeat(zoom, axis=0).repeat(zoom, axis=1)
