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
from helpers.models import export_onnx as export
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


def test_scan_reports_the_export_and_why_the_bank_cannot_score_it(exported: Path) -> None:
    result = runner.invoke(app, ["scan", str(exported / "clean.onnx"), "-f", "json"])
    [report] = json.loads(result.stdout)["results"]
    architecture = report["architecture"]
    assert architecture["id"] == "fraudit-reference"
    assert architecture["recognised_from"] == "ONNX graph topology"
    assert architecture["normalisation"] == {"mean": 127.5, "scale": 128.0, "source": "architecture"}
    bank = next(c for c in report["checks"] if c["name"] == "weight-bank")
    assert bank["status"] == "INCONCLUSIVE" and "BatchNorm folded into 7 layers" in bank["summary"]


@pytest.mark.slow
def test_exports_get_their_safetensors_verdicts_from_the_pairing_check(exported: Path) -> None:
    pytest.importorskip("dlib", reason="the dlib extra is installed by .ci/run and the README set-up")
    sources = [str(exported / "clean.onnx"), str(exported / "backdoored.onnx"), str(EXAMPLES)]
    result = runner.invoke(app, ["scan", *sources, "--pair-with", "dlib", "-f", "json"])
    pairing = {Path(r["source"]).name: next(c for c in r["checks"] if c["name"] == "pairing")
               for r in json.loads(result.stdout)["results"]}
    for name in ("clean", "backdoored"):
        onnx, original = pairing[f"{name}.onnx"], pairing[f"{name}.safetensors"]
        assert onnx["status"] == original["status"]
        assert onnx["evidence"]["sweep"]["z"] == pytest.approx(original["evidence"]["sweep"]["z"], abs=0.05)
    assert pairing["backdoored.onnx"]["status"] == "FAIL" and pairing["clean.onnx"]["status"] == "PASS"
