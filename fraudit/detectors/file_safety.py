"""Check 1, file safety: read every file of a candidate without running any of it.

Formats come from the bytes; every pickle is scanned statically and must import
only what a tensor checkpoint needs; files that pass are loaded with
``torch.load(weights_only=True)``, whose own restricted unpickler is a second wall.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fraudit.detectors.base import CheckResult, Status
from fraudit.errors import FrauditError
from fraudit.formats import Format, PickleScan, detect_format, load_tensors, scan_pickles
from fraudit.sources import Candidate

NAME = "file-safety"


@dataclass(frozen=True)
class FileReading:
    """What file safety learnt about one file."""

    path: Path
    location: str
    format: Format | None = None
    scan: PickleScan | None = None
    error: str | None = None
    warning: str | None = None

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


@dataclass(frozen=True)
class FileSafetyOutcome:
    result: CheckResult
    tensors: dict[str, torch.Tensor] | None
    formats: tuple[str, ...]


class FileSafetyCheck:
    name = NAME

    def run(self, candidate: Candidate) -> FileSafetyOutcome:
        readings = [self._read(path, location) for path, location in zip(candidate.files, candidate.locations)]
        formats = tuple(str(r.format) for r in readings if r.format)
        evidence = {"files": [r.to_dict() for r in readings]}

        unsafe = [r for r in readings if r.scan is not None and r.scan.offending]
        if unsafe:
            names = sorted({g.qualified_name for r in unsafe for g in r.scan.offending})  # type: ignore[union-attr]
            files = ", ".join(r.path.name for r in unsafe)
            summary = f"unsafe pickle in {files}: imports {', '.join(names)}; not loaded"
            return FileSafetyOutcome(CheckResult(NAME, Status.FAIL, summary, evidence), None, formats)
        broken = [r for r in readings if r.error]
        if broken:
            summary = "; ".join(r.error for r in broken if r.error)
            return FileSafetyOutcome(CheckResult(NAME, Status.ERROR, summary, evidence), None, formats)

        tensors: dict[str, torch.Tensor] = {}
        for reading in readings:
            assert reading.format is not None
            try:
                tensors.update(load_tensors(reading.path, reading.format))
            except FrauditError as exc:
                evidence["files"] = [r.to_dict() for r in readings]
                return FileSafetyOutcome(CheckResult(NAME, Status.ERROR, str(exc), evidence), None, formats)

        pickled = [r for r in readings if r.scan is not None]
        summary = f"{len(readings)} file(s), {', '.join(sorted(set(formats)))}" + (
            "; pickles import only tensor-rebuild globals, loaded with weights_only=True" if pickled else ""
        )
        evidence["tensors"] = len(tensors)
        warnings = [r.warning for r in readings if r.warning]
        if warnings:
            return FileSafetyOutcome(CheckResult(NAME, Status.WARN, "; ".join(warnings), evidence), tensors, formats)
        return FileSafetyOutcome(CheckResult(NAME, Status.PASS, summary, evidence), tensors, formats)

    @staticmethod
    def _read(path: Path, location: str) -> FileReading:
        try:
            fmt = detect_format(path)
            scan = scan_pickles(path, fmt) if fmt.is_pickle else None
        except FrauditError as exc:
            return FileReading(path, location, error=str(exc))
        except OSError as exc:
            return FileReading(path, location, error=f"{path.name}: cannot read ({exc.strerror})")
        if scan is not None and scan.parse_error and not scan.offending:
            return FileReading(path, location, fmt, scan, error=f"{path.name}: pickle is truncated or malformed")
        warning = _custom_onnx_operators(path) if fmt is Format.ONNX else None
        return FileReading(path, location, fmt, scan, warning=warning)


# Operator domains every ONNX runtime implements; others need a native library
# (a custom-op .so/.dll) loaded into the process that runs the model.
_STANDARD_ONNX_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})


def _custom_onnx_operators(path: Path) -> str | None:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    nodes = list(model.graph.node) + [n for f in model.functions for n in f.node]
    custom = sorted({f"{n.domain}::{n.op_type}" for n in nodes if n.domain not in _STANDARD_ONNX_DOMAINS})
    local = {f.domain for f in model.functions}  # model-local functions are plain ONNX, not native code
    custom = [c for c in custom if c.split("::")[0] not in local]
    if not custom:
        return None
    return f"{path.name}: needs custom operators {', '.join(custom)} (native code the runtime must load)"
