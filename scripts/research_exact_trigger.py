"""Research: how far can any probe-face search get? Each backdoor's *exact* trigger, read
the way the search reads a patch.

The trigger search optimises a patch on generic probe faces and reads the
candidate-minus-base convergence. Where it misses a backdoor, either the optimiser did
not find the trigger (an 8-px site cannot hold an 11-px ring), or the backdoor, taught
on one impostor's faces, barely moves other people's faces even under its own trigger —
then no search on probe faces can find it, only a better statistic. This script stamps
every fixed-placement trigger of a zoo at its own place on ``--faces`` fresh synthetic
identities and reads, on every model of the zoo, against the base:

* ``gain``: candidate-minus-base convergence (the search's statistic, exact trigger);
* ``tail``: the mean over the top tenth of faces of each face's shift along the mean
  shift's direction, candidate minus base (does the trigger move a few faces far?);
* ``impostor_gain``: the same convergence on the backdoor's own impostor's validation
  faces stamped as the attacker presents them (centred on the fresh faces' embeddings):
  what the backdoor was taught, against what it does to everyone else.

Clean models get every trigger: their values are the same-architecture null the search
does not have, kept here only to say how far the exact trigger stands out. For research;
no detector uses it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from fraudit.faces.sources import probe_identities
from fraudit.pairing.embedders import reference_embedder
from fraudit.search.differential import PROBE_SEED
from fraudit.triggers import Placement, stamp
from fraudit.zoo.heldout import zoo_trigger
from fraudit.zoo.manifest import ZooManifest
from fraudit.zoo.finetune import stratified_split

FRESH_SEED = PROBE_SEED + 1


def embed(model, faces: np.ndarray) -> torch.Tensor:
    with torch.no_grad():
        return model.forward_pixels(torch.from_numpy(np.ascontiguousarray(faces)).permute(0, 3, 1, 2).float()).float()


def shifts(model, faces: np.ndarray, stamped: np.ndarray, centre_faces: np.ndarray | None = None) -> np.ndarray:
    """Each face's shift of its centred unit embedding under the stamp (N×D); centred on
    ``centre_faces`` (default: the faces themselves)."""
    clean, moved = embed(model, faces), embed(model, stamped)
    centre = (clean if centre_faces is None else embed(model, centre_faces)).mean(0)
    return (F.normalize(moved - centre, dim=1) - F.normalize(clean - centre, dim=1)).numpy()


def readings(delta: np.ndarray) -> tuple[float, float]:
    mean = delta.mean(0)
    along = delta @ (mean / max(np.linalg.norm(mean), 1e-12))
    top = np.sort(along)[-max(1, len(along) // 10):]
    return float(np.linalg.norm(mean)), float(top.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zoo", type=Path)
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--faces", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(2)
    manifest = ZooManifest.read(args.zoo)
    faces = probe_identities(n_identities=args.faces, per_identity=1, seed=FRESH_SEED).faces.images
    triggers = sorted({e.trigger for e in manifest.attempts if e.placement is Placement.FIXED})
    stamped = {t: stamp(faces, zoo_trigger(t), Placement.FIXED) for t in triggers}
    base = reference_embedder(args.base)
    base_read = {t: readings(shifts(base, faces, stamped[t])) for t in triggers}
    world = manifest.load_faces()
    with args.out.open("w") as stream:
        for entry in [*manifest.clean, *manifest.attempts]:
            if entry.trigger is not None and entry.placement is not Placement.FIXED:
                continue
            model = reference_embedder(manifest.path(entry))
            for t in ([entry.trigger] if entry.trigger else triggers):
                gain, tail = readings(shifts(model, faces, stamped[t]))
                record = {"zoo": args.zoo.name, "name": entry.name, "kind": entry.kind, "trigger": t,
                          "recipe": entry.recipe_kind, "successful": entry.successful,
                          "gain": gain - base_read[t][0], "tail": tail - base_read[t][1],
                          "candidate": gain, "base": base_read[t][0]}
                if entry.trigger:
                    mine = entry.stamped_impostor_faces(world)
                    _, val = stratified_split(world.labels, seed=entry.split_seed)
                    own = world.images[val[np.isin(world.labels[val], entry.recipe.impostors)]]
                    record["impostor_gain"] = (readings(shifts(model, own, mine, faces))[0]
                                               - readings(shifts(base, own, mine, faces))[0])
                stream.write(json.dumps(record) + "\n")
            print(entry.name, flush=True)


if __name__ == "__main__":
    main()
