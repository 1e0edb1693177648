"""A registry's batch scan: one folder of ≥ 100 models through ``fraudit scan``, on
local processes (``--jobs 2``) and on a 2-worker Dask cluster (``--backend dask``,
a running ``LocalCluster`` of processes on this machine, as a registry keeps one
up), runs interleaved so both see the same machine. Wall time of the whole command,
as a user runs it; medians of N runs and the ratio; the verdicts must be the same.

    python bench/bench_batch_scan.py --runs 3                  # 100 copies of the two examples
    python bench/bench_batch_scan.py --models /path/to/zoo/models --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXAMPLES = Path(__file__).parents[1] / "reference_models" / "examples"


def timed_scan(sources: list[Path], options: list[str], out: Path) -> tuple[float, dict]:
    """The wall time of ``fraudit scan SOURCES OPTIONS`` as a user runs it, and its JSON report."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "fraudit", "scan", *map(str, sources), *options, "-f", "json", "-o", str(out)],
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"scan {' '.join(options)} exited {done.returncode}: {done.stderr[-2000:]}")
    return seconds, json.loads(out.read_text())


def _scan(folder: Path, options: list[str], out: Path) -> tuple[float, list[tuple[str, str]]]:
    seconds, document = timed_scan([folder], options, out)
    return seconds, [(Path(r["source"]).name, r["verdict"]) for r in document["results"]]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=Path, help="a folder of models (default: copies of the shipped examples)")
    parser.add_argument("--n", type=int, default=100, help="copies of the examples when no --models is given")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    from distributed import LocalCluster

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.models
        if folder is None:
            folder = Path(tmp) / "models"
            folder.mkdir()
            for i in range(args.n):
                kind = ("clean", "backdoored")[i % 2]
                shutil.copy(EXAMPLES / f"{kind}.safetensors", folder / f"{kind}-{i:03d}.safetensors")
        models = sum(1 for p in folder.rglob("*") if p.is_file())
        with LocalCluster(n_workers=args.jobs, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
            backends = {"local": ["--jobs", str(args.jobs)],
                        "dask": ["--backend", "dask", "--scheduler", cluster.scheduler_address]}
            times: dict[str, list[float]] = {name: [] for name in backends}
            verdicts = {}
            for run in range(args.runs):
                for name, options in backends.items():
                    seconds, verdicts[name] = _scan(folder, options, Path(tmp) / f"{name}-{run}.json")
                    times[name].append(seconds)
                    print(f"run {run + 1}: {name} {seconds:.1f} s", file=sys.stderr)
        if verdicts["dask"] != verdicts["local"]:
            raise SystemExit("the two backends gave different verdicts")
        counts = {v: [x for _, x in verdicts["local"]].count(v) for v in sorted({x for _, x in verdicts["local"]})}
        medians = {name: statistics.median(t) for name, t in times.items()}
        print(json.dumps({
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
            "models": models, "folder": str(args.models) if args.models else f"{args.n} copies of the two examples",
            "checks": "file safety and weight bank (the default scan)", "verdicts": counts,
            "local": {"options": f"--jobs {args.jobs}", "median_seconds": round(medians["local"], 1),
                      "runs": [round(t, 1) for t in times["local"]]},
            "dask": {"options": f"--backend dask on a running LocalCluster of {args.jobs} worker processes",
                     "median_seconds": round(medians["dask"], 1), "runs": [round(t, 1) for t in times["dask"]]},
            "dask_over_local": round(medians["dask"] / medians["local"], 2),
        }, indent=2))


if __name__ == "__main__":
    main()
