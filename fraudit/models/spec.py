"""What an architecture is to fraudit: the weights that define it (names and
shapes), how to read its variant, and how to run it (module, input size,
normalisation). Each architecture module declares one ``ArchitectureSpec``; the
registry collects them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

Shapes = Mapping[str, tuple[int, ...]]

# Buffers, not learnt weights: BatchNorm statistics, and an input layer's pixel means (dlib).
_BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked", "input_mean")


@dataclass(frozen=True)
class ArchitectureSpec:
    """One known architecture: the weights that define it and how to read its variant."""

    id: str
    name: str
    input_size: int
    embedding_key: str
    required: Mapping[str, tuple[int, ...]]
    # Tensors a checkpoint may carry beyond the embedder (a classification head):
    # not counted as parameters, and not loaded when the model is run.
    optional_prefixes: tuple[str, ...] = ()
    variant_of: Callable[[Shapes], str | None] = field(default=lambda shapes: None)
    # How to run it: an untrained module whose state dict the weights load into, and
    # the input normalisation (x - mean) / scale.
    build: Callable[[], "nn.Module"] | None = None
    mean: float = 127.5
    scale: float = 128.0
    # What a zoo fine-tune trains in each scenario ("last-layer", "multi-layer"): module
    # names of ``build()``'s module, which then lists its forward pass as named stages
    # (``stages()``); the stages before the first trained one are frozen and cached.
    # Empty: fraudit cannot build a zoo of this architecture.
    fine_tuned: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def matches(self, shapes: Shapes) -> bool:
        return all(shapes.get(key) == shape for key, shape in self.required.items())

    @property
    def head_key(self) -> str | None:
        """Where a checkpoint of it keeps a classification head: the first optional
        prefix's ``weight`` (a checkpoint without it is the embedder alone)."""
        return f"{self.optional_prefixes[0]}weight" if self.optional_prefixes else None


@dataclass(frozen=True)
class ArchitectureMatch:
    """What the report says about a candidate's architecture."""

    id: str
    name: str
    variant: str | None
    input_size: int | None
    embedding_dim: int | None
    parameters: int
    # How faces are fed to it, (x - mean) / scale on 0-255 RGB, and where that comes
    # from: "architecture" (its published preprocessing), "assumed" (an ONNX graph
    # does not say; fraudit assumes InsightFace's) or "option" (the user set it).
    normalisation: tuple[float, float] | None = None
    normalisation_source: str | None = None
    # Where the architecture was read from: the tensor names, or the topology of an
    # ONNX export (whose names the exporter chose) — and, then, the layers whose values
    # are not the checkpoint's because BatchNorm was folded into them.
    recognised_from: str = "tensor names"
    folded_layers: tuple[str, ...] = ()

    @property
    def known(self) -> bool:
        return self.id != "unknown"

    @property
    def input_text(self) -> str | None:
        """"input 112×112, (x − 127.5) / 127.5 (assumed)" for the report."""
        if self.input_size is None:
            return None
        text = f"input {self.input_size}×{self.input_size}"
        if self.normalisation is not None:
            mean, scale = self.normalisation
            # dlib's network normalises inside (its input layer holds the channel means)
            pixels = "raw 0–255 pixels" if (mean, scale) == (0.0, 1.0) else f"(x − {mean:g}) / {scale:g}"
            text += f", {pixels}" + {"assumed": " (assumed)", "option": " (as given)"}.get(
                self.normalisation_source or "", "")
        return text

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "variant": self.variant,
            "input_size": self.input_size,
            "embedding_dim": self.embedding_dim,
            "parameters": self.parameters,
            "normalisation": None if self.normalisation is None else {
                "mean": self.normalisation[0], "scale": self.normalisation[1], "source": self.normalisation_source},
            "recognised_from": self.recognised_from,
            "folded_layers": list(self.folded_layers),
        }


@dataclass(frozen=True)
class Preprocessing:
    """How the user says a candidate takes its faces, where the file does not say (an
    ONNX graph states neither its normalisation nor, if dynamic, its input size) or
    says it wrongly. Unset fields keep what fraudit read or assumed."""

    input_size: int | None = None
    mean: float | None = None
    scale: float | None = None

    def apply(self, match: ArchitectureMatch) -> ArchitectureMatch:
        changed = match
        if self.input_size is not None:
            changed = replace(changed, input_size=self.input_size)
        if self.mean is not None or self.scale is not None:
            mean, scale = match.normalisation or (127.5, 128.0)
            changed = replace(changed, normalisation=(self.mean if self.mean is not None else mean,
                                                      self.scale if self.scale is not None else scale),
                              normalisation_source="option")
        return changed


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


def module_shapes(build: Callable[[], "nn.Module"]) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape of the module ``build`` makes, without allocating it."""
    import torch

    with torch.device("meta"):
        model = build()
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def arcface_head_variant(shapes: Shapes) -> str:
    """The variant of an architecture fraudit trains: with the ArcFace head of its zoo, or not."""
    head = shapes.get("head.weight")
    return f"with ArcFace head ({head[0]} classes)" if head else "embedder only"


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


