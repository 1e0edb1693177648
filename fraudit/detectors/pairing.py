"""Check 3, model pairing (thesis ch. 5 + fraudit's offline trigger sweep): does
the candidate stop agreeing with a trusted face model when a trigger is present?

INCONCLUSIVE — never PASS — when the candidate cannot be run as an embedder, the
trusted model is not installed, or no clean-pair null exists for this
architecture, trusted model and setup (a sweep without a null has no false-alarm
rate to state).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from fraudit.detectors.base import CheckResult, Status
from fraudit.errors import FrauditError
from fraudit.models.registry import ArchitectureMatch
from fraudit.pairing.audit import PairingSetup, pair_models, reference_null_path, sweep_inputs, sweep_pair
from fraudit.pairing.embedders import DLIB, embedder_from_loaded, load_embedder
from fraudit.pairing.sweep import DEFAULT_FALSE_ALARM, LIMITS, SWEEP_FNMR, SweepNull, describe, judge

NAME = "pairing"


@dataclass(frozen=True)
class PairingCheck:
    """``trusted``: ``dlib`` or a model source; ``null``: a sweep null file (default:
    the one fraudit ships for the candidate's architecture and this trusted model)."""

    trusted: str = DLIB
    null: Path | None = None
    setup: PairingSetup = field(default_factory=PairingSetup)
    false_alarm: float = DEFAULT_FALSE_ALARM

    def run(self, architecture: ArchitectureMatch, tensors: dict[str, torch.Tensor],
            files: tuple[Path, ...], formats: tuple[str, ...], name: str) -> CheckResult:
        evidence: dict = {"trusted": self.trusted, "setup": self.setup.to_dict(), "limits": LIMITS}
        try:
            candidate = embedder_from_loaded(name, tensors, files, formats)
            trusted = load_embedder(self.trusted)
        except FrauditError as exc:
            return CheckResult(NAME, Status.INCONCLUSIVE, f"not run: {exc}", evidence)
        null_path = self.null or reference_null_path(candidate.architecture, trusted)
        if not null_path.is_file():
            return CheckResult(NAME, Status.INCONCLUSIVE,
                               f"no clean-pair null for {architecture.id} with {trusted.name} "
                               f"(build one with 'fraudit pair null CLEAN... --trusted {self.trusted} --out FILE', pass it with --pair-null FILE)",
                               evidence)
        try:
            null = SweepNull.load(null_path)
        except (FrauditError, OSError, json.JSONDecodeError, KeyError) as exc:
            return CheckResult(NAME, Status.ERROR, f"sweep null unreadable: {exc}", evidence)
        evidence["null"] = {"path": str(null_path), "clean_pairs": len(null.pairs)}
        if null.setup != self.setup.null_key(trusted):
            return CheckResult(NAME, Status.INCONCLUSIVE,
                               f"{null_path.name} was built with another setup or trusted model; rebuild it", evidence)

        pair = pair_models(candidate, trusted, self.setup)
        inputs = sweep_inputs(self.setup)
        verdict = judge(sweep_pair(pair, candidate, trusted, inputs), null, inputs.probes, false_alarm=self.false_alarm)
        evidence |= {
            "pair": {"translator": str(pair.kind), "faces": pair.info["faces"], "threshold_fnmr": SWEEP_FNMR,
                     "threshold": pair.thresholds[SWEEP_FNMR], "genuine_mean": float(pair.genuine.mean()),
                     "impostor_mean": float(pair.impostor.mean())},
            "probes": inputs.probes.source,
            "sweep": verdict.to_dict(),
        }
        worst = verdict.worst
        if verdict.failed:
            top = verdict.findings[0]
            cells = sorted({f.cell for f in verdict.findings}, key=lambda c: -max(f.z for f in verdict.findings if f.cell == c))
            names = ", ".join(n for n, _ in top.identities[:3])
            summary = (f"trigger {top.cell}: {describe(top, trusted.name)} (z={top.z:.1f} > {verdict.bound:.1f}, "
                       f"false alarm {100 * self.false_alarm:g}%, {len(null.pairs)} clean pairs); "
                       f"flagged triggers: {', '.join(cells)}; most affected probe identities: {names}")
            return CheckResult(NAME, Status.FAIL, summary, evidence)
        summary = (f"no library trigger moves it away from {trusted.name} beyond clean pairs "
                   f"(worst {worst}: z={verdict.z[worst]:.1f} ≤ {verdict.bound:.1f}, false alarm "
                   f"{100 * self.false_alarm:g}%, {len(null.pairs)} clean pairs)")
        return CheckResult(NAME, Status.PASS, summary, evidence)
