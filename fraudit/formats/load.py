"""Read a model file's tensors. Pickle-based files must have passed the static scan
first; they are then read only through ``torch.load(weights_only=True)``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from fraudit.errors import CorruptFileError, UnsafeLocationError, UnsupportedFormatError
from fraudit.formats.detect import Format
from fraudit.formats.dlib_dnn import read_dlib_dnn

# Wrappers under which training code nests a state dict, tried in this order.
_NESTING_KEYS = ("state_dict", "model_state_dict", "model", "net", "network", "params")
# Prefixes added by DataParallel, Lightning, CVLface and friends.
_PREFIXES = ("module.", "model.", "net.", "backbone.", "_orig_mod.")


def load_tensors(path: Path, fmt: Format) -> dict[str, torch.Tensor]:
    """Return the file's tensors by name, with wrapper keys and common prefixes removed."""
    if fmt is Format.NUMPY_OBJECT:
        raise UnsupportedFormatError(f"{path.name}: a NumPy object array (pickled Python objects) is not a model", path=path)
    if fmt is Format.SAFETENSORS:
        tensors = _load_safetensors(path)
    elif fmt is Format.ONNX:
        tensors = load_onnx_initialisers(path)
    elif fmt is Format.DLIB_DNN:
        tensors = read_dlib_dnn(path)
    elif fmt.is_pickle:
        tensors = _load_torch(path, fmt)
    else:  # pragma: no cover - Format is closed
        raise UnsupportedFormatError(f"{path.name}: no loader for {fmt}")
    if not tensors:
        raise UnsupportedFormatError(f"{path.name}: no tensors found")
    return strip_prefixes(tensors)


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise CorruptFileError(f"{path.name}: unreadable safetensors ({exc})") from exc


def _load_torch(path: Path, fmt: Format) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=fmt is Format.TORCH_ZIP)
    except Exception as exc:  # noqa: BLE001 - torch raises anything from RuntimeError to EOFError
        if fmt is Format.PICKLE:
            raise UnsupportedFormatError(
                f"{path.name}: a pickle, but not a PyTorch checkpoint ({_first_line(exc)})"
            ) from exc
        raise CorruptFileError(f"{path.name}: torch.load(weights_only=True) refused it ({_first_line(exc)})") from exc
    return _unwrap_state_dict(obj, path)


def _unwrap_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        raise UnsupportedFormatError(f"{path.name}: a bare tensor, not a state dict")
    if not isinstance(obj, Mapping):
        raise UnsupportedFormatError(f"{path.name}: holds a {type(obj).__name__}, not a state dict")
    for key in _NESTING_KEYS:
        inner = obj.get(key)
        if isinstance(inner, Mapping) and any(isinstance(v, torch.Tensor) for v in inner.values()):
            return _unwrap_state_dict(inner, path)
    return {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def load_onnx_model(path: Path):  # noqa: ANN201 - an onnx.ModelProto
    """The ONNX graph without its external data, under the size cap."""
    import onnx

    from fraudit.formats.detect import CAPS

    if path.stat().st_size > CAPS.onnx_bytes:
        raise CorruptFileError(f"{path.name}: ONNX file over the {CAPS.onnx_bytes}-byte cap", path=path)
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf and onnx raise various types
        raise CorruptFileError(f"{path.name}: unreadable ONNX ({_first_line(exc)})", path=path) from exc


def load_onnx_initialisers(path: Path) -> dict[str, torch.Tensor]:
    from onnx import external_data_helper, numpy_helper

    from fraudit.formats.detect import CAPS

    model = load_onnx_model(path)
    external = [t for t in model.graph.initializer if external_data_helper.uses_external_data(t)]
    if external:
        for location in sorted({external_data_location(t) for t in external}):
            check_external_data(path, location)
        try:
            external_data_helper.load_external_data_for_model(model, str(path.parent))
        except Exception as exc:  # noqa: BLE001
            raise CorruptFileError(f"{path.name}: unreadable external data ({_first_line(exc)})", path=path) from exc
    if len(model.graph.initializer) > CAPS.tensors:
        raise CorruptFileError(f"{path.name}: more initialisers than the {CAPS.tensors}-tensor cap", path=path)
    tensors: dict[str, torch.Tensor] = {}
    for init in model.graph.initializer:
        tensors[init.name] = torch.from_numpy(numpy_helper.to_array(init).copy())
    return tensors


def external_data_location(tensor) -> str:  # noqa: ANN001 - an onnx TensorProto
    return next((entry.value for entry in tensor.external_data if entry.key == "location"), "")


def check_external_data(model_path: Path, location: str) -> Path:
    """An ONNX external-data file must be a regular file inside the model's own folder:
    never a symlink, never a path that leaves the folder (``../``, absolute)."""
    folder = model_path.parent.resolve()
    target = model_path.parent / location
    if not location or Path(location).is_absolute() or ".." in Path(location).parts:
        raise UnsafeLocationError(f"{model_path.name}: external data location {location!r} leaves the model's folder",
                                  path=model_path)
    if target.is_symlink() or not target.resolve().is_relative_to(folder):
        raise UnsafeLocationError(f"{model_path.name}: external data {location!r} is a symlink; not followed",
                                  path=model_path)
    if not target.is_file():
        raise CorruptFileError(f"{model_path.name}: external data {location!r} is missing", path=model_path)
    return target


def strip_prefixes(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove a prefix shared by every key (repeatedly: ``module.model.x`` → ``x``)."""
    changed = True
    while changed and tensors:
        changed = False
        for prefix in _PREFIXES:
            if all(k.startswith(prefix) for k in tensors):
                tensors = {k[len(prefix):]: v for k, v in tensors.items()}
                changed = True
    return tensors


def _first_line(exc: BaseException) -> str:
    """The error's first line — never torch's advice to retry with weights_only=False,
    the one thing a scanner must not tell its user."""
    advice = ("weights_only", "trust the source", "can still be loaded", "add_safe_globals", "safe_globals")
    lines = [line.strip() for line in str(exc).strip().splitlines()
             if line.strip() and not any(phrase in line for phrase in advice)]
    return lines[0] if lines else type(exc).__name__


def onnx_ancestors(graph: Any, name: str) -> set[str]:
    """Every tensor of the graph that ``name`` is computed from."""
    producer = {out: node for node in graph.node for out in node.output}
    seen, todo = set(), [name]
    while todo:
        node = producer.get(todo.pop())
        if node is None:
            continue
        for tensor in node.input:
            if tensor and tensor not in seen:
                seen.add(tensor)
                todo.append(tensor)
    return seen


def embedding_output(graph: Any) -> str:
    """The graph output a face embedder gives its embedding on: the first output no
    other output is computed into. A model exported with its classification head
    has two — the embedding, and the logits computed from it — in either order."""
    names = [o.name for o in graph.output]
    outputs = set(names)
    # one pass in node order (ONNX keeps nodes topologically sorted): what is computed from an output
    downstream: set[str] = set()
    for node in graph.node:
        if any(tensor in downstream or tensor in outputs for tensor in node.input):
            downstream.update(node.output)
    return next((name for name in names if name not in downstream), names[0])


def onnx_signature(path: Path) -> tuple[tuple[int | str, ...], tuple[int | str, ...]] | None:
    """Shapes of the graph's first real input and of its embedding output (dynamic dims
    as names; ``embedding_output``)."""
    import onnx

    graph = load_onnx_model(path).graph
    initialisers = {init.name for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initialisers]
    if not inputs or not graph.output:
        return None
    output = next(o for o in graph.output if o.name == embedding_output(graph))

    def dims(value: onnx.ValueInfoProto) -> tuple[int | str, ...]:
        return tuple(d.dim_value if d.HasField("dim_value") else d.dim_param for d in value.type.tensor_type.shape.dim)

    return dims(inputs[0]), dims(output)
