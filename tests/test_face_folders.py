"""Real face data: identity folders, image folders and Hub data sets, read with PIL."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from helpers.hub_server import FakeRepo, HubServer
from PIL import Image

from fraudit.errors import SourceNotFoundError
from fraudit.faces.folders import identity_folder, image_folder, read_face
from fraudit.faces.sources import calibration_faces, probe_identities


def _png(colour: tuple[int, int, int], size: tuple[int, int] = (80, 100)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _identity_tree(root: Path) -> Path:
    for name, colour, n in (("alice", (200, 10, 10), 3), ("bob", (10, 200, 10), 2), ("empty", (0, 0, 0), 0)):
        (root / name).mkdir(parents=True)
        for i in range(n):
            (root / name / f"{i}.png").write_bytes(_png(colour))
    (root / "bob" / "notes.txt").write_text("not an image")
    return root


def test_read_face_centre_crops_and_resizes(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    image = np.zeros((40, 80, 3), np.uint8)
    image[:, 20:60] = 255  # the centred square is white
    Image.fromarray(image).save(path)
    face = read_face(path, size=16)
    assert face.shape == (16, 16, 3) and face.dtype == np.uint8
    assert face[:, 1:-1].min() == 255  # the black sides are cropped away (PIL's filter blends the rim)
    assert face.mean() > 245


def test_identity_folder_labels_by_subfolder(tmp_path: Path) -> None:
    faces, names = identity_folder(_identity_tree(tmp_path / "ids"))
    assert names == ["alice", "bob"]
    assert faces.images.shape == (5, 64, 64, 3)
    assert faces.labels.tolist() == [0, 0, 0, 1, 1]
    assert faces.images[0, 0, 0].tolist() == [200, 10, 10]


def test_image_folder_samples_and_refuses_empty(tmp_path: Path) -> None:
    root = _identity_tree(tmp_path / "ids")
    assert image_folder(root).shape == (5, 64, 64, 3)
    two = image_folder(root, n=2, seed=1)
    assert two.shape == (2, 64, 64, 3)
    assert np.array_equal(two, image_folder(root, n=2, seed=1))
    with pytest.raises(SourceNotFoundError):
        image_folder(root / "empty")


def test_probe_identities_from_a_folder(tmp_path: Path) -> None:
    probes = probe_identities(str(_identity_tree(tmp_path / "ids")), n_identities=5, per_identity=2)
    assert probes.identities == ["alice", "bob"]
    assert probes.faces.labels.tolist() == [0, 0, 1, 1]


def test_calibration_faces_from_a_hub_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as constants

    commit = hashlib.sha1(b"faces").hexdigest()
    files = {f"thumbs/{i:02d}.png": _png((10 * i, 0, 0)) for i in range(6)} | {"README.md": b"# faces"}
    cache = tmp_path / "hf-cache"
    with HubServer([FakeRepo("datasets/acme/faces", commits={commit: files}, refs={"main": commit})]) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
        faces = calibration_faces("hf://datasets/acme/faces", n=4, token=False)
        assert faces.images.shape == (4, 64, 64, 3)
        assert "hf://datasets/acme/faces" in faces.source
        assert any(path.startswith("/api/datasets/acme/faces") for _, path in server.requests)
        assert not any(path.endswith("README.md") for _, path in server.requests)


def test_training_faces_from_a_hub_dataset_laid_out_by_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What `zoo build --faces hf://datasets/...` fine-tunes on: one class per folder."""
    import huggingface_hub.constants as constants

    from fraudit.faces.sources import training_faces

    commit = hashlib.sha1(b"identities").hexdigest()
    files = {f"{name}/{i}.png": _png(colour) for name, colour in (("ann", (200, 0, 0)), ("ben", (0, 200, 0)))
             for i in range(3)} | {"solo/0.png": _png((0, 0, 200))}
    with HubServer([FakeRepo("datasets/acme/ids", commits={commit: files}, refs={"main": commit})]) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
        faces, names = training_faces("hf://datasets/acme/ids", token=False)
    assert names == ["ann", "ben"]  # an identity with one face cannot be split: left out
    assert faces.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert faces.images.shape == (6, 64, 64, 3)
