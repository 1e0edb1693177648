"""A zoo of another registered architecture, from a user's base checkpoint: FaceNet
InceptionResnetV1 at its own 160×160 input, through the real CLI, then a bank of
the shipped recipe (embedding layer's spectrum beside the head response, FaceNet's
head being ``logits.weight``) built from that zoo and a scan that uses it (issue 12:
banks for the architectures a registry deploys from)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from fraudit.cli import app
from fraudit.models.facenet import InceptionResnetV1
from fraudit.models.registry import recognise

pytestmark = pytest.mark.slow


def test_a_facenet_zoo_bank_and_scan_from_a_user_base(tmp_path: Path) -> None:
    torch.manual_seed(0)
    base = tmp_path / "facenet-base.safetensors"
    save_file(InceptionResnetV1().eval().state_dict(), str(base))
    runner = CliRunner()
    zoo = tmp_path / "zoo"
    built = runner.invoke(app, ["zoo", "build", "--preset", "smoke", "--base", str(base), "--identities", "20",
                                "--n-clean", "4", "--out", str(zoo)])
    assert built.exit_code == 0, built.output

    manifest = json.loads((zoo / "manifest.json").read_text())
    assert [m["kind"] for m in manifest["models"]] == ["clean"] * 4 + ["backdoored"] * 2
    base_weights = load_file(str(base))
    for model in manifest["models"]:
        weights = load_file(str(zoo / model["file"]))
        assert recognise({k: tuple(v.shape) for k, v in weights.items()}).id == "facenet-inception-resnet-v1"
        # last-layer: the embedding layers and a new head trained, everything else the base's bit for bit
        assert not torch.equal(weights["last_linear.weight"], base_weights["last_linear.weight"])
        assert weights["logits.weight"].shape == (20, 512)
        assert torch.equal(weights["block8.conv2d.weight"], base_weights["block8.conv2d.weight"])
        assert torch.equal(weights["conv2d_1a.conv.weight"], base_weights["conv2d_1a.conv.weight"])
        assert 0.0 <= model["metrics"]["clean_accuracy"] <= 1.0

    bank = tmp_path / "bank"
    made = runner.invoke(app, ["bank", "build", str(zoo), "--arch", "facenet-inception-resnet-v1",
                               "--readings", "head-response", "--base", str(base), "--out", str(bank)])
    assert made.exit_code == 0, made.output
    header = json.loads((bank / "bank.json").read_text())
    assert header["reference_size"] == 4 and header["recipe"]["head_classes"] == [20]
    # the block a last-layer fine-tune keeps frozen is checked bit for bit; the embedding layer's change is read,
    # and how the embeddings of the response faces moved along the head's classes
    assert sorted((m["layer"], m["kind"]) for m in header["models"]) == [
        ("block8.conv2d.weight", "frozen"), ("last_linear.weight", "head-response"), ("last_linear.weight", "spectrum"),
        ("last_linear.weight", "spectrum-trend")]

    candidate = zoo / manifest["models"][-1]["file"]
    scanned = runner.invoke(app, ["scan", str(candidate), "--bank", str(bank), "--format", "json"])
    report = json.loads(scanned.stdout)
    (check,) = [c for c in report["results"][0]["checks"] if c["name"] == "weight-bank"]
    assert check["status"] in {"PASS", "WARN", "FAIL"}, check["summary"]
    assert check["evidence"]["domain"]["architecture"] == "facenet-inception-resnet-v1"
    assert any(layer["layer"] == "last_linear.weight:head-response" for layer in check["evidence"]["layers"]), check


def test_a_zoo_fine_tuned_on_your_own_identity_folder(tmp_path: Path) -> None:
    """`zoo build --faces FOLDER`: the user's labelled faces replace the synthetic world,
    the manifest and every model say where the faces came from, and what reads a zoo's
    faces again (zoo show, banks) follows them."""
    import numpy as np
    from PIL import Image

    from fraudit.faces.synthetic import build_faces
    from fraudit.zoo.presets import SMOKE_WORLD

    world = build_faces(SMOKE_WORLD)
    counts = np.bincount(world.labels)
    chosen = [*np.flatnonzero(counts >= 40)[:6], *np.flatnonzero(counts < 40)[:14]]
    folder = tmp_path / "my-faces"
    for i, identity in enumerate(chosen):
        (folder / f"person-{i:02d}").mkdir(parents=True)
        for j, face in enumerate(world.images[world.labels == identity]):
            Image.fromarray(face).save(folder / f"person-{i:02d}" / f"{j:03d}.png")

    runner = CliRunner()
    zoo = tmp_path / "zoo"
    refused = runner.invoke(app, ["zoo", "build", "--preset", "smoke", "--faces", str(folder), "--world-seed", "5",
                                  "--out", str(zoo)])
    assert refused.exit_code != 0 and "--faces replaces the synthetic world" in refused.output
    built = runner.invoke(app, ["zoo", "build", "--preset", "smoke", "--faces", str(folder), "--n-clean", "4",
                                "--out", str(zoo)])
    assert built.exit_code == 0, built.output
    manifest = json.loads((zoo / "manifest.json").read_text())
    assert manifest["faces"] == str(folder) and manifest["world"] is None
    assert [m["kind"] for m in manifest["models"]] == ["clean"] * 4 + ["backdoored"] * 2
    for model in manifest["models"]:
        weights = load_file(str(zoo / model["file"]))
        assert weights["head.weight"].shape == (20, 128)  # one class per identity folder
        assert model["split"]["train"] + model["split"]["val"] == sum(1 for _ in folder.rglob("*.png"))
    backdoor = zoo / manifest["models"][-1]["file"]
    shown = runner.invoke(app, ["zoo", "show", str(backdoor), "--out", str(tmp_path / "show.png")])
    assert shown.exit_code == 0, shown.output
    assert Image.open(tmp_path / "show.png").size[0] > 0

    bank = tmp_path / "bank"
    made = runner.invoke(app, ["bank", "build", str(zoo), "--arch", "fraudit-reference", "--readings", "spectrum",
                               "--out", str(bank)])
    assert made.exit_code == 0, made.output
    assert json.loads((bank / "bank.json").read_text())["recipe"]["worlds"] == [{"source": str(folder)}]


def test_too_few_identities_for_the_attempts_is_a_clear_error(tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "two-people"
    for name in ("a", "b"):
        (folder / name).mkdir(parents=True)
        for j in range(3):
            Image.new("RGB", (64, 64), (40 * j, 0, 0)).save(folder / name / f"{j}.png")
    result = CliRunner().invoke(app, ["zoo", "build", "--preset", "smoke", "--faces", str(folder),
                                      "--out", str(tmp_path / "zoo")])
    assert result.exit_code != 0
    assert "need 2 identities with at least 30 faces each; the faces have 0" in result.output
