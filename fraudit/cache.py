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


def fingerprint(payload: Any) -> str:
    """A short stable hash of JSON-able parameters, for cache file names."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]
