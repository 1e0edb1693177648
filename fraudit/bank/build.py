"""Build a bank from clean checkpoints: a zoo folder (its clean models) or any
folder of checkpoints the user vouches for."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from pathlib import Path

import numpy as np
import torch

from fraudit.bank.bank import MIN_REFERENCES, EstimatorKind, fit_layer_models
from fraudit.bank.folding import channel_sketch
from fraudit.bank.readings import Reading, ReadingSet
from fraudit.bank.response import RESPONSE_KEY, faces_record, response_embeddings
from fraudit.cache import file_sha256
from fraudit.bank.layers import audited_layers
from fraudit.bank.localise import head_key_of
from fraudit.bank.store import WeightBank, backbone_digest
from fraudit.errors import IncompatibleArtifactError, NotEnoughDataError
from fraudit.formats.safe import load_checked
from fraudit.models.registry import recognise, spec_for
from fraudit.zoo.manifest import MANIFEST, MODELS, ZooManifest, clean_checkpoints


def read_layers(path: Path, layers: Sequence[str]) -> tuple[str, dict[str, np.ndarray]]:
    return _select(load_checked(path), layers)


def _select(tensors: dict[str, torch.Tensor], layers: Sequence[str]) -> tuple[str, dict[str, np.ndarray]]:
    arch = recognise({k: tuple(v.shape) for k, v in tensors.items()}).id
    return arch, {k: tensors[k].float().numpy() for k in layers if k in tensors}


def shared_backbone(first: dict[str, torch.Tensor], keys: Sequence[str], other: dict[str, torch.Tensor]) -> list[str]:
    """The ``keys`` that ``other`` holds bit-identically to ``first``."""
    return [k for k in keys if k in other and other[k].shape == first[k].shape and bool((other[k] == first[k]).all())]


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
    layers: Sequence[str] | None = None,
    readings: ReadingSet = ReadingSet.VECTORS,
    base: Path | None = None,
    per_source: int | None = None,
    without: Collection[Reading] = (),
    progress: Callable[[str, int, int], None] | None = None,
) -> WeightBank:
    """``layers``: a subset of the architecture's audited layers (default: all of them),
    e.g. without an identity-indexed head when the references span several face worlds.

    ``readings``: the thesis' vectors, or the spectrum of each trained layer's change
    from ``base`` (default for zoo folders: the base they were fine-tuned from, when
    it is the shipped one). A layer the base does not hold (a new classification
    head) has no change to read and is left out, and the bank says so.
    ``per_source``: at most this many clean models from each source, so that a bank
    over several face worlds weighs each world alike. The bank records how many
    identities its references' heads were trained on (``head_classes``): a candidate
    whose head says it was trained on a number outside that range is outside the
    bank's domain (measured: a 300-identity world's clean fine-tunes all FAIL a bank of
    1,000-identity references).

    Each source is taken for one face world (dataset): every reading's
    ``data_dependence`` — how much of its references' spread lies between sources —
    is measured over them, and ``without`` leaves readings out (the recipe says which)."""
    audited = audited_layers(architecture)
    if not audited:
        raise IncompatibleArtifactError(f"no audited layers are defined for architecture {architecture!r}")
    unknown = sorted(set(layers or ()) - set(audited))
    if unknown:
        raise IncompatibleArtifactError(f"{', '.join(unknown)}: not audited layers of {architecture} "
                                        f"(those are {', '.join(audited)})")
    layers = tuple(layers) if layers else audited
    foreign = sorted(set(map(str, without)) - set(map(str, readings.readings)))
    if foreign:
        raise IncompatibleArtifactError(f"{', '.join(foreign)}: not a reading of a {readings} bank "
                                        f"(those are {', '.join(map(str, readings.readings))})")
    base_weights: dict[str, np.ndarray] | None = None
    left_out: dict[str, str] = {}
    if readings.reads_change:
        base = base or _zoo_base(sources)
        base_tensors = load_checked(base)
        base_weights = {k: base_tensors[k].float().numpy() for k in layers if k in base_tensors}
        left_out = {k: "not in the base: a layer fine-tuning adds (e.g. an identity-indexed head)"
                    for k in layers if k not in base_tensors}
        layers = tuple(k for k in layers if k in base_tensors)
    found = [(i, p) for i, source in enumerate(sources) for p in clean_checkpoints([source], limit=per_source)]
    origin = [i for i, _ in found][:limit]
    paths = [p for _, p in found][:limit]
    if len(paths) < MIN_REFERENCES:
        raise NotEnoughDataError(f"a bank needs at least {MIN_REFERENCES} clean reference networks; "
                                 f"found {len(paths)} in {', '.join(map(str, sources))}")
    spec = spec_for(architecture)
    networks, names = [], []
    head: tuple[str, str] | None = None
    classes: set[int] = set()  # how many identities the references' heads were trained on
    first: dict[str, torch.Tensor] = {}
    backbone: list[str] = []
    for i, path in enumerate(paths):
        tensors = load_checked(path)
        arch, weights = _select(tensors, layers)
        if arch != architecture:
            raise IncompatibleArtifactError(f"{path} is {arch}, not {architecture}", path=path)
        # The bank's domain: weights every reference holds bit-identically (the frozen
        # backbone of their common base), except audited layers and BN running statistics.
        if i == 0:
            first = tensors
            key = head_key_of({k: tuple(v.shape) for k, v in tensors.items()}, spec) if spec else None
            if readings in (ReadingSet.HEAD_ALIGNED, ReadingSet.HEAD_RESPONSE) and spec is not None and key is not None:
                head = (spec.embedding_key, key)
            backbone = [k for k, v in tensors.items() if k not in layers and v.is_floating_point()
                        and not k.endswith(("running_mean", "running_var"))]
        else:
            backbone = shared_backbone(first, backbone, tensors)
        own_head = head_key_of({k: tuple(v.shape) for k, v in tensors.items()}, spec) if spec else None
        if own_head is not None:
            classes.add(int(tensors[own_head].shape[0]))
        if head is not None and head[1] in tensors:
            weights[head[1]] = tensors[head[1]].float().numpy()
            if readings is ReadingSet.HEAD_RESPONSE:
                weights[RESPONSE_KEY] = response_embeddings(path.name, tensors)
        networks.append(weights)
        names.append(path.name if path.parent.name != MODELS else f"{path.parent.parent.name}/{path.name}")
        if progress:
            progress("reading", i + 1, len(paths))
    common = [layer for layer in layers if all(layer in n for n in networks)]
    backbone = sorted(k for k in backbone if k not in common)
    domain_digest = backbone_digest(first, backbone) if backbone else None
    if head is not None and readings is ReadingSet.HEAD_RESPONSE and base_weights is not None:
        base_weights[RESPONSE_KEY] = response_embeddings("base", base_tensors)
    if progress:
        progress("fitting", 0, 1)
    models = fit_layer_models(networks, common, kind=kind, folds=folds, em_components=em_components,
                              readings=readings, base=base_weights, head=head, without=without, sources=origin)
    if progress:
        progress("fitting", 1, 1)
    if without and all(m.kind == "frozen" for m in models):
        raise IncompatibleArtifactError(f"without {', '.join(map(str, without))}, the bank would read no trained layer")
    # what an export with BatchNorm folded in is matched against: every frozen weight
    frozen = [*backbone, *sorted({m.layer for m in models if m.kind == "frozen"})]
    sketches = {key: channel_sketch(key, first[key].float().numpy()) for key in frozen if first[key].ndim >= 2}
    worlds = [ZooManifest.read(s).face_domain for s in sources if (s / MANIFEST).is_file()]
    return WeightBank(name=name, architecture=architecture, models=models, reference=names,
                      recipe={"estimator": str(kind) if readings is ReadingSet.VECTORS else f"none ({readings})",
                              "readings": str(readings), "folds": folds,
                              **({"response_faces": faces_record()} if readings is ReadingSet.HEAD_RESPONSE else {}),
                              **({"base_sha256": file_sha256(base), "layers_left_out": left_out} if base else {}),
                              **({"worlds": worlds} if worlds else {}),
                              **({"head_classes": sorted(classes)} if classes else {}),
                              **({"readings_left_out": sorted(map(str, without))} if without else {}), **(recipe or {})},
                      backbone_keys=backbone, backbone_sha256=domain_digest, sketches=sketches)


def _zoo_base(sources: Sequence[Path]) -> Path:
    """The base every source zoo was fine-tuned from, when fraudit ships it."""
    from fraudit.zoo.base import default_base_path

    if not all((s / MANIFEST).is_file() for s in sources):
        raise NotEnoughDataError("the spectrum reading needs the base the references were fine-tuned from: "
                                 "pass --base (it is read from the manifests only when every source is a zoo)")
    shipped = default_base_path()
    if {ZooManifest.read(s).base_sha256 for s in sources} != {file_sha256(shipped)}:
        raise NotEnoughDataError("the zoos were not all fine-tuned from fraudit's shipped base: pass theirs with --base")
    return shipped
