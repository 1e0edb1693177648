"""Formats come from the bytes; every format loads to the same tensors."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.models import export_onnx, reference_state_dict, write_safetensors

from fraudit.errors import CorruptFileError, UnsupportedFormatError
from fraudit.formats import Format, detect_format, load_tensors


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return reference_state_dict(seed=1)


def _assert_same(loaded: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert loaded.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(loaded[key], value), key


def test_safetensors_roundtrip(tmp_path: Path, state: dict[str, torch.Tensor]) -> None:
    path = write_safetensors(tmp_path / "m.safetensors", state)
    assert detect_format(path) is Format.SAFETENSORS
    _assert_same(load_tensors(path, Format.SAFETENSORS), state)


def test_torch_zip_nested_with_prefix(tmp_path: Path, state: dict[str, torch.Tensor]) -> None:
    path = tmp_path / "checkpoint.ckpt"
    torch.save({"epoch": 7, "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    assert detect_format(path) is Format.TORCH_ZIP
    _assert_same(load_tensors(path, Format.TORCH_ZIP), state)


def test_torch_legacy_under_model_key(tmp_path: Path, state: dict[str, torch.Tensor]) -> None:
    path = tmp_path / "old.pth"
    torch.save({"model": {f"model.{k}": v for k, v in state.items()}}, path, _use_new_zipfile_serialization=False)
    assert detect_format(path) is Format.TORCH_LEGACY
    _assert_same(load_tensors(path, Format.TORCH_LEGACY), state)


def test_extension_is_ignored(tmp_path: Path, state: dict[str, torch.Tensor]) -> None:
    path = tmp_path / "weights.onnx"  # really a torch zip
    torch.save(state, path)
    assert detect_format(path) is Format.TORCH_ZIP


def test_onnx_initialisers_are_read(tmp_path: Path) -> None:
    path = export_onnx(tmp_path / "embedder.bin")
    assert detect_format(path) is Format.ONNX
    tensors = load_tensors(path, Format.ONNX)
    assert sum(t.numel() for t in tensors.values()) > 1_000_000


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        (b"", CorruptFileError, "empty"),
        (b"\x00" * 3 + b"garbage that is no model at all", UnsupportedFormatError, "not safetensors"),
        (b"GGUF\x03\x00\x00\x00", UnsupportedFormatError, "GGUF"),
        (struct.pack("<Q", 40) + b'{"w": {"dtype": "F32", "sh', CorruptFileError, "header"),
    ],
)
def test_bad_bytes(tmp_path: Path, content: bytes, error: type[Exception], message: str) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(content)
    with pytest.raises(error, match=message):
        detect_format(path)


def test_truncated_safetensors(tmp_path: Path, state: dict[str, torch.Tensor]) -> None:
    path = write_safetensors(tmp_path / "m.safetensors", state)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CorruptFileError, match="truncated"):
        detect_format(path)


def test_truncated_torch_zip(tmp_path: Path, state: dict[str, torch.Tensor]) -> None:
    path = tmp_path / "m.pt"
    torch.save(state, path)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(CorruptFileError):
        fmt = detect_format(path)
        load_tensors(path, fmt)


def test_zip_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(UnsupportedFormatError, match="data.pkl"):
        detect_format(path)


def test_onnx_custom_operator_is_a_warning(tmp_path: Path) -> None:
    """A custom-op domain means native code must be loaded to run the model: WARN, still audited."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from fraudit.audit import audit
    from fraudit.sources import Candidate

    weight = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    node = helper.make_node("FastGemm", ["x", "w"], ["y"], domain="vendor.ops")
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        initializer=[weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("vendor.ops", 1)])
    path = tmp_path / "custom.onnx"
    onnx.save(model, str(path))
    result = audit(Candidate(source="custom.onnx", files=(path,), locations=("custom.onnx",)))
    safety = result.checks[0]
    assert safety.status.name == "WARN"
    assert "vendor.ops::FastGemm" in safety.summary
