"""Audit candidates: run every check on one model and combine the results."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from fraudit.detectors.base import CheckResult, Status
from fraudit.detectors.file_safety import FileSafetyCheck
from fraudit.detectors.pairing import NAME as PAIRING, PairingCheck
from fraudit.detectors.weight_bank import NAME as WEIGHT_BANK, WeightBankCheck
from fraudit.formats import Format
from fraudit.formats.load import onnx_signature
from fraudit.models.registry import ArchitectureMatch, recognise, recognise_onnx_embedder
from fraudit.sources import Candidate, SourceFailure


@dataclass(frozen=True)
class AuditResult:
    """Everything the report says about one candidate."""

    source: str
    locations: tuple[str, ...]
    checks: tuple[CheckResult, ...]
    architecture: ArchitectureMatch | None = None
    formats: tuple[str, ...] = ()
    seconds: float = 0.0
    # Set when the source produced no model at all (missing path, unknown repo).
    error: str | None = None

    @property
    def verdict(self) -> Status:
        if self.error is not None:
            return Status.ERROR
        return max((c.status for c in self.checks), default=Status.INCONCLUSIVE)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "files": list(self.locations),
            "verdict": str(self.verdict),
            "formats": list(self.formats),
            "architecture": self.architecture.to_dict() if self.architecture else None,
            "checks": [c.to_dict() for c in self.checks],
            "error": self.error,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class AuditConfig:
    """What an audit runs; plain data so that parallel workers receive it whole."""

    weight_bank: WeightBankCheck = field(default_factory=WeightBankCheck)
    # Pairing needs a trusted model (``--pair-with``), so it runs only when asked.
    pairing: PairingCheck | None = None


def audit(candidate: Candidate, config: AuditConfig | None = None) -> AuditResult:
    """Run every check on one candidate. Never raises: a batch must keep its other results."""
    start = time.perf_counter()
    try:
        return _audit(candidate, config or AuditConfig(), start)
    except Exception as exc:  # noqa: BLE001 - one broken candidate must not lose a batch
        return AuditResult(
            source=candidate.source,
            locations=candidate.locations,
            checks=(),
            error=f"internal error while auditing: {type(exc).__name__}: {exc}",
            seconds=time.perf_counter() - start,
        )


def _audit(candidate: Candidate, config: AuditConfig, start: float) -> AuditResult:
    safety = FileSafetyCheck().run(candidate)
    checks: list[CheckResult] = [safety.result]
    architecture = None
    later = [WEIGHT_BANK] + ([PAIRING] if config.pairing else [])
    if safety.tensors is None:
        not_loaded = f"not run: the file was not loaded (file-safety {safety.result.status})"
        checks.extend(CheckResult(name, Status.INCONCLUSIVE, not_loaded) for name in later)
    else:
        architecture = _recognise(candidate, safety.tensors, safety.formats)
        checks.append(config.weight_bank.run(architecture, safety.tensors))
        if config.pairing is not None:
            checks.append(config.pairing.run(architecture, safety.tensors, candidate.files, safety.formats, candidate.source))
    return AuditResult(
        source=candidate.source,
        locations=candidate.locations,
        checks=tuple(checks),
        architecture=architecture,
        formats=safety.formats,
        seconds=time.perf_counter() - start,
    )


def _recognise(candidate: Candidate, tensors: dict, formats: tuple[str, ...]) -> ArchitectureMatch:
    match = recognise({k: tuple(v.shape) for k, v in tensors.items()})
    if match.known or str(Format.ONNX) not in formats or len(candidate.files) != 1:
        return match
    signature = onnx_signature(candidate.files[0])
    onnx_match = signature and recognise_onnx_embedder(*signature, parameters=match.parameters)
    return onnx_match or match


def failure_result(failure: SourceFailure) -> AuditResult:
    """A source that produced no model is an ERROR result, so a batch still reports it."""
    return AuditResult(source=failure.source, locations=(), checks=(), error=failure.reason)


def audit_all(
    items: Sequence[Candidate | SourceFailure],
    *,
    config: AuditConfig | None = None,
    jobs: int = 1,
    on_result: Callable[[AuditResult], None] | None = None,
) -> list[AuditResult]:
    """Audit every candidate, ``jobs`` at a time, keeping the input order."""
    results: list[AuditResult] = []
    for result in _iter_audits(items, config=config, jobs=jobs):
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def _iter_audits(
    items: Sequence[Candidate | SourceFailure], *, config: AuditConfig | None, jobs: int
) -> Iterator[AuditResult]:
    candidates = [item for item in items if isinstance(item, Candidate)]
    if jobs > 1 and len(candidates) > 1:
        from joblib import Parallel, delayed

        parallel = Parallel(n_jobs=jobs, return_as="generator")
        audited = iter(parallel(delayed(audit)(c, config) for c in candidates))
    else:
        audited = (audit(c, config) for c in candidates)
    for item in items:
        yield failure_result(item) if isinstance(item, SourceFailure) else next(audited)
