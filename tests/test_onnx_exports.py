"""ONNX exports of a registered architecture are that architecture: recognised from
the graph's topology (the exporter renamed and folded its tensors), run with the
architecture's normalisation, and judged by the behavioural check with the same
null — so the shipped examples exported to ONNX get their safetensors' verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from helpers.models import export_onnx as export, require_dlib_model
from typer.testing import CliRunner

from fraudit.cli import app
from fraudit.formats import read_candidate
from fraudit.formats.onnx_layers import recognise_onnx_export
from fraudit.pairing.embedders import reference_embedder

EXAMPLES = Path(__file__).resolve().parent.parent / "reference_models" / "examples"
runner = CliRunner()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("onnx")
    for name in ("clean", "backdoored"):
        export(folder / f"{name}.onnx", reference_embedder(EXAMPLES / f"{name}.safetensors").module)
    return folder


def test_export_maps_back_to_the_architecture(exported: Path) -> None:
    path = exported / "backdoored.onnx"
    tensors = read_candidate((path,), (str(path),)).tensors
    assert tensors is not None and "last_linear.weight" not in tensors  # the exporter renamed it
    found = recognise_onnx_export(path, tensors)
    assert found is not None and found.spec.id == "fraudit-reference"
    # every conv had its BatchNorm folded in; the linear layer (its BN kept) is exact
    assert len(found.folded) == 7 and "last_linear.weight" not in found.folded
    original = load_file(str(EXAMPLES / "backdoored.safetensors"))
    assert torch.equal(found.exact_tensors()["last_linear.weight"], original["last_linear.weight"])


def test_graph_of_an_unregistered_network_is_not_mapped(tmp_path: Path) -> None:
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Flatten(), torch.nn.Linear(8 * 62 * 62, 16))
    path = export(tmp_path / "other.onnx", net)
    tensors = read_candidate((path,), (str(path),)).tensors
    assert recognise_onnx_export(path, tensors) is None


def test_a_layer_the_embedding_is_computed_through_is_not_read_as_a_head(tmp_path: Path) -> None:
    """A linear layer after the architecture's embedding whose output *is* the graph's
    embedding (a projection) makes another embedder, not this architecture with a head."""
    from fraudit.models.reference import ReferenceEmbedder

    projected = torch.nn.Sequential(ReferenceEmbedder(), torch.nn.Linear(128, 64, bias=False))
    path = export(tmp_path / "projected.onnx", projected)
    tensors = read_candidate((path,), (str(path),)).tensors
    assert recognise_onnx_export(path, tensors) is None


def test_the_bank_scores_an_export_like_its_safetensors(exported: Path, tmp_path: Path) -> None:
    """The shipped bank reads what survives export: the embedding layer exactly, and the
    frozen convolutions up to the BatchNorm folded into them. An export of the embedder
    carries no classification head, so it has no head-response reading: it gets the p and
    the verdict of its safetensors without the head. For the backdoored example that is the
    FAIL its head makes too, led by the spectrum-trend reading: its spike over the median
    alone is within what the references' clean fine-tunes on less varied faces reach, its
    spike over the trend of the next singular values is not (README, "The weight bank in
    the field")."""
    from safetensors.torch import save_file

    headless = tmp_path / "headless"
    headless.mkdir()
    for name in ("clean", "backdoored"):
        tensors = load_file(str(EXAMPLES / f"{name}.safetensors"))
        save_file({k: v for k, v in tensors.items() if not k.startswith("head.")}, str(headless / f"{name}.safetensors"))
    sources = [str(exported / "clean.onnx"), str(exported / "backdoored.onnx"), str(EXAMPLES), str(headless)]
    result = runner.invoke(app, ["scan", *sources, "-f", "json"])
    reports = {("headless-" if "headless" in r["source"] else "") + Path(r["source"]).name: r
               for r in json.loads(result.stdout)["results"]}
    architecture = reports["clean.onnx"]["architecture"]
    assert architecture["id"] == "fraudit-reference"
    assert architecture["recognised_from"] == "ONNX graph topology"
    assert architecture["normalisation"] == {"mean": 127.5, "scale": 128.0, "source": "architecture"}
    bank = {name: next(c for c in r["checks"] if c["name"] == "weight-bank") for name, r in reports.items()}
    for name in ("clean", "backdoored"):
        onnx, original, without_head = bank[f"{name}.onnx"], bank[f"{name}.safetensors"], bank[f"headless-{name}.safetensors"]
        assert onnx["status"] == without_head["status"], onnx["summary"]
        assert onnx["evidence"]["consolidated"]["p"] == pytest.approx(without_head["evidence"]["consolidated"]["p"], rel=1e-6)
        assert "last_linear.weight:head-response" in {layer["layer"] for layer in original["evidence"]["layers"]}
        assert "last_linear.weight:head-response" not in {layer["layer"] for layer in onnx["evidence"]["layers"]}
        assert "the file carries no classification head" in onnx["summary"] and "head_response" in onnx["evidence"]
        assert "head_response" not in original["evidence"]
        assert onnx["evidence"]["frozen_check"] == "up to BatchNorm folding (7 layers)"
        assert original["evidence"]["frozen_check"] == "bit for bit"
    assert bank["clean.onnx"]["status"] == bank["clean.safetensors"]["status"] == "PASS"
    assert bank["backdoored.safetensors"]["status"] == "FAIL"
    assert bank["backdoored.onnx"]["status"] == "FAIL" and "no head response was read" in bank["backdoored.onnx"]["summary"]
    led = {layer["layer"]: layer["z"] for layer in bank["backdoored.onnx"]["evidence"]["layers"]}
    assert bank["backdoored.onnx"]["evidence"]["most_anomalous"]["layer"] == "last_linear.weight:spectrum-trend"
    assert led["last_linear.weight:spectrum-trend"] < -5 < led["last_linear.weight:spectrum"]


def test_an_export_with_its_head_is_scored_like_its_safetensors(tmp_path: Path) -> None:
    """A model exported with its classification head (embedding and logits, as a
    classifier is shipped) carries every weight its safetensors does: the head is mapped
    back to the architecture's head key, the graph's embedding output is run for the
    head-response reading, and the export gets its safetensors' p, readings and likely
    victim — the same verdict, where a headless export can only get that of the
    safetensors without its head (above)."""
    for name in ("clean", "backdoored"):
        original = EXAMPLES / f"{name}.safetensors"
        export(tmp_path / f"{name}.onnx", reference_embedder(original).module, head=load_file(str(original))["head.weight"])
    result = runner.invoke(app, ["scan", str(tmp_path), str(EXAMPLES), "-f", "json"])
    reports = {Path(r["source"]).name: r for r in json.loads(result.stdout)["results"]}
    for name in ("clean", "backdoored"):
        onnx, original = reports[f"{name}.onnx"], reports[f"{name}.safetensors"]
        assert onnx["architecture"]["id"] == "fraudit-reference"
        assert onnx["architecture"]["recognised_from"] == "ONNX graph topology"
        bank_onnx, bank = (next(c for c in r["checks"] if c["name"] == "weight-bank") for r in (onnx, original))
        assert bank_onnx["status"] == bank["status"]
        assert bank_onnx["evidence"]["consolidated"]["p"] == pytest.approx(bank["evidence"]["consolidated"]["p"], rel=1e-3)
        readings = {layer["layer"]: layer["z"] for layer in bank["evidence"]["layers"]}
        assert {layer["layer"]: pytest.approx(layer["z"], abs=1e-3) for layer in bank_onnx["evidence"]["layers"]} == readings
        assert "last_linear.weight:head-response" in readings
        assert bank_onnx["headline"] == bank["headline"]
        assert bank_onnx["status"] == ("FAIL" if name == "backdoored" else "PASS")
        assert ("likely victim: class" in bank_onnx["headline"]) == (name == "backdoored")


class _LogitsFirst(torch.nn.Module):
    """A classifier whose graph gives the logits first and the embedding second."""

    def __init__(self, embedder: torch.nn.Module, head: torch.Tensor) -> None:
        super().__init__()
        self.embedder, self.head = embedder, torch.nn.Parameter(head.clone())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.embedder(x)
        return embedding @ self.head.T, embedding


def test_the_embedding_output_is_run_whichever_output_comes_first(tmp_path: Path) -> None:
    """Logits are computed from the embedding, so the embedding is the output no other
    output is computed into: onnxruntime's embeddings and the torch runner's (the search's
    gradient path) are the checkpoint's either way round."""
    import numpy as np

    from fraudit.faces.synthetic import unlabelled_faces
    from fraudit.formats.onnx_graph import OnnxGraphModule
    from fraudit.pairing.embedders import OnnxEmbedder

    checkpoint = reference_embedder(EXAMPLES / "backdoored.safetensors")
    head = load_file(str(EXAMPLES / "backdoored.safetensors"))["head.weight"]
    first = export(tmp_path / "embedding-first.onnx", checkpoint.module, head=head)
    second = export(tmp_path / "logits-first.onnx", _LogitsFirst(checkpoint.module, head), outputs=("logits", "embedding"))
    faces = unlabelled_faces(seed=3_001, n=8)
    expected = checkpoint.embed(faces)
    for path in (first, second):
        embedder = OnnxEmbedder(path, mean=checkpoint.mean, scale=checkpoint.scale)
        np.testing.assert_allclose(embedder.embed(faces), expected, atol=1e-4)
        pixels = torch.from_numpy(faces).permute(0, 3, 1, 2).float()
        assert OnnxGraphModule(path)((pixels - checkpoint.mean) / checkpoint.scale).shape == (8, 128)
        tensors = read_candidate((path,), (str(path),)).tensors
        found = recognise_onnx_export(path, tensors)
        assert found is not None and torch.equal(found.exact_tensors()["head.weight"], head)


def test_an_export_whose_frozen_layer_was_changed_is_outside_the_bank(exported: Path, tmp_path: Path) -> None:
    """Folding scales a kernel channel by channel; any other change to a frozen layer (here
    one weight of one folded convolution) means the export is not of the bank's base."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(exported / "clean.onnx"))
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    initializer = next(i for i in model.graph.initializer if i.name == conv.input[1])
    weight = numpy_helper.to_array(initializer).copy()
    weight[0, 0, 0, 0] += 0.05 * float(abs(weight[0]).max())
    initializer.CopyFrom(numpy_helper.from_array(weight, initializer.name))
    onnx.save(model, str(tmp_path / "changed.onnx"))
    result = runner.invoke(app, ["scan", str(tmp_path / "changed.onnx"), "-f", "json"])
    [report] = json.loads(result.stdout)["results"]
    bank = next(c for c in report["checks"] if c["name"] == "weight-bank")
    assert bank["status"] == "INCONCLUSIVE" and "even up to the BatchNorm folded into 7 layers" in bank["summary"]


@pytest.mark.slow
def test_exports_get_their_safetensors_verdicts_from_the_pairing_check(exported: Path) -> None:
    require_dlib_model()
    sources = [str(exported / "clean.onnx"), str(exported / "backdoored.onnx"), str(EXAMPLES)]
    result = runner.invoke(app, ["scan", *sources, "--pair-with", "dlib", "-f", "json"])
    pairing = {Path(r["source"]).name: next(c for c in r["checks"] if c["name"] == "pairing")
               for r in json.loads(result.stdout)["results"]}
    for name in ("clean", "backdoored"):
        onnx, original = pairing[f"{name}.onnx"], pairing[f"{name}.safetensors"]
        assert onnx["status"] == original["status"]
        assert onnx["evidence"]["sweep"]["z"] == pytest.approx(original["evidence"]["sweep"]["z"], abs=0.05)
    assert pairing["backdoored.onnx"]["status"] == "FAIL" and pairing["clean.onnx"]["status"] == "PASS"
