"""fraudit's second CPU architecture (MobileFaceNet-style, global depthwise conv):
recognised from its weights and from an ONNX export's topology, pretrained and
fine-tuned through the same code as the reference CNN, and audited by a bank of
its own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers.models import export_onnx
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from fraudit.cli import app
from fraudit.faces.synthetic import FaceWorldSpec
from fraudit.formats import read_candidate
from fraudit.formats.onnx_layers import recognise_onnx_export
from fraudit.models.mobileface import ARCH_ID, MobileFaceEmbedder
from fraudit.models.registry import count_parameters, recognise
from fraudit.zoo.base import load_base, save_base
from fraudit.zoo.pretrain import PretrainRecipe, pretrain

runner = CliRunner()


def test_recognised_and_its_stages_are_its_forward() -> None:
    torch.manual_seed(0)
    model = MobileFaceEmbedder().eval()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    match = recognise(shapes)
    assert match.id == ARCH_ID and match.embedding_dim == 128 and match.input_size == 64
    assert count_parameters(shapes) == match.parameters
    x = torch.randn(3, 3, 64, 64)
    staged = x
    for _, stage in model.stages():
        staged = stage(staged)
    assert torch.equal(staged, model(x))
    # not the reference CNN's layout: the two are told apart, each way
    from fraudit.models.reference import ReferenceEmbedder

    reference = {k: tuple(v.shape) for k, v in ReferenceEmbedder().state_dict().items()}
    assert recognise(reference).id == "fraudit-reference"
    assert not set(match_keys(shapes)) & set(match_keys(reference))


def match_keys(shapes: dict[str, tuple[int, ...]]) -> set[tuple[str, tuple[int, ...]]]:
    return {(k, s) for k, s in shapes.items() if k.endswith(".weight") and len(s) >= 2}


def test_an_onnx_export_is_recognised_from_its_topology(tmp_path: Path) -> None:
    torch.manual_seed(1)
    path = export_onnx(tmp_path / "mobile.onnx", MobileFaceEmbedder())
    read = read_candidate((path,), (str(path),))
    export = recognise_onnx_export(path, read.tensors)
    assert export is not None and export.spec.id == ARCH_ID
    assert "linear.weight" not in export.folded  # the embedding layer reaches the bank unfolded
    assert "gdc.0.weight" in export.folded  # its BatchNorm is folded in


@pytest.mark.slow
def test_pretrained_fine_tuned_and_banked_like_the_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDIT_CACHE_DIR", str(tmp_path / "cache"))
    tiny = FaceWorldSpec(seed=91, n_identities=40, sigma=0.5, tail=None, max_samples=16)
    held = FaceWorldSpec(seed=92, n_identities=20, sigma=0.5, tail=None, max_samples=6)
    model, card = pretrain(PretrainRecipe(world=tiny, held_out=held, epochs=2, batch_size=64, architecture=ARCH_ID))
    assert card["architecture"] == ARCH_ID and card["recipe"]["architecture"] == ARCH_ID
    base = save_base(model, card, tmp_path / "base")
    assert base.name == f"{ARCH_ID}-base.safetensors"
    assert "fraudit base model: fraudit-mobileface" in (tmp_path / "base" / "MODEL_CARD.md").read_text()
    assert all(torch.equal(a, b) for a, b in zip(load_base(base).state_dict().values(), model.state_dict().values()))

    zoo = tmp_path / "zoo"
    built = runner.invoke(app, ["zoo", "build", "--preset", "smoke", "--base", str(base), "--identities", "30",
                                "--n-clean", "4", "--out", str(zoo)])
    assert built.exit_code == 0, built.output
    manifest = json.loads((zoo / "manifest.json").read_text())
    base_weights = load_file(str(base))
    for entry in manifest["models"]:
        weights = load_file(str(zoo / entry["file"]))
        assert recognise({k: tuple(v.shape) for k, v in weights.items()}).id == ARCH_ID
        assert not torch.equal(weights["linear.weight"], base_weights["linear.weight"])
        assert torch.equal(weights["gdc.0.weight"], base_weights["gdc.0.weight"])  # last-layer: frozen
        assert weights["head.weight"].shape == (30, 128)

    bank = tmp_path / "bank"
    made = runner.invoke(app, ["bank", "build", str(zoo), "--arch", ARCH_ID, "--readings", "spectrum", "--base",
                               str(base), "--out", str(bank)])
    assert made.exit_code == 0, made.output
    kinds = {(m["layer"], m["kind"]) for m in json.loads((bank / "bank.json").read_text())["models"]}
    assert kinds == {("gdc.0.weight", "frozen"), ("linear.weight", "spectrum"), ("linear.weight", "spectrum-trend")}
    # a checkpoint of another base is outside this bank's domain: INCONCLUSIVE, never FAIL
    other = {k: v.clone() for k, v in base_weights.items()}
    other["stem.0.weight"] += 0.01
    save_file(other, str(tmp_path / "other.safetensors"))
    report = json.loads(runner.invoke(app, ["scan", str(tmp_path / "other.safetensors"), "--bank", str(bank),
                                            "-f", "json"]).stdout)
    (check,) = [c for c in report["results"][0]["checks"] if c["name"] == "weight-bank"]
    assert check["status"] == "INCONCLUSIVE", check["summary"]
