"""Find candidates in local files and folders.

The walk is iterative (no recursion limit), enters hidden folders, and opens only
regular files. A symlink is followed only when its target resolves inside the
containment root (the scanned folder, or a Hub repository's cache folder); one
that leads elsewhere, FIFOs, sockets and devices are reported as skipped, with
the reason, and never read. Every regular file's first bytes are sniffed, so a
pickle in any protocol under any name is found.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fraudit.errors import FrauditError
from fraudit.formats.detect import CAPS, looks_like_onnx, numpy_object_offset, onnx_external_locations, sniff_pickle
from fraudit.formats.dlib_dnn import looks_like_dlib_dnn

WEIGHT_SUFFIXES = frozenset(
    {".safetensors", ".pt", ".pth", ".bin", ".ckpt", ".onnx", ".pkl", ".pickle", ".tar", ".model", ".joblib"}
)
# Magic bytes of the formats that hide behind any extension.
_WEIGHT_MAGIC = (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")
_CONFIG_MARKER = "config.json"


@dataclass(frozen=True)
class Skipped:
    """An entry the walk did not read, and why (a symlink out of the root, a FIFO)."""

    path: Path
    reason: str


def is_weight_file(path: Path) -> bool:
    """By extension, or by the bytes: magic numbers, a safetensors header, an ONNX
    protobuf, a pickle of any protocol that imports something, an object array, a
    dlib network (dlib names its files ``.dat``, as countless non-models are named)."""
    if path.suffix.lower() in WEIGHT_SUFFIXES:
        return True
    try:
        with path.open("rb") as f:
            head = f.read(64)
            if head.startswith(_WEIGHT_MAGIC) or looks_like_dlib_dnn(head):
                return True
            # safetensors: u64 header length then '{'
            if len(head) >= 9 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") <= CAPS.safetensors_header_bytes:
                return True
            if head.startswith(b"\x93NUMPY"):
                return numpy_object_offset(path) is not None
            f.seek(0)
            walk = sniff_pickle(f)
            if walk.imports:
                return True
        return looks_like_onnx(path, path.stat().st_size)
    except (OSError, FrauditError):
        return False


def _is_repo_marker(name: str) -> bool:
    return name == _CONFIG_MARKER or name.endswith(".index.json")


def _onnx_external_files(folder: Path, onnx_files: list[Path]) -> set[Path]:
    """Files an ONNX model in this folder reads as external data: part of that model."""
    found: set[Path] = set()
    for path in onnx_files:
        try:
            locations = onnx_external_locations(path)
        except OSError:
            continue
        found.update((folder / location).absolute() for location in locations)
    return found


def discover(root: Path, *, contain: Path | None = None) -> Iterator[tuple[Path, ...] | Skipped]:
    """Yield the weight files of each model below ``root`` in a stable order, and
    every entry skipped. ``contain`` is the folder symlinks may resolve into
    (default ``root``)."""
    if root.is_file():
        yield (root,)
        return
    boundary = (contain or root).resolve()
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            yield Skipped(folder, f"folder not readable ({exc.strerror})")
            continue
        files: list[Path] = []
        subfolders: list[Path] = []
        names = set()
        for entry in entries:
            path = Path(entry.path)
            names.add(entry.name)
            kind = _kind(path, boundary)
            if isinstance(kind, Skipped):
                yield kind
            elif kind == "dir":
                subfolders.append(path)
            elif kind == "file":
                files.append(path)
        pending.extend(reversed(subfolders))  # depth first, in name order
        weights = [p for p in files if is_weight_file(p)]
        onnx_files = [p for p in weights if p.suffix.lower() == ".onnx"]
        if onnx_files:
            external = _onnx_external_files(folder, onnx_files)
            weights = [p for p in weights if p.absolute() not in external]
        if not weights:
            continue
        if any(_is_repo_marker(n) for n in names):
            # a transformers-style repo (config or shard index) is one model; an ONNX
            # file beside it is a model of its own
            shards = [p for p in weights if p not in onnx_files]
            if shards:
                yield tuple(shards)
            yield from ((p,) for p in onnx_files)
        else:
            yield from ((w,) for w in weights)


def _kind(path: Path, boundary: Path) -> str | Skipped:
    """'file', 'dir', 'other' (nothing to report), or why the entry is skipped."""
    try:
        info = path.lstat()
    except OSError as exc:
        return Skipped(path, f"cannot stat ({exc.strerror})")
    if stat.S_ISLNK(info.st_mode):
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError):
            return Skipped(path, "symlink that does not resolve (dangling or a loop): not followed")
        if not target.is_relative_to(boundary):
            return Skipped(path, "symlink to outside the scanned folder: not followed")
        if target.is_dir():
            return Skipped(path, "symlink to a folder: not followed (its target is scanned where it lies)")
        info = target.stat()
    if stat.S_ISDIR(info.st_mode):
        return "dir"
    if stat.S_ISREG(info.st_mode):
        return "file"
    kind = ("FIFO" if stat.S_ISFIFO(info.st_mode) else "socket" if stat.S_ISSOCK(info.st_mode)
            else "device" if stat.S_ISBLK(info.st_mode) or stat.S_ISCHR(info.st_mode) else "special file")
    return Skipped(path, f"{kind}, not a regular file: not read")
