"""Where fraudit's shipped data lives: ``reference_models/`` beside the package in a
source tree, or inside an installed copy. Every other module asks here, so that the
layout is known in one place and nothing climbs the floors just to find a file."""

from __future__ import annotations

import json
import os
from functools import cache, lru_cache
from importlib import resources as package_resources
from pathlib import Path

from fraudit.cache import file_sha256
from fraudit.errors import CorruptFileError, SourceNotFoundError

REFERENCE_MODELS = "reference_models"
PINS = "pins.json"


@cache
def reference_models_dir() -> Path:
    """``reference_models/`` of the source tree (beside ``fraudit/``) or of an installed
    copy, or ``$FRAUDIT_REFERENCE_MODELS`` (a mirror elsewhere: its files must still
    match the digests pinned in this package)."""
    override = os.environ.get("FRAUDIT_REFERENCE_MODELS")
    if override:
        folder = Path(override)
        if not (folder / "dcgan-digiface").is_dir():
            raise SourceNotFoundError(f"FRAUDIT_REFERENCE_MODELS={override} holds no fraudit reference models",
                                      path=folder)
        return folder
    here = Path(__file__).resolve().parent
    for root in (here.parent, here):
        candidate = root / REFERENCE_MODELS
        if (candidate / "dcgan-digiface").is_dir():
            return candidate
    raise SourceNotFoundError(f"{REFERENCE_MODELS}/ not found next to the fraudit package", path=here.parent / REFERENCE_MODELS)


def dcgan_dir() -> Path:
    """The vendored DCGAN face generator (DigiFace-1M, MIT)."""
    return reference_models_dir() / "dcgan-digiface"


def base_dir() -> Path:
    """The pretrained reference base model every zoo model is fine-tuned from."""
    return reference_models_dir() / "base"


def banks_dir() -> Path:
    """The shipped weight banks (one folder per bank)."""
    return reference_models_dir() / "banks"


def pairing_dir() -> Path:
    """The shipped sweep nulls, one per (architecture, trusted model)."""
    return reference_models_dir() / "pairing"


def shipped_embeddings_dir() -> Path:
    """A trusted model's embeddings of the built-in faces, keyed like the embedding cache."""
    return pairing_dir() / "embeddings"


def examples_dir() -> Path:
    """The example pair (one clean, one backdoored model)."""
    return reference_models_dir() / "examples"


# --- shipped artifacts are verified against digests pinned in the package --------------
#
# A file under reference_models/ is trusted only when its sha256 is the one recorded in
# fraudit/pins.json, which ships with the code (``scripts/pin_shipped.py`` writes it; a
# test fails when a shipped file and its pin disagree). A digest stored inside an
# artifact proves nothing against someone who can edit the artifact: they rehash it.


@cache
def pinned_digests() -> dict[str, str]:
    """Relative path under reference_models/ → sha256, as shipped with this version."""
    return json.loads(package_resources.files("fraudit").joinpath(PINS).read_text())


def shipped_relative(path: Path) -> str | None:
    """``path`` relative to reference_models/ when it lies there, else None."""
    try:
        return path.resolve().relative_to(reference_models_dir().resolve()).as_posix()
    except (ValueError, SourceNotFoundError):
        return None


def verify_shipped(path: Path) -> str | None:
    """Refuse a shipped file whose bytes are not the pinned ones; return its digest.
    Files outside reference_models/ are the user's: None (nothing to check here)."""
    relative = shipped_relative(path)
    if relative is None:
        return None
    stat = path.stat()
    return _verified(relative, str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=256)
def _verified(relative: str, resolved: str, mtime_ns: int, size: int) -> str:
    expected = pinned_digests().get(relative)
    if expected is None:
        raise CorruptFileError(f"{relative}: not a file this fraudit version ships (no pinned digest); refusing it",
                               path=resolved)
    digest = file_sha256(Path(resolved))
    if digest != expected:
        raise CorruptFileError(f"{relative}: does not match the digest pinned in fraudit {PINS}; "
                               f"refusing a modified shipped artifact", path=resolved)
    return digest
