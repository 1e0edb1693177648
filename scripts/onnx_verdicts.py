"""Do ONNX exports of a zoo's models get their safetensors' verdicts?

Exports every model of a zoo with ``torch.onnx.export`` (the exporter folds
BatchNorm and renames tensors, as real exports do), scans the safetensors and the
ONNX files in one batch with ``fraudit scan [--pair-with TRUSTED] -f json``, and
writes, per model and check, both statuses (the bank's p and the sweep's worst z)
to a JSON file. ``--pair-with none`` compares the weight bank alone (faster);
``--base BASE`` adds the trigger search (its strongest patch's, the blend's and the strongest library
cell's gain per file);
``--with-head`` exports each model whole, its classification head giving a second output (the
logits), as a classifier ships — without it, the embedder alone.
Its summary counts each format's verdicts per check, and the scan's, per group (clean,
successful backdoors, attempts that did not take).

    python scripts/onnx_verdicts.py ZOO --out measurements/onnx-verdicts-ZOO.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from fraudit.models.heads import EmbedderWithHead
from fraudit.models.registry import spec_for
from fraudit.pairing.embedders import reference_embedder
from fraudit.zoo.manifest import ZooManifest


def export(model: Path, path: Path, *, with_head: bool = False) -> None:
    """The checkpoint's embedder exported to ``path``; ``with_head``: with its
    classification head too, as a second output (the logits), as a classifier ships."""
    embedder = reference_embedder(model)
    size = embedder.input_size
    module, outputs = embedder.module.eval(), ["embedding"]
    if with_head:
        head_key = spec_for(embedder.architecture).head_key
        head = load_file(str(model))[head_key]
        module, outputs = EmbedderWithHead(module, head).eval(), ["embedding", "logits"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(module, (torch.zeros(1, 3, size, size),), str(path), dynamo=False,
                          input_names=["input"], output_names=outputs,
                          dynamic_axes={"input": {0: "n"}, **{name: {0: "n"} for name in outputs}})


def verdict_counts(rows: list[dict], check: str) -> dict[str, dict[str, dict[str, int]]]:
    """Per group (clean models, successful backdoors, attempts that did not take) and
    file format: how many models got each verdict of ``check``."""
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for row in rows:
        group = "clean" if row["kind"] == "clean" else "successful backdoors" if row["successful"] else "failed attempts"
        for suffix in ("safetensors", "onnx"):
            status = row[suffix][check]
            by_status = counts.setdefault(group, {}).setdefault(suffix, {})
            by_status[status] = by_status.get(status, 0) + 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zoo", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--pair-with", default="dlib")
    parser.add_argument("--bank", type=Path, action="append", default=[],
                        help="a bank to scan with instead of the shipped ones (repeatable)")
    parser.add_argument("--base", type=Path, help="add the trigger search against this base")
    parser.add_argument("--models", help="comma-separated model names (default: every model of the zoo)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--with-head", action="store_true",
                        help="export each model with its classification head (embedding and logits)")
    args = parser.parse_args()
    manifest = ZooManifest.read(args.zoo)
    chosen = set(args.models.split(",")) if args.models else None
    entries = [e for e in manifest.models if chosen is None or e.name in chosen]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for entry in entries:
            shutil.copy(manifest.path(entry), folder / f"{entry.name}.safetensors")
            export(manifest.path(entry), folder / f"{entry.name}.onnx", with_head=args.with_head)
        report = folder / "report.json"
        pairing = [] if args.pair_with == "none" else ["--pair-with", args.pair_with]
        banks = [arg for bank in args.bank for arg in ("--bank", str(bank))]
        search = ["--base", str(args.base)] if args.base else []
        subprocess.run([sys.executable, "-m", "fraudit", "scan", str(folder), *pairing, *banks, *search,
                        "--jobs", str(args.jobs), "-f", "json", "-o", str(report)], check=False)
        results = json.loads(report.read_text())["results"]
    by_file = {Path(r["source"]).name: {c["name"]: c for c in r["checks"]} for r in results}
    verdicts = {Path(r["source"]).name: r["verdict"] for r in results}
    rows = []
    for entry in entries:
        row: dict = {"model": entry.name, "kind": entry.kind, "trigger": entry.trigger, "recipe": entry.recipe_kind,
                     "successful": entry.successful}
        for suffix in ("safetensors", "onnx"):
            checks = by_file[f"{entry.name}.{suffix}"]
            row[suffix] = {name: check["status"] for name, check in checks.items()}
            row[suffix]["verdict"] = verdicts[f"{entry.name}.{suffix}"]
            row[suffix]["bank_p"] = checks["weight-bank"]["evidence"].get("consolidated", {}).get("p")
            if "pairing" in checks:
                sweep = checks["pairing"]["evidence"].get("sweep", {})
                row[suffix]["pairing_worst_z"] = max(sweep["z"].values()) if sweep.get("z") else None
            if "trigger-search" in checks:
                evidence = checks["trigger-search"]["evidence"]
                cells = [cell["gain"] for cell in evidence.get("library_cells", [])]
                row[suffix]["search_gains"] = [*(evidence.get(k, {}).get("gain") for k in ("strongest", "blend")),
                                               max(cells) if cells else None]  # the strongest library cell's
                row[suffix]["library_gains"] = cells or None
                row[suffix]["library_flip"] = evidence.get("library", {}).get("flip_sensitivity")
        for check in ("weight-bank", "pairing", "trigger-search"):
            if check in row["onnx"]:
                row[f"same_{check}_verdict"] = row["safetensors"][check] == row["onnx"][check]
        rows.append(row)
    summary: dict = {"models": len(rows), "same_weight-bank_verdict": sum(r["same_weight-bank_verdict"] for r in rows),
                     "max_abs_log10_bank_p_difference": max(
                         (abs(float(np.log10(r["safetensors"]["bank_p"])) - float(np.log10(r["onnx"]["bank_p"])))
                          for r in rows if r["onnx"]["bank_p"] and r["safetensors"]["bank_p"]), default=None)}
    for check in ("weight-bank", "pairing", "trigger-search", "verdict"):
        if all(check in r["safetensors"] for r in rows):
            summary[f"{check}_verdicts"] = verdict_counts(rows, check)
    if args.pair_with != "none":
        summary["same_pairing_verdict"] = sum(r["same_pairing_verdict"] for r in rows)
        summary["max_abs_z_difference"] = max(abs(r["safetensors"]["pairing_worst_z"] - r["onnx"]["pairing_worst_z"])
                                              for r in rows if r["onnx"]["pairing_worst_z"] is not None)
    if args.base:
        summary["same_trigger-search_verdict"] = sum(r["same_trigger-search_verdict"] for r in rows)
        summary["max_abs_search_gain_difference"] = max(
            abs(a - b) for r in rows for a, b in zip(r["safetensors"]["search_gains"], r["onnx"]["search_gains"], strict=True)
            if a is not None and b is not None)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"zoo": str(args.zoo), "trusted": args.pair_with, "base": str(args.base),
                                    "exported_with_head": args.with_head, "summary": summary,
                                    "models": rows}, indent=2) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
