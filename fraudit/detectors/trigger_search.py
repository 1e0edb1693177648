"""Check 4, trigger search (beyond the thesis): does an optimised patch move the
candidate's embeddings of many identities together, where it does not move the
model the candidate was fine-tuned from? (``fraudit.search.differential``)

It needs the candidate's base (``--base``, the same base a registry builds its
weight bank from) and gradients through the candidate: a torch checkpoint of a
registered architecture. Without either it is INCONCLUSIVE with the reason. Its
control is the same patch through the base, so no zoo of the candidate's
architecture is needed; a PASS says what was searched, never that no trigger exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fraudit.detectors.base import CheckResult, Status
from fraudit.detectors.check import LoadedCandidate, SarifRule
from fraudit.errors import FrauditError
from fraudit.pictures import face_row, png_base64, png_bytes
from fraudit.search.differential import (BLEND_BOUND, BOUND, CALIBRATION, FALSE_ALARM, SearchBudget, SearchResult, differential_search,
                                         search_probes)
from fraudit.triggers import poison

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
    bound: float = BOUND
    blend_bound: float = BLEND_BOUND
    images: Path | None = None
    name: str = NAME
    rule: SarifRule = RULE
    needs_weights: bool = True

    def run(self, candidate: LoadedCandidate) -> CheckResult:
        evidence: dict = {"base": self.base, "budget": self.budget.to_dict(), "bound": self.bound,
                          "blend_bound": self.blend_bound, "false_alarm": FALSE_ALARM, "calibration": CALIBRATION}
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
        searched = self.budget.describe(probes.faces.images.shape[1])
        evidence |= {"searched": searched, "probes": probes.source, "seconds": round(result.seconds, 2),
                     "ranked": [result.site_dict(i) for i in result.ranked()]}
        findings = []
        for name, index, bound in (("strongest", result.strongest, self.bound), ("blend", result.blend, self.blend_bound)):
            if index is None:
                continue
            evidence[name] = result.site_dict(index)
            if result.gains[index] > bound:
                findings.append((index, bound))
        # the finding furthest past its bound is what the report shows and names
        top = max(findings, key=lambda f: result.gains[f[0]] / f[1]) if findings else None
        shown = top[0] if top else result.strongest if result.strongest is not None else result.blend
        assert shown is not None  # a budget searches patches, the blend or both
        evidence["patch_png_base64"] = png_base64(result.patches[shown])
        # what a reviewer looks at: the pattern worn by probe faces, and where the search found what
        evidence["stamped_png_base64"] = png_base64(face_row(_wearing(result, shown, probes.faces.images[:4])))
        evidence["frame_size"] = int(probes.faces.images.shape[1])
        evidence["site_gains"] = [[s.top, s.left, s.size, round(float(g), 5)]
                                  for s, g in zip(result.sites, result.gains) if not s.blend]
        if self.images is not None:
            evidence["image"] = str(_save_image(self.images, candidate.source, result, shown, probes.faces.images[0]))
        if top is None:
            parts = [f"{s}: {result.gains[i]:.3f} (bound {b:.3f})" for s, i, b in
                     (("strongest patch", result.strongest, self.bound), ("blend", result.blend, self.blend_bound))
                     if i is not None]
            return CheckResult(NAME, Status.PASS, f"nothing beyond clean fine-tunes ({'; '.join(parts)}); "
                               f"searched {searched}", evidence, "nothing beyond clean fine-tunes: " + "; ".join(parts))
        index, bound = top
        site, z = result.sites[index], result.z[index]
        where = "" if site.blend else f"; z = {z:.1f} against its other sites"
        moved = (f"{site if site.blend else f'a patch at {site}'} moves the embeddings of "
                 f"{len(probes.identities)} identities together by {result.gains[index]:.3f} more than the base does "
                 f"(candidate {result.candidate_convergence[index]:.2f}, base {result.reference_convergence[index]:.2f}"
                 f"{where})")
        headline = f"{'the blend' if site.blend else f'patch {site}'}: gain {result.gains[index]:.3f} > {bound:.3f}"
        if not self.budget.calibrated:
            return CheckResult(NAME, Status.WARN, f"{moved}: above {bound:.3f}, the clean fine-tunes' bound, which was "
                               "set for the default budget, not this one", evidence, f"{headline} (another budget)")
        return CheckResult(NAME, Status.FAIL, f"{moved}: above {bound:.3f}, the clean fine-tunes' bound (false alarm "
                           f"{FALSE_ALARM:.0%} for the search)", evidence, headline)


def _wearing(result: SearchResult, index: int, faces: np.ndarray) -> np.ndarray:
    """``faces`` (N×H×W×3 uint8) with the pattern found at ``index`` laid on them (eq. 2.1)."""
    site = result.sites[index]
    mask, frame = np.zeros(faces.shape[1:3], np.float32), np.zeros(faces.shape[1:], np.uint8)
    mask[site.window] = site.alpha
    frame[site.window] = result.patches[index]
    return poison(faces, mask, frame)


def _save_image(folder: Path, source: str, result: SearchResult, index: int, face: np.ndarray, *,
                zoom: int = 4) -> Path:
    """A probe face, the pattern found at ``index`` laid on it, and the pattern alone, enlarged."""
    site = result.sites[index]
    alone = np.full(face.shape, 255, np.uint8)
    alone[site.top : site.top + site.size, site.left : site.left + site.size] = result.patches[index]
    picture = face_row([face, _wearing(result, index, face[None])[0], alone], zoom=zoom, gap=0)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (re.sub(r"[^A-Za-z0-9._-]+", "_", source).strip("_")[-120:] + "-trigger.png")
    path.write_bytes(png_bytes(picture))
    return path
