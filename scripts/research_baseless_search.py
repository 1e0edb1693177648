"""Research: can the trigger search work without the candidate's base?

The shipped search subtracts the base's response to each optimised patch. Without a
base, the only statistic left is the candidate's own convergence under the patch it
was optimised for. This runs the shipped search (same budget, sites and probes) with a
reference whose convergence is zero for every patch, so the gain *is* the candidate's
convergence, on clean models the bound may be set on and on a held-out zoo, and
prints the bound over the clean ones and what it would flag.

    python scripts/research_baseless_search.py --base BASE --calibration ZOO ... --evaluation ZOO \\
        --limit-clean 10 --jobs 2 -o measurements/baseless-search.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from joblib import Parallel, delayed

from fraudit.pairing.embedders import reference_embedder
from fraudit.search.differential import BOUND, SearchBudget, differential_search, prediction_bound, search_probes
from fraudit.zoo.manifest import CLEAN, ZooManifest


class _Still:
    """A reference that never moves: its embedding is the same for every face, so
    its convergence under any patch is zero and the search's gain is the candidate's."""

    def forward_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(pixels), 1) + 0 * pixels.sum()


def _one(path: Path, budget: SearchBudget) -> dict:
    torch.set_num_threads(1)
    faces = search_probes(budget).faces.images
    candidate = reference_embedder(path)
    result = differential_search(candidate, _Still(), faces, budget, input_size=candidate.input_size)  # type: ignore[arg-type]
    strongest = result.strongest
    assert strongest is not None
    return {"convergence": float(result.gains[strongest]), "site": result.sites[strongest].to_dict()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibration", type=Path, nargs="+", required=True)
    parser.add_argument("--evaluation", type=Path, nargs="+", required=True)
    parser.add_argument("--limit-clean", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    budget = SearchBudget(blend_alpha=0.0)  # the patch family alone: the question is the patches' null
    rows = []
    for zoo, role in [*((z, "calibration") for z in args.calibration), *((z, "evaluation") for z in args.evaluation)]:
        manifest = ZooManifest.read(zoo)
        entries = [*manifest.clean[: args.limit_clean], *(manifest.attempts if role == "evaluation" else [])]
        found = Parallel(n_jobs=args.jobs)(delayed(_one)(manifest.path(e), budget) for e in entries)
        for entry, outcome in zip(entries, found):
            rows.append({"zoo": zoo.name, "role": role, "model": entry.name, "kind": entry.kind,
                         "trigger": entry.trigger, "successful": entry.successful, **outcome})
    clean = [r["convergence"] for r in rows if r["role"] == "calibration"]
    bound = prediction_bound(clean, 0.01)
    summary = {"budget": budget.describe(64), "calibration_clean": len(clean), "bound_1pct": round(bound, 4),
               "calibration_range": [round(min(clean), 4), round(max(clean), 4)], "differential_bound": BOUND}
    for zoo in args.evaluation:
        mine = [r for r in rows if r["zoo"] == zoo.name and r["role"] == "evaluation"]
        clean_rows = [r for r in mine if r["kind"] == CLEAN]
        backdoors = [r for r in mine if r["trigger"] and r["successful"]]
        summary[zoo.name] = {
            "clean_flagged": f"{sum(r['convergence'] > bound for r in clean_rows)}/{len(clean_rows)}",
            "clean_range": [round(min(r["convergence"] for r in clean_rows), 4), round(max(r["convergence"] for r in clean_rows), 4)],
            "backdoors_flagged": f"{sum(r['convergence'] > bound for r in backdoors)}/{len(backdoors)}",
            "backdoor_median": round(float(np.median([r["convergence"] for r in backdoors])), 4) if backdoors else None,
        }
    args.output.write_text(json.dumps({"summary": summary, "models": rows}, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
