"""Embedders: an ONNX model exported by the test gives the torch model's embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers.models import export_onnx, require_dlib_model

from fraudit.faces.resize import resize_faces
from fraudit.pairing.embedders import OnnxEmbedder, TorchEmbedder, reference_embedder

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


class _Counting:
    """An embedder that counts its calls, to see the cache answer instead."""

    name = "counting"
    input_size = 64
    architecture = "test"

    def __init__(self, fingerprint: str) -> None:
        self.fingerprint = fingerprint
        self.calls = 0

    def embed(self, faces: np.ndarray) -> np.ndarray:
        self.calls += 1
        return faces.reshape(len(faces), -1)[:, :8].astype(np.float32)


def test_embeddings_are_cached_per_fingerprint_and_faces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fraudit.pairing.embedders import embed_cached

    monkeypatch.setenv("FRAUDIT_CACHE_DIR", str(tmp_path))  # a cache of its own: the first call must compute

    faces = _faces(300)
    model = _Counting("fp-a")
    first = embed_cached(model, faces)
    assert model.calls == 2  # two chunks of 256
    assert np.array_equal(embed_cached(model, faces), first) and model.calls == 2
    embed_cached(model, faces[:10])
    assert model.calls == 3  # other faces: computed
    other = _Counting("fp-b")
    embed_cached(other, faces)
    assert other.calls == 2  # other weights: computed


def test_torch_fingerprint_follows_the_weights() -> None:
    import torch

    from fraudit.models.reference import ReferenceEmbedder

    module = ReferenceEmbedder()
    a = TorchEmbedder("a", module, 64).fingerprint
    assert TorchEmbedder("b", module, 64).fingerprint == a
    with torch.no_grad():
        module.last_linear.weight[0, 0] += 1e-3
    assert TorchEmbedder("c", module, 64).fingerprint != a


def test_dlib_embedder_gives_128d_descriptors() -> None:
    require_dlib_model()
    from fraudit.faces.synthetic import unlabelled_faces
    from fraudit.pairing.embedders import DlibEmbedder

    faces = unlabelled_faces(seed=11, n=6)
    model = DlibEmbedder()
    e = model.embed(faces)
    assert e.shape == (6, 128) and e.dtype == np.float32
    assert np.isfinite(e).all() and (np.linalg.norm(e, axis=1) > 0.5).all()
    distances = np.linalg.norm(e[:, None] - e[None], axis=2)[np.triu_indices(6, 1)]
    assert distances.min() > 0.05  # six different faces, six different descriptors
    assert np.allclose(model.embed(faces[:2]), e[:2], atol=1e-5)
    assert len(model.fingerprint) == 64


def test_load_embedder_refuses_an_unsafe_pickle(tmp_path: Path, canary: Path) -> None:
    from helpers import malicious

    from fraudit.errors import UnsafePickleError
    from fraudit.loading import load_embedder

    path = tmp_path / "model.pt"
    path.write_bytes(malicious.reduce_os_system(canary))
    with pytest.raises(UnsafePickleError, match="file safety"):
        load_embedder(str(path))
    assert not canary.exists()


@pytest.mark.parametrize(
    ("listing", "drop", "size", "dim"),
    [("facenet_vggface2_keys.txt", "logits.", 160, 512), ("iresnet_r50_keys.txt", None, 112, 512)],
)
def test_registry_architectures_run_as_embedders(listing: str, drop: str | None, size: int, dim: int) -> None:
    """Our FaceNet and iresnet modules hold exactly the published state-dict keys and
    shapes, so a real checkpoint loads strictly; a random one embeds faces."""
    import torch

    from fraudit.models.registry import read_shape_listing
    from fraudit.pairing.embedders import torch_embedder

    torch.manual_seed(0)
    shapes = read_shape_listing(listing)
    tensors = {k: (torch.randn(s) * 0.05 if s and not k.endswith(("running_var", "num_batches_tracked")) else
                   torch.ones(s) if k.endswith("running_var") else torch.zeros(s, dtype=torch.int64))
               for k, s in shapes.items()}
    embedder = torch_embedder("model", tensors)
    assert embedder.input_size == size
    e = embedder.embed(_faces(2))
    assert e.shape == (2, dim) and np.isfinite(e).all()
    fused = {k: v for k, v in tensors.items() if "bn" not in k}
    from fraudit.errors import UnsupportedFormatError

    with pytest.raises(UnsupportedFormatError, match="do not load|cannot run"):
        torch_embedder("fused", fused)
    if drop:
        assert not any(k.startswith(drop) for k in embedder.module.state_dict())
