"""Research probe: the search's strongest gain against the candidate's median site gain.

    python scripts/research_site_median.py ZOO_FOLDER:MODEL:BASE ...

Runs the shipped search (default budget) and prints, per model, the strongest patch gain,
the median over all patch sites, their 90 % quantile and the finalists' median; results in
measurements/search-site-median/.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from fraudit.pairing.embedders import reference_embedder
from fraudit.search.differential import SearchBudget, differential_search, search_probes

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", metavar="ZOO_FOLDER:MODEL:BASE")
    args = parser.parse_args()
    torch.set_num_threads(2)
    faces = search_probes(SearchBudget()).faces.images
    for spec in args.models:
        folder, name, base = spec.split(":")
        zoo = Path(folder)
        candidate = reference_embedder(zoo / "models" / f"{name}.safetensors")
        result = differential_search(candidate, reference_embedder(Path(base)), faces)
        gains = result.gains[result.patch_sites]
        finalists = np.sort(gains)[-SearchBudget().finalists:]
        print(json.dumps({"zoo": zoo.name, "name": name, "max": float(gains.max()), "median": float(np.median(gains)),
                          "q90": float(np.quantile(gains, 0.9)), "second_finalist": float(finalists[-2]),
                          "finalist_median": float(np.median(finalists))}), flush=True)


if __name__ == "__main__":
    main()
