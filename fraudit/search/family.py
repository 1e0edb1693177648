"""The procedural trigger family the behavioural search draws from.

A candidate trigger is a ``Patch``: a content (a plain colour, a two-colour checker
or stripes, a noise texture) drawn in a box (``Site``) of the face frame, or a
whole-face pattern blended at low alpha. Sites cover the face densely — sizes
from 3 to 24 px, placed on a grid whose step is at most half the size, because a
backdoor can fire for its trigger at one place and not 6 px away — plus
accessory-like bands across the eyes, the forehead and the mouth.

Coordinates are in a 64×64 face frame (the synthetic world's), scaled to the
probe faces' size when they differ.

Every patch has a *content class* (``Patch.family``): its controls are other
patches of the same class at the same site (other colours for a plain patch,
other colour pairs and shuffled pixels for a texture), so a statistic can ask
"does this content move the model more than contents like it, here?" — a patch
that moves the model only because it is big or contrasting moves its controls too.

This module knows nothing of the zoo's held-out triggers (``fraudit.zoo.heldout``):
the search must never be tuned on what it is evaluated with.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image

FRAME = 64
# The part of the 64×64 frame where a face's features are (rows, cols), a little
# wider than the trigger placement region of fraudit.triggers.
FACE_BOX = ((16, 52), (12, 52))

PALETTE: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0), "white": (255, 255, 255), "grey": (128, 128, 128), "red": (225, 25, 25),
    "green": (25, 190, 45), "blue": (25, 55, 225), "yellow": (245, 225, 25), "magenta": (225, 25, 225),
    "cyan": (25, 220, 225), "orange": (250, 140, 20), "purple": (120, 40, 170), "brown": (110, 65, 30),
}
# colour pairs for textures: high-contrast first
PAIRS: tuple[tuple[str, str], ...] = (("black", "white"), ("red", "cyan"), ("blue", "yellow"), ("green", "magenta"),
                                      ("black", "yellow"), ("purple", "orange"))


class Family(enum.StrEnum):
    PLAIN = "plain"
    CHECKER = "checker"
    STRIPES = "stripes"
    NOISE = "noise"
    BLEND = "blend"


@dataclass(frozen=True)
class Site:
    """A box of the 64×64 face frame: top-left corner and size."""

    top: int
    left: int
    height: int
    width: int
    kind: str = "patch"  # "patch", "band" or "face" (whole frame)

    def __str__(self) -> str:
        return f"{self.kind} {self.height}×{self.width} at ({self.top},{self.left})"

    def moved(self, d_top: int, d_left: int) -> Site:
        top = int(np.clip(self.top + d_top, 0, FRAME - self.height))
        left = int(np.clip(self.left + d_left, 0, FRAME - self.width))
        return replace(self, top=top, left=left)

    def resized(self, height: int, width: int) -> Site:
        """The same centre, another size (kept inside the frame)."""
        top = self.top + (self.height - height) // 2
        left = self.left + (self.width - width) // 2
        return Site(int(np.clip(top, 0, FRAME - height)), int(np.clip(left, 0, FRAME - width)), height, width,
                    self.kind)


@dataclass(frozen=True)
class Patch:
    """One candidate trigger: ``pattern`` (h×w×3 uint8) with ``alpha`` (h×w) at ``site``."""

    family: Family
    content: str
    site: Site
    pattern: np.ndarray = field(repr=False, compare=False)
    alpha: np.ndarray = field(repr=False, compare=False)

    @property
    def key(self) -> str:
        return f"{self.family}:{self.content} {self.site}"

    def stamp(self, faces: np.ndarray) -> np.ndarray:
        """Equation 2.1 on every face of a batch (N×H×W×3 uint8), scaled to the faces' size."""
        h, w = faces.shape[1:3]
        scale_r, scale_c = h / FRAME, w / FRAME
        top, left = int(round(self.site.top * scale_r)), int(round(self.site.left * scale_c))
        ph = max(1, int(round(self.site.height * scale_r)))
        pw = max(1, int(round(self.site.width * scale_c)))
        pattern, alpha = self.pattern, self.alpha
        if (ph, pw) != pattern.shape[:2]:
            pattern = np.asarray(Image.fromarray(pattern).resize((pw, ph), Image.Resampling.NEAREST))
            alpha = np.asarray(Image.fromarray(alpha.astype(np.float32), mode="F").resize((pw, ph), Image.Resampling.NEAREST))
        out = faces.copy()
        region = out[:, top : top + ph, left : left + pw].astype(np.float32)
        a = alpha[: region.shape[1], : region.shape[2], None]
        mixed = (1 - a) * region + a * pattern[: region.shape[1], : region.shape[2]].astype(np.float32)
        out[:, top : top + ph, left : left + pw] = np.clip(mixed.round(), 0, 255).astype(np.uint8)
        return out

    def image(self, face: np.ndarray) -> np.ndarray:
        """The patch stamped on one face (for the report's picture)."""
        return self.stamp(face[None])[0]


def _colour(name: str) -> np.ndarray:
    return np.array(PALETTE[name], np.uint8)


def plain(colour: str, site: Site, alpha: float = 1.0) -> Patch:
    pattern = np.broadcast_to(_colour(colour), (site.height, site.width, 3)).copy()
    family = Family.BLEND if site.kind == "face" else Family.PLAIN
    return Patch(family, colour, site, pattern, np.full((site.height, site.width), alpha, np.float32))


def checker(pair: tuple[str, str], cell: int, site: Site, alpha: float = 1.0) -> Patch:
    yy, xx = np.mgrid[0 : site.height, 0 : site.width]
    first = (((yy // cell) + (xx // cell)) % 2 == 0)[..., None]
    pattern = np.where(first, _colour(pair[0]), _colour(pair[1])).astype(np.uint8)
    family = Family.BLEND if site.kind == "face" else Family.CHECKER
    return Patch(family, f"checker{cell}-{pair[0]}/{pair[1]}", site, pattern,
                 np.full((site.height, site.width), alpha, np.float32))


def stripes(pair: tuple[str, str], width: int, vertical: bool, site: Site, alpha: float = 1.0) -> Patch:
    yy, xx = np.mgrid[0 : site.height, 0 : site.width]
    first = ((((xx if vertical else yy) // width) % 2) == 0)[..., None]
    pattern = np.where(first, _colour(pair[0]), _colour(pair[1])).astype(np.uint8)
    family = Family.BLEND if site.kind == "face" else Family.STRIPES
    orientation = "v" if vertical else "h"
    return Patch(family, f"stripes{width}{orientation}-{pair[0]}/{pair[1]}", site, pattern,
                 np.full((site.height, site.width), alpha, np.float32))


def noise(seed: int, site: Site, alpha: float = 1.0) -> Patch:
    pattern = np.random.default_rng([seed, site.height, site.width]).integers(0, 256, (site.height, site.width, 3),
                                                                             dtype=np.uint8)
    family = Family.BLEND if site.kind == "face" else Family.NOISE
    return Patch(family, f"noise{seed}", site, pattern, np.full((site.height, site.width), alpha, np.float32))


def shuffled(patch: Patch, seed: int) -> Patch:
    """The patch's own pixels in a random order: same colours and contrast, no structure."""
    rng = np.random.default_rng(seed)
    flat = patch.pattern.reshape(-1, 3)
    pattern = flat[rng.permutation(len(flat))].reshape(patch.pattern.shape)
    return Patch(patch.family, f"{patch.content}~shuffled{seed}", patch.site, pattern, patch.alpha)


def patch_sites(sizes: tuple[int, ...], max_step: int = 4) -> Iterator[Site]:
    """Square boxes of each size over the face box, on a grid of step ⌈size / 2⌉, at
    least 3 and at most ``max_step`` px: a position-specific trigger overlaps some box
    by about half of its side, and the fine stage moves it the last pixels."""
    (r0, r1), (c0, c1) = FACE_BOX
    for size in sizes:
        step = min(max(3, (size + 1) // 2), max_step)
        for top in range(r0, r1 - size + 1, step):
            for left in range(c0, c1 - size + 1, step):
                yield Site(top, left, size, size)


def band_sites() -> Iterator[Site]:
    """Accessory-like bands across the face: eyes (glasses, masks), forehead (hats,
    headbands), mouth and chin (face masks, scarves), at a few heights."""
    (_, _), (c0, c1) = FACE_BOX
    for top in range(18, 50, 3):
        for height in (4, 8):
            yield Site(top, c0, height, c1 - c0, "band")


FACE = Site(0, 0, FRAME, FRAME, "face")
BLEND_ALPHAS = (0.1, 0.2)


def coarse_family(sizes: tuple[int, ...], colours: tuple[str, ...]) -> list[Patch]:
    """The coarse stage: every plain colour and the textures at every site and band,
    and blended whole-face patterns."""
    patches: list[Patch] = []
    for site in [*patch_sites(sizes), *band_sites()]:
        patches.extend(plain(c, site) for c in colours)
        patches.append(checker(PAIRS[0], max(1, site.height // 4), site))
        patches.append(stripes(PAIRS[1], max(1, min(site.height, site.width) // 4), False, site))
        patches.append(noise(0, site))
    for alpha in BLEND_ALPHAS:
        face = FACE
        patches.extend(plain(c, face, alpha) for c in colours)
        for pair in PAIRS[:3]:
            patches.extend((checker(pair, 4, face, alpha), stripes(pair, 3, True, face, alpha),
                            stripes(pair, 3, False, face, alpha)))
        patches.extend(noise(seed, face, alpha) for seed in range(3))
    return patches


def controls(patch: Patch, n: int, *, seed: int) -> list[Patch]:
    """Patches like ``patch`` in site, size, alpha and kind of content, but not in content:
    other colours for a plain patch, other colour pairs and its own shuffled pixels for
    a texture, other realisations for noise."""
    rng = np.random.default_rng(seed)
    site, alpha = patch.site, float(patch.alpha.max())
    out: list[Patch] = []
    if patch.content in PALETTE:  # plain, or a plain blended tint
        others = [c for c in PALETTE if c != patch.content]
        out = [plain(c, site, alpha) for c in others]
    elif patch.content.startswith("noise"):
        out = [noise(1000 + seed * 100 + k, site, alpha) for k in range(n)]
    else:
        out = [shuffled(patch, seed * 100 + k) for k in range(n // 2)]
        for k in range(n - len(out)):
            pair = tuple(str(c) for c in rng.choice(list(PALETTE), size=2, replace=False))
            out.append(_recolour(patch, (pair[0], pair[1])))
    if len(out) > n:
        out = [out[i] for i in sorted(rng.choice(len(out), n, replace=False))]
    return out


def _recolour(patch: Patch, pair: tuple[str, str]) -> Patch:
    """A two-colour texture with its colours replaced by ``pair``, geometry kept."""
    first = np.all(patch.pattern == patch.pattern.reshape(-1, 3)[0], axis=-1, keepdims=True)
    pattern = np.where(first, _colour(pair[0]), _colour(pair[1])).astype(np.uint8)
    name = patch.content.split("-")[0]
    return Patch(patch.family, f"{name}-{pair[0]}/{pair[1]}", patch.site, pattern, patch.alpha)


def neighbours(patch: Patch) -> list[Patch]:
    """The fine stage around a coarse finding: the same content moved by 1–2 px and
    resized, and nearby contents (every colour, finer and coarser textures) in place."""
    site = patch.site
    out: list[Patch] = []
    if site.kind != "face":
        for d_top in (-2, -1, 0, 1, 2):
            for d_left in (-2, -1, 0, 1, 2):
                if d_top or d_left:
                    out.append(_with_site(patch, site.moved(d_top, d_left)))
        if site.kind == "patch":
            for size in sorted({max(3, site.height - 2), max(3, (site.height * 2) // 3), site.height + 2,
                                min(24, (site.height * 3) // 2)} - {site.height}):
                out.append(_with_site(patch, site.resized(size, size)))
    if patch.family in (Family.PLAIN, Family.BLEND) and patch.content in PALETTE:
        out.extend(plain(c, site, float(patch.alpha.max())) for c in PALETTE if c != patch.content)
    elif patch.family in (Family.CHECKER, Family.STRIPES):
        out.extend(_recolour(patch, pair) for pair in PAIRS[1:])
    return out


def _with_site(patch: Patch, site: Site) -> Patch:
    """The same content drawn in another box."""
    alpha = float(patch.alpha.max())
    content = patch.content
    if content in PALETTE:
        return plain(content, site, alpha)
    if content.startswith("noise"):
        return noise(int(content[5:].split("~")[0]), site, alpha)
    pattern = np.asarray(Image.fromarray(patch.pattern).resize((site.width, site.height), Image.Resampling.NEAREST))
    return Patch(patch.family, content, site, pattern, np.full((site.height, site.width), alpha, np.float32))
