"""A check that kills the process it runs in, for candidates whose file name says
``crash``: what a segfault in a native loader does to a worker."""

from __future__ import annotations

import os
from dataclasses import dataclass

from fraudit.detectors.base import CheckResult, Status
from fraudit.detectors.check import LoadedCandidate, SarifRule


@dataclass(frozen=True)
class CrashingCheck:
    name: str = "crashing"
    rule: SarifRule = SarifRule("CRASH001", "kills its worker", "kills its worker", "0.0")
    needs_weights: bool = False

    def run(self, candidate: LoadedCandidate) -> CheckResult:
        if "crash" in candidate.source:
            os._exit(70)
        return CheckResult(self.name, Status.PASS, "did not crash")
