"""Research: can the library's own triggers be judged against controls on the candidate
itself (issue 11, item 2), with no clean zoo of its architecture?

Each library trigger is stamped exactly, at its own place and at four places over the
face (the library's random placement answers anywhere), on ``--faces`` probe faces, and
read with the search's statistic: candidate-minus-base convergence (``gain``). Beside
it, at the same cell and under the trigger's mask, two kinds of controls:

* **look-alikes** — the trigger's own distinct colours re-drawn at random over its
  grain (a checkerboard's 4-px cells, a small patch's pixels): same size, place,
  palette, contrast and grain, another arrangement (``--controls`` of them);
* **plain** — one plain patch per colour of the trigger, and a mid-grey one.

If a clean model's trigger gain were one more draw from its controls' gains, the
trigger's standing among them would be a null that travels with the candidate. One
JSON line per model (``--out``; resumes), every cell with the trigger's gain, the
look-alikes' mean, standard deviation and maximum, and the plain patches' maximum.
For research; no detector uses it.

    python scripts/research_library_controls.py ZOO [ZOO ...] --base BASE --out FILE.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from fraudit.faces.sources import probe_identities
from fraudit.pairing.embedders import reference_embedder
from fraudit.search.differential import PROBE_SEED
from fraudit.search.sites import LibraryCell, library_cells
from fraudit.triggers import Trigger, poison, trigger_library
from fraudit.zoo.manifest import ZooManifest

def label(cell: LibraryCell) -> str:
    """How the recorded lines name a cell (the research came first, with the same 15
    cells the search's library family then adopted)."""
    return f"{cell.trigger}@({cell.centre[0]:.2f},{cell.centre[1]:.2f})"


def grain(trigger: Trigger) -> int:
    """The largest block (4, 2 or 1 px) the trigger's pattern is constant on."""
    h, w = trigger.size
    for block in (4, 2):
        if h % block or w % block:
            continue
        blocks = trigger.pattern.reshape(h // block, block, w // block, block, 3)
        if (blocks == blocks[:, :1, :, :1]).all():
            return block
    return 1


def palette(trigger: Trigger) -> np.ndarray:
    return np.unique(trigger.pattern[trigger.alpha > 0.5], axis=0)


def look_alikes(trigger: Trigger, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    h, w = trigger.size
    block = grain(trigger)
    colours = palette(trigger)
    out = []
    while len(out) < count:
        drawn = colours[rng.integers(len(colours), size=(h // block, w // block))]
        pattern = np.repeat(np.repeat(drawn, block, axis=0), block, axis=1)
        if not np.array_equal(pattern, trigger.pattern):
            out.append(pattern)
    return out


def plain(trigger: Trigger) -> list[np.ndarray]:
    return [np.broadcast_to(c, trigger.pattern.shape).copy() for c in (*palette(trigger), np.array([128, 128, 128], np.uint8))]


def convergence(model, faces: torch.Tensor, stamped: torch.Tensor, batch: int = 256) -> np.ndarray:
    """The sweep's convergence of each block of ``len(faces)`` stamped faces."""
    with torch.no_grad():
        clean = model.forward_pixels(faces).float()
        centre = clean.mean(0)
        clean_unit = F.normalize(clean - centre, dim=1)
        moved = torch.cat([model.forward_pixels(stamped[i : i + batch]).float() for i in range(0, len(stamped), batch)])
        unit = F.normalize(moved - centre, dim=1).view(-1, *clean_unit.shape)
        return (unit - clean_unit).mean(dim=1).norm(dim=1).numpy().astype(np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zoos", type=Path, nargs="+")
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--faces", type=int, default=16)
    parser.add_argument("--controls", type=int, default=16)
    args = parser.parse_args()
    done = set()
    if args.out.exists():
        done = {(r["zoo"], r["name"]) for r in map(json.loads, args.out.read_text().splitlines())}
    faces = probe_identities(n_identities=args.faces, per_identity=1, seed=PROBE_SEED).faces.images
    library, rng = trigger_library(), np.random.default_rng(0)
    alikes = {name: look_alikes(t, args.controls, rng) for name, t in library.items()}
    layout, stamped = [], []  # per cell: (look-alikes, plain) counts
    for cell in library_cells():
        trigger = library[cell.trigger]
        patterns = [trigger.pattern, *alikes[cell.trigger], *plain(trigger)]
        layout.append(len(plain(trigger)))
        for pattern in patterns:
            mask, frame = replace(trigger, pattern=pattern).full_frame(faces.shape[1:3], cell.centre)
            stamped.append(poison(faces, mask, frame))
    pixels = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).float()  # noqa: E731
    x, everything = pixels(faces), pixels(np.concatenate(stamped))
    base = convergence(reference_embedder(args.base), x, everything)
    for zoo in args.zoos:
        manifest = ZooManifest.read(zoo)
        for entry in [*manifest.clean, *manifest.attempts]:
            if (zoo.name, entry.name) in done:
                continue
            start = time.perf_counter()
            gains = convergence(reference_embedder(manifest.path(entry)), x, everything) - base
            rows, i = [], 0
            for cell, n_plain in zip(library_cells(), layout):
                trigger, alike = gains[i], gains[i + 1 : i + 1 + args.controls]
                flat = gains[i + 1 + args.controls : i + 1 + args.controls + n_plain]
                rows.append({"cell": label(cell), "gain": float(trigger), "alike_mean": float(alike.mean()),
                             "alike_sd": float(alike.std(ddof=1)), "alike_max": float(alike.max()),
                             "plain_max": float(flat.max())})
                i += 1 + args.controls + n_plain
            record = {"zoo": zoo.name, "name": entry.name, "kind": entry.kind, "trigger": entry.trigger,
                      "placement": str(entry.placement) if entry.placement else None, "recipe": entry.recipe_kind,
                      "successful": entry.successful, "cells": rows, "seconds": round(time.perf_counter() - start, 2)}
            with args.out.open("a") as stream:
                stream.write(json.dumps(record) + "\n")
            print(f"{zoo.name} {entry.name}: max gain {max(r['gain'] for r in rows):.3f}", flush=True)


if __name__ == "__main__":
    main()
