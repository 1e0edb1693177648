"""Check 4, trigger search (beyond the thesis): does an optimised patch move the
candidate's embeddings of many identities together, where it does not move the
model the candidate was fine-tuned from? (``fraudit.search.differential``)

It needs the candidate's base (``--base``, the same base a registry builds its
weight bank from) and gradients through the candidate: a torch checkpoint of a
registered architecture. Without either it is INCONCLUSIVE with the reason. Its
null is the candidate's own other sites, so no zoo of the candidate's architecture
is needed; a PASS says what was searched, never that no trigger exists.
"""

from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from fraudit.detectors.base import CheckResult, Status
from fraudit.detectors.check import LoadedCandidate, SarifRule
from fraudit.errors import FrauditError
from fraudit.search.differential import (BOUND_Z, CALIBRATION, SearchBudget, SearchResult, differential_search,
                                         search_probes)

NAME = "trigger-search"
RULE = SarifRule(
    id="FRAUDIT004",
    short="A patch moves the model's embeddings together where its base does not",
    full="An optimised patch at one place on the face pulls the embeddings of many identities "
    "together in the candidate but not in the model it was fine-tuned from: the behaviour "
    "a backdoor's trigger adds.",
    security_severity="8.1",
)


@dataclass(frozen=True)
class TriggerSearchCheck:
    """``base``: the checkpoint the candidate was fine-tuned from (a path or ``hf://``);
    ``images``: a folder to save the strongest patch found, stamped on a probe face."""

    base: str
    budget: SearchBudget = field(default_factory=SearchBudget)
    bound_z: float = BOUND_Z
    images: Path | None = None
    name: str = NAME
    rule: SarifRule = RULE
    needs_weights: bool = True

    def run(self, candidate: LoadedCandidate) -> CheckResult:
        evidence: dict = {"base": self.base, "budget": self.budget.to_dict(), "bound_z": self.bound_z,
                          "calibration": CALIBRATION}
        try:
            model = candidate.embedder
            reference = candidate.trusted_models(self.base)
        except FrauditError as exc:
            return CheckResult(NAME, Status.INCONCLUSIVE, f"not run: {exc}", evidence)
        for side, embedder in (("candidate", model), ("base", reference)):
            if not hasattr(embedder, "forward_pixels"):
                return CheckResult(NAME, Status.INCONCLUSIVE,
                                   f"not run: the {side} runs in {type(embedder).__name__}, which gives the search "
                                   "no gradient (it needs a torch checkpoint or an ONNX graph)", evidence)
        probes = search_probes(self.budget)
        try:
            result = differential_search(model, reference, probes.faces.images, self.budget,  # type: ignore[arg-type]
                                         input_size=max(model.input_size, reference.input_size))
        except FrauditError as exc:
            return CheckResult(NAME, Status.INCONCLUSIVE, f"not run: {exc}", evidence)
        strongest = result.strongest
        evidence |= {"searched": self.budget.describe(probes.faces.images.shape[1]), "probes": probes.source,
                     "strongest": result.site_dict(strongest), "ranked": [result.site_dict(i) for i in result.ranked()],
                     "median_gain": float(np.median(result.gains)), "seconds": round(result.seconds, 2),
                     "patch_png_base64": base64.b64encode(_png(result.patches[strongest])).decode()}
        if self.images is not None:
            evidence["image"] = str(_save_image(self.images, candidate.source, result, probes.faces.images[0]))
        z = float(result.z[strongest])
        site = result.sites[strongest]
        if z > self.bound_z:
            summary = (f"a patch at {site} pulls the faces of {len(probes.identities)} identities together "
                       f"(convergence {result.candidate_convergence[strongest]:.2f}, base "
                       f"{result.reference_convergence[strongest]:.2f}): z = {z:.1f} against its other sites, "
                       f"bound {self.bound_z:.1f}")
            return CheckResult(NAME, Status.FAIL, summary, evidence)
        summary = (f"no site stands out (strongest {site}, z = {z:.1f}, bound {self.bound_z:.1f}); "
                   f"searched {self.budget.describe(probes.faces.images.shape[1])}")
        return CheckResult(NAME, Status.PASS, summary, evidence)


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _save_image(folder: Path, source: str, result: SearchResult, face: np.ndarray, *, zoom: int = 4) -> Path:
    """The strongest patch stamped on a probe face, beside the patch alone, enlarged."""
    index = result.strongest
    site, patch = result.sites[index], result.patches[index]
    stamped = face.copy()
    stamped[site.top : site.top + site.size, site.left : site.left + site.size] = patch
    alone = np.full_like(face, 255)
    alone[site.top : site.top + site.size, site.left : site.left + site.size] = patch
    picture = np.concatenate([face, stamped, alone], axis=1).repeat(zoom, axis=0).repeat(zoom, axis=1)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (re.sub(r"[^A-Za-z0-9._-]+", "_", source).strip("_")[-120:] + "-trigger.png")
    Image.fromarray(picture).save(path)
    return path
