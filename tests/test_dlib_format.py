"""dlib's own network files: read by fraudit's parser (nothing of dlib runs), run as
dlib runs them, and refused — with a message, never a traceback — when broken."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.dlib_files import random_state, write_dlib_resnet
from typer.testing import CliRunner

from fraudit.cli import app
from fraudit.errors import CorruptFileError, UnsupportedFormatError
from fraudit.formats import Format, detect_format, read_file
from fraudit.formats.dlib_dnn import read_dlib_dnn
from fraudit.pairing.embedders import torch_embedder

runner = CliRunner()
HAS_DLIB = importlib.util.find_spec("dlib") is not None and importlib.util.find_spec("face_recognition_models") is not None


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return random_state(seed=3)


@pytest.mark.parametrize("batch_norm", [False, True], ids=["affine", "batchnorm"])
def test_a_dlib_network_file_reads_back_as_its_weights(tmp_path: Path, state: dict[str, torch.Tensor],
                                                        batch_norm: bool) -> None:
    path = write_dlib_resnet(tmp_path / "net.dat", state, batch_norm=batch_norm)
    assert detect_format(path) is Format.DLIB_DNN
    read = read_dlib_dnn(path)
    assert read.keys() == state.keys()
    for key, value in state.items():
        # a BatchNorm layer becomes the affine layer dlib makes of it: equal up to float32 rounding
        assert torch.allclose(read[key], value, rtol=1e-5, atol=1e-6), key


def _huge_tensor(data: bytes) -> bytes:
    """The first convolution's parameters claiming 2^60 floats."""
    at = data.index(b"con_4") + len(b"con_4") + 2  # past the tensor's version
    size = data[at] & 0x0F
    return data[:at] + b"\x08" + (2**60).to_bytes(8, "little") + data[at + 1 + size :]


def _flip_layer_setting(data: bytes) -> bytes:
    """The max pool's 3×3 window made 2×2: well-formed bytes, another network."""
    marker = data.index(b"max_pool_2") + len(b"max_pool_2")
    assert data[marker : marker + 2] == b"\x01\x03"
    return data[:marker] + b"\x01\x02" + data[marker + 2 :]


@pytest.mark.parametrize("damage, error", [
    (lambda d: d[: len(d) // 2], CorruptFileError),
    (lambda d: d[:40], CorruptFileError),
    (lambda d: d + b"\x00trailing", CorruptFileError),
    (lambda d: d.replace(b"loss_metric_2", b"loss_mmod_xx_", 1), UnsupportedFormatError),
    (_flip_layer_setting, UnsupportedFormatError),
    (_huge_tensor, CorruptFileError),  # refused before anything is allocated
], ids=["truncated", "header-only", "trailing-bytes", "other-loss", "other-pooling", "huge-tensor"])
def test_a_broken_or_other_dlib_network_is_refused_with_a_reason(tmp_path: Path, state: dict[str, torch.Tensor],
                                                                  damage, error) -> None:  # noqa: ANN001
    good = write_dlib_resnet(tmp_path / "good.dat", state).read_bytes()
    path = tmp_path / "bad.dat"
    path.write_bytes(damage(good))
    with pytest.raises(error) as caught:
        read_dlib_dnn(path)
    assert "bad.dat" in str(caught.value)
    reading = read_file(path, "bad.dat")
    assert reading.format in (Format.DLIB_DNN, None)


def test_scan_reads_a_dlib_network_as_the_dlib_resnet(tmp_path: Path, state: dict[str, torch.Tensor]) -> None:
    """In a folder, a .dat is a candidate when its bytes are a dlib network, not for its name."""
    path = write_dlib_resnet(tmp_path / "face_model.dat", state)
    (tmp_path / "landmarks.dat").write_bytes(b"\x01\x02 not a network")
    result = runner.invoke(app, ["scan", str(tmp_path), "--format", "json"])
    [report] = json.loads(result.stdout)["results"]
    assert report["source"] == str(path)
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["file-safety"]["status"] == "PASS"
    assert report["formats"] == ["dlib-dnn"]
    assert report["architecture"]["id"] == "dlib-resnet-v1"
    assert report["architecture"]["input_size"] == 150
    assert report["architecture"]["parameters"] == sum(
        v.numel() for k, v in state.items() if k != "input_mean")


@pytest.mark.skipif(not HAS_DLIB, reason="needs dlib-bin (test extra) and face-recognition-models (dlib extra)")
def test_dlibs_own_file_runs_in_torch_as_dlib_runs_it() -> None:
    """The dlib trusted model is dlib's file run by fraudit: held here to dlib itself."""
    import dlib

    from fraudit.faces.resize import resize_faces
    from fraudit.faces.synthetic import unlabelled_faces
    from fraudit.pairing.embedders import DlibEmbedder, dlib_model_path

    path = dlib_model_path()
    faces = np.concatenate([unlabelled_faces(seed=11, n=4), np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3),
                                                                                                 dtype=np.uint8)])
    chips = [np.ascontiguousarray(f) for f in resize_faces(faces, 150)]
    dlibs = np.asarray([np.asarray(d) for d in dlib.face_recognition_model_v1(str(path)).compute_face_descriptor(chips)])
    ours = DlibEmbedder().embed(faces)
    assert np.abs(ours - dlibs).max() < 1e-4 * np.abs(dlibs).max()
    candidate = torch_embedder(path.name, read_dlib_dnn(path))  # the same network as a candidate's embedder
    assert candidate.architecture == "dlib-resnet-v1" and candidate.input_size == 150
    assert np.allclose(candidate.embed(faces), ours, atol=1e-6)


@pytest.mark.skipif(importlib.util.find_spec("face_recognition_models") is None, reason="needs the dlib extra")
def test_dlibs_file_given_by_path_is_the_dlib_trusted_model(tmp_path: Path) -> None:
    """``--pair-with path/to/dlib.dat`` is ``--pair-with dlib`` when it is the same file:
    same fingerprint, so the shipped nulls and embeddings apply."""
    import shutil

    from fraudit.loading import load_embedder
    from fraudit.pairing.embedders import DlibEmbedder, dlib_model_path

    copy = tmp_path / "renamed.dat"
    shutil.copyfile(dlib_model_path(), copy)
    by_path, by_name = load_embedder(str(copy)), load_embedder("dlib")
    assert isinstance(by_path, DlibEmbedder) and by_path.fingerprint == by_name.fingerprint
