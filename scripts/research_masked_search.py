"""Research prototype: a shape-free patch family for the differential search.

At each window (W×W px, stride W/2) optimise content θ and a soft mask φ; the mask's
area is capped at A px (the 8-px patch's 64), so the optimiser can draw a ring, a
bar or a cross of the area an 8-px square has. Gain = convergence_cand − convergence_base.
Writes one JSON line per model: every window's gain and the strongest. Measured and not adopted: measurements/search-masked/README.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from fraudit.pairing.embedders import reference_embedder
from fraudit.search.differential import SearchBudget, _Convergence, search_probes
from fraudit.search.sites import face_sites
from fraudit.zoo.manifest import ZooManifest


def masked_search(cand, base, faces, *, window=16, area=64.0, steps=20, scout=5, finalists=8, lr=0.2, seed=0,
                  per_batch=8):
    x = torch.from_numpy(np.ascontiguousarray(faces)).permute(0, 3, 1, 2).float()
    sites = face_sites(64, (window,), overlap=0.5)
    ours, theirs = _Convergence(cand, x), _Convergence(base, x)
    g = torch.Generator().manual_seed(seed)
    n = len(sites)
    theta = torch.randn(n, 3, window, window, generator=g)
    p0 = area / (window * window)
    phi = torch.logit(torch.tensor(p0)) + 0.5 * torch.randn(n, 1, window, window, generator=g)
    theta.requires_grad_(True)
    phi.requires_grad_(True)
    best = torch.full((n,), -np.inf)

    def stamp(idx):
        m = torch.sigmoid(phi[idx])
        total = m.flatten(1).sum(1).clamp_min(1e-6)
        m = m * (area / total).clamp(max=1.0).view(-1, 1, 1, 1)
        t = torch.sigmoid(theta[idx]) * 255
        copies = x.unsqueeze(0).repeat(len(idx), 1, 1, 1, 1)
        for j, i in enumerate(idx):
            s = sites[i]
            r, c = s.window
            region = copies[j, :, :, r, c].clone()
            copies[j, :, :, r, c] = (1 - m[j]) * region + m[j] * t[j]
        return copies.flatten(0, 1)

    opt = torch.optim.Adam([theta, phi], lr=lr)

    def run(idx, k):
        for _ in range(k):
            for b in range(0, len(idx), per_batch):
                chunk = idx[b:b + per_batch]
                st = stamp(chunk)
                gain = ours(st, len(chunk)) - theirs(st, len(chunk))
                with torch.no_grad():
                    t = torch.tensor(chunk)
                    best[t] = torch.maximum(best[t], gain.detach())
                (-gain.sum()).backward()
            opt.step()
            opt.zero_grad()

    # One Adam over every window: a step of the finalists alone still moves the other
    # windows by their decaying moments, which changes nothing read (their best is kept).
    all_idx = list(range(n))
    run(all_idx, scout)
    top = sorted(all_idx, key=lambda i: -float(best[i]))[:finalists]
    run(top, steps - scout)
    return sites, best.numpy().astype(float)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("zoo", type=Path)
    ap.add_argument("--base", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--area", type=float, default=64.0)
    ap.add_argument("--models", nargs="*")
    ap.add_argument("--limit-clean", type=int)
    ap.add_argument("--successful-only", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(2)
    manifest = ZooManifest.read(args.zoo)
    probes = search_probes(SearchBudget())
    faces = probes.faces.images[:12]
    base = reference_embedder(args.base)
    done = set()
    if args.out.exists():
        done = {json.loads(l)["name"] for l in args.out.read_text().splitlines()}
    entries = [*manifest.clean[: args.limit_clean], *manifest.attempts]
    if args.successful_only:
        entries = [e for e in entries if e.kind == "clean" or e.successful]
    if args.models:
        entries = [e for e in entries if e.name in args.models]
    for e in entries:
        if e.name in done:
            continue
        t0 = time.perf_counter()
        cand = reference_embedder(manifest.path(e))
        sites, gains = masked_search(cand, base, faces, window=args.window, area=args.area)
        i = int(np.argmax(gains))
        s = sites[i]
        mask = e.trigger_mask(faces.shape[1:3])
        on = None if mask is None else s.touches(mask)
        rec = {"zoo": args.zoo.name, "name": e.name, "kind": e.kind, "trigger": e.trigger, "recipe": e.recipe_kind,
               "successful": e.successful, "gain": float(gains[i]), "site": s.to_dict(), "on_trigger": on,
               "median": float(np.median(gains)), "gains": [round(float(g), 5) for g in gains],
               "seconds": round(time.perf_counter() - t0, 1), "window": args.window, "area": args.area}
        with args.out.open("a") as f:
            f.write(json.dumps(rec) + "\n")
        print(e.name, e.kind, e.trigger, f"{rec['gain']:.3f}", on, rec["seconds"], flush=True)


if __name__ == "__main__":
    sys.exit(main())
