"""The Hugging Face path through the real huggingface_hub client, against a local
server: download, revision pinning, cache re-use offline, and clear errors."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from functools import cache

from helpers import malicious
from helpers.dlib_files import random_state, write_dlib_resnet
from helpers.hub_server import FakeRepo, HubServer
from helpers.models import reference_state_dict
from safetensors.torch import save

from fraudit.audit import audit_all
from fraudit.detectors.base import Status
from fraudit.sources import Candidate, SourceFailure, resolve_sources

V1 = hashlib.sha1(b"v1").hexdigest()
V2 = hashlib.sha1(b"v2").hexdigest()


@cache
def _dlib_network(folder: Path) -> bytes:
    return write_dlib_resnet(folder / "net.dat", random_state(seed=5)).read_bytes()


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import huggingface_hub.constants as constants

    clean = save(reference_state_dict(seed=3))
    buffer = io.BytesIO()
    torch.save(reference_state_dict(seed=4), buffer)
    evil = malicious.reduce_os_system(tmp_path / "CANARY")
    repos = [
        FakeRepo(
            "acme/face-embedder",
            commits={
                V1: {"model.safetensors": clean, "README.md": b"# card", "train.py": b"print('never fetched')"},
                V2: {"pytorch_model.bin": evil, "config.json": b"{}"},
            },
            refs={"main": V2, "v1.0": V1},
        ),
        FakeRepo("acme/torch-face", commits={V1: {"weights/face.pth": buffer.getvalue()}}, refs={"main": V1}),
        # dlib names its networks .dat, like the data files beside them
        FakeRepo("acme/dlib-face", commits={V1: {"dlib_face_recognition_resnet_model_v1.dat": _dlib_network(
            tmp_path.parent), "mean_shape.dat": b"0.1 0.2 0.3\n"}}, refs={"main": V1}),
    ]
    cache = tmp_path / "hf-cache"
    with HubServer(repos) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        monkeypatch.setenv("HF_HUB_CACHE", str(cache))
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
        server.cache = cache  # type: ignore[attr-defined]
        yield server


def test_download_pinned_revision(hub: HubServer) -> None:
    [candidate] = resolve_sources(["hf://acme/face-embedder@v1.0"], token=False)
    assert isinstance(candidate, Candidate)
    assert candidate.source == f"hf://acme/face-embedder@{V1}/model.safetensors"
    [result] = audit_all([candidate])
    assert result.architecture is not None and result.architecture.id == "fraudit-reference"
    assert result.checks[0].status is Status.PASS
    fetched = {p for _, p in hub.requests if "/resolve/" in p}
    assert not any(p.endswith(("train.py", "README.md")) for p in fetched), "only weights and configs are fetched"


def test_revision_option_and_default_branch(hub: HubServer) -> None:
    [pinned] = resolve_sources(["acme/face-embedder"], revision="v1.0", token=False)
    assert isinstance(pinned, Candidate) and V1 in pinned.source
    [main] = resolve_sources(["hf://acme/face-embedder"], token=False)
    assert isinstance(main, Candidate) and V2 in main.source
    [result] = audit_all([main])
    assert result.verdict is Status.FAIL  # the malicious pickle on main


def test_nested_file_in_repo(hub: HubServer) -> None:
    [candidate] = resolve_sources(["hf://acme/torch-face"], token=False)
    assert isinstance(candidate, Candidate)
    assert candidate.source.endswith("/weights/face.pth")


def test_a_dlib_network_is_fetched_and_read_as_one(hub: HubServer) -> None:
    [candidate] = resolve_sources(["hf://acme/dlib-face"], token=False)
    assert isinstance(candidate, Candidate)
    assert candidate.source.endswith("/dlib_face_recognition_resnet_model_v1.dat")
    [result] = audit_all([candidate])
    assert result.architecture is not None and result.architecture.id == "dlib-resnet-v1"
    assert result.checks[0].status is Status.PASS


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("hf://acme/missing", "repository not found"),
        ("hf://acme/face-embedder@no-such-branch", "revision 'no-such-branch' not found"),
    ],
)
def test_hub_errors_are_one_clear_line(hub: HubServer, source: str, message: str) -> None:
    [failure] = resolve_sources([source], token=False)
    assert isinstance(failure, SourceFailure)
    assert message in failure.reason
    assert "\n" not in failure.reason


def _run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fraudit", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_offline_rerun_uses_the_cache(hub: HubServer, tmp_path: Path) -> None:
    """A real process: first online, then HF_HUB_OFFLINE=1 with no request reaching the server."""
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf-home")}
    online = _run_cli(["scan", "hf://acme/face-embedder@v1.0", "--format", "json"], env)
    assert online.returncode == 0, online.stderr
    seen = len(hub.requests)
    offline = _run_cli(["scan", "hf://acme/face-embedder@v1.0", "--format", "json"], {**env, "HF_HUB_OFFLINE": "1"})
    assert offline.returncode == 0, offline.stderr
    assert V1 in offline.stdout
    assert len(hub.requests) == seen, "offline mode must not reach the server"
    never_cached = _run_cli(["scan", "hf://acme/torch-face", "-f", "json"], {**env, "HF_HUB_OFFLINE": "1"})
    assert never_cached.returncode == 2
    [result] = json.loads(never_cached.stdout)["results"]
    assert result["verdict"] == "ERROR"
    assert "not in the local cache" in result["error"]
