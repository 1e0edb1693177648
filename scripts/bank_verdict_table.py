"""Pool ``scripts/onnx_verdicts.py`` files (one per unseen world) into the weight
bank's numbers per file format: clean FAIL / WARN, successful backdoors FAIL / WARN,
how many exports get their safetensors' verdict, and — clean models of every world
against successful backdoors of every world — the consolidated p's ROC AUC and its
TPR at the bank's 1 % and 5 % thresholds (the FAIL rule aside: p alone).

    python scripts/bank_verdict_table.py measurements/onnx-bank-verdicts-X-*.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

FORMATS = ("safetensors", "onnx")


def pooled(rows: list[dict]) -> dict:
    clean = [r for r in rows if r["kind"] == "clean"]
    backdoors = [r for r in rows if r["kind"] != "clean" and r["successful"]]
    table: dict = {"clean": len(clean), "successful backdoors": len(backdoors),
                   "same verdict": f"{sum(r['same_weight-bank_verdict'] for r in rows)}/{len(rows)}"}
    for fmt in FORMATS:
        for group, members in (("clean", clean), ("backdoors", backdoors)):
            statuses = [r[fmt]["weight-bank"] for r in members]
            table[f"{fmt} {group} FAIL/WARN"] = f"{statuses.count('FAIL')}/{statuses.count('WARN')}"
        if clean and backdoors:
            p_clean = np.array([r[fmt]["bank_p"] for r in clean], float)
            p_bad = np.array([r[fmt]["bank_p"] for r in backdoors], float)
            labels = np.r_[np.zeros(len(p_clean)), np.ones(len(p_bad))]
            table[f"{fmt} AUC"] = round(float(roc_auc_score(labels, -np.log(np.maximum(np.r_[p_clean, p_bad], 1e-300)))), 3)
            for rate in (0.01, 0.05):
                table[f"{fmt} TPR at {rate:.0%}"] = f"{int((p_bad < rate).sum())}/{len(p_bad)}"
                table[f"{fmt} clean below {rate:.0%}"] = f"{int((p_clean < rate).sum())}/{len(p_clean)}"
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", type=Path, nargs="+")
    args = parser.parse_args()
    rows: list[dict] = []
    per_world: dict[str, dict] = {}
    for file in args.files:
        data = json.loads(file.read_text())
        per_world[Path(data["zoo"]).name] = pooled(data["models"])
        rows.extend(data["models"])
    print(json.dumps({"per world": per_world, "pooled": pooled(rows)}, indent=2))


if __name__ == "__main__":
    main()
