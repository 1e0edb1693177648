"""What a zoo of another architecture costs on this machine: the frozen part's
throughput (faces per second, run once per face of the world and per poisoned face)
for each fine-tunable architecture and scenario, from a randomly initialised base
(the cost does not depend on the weights). Medians of N timed batches, every
architecture in one run, one after the other.

    python bench/bench_zoo_architectures.py --faces 128 --runs 3
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
from fraudit.models.registry import registered
from fraudit.zoo.finetune import Scenario, trunk_features
from fraudit.zoo.presets import SMOKE_WORLD, ZOO_WORLD

ARCHITECTURES = ("fraudit-reference", "facenet-inception-resnet-v1", "iresnet50")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--faces", type=int, default=128)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    images = build_faces(SMOKE_WORLD).images[: args.faces]
    world_faces = int(ZOO_WORLD.counts().sum())
    report: dict = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
                   f"{torch.get_num_threads()} threads",
        "batch": args.faces,
    }
    for spec in (s for s in registered() if s.id in ARCHITECTURES):
        model = spec.build().eval()
        for scenario in Scenario:
            trunk_features(model, images[:8], scenario)  # warm-up
            times = []
            for _ in range(args.runs):
                start = time.perf_counter()
                trunk_features(model, images, scenario)
                times.append(time.perf_counter() - start)
            per_second = args.faces / statistics.median(times)
            report[f"{spec.id} {scenario}"] = {
                "input": spec.input_size, "faces_per_second": round(per_second, 1),
                "ch4_world_feature_minutes": round(world_faces / per_second / 60, 1),
            }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
