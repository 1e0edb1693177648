"""Architectures are recognised from tensor names and shapes alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.models import listing_state_dict, reference_state_dict, write_safetensors

from fraudit.models.registry import read_shape_listing, recognise


def _shapes(filename: str) -> dict[str, tuple[int, ...]]:
    return read_shape_listing(filename)


def test_facenet_vggface2() -> None:
    match = recognise(_shapes("facenet_vggface2_keys.txt"))
    assert match.id == "facenet-inception-resnet-v1"
    assert match.variant == "vggface2"
    assert match.embedding_dim == 512 and match.input_size == 160
    # facenet-pytorch's own count, without the 8631-way logits layer
    assert match.parameters == 23_482_624


def test_facenet_casia_and_headless_variants() -> None:
    shapes = _shapes("facenet_vggface2_keys.txt")
    casia = dict(shapes, **{"logits.weight": (10575, 512), "logits.bias": (10575,)})
    assert recognise(casia).variant == "casia-webface"
    headless = {k: v for k, v in shapes.items() if not k.startswith("logits.")}
    assert recognise(headless).variant == "no logits"


@pytest.mark.parametrize(("depth", "params"), [(50, 43_590_848), (100, 65_156_160)])
def test_iresnet(depth: int, params: int) -> None:
    match = recognise(_shapes(f"iresnet_r{depth}_keys.txt"))
    assert match.id == f"iresnet{depth}"
    assert match.embedding_dim == 512 and match.input_size == 112
    assert match.parameters == params


def test_bn_fused_iresnet_still_matches() -> None:
    """py-feat's arcface_r50 folds BatchNorm into the convolutions."""
    shapes = {k: v for k, v in _shapes("iresnet_r50_keys.txt").items() if ".bn" not in k and not k.startswith("bn")}
    assert recognise(shapes).id == "iresnet50"


def test_reference_architecture_with_head() -> None:
    shapes = {k: tuple(v.shape) for k, v in reference_state_dict().items()}
    assert recognise(shapes).variant == "embedder only"
    with_head = dict(shapes, **{"head.weight": (1000, 128)})
    match = recognise(with_head)
    assert match.id == "fraudit-reference"
    assert match.variant == "with ArcFace head (1000 classes)"
    assert match.parameters == recognise(shapes).parameters  # the head is not the embedder


def test_changed_shape_is_unknown() -> None:
    shapes = dict(_shapes("iresnet_r50_keys.txt"))
    shapes["fc.weight"] = (256, 25088)
    match = recognise(shapes)
    assert match.id == "unknown"
    assert match.parameters > 0


def test_facenet_file_end_to_end(tmp_path: Path) -> None:
    """A real-size FaceNet state dict on disk, through the whole audit."""
    from fraudit.audit import audit
    from fraudit.sources import Candidate

    path = write_safetensors(tmp_path / "facenet.safetensors", listing_state_dict("facenet_vggface2_keys.txt"))
    result = audit(Candidate(source="facenet", files=(path,), locations=("facenet",)))
    assert result.architecture is not None
    assert result.architecture.id == "facenet-inception-resnet-v1"
    assert result.checks[1].name == "weight-bank"
    assert result.checks[1].status.name == "INCONCLUSIVE"


def test_the_report_states_input_size_and_normalisation(tmp_path: Path) -> None:
    """From the architecture for registered ones (and their ONNX exports); assumed (and
    said so) for an ONNX graph of another network."""
    import json

    import torch
    from helpers.models import export_onnx
    from typer.testing import CliRunner

    from fraudit.cli import app

    write_safetensors(tmp_path / "ref.safetensors", reference_state_dict())
    export_onnx(tmp_path / "ref.onnx")
    other = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=4), torch.nn.Flatten(), torch.nn.Linear(8 * 16 * 16, 128))
    export_onnx(tmp_path / "face.onnx", other)
    result = CliRunner().invoke(app, ["scan", str(tmp_path), "-f", "json"])
    arch = {Path(r["source"]).name: r["architecture"] for r in json.loads(result.stdout)["results"]}
    for name in ("ref.safetensors", "ref.onnx"):
        assert arch[name]["normalisation"] == {"mean": 127.5, "scale": 128.0, "source": "architecture"}
    assert arch["ref.onnx"]["recognised_from"] == "ONNX graph topology"
    assert arch["face.onnx"]["id"] == "onnx-embedder"
    assert arch["face.onnx"]["input_size"] == 64
    assert arch["face.onnx"]["normalisation"]["source"] == "assumed"
    terminal = CliRunner().invoke(app, ["scan", str(tmp_path / "face.onnx")], env={"COLUMNS": "200"}).stdout
    assert "input 64×64, (x − 127.5) / 127.5 (assumed)" in terminal
