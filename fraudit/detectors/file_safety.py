"""Check 1, file safety: read every file of a candidate without running any of it.

Formats come from the bytes; every pickle is scanned statically and must import
only what a tensor checkpoint needs; files that pass are loaded with
``torch.load(weights_only=True)``, whose own restricted unpickler is a second wall.
The reading itself is ``fraudit.formats.read``; this check judges it.
"""

from __future__ import annotations

from dataclasses import dataclass

from fraudit.detectors.base import CheckResult, Status
from fraudit.detectors.check import LoadedCandidate, SarifRule

NAME = "file-safety"
RULE = SarifRule(
    id="FRAUDIT001",
    short="Unsafe or unreadable model file",
    full="The model file imports Python objects beyond what a tensor checkpoint needs "
    "(code would run when it is unpickled), or it cannot be read as a model at all.",
    security_severity="9.8",
)


@dataclass(frozen=True)
class FileSafetyCheck:
    name: str = NAME
    rule: SarifRule = RULE
    needs_weights: bool = False

    def run(self, candidate: LoadedCandidate) -> CheckResult:
        readings = candidate.readings
        evidence: dict = {"files": [r.to_dict() for r in readings]}
        unsafe = [r for r in readings if r.unsafe]
        if unsafe:
            kinds = {"polyglot" if r.also else "unsafe pickle" for r in unsafe}
            summary = f"{' and '.join(sorted(kinds))}: {'; '.join(r.problem or r.path.name for r in unsafe)}; not loaded"
            return CheckResult(NAME, Status.FAIL, summary, evidence)
        if candidate.tensors is None:
            return CheckResult(NAME, Status.ERROR, candidate.load_error or "not loaded", evidence)
        formats = sorted({str(f) for f in candidate.formats})
        pickled = any(r.scan is not None for r in readings)
        summary = f"{len(readings)} file(s), {', '.join(formats)}" + (
            "; pickles import only tensor-rebuild globals, loaded with weights_only=True" if pickled else ""
        )
        evidence["tensors"] = len(candidate.tensors)
        warnings = [r.warning for r in readings if r.warning]
        if warnings:
            return CheckResult(NAME, Status.WARN, "; ".join(warnings), evidence)
        return CheckResult(NAME, Status.PASS, summary, evidence)
