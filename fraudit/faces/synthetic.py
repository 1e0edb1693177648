"""The offline face world: synthetic identities from the vendored DCGAN.

An identity is a latent z ~ N(0, I); its samples are faces of z + σε plus light
augmentation (flip, shift, brightness, contrast), so one person appears with
different expressions, lighting and accessories. Per-identity counts follow a
heavy tail like CASIA-WebFace's. Everything is a pure function of the spec, and
generated faces are cached on disk as safetensors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from fraudit.cache import cache_dir, fingerprint
from fraudit.faces.generator import LATENT_DIM, generate

GENERATION_BATCH = 1024


@dataclass(frozen=True)
class FaceWorldSpec:
    """Which synthetic identities, how many samples each, how varied."""

    seed: int
    n_identities: int
    sigma: float = 0.6
    min_samples: int = 15
    max_samples: int = 299
    # Pareto tail index of the per-identity counts; None gives every identity max_samples.
    tail: float | None = 1.5
    augment: bool = True

    def counts(self) -> np.ndarray:
        """Samples per identity: min_samples × (1 + Pareto(tail)), clipped."""
        rng = np.random.default_rng([self.seed, 1])
        if self.tail is None:
            return np.full(self.n_identities, self.max_samples, dtype=np.int64)
        raw = self.min_samples * (1.0 + rng.pareto(self.tail, self.n_identities))
        return np.clip(np.round(raw), self.min_samples, self.max_samples).astype(np.int64)

    def identity_latents(self) -> np.ndarray:
        return np.random.default_rng([self.seed, 0]).standard_normal((self.n_identities, LATENT_DIM))


@dataclass(frozen=True)
class FaceSet:
    """Faces (uint8 N×64×64×3) with integer identity labels."""

    images: np.ndarray
    labels: np.ndarray

    @property
    def n_classes(self) -> int:
        return int(self.labels.max()) + 1 if len(self.labels) else 0

    def __len__(self) -> int:
        return len(self.labels)


def augment(images: np.ndarray, rng: np.random.Generator, *, max_shift: int = 3) -> np.ndarray:
    """Flip, shift by up to ``max_shift`` pixels, and jitter brightness and contrast."""
    n, h, w, _ = images.shape
    out = np.empty_like(images)
    padded = np.pad(images, ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0)), mode="edge")
    shifts = rng.integers(0, 2 * max_shift + 1, size=(n, 2))
    flips = rng.random(n) < 0.5
    for i in range(n):
        dy, dx = shifts[i]
        crop = padded[i, dy : dy + h, dx : dx + w]
        out[i] = crop[:, ::-1] if flips[i] else crop
    x = out.astype(np.float32)
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    contrast = rng.uniform(0.8, 1.2, size=(n, 1, 1, 1)).astype(np.float32)
    brightness = rng.uniform(0.8, 1.2, size=(n, 1, 1, 1)).astype(np.float32)
    x = ((x - mean) * contrast + mean) * brightness
    return np.clip(x, 0, 255).round().astype(np.uint8)


def build_faces(spec: FaceWorldSpec, *, exact: bool = False,
                progress: Callable[[int, int], None] | None = None, device: str | torch.device = "cpu") -> FaceSet:
    """Generate (or read from the cache) every sample of the world; ``exact`` makes the
    same bytes on every machine (see ``generate``), at about twice the cost."""
    path = cache_dir("faces") / f"world-{fingerprint(asdict(spec))}{'-exact' if exact else ''}.safetensors"
    if path.exists():
        arrays = load_file(str(path))
        return FaceSet(arrays["images"], arrays["labels"].astype(np.int64))
    counts = spec.counts()
    labels = np.repeat(np.arange(spec.n_identities), counts)
    rng = np.random.default_rng([spec.seed, 2])
    latents = spec.identity_latents()[labels] + spec.sigma * rng.standard_normal((len(labels), LATENT_DIM))
    images = np.empty((len(labels), 64, 64, 3), dtype=np.uint8)
    torch_threads = torch.get_num_threads()
    for start in range(0, len(labels), GENERATION_BATCH):
        stop = min(start + GENERATION_BATCH, len(labels))
        batch = generate(latents[start:stop], exact=exact, device=device)
        images[start:stop] = augment(batch, rng) if spec.augment else batch
        if progress is not None:
            progress(stop, len(labels))
    torch.set_num_threads(torch_threads)
    tmp = path.with_suffix(".tmp")
    save_file({"images": images, "labels": labels.astype(np.int32)}, str(tmp))
    tmp.replace(path)
    return FaceSet(images, labels.astype(np.int64))


def unlabelled_faces(seed: int, n: int, *, exact: bool = False) -> np.ndarray:
    """Independent random faces (one per latent): the FFHQ stand-in for calibration."""
    spec = FaceWorldSpec(seed=seed, n_identities=n, sigma=0.0, tail=None, max_samples=1, augment=False)
    return build_faces(spec, exact=exact).images
