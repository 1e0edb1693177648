"""What a weight bank says of a zoo's models shipped without their classification head.

Real embedders and ONNX exports carry no head, so the head-response reading is not
read and the verdict rests on the embedding layer's change spectrum. This scores
every clean model and successful backdoor of each zoo with the bank's own code
(``score_network``) twice: its checkpoint without the head, and — as an export that
folded BatchNorm into its layers reaches the bank — with every layer the bank reads
by a spectrum given as folded (the unit-length reading). Per bank, it counts FAIL /
WARN / PASS at the bank's thresholds and the AUC of the consolidated p, and can
compare several banks (``--bank``, repeatable) on the same models side by side.

    python scripts/headless_bank_verdicts.py ZOO [ZOO ...] --bank B1 --bank B2 --out FILE.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from fraudit.bank.bank import CHANGE_SPECTRUM_KINDS, score_network
from fraudit.bank.store import WeightBank, load_bank
from fraudit.formats.safe import load_checked
from fraudit.zoo.manifest import ZooManifest

WAYS = ("headless", "headless_folded")


def verdict(p: float, bank: WeightBank) -> str:
    return "FAIL" if p < bank.fail_frr else "WARN" if p < bank.warn_frr else "PASS"


def headless_ps(bank: WeightBank, path: Path) -> dict[str, float]:
    """The consolidated p of a checkpoint read without its head, and as a folded export."""
    tensors = load_checked(path)
    heads = {m.head_key for m in bank.models if m.head_key}
    weights = {k: tensors[k].float().numpy() for k in bank.read_keys if k in tensors and k not in heads}
    # what an export folds BatchNorm into: the layers read by a spectrum, and the frozen ones
    folds = {m.layer for m in bank.models if m.kind in CHANGE_SPECTRUM_KINDS or m.kind == "frozen"}
    exact = {k: v for k, v in weights.items() if k not in folds}
    folded = {k: v for k, v in weights.items() if k in folds}
    frr = (bank.fail_frr, bank.warn_frr)
    return {"headless": score_network(bank.models, weights, frr=frr).p,
            "headless_folded": score_network(bank.models, exact, frr=frr, folded=folded).p}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zoos", type=Path, nargs="+")
    parser.add_argument("--bank", type=Path, action="append", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    banks = {path.name: load_bank(path) for path in args.bank}
    result: dict = {"protocol": (
        "clean models and successful backdoors of each zoo, scored by each bank's own score_network without "
        "the head (no head-response reading) and, as a BatchNorm-folded export reaches it, with its spectrum "
        "layers read by their unit-length reading; verdicts at the bank's FAIL and WARN rates; no FAIL rule "
        "(it needs the head response)"),
        "banks": {name: {"references": len(b.reference), "readings": [m.key for m in b.models]}
                  for name, b in banks.items()},
        "zoos": {}}
    for zoo in args.zoos:
        manifest = ZooManifest.read(zoo)
        models = [e for e in manifest.models if e.kind == "clean" or e.successful]
        rows = [{"model": e.name, "kind": e.kind, "trigger": e.trigger,
                 "p": {name: headless_ps(bank, manifest.path(e)) for name, bank in banks.items()}} for e in models]
        summary: dict = {}
        for name, bank in banks.items():
            for way in WAYS:
                counts: dict = {}
                for row in rows:
                    v = verdict(row["p"][name][way], bank)
                    counts.setdefault(row["kind"], {"FAIL": 0, "WARN": 0, "PASS": 0})[v] += 1
                labels = [int(r["kind"] != "clean") for r in rows]
                if 0 < sum(labels) < len(labels):
                    counts["auc"] = float(roc_auc_score(labels, [-np.log(max(r["p"][name][way], 1e-300))
                                                                 for r in rows]))
                summary[f"{name}/{way}"] = counts
        result["zoos"][zoo.name] = {"summary": summary, "models": rows}
        print(zoo.name, json.dumps(summary), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
