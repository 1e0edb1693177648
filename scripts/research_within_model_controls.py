"""Research script behind measurements/within-model-controls.md: issue 11's "null that
travels with the candidate" for the library sweep, measured. For every library cell
(trigger × placement) the candidate's convergence under the trigger is compared with
its convergence under control patterns of the same mask, placement and contrast but
other content — the trigger's colours rotated about grey (same texture and contrast,
other colours) and its pixels shuffled (same colours, other structure) — as
z = (trigger − mean(controls)) / sd(controls) and as the ratio trigger / mean(controls).

    python scripts/research_within_model_controls.py OUT.jsonl ZOO [ZOO ...] [--controls 12]

One JSON line per model (its 10 first clean models and every successful backdoor):
per cell the trigger's convergence, the controls', z and the ratio.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from fraudit.faces.sources import probe_identities
from fraudit.pairing.embedders import Embedder, reference_embedder
from fraudit.pairing.sweep import default_cells, unit_centred
from fraudit.triggers import Trigger, get_trigger, stamp
from fraudit.zoo.manifest import ZooManifest


def controls(trigger: Trigger, n: int, seed: int) -> list[Trigger]:
    """Patterns on the trigger's mask with its contrast and other content: even ones
    rotate its colours about mid-grey, odd ones shuffle its pixels."""
    rng = np.random.default_rng(seed)
    pattern, on = trigger.pattern.astype(np.float64), np.flatnonzero(trigger.alpha.reshape(-1) > 0)
    out = []
    for i in range(n):
        if i % 2 == 0:
            rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
            new = (pattern - 127.5) @ rotation.T + 127.5
        else:
            flat = pattern.reshape(-1, 3).copy()
            flat[on] = flat[rng.permutation(on)]
            new = flat.reshape(pattern.shape)
        out.append(Trigger(f"{trigger.name}-control{i}", np.clip(new, 0, 255).round().astype(np.uint8), trigger.alpha,
                           trigger.fixed_centre, "control"))
    return out


def cell_rows(model: Embedder, faces: np.ndarray, n_controls: int) -> dict[str, dict]:
    clean = model.embed(faces)
    centre = clean.astype(np.float64).mean(0)
    clean_unit = unit_centred(clean, centre)
    rows = {}
    for index, cell in enumerate(default_cells()):
        def convergence(trigger: Trigger) -> float:
            rng = np.random.default_rng([0, index])  # the trigger and its controls at the same placements
            shifted = unit_centred(model.embed(stamp(faces, trigger, cell.placement, rng=rng)), centre) - clean_unit
            return float(np.linalg.norm(shifted.mean(0)))

        trigger = get_trigger(cell.trigger)
        own = convergence(trigger)
        others = np.array([convergence(c) for c in controls(trigger, n_controls, seed=index)])
        rows[cell.key] = {"trigger": own, "controls": others.tolist(),
                          "z": float((own - others.mean()) / others.std(ddof=1)), "ratio": float(own / others.mean())}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("zoos", type=Path, nargs="+")
    parser.add_argument("--controls", type=int, default=12)
    args = parser.parse_args()
    faces = probe_identities(n_identities=100, per_identity=2).faces.images
    for zoo in args.zoos:
        manifest = ZooManifest.read(zoo)
        for entry in [*manifest.clean[:10], *[a for a in manifest.attempts if a.successful]]:
            start = time.perf_counter()
            rows = cell_rows(reference_embedder(manifest.path(entry)), faces, args.controls)
            record = {"zoo": zoo.name, "name": entry.name, "kind": entry.kind, "trigger": entry.trigger,
                      "placement": str(entry.placement), "rows": rows, "seconds": round(time.perf_counter() - start, 1)}
            with args.out.open("a") as stream:
                stream.write(json.dumps(record) + "\n")
            print(entry.name, {k: round(v["z"], 1) for k, v in rows.items()}, flush=True)


if __name__ == "__main__":
    main()
