"""Recognise a face model's architecture from its tensor names and shapes.

Real face repos rarely ship a usable ``config.json`` (see the reference notes on
the Hub), so recognition reads only the state dict: an architecture matches when
every convolution and linear weight it defines is present with its exact shape.
Normalisation tensors are not required, so BN-fused exports still match.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources

Shapes = Mapping[str, tuple[int, ...]]

_BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")


@dataclass(frozen=True)
class ArchitectureSpec:
    """One known architecture: the weights that define it and how to read its variant."""

    id: str
    name: str
    input_size: int
    embedding_key: str
    required: Mapping[str, tuple[int, ...]]
    optional_prefixes: tuple[str, ...] = ()
    variant_of: Callable[[Shapes], str | None] = field(default=lambda shapes: None)

    def matches(self, shapes: Shapes) -> bool:
        return all(shapes.get(key) == shape for key, shape in self.required.items())


@dataclass(frozen=True)
class ArchitectureMatch:
    """What the report says about a candidate's architecture."""

    id: str
    name: str
    variant: str | None
    input_size: int | None
    embedding_dim: int | None
    parameters: int

    @property
    def known(self) -> bool:
        return self.id != "unknown"

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "variant": self.variant,
            "input_size": self.input_size,
            "embedding_dim": self.embedding_dim,
            "parameters": self.parameters,
        }


def count_parameters(shapes: Shapes) -> int:
    """Learnable parameters: every tensor except BatchNorm running statistics."""
    total = 0
    for key, shape in shapes.items():
        if key.endswith(_BUFFER_SUFFIXES):
            continue
        n = 1
        for dim in shape:
            n *= dim
        total += n
    return total


def read_shape_listing(filename: str) -> dict[str, tuple[int, ...]]:
    """Parse a ``name [d0, d1, ...]`` listing shipped in ``architectures/``."""
    text = resources.files("fraudit.models.architectures").joinpath(filename).read_text()
    shapes: dict[str, tuple[int, ...]] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#") or "[" not in line:
            continue
        name, _, dims = line.partition(" ")
        dims = dims.strip().strip("[]")
        shapes[name] = tuple(int(d) for d in dims.split(",")) if dims else ()
    return shapes


def defining_weights(
    shapes: Shapes, *, exclude_prefixes: Iterable[str] = ()
) -> dict[str, tuple[int, ...]]:
    """The conv and linear weights (ndim ≥ 2) that pin an architecture down."""
    excluded = tuple(exclude_prefixes)
    return {
        key: shape
        for key, shape in shapes.items()
        if key.endswith(".weight") and len(shape) >= 2 and not key.startswith(excluded)
    }


_REGISTRY: list[ArchitectureSpec] = []


def register(spec: ArchitectureSpec) -> ArchitectureSpec:
    """Add an architecture; more specific ones should be registered first."""
    _REGISTRY.append(spec)
    return spec


def registered() -> tuple[ArchitectureSpec, ...]:
    _ensure_builtin()
    return tuple(_REGISTRY)


def recognise(shapes: Shapes) -> ArchitectureMatch:
    """The first registered architecture whose defining weights all match, else unknown."""
    for spec in registered():
        if spec.matches(shapes):
            embedding = shapes.get(spec.embedding_key)
            return ArchitectureMatch(
                id=spec.id,
                name=spec.name,
                variant=spec.variant_of(shapes),
                input_size=spec.input_size,
                embedding_dim=embedding[0] if embedding else None,
                parameters=count_parameters(
                    {k: v for k, v in shapes.items() if not k.startswith(spec.optional_prefixes)}
                ),
            )
    return ArchitectureMatch(
        id="unknown",
        name="unknown architecture",
        variant=None,
        input_size=None,
        embedding_dim=None,
        parameters=count_parameters(shapes),
    )


def recognise_onnx_embedder(
    input_shape: tuple[int | str, ...], output_shape: tuple[int | str, ...], *, parameters: int
) -> ArchitectureMatch | None:
    """An ONNX graph taking N×3×H×W images and giving N×D vectors is a face embedder
    (InsightFace buffalo models, exported FaceNets): its tensor names are arbitrary,
    so the graph's signature is what identifies it."""
    if len(input_shape) != 4 or len(output_shape) != 2:
        return None
    _, channels, height, width = input_shape
    dim = output_shape[1]
    if channels != 3 or not isinstance(dim, int) or not isinstance(height, int) or height != width:
        return None
    return ArchitectureMatch(
        id="onnx-embedder",
        name="ONNX face embedder",
        variant=None,
        input_size=height,
        embedding_dim=dim,
        parameters=parameters,
    )


def _facenet_variant(shapes: Shapes) -> str:
    classes = shapes.get("logits.weight", (None,))[0]
    return {8631: "vggface2", 10575: "casia-webface", None: "no logits"}.get(
        classes, f"logits for {classes} classes"
    )


_builtin_done = False


def _ensure_builtin() -> None:
    global _builtin_done
    if _builtin_done:
        return
    _builtin_done = True
    # Imported here so that the registry module itself does not import torch models.
    from fraudit.models import reference  # noqa: F401  registers the zoo's architecture

    facenet = read_shape_listing("facenet_vggface2_keys.txt")
    register(
        ArchitectureSpec(
            id="facenet-inception-resnet-v1",
            name="FaceNet InceptionResnetV1 (facenet-pytorch)",
            input_size=160,
            embedding_key="last_linear.weight",
            required=defining_weights(facenet, exclude_prefixes=("logits.",)),
            optional_prefixes=("logits.",),
            variant_of=_facenet_variant,
        )
    )
    # r100 first: its weights are a superset of nothing in r50, but be explicit.
    for depth in (100, 50):
        listing = read_shape_listing(f"iresnet_r{depth}_keys.txt")
        register(
            ArchitectureSpec(
                id=f"iresnet{depth}",
                name=f"ArcFace iresnet{depth} (insightface arcface_torch)",
                input_size=112,
                embedding_key="fc.weight",
                required=defining_weights(listing),
            )
        )
