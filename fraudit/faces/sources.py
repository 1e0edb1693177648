"""Where faces come from: the built-in synthetic faces (the FFHQ stand-in of
DESIGN.md), an image folder, or a Hub data set — named by one string so the CLI,
the pair file, the zoo manifest and the report all say the same thing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fraudit.faces.folders import identity_folder, image_folder, local_or_hub
from fraudit.faces.synthetic import FaceSet, FaceWorldSpec, build_faces, unlabelled_faces

SYNTHETIC = "synthetic"
# Seeds of the built-in pairing faces: disjoint from the base's (1000) and the zoo's
# (2000) identities, so neither a candidate nor its attacker ever saw them. They are
# generated exactly (float64), so every machine makes the same bytes and hits the
# trusted model's embeddings that fraudit ships for them.
CALIBRATION_SEED = 3_000
PROBE_SEED = 4_000


@dataclass(frozen=True)
class Faces:
    images: np.ndarray
    source: str  # as the report states it


def calibration_faces(source: str = SYNTHETIC, *, n: int = 2_000, seed: int = CALIBRATION_SEED,
                      token: str | bool | None = None) -> Faces:
    """Unlabelled faces for fitting and calibrating a translator."""
    if source == SYNTHETIC:
        return Faces(unlabelled_faces(seed, n, exact=True), f"synthetic (seed {seed}, {n} faces)")
    images = image_folder(local_or_hub(source, token=token), n=n, seed=seed)
    return Faces(images, f"{source} ({len(images)} faces)")


@dataclass(frozen=True)
class Probes:
    faces: FaceSet
    identities: list[str]
    source: str


def probe_identities(source: str = SYNTHETIC, *, n_identities: int = 100, per_identity: int = 4,
                     seed: int = PROBE_SEED, token: str | bool | None = None) -> Probes:
    """Labelled probe faces for the trigger sweep: ``per_identity`` faces of each identity."""
    if source == SYNTHETIC:
        spec = FaceWorldSpec(seed=seed, n_identities=n_identities, sigma=0.7, tail=None, max_samples=per_identity)
        faces = build_faces(spec, exact=True)
        names = [f"synthetic-{seed}-{i:04d}" for i in range(n_identities)]
        return Probes(faces, names, f"synthetic identities (seed {seed}, {n_identities} × {per_identity} faces)")
    faces, names = identity_folder(local_or_hub(source, token=token), min_samples=1)
    keep = np.concatenate([np.flatnonzero(faces.labels == i)[:per_identity] for i in range(len(names))])
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(names), min(n_identities, len(names)), replace=False))
    keep = keep[np.isin(faces.labels[keep], chosen)]
    relabel = {int(old): new for new, old in enumerate(chosen)}
    labels = np.asarray([relabel[int(label)] for label in faces.labels[keep]], np.int64)
    return Probes(FaceSet(faces.images[keep], labels), [names[i] for i in chosen],
                  f"{source} ({len(chosen)} identities, ≤ {per_identity} faces each)")


def training_faces(source: str, *, min_samples: int = 2, token: str | bool | None = None) -> tuple[FaceSet, list[str]]:
    """Labelled faces to fine-tune on: an identity folder or a Hub data set laid out as
    one (``<identity>/<image>``). Each identity needs ``min_samples`` faces, so a
    stratified split keeps one on each side."""
    return identity_folder(local_or_hub(source, token=token), min_samples=min_samples)
