"""Zoo throughput on this machine: seconds per fine-tuned model and models per hour,
for both scenarios, on the full ch4 world (1,000 identities). Medians of N runs,
both scenarios measured in the same process, one after the other.

    python bench/bench_zoo.py --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch

from fraudit.faces.synthetic import build_faces
from fraudit.zoo.base import load_base
from fraudit.zoo.finetune import ModelRecipe, Scenario, cache_world, finetune
from fraudit.zoo.presets import PRESETS, ZOO_WORLD


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    base = load_base()
    t0 = time.perf_counter()
    faces = build_faces(ZOO_WORLD)
    faces_s = time.perf_counter() - t0
    report: dict = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads",
        "world": {"identities": ZOO_WORLD.n_identities, "samples": len(faces)},
        "faces_seconds (cached after first run)": round(faces_s, 1),
    }
    for scenario, preset in ((Scenario.LAST_LAYER, "ch4"), (Scenario.MULTI_LAYER, "ch4-multi")):
        t0 = time.perf_counter()
        world = cache_world(base, faces, scenario)
        features_s = time.perf_counter() - t0
        times = []
        for run in range(args.runs):
            recipe = ModelRecipe(name=f"bench-{run}", scenario=scenario, seed=900 + run, epochs=PRESETS[preset].epochs)
            t0 = time.perf_counter()
            finetune(base, world, recipe)
            times.append(time.perf_counter() - t0)
        median = statistics.median(times)
        report[str(scenario)] = {
            "feature_cache_seconds": round(features_s, 1),
            "seconds_per_model": [round(t, 2) for t in times],
            "median_seconds_per_model": round(median, 2),
            "models_per_hour": round(3600 / median, 1),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
