"""What the trigger search costs: a warm search (models loaded, probes built) of a
candidate against its base, per architecture, at the default budget and at the
budget knobs given, coarse to fine (the default) side by side with every site run
for every step (``--no-every-site`` leaves that out), and the library cells (the
library's triggers stamped exactly: forward passes only) beside them. Candidate and base are the
architecture's randomly initialised module and a perturbed copy (the cost does not
depend on the weights); medians of N runs, the two searches interleaved, every
architecture in one run, one after the other.

    python bench/bench_search.py --runs 3
    python bench/bench_search.py --arch facenet-inception-resnet-v1 --runs 1
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
from dataclasses import replace

import torch

from fraudit.models.registry import spec_for
from fraudit.pairing.embedders import TorchEmbedder
from fraudit.search.differential import SearchBudget, differential_search, search_probes
from fraudit.search.library import library_search

ARCHITECTURES = ("fraudit-reference", "fraudit-mobileface")


def _embedder(module: torch.nn.Module, spec, name: str) -> TorchEmbedder:  # noqa: ANN001 - an ArchitectureSpec
    return TorchEmbedder(name=name, module=module, input_size=spec.input_size, mean=spec.mean, scale=spec.scale,
                         fingerprint=name)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", action="append", help=f"architectures (default: {', '.join(ARCHITECTURES)})")
    parser.add_argument("--steps", type=int, default=SearchBudget.steps)
    parser.add_argument("--scout-steps", type=int, default=SearchBudget.scout_steps)
    parser.add_argument("--finalists", type=int, default=SearchBudget.finalists)
    parser.add_argument("--faces", type=int, default=SearchBudget.faces)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-every-site", action="store_true", help="time the coarse-to-fine search alone")
    args = parser.parse_args()
    budget = SearchBudget(steps=args.steps, scout_steps=args.scout_steps, finalists=args.finalists, faces=args.faces)
    budgets = {"coarse_to_fine": budget}
    if not args.no_every_site:
        budgets["every_site"] = replace(budget, finalists=1_000_000)
    faces = search_probes(budget).faces.images
    library_faces = search_probes(budget, budget.library_faces).faces.images
    report: dict = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
                   f"{torch.get_num_threads()} threads",
        "budget": {name: b.describe(faces.shape[1]) for name, b in budgets.items()},
    }
    for architecture in args.arch or ARCHITECTURES:
        spec = spec_for(architecture)
        assert spec is not None and spec.build is not None, architecture
        torch.manual_seed(0)
        base = spec.build().eval()
        candidate = copy.deepcopy(base)
        with torch.no_grad():
            for parameter in candidate.parameters():
                parameter.mul_(1 + 0.05 * torch.randn_like(parameter))
        times: dict[str, list[float]] = {name: [] for name in (*budgets, "library_cells")}
        ours, theirs = _embedder(candidate, spec, "candidate"), _embedder(base, spec, "base")
        for _ in range(args.runs):
            for name, searched in budgets.items():
                times[name].append(differential_search(ours, theirs, faces, searched, input_size=spec.input_size).seconds)
            times["library_cells"].append(library_search(ours, theirs, library_faces, input_size=spec.input_size).seconds)
        row: dict = {"input": spec.input_size}
        for name, runs in times.items():
            row[name] = {"median_seconds": round(statistics.median(runs), 1), "runs": [round(t, 1) for t in runs]}
        if "every_site" in times:
            row["ratio"] = round(statistics.median(times["coarse_to_fine"]) / statistics.median(times["every_site"]), 3)
        report[architecture] = row
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
