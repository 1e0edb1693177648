"""Build a bank from clean checkpoints: a zoo folder (its clean models) or any
folder of checkpoints the user vouches for."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from fraudit.bank.bank import EstimatorKind, fit_layer_models
from fraudit.bank.layers import audited_layers
from fraudit.bank.store import WeightBank, backbone_digest
from fraudit.formats.safe import load_checked
from fraudit.models.registry import recognise
from fraudit.sources.local import discover


def clean_checkpoints(sources: Sequence[Path], *, limit: int | None = None) -> list[Path]:
    """A zoo's clean models (by its manifest), or every checkpoint of other folders."""
    found: list[Path] = []
    for source in sources:
        manifest = source / "manifest.json"
        if manifest.is_file():
            entries = json.loads(manifest.read_text())["models"]
            found.extend(source / e["file"] for e in entries if e["kind"] == "clean")
        else:
            found.extend(files[0] for files in discover(source))
    return found[:limit] if limit else found


def read_layers(path: Path, layers: Sequence[str]) -> tuple[str, dict[str, np.ndarray]]:
    tensors = load_checked(path)
    arch = recognise({k: tuple(v.shape) for k, v in tensors.items()}).id
    return arch, {k: tensors[k].float().numpy() for k in layers if k in tensors}


def shared_backbone(paths: Sequence[Path], audited: Sequence[str]) -> list[str]:
    """Weights every reference network holds bit-identically (the frozen backbone of
    a common base), excluding audited layers and BatchNorm bookkeeping."""
    first = load_checked(paths[0])
    keys = [k for k, v in first.items() if k not in audited and v.is_floating_point() and not k.endswith(("running_mean", "running_var"))]
    for path in paths[1:]:
        other = load_checked(path)
        keys = [k for k in keys if k in other and other[k].shape == first[k].shape and bool((other[k] == first[k]).all())]
    return sorted(keys)


def build_bank(
    sources: Sequence[Path],
    *,
    architecture: str,
    name: str,
    kind: EstimatorKind = EstimatorKind.INDEX_ALIGNED,
    limit: int | None = 20,
    folds: int = 3,
    em_components: Sequence[int] | None = None,
    recipe: dict | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> WeightBank:
    layers = audited_layers(architecture)
    if not layers:
        raise ValueError(f"no audited layers are defined for architecture {architecture!r}")
    paths = clean_checkpoints(sources, limit=limit)
    networks, names = [], []
    for i, path in enumerate(paths):
        arch, weights = read_layers(path, layers)
        if arch != architecture:
            raise ValueError(f"{path} is {arch}, not {architecture}")
        networks.append(weights)
        names.append(path.name if path.parent.name != "models" else f"{path.parent.parent.name}/{path.name}")
        if progress:
            progress("reading", i + 1, len(paths))
    common = [layer for layer in layers if all(layer in n for n in networks)]
    backbone = shared_backbone(paths, common)
    domain_digest = backbone_digest(load_checked(paths[0]), backbone) if backbone else None
    if progress:
        progress("fitting", 0, 1)
    models = fit_layer_models(networks, common, kind=kind, folds=folds, em_components=em_components)
    if progress:
        progress("fitting", 1, 1)
    return WeightBank(name=name, architecture=architecture, models=models, reference=names,
                      recipe={"estimator": str(kind), "folds": folds, **(recipe or {})},
                      backbone_keys=backbone, backbone_sha256=domain_digest)
