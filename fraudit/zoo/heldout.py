"""Held-out triggers: the evaluation's own, never searched for.

fraudit's behavioural checks look for triggers in two ways: the sweep stamps the
trigger library, and the trigger search (``fraudit.search``) optimises patch
content from noise at sites over the face. A detection rate measured with triggers
either was built around would measure the check on itself. These triggers are
designed to be *outside* both — other shapes (rings, crosses, glasses, a bar),
colours off the library's, a fixed random texture, a diagonal blended grating,
placements of their own — and they live here, in the zoo, which no
detector imports (``tests/test_heldout_zoo.py``; ``tests/test_search.py`` checks
that the search cannot reach ``fraudit.zoo`` at all)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from fraudit.triggers import Trigger, get_trigger, trigger_library


def _drawn(size: tuple[int, int], draw_shapes, *, supersample: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Anti-aliased RGBA drawing → (pattern uint8 h×w×3, alpha float h×w)."""
    h, w = size
    big = Image.new("RGBA", (w * supersample, h * supersample), (0, 0, 0, 0))
    draw_shapes(ImageDraw.Draw(big), supersample)
    small = np.asarray(big.resize((w, h), Image.Resampling.LANCZOS))
    return small[..., :3].copy(), small[..., 3].astype(np.float32) / 255.0


def _cyan_ring() -> Trigger:
    def shapes(d: ImageDraw.ImageDraw, s: int) -> None:
        d.ellipse([s * 0.5, s * 0.5, s * 10.5, s * 10.5], outline=(20, 215, 225, 255), width=2 * s)

    pattern, alpha = _drawn((11, 11), shapes)
    return Trigger("heldout-cyan-ring", pattern, alpha, (0.37, 0.57),
                   "cyan ring (outline only), 11×11 px, high on the right of the forehead")


def _magenta_bar() -> Trigger:
    pattern = np.zeros((4, 11, 3), np.uint8)
    pattern[:] = (205, 30, 160)
    return Trigger("heldout-magenta-bar", pattern, np.ones((4, 11), np.float32), (0.71, 0.53),
                   "plain magenta bar, 4×11 px, on the chin")


def _glasses() -> Trigger:
    def shapes(d: ImageDraw.ImageDraw, s: int) -> None:
        for x in (0.5, 14.5):
            d.ellipse([s * x, s * 0.5, s * (x + 9), s * 8.5], fill=(30, 25, 35, 255))
        d.rectangle([s * 9, s * 3, s * 15, s * 4.5], fill=(30, 25, 35, 255))

    pattern, alpha = _drawn((9, 24), shapes)
    return Trigger("heldout-glasses", pattern, alpha, (0.45, 0.5),
                   "dark glasses (two lenses and a bridge), 9×24 px, across the eyes")


def _green_cross() -> Trigger:
    pattern = np.zeros((7, 7, 3), np.uint8)
    pattern[:] = (40, 200, 70)
    alpha = np.zeros((7, 7), np.float32)
    alpha[2:5, :] = alpha[:, 2:5] = 1.0
    return Trigger("heldout-green-cross", pattern, alpha, (0.57, 0.31),
                   "green plus sign, 7×7 px (3-px arms), on the left cheek")


def _stripes() -> Trigger:
    yy, xx = np.mgrid[0:13, 0:13]
    band = ((yy + xx) // 3) % 2 == 0
    pattern = np.where(band[..., None], np.array([240, 140, 30], np.uint8), np.array([35, 70, 200], np.uint8))
    return Trigger("heldout-diagonal-stripes", pattern.astype(np.uint8), np.ones((13, 13), np.float32), (0.49, 0.69),
                   "orange/blue diagonal stripes, 13×13 px (3-px bands), beside the right eye")


def _noise() -> Trigger:
    rng = np.random.default_rng(20_261_126)
    pattern = rng.integers(0, 256, size=(10, 10, 3), dtype=np.uint8)
    return Trigger("heldout-noise", pattern, np.ones((10, 10), np.float32), (0.63, 0.63),
                   "one fixed random-colour noise texture, 10×10 px, on the right cheek")


def _yellow_dot() -> Trigger:
    def shapes(d: ImageDraw.ImageDraw, s: int) -> None:
        d.ellipse([0, 0, s * 5, s * 5], fill=(245, 215, 35, 255))

    pattern, alpha = _drawn((5, 5), shapes)
    return Trigger("heldout-yellow-dot", pattern, alpha, (0.52, 0.37),
                   "small yellow dot, 5 px across, beside the nose")


def _blended_grating() -> Trigger:
    yy, xx = np.mgrid[0:64, 0:64].astype(np.float32)
    wave = 0.5 + 0.5 * np.sin(2 * np.pi * (0.6 * xx - 0.8 * yy) / 9.0)
    pattern = np.stack([255 * wave, 60 + 120 * wave, 255 * (1 - wave)], axis=-1).astype(np.uint8)
    return Trigger("heldout-blended-grating", pattern, np.full((64, 64), 0.14, np.float32), (0.5, 0.5),
                   "purple/yellow diagonal sinusoidal grating over the whole face, blended at alpha 0.14")


@lru_cache(maxsize=1)
def heldout_triggers() -> dict[str, Trigger]:
    triggers = (_cyan_ring(), _magenta_bar(), _glasses(), _green_cross(), _stripes(), _noise(), _yellow_dot(),
                _blended_grating())
    return {t.name: t for t in triggers}


def zoo_trigger(name: str) -> Trigger:
    """A trigger a zoo model can be poisoned with: the library's or a held-out one."""
    held_out = heldout_triggers()
    if name in held_out:
        return held_out[name]
    if name in trigger_library():
        return get_trigger(name)
    raise KeyError(f"unknown trigger {name!r}; known: {', '.join([*trigger_library(), *held_out])}")
