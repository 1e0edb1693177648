"""Reproduce what fraudit ships for `scan --pair-with dlib` on the reference
architecture: dlib's embeddings of the built-in calibration and probe faces (so a
first scan does not spend minutes embedding them with dlib), and the clean-pair
sweep null (from clean zoo models of several face worlds: a null from one world
FAILs every clean model fine-tuned on other identities, see README).

    python scripts/ship_pairing.py embeddings
    python scripts/ship_pairing.py null ZOO [ZOO ...] [--limit 10]   # --limit clean models per zoo

The shipped null: 10 clean models from each of three `ch4` clean-only zoos on face
worlds 5000, 7000 and 8000 (`fraudit zoo build --preset ch4 --clean-only --n-clean 20
--world-seed W --out zoo/ch4-worldW-clean`).

The built-in faces are generated exactly (float64), so the embeddings made here are
keyed by the same bytes that every other machine generates.
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


def ship_embeddings(setup: PairingSetup, dlib: DlibEmbedder) -> None:
    inputs = sweep_inputs(setup)
    arrays = [calibration_faces(setup.faces, n=setup.n_faces).images, inputs.probes.faces.images, *inputs.stamped.values()]
    shipped = shipped_embeddings_dir()
    shutil.rmtree(shipped, ignore_errors=True)
    for i, images in enumerate(arrays, start=1):
        embed_cached(dlib, images)
        name = cache_name(dlib, images)
        (shipped / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(cache_dir("embeddings") / name, shipped / name)
        print(f"embeddings {i}/{len(arrays)}: {len(images)} faces", flush=True)
    print("embeddings:", shipped, len(arrays), "arrays")


def ship_null(zoos: list[Path], limit: int, setup: PairingSetup, dlib: DlibEmbedder) -> None:
    clean = []
    for zoo in zoos:
        manifest = ZooManifest.read(zoo)
        for entry in manifest.clean[:limit]:
            model = reference_embedder(manifest.path(entry))
            model.name = f"world {manifest.world.seed}/{entry.name}"  # the null names where each pair came from
            clean.append(model)
    null = build_null(clean, dlib, setup, progress=lambda stage, done, total: print(f"{stage} {done}/{total}", flush=True))
    print("null:", null.save(shipped_null_path(clean[0].architecture, dlib)))


def main() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("embeddings")
    null = commands.add_parser("null")
    null.add_argument("zoos", type=Path, nargs="+")
    null.add_argument("--limit", type=int, default=10)
    args = parser.parse_args()
    setup, dlib = PairingSetup(), DlibEmbedder()
    if args.command == "embeddings":
        ship_embeddings(setup, dlib)
    else:
        ship_null(args.zoos, args.limit, setup, dlib)


if __name__ == "__main__":
    main()
