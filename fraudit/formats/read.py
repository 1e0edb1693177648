"""Read every file of a candidate the safe way: format from the bytes, pickles
scanned statically, tensors loaded only when every file is readable, no file's
bytes also read as another format, and every pickle imports only what a tensor
checkpoint needs.

This is the mechanics; the file-safety check turns the readings into a verdict.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fraudit.errors import FrauditError
from fraudit.formats.detect import SNIFF_BYTES, Format, detect_format, looks_like_safetensors, sniff_pickle
from fraudit.formats.load import load_onnx_model, load_tensors
from fraudit.formats.pickle_scan import PickleScan, scan_pickles


@dataclass(frozen=True)
class FileReading:
    """What reading one file learnt, before anything in it was loaded."""

    path: Path
    location: str
    format: Format | None = None
    scan: PickleScan | None = None
    error: str | None = None
    warning: str | None = None
    # What else the same bytes parse as, when that is something a loader would run
    # (a pickle with imports, a zip archive): a polyglot is never loaded.
    also: tuple[str, ...] = ()

    @property
    def unsafe(self) -> bool:
        """Never to be loaded: offending imports, a pickle that cannot be followed, a polyglot."""
        return bool(self.also) or (self.scan is not None and not self.scan.safe)

    @property
    def problem(self) -> str | None:
        """Why an unsafe file is unsafe, in one phrase."""
        if self.also:
            return f"{self.path.name} is {self.format} and also {'; also '.join(self.also)}"
        if self.scan is None:
            return None
        if self.scan.offending:
            return f"{self.path.name} imports {', '.join(g.qualified_name for g in self.scan.offending)}"
        if self.scan.unscannable:
            return f"{self.path.name} holds a pickle that cannot be read to its end ({self.scan.unscannable})"
        return None

    def to_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"file": self.location, "format": str(self.format) if self.format else None}
        if self.scan is not None:
            entry["globals"] = [g.qualified_name for g in self.scan.globals]
            entry["unsafe_globals"] = [{"global": g.qualified_name, "danger": g.danger} for g in self.scan.offending]
            if self.scan.unscannable:
                entry["unscannable"] = self.scan.unscannable
        if self.also:
            entry["polyglot"] = list(self.also)
        if self.error:
            entry["error"] = self.error
        if self.warning:
            entry["warning"] = self.warning
        return entry


def read_file(path: Path, location: str) -> FileReading:
    """Detect the format and scan any pickle; never raises for a bad file."""
    try:
        fmt = detect_format(path)
        scan = scan_pickles(path, fmt) if fmt.is_pickle else None
    except FrauditError as exc:
        return FileReading(path, location, error=str(exc))
    except OSError as exc:
        return FileReading(path, location, error=f"{path.name}: cannot read ({exc.strerror})")
    try:
        also = other_readings(path, fmt)
        warning = custom_onnx_operators(path) if fmt is Format.ONNX and not also else None
    except FrauditError as exc:
        return FileReading(path, location, fmt, scan, error=str(exc))
    except OSError as exc:
        return FileReading(path, location, fmt, scan, error=f"{path.name}: cannot read ({exc.strerror})")
    return FileReading(path, location, fmt, scan, warning=warning, also=also)


def other_readings(path: Path, fmt: Format) -> tuple[str, ...]:
    """What a loader other than ``fmt``'s could read the same bytes as, when it would
    run code or unpickle: a pickle at offset 0 that imports globals, or a zip archive.
    A file in a pickle format is scanned as a pickle anyway; the question is for the rest."""
    found = []
    with path.open("rb") as f:
        head = f.read(SNIFF_BYTES)
        f.seek(0)
        walk = sniff_pickle(f) if not fmt.is_pickle else None
    if fmt is not Format.SAFETENSORS and looks_like_safetensors(head):
        found.append("a safetensors file (its header length is this format's signature)")
    if walk is not None and walk.imports:
        names = ", ".join(sorted({f"{m}.{n}" for m, n in walk.globals}))
        found.append(f"a pickle importing {names}")
    if fmt not in (Format.TORCH_ZIP, Format.NUMPY_OBJECT) and _opens_as_zip(path):
        found.append("a zip archive (zip readers open it as one)")
    return tuple(found)


def _opens_as_zip(path: Path) -> bool:
    """A zip a reader would open: an end record *and* a central directory that lists
    members. (Four bytes spelling the end record's signature can occur by chance in a
    large tensor; a consistent central directory cannot.)"""
    if not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return bool(archive.infolist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError):
        return False


@dataclass(frozen=True)
class ReadCandidate:
    """Every file's reading, and the tensors when all of them could be loaded safely."""

    readings: tuple[FileReading, ...]
    tensors: dict[str, torch.Tensor] | None
    # Why the tensors were not loaded: unsafe pickles, unreadable files, a refused load.
    load_error: str | None = None

    @property
    def formats(self) -> tuple[Format, ...]:
        return tuple(r.format for r in self.readings if r.format is not None)


def read_candidate(files: tuple[Path, ...], locations: tuple[str, ...]) -> ReadCandidate:
    readings = tuple(read_file(path, location) for path, location in zip(files, locations))
    if any(r.unsafe for r in readings):
        return ReadCandidate(readings, None, "unsafe or polyglot file: not loaded")
    broken = [r.error for r in readings if r.error]
    if broken:
        return ReadCandidate(readings, None, "; ".join(broken))
    tensors: dict[str, torch.Tensor] = {}
    for reading in readings:
        assert reading.format is not None  # no error means a format was found
        try:
            tensors.update(load_tensors(reading.path, reading.format))
        except FrauditError as exc:
            return ReadCandidate(readings, None, str(exc))
    return ReadCandidate(readings, tensors)


# Operator domains every ONNX runtime implements; others need a native library
# (a custom-op .so/.dll) loaded into the process that runs the model.
_STANDARD_ONNX_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})


def custom_onnx_operators(path: Path) -> str | None:
    """Operators outside the standard domains, wherever they sit: the main graph, the
    subgraphs of control flow (If, Loop, Scan) at any depth, and the bodies of
    model-local functions. A call to a local function is plain ONNX; what its body
    calls is not exempt."""
    model = load_onnx_model(path)
    local = {(f.domain, f.name) for f in model.functions}
    custom = sorted({f"{n.domain}::{n.op_type}" for n in _all_nodes(model)
                     if n.domain not in _STANDARD_ONNX_DOMAINS and (n.domain, n.op_type) not in local})
    if not custom:
        return None
    return f"{path.name}: needs custom operators {', '.join(custom)} (native code the runtime must load)"


def _all_nodes(model):  # noqa: ANN001, ANN202 - onnx protos
    """Every node of the model, subgraphs and function bodies included (iteratively)."""
    import onnx

    pending = [list(model.graph.node)] + [list(f.node) for f in model.functions]
    while pending:
        for node in pending.pop():
            yield node
            for attribute in node.attribute:
                if attribute.type == onnx.AttributeProto.GRAPH:
                    pending.append(list(attribute.g.node))
                elif attribute.type == onnx.AttributeProto.GRAPHS:
                    pending.extend(list(g.node) for g in attribute.graphs)
