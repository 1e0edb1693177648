"""The library's own triggers, stamped exactly, through the candidate and its base.

The optimised search holds 8-px patches: a library trigger (a 16-px checkerboard, a
14-px flower) does not fit one site, and a backdoor answers its trigger's palette and
grain at its place (measurements/search-library-controls), so the search's best patch
at the right site can still miss it. Here every library trigger is laid on the probe
faces exactly — at its own place and at four more over the face, since the library's
random placement teaches a backdoor to answer anywhere — and read with the search's
statistic, candidate-minus-base convergence. No optimisation, one batch of forward
passes per model: 0.2–0.3 s at 64×64 (bench/bench_search.py).

Its bound comes, like the patches', from clean fine-tunes only (``LIBRARY_BOUND`` in
``fraudit.search.differential``). One more reading of the candidate is reported beside
the cells, its flip sensitivity (``flip_sensitivity``): a fine-tune without augmentation
answers an occluder over an eye as a weak backdoor answers its trigger, and it shows
itself by how much a horizontal mirror moves its embeddings (a bound that follows it
was tried: measurements/search-eval-library-flip/). These cells are the library's triggers, which the
sweep and this family search; the held-out triggers the evaluations use are kept
apart in ``fraudit.zoo.heldout`` and never stamped here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from fraudit.search.differential import Convergence, PixelModel, batch_images
from fraudit.search.sites import LibraryCell, library_cells
from fraudit.triggers import poison


# Above this the candidate answers a mirror as fine-tunes on faces never mirrored do (the
# reference CNN's 0.24–0.28, MobileFace's 0.12–0.13), against 0.01–0.08 for every fine-tune
# on augmented faces measured (measurements/search-eval-library-flip/). The bounds hold for
# the latter; some clean models of the former exceed them.
UNMIRRORED_FLIP = 0.10


def unmirrored_caveat(flip_sensitivity: float) -> str | None:
    """What a FAIL must say of a candidate whose flip sensitivity is an un-mirrored fine-tune's."""
    if flip_sensitivity <= UNMIRRORED_FLIP:
        return None
    return (f"its flip sensitivity ({flip_sensitivity:+.3f} over its base's) is that of a fine-tune on faces never "
            "mirrored, some of whose clean models exceed these bounds too")


@dataclass
class LibraryResult:
    """Per cell: the gain, and the two convergences it is the difference of."""

    cells: list[LibraryCell]
    gains: np.ndarray
    candidate_convergence: np.ndarray
    reference_convergence: np.ndarray
    flip_sensitivity: float  # the candidate's, minus its base's (``flip_sensitivity``)
    seconds: float

    @property
    def strongest(self) -> int:
        return int(np.argmax(self.gains))

    def furthest(self, limits: np.ndarray) -> int:
        """The cell furthest over (or least under) its bound."""
        return int(np.argmax(self.gains - limits))

    def cell_dict(self, index: int) -> dict[str, Any]:
        return {**self.cells[index].to_dict(), "gain": float(self.gains[index]),
                "candidate_convergence": float(self.candidate_convergence[index]),
                "reference_convergence": float(self.reference_convergence[index])}


def flip_sensitivity(model: PixelModel, faces: torch.Tensor) -> float:
    """How far a horizontal mirror moves the model's embeddings of ``faces`` (N×3×H×W
    pixels): the mean of 1 − cos(embedding, embedding of the mirrored face). Faces are
    close to symmetric, and training with flips makes a model answer both sides alike."""
    with torch.no_grad():
        as_is, mirrored = model.forward_pixels(faces).float(), model.forward_pixels(faces.flip(-1)).float()
    return float(1 - F.cosine_similarity(as_is, mirrored, dim=1).mean())


def stamp_cells(faces: np.ndarray, cells: list[LibraryCell]) -> np.ndarray:
    """One copy of ``faces`` (N×H×W×3 uint8) per cell, its trigger laid on: (C·N)×H×W×3."""
    return np.concatenate([poison(faces, *cell.frame(faces.shape[1:3])) for cell in cells])


def library_search(candidate: PixelModel, reference: PixelModel, faces: np.ndarray, *, input_size: int = 64,
                   images_per_batch: int = 96) -> LibraryResult:
    """Every library cell's candidate-minus-reference convergence on ``faces``
    (uint8 N×H×W×3 probe faces, one per identity); the models and ``input_size`` as in
    ``fraudit.search.differential.differential_search``."""
    start = time.perf_counter()
    cells = library_cells()
    pixels = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).float()  # noqa: E731
    x, stamped = pixels(faces), pixels(stamp_cells(faces, cells))
    per_batch = batch_images(images_per_batch, input_size, len(x)) * len(x)  # whole cells to a batch
    readings = []
    with torch.no_grad():
        for model in (candidate, reference):
            convergence = Convergence(model, x)
            readings.append(torch.cat([convergence(stamped[i : i + per_batch], len(stamped[i : i + per_batch]) // len(x))
                                       for i in range(0, len(stamped), per_batch)]).numpy().astype(np.float64))
        flip = flip_sensitivity(candidate, x) - flip_sensitivity(reference, x)
    ours, theirs = readings
    return LibraryResult(cells, ours - theirs, ours, theirs, flip, time.perf_counter() - start)
