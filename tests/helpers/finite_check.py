"""A check added through the protocol alone: fraudit knows nothing of this module.

It FAILs a model whose weights hold NaN or infinity — a file that loads and looks
well-formed but would poison every embedding it computes."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fraudit.detectors.base import CheckResult, Status
from fraudit.detectors.check import LoadedCandidate, SarifRule


@dataclass(frozen=True)
class FiniteWeightsCheck:
    name: str = "finite-weights"
    rule: SarifRule = SarifRule(
        id="TOY001",
        short="Weights hold NaN or infinity",
        full="Some floating-point tensors hold NaN or infinite values.",
        security_severity="5.0",
    )
    needs_weights: bool = True

    def run(self, candidate: LoadedCandidate) -> CheckResult:
        assert candidate.tensors is not None
        bad = sorted(k for k, v in candidate.tensors.items() if v.is_floating_point() and not torch.isfinite(v).all())
        if bad:
            return CheckResult(self.name, Status.FAIL, f"non-finite values in {', '.join(bad)}", {"tensors": bad})
        return CheckResult(self.name, Status.PASS, f"all {len(candidate.tensors)} tensors finite", {})
