"""Real face data from disk or the Hub, as the same arrays the synthetic world gives.

* an identity folder, ``root/<identity>/*.jpg`` (the CASIA-WebFace layout) → ``FaceSet``;
* an unlabelled image folder (FFHQ thumbnails) → uint8 N×S×S×3;
* ``hf://datasets/org/name[@rev]`` → the data set's image files through
  ``huggingface_hub`` (downloaded into its cache), then read as a folder.

Faces are assumed to be aligned crops already (as FFHQ and CASIA's aligned
release are); they are centre-cropped to a square and resized with PIL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from fraudit.errors import SourceNotFoundError, UnsupportedFormatError
from fraudit.faces.synthetic import FaceSet

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
HF_DATASETS = "hf://datasets/"
DEFAULT_SIZE = 64


def read_face(path: Path, size: int = DEFAULT_SIZE) -> np.ndarray:
    """One image as uint8 size×size×3 RGB: centre-cropped to a square, resized."""
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise UnsupportedFormatError(f"{path}: not a readable image ({exc})") from exc
    w, h = rgb.size
    side = min(w, h)
    box = ((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side)
    return np.asarray(rgb.resize((size, size), Image.Resampling.BILINEAR, box=box), dtype=np.uint8)


def _images_in(folder: Path) -> Iterator[Path]:
    return (p for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def image_folder(root: Path, *, n: int | None = None, size: int = DEFAULT_SIZE, seed: int = 0) -> np.ndarray:
    """Up to ``n`` images found anywhere under ``root`` (a seeded sample when there are more)."""
    paths = list(_images_in(root))
    if not paths:
        raise SourceNotFoundError(f"{root}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found")
    if n is not None and n < len(paths):
        keep = np.sort(np.random.default_rng(seed).choice(len(paths), n, replace=False))
        paths = [paths[i] for i in keep]
    return np.stack([read_face(p, size) for p in paths])


def identity_folder(root: Path, *, size: int = DEFAULT_SIZE, min_samples: int = 1) -> tuple[FaceSet, list[str]]:
    """``root/<identity>/<image>``: faces labelled by their folder, and the identity names."""
    if not root.is_dir():
        raise SourceNotFoundError(f"{root}: not a folder")
    images: list[np.ndarray] = []
    labels: list[int] = []
    names: list[str] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        paths = list(_images_in(folder))
        if len(paths) < min_samples:
            continue
        images.extend(read_face(p, size) for p in paths)
        labels.extend([len(names)] * len(paths))
        names.append(folder.name)
    if not names:
        raise SourceNotFoundError(f"{root}: no identity sub-folders with at least {min_samples} image(s)")
    return FaceSet(np.stack(images), np.asarray(labels, np.int64)), names


def dataset_folder(uri: str, *, token: str | bool | None = None) -> Path:
    """Download a Hub data set's images (``hf://datasets/org/name[@rev]``); return its folder."""
    from fraudit.sources.hub import HF_SCHEME, download, parse_hub_reference

    ref = parse_hub_reference(HF_SCHEME + uri.removeprefix(HF_DATASETS))
    if ref is None:
        raise SourceNotFoundError(f"{uri}: not a data set reference (hf://datasets/org/name[@rev])")
    patterns = sorted({f"*{s}" for s in IMAGE_SUFFIXES} | {f"*{s.upper()}" for s in IMAGE_SUFFIXES})
    folder, _ = download(ref, token=token, repo_type="dataset", allow_patterns=patterns)
    return folder


def local_or_hub(source: str, *, token: str | bool | None = None) -> Path:
    """A local folder as is, or a Hub data set downloaded to the cache."""
    if source.startswith(HF_DATASETS):
        return dataset_folder(source, token=token)
    path = Path(source).expanduser()
    if not path.is_dir():
        raise SourceNotFoundError(f"{source}: no such folder")
    return path
