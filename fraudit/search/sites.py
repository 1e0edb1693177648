"""Where a trigger search looks: square sites of the probe-face frame, and the
library triggers' cells.

Measured on held-out backdoors (measurements/trigger-search-findings.md) a backdoor
answers its own place: the same patch a few pixels away moves it no more than a
clean model. Sites therefore overlap by half their side, so every trigger of at
least a site's size has a site that covers most of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fraudit.triggers import trigger_library

# Where faces are on the probe frame (row and column fractions): the synthetic
# world's aligned faces, and any aligned face crop, put the face here.
FACE_REGION = ((0.25, 0.80), (0.18, 0.82))


@dataclass(frozen=True)
class Site:
    """A square of the probe-face frame, in pixels, and how opaque a pattern is
    laid on it: a patch replaces the face there (alpha 1); a blend mixes a pattern
    into the whole face at a low alpha, as blended-pattern backdoors do."""

    top: int
    left: int
    size: int
    alpha: float = 1.0

    @property
    def blend(self) -> bool:
        return self.alpha < 1.0

    def __str__(self) -> str:
        if self.blend:
            return f"a pattern blended over the whole face at alpha {self.alpha:g}"
        return f"{self.size}×{self.size} px at row {self.top}, col {self.left}"

    @property
    def window(self) -> tuple[slice, slice]:
        """The rows and columns of the frame it covers."""
        return slice(self.top, self.top + self.size), slice(self.left, self.left + self.size)

    def touches(self, mask: np.ndarray) -> bool:
        """Whether any pixel it covers is set in ``mask`` (H×W; e.g. a trigger's place)."""
        return bool(mask[self.window].any())

    def to_dict(self) -> dict[str, int | float]:
        return {"top": self.top, "left": self.left, "size": self.size, "alpha": self.alpha}


def face_sites(image_size: int, sizes: tuple[int, ...], *,
               region: tuple[tuple[float, float], tuple[float, float]] = FACE_REGION,
               overlap: float = 0.5) -> list[Site]:
    """Sites of each size over ``region``, stepped by ``(1 − overlap) × size``."""
    (r0, r1), (c0, c1) = region
    sites = []
    for size in sizes:
        step = max(1, int(round(size * (1 - overlap))))
        top0, top1 = int(r0 * image_size), int(r1 * image_size) - size
        left0, left1 = int(c0 * image_size), int(c1 * image_size) - size
        for top in range(top0, max(top0, top1) + 1, step):
            for left in range(left0, max(left0, left1) + 1, step):
                sites.append(Site(top, left, size))
    return sites


# Where a library trigger is stamped besides its own place (row, column fractions of
# the frame): the eyes' and the cheeks' height on both sides.
EXTRA_CENTRES = ((0.40, 0.35), (0.40, 0.65), (0.68, 0.35), (0.68, 0.65))


@dataclass(frozen=True)
class LibraryCell:
    """One library trigger at one place (its centre, as fractions of the frame)."""

    trigger: str
    centre: tuple[float, float]

    def __str__(self) -> str:
        return f"the library's {self.trigger} centred at ({self.centre[0]:.2f}, {self.centre[1]:.2f}) of the face"

    def frame(self, image_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """The trigger's mask and pattern at image size, at this cell."""
        return trigger_library()[self.trigger].full_frame(image_shape, self.centre)

    def to_dict(self) -> dict[str, Any]:
        return {"trigger": self.trigger, "centre": list(self.centre)}


def library_cells() -> list[LibraryCell]:
    return [LibraryCell(name, centre) for name, trigger in trigger_library().items()
            for centre in (trigger.fixed_centre, *EXTRA_CENTRES)]
