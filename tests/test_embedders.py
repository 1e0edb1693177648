"""Embedders: an ONNX model exported by the test gives the torch model's embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from helpers.models import export_onnx

from fraudit.pairing.embedders import OnnxEmbedder, TorchEmbedder, reference_embedder, resize_faces

BASE = Path(__file__).resolve().parent.parent / "reference_models" / "base" / "fraudit-reference-base.safetensors"


def _faces(n: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)


def test_onnx_embedder_matches_torch(tmp_path: Path) -> None:
    from fraudit.models.reference import ReferenceEmbedder

    module = ReferenceEmbedder()
    path = export_onnx(tmp_path / "embedder.onnx", module)
    onnx = OnnxEmbedder(path, mean=127.5, scale=128.0)
    assert onnx.input_size == 64
    faces = _faces(70)
    expected = TorchEmbedder("torch", module, 64).embed(faces)
    assert onnx.embed(faces).shape == (70, 128)
    assert np.allclose(onnx.embed(faces), expected, atol=1e-4)


def test_reference_embedder_from_the_shipped_base() -> None:
    embedder = reference_embedder(BASE)
    e = embedder.embed(_faces(5))
    assert e.shape == (5, 128) and np.isfinite(e).all()


def test_resize_is_exact_at_size_and_resizes_otherwise() -> None:
    faces = _faces(2)
    assert resize_faces(faces, 64) is faces
    assert resize_faces(faces, 112).shape == (2, 112, 112, 3)
