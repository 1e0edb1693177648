"""Where fraudit's shipped data lives: ``reference_models/`` beside the package in a
source tree, or inside an installed copy. Every other module asks here, so that the
layout is known in one place and nothing climbs the floors just to find a file."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fraudit.errors import SourceNotFoundError

REFERENCE_MODELS = "reference_models"


@cache
def reference_models_dir() -> Path:
    """``reference_models/`` of the source tree (beside ``fraudit/``) or of an installed copy."""
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
