"""Evaluate a bank on zoos it never saw: AUC per layer/reading and consolidated,
TPR at the bank's FRR thresholds (with the FRR measured on held-out clean models),
the L1-from-base baseline, and ROC / DET / per-vector plots."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from fraudit.bank.bank import score_network
from fraudit.bank.build import read_layers
from fraudit.bank.response import response_embeddings
from fraudit.bank.store import WeightBank
from fraudit.cache import file_sha256
from fraudit.formats.safe import load_checked
from fraudit.rates import format_rate
from fraudit.zoo.base import default_base_path
from fraudit.zoo.manifest import BACKDOORED, CLEAN, ZooManifest


@dataclass
class ScoredModel:
    name: str
    path: Path
    kind: str
    successful: bool | None
    trigger: str | None
    recipe: str | None  # one-to-one, many-to-one or implant (backdoors)
    z: dict[str, float]
    p: float
    l1: dict[str, float]
    vector_z: dict[str, list[float]] = field(default_factory=dict)


def evaluate_bank(bank: WeightBank, zoos: Sequence[Path], *, plots: Path | None = None) -> dict[str, Any]:
    """The bank on zoos it never saw: AUC, TPR at its FRRs, measured FRR, L1 baseline
    (when the zoos share fraudit's shipped base), the protocol, and plots if asked."""
    manifests = [ZooManifest.read(zoo) for zoo in zoos]
    models = score_zoo_models(bank, manifests, base_weights=_shipped_base_weights(manifests))
    report = summarise(bank, models)
    report["protocol"] = (
        f"bank fitted and calibrated on {len(bank.reference)} clean networks only; evaluated on "
        f"{', '.join(z.name for z in zoos)} (the bank's own reference networks excluded)"
    )
    if plots is not None:
        paths = plot(bank, models, plots)
        clean = next((m for m in models if m.kind == CLEAN), None)
        bad = next((m for m in models if m.successful), None)
        if clean and bad:
            paths.append(vector_picture(bank, clean.path, bad.path, plots / "per_vector.png"))
        report["plots"] = [str(p) for p in paths]
    return report


def _shipped_base_weights(manifests: Sequence[ZooManifest]) -> dict[str, np.ndarray] | None:
    """The L1-from-base baseline needs the zoos' base: fraudit's shipped one, when they used it."""
    base = default_base_path()
    if not manifests or not base.is_file():
        return None
    digest = file_sha256(base)
    if any(m.base_sha256 != digest for m in manifests):
        return None
    return {k: v.float().numpy() for k, v in load_checked(base).items()}


def score_zoo_models(bank: WeightBank, manifests: Sequence[ZooManifest], *,
                     base_weights: dict[str, np.ndarray] | None) -> list[ScoredModel]:
    scored = []
    layers = bank.layers
    for manifest in manifests:
        for entry in manifest.models:
            name = manifest.reference_name(entry)
            if name in bank.reference:
                continue  # never evaluate on the bank's own reference networks
            tensors = load_checked(manifest.path(entry))
            weights, _ = bank.inputs(tensors, lambda: response_embeddings(name, tensors))
            score = score_network(bank.models, weights, frr=bank.frr)
            l1 = {}
            if base_weights is not None:
                l1 = {layer: float(np.abs(weights[layer] - base_weights[layer]).sum()) for layer in layers if layer in base_weights and layer in weights}
            scored.append(ScoredModel(
                name=name, path=manifest.path(entry), kind=entry.kind, successful=entry.successful,
                trigger=entry.trigger, recipe=entry.recipe_kind, z={s.key: s.z for s in score.layers}, p=score.p,
                l1=l1,
            ))
    return scored


def _auc(labels: np.ndarray, anomaly: np.ndarray) -> float | None:
    finite = np.nan_to_num(anomaly, posinf=1e300, neginf=-1e300)
    return float(roc_auc_score(labels, finite)) if 0 < labels.sum() < len(labels) else None


def summarise(bank: WeightBank, models: list[ScoredModel]) -> dict:
    clean = [m for m in models if m.kind == CLEAN]
    report: dict = {"bank": bank.name, "reference_size": len(bank.reference), "clean_evaluated": len(clean)}
    for positives_name, positives in (
        ("successful backdoors", [m for m in models if m.kind == BACKDOORED and m.successful]),
        ("all attempts", [m for m in models if m.kind == BACKDOORED]),
    ):
        group = clean + positives
        labels = np.array([m.kind == BACKDOORED for m in group], dtype=int)
        section: dict = {"positives": len(positives)}
        section["auc_consolidated"] = _auc(labels, np.array([-np.log(max(m.p, 1e-300)) for m in group]))
        section["auc_per_reading"] = {
            key: _auc(labels, np.array([-m.z[key] for m in group])) for key in sorted(group[0].z) if group
        } if group else {}
        for frr in bank.frr:
            section[f"tpr_at_frr_{format_rate(frr)}"] = float(np.mean([m.p < frr for m in positives])) if positives else None
        if group and group[0].l1:
            clean_means = {layer: np.mean([m.l1[layer] for m in clean]) for layer in sorted(group[0].l1)}
            # a layer no clean run moves (frozen) carries no L1 signal and cannot be normalised
            layers = [layer for layer, mean in clean_means.items() if mean > 0]
            section["l1_baseline_auc_per_layer"] = {layer: _auc(labels, np.array([m.l1[layer] for m in group])) for layer in layers}
            section["l1_baseline_auc_consolidated"] = _auc(
                labels, np.array([sum(m.l1[layer] / clean_means[layer] for layer in layers) for m in group])
            )
        report[positives_name] = section
    # the bank reads weights, not triggers: its detection per recipe and per trigger says where it is blind
    successful = [m for m in models if m.kind == BACKDOORED and m.successful]
    for name, key in (("per_recipe", lambda m: str(m.recipe)), ("per_trigger", lambda m: str(m.trigger))):
        groups: dict[str, list[ScoredModel]] = {}
        for m in successful:
            groups.setdefault(key(m), []).append(m)
        report[name] = {value: {"successful": len(group), **{f"tpr_at_frr_{format_rate(frr)}": float(np.mean(
            [m.p < frr for m in group])) for frr in bank.frr}} for value, group in sorted(groups.items())}
    report["measured_frr"] = {format_rate(frr): float(np.mean([m.p < frr for m in clean])) if clean else None for frr in bank.frr}
    report["clean_per_reading"] = _clean_per_reading(bank, clean)
    return report


def _clean_per_reading(bank: WeightBank, clean: list[ScoredModel]) -> dict[str, dict[str, float | None]]:
    """How the held-out clean models sit in each reading's calibrated distribution:
    median and lowest z, and the share below each FRR's z threshold. Readings that
    do not survive a change of data (other identities) show up here first."""
    from scipy.stats import norm

    out: dict[str, dict[str, float | None]] = {}
    for key in sorted(clean[0].z) if clean else []:
        z = np.array([m.z[key] for m in clean], dtype=np.float64)
        finite = np.nan_to_num(z, neginf=-1e300)
        entry: dict[str, float | None] = {"median_z": float(np.median(finite)), "min_z": float(finite.min())}
        for frr in bank.frr:
            entry[f"below_{format_rate(frr)}"] = float(np.mean(finite < norm.ppf(frr)))
        out[key] = entry
    return out


def plot(bank: WeightBank, models: list[ScoredModel], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import norm

    out.mkdir(parents=True, exist_ok=True)
    clean = [m for m in models if m.kind == CLEAN]
    positives = [m for m in models if m.kind == BACKDOORED and m.successful]
    if not clean or not positives:
        return []
    group = clean + positives
    labels = np.array([m.kind == BACKDOORED for m in group], dtype=int)
    curves = {"consolidated": np.array([-np.log(max(m.p, 1e-300)) for m in group])}
    for key in sorted(group[0].z):
        curves[key] = np.nan_to_num(np.array([-m.z[key] for m in group]), posinf=1e300, neginf=-1e300)
    fig, (roc_ax, det_ax) = plt.subplots(1, 2, figsize=(11, 4.5))
    for key, values in curves.items():
        fpr, tpr, _ = roc_curve(labels, values)
        roc_ax.plot(fpr, tpr, label=f"{key} (AUC {roc_auc_score(labels, values):.3f})", lw=2 if key == "consolidated" else 1)
        clip = np.clip
        det_ax.plot(norm.ppf(clip(fpr, 1e-3, 1 - 1e-3)), norm.ppf(clip(1 - tpr, 1e-3, 1 - 1e-3)), lw=2 if key == "consolidated" else 1)
    roc_ax.set(xlabel="false rejection of clean models (FPR)", ylabel="backdoors detected (TPR)", title=f"ROC, bank {bank.name}")
    roc_ax.legend(fontsize=7, loc="lower right")
    ticks = [0.001, 0.01, 0.05, 0.2, 0.5]
    det_ax.set_xticks(norm.ppf(ticks), [f"{t:g}" for t in ticks])
    det_ax.set_yticks(norm.ppf(ticks), [f"{t:g}" for t in ticks])
    det_ax.set(xlabel="FPR (probit)", ylabel="FNR (probit)", title="DET")
    fig.suptitle(f"{len(clean)} held-out clean vs {len(positives)} successful backdoors")
    fig.tight_layout()
    paths = [out / "roc_det.png"]
    fig.savefig(paths[0], dpi=110)
    plt.close(fig)
    return paths


def vector_picture(bank: WeightBank, clean_path: Path, backdoored_path: Path, out: Path) -> Path:
    """Appendix B's picture: per-vector z along the index, clean vs backdoored, per reading."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    readings = [m for m in bank.models if m.kind != "frozen"]
    fig, axes = plt.subplots(len(readings), 1, figsize=(11, 2.2 * len(readings)), squeeze=False)
    for ax, model in zip(axes[:, 0], readings):
        for path, colour in ((clean_path, "tab:green"), (backdoored_path, "tab:red")):
            _, weights = read_layers(path, [model.layer])
            if model.layer not in weights:
                continue
            z = (model.vector_scores(weights[model.layer]) - model.oof_vector_mean) / model.oof_vector_std
            ax.plot(z, ".", ms=2, color=colour, label=path.stem)
        ax.set_ylabel(model.key, fontsize=7)
        ax.set_ylim(-15, 5)
    axes[0, 0].legend(fontsize=7)
    axes[-1, 0].set_xlabel("vector index")
    fig.suptitle("per-vector log-likelihood, z against held-out clean references")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
