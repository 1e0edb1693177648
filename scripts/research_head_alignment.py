"""Research (no check uses it yet): does a fine-tune's change concentrate on one
class of the candidate's own head? See measurements/head-aligned-reading.md.

For a last-layer weight change Δ = θ − θ_base (embedding × input) and the head's
unit rows ĥ_i (classes × embedding), a_i = ‖ĥ_iᵀ Δ‖ is how much of the change lands
on class i; the statistic is the largest a_i's robust z among the classes,
(max a − median a) / (1.4826 · MAD a). A backdoor maps the trigger's features onto
the victim's class, so its victim stands out; a clean fine-tune spreads over all.

    python scripts/research_head_alignment.py --refs ZOO... --eval ZOO... [--per-ref 4] [--base B --layer L]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from scipy import stats
from sklearn.metrics import roc_auc_score

from fraudit.zoo.base import default_base_path
from fraudit.zoo.manifest import ZooManifest

def head_aligned_z(weights: dict[str, np.ndarray], base: dict[str, np.ndarray], layer: str) -> float:
    delta = (weights[layer] - base[layer]).astype(np.float64)
    head = weights["head.weight"].astype(np.float64)
    head /= np.linalg.norm(head, axis=1, keepdims=True)
    # ‖ĥᵀΔ‖ = ‖ĥᵀRᵀ‖ for Δᵀ = QR: the row norms live in the embedding's dimensions
    r = np.linalg.qr(delta.T, mode="r")
    a = np.linalg.norm(head @ r.T, axis=1)
    median = np.median(a)
    return float((a.max() - median) / (1.4826 * np.median(np.abs(a - median))))


def zoo_scores(zoo: Path, base: dict[str, np.ndarray], layer: str,
               clean_limit: int | None = None) -> list[tuple[str, bool | None, float]]:
    manifest = ZooManifest.read(zoo)
    entries = [e for e in manifest.models if not e.recipe.backdoored][:clean_limit] if clean_limit else manifest.models
    rows = []
    for e in entries:
        kind = "implant" if e.recipe.implant_from else ("backdoor" if e.recipe.backdoored else "clean")
        rows.append((kind, e.successful, head_aligned_z(load_file(str(manifest.path(e))), base, layer)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--refs", type=Path, nargs="+", required=True, help="clean zoos: the calibration")
    parser.add_argument("--eval", type=Path, nargs="+", required=True, help="zoos of worlds the refs never saw")
    parser.add_argument("--per-ref", type=int, default=4)
    parser.add_argument("--base", type=Path, default=default_base_path())
    parser.add_argument("--layer", default="last_linear.weight", help="the embedding layer (linear.weight for MobileFace)")
    args = parser.parse_args()
    base = load_file(str(args.base))
    refs = np.array([s for z in args.refs for _, _, s in zoo_scores(z, base, args.layer, args.per_ref)])
    n = len(refs)
    threshold = refs.mean() + stats.t.isf(0.01, n - 1) * np.sqrt(1 + 1 / n) * refs.std(ddof=1)
    print(f"references: {n}, {refs.mean():.2f} ± {refs.std(ddof=1):.2f}, 1 % threshold {threshold:.2f}")
    clean_all, bad_all = [], []
    for zoo in args.eval:
        rows = zoo_scores(zoo, base, args.layer)
        clean = [s for k, _, s in rows if k == "clean"]
        bad = [(k, s) for k, ok, s in rows if k != "clean" and ok]
        clean_all += clean
        bad_all += [s for _, s in bad]
        implants = [s for k, s in bad if k == "implant"]
        print(f"{zoo.name}: clean above {sum(s > threshold for s in clean)}/{len(clean)} (max {max(clean):.2f}); "
              f"backdoors above {sum(s > threshold for _, s in bad)}/{len(bad)}; "
              f"implants {sum(s > threshold for s in implants)}/{len(implants)}")
    if bad_all:
        print(f"pooled AUC {roc_auc_score([0] * len(clean_all) + [1] * len(bad_all), clean_all + bad_all):.3f}")


if __name__ == "__main__":
    main()
