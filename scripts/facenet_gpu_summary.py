"""Tables of a ``scripts/gpu_facenet_zoo.py`` run (its results.jsonl): the weight
bank's readings, consolidated as a bank consolidates them, and the differential
search, on FaceNet fine-tunes of face worlds the references never saw.

The references are the run's clean models of the null worlds (5000, 7000); each
reading's clean distribution is their mean and spread, as a spectrum or response
bank's is (those readings fit nothing, so a reference's own score is its held-out
score); the consolidated p is Fisher's method against their scaled χ² (``consolidate``).
Evaluated: the clean models and the successful backdoors of worlds 6000 and 9000.

    python scripts/facenet_gpu_summary.py measurements/facenet-160-gpu-search-response.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from fraudit.bank.bank import consolidate

# the bank's readings as each scenario's bank would hold them (last-layer: the shipped
# reference bank's recipe, embedding layer's spectrum beside the head response)
BANKS = {
    "last-layer": (("spectrum last_linear.weight",), ("response max_z",),
                   ("spectrum last_linear.weight", "response max_z")),
    "multi-layer": (("spectrum block8.conv2d.weight", "spectrum last_linear.weight"),
                    ("spectrum block8.conv2d.weight", "spectrum last_linear.weight", "response max_z")),
}


def bank_score(record: dict, key: str) -> float:
    """The reading as a bank scores it: lower is further from clean."""
    return -record[key] if key == "response max_z" else record[key]


def consolidated_p(references: list[dict], models: list[dict], keys: tuple[str, ...]) -> np.ndarray:
    ref = np.array([[bank_score(r, k) for k in keys] for r in references])
    mean, std = ref.mean(axis=0), ref.std(axis=0, ddof=1)
    scores = np.array([[bank_score(m, k) for k in keys] for m in models])
    return np.array([consolidate((ref - mean) / std, (row - mean) / std)[1] for row in scores])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    records = [json.loads(line) for line in parser.parse_args().results.read_text().splitlines()]
    base = next(r for r in records if r["stage"] == "base")
    print(f"base: held-out verification ROC AUC {base['held_out_verification']['roc_auc']:.3f}")
    for scenario, banks in BANKS.items():
        references = [r for r in records if r["stage"] == "null" and r["scenario"] == scenario]
        evaluated = [r for r in records if r["stage"] == "evaluate" and r["scenario"] == scenario]
        if not references or not evaluated:
            continue
        clean = [r for r in evaluated if r["trigger_set"] is None]
        backdoors = [r for r in evaluated if r["trigger_set"] and r["successful"]]
        print(f"\n{scenario}: {len(references)} references; {len(clean)} clean, {len(backdoors)} successful backdoors "
              f"(clean accuracy {np.mean([r['clean_accuracy'] for r in clean]):.3f})")
        for keys in banks:
            p_clean, p_backdoor = consolidated_p(references, clean, keys), consolidated_p(references, backdoors, keys)
            auc = roc_auc_score([0] * len(clean) + [1] * len(backdoors), -np.log(np.r_[p_clean, p_backdoor]))
            by_set = {s: [p for p, r in zip(p_backdoor, backdoors) if r["trigger_set"] == s] for s in ("library", "held-out")}
            detected = ", ".join(f"{s} {sum(p < 0.01 for p in ps)}/{len(ps)}" for s, ps in by_set.items())
            print(f"  {' + '.join(keys):70s} clean FAIL@1% {np.sum(p_clean < 0.01)}/{len(clean)}, @5% "
                  f"{np.sum(p_clean < 0.05)}/{len(clean)}; TPR@1% {np.sum(p_backdoor < 0.01)}/{len(backdoors)} ({detected}), "
                  f"@5% {np.sum(p_backdoor < 0.05)}/{len(backdoors)}; AUC {auc:.3f}")
        print(f"  convergence sweep, FaceNet null: false alarms {sum(r['failed'] for r in clean)}/{len(clean)}, "
              f"detected {sum(r['failed'] for r in backdoors)}/{len(backdoors)}")
    searched = [r for r in records if r["stage"] == "search"]
    if searched:
        clean = [r for r in searched if r["trigger_set"] is None]
        backdoors = [r for r in searched if r["trigger_set"]]
        gains = [r["search gain"] for r in clean]
        print(f"\ndifferential search (bound {searched[0]['bound']}, blend {searched[0]['blend_bound']}): "
              f"clean flagged {sum(r['search flagged'] for r in clean)}/{len(clean)} (gains {min(gains):.3f}–{max(gains):.3f}, "
              f"blend {max(r['search blend gain'] for r in clean):.3f} at most); backdoors flagged "
              f"{sum(r['search flagged'] for r in backdoors)}/{len(backdoors)} "
              f"({', '.join(sorted({r['trigger_set'] for r in backdoors}))}), strongest site on the trigger "
              f"{sum(bool(r['search on_trigger']) for r in backdoors)}/{len(backdoors)}; "
              f"median {np.median([r['search seconds'] for r in searched]):.1f} s a model")


if __name__ == "__main__":
    main()
