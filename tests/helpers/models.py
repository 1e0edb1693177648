"""Benign model files of real architectures, in every format fraudit reads."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from safetensors.torch import save_file

from fraudit.models.heads import EmbedderWithHead
from fraudit.models.reference import ReferenceEmbedder
from fraudit.models.registry import read_shape_listing


def reference_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return {k: v.clone() for k, v in ReferenceEmbedder().state_dict().items()}


def listing_state_dict(filename: str, *, drop_prefix: str | None = None) -> dict[str, torch.Tensor]:
    """Zero tensors with the names and shapes of a shipped key listing (FaceNet, iresnet)."""
    shapes = read_shape_listing(filename)
    return {
        k: torch.zeros(shape, dtype=torch.float16 if shape else torch.int64)
        for k, shape in shapes.items()
        if drop_prefix is None or not k.startswith(drop_prefix)
    }


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor]) -> Path:
    save_file(tensors, str(path))
    return path


def export_onnx(path: Path, model: torch.nn.Module | None = None, *, head: torch.Tensor | None = None,
                outputs: tuple[str, ...] = ("embedding", "logits")) -> Path:
    """``model`` exported to ``path``; with ``head`` (classes × embedding) the graph
    gives the logits of that linear head too, under the second of ``outputs``."""
    model = (model or ReferenceEmbedder()).eval()
    names = list(outputs[:1] if head is None else outputs)
    with warnings.catch_warnings():
        # the TorchScript exporter needs no onnxscript; its deprecation is not ours to fix
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model if head is None else EmbedderWithHead(model, head).eval(),
            (torch.randn(1, 3, 64, 64),),
            str(path),
            dynamo=False,
            input_names=["input"],
            output_names=names,
            dynamic_axes={"input": {0: "batch"}, **{name: {0: "batch"} for name in names}},
        )
    return path


def require_dlib_model() -> None:
    """Skip unless dlib's model files are installed (the dlib extra; no dlib needed to run them)."""
    import importlib.util

    import pytest

    if importlib.util.find_spec("face_recognition_models") is None:
        pytest.skip("the dlib extra (face-recognition-models) is installed by .ci/run and the README set-up")
