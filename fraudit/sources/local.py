"""Find candidates in local files and folders."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

WEIGHT_SUFFIXES = frozenset(
    {".safetensors", ".pt", ".pth", ".bin", ".ckpt", ".onnx", ".pkl", ".pickle", ".tar", ".model"}
)
# Magic bytes of the formats that hide behind any extension.
_WEIGHT_MAGIC = (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")
_MODEL_REPO_MARKERS = ("config.json", "model.safetensors.index.json", "pytorch_model.bin.index.json")


def is_weight_file(path: Path) -> bool:
    """By extension, or by magic bytes for renamed pickles and zips (``model.jpg``)."""
    if path.suffix.lower() in WEIGHT_SUFFIXES:
        return True
    try:
        with path.open("rb") as f:
            head = f.read(9)
    except OSError:
        return False
    if head.startswith(_WEIGHT_MAGIC):
        return True
    # safetensors: u64 header length then '{'
    return len(head) == 9 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") < 100_000_000


def is_model_repo(folder: Path) -> bool:
    """A transformers-style repo (config plus shards) is one model, not one per file."""
    return any((folder / marker).is_file() for marker in _MODEL_REPO_MARKERS) and any(
        is_weight_file(p) for p in folder.iterdir() if p.is_file()
    )


def discover(root: Path) -> Iterator[tuple[Path, ...]]:
    """Yield the weight files of each model below ``root``, in a stable order."""
    if root.is_file():
        yield (root,)
        return
    for folder, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        here = Path(folder)
        weights = sorted(here / name for name in filenames if is_weight_file(here / name))
        if not weights:
            continue
        if is_model_repo(here):
            yield tuple(weights)
        else:
            yield from ((w,) for w in weights)
