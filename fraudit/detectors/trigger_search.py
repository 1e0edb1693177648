"""Check 4, trigger search (beyond the thesis): does an optimised patch — or one of
the library's triggers, stamped exactly — move the candidate's embeddings of many
identities together, where it does not move the model the candidate was fine-tuned
from? (``fraudit.search.differential``, ``fraudit.search.library``)

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
from fraudit.search.differential import (BLEND_BOUND, BOUND, CALIBRATION, LIBRARY_BOUND, LibraryBound, LinearBound,
                                         SearchBudget, SearchResult, differential_search, search_probes)
from fraudit.search.library import LibraryResult, library_search, unmirrored_caveat
from fraudit.triggers import poison

NAME = "trigger-search"
RULE = SarifRule(
    id="FRAUDIT004",
    short="A patch moves the model's embeddings together where its base does not",
    full="An optimised patch at one place on the face (or a trigger of fraudit's library stamped there) "
    "pulls the embeddings of many identities together in the candidate but not in the model it was "
    "fine-tuned from: the behaviour a backdoor's trigger adds.",
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
    library_bound: LibraryBound = LIBRARY_BOUND  # one per cell, a constant, or a line in the flip sensitivity
    images: Path | None = None
    name: str = NAME
    rule: SarifRule = RULE
    needs_weights: bool = True

    def run(self, candidate: LoadedCandidate) -> CheckResult:
        evidence: dict = {"base": self.base, "budget": self.budget.to_dict(), "bound": self.bound,
                          "blend_bound": self.blend_bound, "library_bound": self.library_bound.to_record(),
                          "false_alarm": self.budget.false_alarm, "calibration": CALIBRATION}
        if not self.budget.families:
            return CheckResult(NAME, Status.INCONCLUSIVE, "not run: the budget searches nothing (no patch sites, "
                               "no blend, no library cells)", evidence)
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
        input_size = max(model.input_size, reference.input_size)
        try:
            result = differential_search(model, reference, probes.faces.images, self.budget,  # type: ignore[arg-type]
                                         input_size=input_size) if self.budget.sites(probes.faces.images.shape[1]) else None
            library = library_search(model, reference, search_probes(self.budget, self.budget.library_faces).faces.images,
                                     input_size=input_size, images_per_batch=self.budget.images_per_batch) \
                if self.budget.library else None
        except FrauditError as exc:
            return CheckResult(NAME, Status.INCONCLUSIVE, f"not run: {exc}", evidence)
        searched = self.budget.describe(probes.faces.images.shape[1])
        evidence |= {"searched": searched, "probes": probes.source,
                     "seconds": round(sum(r.seconds for r in (result, library) if r is not None), 2)}
        findings = _findings(result, library, self.bound, self.blend_bound, self.library_bound,
                             len(probes.identities), self.budget.library_faces, probes.faces.images.shape[1])
        if result is not None:
            evidence["ranked"] = [result.site_dict(i) for i in result.ranked()]
            evidence["site_gains"] = [[s.top, s.left, s.size, round(float(g), 5)]
                                      for s, g in zip(result.sites, result.gains) if not s.blend]
        if library is not None:
            limits = self.library_bound.limits(library.flip_sensitivity)
            evidence["library_cells"] = [library.cell_dict(i) | {"bound": round(float(limits[i]), 5)}
                                         for i in range(len(library.cells))]
        for finding in findings:
            evidence[finding.family] = finding.evidence
        # the finding furthest past its bound is what the report shows and names; else the strongest patch
        top = max((f for f in findings if f.flagged), key=lambda f: f.gain / f.bound, default=None)
        shown = top or findings[0]
        faces = probes.faces.images
        evidence["patch_png_base64"] = png_base64(shown.pattern)
        # what a reviewer looks at: the pattern worn by probe faces, and where the search found what
        evidence["stamped_png_base64"] = png_base64(face_row(shown.wear(faces[:4])))
        evidence["frame_size"] = int(faces.shape[1])
        if self.images is not None:
            evidence["image"] = str(_save_image(self.images, candidate.source, shown, faces[0]))
        if top is None:
            parts = [f"{f.label}: {f.gain:.3f} (bound {f.bound:.3f})" for f in findings]
            return CheckResult(NAME, Status.PASS, f"nothing beyond clean fine-tunes ({'; '.join(parts)}); "
                               f"searched {searched}", evidence, "nothing beyond clean fine-tunes: " + "; ".join(parts))
        headline = f"{top.headline}: gain {top.gain:.3f} > {top.bound:.3f}"
        # a library cell over a backdoor's place is flagged without being its trigger: say what else passed
        others = [f"{f.label} {f.gain:.3f} (bound {f.bound:.3f})" for f in findings if f.flagged and f is not top]
        also = f"; also past their bounds: {', '.join(others)}" if others else ""
        caveat = unmirrored_caveat(library.flip_sensitivity) if library is not None else None
        if caveat:
            evidence["caveat"] = caveat
            also += f"; {caveat}"
        if not self.budget.calibrated_for(top.searched):
            return CheckResult(NAME, Status.WARN, f"{top.moved}: above {top.bound:.3f}, the clean fine-tunes' bound, "
                               f"which was set for the default budget, not this one{also}", evidence,
                               f"{headline} (another budget)")
        return CheckResult(NAME, Status.FAIL, f"{top.moved}: above {top.bound:.3f}, the clean fine-tunes' bound (false "
                           f"alarm {self.budget.false_alarm:.1%} for the search){also}", evidence, headline)


@dataclass(frozen=True)
class _Finding:
    """One family's strongest result: what it is, how far it went, and its picture."""

    family: str  # "strongest" (patch sites), "blend" or "library": its evidence key
    label: str
    gain: float
    bound: float
    evidence: dict
    moved: str  # the sentence a FAIL says
    headline: str
    pattern: np.ndarray  # the pattern alone, uint8 H×W×3
    mask: np.ndarray  # where and how opaque it lies on the frame, H×W
    frame: np.ndarray  # the pattern at its place on the frame, H×W×3

    @property
    def flagged(self) -> bool:
        return self.gain > self.bound

    @property
    def searched(self) -> str:
        """The search family it comes from (``SearchBudget.families``)."""
        return "patch" if self.family == "strongest" else self.family

    def wear(self, faces: np.ndarray) -> np.ndarray:
        """``faces`` (N×H×W×3 uint8) with the pattern laid on them (eq. 2.1)."""
        return poison(faces, self.mask, self.frame)


def _findings(result: SearchResult | None, library: LibraryResult | None, bound: float, blend_bound: float,
              library_bound: LibraryBound, identities: int, library_identities: int, frame_size: int) -> list[_Finding]:
    found = []
    if result is not None:
        for family, index, limit in (("strongest", result.strongest, bound), ("blend", result.blend, blend_bound)):
            if index is None:
                continue
            site, z = result.sites[index], result.z[index]
            mask, frame = np.zeros((frame_size, frame_size), np.float32), np.zeros((frame_size, frame_size, 3), np.uint8)
            mask[site.window] = site.alpha
            frame[site.window] = result.patches[index]
            where = "" if site.blend else f"; z = {z:.1f} against its other sites"
            moved = (f"{site if site.blend else f'a patch at {site}'} moves the embeddings of {identities} identities "
                     f"together by {result.gains[index]:.3f} more than the base does (candidate "
                     f"{result.candidate_convergence[index]:.2f}, base {result.reference_convergence[index]:.2f}{where})")
            found.append(_Finding(family, "blend" if site.blend else "strongest patch", float(result.gains[index]),
                                  limit, result.site_dict(index), moved,
                                  "the blend" if site.blend else f"patch {site}", result.patches[index], mask, frame))
    if library is not None:
        limits = library_bound.limits(library.flip_sensitivity)
        index = library.furthest(limits)
        cell = library.cells[index]
        mask, frame = cell.frame((frame_size, frame_size))
        rows, cols = np.nonzero(mask)
        limit = float(limits[index])
        follows_flip = isinstance(library_bound, LinearBound) and not library_bound.is_constant
        sets = ", which sets the cells' bound" if follows_flip else ""
        moved = (f"{cell} moves the embeddings of {library_identities} identities together by "
                 f"{library.gains[index]:.3f} more than the base does (candidate "
                 f"{library.candidate_convergence[index]:.2f}, base {library.reference_convergence[index]:.2f}; "
                 f"flip sensitivity {library.flip_sensitivity:+.3f} over the base's{sets})")
        evidence = library.cell_dict(index) | {"flip_sensitivity": round(library.flip_sensitivity, 5),
                                               "bound": round(limit, 5)}
        label = "strongest library cell" if np.ptp(limits) == 0 else "library cell furthest over its bound"
        found.append(_Finding("library", label, float(library.gains[index]), limit, evidence, moved,
                              f"library {cell.trigger} at {cell.centre}",
                              frame[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1], mask, frame))
    return found


def _save_image(folder: Path, source: str, finding: _Finding, face: np.ndarray, *, zoom: int = 4) -> Path:
    """A probe face, the pattern found laid on it, and the pattern alone, enlarged."""
    alone = np.where(finding.mask[..., None] > 0, finding.frame, 255).astype(np.uint8)
    picture = face_row([face, finding.wear(face[None])[0], alone], zoom=zoom, gap=0)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (re.sub(r"[^A-Za-z0-9._-]+", "_", source).strip("_")[-120:] + "-trigger.png")
    path.write_bytes(png_bytes(picture))
    return path
