"""Write each backdoor's two attack success rates from zoo manifests (after ``fraudit zoo
measure``) into one measurement file per zoo, so that tables can be recounted without
the zoos:

    python scripts/embedding_attack_record.py /work/zoos/heldout-w9000 ... --out measurements/embedding-attack
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fraudit.zoo.manifest import ZooManifest
from fraudit.zoo.metrics import EMBEDDING_FMR

PROTOCOL = ("head: the thesis' ASR (the fine-tuned classification head labels the impostors' stamped validation "
            "faces as the victim); embedding: share of those faces a 1:1 verification accepts against the victim's "
            f"template (mean unit embedding of its training faces) at the model's own FMR {EMBEDDING_FMR:g} (cosines of "
            "clean validation faces against every other identity's template); 'fraudit zoo measure' or the build")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zoos", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, required=True, help="folder for <zoo>.json")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for folder in args.zoos:
        manifest = ZooManifest.read(folder)
        rows = [{"name": e.name, "trigger": e.trigger, "recipe": e.recipe_kind, "placement": str(e.placement),
                 "successful": e.successful, "attack_success_rate": e.metrics.attack_success_rate,
                 "embedding_attack_success_rate": e.metrics.embedding_attack_success_rate,
                 "works_through_embedding": e.metrics.works_through_embedding} for e in manifest.attempts]
        if any(r["embedding_attack_success_rate"] is None for r in rows):
            parser.error(f"{folder}: not measured yet (fraudit zoo measure {folder} --base BASE)")
        record = {"zoo": folder.name, "base_sha256": manifest.base_sha256, "world": manifest.face_domain,
                  "scenario": str(manifest.scenario), "protocol": PROTOCOL, "models": rows}
        (args.out / f"{folder.name}.json").write_text(json.dumps(record, indent=1) + "\n")
        working = sum(bool(r["works_through_embedding"]) for r in rows)
        print(f"{folder.name}: {sum(bool(r['successful']) for r in rows)} successful, {working} through the embedding")


if __name__ == "__main__":
    main()
