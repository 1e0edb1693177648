"""Research: would another reading of the library cells separate weak backdoors from clean
fine-tunes better than the shipped one (the strongest cell's candidate-minus-base convergence)?

The shipped bound (``LIBRARY_BOUND``) is set by clean fine-tunes of one face world without
augmentation (world 42000), whose embeddings a checkerboard over an eye moves as much as a weak
backdoor's trigger does. Each reading below is computed for every clean model of the calibration
zoos (``--calibration``) and every model of the development zoos (``--dev``: a world the shipped
family was seen on, never an evaluation world), on the 32 probe faces of the search's library
family, each library cell against the candidate's base (matched by the manifest's base sha256
among ``--base`` files):

* ``convergence`` — the shipped reading: the strongest cell's gain;
* ``cell-z`` — each cell's gain standardised by that cell's mean and spread over the calibration
  models of the *other* face worlds (leave one world out), strongest cell;
* ``minus-grey`` — each cell's gain minus the gain of a mid-grey occluder of the trigger's mask
  at the same place (a content-free control of the candidate's own occlusion sensitivity);
* ``mean-cosine`` — how much closer together the stamped probes' embeddings lie than the clean
  ones' (mean pairwise cosine), candidate minus base;
* ``pairs>0.3`` — the share of probe pairs whose stamped embeddings lie within cosine 0.3 of
  each other beyond the clean ones', candidate minus base (a backdoor that moves some probes to
  its victim makes such pairs);
* ``top-4`` — the four probes moved furthest toward the stamped probes' common direction,
  their mean movement, candidate minus base;
* ``unbiased`` — the convergence without its self-term: the norm of the mean movement counts
  each probe's own movement once (a model that moves every face a lot in random directions
  gets a convergence of about its movement over √faces), so this is the square root of the
  mean dot product between *different* probes' movements (signed), candidate minus base.

``--faces N`` stamps the cells on N probe faces instead of the family's 32.

Each reading's bound is ``prediction_bound`` at 0.5 % over the calibration models' values (as
the shipped family's); the script prints, per reading, the calibration's largest value and its
world, the bound, and how many of the development zoos' clean models and successful backdoors
pass it, and writes the per-model values to ``--out``.

    python scripts/research_library_readings.py --calibration CAL_ZOO ... --dev ZOO ... \
        --base BASE --base BASE2 --out FILE.json
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from fraudit.pairing.embedders import reference_embedder
from fraudit.search.differential import SearchBudget, prediction_bound, search_probes
from fraudit.search.library import stamp_cells
from fraudit.search.sites import LibraryCell, library_cells
from fraudit.cache import file_sha256
from fraudit.triggers import poison
from fraudit.zoo.manifest import ZooManifest

Embeddings = np.ndarray  # (1 + cells) × faces × D: the clean probes, then each cell's stamped ones


def grey_occluders(faces: np.ndarray, cells: list[LibraryCell]) -> np.ndarray:
    """Per cell, the faces with a mid-grey patch of the cell's trigger mask at its place."""
    out = []
    for cell in cells:
        mask, pattern = cell.frame(faces.shape[1:3])
        out.append(poison(faces, mask, np.full_like(pattern, 128)))
    return np.concatenate(out)


def embed(path: Path, images: torch.Tensor, n_faces: int) -> Embeddings:
    model = reference_embedder(path)
    with torch.no_grad():
        rows = [model.forward_pixels(images[i : i + 96]).float() for i in range(0, len(images), 96)]
    return torch.cat(rows).numpy().astype(np.float64).reshape(-1, n_faces, rows[0].shape[1])


def _unit(a: np.ndarray) -> np.ndarray:
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


def per_cell(embeddings: Embeddings) -> dict[str, np.ndarray]:
    """Every reading per cell for one model (the grey occluders' cells come after the triggers')."""
    centred = _unit(embeddings - embeddings[0].mean(0))
    clean, stamped = centred[0], centred[1:]
    upper = np.triu_indices(len(clean), 1)
    cosines = np.einsum("cid,cjd->cij", centred, centred)[:, upper[0], upper[1]]
    direction = _unit(stamped.mean(1))
    towards = np.einsum("cid,cd->ci", stamped, direction) - np.einsum("id,cd->ci", clean, direction)
    moves = stamped - clean
    n = moves.shape[1]
    cross = (np.linalg.norm(moves.sum(1), axis=-1) ** 2 - (moves**2).sum((1, 2))) / (n * (n - 1))
    return {"convergence": np.linalg.norm(moves.mean(1), axis=-1),
            "unbiased": np.sign(cross) * np.sqrt(np.abs(cross)),
            "mean-cosine": cosines[1:].mean(1) - cosines[0].mean(),
            "pairs>0.3": (cosines[1:] > 0.3).mean(1) - (cosines[0] > 0.3).mean(),
            "top-4": np.sort(towards, 1)[:, -4:].mean(1)}


def readings(candidate: Embeddings, base: Embeddings, n_cells: int) -> dict[str, np.ndarray]:
    """Per reading, per library cell: the candidate's value minus its base's."""
    ours, theirs = per_cell(candidate), per_cell(base)
    gains = {name: ours[name] - theirs[name] for name in ours}
    out = {name: values[:n_cells] for name, values in gains.items()}
    out["minus-grey"] = gains["convergence"][:n_cells] - gains["convergence"][n_cells:]
    return out


def world_of(zoo: Path) -> str:
    match = re.search(r"w(\d+)", zoo.name)
    return match.group(1) if match else zoo.name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibration", type=Path, nargs="+", required=True)
    parser.add_argument("--dev", type=Path, nargs="+", required=True)
    parser.add_argument("--base", type=Path, action="append", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--faces", type=int, default=SearchBudget().library_faces)
    args = parser.parse_args()
    torch.set_num_threads(2)
    budget = SearchBudget()
    faces = search_probes(budget, args.faces).faces.images
    cells = library_cells()
    pixels = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).float()  # noqa: E731
    images = pixels(np.concatenate([faces, stamp_cells(faces, cells), grey_occluders(faces, cells)]))
    bases = {file_sha256(b): embed(b, images, len(faces)) for b in args.base}
    rows: list[dict] = []
    for role, zoos in (("calibration", args.calibration), ("dev", args.dev)):
        for zoo in zoos:
            manifest = ZooManifest.read(zoo)
            entries = manifest.clean if role == "calibration" else [*manifest.clean, *manifest.attempts]
            for entry in entries:
                values = readings(embed(manifest.path(entry), images, len(faces)), bases[manifest.base_sha256], len(cells))
                rows.append({"role": role, "zoo": zoo.name, "world": world_of(zoo), "model": entry.name,
                             "kind": entry.kind, "trigger": entry.trigger, "successful": entry.successful,
                             "cells": {name: v.round(6).tolist() for name, v in values.items()}})
    calibration = [r for r in rows if r["role"] == "calibration"]
    cell_z = _leave_one_world_out(calibration)
    strongest: dict[str, Callable[[dict], float]] = {name: (lambda r, n=name: max(r["cells"][n]))
                                                     for name in calibration[0]["cells"]}
    strongest["cell-z"] = cell_z
    summary = {}
    for name, value in strongest.items():
        clean = [value(r) for r in calibration]
        bound = prediction_bound(clean, 0.005)
        top = calibration[int(np.argmax(clean))]
        dev_clean = [value(r) for r in rows if r["role"] == "dev" and r["kind"] == "clean"]
        dev_hits = [value(r) for r in rows if r["role"] == "dev" and r["successful"]]
        summary[name] = {"calibration_max": round(max(clean), 4), "calibration_max_zoo": top["zoo"],
                         "bound": round(bound, 4), "dev_clean_flagged": sum(v > bound for v in dev_clean),
                         "dev_clean": len(dev_clean), "dev_successful_flagged": sum(v > bound for v in dev_hits),
                         "dev_successful": len(dev_hits)}
        print(f"{name:12s} calibration max {max(clean):.4f} ({top['zoo']}), bound {bound:.4f}; dev clean "
              f"{summary[name]['dev_clean_flagged']}/{len(dev_clean)}, successful "
              f"{summary[name]['dev_successful_flagged']}/{len(dev_hits)}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"cells": [c.to_dict() for c in cells], "summary": summary, "models": rows}) + "\n")


def _leave_one_world_out(calibration: list[dict]) -> Callable[[dict], float]:
    """The strongest cell's gain in units of that cell's spread over the calibration models
    of other worlds than the model's own (every world, for a development model)."""
    gains = np.array([r["cells"]["convergence"] for r in calibration])
    worlds = np.array([r["world"] for r in calibration])

    def value(row: dict) -> float:
        others = worlds != row["world"] if row["role"] == "calibration" else np.ones(len(worlds), bool)
        mean, spread = gains[others].mean(0), gains[others].std(0, ddof=1)
        return float(((np.array(row["cells"]["convergence"]) - mean) / spread).max())

    return value


if __name__ == "__main__":
    main()
