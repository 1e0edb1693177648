"""Check 2, weight bank (thesis ch. 4): the candidate's layers against clean-weight
models of its architecture. Without a bank for the architecture the check is
INCONCLUSIVE and says so; it never passes a model it could not score."""

from __future__ import annotations

from pathlib import Path

from fraudit.detectors.base import CheckResult, Status
from fraudit.models.registry import ArchitectureMatch

NAME = "weight-bank"


class WeightBankCheck:
    name = NAME

    def __init__(self, *, bank_dirs: tuple[Path, ...] = ()) -> None:
        self.bank_dirs = bank_dirs

    def run(self, architecture: ArchitectureMatch) -> CheckResult:
        if not architecture.known:
            return CheckResult(
                NAME,
                Status.INCONCLUSIVE,
                "unknown architecture: no weight bank can score it",
                {"architecture": architecture.id},
            )
        return CheckResult(
            NAME,
            Status.INCONCLUSIVE,
            f"no weight bank for {architecture.id} yet",
            {"architecture": architecture.id, "searched": [str(d) for d in self.bank_dirs]},
        )
