"""Scan a folder mixing every hostile case of the test corpus (tests/helpers/hostile.py):
wall time and peak memory of `fraudit scan FOLDER -f json`, and its exit code and verdicts.

    python bench/bench_hostile.py [--runs 3]

Peak memory is each scan process's own maximum resident set (``os.wait4``), so it
includes Python, torch, onnx and onnxruntime themselves. The corpus is built in a
separate process, so this one stays small (a child forked from a large parent would
start by counting the parent's pages).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"
BUILD = "import sys; from pathlib import Path; from helpers import hostile; hostile.write_all(Path(sys.argv[1]), Path(sys.argv[2]))"


def _scan(folder: Path, report: Path) -> tuple[float, float, int]:
    """(seconds, peak MB, exit code) of one scan."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "fraudit", "scan", str(folder), "-f", "json", "-o", str(report)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - start, usage.ru_maxrss / 1024, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder, canary = Path(tmp) / "batch", Path(tmp) / "CANARY"
        subprocess.run([sys.executable, "-c", BUILD, str(folder), str(canary)], check=True,
                       env={**os.environ, "PYTHONPATH": str(TESTS)})
        entries = len(os.listdir(folder))
        runs = [_scan(folder, Path(tmp) / "report.json") for _ in range(args.runs)]
        verdicts = collections.Counter(r["verdict"] for r in json.loads((Path(tmp) / "report.json").read_text())["results"])
        subprocess.run(["rm", "-rf", str(folder)], check=False)  # 1,200-deep: shutil.rmtree would recurse
        print(json.dumps({
            "entries_at_top_level": entries,
            "runs": args.runs,
            "wall_s_median": round(statistics.median(r[0] for r in runs), 2),
            "peak_rss_mb_max": round(max(r[1] for r in runs), 1),
            "exit_codes": [r[2] for r in runs],
            "verdicts": dict(verdicts),
            "payload_ran": canary.exists(),
        }, indent=2))


if __name__ == "__main__":
    main()
