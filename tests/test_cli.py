"""The real CLI: exit codes, the JSON schema, SARIF structure, batches, parallel runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import torch
from helpers import malicious
from helpers.models import export_onnx, reference_state_dict, write_safetensors
from typer.testing import CliRunner

from fraudit.cli import app
from fraudit.report.json_report import json_schema

runner = CliRunner()


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of mixed good, bad and corrupt files, and one model repo with shards."""
    root = tmp_path_factory.mktemp("models")
    canary = root.parent / "CANARY-batch"
    write_safetensors(root / "clean.safetensors", reference_state_dict(seed=0))
    torch.save({"state_dict": reference_state_dict(seed=1)}, root / "finetuned.pth")
    (root / "uploads").mkdir()
    (root / "uploads" / "avatar.jpg").write_bytes(malicious.reduce_os_system(canary))
    malicious.torch_legacy(root / "uploads" / "legacy.ckpt", canary)
    (root / "broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"w\":")
    (root / "empty.bin").write_bytes(b"")
    (root / "notes.txt").write_text("not a model, not a candidate")
    export_onnx(root / "embedder.onnx")
    repo = root / "sharded-repo"
    repo.mkdir()
    state = reference_state_dict(seed=2)
    keys = sorted(state)
    write_safetensors(repo / "model-00001-of-00002.safetensors", {k: state[k] for k in keys[: len(keys) // 2]})
    write_safetensors(repo / "model-00002-of-00002.safetensors", {k: state[k] for k in keys[len(keys) // 2 :]})
    (repo / "config.json").write_text("{}")
    return root


def _scan(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["scan", *args])
    return result.exit_code, result.stdout, result.stderr


def _verdicts(document: dict) -> dict[str, str]:
    return {Path(r["source"]).name: r["verdict"] for r in document["results"]}


def test_json_batch_reports_every_file(batch: Path) -> None:
    code, out, _ = _scan(str(batch), "--format", "json")
    document = json.loads(out)
    jsonschema.validate(document, json_schema())
    assert _verdicts(document) == {
        "broken.safetensors": "ERROR",
        "clean.safetensors": "INCONCLUSIVE",
        "embedder.onnx": "INCONCLUSIVE",
        "empty.bin": "ERROR",
        "finetuned.pth": "INCONCLUSIVE",
        "sharded-repo": "INCONCLUSIVE",
        "avatar.jpg": "FAIL",
        "legacy.ckpt": "FAIL",
    }
    assert code == 2  # errors in the batch
    assert document["exit_code"] == 2
    assert document["summary"] == {"PASS": 0, "INCONCLUSIVE": 4, "WARN": 0, "FAIL": 2, "ERROR": 2}
    sharded = next(r for r in document["results"] if r["source"].endswith("sharded-repo"))
    assert len(sharded["files"]) == 2
    assert sharded["architecture"]["id"] == "fraudit-reference"
    assert not (batch.parent / "CANARY-batch").exists()


def test_inconclusive_is_not_pass_and_says_why(batch: Path) -> None:
    code, out, _ = _scan(str(batch / "clean.safetensors"), "-f", "json")
    [result] = json.loads(out)["results"]
    assert code == 0
    assert result["verdict"] == "INCONCLUSIVE"
    bank = next(c for c in result["checks"] if c["name"] == "weight-bank")
    assert "not a fine-tune of its base" in bank["summary"]  # random weights: outside the shipped bank's domain
    assert result["architecture"]["parameters"] == 1_688_480
    assert result["architecture"]["embedding_dim"] == 128


@pytest.mark.parametrize(("fail_on", "code"), [("fail", 0), ("warn", 0), ("inconclusive", 2)])
def test_fail_on_moves_the_bar(batch: Path, fail_on: str, code: int) -> None:
    assert _scan(str(batch / "clean.safetensors"), "--fail-on", fail_on)[0] == code


def test_malicious_exits_1(batch: Path) -> None:
    code, out, _ = _scan(str(batch / "uploads" / "avatar.jpg"))
    assert code == 1
    assert "FAIL" in out and "posix.system" in out


def test_sarif_structure(batch: Path, tmp_path: Path) -> None:
    report = tmp_path / "fraudit.sarif"
    code, _, _ = _scan(str(batch), "--format", "sarif", "--output", str(report))
    assert code == 2
    sarif = json.loads(report.read_text())
    assert sarif["version"] == "2.1.0"
    [run] = sarif["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == ["FRAUDIT001", "FRAUDIT002", "FRAUDIT003"]
    assert all(r["properties"]["security-severity"] for r in rules)
    results = run["results"]
    assert len(results) == 2, "one result per FAIL/WARN check"
    for result in results:
        assert result["ruleId"] == rules[result["ruleIndex"]]["id"] == "FRAUDIT001"
        assert result["level"] == "error"
        [location] = result["locations"]
        uri = location["physicalLocation"]["artifactLocation"]["uri"]
        assert uri.endswith(("avatar.jpg", "legacy.ckpt"))
        assert location["physicalLocation"]["region"]["startLine"] == 1
        assert result["partialFingerprints"]["fraudit/v1"]
    invocation = run["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert len(invocation["toolExecutionNotifications"]) == 2  # the two unreadable files


def test_parallel_jobs_give_the_same_report(batch: Path) -> None:
    _, serial, _ = _scan(str(batch), "-f", "json")
    _, parallel, _ = _scan(str(batch), "-f", "json", "--jobs", "2")
    assert _verdicts(json.loads(serial)) == _verdicts(json.loads(parallel))
    assert [r["source"] for r in json.loads(serial)["results"]] == [r["source"] for r in json.loads(parallel)["results"]]


def test_missing_path_is_an_error_not_a_crash(tmp_path: Path) -> None:
    code, out, _ = _scan(str(tmp_path / "nope.safetensors"), "-f", "json")
    assert code == 2
    [result] = json.loads(out)["results"]
    assert result["verdict"] == "ERROR" and "no such file" in result["error"]


def test_pair_without_a_trusted_model_or_null_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["pair", "sweep", str(tmp_path / "missing-pair")])
    assert result.exit_code == 2
    assert "error" in result.stderr and "Traceback" not in result.output


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("scan", "bank", "pair", "zoo"):
        assert name in result.stdout


def _commands(command: object, path: list[str]) -> list[list[str]]:
    found = [path]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        found += _commands(sub, [*path, name])
    return found


def test_every_command_prints_its_help() -> None:
    """Rich renders option help as markup: a bracket in a help text (``hf://org/name[/file]``)
    once made ``scan --help`` a traceback."""
    import typer

    paths = _commands(typer.main.get_command(app), [])
    assert len(paths) > 10
    for path in paths:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (path, result.output, result.exception)
    scan_help = runner.invoke(app, ["scan", "--help"], env={"COLUMNS": "200"}).stdout
    assert "hf://org/name[/file]" in scan_help


def test_real_subprocess_rich_report(batch: Path) -> None:
    env = {**os.environ, "COLUMNS": "160"}
    proc = subprocess.run(
        [sys.executable, "-m", "fraudit", "scan", str(batch / "uploads"), str(batch / "clean.safetensors")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 1
    assert "avatar.jpg" in proc.stdout and "legacy.ckpt" in proc.stdout
    assert "fraudit reference CNN" in proc.stdout
    assert "3 candidate(s)" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_pairing_without_a_null_or_a_runnable_model_is_inconclusive(tmp_path: Path, canary: Path) -> None:
    """--pair-with never passes what it could not sweep: no null for the architecture,
    or a candidate fraudit cannot run, is INCONCLUSIVE with the reason."""
    trusted = Path(__file__).resolve().parent.parent / "reference_models" / "examples" / "clean.safetensors"
    onnx = export_onnx(tmp_path / "face.onnx")  # runnable, but fraudit ships no null for ONNX models
    evil = tmp_path / "evil.pt"
    evil.write_bytes(malicious.reduce_os_system(canary))
    result = runner.invoke(app, ["scan", str(onnx), str(evil), "--pair-with", str(trusted), "-f", "json"])
    checks = {Path(r["source"]).name: {c["name"]: c for c in r["checks"]} for r in json.loads(result.stdout)["results"]}
    assert checks["face.onnx"]["pairing"]["status"] == "INCONCLUSIVE"
    assert "no clean-pair null" in checks["face.onnx"]["pairing"]["summary"]
    assert checks["evil.pt"]["pairing"]["status"] == "INCONCLUSIVE"
    assert "not loaded" in checks["evil.pt"]["pairing"]["summary"]
    assert not canary.exists()


def test_pair_null_needs_three_clean_models(tmp_path: Path) -> None:
    one = write_safetensors(tmp_path / "one.safetensors", reference_state_dict(seed=1))
    result = runner.invoke(app, ["pair", "null", str(one), "--trusted", str(one), "--out", str(tmp_path / "n.json")])
    assert result.exit_code == 2
    assert "at least 3 clean models" in result.stderr
