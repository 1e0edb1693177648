"""Write dlib DNN files the way ``dlib::serialize(net)`` does, for the face
recognition ResNet: the tests' own real files (with BatchNorm or affine layers,
and broken on purpose) beside the one dlib ships."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from fraudit.formats.dlib_dnn import _network_ops
from fraudit.models.dlib_resnet import BLOCKS, DlibResNet


class _Writer:
    def __init__(self) -> None:
        self.out = bytearray()

    def integer(self, value: int) -> None:
        negative, value = value < 0, abs(value)
        body = value.to_bytes(max(1, (value.bit_length() + 7) // 8), "little")
        self.out += bytes([len(body) | (0x80 if negative else 0)]) + body

    def real(self, value: float) -> None:
        mantissa, exponent = math.frexp(value)
        self.integer(int(mantissa * 2**24))
        self.integer(exponent - 24)

    def string(self, text: str) -> None:
        self.integer(len(text))
        self.out += text.encode()

    def boolean(self, value: bool) -> None:
        self.out += b"1" if value else b"0"

    def tensor(self, values: np.ndarray, shape: tuple[int, int, int, int]) -> None:
        self.integer(2)
        for d in shape:
            self.integer(d)
        self.out += np.ascontiguousarray(values, dtype="<f4").tobytes()

    def alias(self, shape: tuple[int, int, int, int]) -> None:
        self.integer(1)
        for d in shape:
            self.integer(d)


def random_state(seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    module = DlibResNet()
    for name, value in module.named_parameters():
        if name.endswith("affine1.weight") or name.endswith("affine2.weight"):
            value.data = 0.5 + torch.rand_like(value)
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def write_dlib_resnet(path: Path, state: dict[str, torch.Tensor], *, batch_norm: bool = False) -> Path:
    """``state`` (a ``DlibResNet`` state dict) as dlib would save it; ``batch_norm``
    writes each affine layer as the BatchNorm (``bn_con2``) it was trained as."""
    w = _Writer()
    w.integer(1)
    w.string("loss_metric_2")
    w.real(0.04), w.real(0.6)
    ops = _network_ops()
    for i, op in enumerate(reversed(ops)):
        w.integer(1 if op in ("T", "S") else 2)
    w.string("input_rgb_image_sized")
    for mean in state["input_mean"].tolist():
        w.real(mean)
    w.integer(150), w.integer(150)

    names = ["conv1", "affine1"] + [f"blocks.{i}.{m}" for i in range(len(BLOCKS))
                                    for m in ("conv1", "affine1", "conv2", "affine2")] + ["fc"]
    weighted = iter(names)
    pools = iter([(3, 3, 2, 2, 0, 0)] + [(2, 2, 2, 2, 0, 0)] * sum(d for _, d in BLOCKS) + [(0, 0, 1, 1, 0, 0)])
    rng = np.random.default_rng(0)
    for op in (op for op in ops if op not in ("T", "S")):
        if op == "con":
            name = next(weighted)
            weight, bias = state[f"{name}.weight"].numpy(), state[f"{name}.bias"].numpy()
            filters, channels, kernel, _ = weight.shape
            strided = kernel == 7 or (name.endswith("conv1") and name != "conv1" and
                                      BLOCKS[int(name.split(".")[1])][1])
            w.string("con_4")
            w.tensor(np.concatenate([weight.ravel(), bias]), (weight.size + bias.size, 1, 1, 1))
            for value in (filters, kernel, kernel, *((2, 2, 0, 0) if strided else (1, 1, 1, 1))):
                w.integer(value)
            w.alias((filters, channels, kernel, kernel)), w.alias((1, filters, 1, 1))
            for value in (1.0, 1.0, 1.0, 0.0):
                w.real(value)
        elif op == "affine":
            name = next(weighted)
            scale, shift = state[f"{name}.weight"].numpy(), state[f"{name}.bias"].numpy()
            k = scale.size
            if batch_norm:
                mean, var, eps = rng.normal(size=k).astype(np.float32), rng.uniform(0.5, 2, k).astype(np.float32), 1e-5
                gamma = scale * np.sqrt(var + eps)
                w.string("bn_con2")
                w.tensor(np.concatenate([gamma, shift + mean * scale]), (2 * k, 1, 1, 1))
                w.alias((1, k, 1, 1)), w.alias((1, k, 1, 1))
                w.tensor(np.zeros(0), (0, 0, 0, 0)), w.tensor(np.zeros(0), (0, 0, 0, 0))
                w.tensor(mean, (1, k, 1, 1)), w.tensor(var, (1, k, 1, 1))
                w.integer(1000), w.integer(1000)
                for value in (1.0, 1.0, 1.0, 0.0):
                    w.real(value)
                w.real(eps)
            else:
                w.string("affine_")
                w.tensor(np.concatenate([scale, shift]), (2 * k, 1, 1, 1))
                w.alias((1, k, 1, 1)), w.alias((1, k, 1, 1))
                w.integer(1)
        elif op == "relu":
            w.string("relu_")
        elif op in ("max_pool", "avg_pool"):
            w.string(f"{op}_2")
            for value in next(pools):
                w.integer(value)
        elif op == "add_prev":
            w.string("add_prev_")
        elif op == "fc":
            weight = state[f"{next(weighted)}.weight"].numpy()
            outputs, inputs = weight.shape
            w.string("fc_2")
            w.integer(outputs), w.integer(inputs)
            w.tensor(weight.T, (inputs, outputs, 1, 1))
            w.alias((inputs, outputs, 1, 1)), w.alias((1, outputs, 1, 1))
            w.integer(1)
            for value in (1.0, 1.0, 1.0, 0.0):
                w.real(value)
        for flag in (True, False, False):
            w.boolean(flag)
        w.tensor(np.zeros(0), (0, 0, 0, 0)), w.tensor(np.zeros(0), (0, 0, 0, 0))
        w.tensor(np.zeros(0), (0, 0, 0, 0))  # grad_final (innermost) or params_grad
    path.write_bytes(bytes(w.out))
    return path
