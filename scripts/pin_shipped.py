"""Pin the digests of every artifact fraudit ships and trusts (banks, sweep nulls,
trusted-model embeddings, the base models, the face generator) in fraudit/pins.json.

    python scripts/pin_shipped.py

Run it after changing a shipped artifact on purpose; the change to pins.json is then
part of the reviewed diff. tests/test_shipped.py fails when a file and its pin disagree.
"""

from __future__ import annotations

import json
from pathlib import Path

from fraudit.cache import file_sha256
from fraudit.resources import PINS, reference_models_dir

TRUSTED = ("banks", "pairing", "base", "mobileface-base", "dcgan-digiface")
OUT = Path(__file__).resolve().parent.parent / "fraudit" / PINS


def main() -> None:
    root = reference_models_dir()
    pins = {
        path.relative_to(root).as_posix(): file_sha256(path)
        for folder in TRUSTED
        for path in sorted((root / folder).rglob("*"))
        if path.is_file() and not path.name.endswith((".md",))
    }
    OUT.write_text(json.dumps(pins, indent=2, sort_keys=True) + "\n")
    print(f"{len(pins)} digests written to {OUT}")


if __name__ == "__main__":
    main()
