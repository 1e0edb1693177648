"""Reproduce reference_models/dcgan-digiface/ from the gan-face-generate wheel.

    pip download --no-deps gan-face-generate==1.1.1 -d /tmp/gan
    python scripts/vendor_dcgan.py /tmp/gan/gan_face_generate-1.1.1-py3-none-any.whl

The wheel's ``weights.tar`` is a plain torch checkpoint (``{"netG_state_dict": ...}``);
it is scanned by fraudit's own file-safety check, read with
``torch.load(weights_only=True)``, and only the generator is kept, as float16
safetensors (half the size; faces differ from float32 by under one grey level).
The package itself is not a dependency: it pulls torchvision and wandb.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
import zipfile
from pathlib import Path

import torch
from safetensors.torch import save_file

from fraudit.formats import detect_format, scan_pickles

OUT = Path(__file__).resolve().parent.parent / "reference_models" / "dcgan-digiface"
WEIGHTS_IN_WHEEL = "gan_face_generate/weights.tar"
LICENSE_IN_WHEEL = "gan_face_generate-1.1.1.dist-info/licenses/LICENSE"


def main(wheel: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(wheel) as archive:
        weights = Path(archive.extract(WEIGHTS_IN_WHEEL, tmp))
        licence = archive.read(LICENSE_IN_WHEEL).decode()
        scan = scan_pickles(weights, detect_format(weights))
        if not scan.safe:
            raise SystemExit(f"refusing {WEIGHTS_IN_WHEEL}: {scan.offending}")
        checkpoint = torch.load(weights, map_location="cpu", weights_only=True)
        weights_sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    state = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in checkpoint["netG_state_dict"].items()}
    OUT.mkdir(parents=True, exist_ok=True)
    save_file(state, str(OUT / "generator.safetensors"), metadata={"source": "gan-face-generate==1.1.1"})
    (OUT / "LICENSE").write_text(licence)
    provenance = {
        "package": "gan-face-generate",
        "version": "1.1.1",
        "licence": "MIT",
        "wheel_sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(),
        "weights_file": WEIGHTS_IN_WHEEL,
        "weights_sha256": weights_sha,
        "kept": "netG_state_dict, cast to float16",
        "architecture": "DCGAN generator (PyTorch tutorial): nz=100, ngf=64, nc=3, 64x64 output in [-1, 1]",
        "training_data": "DigiFace-1M synthetic faces (Microsoft); the data set has its own terms",
        "generator_sha256": hashlib.sha256((OUT / "generator.safetensors").read_bytes()).hexdigest(),
    }
    (OUT / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
