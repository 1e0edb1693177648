"""A new check is one module and one line in the audit's configuration: it runs on
every loaded candidate and reaches the terminal, JSON and SARIF reports."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import torch
from helpers.finite_check import FiniteWeightsCheck
from helpers.models import reference_state_dict, write_safetensors
from rich.console import Console

from fraudit.audit import AuditConfig, audit_all, default_checks
from fraudit.detectors.base import FailOn, Status
from fraudit.detectors.check import Check
from fraudit.report import to_json_document, to_sarif_document
from fraudit.report.console import BatchReport
from fraudit.report.json_report import json_schema
from fraudit.sources import resolve_sources


def test_a_toy_check_reaches_every_report(tmp_path: Path) -> None:
    assert isinstance(FiniteWeightsCheck(), Check)
    write_safetensors(tmp_path / "fine.safetensors", reference_state_dict(seed=0))
    broken = reference_state_dict(seed=1)
    broken["last_linear.weight"][3, 7] = torch.nan
    write_safetensors(tmp_path / "nan.safetensors", broken)

    config = AuditConfig(checks=(*default_checks(), FiniteWeightsCheck()))  # the one line
    results = audit_all(resolve_sources([str(tmp_path)]), config=config)
    by_name = {Path(r.source).name: r for r in results}
    toy = {name: next(c for c in r.checks if c.name == "finite-weights") for name, r in by_name.items()}
    assert toy["fine.safetensors"].status is Status.PASS
    assert toy["nan.safetensors"].status is Status.FAIL and "last_linear.weight" in toy["nan.safetensors"].summary
    assert by_name["nan.safetensors"].verdict is Status.FAIL

    console = Console(record=True, width=200)
    console.print(BatchReport(results))
    terminal = console.export_text()
    assert "finite-weights" in terminal and "non-finite values in last_linear.weight" in terminal

    document = json.loads(json.dumps(to_json_document(results, fail_on=FailOn.FAIL)))
    jsonschema.validate(document, json_schema())
    names = {c["name"] for r in document["results"] for c in r["checks"]}
    assert "finite-weights" in names

    sarif = to_sarif_document(results, checks=config.checks)
    [run] = sarif["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == ["FRAUDIT001", "FRAUDIT002", "FRAUDIT003", "TOY001"]
    [finding] = [r for r in run["results"] if r["ruleId"] == "TOY001"]
    assert rules[finding["ruleIndex"]]["id"] == "TOY001"
    assert finding["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("nan.safetensors")


def test_a_check_that_needs_weights_is_inconclusive_on_an_unloaded_file(tmp_path: Path) -> None:
    (tmp_path / "broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"w\":")
    config = AuditConfig(checks=(*default_checks(), FiniteWeightsCheck()))
    [result] = audit_all(resolve_sources([str(tmp_path / "broken.safetensors")]), config=config)
    toy = next(c for c in result.checks if c.name == "finite-weights")
    assert toy.status is Status.INCONCLUSIVE and "not loaded (file-safety ERROR)" in toy.summary
