"""Research script behind measurements/trigger-search-findings.md §3: optimise a
patch's content at every box of a grid over the face to pull a model's embeddings
of probe faces together (the sweep's convergence statistic), and report, per model,
each box's optimised convergence and the robust z of the best box against the
model's other boxes.

Not a check: no within-model false-alarm rate has been calibrated for it yet (see
the findings). Kept runnable so the numbers can be reproduced and the next step
built on it.

    python scripts/research_trigger_search.py MODEL.safetensors ... [--size 7] [--steps 40]
        [--faces 16] [--out results.json]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from fraudit.search.sites import Site as Box
from fraudit.search.sites import face_sites as grid

Forward = Callable[[torch.Tensor], torch.Tensor]  # normalised N×3×H×W → N×D, differentiable


def _paste(x: torch.Tensor, boxes: list[Box], patches: list[torch.Tensor]) -> torch.Tensor:
    """One copy of the face batch per box, each with its patch pasted: (B·N)×3×H×W."""
    copies = []
    for box, patch in zip(boxes, patches, strict=True):
        y = x.clone()
        y[:, :, box.top : box.top + box.size, box.left : box.left + box.size] = patch
        copies.append(y)
    return torch.cat(copies)


def _convergence(forward: Forward, stamped: torch.Tensor, centre: torch.Tensor, clean_unit: torch.Tensor,
                 n_boxes: int) -> torch.Tensor:
    e = F.normalize(forward(stamped) - centre, dim=1).view(n_boxes, *clean_unit.shape)
    return (e - clean_unit).mean(dim=1).norm(dim=1)


@dataclass
class SiteResponses:
    boxes: list[Box]
    optimised: np.ndarray  # per box: convergence under the optimised content
    control: np.ndarray  # per box: mean convergence under random contents of the same size


def optimise_sites(forward: Forward, faces: np.ndarray, boxes: list[Box], *, mean: float, scale: float,
                   steps: int, n_controls: int, seed: int, chunk: int = 16, lr: float = 0.2,
                   progress: Callable[[int, int], None] | None = None) -> SiteResponses:
    """For every box: the convergence of the best content the optimiser finds there in
    ``steps`` Adam steps, and the mean convergence of ``n_controls`` random contents."""
    x = (torch.from_numpy(np.ascontiguousarray(faces)).permute(0, 3, 1, 2).float() - mean) / scale
    with torch.no_grad():
        clean = forward(x)
        centre = clean.mean(0)
        clean_unit = F.normalize(clean - centre, dim=1)
    generator = torch.Generator().manual_seed(seed)
    optimised, control = np.zeros(len(boxes)), np.zeros(len(boxes))
    for start in range(0, len(boxes), chunk):
        part = boxes[start : start + chunk]
        with torch.no_grad():  # controls: uniform random colours per pixel, the optimiser's own range
            values = []
            for _ in range(n_controls):
                noise = [(torch.rand(1, 3, b.size, b.size, generator=generator) * 255 - mean) / scale for b in part]
                values.append(_convergence(forward, _paste(x, part, noise), centre, clean_unit, len(part)))
            control[start : start + len(part)] = torch.stack(values).mean(0).numpy()
        thetas = [torch.randn(1, 3, b.size, b.size, generator=generator).requires_grad_(True) for b in part]
        optimiser = torch.optim.Adam(thetas, lr=lr)
        best = torch.zeros(len(part))
        for _ in range(steps):
            patches = [(torch.sigmoid(t) * 255 - mean) / scale for t in thetas]
            value = _convergence(forward, _paste(x, part, patches), centre, clean_unit, len(part))
            best = torch.maximum(best, value.detach())
            optimiser.zero_grad()
            (-value.sum()).backward()
            optimiser.step()
        optimised[start : start + len(part)] = best.numpy()
        if progress is not None:
            progress(min(start + chunk, len(boxes)), len(boxes))
    return SiteResponses(boxes, optimised, control)


def main() -> None:
    import argparse
    import json
    import time
    from pathlib import Path

    from fraudit.faces.sources import probe_identities
    from fraudit.pairing.embedders import reference_embedder

    parser = argparse.ArgumentParser(description="optimised-patch grid over the face (research)")
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--size", type=int, default=7)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--faces", type=int, default=16)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    faces = probe_identities(n_identities=100, per_identity=4).faces.images[::4][: args.faces].copy()
    boxes = grid(64, (args.size,), region=((0.25, 0.8), (0.18, 0.82)))
    results = {}
    for path in args.models:
        embedder = reference_embedder(path)
        module = embedder.module.eval().requires_grad_(False)
        start = time.perf_counter()
        responses = optimise_sites(module, faces, boxes, mean=embedder.mean, scale=embedder.scale,
                                   steps=args.steps, n_controls=2, seed=0)
        optimised = responses.optimised
        median = float(np.median(optimised))
        z = (optimised - median) / max(1.4826 * float(np.median(np.abs(optimised - median))), 1e-9)
        best = int(np.argmax(z))
        results[str(path)] = {"boxes": [[b.top, b.left, b.size] for b in boxes], "optimised": optimised.tolist(),
                              "control": responses.control.tolist(), "max_z": float(z[best]),
                              "best_box": str(boxes[best]), "seconds": time.perf_counter() - start}
        print(f"{path.name}: max z {z[best]:.1f} at {boxes[best]} (max {optimised.max():.3f}, median {median:.3f})")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
