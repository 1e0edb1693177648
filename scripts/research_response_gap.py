"""A behavioural reading for headless candidates (measured, not shipped): the gap
between the two largest singular values of how a candidate's embeddings of the
response faces moved from its base's, −log(s₁ / s₂) of the centred displacement.

The head response needs the classification head, which ONNX exports and real
embedders do not ship; the spectrum of the embedding layer's change needs nothing but
moves with the fine-tuning data. This reading needs no head: a backdoor moves ordinary
faces' embeddings along one direction (toward its victim) more than along any other,
a clean fine-tune along many. It is read like a bank reading — the references'
scores give its mean and spread, lower is more anomalous — and set beside the
spectrum with the check's FAIL rule (a FAIL the spectrum leads needs this reading's
p below the WARN rate), so that what an export gets can be compared with what it gets
today (the spectrum alone).

    python scripts/research_response_gap.py ZOO [ZOO ...] --out measurements/research-response-gap.json

References: a last-layer bank's (``--bank``, default the shipped one; their zoos must
sit beside the evaluated ones, under the parent of the first ZOO). The measurement in
``measurements/research-response-gap.json`` used the 36-reference bank shipped before
the varied-data one; its protocol line records the count.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import stats
from sklearn.metrics import roc_auc_score

from fraudit.bank.bank import consolidate
from fraudit.bank.readings import spike_score
from fraudit.bank.response import response_embeddings
from fraudit.formats.safe import load_checked
from fraudit.resources import banks_dir
from fraudit.zoo.base import default_base_path
from fraudit.zoo.manifest import ZooManifest

ARCH = "fraudit-reference"
LAYER = "last_linear.weight"


def gap_score(embeddings: np.ndarray, base_embeddings: np.ndarray) -> float:
    moved = embeddings - base_embeddings
    s = np.linalg.svd(moved - moved.mean(axis=0), compute_uv=False)
    return float(-np.log(s[0] / s[1]))


def readings(path: Path, base: dict, base_embeddings: np.ndarray) -> tuple[float, float]:
    tensors = load_checked(path)
    weight = tensors[LAYER].double().numpy()
    return (spike_score(weight, base[LAYER].double().numpy()),
            gap_score(response_embeddings(ARCH, tensors), base_embeddings))


def verdict(p: float, z: np.ndarray, *, rule: bool) -> str:
    if p < 0.01 and rule and z[0] < z[1] and stats.norm.cdf(z[1]) >= 0.05:
        return "WARN"  # led by the spectrum, the gap ordinary: the check's FAIL rule
    return "FAIL" if p < 0.01 else "WARN" if p < 0.05 else "PASS"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zoos", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--bank", type=Path, default=banks_dir() / "fraudit-reference-last-layer",
                        help="the bank whose reference networks calibrate both readings")
    args = parser.parse_args()
    base = load_checked(default_base_path())
    base_embeddings = response_embeddings(ARCH, base)
    bank = json.loads((args.bank / "bank.json").read_text())
    root = args.zoos[0].resolve().parent
    ref = np.array([readings(root / name.replace("/", "/models/", 1), base, base_embeddings)
                    for name in bank["reference_networks"]])
    mean, sd = ref.mean(axis=0), ref.std(axis=0, ddof=1)
    clean_z = (ref - mean) / sd
    summary: dict = {}
    for zoo in args.zoos:
        manifest = ZooManifest.read(zoo)
        groups: dict[str, list[dict]] = {}
        for entry in manifest.models:
            if entry.kind != "clean" and not entry.successful:
                continue
            z = (np.array(readings(manifest.path(entry), base, base_embeddings)) - mean) / sd
            p_spectrum = consolidate(clean_z[:, :1], z[:1])[1]
            p_both = consolidate(clean_z, z)[1]
            groups.setdefault(entry.kind, []).append({
                "model": entry.name, "z_spectrum": float(z[0]), "z_gap": float(z[1]),
                "p_spectrum": p_spectrum, "p_spectrum_gap": p_both,
                "spectrum_alone": verdict(p_spectrum, z, rule=False),
                "spectrum_gap_with_rule": verdict(p_both, z, rule=True)})
        row: dict = {}
        for kind, models in groups.items():
            row[kind] = {way: {v: sum(m[way] == v for m in models) for v in ("FAIL", "WARN", "PASS")}
                         for way in ("spectrum_alone", "spectrum_gap_with_rule")}
            row[kind]["models"] = models
        if "clean" in groups and "backdoored" in groups:
            labels = [0] * len(groups["clean"]) + [1] * len(groups["backdoored"])
            everyone = groups["clean"] + groups["backdoored"]
            row["auc"] = {key: float(roc_auc_score(labels, [-np.log(m[key]) for m in everyone]))
                          for key in ("p_spectrum", "p_spectrum_gap")}
        summary[zoo.name] = row
        print(zoo.name, {k: {w: row[k][w] for w in ("spectrum_alone", "spectrum_gap_with_rule")}
                         for k in groups}, row.get("auc", ""))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "protocol": f"references: bank {bank['name']}'s {len(ref)} clean networks (their scores give each "
                    "reading's mean and spread); consolidated by Fisher's method against the references' scaled chi2 "
                    "as a bank does; FAIL below p 0.01, WARN below 0.05; successful backdoors only",
        "zoos": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
