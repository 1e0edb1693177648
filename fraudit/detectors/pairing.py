"""Check 3, model pairing (thesis ch. 5 + fraudit's offline trigger sweep): does
the candidate stop agreeing with a trusted face model when a trigger is present?

INCONCLUSIVE — never PASS — when the candidate cannot be run as an embedder, the
trusted model is not installed, or no clean-pair null exists for this
architecture, trusted model and setup (a sweep without a null has no false-alarm
rate to state). The work itself is ``fraudit.pairing.audit.audit_pair``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fraudit.detectors.base import CheckResult, Status
from fraudit.detectors.check import LoadedCandidate, SarifRule
from fraudit.errors import CorruptFileError, FrauditError
from fraudit.pairing.audit import PairingSetup, audit_pair, load_null
from fraudit.pairing.embedders import DLIB
from fraudit.pairing.sweep import DEFAULT_FALSE_ALARM, LIMITS
from fraudit.resources import shipped_relative

NAME = "pairing"
RULE = SarifRule(
    id="FRAUDIT003",
    short="Embeddings disagree with a trusted model under a trigger",
    full="When a candidate trigger is stamped on faces, the model's embeddings stop agreeing "
    "with a trusted face model's: the behaviour of a backdoor.",
    security_severity="8.1",
)


@dataclass(frozen=True)
class PairingCheck:
    """``trusted``: ``dlib`` or a model source; ``null``: a sweep null file (default:
    the one fraudit ships for the candidate's architecture and this trusted model)."""

    trusted: str = DLIB
    null: Path | None = None
    setup: PairingSetup = field(default_factory=PairingSetup)
    false_alarm: float = DEFAULT_FALSE_ALARM
    name: str = NAME
    rule: SarifRule = RULE
    needs_weights: bool = True

    def run(self, candidate: LoadedCandidate) -> CheckResult:
        evidence: dict = {"trusted": self.trusted, "setup": self.setup.to_dict(), "limits": LIMITS}
        try:
            model = candidate.embedder
            trusted = candidate.trusted_models(self.trusted)
        except FrauditError as exc:
            return CheckResult(NAME, Status.INCONCLUSIVE, f"not run: {exc}", evidence)
        try:
            null, null_path = load_null(self.null, candidate=model, trusted=trusted, setup=self.setup)
        except CorruptFileError as exc:
            return CheckResult(NAME, Status.ERROR, f"sweep null unreadable: {exc}", evidence)
        except FrauditError as exc:
            return CheckResult(NAME, Status.INCONCLUSIVE, str(exc), evidence)
        evidence["null"] = {"path": str(null_path), "clean_pairs": len(null.pairs), "sha256": null.sha256,
                            "shipped": shipped_relative(null_path) is not None}
        audit = audit_pair(model, trusted, self.setup, null=null, null_path=null_path, false_alarm=self.false_alarm)
        evidence |= audit.evidence()
        return CheckResult(NAME, Status.FAIL if audit.failed else Status.PASS, audit.summary(), evidence,
                           audit.headline())
