"""An ONNX graph run by torch, so that a search can follow gradients through it.

onnxruntime runs graphs but gives no gradient with respect to the input. The
maintained converter, ``onnx2torch``, imports torchvision at package import
(for NMS and RoIAlign), which fraudit cannot depend on. Face embedders use a small
set of operators, so fraudit interprets them directly with torch functions: the
graph's nodes, in the topological order ONNX requires, over the initialisers read
safely by ``fraudit.formats.load``. Nothing from the file is executed; an operator
outside the set is a clear refusal. Every use is checked against onnxruntime on
the same input by the caller (``fraudit.pairing.embedders.OnnxEmbedder``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from fraudit.errors import UnsupportedFormatError
from fraudit.formats.load import embedding_output, load_onnx_initialisers, load_onnx_model

Op = Callable[[list[Any], dict[str, Any]], Any]


def _attributes(node) -> dict[str, Any]:  # noqa: ANN001 - an onnx NodeProto
    from onnx import helper, numpy_helper

    out = {}
    for attribute in node.attribute:
        value = helper.get_attribute_value(attribute)
        if hasattr(value, "raw_data") or hasattr(value, "dims"):  # a TensorProto
            value = torch.from_numpy(numpy_helper.to_array(value).copy())
        elif isinstance(value, bytes):
            value = value.decode()
        out[attribute.name] = value
    return out


def _spatial_pads(x: torch.Tensor, a: dict[str, Any], *, value: float = 0.0) -> tuple[torch.Tensor, tuple[int, ...]]:
    """ONNX pads (begins then ends); symmetric ones go to the op, others are applied here."""
    if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise UnsupportedFormatError(f"auto_pad {a['auto_pad']} is not supported")
    dims = len(x.shape) - 2
    pads = list(a.get("pads", [0] * 2 * dims))
    begins, ends = pads[:dims], pads[dims:]
    if begins == ends:
        return x, tuple(begins)
    flat = [p for b, e in zip(reversed(begins), reversed(ends), strict=True) for p in (b, e)]
    return F.pad(x, flat, value=value), (0,) * dims


def _conv(i: list[Any], a: dict[str, Any]) -> torch.Tensor:
    x, padding = _spatial_pads(i[0], a)
    bias = i[2] if len(i) > 2 else None
    return F.conv2d(x, i[1], bias, stride=tuple(a.get("strides", (1, 1))), padding=padding,
                    dilation=tuple(a.get("dilations", (1, 1))), groups=a.get("group", 1))


def _gemm(i: list[Any], a: dict[str, Any]) -> torch.Tensor:
    x = i[0].T if a.get("transA") else i[0]
    w = i[1].T if a.get("transB") else i[1]
    y = a.get("alpha", 1.0) * (x @ w)
    return y + a.get("beta", 1.0) * i[2] if len(i) > 2 and i[2] is not None else y


def _max_pool(i: list[Any], a: dict[str, Any]) -> torch.Tensor:
    x, padding = _spatial_pads(i[0], a, value=-math.inf)
    return F.max_pool2d(x, tuple(a["kernel_shape"]), tuple(a.get("strides", a["kernel_shape"])), padding,
                        ceil_mode=bool(a.get("ceil_mode", 0)))


def _average_pool(i: list[Any], a: dict[str, Any]) -> torch.Tensor:
    x, padding = _spatial_pads(i[0], a)
    return F.avg_pool2d(x, tuple(a["kernel_shape"]), tuple(a.get("strides", a["kernel_shape"])), padding,
                        ceil_mode=bool(a.get("ceil_mode", 0)), count_include_pad=bool(a.get("count_include_pad", 0)))


def _axes(i: list[Any], a: dict[str, Any]) -> list[int] | None:
    if len(i) > 1 and i[1] is not None:
        return [int(v) for v in i[1].tolist()]
    return list(a["axes"]) if "axes" in a else None


def _unsqueeze(i: list[Any], a: dict[str, Any]) -> torch.Tensor:
    x = i[0]
    for axis in sorted(_axes(i, a) or []):
        x = x.unsqueeze(axis if axis >= 0 else axis + x.dim() + 1)
    return x


def _squeeze(i: list[Any], a: dict[str, Any]) -> torch.Tensor:
    axes = _axes(i, a)
    return i[0].squeeze() if axes is None else i[0].squeeze(tuple(axes))


def _reshape(i: list[Any], a: dict[str, Any]) -> torch.Tensor:
    shape = [int(s) for s in i[1].tolist()]
    shape = [i[0].shape[k] if s == 0 and not a.get("allowzero") else s for k, s in enumerate(shape)]
    return i[0].reshape(shape)


def _reduce(fn: Callable[..., torch.Tensor]) -> Op:
    def op(i: list[Any], a: dict[str, Any]) -> torch.Tensor:
        axes = _axes(i, a)
        keep = bool(a.get("keepdims", 1))
        return fn(i[0], dim=tuple(axes) if axes else None, keepdim=keep)
    return op


def _clip(i: list[Any], a: dict[str, Any]) -> torch.Tensor:
    low = i[1] if len(i) > 1 and i[1] is not None else a.get("min")
    high = i[2] if len(i) > 2 and i[2] is not None else a.get("max")
    return torch.clamp(i[0], min=low, max=high)


def _batch_norm(i: list[Any], a: dict[str, Any]) -> torch.Tensor:
    return F.batch_norm(i[0], i[3], i[4], i[1], i[2], training=False, eps=a.get("epsilon", 1e-5))


OPS: dict[str, Op] = {
    "Identity": lambda i, a: i[0],
    "Dropout": lambda i, a: i[0],
    "Conv": _conv,
    "Gemm": _gemm,
    "MatMul": lambda i, a: i[0] @ i[1],
    "BatchNormalization": _batch_norm,
    "Relu": lambda i, a: F.relu(i[0]),
    "PRelu": lambda i, a: torch.where(i[0] >= 0, i[0], i[0] * i[1]),
    "LeakyRelu": lambda i, a: F.leaky_relu(i[0], a.get("alpha", 0.01)),
    "Sigmoid": lambda i, a: torch.sigmoid(i[0]),
    "Tanh": lambda i, a: torch.tanh(i[0]),
    "Clip": _clip,
    "Add": lambda i, a: i[0] + i[1],
    "Sub": lambda i, a: i[0] - i[1],
    "Mul": lambda i, a: i[0] * i[1],
    "Div": lambda i, a: i[0] / i[1],
    "Sqrt": lambda i, a: torch.sqrt(i[0]),
    "Pow": lambda i, a: torch.pow(i[0], i[1]),
    "MaxPool": _max_pool,
    "AveragePool": _average_pool,
    "GlobalAveragePool": lambda i, a: i[0].mean(dim=(2, 3), keepdim=True),
    "Flatten": lambda i, a: i[0].reshape(math.prod(i[0].shape[: a.get("axis", 1)]), -1),
    "Concat": lambda i, a: torch.cat(i, dim=a["axis"]),
    "Constant": lambda i, a: a["value"],
    "Shape": lambda i, a: torch.tensor(i[0].shape, dtype=torch.int64),
    "Gather": lambda i, a: torch.index_select(i[0], a.get("axis", 0), i[1].reshape(-1)).reshape(
        *i[0].shape[: a.get("axis", 0)], *i[1].shape, *i[0].shape[a.get("axis", 0) + 1 :]),
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Reshape": _reshape,
    "Expand": lambda i, a: i[0] * torch.ones([int(s) for s in i[1].tolist()], dtype=i[0].dtype),
    "Transpose": lambda i, a: i[0].permute(*a["perm"]) if "perm" in a else i[0].permute(*reversed(range(i[0].dim()))),
    "Softmax": lambda i, a: torch.softmax(i[0], dim=a.get("axis", -1)),
    "ReduceL2": _reduce(lambda x, dim, keepdim: torch.linalg.vector_norm(x, dim=dim, keepdim=keepdim)),
    "ReduceMean": _reduce(lambda x, dim, keepdim: x.mean(dim=dim, keepdim=keepdim)),
    "Cast": lambda i, a: i[0].float() if a["to"] == 1 else i[0].long() if a["to"] == 7 else i[0],
}


class OnnxGraphModule(torch.nn.Module):
    """``forward(x)``: the graph's embedding output (``embedding_output``) for its one
    image input, differentiable in x."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        graph = load_onnx_model(path).graph
        unsupported = sorted({n.op_type for n in graph.node if n.op_type not in OPS or n.domain not in ("", "ai.onnx")})
        if unsupported:
            raise UnsupportedFormatError(f"{path.name}: no gradient path for operators {', '.join(unsupported)}",
                                         path=path)
        self.constants = {k: v.float() if v.is_floating_point() else v for k, v in load_onnx_initialisers(path).items()}
        self.nodes = [(n.op_type, list(n.input), list(n.output), _attributes(n)) for n in graph.node]
        self.input_name = next(i.name for i in graph.input if i.name not in self.constants)
        self.output_name = embedding_output(graph)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values: dict[str, Any] = {**self.constants, self.input_name: x, "": None}
        for op, inputs, outputs, attributes in self.nodes:
            try:
                values[outputs[0]] = OPS[op]([values[name] for name in inputs], attributes)
            except (RuntimeError, KeyError, IndexError, TypeError, ValueError) as exc:
                # e.g. a Reshape to a batch size fixed at export: the graph, not fraudit, limits it
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise UnsupportedFormatError(f"torch cannot run the graph's {op} node on this input ({first})") from exc
        return values[self.output_name]
