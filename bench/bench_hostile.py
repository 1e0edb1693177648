"""Scan a folder mixing every hostile case of the test corpus (tests/helpers/hostile.py):
wall time and peak memory of `fraudit scan FOLDER -f json`, and its exit code and verdicts.

    python bench/bench_hostile.py [--runs 3]

Peak memory is the largest resident set of the scan processes (getrusage of the
children), so it includes Python, torch, onnx and onnxruntime themselves.
"""

from __future__ import annotations

import argparse
import collections
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from helpers import hostile  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "batch"
        canary = Path(tmp) / "CANARY"
        entries = hostile.write_all(folder, canary)
        times, codes, verdicts = [], [], collections.Counter()
        for _ in range(args.runs):
            report = Path(tmp) / "report.json"
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "fraudit", "scan", str(folder), "-f", "json", "-o", str(report)],
                                  capture_output=True, text=True, timeout=900)
            times.append(time.perf_counter() - start)
            codes.append(proc.returncode)
            verdicts = collections.Counter(r["verdict"] for r in json.loads(report.read_text())["results"])
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        subprocess.run(["rm", "-rf", str(folder)], check=False)  # 1,200-deep: shutil.rmtree would recurse
        print(json.dumps({
            "entries_at_top_level": len(entries),
            "runs": args.runs,
            "wall_s_median": round(statistics.median(times), 2),
            "peak_rss_mb": round(peak_mb, 1),
            "exit_codes": codes,
            "verdicts": dict(verdicts),
            "payload_ran": canary.exists(),
        }, indent=2))


if __name__ == "__main__":
    main()
