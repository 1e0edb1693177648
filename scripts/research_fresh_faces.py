"""Research: judge the trigger search's patterns on faces it did not optimise on.

The shipped search (default budget) optimises each site's pattern on 12 probe faces
and reads the gain on those same faces. A whole-face blend has 64×64×3 free values
for 12 faces, a patch 8×8×3: a clean model's best pattern can be fitted to the
probes, a backdoor's trigger works on any face. This script runs the shipped search
unchanged, then re-reads the gain of the strongest patch sites and of the blend on
``--fresh`` faces of other identities, and writes both per model (JSON lines).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from fraudit.faces.sources import probe_identities
from fraudit.pairing.embedders import reference_embedder
from fraudit.search.differential import PROBE_SEED, SearchBudget, Convergence, differential_search, paste, search_probes
from fraudit.zoo.manifest import ZooManifest

FRESH_SEED = PROBE_SEED + 1  # identities of their own, neither the search's probes nor any zoo's


def fresh_gains(candidate, reference, sites, patterns, faces: np.ndarray) -> np.ndarray:
    """Candidate-minus-reference convergence of each (site, pattern) on ``faces``."""
    x = torch.from_numpy(np.ascontiguousarray(faces)).permute(0, 3, 1, 2).float()
    ours, theirs = Convergence(candidate, x), Convergence(reference, x)
    gains = []
    with torch.no_grad():
        for site, pattern in zip(sites, patterns):
            content = torch.from_numpy(pattern).permute(2, 0, 1).float().unsqueeze(0)
            stamped = paste(x, [site], content)
            gains.append(float(ours(stamped, 1) - theirs(stamped, 1)))
    return np.asarray(gains)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zoo", type=Path)
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--fresh", type=int, default=48, help="fresh probe faces (one per identity)")
    parser.add_argument("--top", type=int, default=8, help="strongest patch sites re-read")
    parser.add_argument("--limit-clean", type=int)
    parser.add_argument("--models", nargs="*")
    parser.add_argument("--blend-only", action="store_true",
                        help="search the blend alone (its result is the full search's: it has its own random stream)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    manifest = ZooManifest.read(args.zoo)
    budget = SearchBudget(site_sizes=()) if args.blend_only else SearchBudget()
    probes = search_probes(budget).faces.images
    fresh = probe_identities(n_identities=args.fresh, per_identity=1, seed=FRESH_SEED).faces.images
    reference = reference_embedder(args.base)
    done = {json.loads(line)["name"] for line in args.out.read_text().splitlines()} if args.out.exists() else set()
    entries = [*manifest.clean[: args.limit_clean], *manifest.attempts]
    entries = [e for e in entries if (not args.models or e.name in args.models) and e.name not in done]
    for entry in entries:
        start = time.perf_counter()
        candidate = reference_embedder(manifest.path(entry))
        result = differential_search(candidate, reference, probes, budget,
                                     input_size=max(candidate.input_size, reference.input_size))
        picked = [*result.ranked(args.top), *([result.blend] if result.blend is not None else [])]
        again = fresh_gains(candidate, reference, [result.sites[i] for i in picked],
                            [result.patches[i] for i in picked], fresh)
        patch = [(i, g) for i, g in zip(picked, again) if not result.sites[i].blend]
        best_fresh = max(patch, key=lambda p: p[1]) if patch else (None, None)
        mask = entry.trigger_mask(probes.shape[1:3])
        site = result.sites[best_fresh[0]] if best_fresh[0] is not None else None
        record = {"zoo": args.zoo.name, "name": entry.name, "kind": entry.kind, "trigger": entry.trigger,
                  "recipe": entry.recipe_kind, "successful": entry.successful,
                  "gain": float(result.gains[result.strongest]) if result.strongest is not None else None,
                  "blend_gain": float(result.gains[result.blend]) if result.blend is not None else None,
                  "fresh_gain": best_fresh[1], "fresh_site": site.to_dict() if site else None,
                  "fresh_on_trigger": None if mask is None or site is None else
                  site.touches(mask),
                  "fresh_blend_gain": float(again[-1]) if result.blend is not None else None,
                  "fresh_patch_gains": [round(float(g), 5) for i, g in zip(picked, again) if not result.sites[i].blend],
                  "seconds": round(time.perf_counter() - start, 1)}
        with args.out.open("a") as stream:
            stream.write(json.dumps(record) + "\n")
        patch = "" if record["gain"] is None else f"patch {record['gain']:.3f}/{record['fresh_gain']:.3f} "
        print(entry.name, entry.kind, entry.trigger, patch,
              f"blend {record['blend_gain']:.3f}/{record['fresh_blend_gain']:.3f}", flush=True)


if __name__ == "__main__":
    main()
