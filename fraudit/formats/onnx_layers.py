"""Which registered architecture an ONNX graph is an export of, read from the graph.

Exporters rename tensors (``onnx::Conv_75``), transpose linear weights for
``MatMul`` and fold BatchNorm into the convolution before it, so the state-dict
matcher of ``fraudit.models.registry`` does not recognise an export. The graph's
topology still does: its weighted layers (Conv, Gemm, MatMul with an initializer
weight), in execution order and in the torch layout, are exactly the
architecture's defining weights in module order.

A layer keeps the architecture's values only where nothing was folded into it: a
bias on an ONNX layer whose torch layer has none is BatchNorm (or a following
bias) folded in. Such layers are reported as folded, never passed off as the
checkpoint's weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fraudit.formats.load import embedding_output, load_onnx_model, onnx_ancestors
from fraudit.models.registry import ArchitectureSpec, registered, spec_for

_WEIGHTED = ("Conv", "Gemm", "MatMul")


@dataclass(frozen=True)
class OnnxLayer:
    weight: np.ndarray  # in the torch layout: Conv O×I×kh×kw, linear out×in
    has_bias: bool
    output: str  # the node's output tensor


@dataclass(frozen=True)
class OnnxArchitecture:
    """An ONNX graph recognised as an export of ``spec``."""

    spec: ArchitectureSpec
    # architecture key (e.g. ``last_linear.weight``; the head's too, when it was exported) → its ONNX layer
    layers: dict[str, OnnxLayer]
    folded: tuple[str, ...]  # keys whose values are not the checkpoint's (something folded in)

    def exact_tensors(self) -> dict[str, torch.Tensor]:
        """The weights that hold the checkpoint's values, under the architecture's names."""
        return {key: torch.from_numpy(np.ascontiguousarray(layer.weight)) for key, layer in self.layers.items()
                if key not in self.folded}

    def folded_tensors(self) -> dict[str, torch.Tensor]:
        """The weights with BatchNorm folded in: the checkpoint's times a per-channel scale."""
        return {key: torch.from_numpy(np.ascontiguousarray(self.layers[key].weight)) for key in self.folded}


def weighted_layers(graph: Any, tensors: dict[str, torch.Tensor]) -> list[OnnxLayer]:
    """The graph's Conv / Gemm / MatMul nodes whose weight is an initializer, in graph
    order (ONNX requires nodes to be topologically sorted)."""
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    layers = []
    for node in graph.node:
        if node.op_type not in _WEIGHTED or len(node.input) < 2 or node.input[1] not in tensors:
            continue
        weight = tensors[node.input[1]].detach().float().numpy()
        has_bias = len(node.input) > 2 and bool(node.input[2])
        if node.op_type == "MatMul":
            if weight.ndim != 2:
                continue
            weight = weight.T
            # a bias added right after a MatMul is a linear layer's bias, or a BN folded in
            has_bias = any(c.op_type == "Add" and any(i in tensors for i in c.input)
                           for c in consumers.get(node.output[0], []))
        elif node.op_type == "Gemm":
            attributes = {a.name: a.i for a in node.attribute if a.name in ("transA", "transB")}
            if attributes.get("transA"):
                continue
            if not attributes.get("transB"):
                weight = weight.T
        layers.append(OnnxLayer(weight, has_bias, node.output[0]))
    return layers


@lru_cache(maxsize=8)
def _biased_keys(architecture_id: str) -> frozenset[str]:
    """The architecture's weighted layers that carry a bias of their own."""
    spec = spec_for(architecture_id)
    assert spec is not None and spec.build is not None
    keys = spec.build().state_dict()
    return frozenset(k for k in spec.required if k[: -len("weight")] + "bias" in keys)


def recognise_onnx_export(path: Path, tensors: dict[str, torch.Tensor]) -> OnnxArchitecture | None:
    """The registered architecture whose defining weights, in module order, have exactly
    the shapes of the graph's weighted layers in execution order — or those and one
    more, a classification head on the embedding (a linear layer as wide as it, of at
    least two classes), mapped to the architecture's head key; else None."""
    graph = load_onnx_model(path).graph
    layers = weighted_layers(graph, tensors)
    shapes = [tuple(layer.weight.shape) for layer in layers]
    for spec in registered():
        required = [tuple(s) for s in spec.required.values()]
        if spec.build is None or shapes[: len(required)] != required:
            continue
        keys = list(spec.required)
        extra = shapes[len(required) :]
        if extra:
            width = spec.required[spec.embedding_key][0]
            if spec.head_key is None or len(extra) != 1 or len(extra[0]) != 2 or extra[0][1] != width or extra[0][0] < 2:
                continue
            # a head is computed from the embedding, never into it: a layer the embedding output
            # is computed through is part of another embedder, not this architecture's
            embedding = embedding_output(graph)
            if layers[-1].output == embedding or layers[-1].output in onnx_ancestors(graph, embedding):
                continue
            keys.append(spec.head_key)
        mapped = dict(zip(keys, layers, strict=True))
        biased = _biased_keys(spec.id)
        # a head's bias is its own, not something folded into it
        folded = tuple(key for key, layer in mapped.items() if layer.has_bias and key not in biased and key != spec.head_key)
        return OnnxArchitecture(spec, mapped, folded)
    return None
