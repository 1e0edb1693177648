"""Malicious pickles are failed by name and never executed; benign ones pass."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import malicious
from helpers.models import reference_state_dict

from fraudit.audit import audit
from fraudit.detectors.base import Status
from fraudit.sources import Candidate


def _audit_file(path: Path):
    return audit(Candidate(source=path.name, files=(path,), locations=(path.name,)))


# Disguises: the extension says nothing about the bytes.
@pytest.mark.parametrize("style", sorted(malicious.RAW_STYLES))
@pytest.mark.parametrize("filename", ["model.pkl", "model.safetensors", "face.jpg", "pytorch_model.bin"])
def test_raw_payload_fails_and_never_runs(tmp_path: Path, canary: Path, style: str, filename: str) -> None:
    path = tmp_path / filename
    path.write_bytes(malicious.RAW_STYLES[style](canary))
    result = _audit_file(path)
    safety = result.checks[0]
    assert safety.name == "file-safety"
    assert safety.status is Status.FAIL, safety.summary
    assert result.verdict is Status.FAIL
    offending = safety.evidence["files"][0]["unsafe_globals"]
    assert offending, "the FAIL must name the offending globals"
    assert "not loaded" in safety.summary
    assert not canary.exists()


@pytest.mark.parametrize("builder", [malicious.torch_zip, malicious.torch_legacy, malicious.handmade_zip])
def test_payload_inside_torch_checkpoint(tmp_path: Path, canary: Path, builder) -> None:
    path = builder(tmp_path / "checkpoint.pth", canary)
    result = _audit_file(path)
    assert result.checks[0].status is Status.FAIL
    assert "system" in result.checks[0].summary
    assert not canary.exists()


def test_the_payloads_are_live(tmp_path: Path) -> None:
    """The tests above mean something only if unpickling these files really runs code."""
    for style, build in malicious.RAW_STYLES.items():
        canary = tmp_path / f"ran-{style}"
        path = tmp_path / f"{style}.pkl"
        path.write_bytes(build(canary))
        malicious.unpickle_in_subprocess(path, torch_file=False)
        assert canary.exists(), f"{style} payload did not run when unpickled"
    canary = tmp_path / "ran-torch-zip"
    path = malicious.torch_zip(tmp_path / "zip.pt", canary)
    malicious.unpickle_in_subprocess(path, torch_file=True)
    assert canary.exists()


def test_offending_globals_are_named(tmp_path: Path, canary: Path) -> None:
    path = tmp_path / "m.pkl"
    path.write_bytes(malicious.builtins_exec(canary))
    result = _audit_file(path)
    # protocol 2 spells builtins the Python 2 way; the report shows what the bytes say
    assert "__builtin__.exec" in result.checks[0].summary


@pytest.mark.parametrize("legacy", [False, True])
def test_benign_torch_checkpoint_passes_file_safety(tmp_path: Path, legacy: bool) -> None:
    path = tmp_path / "model.pth"
    torch.save(
        {"state_dict": reference_state_dict(), "epoch": 3}, path, _use_new_zipfile_serialization=not legacy
    )
    result = _audit_file(path)
    safety = result.checks[0]
    assert safety.status is Status.PASS, safety.summary
    assert "weights_only=True" in safety.summary
    assert result.architecture is not None and result.architecture.id == "fraudit-reference"


def test_whole_pickled_module_is_not_a_tensor_checkpoint(tmp_path: Path) -> None:
    """torch.save(model) pickles classes whose code runs on load: outside the allowlist."""
    path = tmp_path / "model.pt"
    torch.save(torch.nn.Linear(3, 2), path)
    result = _audit_file(path)
    assert result.checks[0].status is Status.FAIL
    assert "torch.nn.modules.linear.Linear" in result.checks[0].summary
