"""Audit candidates: load each one once, run every configured check on it, and
combine the results into a verdict."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from fraudit.detectors.base import CheckResult, Status
from fraudit.detectors.check import Check
from fraudit.detectors.file_safety import FileSafetyCheck
from fraudit.detectors.pairing import NAME as PAIRING
from fraudit.detectors.pairing import PairingCheck
from fraudit.detectors.trigger_search import NAME as TRIGGER_SEARCH
from fraudit.detectors.trigger_search import TriggerSearchCheck
from fraudit.detectors.weight_bank import WeightBankCheck
from fraudit.formats import Format
from fraudit.loading import load_candidate
from fraudit.models.registry import ArchitectureMatch
from fraudit.models.spec import Preprocessing
from fraudit.parallel import Backend, TaskFailed, Workers, results_in_order
from fraudit.printable import printable
from fraudit.sources import Candidate, Resolved, SkippedEntry, SourceFailure


# the checks that ask what the model does, not what its file or weights look like
BEHAVIOURAL_CHECKS = frozenset({PAIRING, TRIGGER_SEARCH})


@dataclass(frozen=True)
class AuditResult:
    """Everything the report says about one candidate."""

    source: str
    locations: tuple[str, ...]
    checks: tuple[CheckResult, ...]
    architecture: ArchitectureMatch | None = None
    formats: tuple[Format, ...] = ()
    seconds: float = 0.0
    # Set when the source produced no model at all (missing path, unknown repo).
    error: str | None = None
    # Set for an entry of a scanned folder that was not read (a symlink out of the folder, a FIFO).
    skipped: str | None = None

    @property
    def verdict(self) -> Status:
        if self.error is not None:
            return Status.ERROR
        return max((c.status for c in self.checks), default=Status.INCONCLUSIVE)

    @property
    def caveat(self) -> str | None:
        """What a PASS from the file and its weights alone does not say."""
        if self.verdict is not Status.PASS or any(c.name in BEHAVIOURAL_CHECKS for c in self.checks):
            return None
        return ("no behavioural check ran, only the file and its weights were read: this PASS is not a "
                "certificate — a weight bank compares what fine-tuning changed with clean fine-tunes, and a "
                "backdoor it does not see (e.g. one implanted into a clean model by a short fine-tune, read "
                "without the head that shows it) passes; add --base BASE for the trigger search or "
                "--pair-with dlib for pairing")

    @property
    def deciding(self) -> CheckResult | None:
        """The most severe check explains the verdict; among equals the later (deeper) one does."""
        return max(reversed(self.checks), key=lambda c: c.status, default=None)

    @property
    def reason(self) -> str:
        deciding = self.deciding
        return self.error or self.skipped or (deciding.summary if deciding is not None else "")

    @property
    def brief(self) -> str:
        """The reason cut to a table row: the deciding check and its figure against its bound."""
        deciding = self.deciding
        return self.error or self.skipped or (f"{deciding.name}: {deciding.brief}" if deciding is not None else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "files": list(self.locations),
            "verdict": str(self.verdict),
            "reason": self.reason,
            "formats": [str(f) for f in self.formats],
            "architecture": self.architecture.to_dict() if self.architecture else None,
            "checks": [c.to_dict() for c in self.checks],
            "error": self.error,
            "skipped": self.skipped,
            "caveat": self.caveat,
            "seconds": round(self.seconds, 3),
        }

    def __rich__(self) -> Panel:
        parts: list[RenderableType] = []
        if self.error is not None or self.skipped is not None:
            parts.append(Text(printable(self.error or f"skipped: {self.skipped}")))
        else:
            facts = Table.grid(padding=(0, 2))
            facts.add_column(style="dim")
            facts.add_column()
            if self.formats:
                facts.add_row("format", ", ".join(sorted({str(f) for f in self.formats})))
            arch = self.architecture
            if arch is not None:
                facts.add_row("architecture", Text(printable(arch.name + (f" — {arch.variant}" if arch.variant else "")
                                                             + _recognition(arch))))
                facts.add_row("parameters", f"{arch.parameters:,}")
                if arch.embedding_dim:
                    facts.add_row("embedding", f"{arch.embedding_dim}-d" + (f", {arch.input_text}" if arch.input_text else ""))
            parts.append(facts)
            checks = Table(show_edge=False, expand=True, pad_edge=False)
            checks.add_column("check", no_wrap=True)
            checks.add_column("status", no_wrap=True)
            checks.add_column("summary", ratio=1)
            for check in self.checks:
                checks.add_row(Text(printable(check.name)), check.status, Text(printable(check.summary)))
            parts.append(checks)
            if self.caveat:
                parts.append(Text(self.caveat, style="dim"))
        title = Text.assemble(printable(self.source), "  ", self.verdict.__rich__())
        return Panel(Group(*parts), title=title, title_align="left", border_style=self.verdict.style.split()[-1])


def default_checks(*, banks: Sequence[Path] = (), pair_with: str | None = None,
                   pair_null: Path | None = None, search: TriggerSearchCheck | None = None) -> tuple[Check, ...]:
    """The checks ``fraudit scan`` runs: file safety and the weight bank always; pairing
    when a trusted model is named, the trigger search when a base is. A new check is
    one more line here."""
    checks: list[Check] = [FileSafetyCheck(), WeightBankCheck(banks=tuple(banks))]
    if pair_with is not None:
        checks.append(PairingCheck(trusted=pair_with, null=pair_null))
    if search is not None:
        checks.append(search)
    return tuple(checks)


@dataclass(frozen=True)
class AuditConfig:
    """What an audit runs; plain data so that parallel workers receive it whole."""

    checks: tuple[Check, ...] = field(default_factory=default_checks)
    preprocessing: Preprocessing | None = None  # how the user says candidates take their faces

    @property
    def runs_models(self) -> bool:
        """Whether a check runs the candidate on faces (slow enough to want a progress bar)."""
        return any(isinstance(c, PairingCheck | TriggerSearchCheck) for c in self.checks)


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
    loaded = load_candidate(candidate, preprocessing=config.preprocessing)
    results: list[CheckResult] = []
    for check in config.checks:
        results.append(_not_loaded(check, results) if check.needs_weights and not loaded.loaded else check.run(loaded))
    return AuditResult(
        source=candidate.source,
        locations=candidate.locations,
        checks=tuple(results),
        architecture=loaded.architecture,
        formats=loaded.formats,
        seconds=time.perf_counter() - start,
    )


def _not_loaded(check: Check, earlier: list[CheckResult]) -> CheckResult:
    """A check that needs the weights, on a candidate whose files were not loaded."""
    blocking = max(earlier, key=lambda r: r.status, default=None)
    why = f" ({blocking.name} {blocking.status})" if blocking is not None else ""
    return CheckResult(check.name, Status.INCONCLUSIVE, f"not run: the file was not loaded{why}")


def _audit_in_workers(candidates: list[Candidate], config: AuditConfig | None, workers: Workers) -> Iterator[AuditResult]:
    """One task per candidate on local processes (loky) or a Dask cluster, results
    streamed back in input order. A task that dies (a worker killed by a segfault in a
    native loader, out of memory, a cluster that lost it) is that candidate's ERROR;
    the batch and its report go on."""
    for candidate, outcome in zip(candidates, results_in_order(workers, audit, [(c, config) for c in candidates])):
        if isinstance(outcome, TaskFailed):
            yield AuditResult(source=candidate.source, locations=candidate.locations, checks=(),
                              error=f"audit process failed: {outcome}")
        else:
            yield outcome


def failure_result(failure: SourceFailure) -> AuditResult:
    """A source that produced no model is an ERROR result, so a batch still reports it."""
    return AuditResult(source=failure.source, locations=(), checks=(), error=failure.reason)


def skipped_result(entry: SkippedEntry) -> AuditResult:
    """An entry the walk would not read is INCONCLUSIVE with the reason: never silently dropped."""
    return AuditResult(source=entry.source, locations=(entry.source,), checks=(), skipped=entry.reason)


def audit_all(
    items: Sequence[Resolved],
    *,
    config: AuditConfig | None = None,
    jobs: int = 1,
    workers: Workers | None = None,
    on_result: Callable[[AuditResult], None] | None = None,
) -> list[AuditResult]:
    """Audit every candidate, ``jobs`` local processes at a time (or on ``workers``),
    keeping the input order."""
    results: list[AuditResult] = []
    for result in _iter_audits(items, config=config, workers=workers or Workers(jobs=jobs)):
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def _iter_audits(items: Sequence[Resolved], *, config: AuditConfig | None, workers: Workers) -> Iterator[AuditResult]:
    candidates = [item for item in items if isinstance(item, Candidate)]
    if candidates and (workers.backend is Backend.DASK or (workers.jobs > 1 and len(candidates) > 1)):
        audited = _audit_in_workers(candidates, config, workers)
    else:
        audited = (audit(c, config) for c in candidates)
    for item in items:
        if isinstance(item, SourceFailure):
            yield failure_result(item)
        elif isinstance(item, SkippedEntry):
            yield skipped_result(item)
        else:
            yield next(audited)
    audited.close()  # leaves the worker pool (a Dask client and its local cluster) now, not at garbage collection


def _recognition(arch: ArchitectureMatch) -> str:
    """How an export was recognised, and what its exporter folded."""
    if arch.recognised_from == "tensor names":
        return ""
    folded = f"; BatchNorm folded into {len(arch.folded_layers)} layers" if arch.folded_layers else ""
    return f" (recognised from its {arch.recognised_from}{folded})"
