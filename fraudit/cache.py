"""fraudit's on-disk cache (generated faces, cached features, embeddings)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def cache_dir(*parts: str) -> Path:
    """``$FRAUDIT_CACHE_DIR`` or ``$XDG_CACHE_HOME/fraudit`` (default ``~/.cache/fraudit``)."""
    root = os.environ.get("FRAUDIT_CACHE_DIR")
    if root is None:
        root = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "fraudit")
    path = Path(root, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_sha256(path: Path) -> str:
    """The file's sha256, read in blocks (checkpoints and model files can be large)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def fingerprint(payload: Any) -> str:
    """A short stable hash of JSON-able parameters, for cache file names."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]
