"""Reproduce what fraudit ships for `scan --pair-with dlib` on the reference
architecture: the clean-pair sweep null (from clean zoo models) and dlib's
embeddings of the built-in calibration and probe faces (so a first scan does not
spend minutes embedding them with dlib).

    python scripts/ship_pairing.py ZOO [--limit 20]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from fraudit.cache import cache_dir
from fraudit.faces.sources import calibration_faces
from fraudit.pairing.audit import PairingSetup, build_null, shipped_null_path, sweep_inputs
from fraudit.pairing.embedders import DlibEmbedder, cache_name, embed_cached, reference_embedder
from fraudit.resources import shipped_embeddings_dir
from fraudit.zoo.manifest import ZooManifest


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("zoo", type=Path)
    parser.add_argument("--limit", type=int, default=20)
    args = parser.parse_args()
    setup, dlib = PairingSetup(), DlibEmbedder()
    manifest = ZooManifest.read(args.zoo)
    clean = [reference_embedder(manifest.path(e)) for e in manifest.clean][: args.limit]
    null = build_null(clean, dlib, setup, progress=lambda stage, done, total: print(f"{stage} {done}/{total}", flush=True))
    print("null:", null.save(shipped_null_path(clean[0].architecture, dlib)))

    inputs = sweep_inputs(setup)
    arrays = [calibration_faces(setup.faces, n=setup.n_faces).images, inputs.probes.faces.images, *inputs.stamped.values()]
    shipped = shipped_embeddings_dir()
    shutil.rmtree(shipped, ignore_errors=True)
    for images in arrays:
        embed_cached(dlib, images)
        name = cache_name(dlib, images)
        (shipped / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(cache_dir("embeddings") / name, shipped / name)
    print("embeddings:", shipped, len(arrays), "arrays")


if __name__ == "__main__":
    main()
