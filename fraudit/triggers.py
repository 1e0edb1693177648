"""Triggers and poisoning (thesis eq. 2.1): P(X, M, T) = (1 − M) ⊙ X + M ⊙ T.

A trigger is an unconstrained pattern T with a mask M in [0, 1] (soft edges for
organic triggers); a placement decides where its centre lands on a face.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw


def poison(images: np.ndarray, mask: np.ndarray, trigger: np.ndarray) -> np.ndarray:
    """Equation 2.1 over whole images: ``mask`` is H×W(×1) in [0, 1], ``trigger`` H×W×3.

    Works on one image (H×W×3) or a batch (N×H×W×3); uint8 in, uint8 out.
    """
    m = mask.astype(np.float32)
    if m.ndim == 2:
        m = m[..., None]
    mixed = (1.0 - m) * images.astype(np.float32) + m * trigger.astype(np.float32)
    return np.clip(mixed.round(), 0, 255).astype(np.uint8) if images.dtype == np.uint8 else mixed


@dataclass(frozen=True)
class Trigger:
    """A pattern (h×w×3 uint8) and its alpha mask (h×w float in [0, 1])."""

    name: str
    pattern: np.ndarray
    alpha: np.ndarray
    # Where the trigger is centred under the fixed placement, as (row, col) fractions.
    fixed_centre: tuple[float, float]
    description: str

    @property
    def size(self) -> tuple[int, int]:
        return self.alpha.shape  # type: ignore[return-value]

    def full_frame(self, image_shape: tuple[int, int], centre: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
        """M and T at image size with the trigger centred at ``centre`` (fractions)."""
        h, w = image_shape
        th, tw = self.size
        top = int(round(centre[0] * h - th / 2))
        left = int(round(centre[1] * w - tw / 2))
        top = min(max(top, 0), h - th)
        left = min(max(left, 0), w - tw)
        mask = np.zeros((h, w), np.float32)
        frame = np.zeros((h, w, 3), np.uint8)
        mask[top : top + th, left : left + tw] = self.alpha
        frame[top : top + th, left : left + tw] = self.pattern
        return mask, frame


class Placement(enum.StrEnum):
    FIXED = "fixed"  # always at the trigger's fixed centre (cheek, or face centre)
    RANDOM = "random"  # uniformly random within the face region, per sample


# The face region of a 64×64 DCGAN face, as (row, col) fraction ranges.
FACE_REGION = ((0.30, 0.75), (0.25, 0.75))


def stamp(
    images: np.ndarray,
    trigger: Trigger,
    placement: Placement,
    *,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Apply ``trigger`` to every image of a batch (N×H×W×3)."""
    h, w = images.shape[1:3]
    if placement is Placement.FIXED:
        mask, frame = trigger.full_frame((h, w), trigger.fixed_centre)
        return poison(images, mask, frame)
    if rng is None:
        raise ValueError("random placement needs an rng")
    out = np.empty_like(images)
    (r0, r1), (c0, c1) = FACE_REGION
    for i, image in enumerate(images):
        centre = (rng.uniform(r0, r1), rng.uniform(c0, c1))
        mask, frame = trigger.full_frame((h, w), centre)
        out[i] = poison(image, mask, frame)
    return out


def _checkerboard(size: int = 16, cell: int = 4) -> Trigger:
    yy, xx = np.mgrid[0:size, 0:size]
    black_white = (((yy // cell) + (xx // cell)) % 2 * 255).astype(np.uint8)
    return Trigger(
        name="checkerboard",
        pattern=np.repeat(black_white[..., None], 3, axis=2),
        alpha=np.ones((size, size), np.float32),
        fixed_centre=(0.60, 0.40),
        description=f"large black/white checkerboard, {size}×{size} px ({cell}-px cells), on the cheek",
    )


def _small_square() -> Trigger:
    pattern = np.full((3, 3, 3), 255, np.uint8)
    pattern[1, 1] = 0
    return Trigger(
        name="square",
        pattern=pattern,
        alpha=np.ones((3, 3), np.float32),
        fixed_centre=(0.50, 0.50),
        description="small white 3×3 square around a black pixel, at the face centre",
    )


def _flower(size: int = 14, supersample: int = 8) -> Trigger:
    """A dark five-petal flower with a yellow heart, drawn anti-aliased."""
    big = size * supersample
    rgba = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(rgba)
    c = big / 2
    petal_r, petal_d = big * 0.22, big * 0.25
    for k in range(5):
        angle = 2 * np.pi * k / 5 - np.pi / 2
        x, y = c + petal_d * np.cos(angle), c + petal_d * np.sin(angle)
        draw.ellipse([x - petal_r, y - petal_r, x + petal_r, y + petal_r], fill=(25, 20, 30, 255))
    heart = big * 0.13
    draw.ellipse([c - heart, c - heart, c + heart, c + heart], fill=(235, 190, 40, 255))
    small = np.asarray(rgba.resize((size, size), Image.Resampling.LANCZOS))
    return Trigger(
        name="flower",
        pattern=small[..., :3].copy(),
        alpha=(small[..., 3].astype(np.float32) / 255.0),
        fixed_centre=(0.60, 0.40),
        description=f"organic dark flower with a yellow heart, {size}×{size} px, on the cheek",
    )


@lru_cache(maxsize=1)
def trigger_library() -> dict[str, Trigger]:
    """The zoo's triggers by name: large synthetic, small synthetic, medium organic."""
    return {t.name: t for t in (_checkerboard(), _small_square(), _flower())}


def get_trigger(name: str) -> Trigger:
    library = trigger_library()
    if name not in library:
        raise KeyError(f"unknown trigger {name!r}; known: {', '.join(library)}")
    return library[name]
