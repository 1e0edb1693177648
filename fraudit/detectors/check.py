"""The check contract. A check is anything with a ``name``, a SARIF ``rule`` and a
``run(candidate) -> CheckResult``; it receives one ``LoadedCandidate`` (the files
as read once by the audit, their tensors, the recognised architecture, the
candidate as an embedder on demand, and the batch's trusted models) and says
PASS, WARN, FAIL or INCONCLUSIVE with its evidence.

Adding a check is a module with a class that satisfies ``Check`` and one line
in ``fraudit.audit.AuditConfig``; the audit loop, the terminal, JSON and SARIF
reports pick it up from there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch

from fraudit.detectors.base import CheckResult
from fraudit.formats import FileReading, Format
from fraudit.models.registry import ArchitectureMatch
from fraudit.pairing.embedders import Embedder, loaded_embedder


@dataclass(frozen=True)
class SarifRule:
    """How a check's findings appear in SARIF (GitHub code scanning)."""

    id: str  # e.g. FRAUDIT002
    short: str
    full: str
    security_severity: str  # CVSS-like "0.0"–"10.0", as GitHub reads it


@runtime_checkable
class Check(Protocol):
    name: str
    rule: SarifRule
    # A check that reads weights or runs the model cannot run when the files were
    # not loaded (unsafe or unreadable): the audit answers INCONCLUSIVE for it.
    needs_weights: bool

    def run(self, candidate: LoadedCandidate) -> CheckResult: ...


TrustedModels = Callable[[str], Embedder]


def _no_trusted_models(source: str) -> Embedder:
    from fraudit.errors import EmbedderUnavailableError

    raise EmbedderUnavailableError(f"no trusted model can be loaded in this audit ({source})")


@dataclass
class LoadedCandidate:
    """One candidate as every check sees it, read once by the audit."""

    source: str
    files: tuple[Path, ...]
    locations: tuple[str, ...]
    readings: tuple[FileReading, ...]
    tensors: dict[str, torch.Tensor] | None
    architecture: ArchitectureMatch | None
    load_error: str | None = None
    # An export's layers with BatchNorm folded in (architecture key → weight): not the
    # checkpoint's values, but what a check can still compare up to that folding.
    folded: dict[str, torch.Tensor] = field(default_factory=dict)
    # Loads a trusted model by source (``dlib``, a path, a Hub repo), once per batch.
    trusted_models: TrustedModels = field(default=_no_trusted_models, repr=False)

    @property
    def formats(self) -> tuple[Format, ...]:
        return tuple(r.format for r in self.readings if r.format is not None)

    @property
    def loaded(self) -> bool:
        return self.tensors is not None

    @cached_property
    def embedder(self) -> Embedder:
        """The candidate as a face embedder; raises a ``FrauditError`` when it cannot run."""
        from fraudit.errors import UnsupportedFormatError

        if self.tensors is None:
            raise UnsupportedFormatError(f"{self.source}: not loaded ({self.load_error})")
        return loaded_embedder(self.source, self.tensors, self.files, self.formats, self.architecture)
