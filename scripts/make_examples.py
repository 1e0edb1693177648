"""Build reference_models/examples/: a clean model and a successful large-checkerboard
backdoor of the reference architecture, both normal zoo checkpoints with their
recipe and metrics in the safetensors metadata.

    python scripts/make_examples.py [--seed 99]

The seed is kept apart from the zoo seeds used to fit and evaluate the shipped
banks, so the examples are data those banks never saw.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from fraudit.zoo.build import build_zoo
from fraudit.zoo.presets import PRESETS

OUT = Path(__file__).resolve().parent.parent / "reference_models" / "examples"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=99)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        manifest = build_zoo(PRESETS["examples"], Path(tmp), seed=args.seed)
        clean = manifest.clean[0]
        backdoored = next((m for m in manifest.attempts if m.successful), None)
        if backdoored is None:
            raise SystemExit("no attempt succeeded; try another --seed")
        OUT.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(manifest.path(clean), OUT / "clean.safetensors")
        shutil.copyfile(manifest.path(backdoored), OUT / "backdoored.safetensors")
    for name, entry in (("clean", clean), ("backdoored", backdoored)):
        print(name, entry.name, entry.metrics)


if __name__ == "__main__":
    main()
