"""Recognise a face model's architecture from its tensor names and shapes.

Real face repos rarely ship a usable ``config.json`` (see the reference notes on
the Hub), so recognition reads only the state dict: an architecture matches when
every convolution and linear weight it defines is present with its exact shape.
Normalisation tensors are not required, so BN-fused exports still match.

Every built-in architecture is registered the same way: its module declares a
``SPEC`` (or several) and this module lists them. ``register`` adds more.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fraudit.errors import IncompatibleArtifactError, UnsupportedFormatError
from fraudit.models import dlib_resnet, facenet, iresnet, mobileface, reference
from fraudit.models.spec import (
    ArchitectureMatch,
    ArchitectureSpec,
    Shapes,
    count_parameters,
    defining_weights,
    read_shape_listing,
)

__all__ = [
    "ArchitectureMatch", "ArchitectureSpec", "ONNX_EMBEDDER", "count_parameters", "defining_weights",
    "match_of", "read_shape_listing", "recognise", "recognise_onnx_embedder", "register", "registered", "spec_for", "spec_of", "load_module",
]

if TYPE_CHECKING:
    import torch
    from torch import nn

ONNX_EMBEDDER = "onnx-embedder"
# An ONNX graph does not state its input normalisation; InsightFace's buffalo models,
# the most common ONNX face embedders, use (x − 127.5) / 127.5.
ONNX_MEAN, ONNX_SCALE = 127.5, 127.5

# More specific architectures first: the first match wins.
_REGISTRY: list[ArchitectureSpec] = [reference.SPEC, mobileface.SPEC, facenet.SPEC, *iresnet.SPECS, dlib_resnet.SPEC]


def register(spec: ArchitectureSpec) -> ArchitectureSpec:
    """Add an architecture after the built-in ones."""
    _REGISTRY.append(spec)
    return spec


def registered() -> tuple[ArchitectureSpec, ...]:
    return tuple(_REGISTRY)


def spec_for(architecture_id: str) -> ArchitectureSpec | None:
    return next((spec for spec in _REGISTRY if spec.id == architecture_id), None)


def load_module(name: str, tensors: "dict[str, torch.Tensor]") -> "tuple[nn.Module, ArchitectureSpec]":
    """A state dict of a registered architecture with a module to run it, loaded into
    that module (eval mode). Loading is strict, so a checkpoint missing tensors (a
    BN-fused export) is refused rather than half-run; a classification head (the
    spec's optional tensors) is left out."""
    match = recognise({k: tuple(v.shape) for k, v in tensors.items()})
    spec = spec_for(match.id)
    if spec is None or spec.build is None:
        arch = match.name if match.known else "an unrecognised architecture"
        raise UnsupportedFormatError(f"{name}: fraudit cannot run {arch} as an embedder")
    module = spec.build()
    weights = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()
               if not (spec.optional_prefixes and k.startswith(spec.optional_prefixes))}
    try:
        module.load_state_dict(weights)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1:2] or [str(exc)]
        raise UnsupportedFormatError(f"{name}: {match.name} weights do not load ({first[0].strip()})") from exc
    return module.eval(), spec


def spec_of(model: "nn.Module") -> ArchitectureSpec:
    """The registered architecture a module's own weights are."""
    spec = spec_for(recognise({k: tuple(v.shape) for k, v in model.state_dict().items()}).id)
    if spec is None:
        raise IncompatibleArtifactError(f"{type(model).__name__} is not a registered architecture")
    return spec


def recognise(shapes: Shapes) -> ArchitectureMatch:
    """The first registered architecture whose defining weights all match, else unknown."""
    for spec in _REGISTRY:
        if spec.matches(shapes):
            return match_of(spec, shapes)
    return ArchitectureMatch(
        id="unknown",
        name="unknown architecture",
        variant=None,
        input_size=None,
        embedding_dim=None,
        parameters=count_parameters(shapes),
    )


def match_of(spec: ArchitectureSpec, shapes: Shapes) -> ArchitectureMatch:
    """What the report says of a model of ``spec`` with these weights."""
    embedding = shapes.get(spec.embedding_key)
    return ArchitectureMatch(
        id=spec.id,
        name=spec.name,
        variant=spec.variant_of(shapes),
        input_size=spec.input_size,
        embedding_dim=embedding[0] if embedding else None,
        parameters=count_parameters({k: v for k, v in shapes.items() if not k.startswith(spec.optional_prefixes)}),
        normalisation=(spec.mean, spec.scale) if spec.build is not None else None,
        normalisation_source="architecture" if spec.build is not None else None,
    )


def recognise_onnx_embedder(
    input_shape: tuple[int | str, ...], output_shape: tuple[int | str, ...], *, parameters: int,
    input_size: int | None = None,
) -> ArchitectureMatch | None:
    """An ONNX graph taking N×3×H×W images and giving N×D vectors is a face embedder
    (InsightFace buffalo models, exported FaceNets): its tensor names are arbitrary,
    so the graph's signature is what identifies it. A graph with a dynamic H×W needs
    ``input_size`` (the user's)."""
    if len(input_shape) != 4 or len(output_shape) != 2:
        return None
    _, channels, height, width = input_shape
    dim = output_shape[1]
    if channels != 3 or not isinstance(dim, int):
        return None
    if isinstance(height, int) and isinstance(width, int):
        if height != width:
            return None
    elif input_size is None:
        return None
    else:
        height = input_size
    return ArchitectureMatch(
        id=ONNX_EMBEDDER,
        name="ONNX face embedder",
        variant=None,
        input_size=height,
        embedding_dim=dim,
        parameters=parameters,
        normalisation=(ONNX_MEAN, ONNX_SCALE),
        normalisation_source="assumed",
    )
