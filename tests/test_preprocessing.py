"""How a candidate takes its faces, where its file does not say: the user's
--input-norm and --input-size reach the report (stated as given) and the embedder
that every behavioural check runs, for ONNX graphs and torch state dicts alike."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from typer.testing import CliRunner

from fraudit.cli import app
from fraudit.faces.synthetic import unlabelled_faces
from fraudit.loading import load_candidate
from fraudit.models.spec import Preprocessing
from fraudit.sources import Candidate, resolve_sources

EXAMPLES = Path(__file__).resolve().parent.parent / "reference_models" / "examples"
runner = CliRunner()


class _PooledEmbedder(nn.Module):
    """Any input size: convolution, global pooling, a linear embedding (no registered architecture)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(torch.relu(self.conv(x)), 1), 1))


def _dynamic_size_graph(path: Path) -> Path:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(_PooledEmbedder().eval(), (torch.randn(1, 3, 48, 48),), str(path), dynamo=False,
                          input_names=["input"], output_names=["embedding"],
                          dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"}, "embedding": {0: "batch"}})
    return path


def _candidate(path: Path) -> Candidate:
    (candidate,) = resolve_sources([str(path)])
    assert isinstance(candidate, Candidate)
    return candidate


def test_a_dynamic_size_graph_is_an_embedder_once_its_size_is_given(tmp_path: Path) -> None:
    graph = _dynamic_size_graph(tmp_path / "any-size.onnx")
    unsized = json.loads(runner.invoke(app, ["scan", str(graph), "-f", "json"]).stdout)["results"][0]
    assert unsized["architecture"]["id"] != "onnx-embedder"  # nothing says what faces it takes

    sized = runner.invoke(app, ["scan", str(graph), "-f", "json", "--input-size", "48", "--input-norm", "127.5/128"])
    architecture = json.loads(sized.stdout)["results"][0]["architecture"]
    assert architecture["id"] == "onnx-embedder" and architecture["input_size"] == 48
    assert architecture["normalisation"] == {"mean": 127.5, "scale": 128.0, "source": "option"}
    panel = runner.invoke(app, ["scan", str(graph), "--input-size", "48", "--input-norm", "127.5/128"],
                          env={"COLUMNS": "200"})
    assert "input 48×48, (x − 127.5) / 128 (as given)" in panel.stdout

    embedder = load_candidate(_candidate(graph), preprocessing=Preprocessing(input_size=48, mean=127.5,
                                                                             scale=128.0)).embedder
    assert (embedder.input_size, embedder.mean, embedder.scale) == (48, 127.5, 128.0)
    assert embedder.embed(unlabelled_faces(5, 3)).shape == (3, 16)


def test_a_state_dict_runs_with_the_users_normalisation() -> None:
    candidate = _candidate(EXAMPLES / "clean.safetensors")
    faces = unlabelled_faces(5, 4)
    default = load_candidate(candidate).embedder
    given = load_candidate(candidate, preprocessing=Preprocessing(mean=0.0, scale=255.0)).embedder
    assert (default.mean, default.scale) == (127.5, 128.0) and (given.mean, given.scale) == (0.0, 255.0)
    assert given.fingerprint != default.fingerprint  # cached embeddings must not be shared
    assert not np.allclose(given.embed(faces), default.embed(faces))


def test_a_malformed_input_norm_is_one_line_and_exit_2() -> None:
    for bad in ("128", "a/b", "127.5/0", "nan/1"):
        result = runner.invoke(app, ["scan", str(EXAMPLES / "clean.safetensors"), "--input-norm", bad])
        assert result.exit_code == 2, result.output
        assert result.stderr.strip().startswith("error: --input-norm"), result.stderr
