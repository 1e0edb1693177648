"""Read every file of a candidate the safe way: format from the bytes, pickles
scanned statically, tensors loaded only when every file is readable and every
pickle imports only what a tensor checkpoint needs.

This is the mechanics; the file-safety check turns the readings into a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fraudit.errors import FrauditError
from fraudit.formats.detect import Format, detect_format
from fraudit.formats.load import load_tensors
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

    @property
    def unsafe(self) -> bool:
        return self.scan is not None and bool(self.scan.offending)

    def to_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"file": self.location, "format": str(self.format) if self.format else None}
        if self.scan is not None:
            entry["globals"] = [g.qualified_name for g in self.scan.globals]
            entry["unsafe_globals"] = [
                {"global": g.qualified_name, "picklescan": g.picklescan_level} for g in self.scan.offending
            ]
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
    if scan is not None and scan.parse_error and not scan.offending:
        return FileReading(path, location, fmt, scan, error=f"{path.name}: pickle is truncated or malformed")
    warning = custom_onnx_operators(path) if fmt is Format.ONNX else None
    return FileReading(path, location, fmt, scan, warning=warning)


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
        return ReadCandidate(readings, None, "unsafe pickle: not loaded")
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
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    nodes = list(model.graph.node) + [n for f in model.functions for n in f.node]
    custom = sorted({f"{n.domain}::{n.op_type}" for n in nodes if n.domain not in _STANDARD_ONNX_DOMAINS})
    local = {f.domain for f in model.functions}  # model-local functions are plain ONNX, not native code
    custom = [c for c in custom if c.split("::")[0] not in local]
    if not custom:
        return None
    return f"{path.name}: needs custom operators {', '.join(custom)} (native code the runtime must load)"
