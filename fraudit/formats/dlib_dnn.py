"""Read a dlib DNN file (``dlib::serialize(net)``) without dlib: a pure-Python parser
of dlib's serialisation that runs nothing from the file and yields torch tensors.

dlib's format is not self-describing. A network's C++ type fixes its structure, and
the file holds, outermost layer first, one version number per wrapper (a layer, a
``tag``, a ``skip``), then the input layer, then each layer's details from the input
outwards — each under a name such as ``con_4`` or ``affine_``. So this reader does
what ``dlib.face_recognition_model_v1`` does: it parses against one known type, the
face recognition ResNet (``fraudit.models.dlib_resnet``), and refuses any file whose
wrappers, layer names or layer settings (kernel, stride, padding, widths) are not
that network's. Every length is checked against the bytes that remain before
anything is allocated, and the file must end where the network ends.

Encoding (``dlib/serialize.h``): an integer is a control byte (low 4 bits: how
many little-endian bytes follow; bit 7: negative) and its bytes; a float is two
integers, mantissa then exponent (value = mantissa · 2^exponent); a bool is the
character ``'1'`` or ``'0'``; a string is its length and its bytes; a tensor is
version 2, four dimensions and raw little-endian float32 (``dlib/cuda/tensor.h``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fraudit.errors import CorruptFileError, UnsupportedFormatError
from fraudit.models.dlib_resnet import BLOCKS, EMBEDDING_DIM, INPUT_SIZE

MAX_FILE_BYTES = 1024**3
MAX_STRING = 256
# Longest run of wrapper versions a file may open with (the ResNet has 84).
MAX_WRAPPERS = 10_000
NETWORK = "dlib face recognition ResNet (dlib_face_recognition_resnet_model_v1)"


class _Stream:
    """dlib's primitive encodings over a byte buffer, every read bounds-checked."""

    def __init__(self, data: bytes, name: str) -> None:
        self.data = memoryview(data)
        self.pos = 0
        self.name = name

    def corrupt(self, what: str) -> CorruptFileError:
        return CorruptFileError(f"{self.name}: broken dlib file at byte {self.pos}: {what}")

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise self.corrupt(f"needs {n} bytes, {len(self.data) - self.pos} remain")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def peek_integer(self) -> tuple[int, int] | None:
        """The integer at the cursor and the bytes it spans, without moving; None if none fits."""
        if self.pos >= len(self.data):
            return None
        control = self.data[self.pos]
        size = control & 0x0F
        if control & 0x70 or not 1 <= size <= 8 or self.pos + 1 + size > len(self.data):
            return None
        value = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + size], "little")
        return (-value if control & 0x80 else value), 1 + size

    def integer(self) -> int:
        found = self.peek_integer()
        if found is None:
            raise self.corrupt("not an integer")
        value, span = found
        self.pos += span
        return value

    def real(self) -> float:
        mantissa, exponent = self.integer(), self.integer()
        if not -2000 < exponent < 2000:
            raise self.corrupt(f"float exponent {exponent}")
        return float(np.ldexp(float(mantissa), exponent))

    def boolean(self) -> bool:
        char = bytes(self.take(1))
        if char not in (b"0", b"1"):
            raise self.corrupt(f"bool byte {char!r}")
        return char == b"1"

    def string(self) -> str:
        length = self.integer()
        if not 0 <= length <= MAX_STRING:
            raise self.corrupt(f"string of {length} bytes")
        try:
            return bytes(self.take(length)).decode("ascii")
        except UnicodeDecodeError as exc:
            raise self.corrupt("string is not ASCII") from exc

    def peek_string(self) -> str | None:
        start = self.pos
        try:
            return self.string()
        except CorruptFileError:
            return None
        finally:
            self.pos = start

    def dims(self, version: int) -> tuple[int, int, int, int]:
        if self.integer() != version:
            raise self.corrupt("unknown tensor version")
        shape = tuple(self.integer() for _ in range(4))
        if any(d < 0 for d in shape):
            raise self.corrupt(f"tensor shape {shape}")
        return shape  # type: ignore[return-value]

    def tensor(self) -> np.ndarray:
        shape = self.dims(2)
        count = int(np.prod(shape, dtype=object))
        if count * 4 > len(self.data) - self.pos:
            raise self.corrupt(f"tensor of {count} floats, {len(self.data) - self.pos} bytes remain")
        return np.frombuffer(self.take(4 * count), dtype="<f4").astype(np.float32).reshape(shape)

    def alias(self) -> tuple[int, int, int, int]:
        """An ``alias_tensor``: a shape into a layer's parameter tensor, no data."""
        return self.dims(1)


@dataclass(frozen=True)
class _Layer:
    kind: str  # con, affine, relu, max_pool, avg_pool, add_prev, fc
    values: dict[str, np.ndarray]
    settings: tuple[int, ...] = ()


def _network_ops() -> list[str]:
    """dlib's ``anet_type``, input side first: layers, tags (``T``) and skips (``S``)."""
    ops = ["con", "affine", "relu", "max_pool"]
    for _, downsample in BLOCKS:
        ops += ["T", "con", "affine", "relu", "con", "affine"]
        ops += ["T", "S", "avg_pool"] if downsample else []
        ops += ["add_prev", "relu"]
    return ops + ["avg_pool", "fc"]


def read_dlib_dnn(path: Path) -> dict[str, torch.Tensor]:
    """The face recognition ResNet's weights as a state dict of ``DlibResNet``.

    Raises:
        CorruptFileError: the bytes break dlib's encoding, or outgrow the file.
        UnsupportedFormatError: a well-formed dlib network other than the ResNet.
    """
    if path.stat().st_size > MAX_FILE_BYTES:
        raise CorruptFileError(f"{path.name}: dlib file over the {MAX_FILE_BYTES}-byte cap", path=path)
    stream = _Stream(path.read_bytes(), path.name)
    other = UnsupportedFormatError
    if stream.integer() != 1:
        raise stream.corrupt("unknown network version")
    loss = stream.string()
    if loss not in ("loss_metric_", "loss_metric_2"):
        raise other(f"{path.name}: a dlib network with {loss!r}, not the {NETWORK}", path=path)
    if loss == "loss_metric_2":
        stream.real(), stream.real()  # margin and distance threshold: training only

    ops = _network_ops()
    wrappers: list[int] = []
    while not (stream.peek_string() or "").startswith("input"):
        if len(wrappers) >= MAX_WRAPPERS:
            raise stream.corrupt("no input layer")
        wrappers.append(stream.integer())
    layer_version = _check_wrappers(wrappers, ops, path)
    means = _read_input(stream, path)
    layers = []
    for index, op in enumerate(op for op in ops if op not in ("T", "S")):
        layers.append(_read_layer(stream, path))
        if layers[-1].kind != op:
            raise other(f"{path.name}: layer {index} is {layers[-1].kind}, the {NETWORK} has {op} there", path=path)
        _skip_training_state(stream, innermost=index == 0, version=wrappers[-1] if index == 0 else layer_version)
    if stream.pos != len(stream.data):
        raise stream.corrupt(f"{len(stream.data) - stream.pos} bytes after the network")
    return _state_dict(layers, means, path)


def _check_wrappers(wrappers: list[int], ops: list[str], path: Path) -> int:
    """The wrapper versions must be the ResNet's, outermost first; returns its layers' version."""
    expected = list(reversed(ops))
    layer_versions = {v for v, op in zip(wrappers[:-1], expected) if op not in ("T", "S")}
    fits = (len(wrappers) == len(expected) and len(layer_versions) == 1 and layer_versions <= {1, 2}
            and all(v == 1 for v, op in zip(wrappers, expected) if op in ("T", "S")) and wrappers[-1] in (2, 3))
    if not fits:
        raise UnsupportedFormatError(f"{path.name}: a dlib network of {len(wrappers)} layers and tags, "
                                     f"not the {NETWORK} ({len(expected)})", path=path)
    return layer_versions.pop()


def _read_input(stream: _Stream, path: Path) -> np.ndarray:
    name = stream.string()
    if name != "input_rgb_image_sized":
        raise UnsupportedFormatError(f"{path.name}: dlib input layer {name!r}, not the {NETWORK}'s", path=path)
    means = np.array([stream.real() for _ in range(3)], dtype=np.float32)
    rows, cols = stream.integer(), stream.integer()
    if (rows, cols) != (INPUT_SIZE, INPUT_SIZE):
        raise UnsupportedFormatError(f"{path.name}: dlib input of {rows}×{cols}, not {INPUT_SIZE}×{INPUT_SIZE}",
                                     path=path)
    return means


def _skip_training_state(stream: _Stream, *, innermost: bool, version: int) -> None:
    """What ``add_layer`` stores after its layer: flags, and gradient and output caches."""
    for _ in range(3):
        stream.boolean()
    stream.tensor(), stream.tensor()  # x_grad, cached_output
    if innermost:
        stream.tensor()  # grad_final
        if version >= 3:
            stream.integer()  # sample expansion factor
    elif version == 2:
        stream.tensor()  # params_grad


def _read_layer(stream: _Stream, path: Path) -> _Layer:
    name = stream.string()
    if name in ("con_4", "con_5", "con_6"):
        params = stream.tensor()
        settings = tuple(stream.integer() for _ in range(7))  # filters, rows, cols, strides, paddings
        filters, biases = stream.alias(), stream.alias()
        for _ in range(4):
            stream.real()  # learning-rate and weight-decay multipliers
        if name != "con_4":
            stream.boolean()  # use_bias: the parameter tensor's size says it too
        if name == "con_6":
            stream.boolean()  # use_relu (a fused activation): the ResNet has none
        return _Layer("con", _split(params, filters, biases, stream), settings)
    if name in ("affine_", "affine_2"):
        params = stream.tensor()
        gamma, beta = stream.alias(), stream.alias()
        stream.integer()  # mode
        if name == "affine_2" and stream.boolean():
            raise UnsupportedFormatError(f"{path.name}: a disabled affine layer (fused), not the {NETWORK}", path=path)
        values = _split(params, gamma, beta, stream)
        return _Layer("affine", {"weight": values["weight"].reshape(-1), "bias": values["bias"].reshape(-1)})
    if name == "bn_con2":  # a net saved with BatchNorm (as trained): dlib converts it to affine on load
        params = stream.tensor()
        gamma, beta = stream.alias(), stream.alias()
        for _ in range(2):
            stream.tensor()  # batch means and inverse deviations
        running_mean, running_var = stream.tensor().reshape(-1), stream.tensor().reshape(-1)
        stream.integer(), stream.integer()  # updates and the running window
        for _ in range(4):
            stream.real()
        eps = stream.real()
        values = _split(params, gamma, beta, stream)
        scale = values["weight"].reshape(-1) / np.sqrt(running_var + eps)
        return _Layer("affine", {"weight": scale, "bias": values["bias"].reshape(-1) - scale * running_mean})
    if name in ("relu_", "relu_2"):
        if name == "relu_2" and stream.boolean():
            raise UnsupportedFormatError(f"{path.name}: a disabled relu layer, not the {NETWORK}", path=path)
        return _Layer("relu", {})
    if name in ("max_pool_2", "avg_pool_2"):
        return _Layer(name[:-2], {}, tuple(stream.integer() for _ in range(6)))
    if name == "add_prev_":
        return _Layer("add_prev", {})
    if name in ("fc_2", "fc_3"):
        outputs, inputs = stream.integer(), stream.integer()
        params = stream.tensor()
        weights, _ = stream.alias(), stream.alias()
        bias_mode = stream.integer()
        for _ in range(4):
            stream.real()
        if name == "fc_3":
            stream.boolean()
        if bias_mode != 1 or weights[:2] != (inputs, outputs) or params.size != inputs * outputs:
            raise UnsupportedFormatError(f"{path.name}: a dlib fc layer with a bias, not the {NETWORK}", path=path)
        return _Layer("fc", {"weight": params.reshape(inputs, outputs).T.copy()})
    raise UnsupportedFormatError(f"{path.name}: dlib layer {name!r} is not in the {NETWORK}", path=path)


def _split(params: np.ndarray, first: tuple[int, ...], second: tuple[int, ...], stream: _Stream) -> dict[str, np.ndarray]:
    """A layer's parameter tensor cut along its two aliases (weights, then biases)."""
    flat = params.reshape(-1)
    n_first, n_second = int(np.prod(first)), int(np.prod(second))
    if flat.size == n_first:  # a convolution saved without its bias
        return {"weight": flat.reshape(first), "bias": np.zeros(n_second, np.float32)}
    if flat.size != n_first + n_second:
        raise stream.corrupt(f"{flat.size} parameters for shapes {first} and {second}")
    return {"weight": flat[:n_first].reshape(first), "bias": flat[n_first:].reshape(-1)}


# (kernel, stride, padding) of each convolution, and (window, stride, padding) of
# each pool, input side first: dlib checks these against the type on load, and so do we.
def _expected_settings() -> list[tuple[str, tuple[int, ...]]]:
    expected = [("con", (32, 7, 7, 2, 2, 0, 0)), ("max_pool", (3, 3, 2, 2, 0, 0))]
    for width, downsample in BLOCKS:
        expected.append(("con", (width, 3, 3, 2, 2, 0, 0) if downsample else (width, 3, 3, 1, 1, 1, 1)))
        expected.append(("con", (width, 3, 3, 1, 1, 1, 1)))
        if downsample:
            expected.append(("avg_pool", (2, 2, 2, 2, 0, 0)))
    return expected + [("avg_pool", (0, 0, 1, 1, 0, 0))]  # avg_pool_everything


def _state_dict(layers: list[_Layer], means: np.ndarray, path: Path) -> dict[str, torch.Tensor]:
    configured = [layer for layer in layers if layer.settings]
    for (kind, settings), layer in zip(_expected_settings(), configured, strict=True):
        if layer.settings != settings:
            raise UnsupportedFormatError(f"{path.name}: dlib {kind} layer {layer.settings}, the {NETWORK} has "
                                         f"{settings}", path=path)
    names = ["conv1", "affine1"]
    for i, _ in enumerate(BLOCKS):
        names += [f"blocks.{i}.conv1", f"blocks.{i}.affine1", f"blocks.{i}.conv2", f"blocks.{i}.affine2"]
    names.append("fc")
    weighted = [layer for layer in layers if layer.values]
    state = {"input_mean": torch.from_numpy(means)}
    for name, layer in zip(names, weighted, strict=True):
        for key, value in layer.values.items():
            state[f"{name}.{key}"] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    if state["fc.weight"].shape != (EMBEDDING_DIM, 256):
        raise UnsupportedFormatError(f"{path.name}: embedding of {tuple(state['fc.weight'].shape)}, not the {NETWORK}'s",
                                     path=path)
    return state


def looks_like_dlib_dnn(head: bytes) -> bool:
    """A dlib network file opens with version 1 and its loss layer's name."""
    if len(head) < 8 or head[:2] != b"\x01\x01":
        return False
    stream = _Stream(head[2:], "")
    name = stream.peek_string()
    if name is None:  # the name runs past the sniffed bytes: read its start
        length = stream.peek_integer()
        return length is not None and bytes(head[2 + length[1] :]).startswith(b"loss_")
    return name.startswith("loss_")
