"""A bank on disk: ``bank.safetensors`` (every array) + ``bank.json`` (architecture,
layers, readings, PCA dims, component counts, calibration, thresholds, reference set,
recipe, fraudit version, and the sha256 of the arrays, verified on load)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from fraudit import __version__
from fraudit.artifacts import read_json_object
from fraudit.bank.bank import (
    DATA_DEPENDENT,
    HEAD_KIND,
    RESPONSE_KIND,
    SPECTRUM_KIND,
    TREND_KIND,
    EstimatorKind,
    LayerModel,
    frozen_digest,
)
from fraudit.bank.layers import audited_layers
from fraudit.bank.estimators import IndexAlignedGaussian, PCAGaussianMixture, Projection
from fraudit.bank.folding import SKETCH_DIM, matches_base
from fraudit.bank.readings import Reading, read_vectors, readings_for
from fraudit.bank.response import RESPONSE_KEY, faces_record
from fraudit.cache import file_sha256
from fraudit.errors import CorruptFileError, FrauditError, SourceNotFoundError
from fraudit.rates import format_rate
from fraudit.resources import shipped_relative, verify_shipped

if TYPE_CHECKING:
    import torch

SCHEMA_VERSION = "1.0"
ARRAYS = "bank.safetensors"
HEADER = "bank.json"


@dataclass
class WeightBank:
    name: str
    architecture: str
    models: list[LayerModel]
    reference: list[str]
    frr: tuple[float, ...] = (0.01, 0.05)
    recipe: dict[str, Any] = field(default_factory=dict)
    # The bank's domain: weights every reference network shares bit for bit (the
    # frozen backbone of their common base). A candidate without them is not a
    # fine-tune of that base, and the bank does not apply to it.
    backbone_keys: list[str] = field(default_factory=list)
    backbone_sha256: str | None = None
    # per frozen weight, a sketch that an export with BatchNorm folded in can be checked against
    sketches: dict[str, np.ndarray] = field(default_factory=dict)
    # sha256 of bank.json as loaded (it holds the arrays' digest): what a registry pins
    sha256: str | None = None
    shipped: bool = False  # verified against the digests pinned in fraudit

    def covers(self, tensors: dict[str, "torch.Tensor"], folded: dict[str, "torch.Tensor"] | None = None) -> bool:
        """Does the candidate hold the bank's frozen weights: bit for bit, or — for an
        export with BatchNorm ``folded`` into some layers — every sketched frozen weight,
        exactly where it is exact and up to a per-channel scale where it is folded."""
        if not self.backbone_keys:
            return True
        if folded:
            return bool(self.sketches) and all(
                matches_base(key, sketch, (folded[key] if key in folded else tensors[key]).float().numpy(),
                             folded=key in folded)
                for key, sketch in self.sketches.items() if key in folded or key in tensors
            ) and all(key in folded or key in tensors for key in self.sketches)
        if any(k not in tensors for k in self.backbone_keys):
            return False
        return backbone_digest(tensors, self.backbone_keys) == self.backbone_sha256

    @property
    def layers(self) -> list[str]:
        return sorted({m.layer for m in self.models})

    @property
    def read_keys(self) -> list[str]:
        """The candidate tensors the bank reads: its layers, and the heads it reads them along."""
        return sorted({m.layer for m in self.models} | {m.head_key for m in self.models if m.head_key})

    def inputs(self, tensors: dict[str, "torch.Tensor"],
               response: Callable[[], np.ndarray]) -> tuple[dict[str, np.ndarray], str | None]:
        """What the bank scores of a candidate: its ``read_keys`` tensors and — when the
        bank has a head-response reading and the candidate ships the head it reads
        along — ``response()``, the candidate's embeddings of the response faces (the
        caller's, so several banks share one run); and why the response was not read,
        when the network cannot be run (its weights are read alone)."""
        arrays = {key: tensors[key].float().numpy() for key in self.read_keys if key in tensors}
        if any(m.kind == RESPONSE_KIND and m.head_key in tensors for m in self.models):
            try:
                arrays[RESPONSE_KEY] = response()
            except FrauditError as exc:
                return arrays, f"head-response not read: {exc}"
        return arrays, None

    @property
    def fail_frr(self) -> float:
        """The FRR of the FAIL threshold: the strictest rate the bank was calibrated at."""
        return min(self.frr)

    @property
    def warn_frr(self) -> float:
        """The FRR of the WARN threshold: the laxest rate the bank was calibrated at."""
        return max(self.frr)

    def __rich__(self) -> Group:
        estimator = self.recipe.get("estimator")
        title = Text.from_markup(
            f"bank [bold]{escape(self.name)}[/] for [bold]{escape(self.architecture)}[/]: {len(self.reference)} clean "
            f"reference networks, thresholds at FRR {', '.join(format_rate(f) for f in self.frr)}, estimator {estimator}"
        )
        table = Table()
        for column in ("layer", "reading", "kind", "PCA dims", "components", "clean score (mean ± std)",
                       "between sources"):
            table.add_column(column)
        for m in self.models:
            fitted = m.estimators[0] if m.estimators else None
            table.add_row(m.layer, str(m.reading), m.kind,
                          str(fitted.n_dims_) if fitted else "—", str(fitted.n_components_) if fitted else "—",
                          _calibration_text(m), _dependence_text(m.data_dependence))
        parts: list = [title, table]
        left_out = self.recipe.get("readings_left_out")
        if left_out:
            parts.append(Text(f"readings left out at build: {', '.join(left_out)}"))
        if any(m.data_dependence is not None for m in self.models):
            parts.append(Text(
                "between sources: the share of the references' spread in a reading that lies between their "
                f"sources (face worlds) rather than within them (ICC); from {DATA_DEPENDENT:.0%} up, the reading "
                "reads the fine-tuning data more than the model, and clean fine-tunes on data unlike the "
                "references' may fall outside its range"))
        return Group(*parts)


def _dependence_text(share: float | None) -> str:
    if share is None:
        return "—"
    return f"[bold red]{share:.0%}[/]" if share >= DATA_DEPENDENT else f"{share:.0%}"


def _calibration_text(m: LayerModel) -> str:
    if m.kind == "frozen":
        return "bit-identical to base"
    if m.kind == SPECTRUM_KIND:  # the score is −log(s₁ / median s): say it as the ratio
        return f"s₁/median s {np.exp(-m.mean):.3f} (score {m.mean:.4f} ± {m.std:.4f})"
    if m.kind == TREND_KIND:  # the score is −log(s₁ / trend of s₂…s₁₂ at 1): say it as the ratio
        return f"s₁/trend {np.exp(-m.mean):.3f} (score {m.mean:.4f} ± {m.std:.4f})"
    if m.kind == HEAD_KIND:  # the score is minus the largest class's robust z: say it as that z
        return f"largest class share, robust z {-m.mean:.2f} ± {m.std:.2f} (of {m.head_key})"
    if m.kind == RESPONSE_KIND:
        return f"largest class response, robust z {-m.mean:.2f} ± {m.std:.2f} (along {m.head_key})"
    return f"{m.mean:.1f} ± {m.std:.1f}"


def save_bank(bank: WeightBank, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    entries = []
    for i, m in enumerate(bank.models):
        prefix = f"{i:02d}."
        arrays[prefix + "oof_scores"] = m.oof_scores
        arrays[prefix + "oof_vector_mean"] = m.oof_vector_mean
        arrays[prefix + "oof_vector_std"] = m.oof_vector_std
        entry: dict[str, Any] = {"index": i, "layer": m.layer, "reading": str(m.reading), "shape": list(m.shape), "kind": m.kind}
        if m.kind == "frozen":
            assert m.reference is not None
            entry["reference_sha256"] = m.reference
        elif m.kind in (SPECTRUM_KIND, TREND_KIND, HEAD_KIND, RESPONSE_KIND):
            assert m.base_weight is not None
            if m.kind == RESPONSE_KIND:  # base_weight: the base's embeddings of these faces
                entry["response_faces"] = faces_record()
            arrays[prefix + "base_weight"] = m.base_weight
            if m.unit_scores is not None:
                arrays[prefix + "unit_scores"] = m.unit_scores
            entry["base_sha256"] = frozen_digest(m.base_weight)
            if m.head_key is not None:
                entry["head_key"] = m.head_key
        else:
            for fold, est in enumerate(m.estimators):
                arrays[f"{prefix}fold{fold}.pca_mean"] = est.pca_.mean_
                arrays[f"{prefix}fold{fold}.pca_components"] = est.pca_.components_
                for key, value in est.to_arrays().items():
                    arrays[f"{prefix}fold{fold}.{key}"] = value
            first = m.estimators[0]
            entry["folds"] = len(m.estimators)
            entry["pca_dims"] = first.n_dims_
            entry["components"] = first.n_components_
            if isinstance(first, PCAGaussianMixture):
                entry["bic"] = [{str(k): v for k, v in e.bic_.items()} for e in m.estimators]
                entry["aic"] = [{str(k): v for k, v in e.aic_.items()} for e in m.estimators]
        entry["calibration"] = {"mean": m.mean, "std": m.std, "n": int(len(m.oof_scores)),
                                **({"data_dependence": m.data_dependence} if m.data_dependence is not None else {})}
        entries.append(entry)
    for key, sketch in bank.sketches.items():
        arrays[f"sketch.{key}"] = sketch
    path = out / ARRAYS
    # float32 on disk, PCA bases in float16 (orthonormal rows: half precision moves
    # held-out z-scores by < 0.05); every computation runs in float64
    save_file(
        {k: np.ascontiguousarray(v, dtype=np.float16 if k.endswith("pca_components") else np.float32) for k, v in arrays.items()},
        str(path),
    )
    header = {
        "schema_version": SCHEMA_VERSION,
        "fraudit_version": __version__,
        "name": bank.name,
        "architecture": bank.architecture,
        "layers": bank.layers,
        "frr": list(bank.frr),
        "reference_networks": bank.reference,
        "reference_size": len(bank.reference),
        "recipe": bank.recipe,
        "backbone_keys": bank.backbone_keys,
        "backbone_sha256": bank.backbone_sha256,
        "sketched_weights": sorted(bank.sketches),
        "models": entries,
        "arrays_sha256": file_sha256(path),
    }
    (out / HEADER).write_text(json.dumps(header, indent=2) + "\n")
    return out


def load_bank(folder: Path) -> WeightBank:
    """A bank, verified: a shipped one against the digests pinned in fraudit, any one
    against its own arrays digest and for a header that matches its arrays (every
    array used, every shape consistent with its layer and reading)."""
    header = bank_header(folder)
    arrays_path = folder / ARRAYS
    if not arrays_path.is_file():
        raise SourceNotFoundError(f"{folder} is not a bank (needs {HEADER} and {ARRAYS})", path=folder)
    header_digest = verify_shipped(folder / HEADER) or file_sha256(folder / HEADER)
    digest = verify_shipped(arrays_path) or file_sha256(arrays_path)
    if digest != header.get("arrays_sha256"):
        raise CorruptFileError(f"{folder}: {ARRAYS} does not match the sha256 in {HEADER}; refusing a tampered bank",
                               path=folder)
    try:
        arrays = load_file(str(arrays_path))
        bank = _from_arrays(header, arrays)
    except (SafetensorError, KeyError, TypeError, ValueError) as exc:
        raise CorruptFileError(f"{folder}: not a fraudit bank ({type(exc).__name__}: {exc})", path=folder) from exc
    bank.sha256 = header_digest
    bank.shipped = shipped_relative(folder / HEADER) is not None
    return bank


def _from_arrays(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> WeightBank:
    sketch_keys = list(header.get("sketched_weights", []))
    sketches = {key: arrays.pop(f"sketch.{key}").astype(np.float64) for key in sketch_keys}
    if any(k.startswith("sketch.") for k in arrays) or any(v.ndim != 2 or v.shape[1] != SKETCH_DIM for v in sketches.values()):
        raise ValueError("the frozen-weight sketches do not match the header")
    entries = header["models"]
    indices = [int(entry["index"]) for entry in entries]
    if indices != list(range(len(entries))):
        raise ValueError("model entries are not numbered 0..n-1")
    orphans = sorted({k.split(".", 1)[0] for k in arrays} - {f"{i:02d}" for i in indices})
    if orphans:
        raise ValueError(f"arrays {', '.join(orphans)} belong to no layer of the header (layers removed from it?)")
    if sorted({entry["layer"] for entry in entries}) != sorted(header["layers"]):
        raise ValueError("the header's layer list does not match its models")
    known = audited_layers(header["architecture"])
    strangers = sorted({entry["layer"] for entry in entries} - set(known)) if known else []
    if strangers:
        raise ValueError(f"layers {', '.join(strangers)} are not audited layers of {header['architecture']}")
    models = []
    for entry in entries:
        prefix = f"{entry['index']:02d}."
        own = {k[len(prefix):]: v.astype(np.float64) for k, v in arrays.items() if k.startswith(prefix)}
        _check_shapes(entry, own, reference_size=len(header["reference_networks"]))
        estimators: list = []
        if entry["kind"] not in ("frozen", SPECTRUM_KIND, TREND_KIND, HEAD_KIND, RESPONSE_KIND):
            cls = IndexAlignedGaussian if entry["kind"] == EstimatorKind.INDEX_ALIGNED else PCAGaussianMixture
            for fold in range(entry["folds"]):
                fold_arrays = {k.split(".", 1)[1]: v for k, v in own.items() if k.startswith(f"fold{fold}.")}
                projection = Projection(fold_arrays["pca_mean"], fold_arrays["pca_components"])
                estimators.append(cls.from_arrays(fold_arrays, projection))
        models.append(LayerModel(
            layer=entry["layer"], reading=Reading(entry["reading"]), shape=tuple(entry["shape"]), kind=entry["kind"],
            estimators=estimators, reference=entry.get("reference_sha256"), oof_scores=own["oof_scores"],
            oof_vector_mean=own["oof_vector_mean"], oof_vector_std=own["oof_vector_std"],
            base_weight=own.get("base_weight"), unit_scores=own.get("unit_scores"), head_key=entry.get("head_key"),
            data_dependence=_share(entry.get("calibration", {}).get("data_dependence")),
        ))
    return WeightBank(
        name=header["name"], architecture=header["architecture"], models=models,
        reference=header["reference_networks"], frr=tuple(header["frr"]), recipe=header["recipe"],
        backbone_keys=header.get("backbone_keys", []), backbone_sha256=header.get("backbone_sha256"),
        sketches=sketches,
    )


def _share(value: Any) -> float | None:
    """A reading's measured share between sources, as the header states it (or None)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"data_dependence {value!r} is not a share between 0 and 1")
    return float(value)


def _check_shapes(entry: dict[str, Any], own: dict[str, np.ndarray], *, reference_size: int) -> None:
    """A header entry must describe the arrays it points at: its layer shape gives the
    number and length of the vectors every array is indexed by."""
    shape = tuple(int(d) for d in entry["shape"])
    reading = Reading(entry["reading"])
    if (reading is Reading.SPECTRUM) != (entry["kind"] == SPECTRUM_KIND) or \
            (reading is Reading.SPECTRUM_TREND) != (entry["kind"] == TREND_KIND) or \
            (reading is Reading.HEAD_ALIGNED) != (entry["kind"] == HEAD_KIND) or \
            (reading is Reading.HEAD_RESPONSE) != (entry["kind"] == RESPONSE_KIND):
        raise ValueError(f"{entry['layer']}: a {reading} reading of kind {entry['kind']}")
    if reading in (Reading.HEAD_ALIGNED, Reading.HEAD_RESPONSE) and not isinstance(entry.get("head_key"), str):
        raise ValueError(f"{entry['layer']}: a {reading} reading that names no head")
    if reading is Reading.HEAD_RESPONSE and entry.get("response_faces") != faces_record():
        raise ValueError(f"{entry['layer']}: a head-response reading on faces {entry.get('response_faces')}, "
                         f"not this fraudit's {faces_record()}")
    if reading in (Reading.SPECTRUM, Reading.SPECTRUM_TREND, Reading.HEAD_ALIGNED, Reading.HEAD_RESPONSE):
        base = own.get("base_weight")
        if base is None or base.shape != shape or frozen_digest(base) != entry.get("base_sha256"):
            what = "embeddings" if reading is Reading.HEAD_RESPONSE else "weights"
            raise ValueError(f"{entry['layer']}: the {reading} reading's base {what} are missing or not the ones recorded")
        unit = own.get("unit_scores")
        if own["oof_scores"].shape != (reference_size,) or own["oof_vector_mean"].shape != (1,) or (
                unit is not None and unit.shape != (reference_size,)):
            raise ValueError(f"{entry['layer']}: spectrum calibration does not hold one score per reference network")
        return
    if reading not in readings_for(shape):
        raise ValueError(f"{entry['layer']}: no {reading} reading for a weight of shape {shape}")
    n_vectors, dim = read_vectors(np.zeros(shape, np.float32), reading).shape
    key = f"{entry['layer']}:{reading}"
    if own["oof_scores"].shape != (reference_size,):
        raise ValueError(f"{key}: {len(own['oof_scores'])} calibration scores for {reference_size} reference networks")
    if own["oof_vector_mean"].shape != (n_vectors,) or own["oof_vector_std"].shape != (n_vectors,):
        raise ValueError(f"{key}: per-vector calibration does not have {n_vectors} vectors")
    if entry["kind"] == "frozen":
        return
    for fold in range(int(entry["folds"])):
        components = own[f"fold{fold}.pca_components"]
        if components.ndim != 2 or components.shape[1] != dim or own[f"fold{fold}.pca_mean"].shape != (dim,):
            raise ValueError(f"{key}: fold {fold}'s projection is not for {dim}-long vectors")
        means = own.get(f"fold{fold}.means")
        if entry["kind"] == EstimatorKind.INDEX_ALIGNED and (means is None or means.shape != (n_vectors, components.shape[0])):
            raise ValueError(f"{key}: fold {fold}'s means are not one per vector in the projected space")


def backbone_digest(tensors: dict, keys: list[str]) -> str:
    digest = hashlib.sha256()
    for key in keys:
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(tensors[key].float().numpy(), dtype=np.float32).tobytes())
    return digest.hexdigest()


def bank_header(folder: Path) -> dict[str, Any]:
    """The bank's JSON header, without loading or verifying its arrays."""
    path = folder / HEADER
    header = read_json_object(path, kind="a fraudit bank header",
                              missing=f"{folder} is not a bank (needs {HEADER} and {ARRAYS})")
    if "architecture" not in header:
        raise CorruptFileError(f"{path}: not a fraudit bank header", path=path)
    return header
