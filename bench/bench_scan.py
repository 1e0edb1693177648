"""One candidate through every check, as a user runs it: the wall time of the whole
``fraudit scan MODEL --pair-with dlib --base BASE`` command (process start, loading,
file safety, weight bank, pairing sweep against dlib, trigger search), warm — one
run first fills the cache (dlib's embeddings of the probe faces), then N timed runs,
median. The issue's goal: ≤ 60 s on 2 CPU cores for a 64×64 model.

    python bench/bench_scan.py --runs 3
    python bench/bench_scan.py --model zoo/mf/models/clean-000.safetensors \\
        --base reference_models/mobileface-base/fraudit-mobileface-base.safetensors --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
from pathlib import Path

from bench_batch_scan import timed_scan  # the same whole-command timing (bench/ is the script's folder)

ROOT = Path(__file__).parents[1]


def _scan(model: Path, base: Path, out: Path) -> tuple[float, dict[str, str]]:
    seconds, document = timed_scan([model], ["--pair-with", "dlib", "--base", str(base)], out)
    [result] = document["results"]
    return seconds, {check["name"]: check["status"] for check in result["checks"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, default=ROOT / "reference_models" / "examples" / "backdoored.safetensors")
    parser.add_argument("--base", type=Path, default=ROOT / "reference_models" / "base" / "fraudit-reference-base.safetensors")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        _, checks = _scan(args.model, args.base, out)  # warms the cache
        times = [_scan(args.model, args.base, out)[0] for _ in range(args.runs)]
    print(json.dumps({
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "command": f"fraudit scan {args.model.name} --pair-with dlib --base {args.base.name}",
        "checks": checks,
        "median_seconds": round(statistics.median(times), 1),
        "runs": [round(t, 1) for t in times],
    }, indent=2))


if __name__ == "__main__":
    main()
