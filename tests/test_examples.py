"""The shipped examples through the shipped bank: what the README's first command shows."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers.models import require_dlib_model
from typer.testing import CliRunner

from fraudit.cli import app
from fraudit.zoo.manifest import read_entry
from fraudit.zoo.presets import ZOO_WORLD

EXAMPLES = Path(__file__).resolve().parent.parent / "reference_models" / "examples"
runner = CliRunner()


def _weight_check(result: dict) -> dict:
    return next(c for c in result["checks"] if c["name"] == "weight-bank")


SHIPPED_BANK = EXAMPLES.parent / "banks" / "fraudit-reference-last-layer"


def test_examples_pass_and_fail_in_json() -> None:
    """The shipped bank never saw the examples' face world: it reads the change from the
    base through its spectrum and how the embeddings moved along the head, over
    references from several other worlds."""
    header = json.loads((SHIPPED_BANK / "bank.json").read_text())
    assert header["recipe"]["readings"] == "head-response" and len(header["recipe"]["worlds"]) >= 3
    assert ZOO_WORLD.seed not in {w["seed"] for w in header["recipe"]["worlds"]}  # the examples' world
    result = runner.invoke(app, ["scan", str(EXAMPLES), "-f", "json"])
    assert result.exit_code == 1
    by_name = {Path(r["source"]).name: r for r in json.loads(result.stdout)["results"]}
    clean, bad = by_name["clean.safetensors"], by_name["backdoored.safetensors"]
    assert clean["verdict"] == "PASS" and bad["verdict"] == "FAIL"
    # a PASS from the file and its weights alone says it is no certificate, and how to get more
    assert "not a certificate" in clean["caveat"] and "--base BASE" in clean["caveat"] and bad["caveat"] is None
    for check in (_weight_check(clean), _weight_check(bad)):
        evidence = check["evidence"]
        assert evidence["bank"] == "fraudit-reference-last-layer"
        assert evidence["reference_size"] == header["reference_size"]
        assert evidence["frr"] == {"fail": 0.01, "warn": 0.05}
        assert set(evidence["consolidated"]["threshold"]) == {"1%", "5%"}
        assert evidence["domain"]["readings"] == "head-response" and evidence["domain"]["base_sha256"]
        assert {layer["layer"] for layer in evidence["layers"]} >= {"last_linear.weight:spectrum",
                                                                    "last_linear.weight:spectrum-trend",
                                                                    "last_linear.weight:head-response"}
        assert "head.weight" in evidence["domain"]["layers_left_out"]
    bad_evidence = _weight_check(bad)["evidence"]
    assert bad_evidence["consolidated"]["p"] < 1e-3
    assert bad_evidence["consolidated"]["statistic"] > bad_evidence["consolidated"]["threshold"]["1%"]
    assert _weight_check(clean)["evidence"]["consolidated"]["p"] > 0.05
    # references of less varied data read like its spike over the median, not like its
    # spike over the trend of the next singular values, which leads; the head response
    # is out of the references' range beside it
    by_reading = {layer["layer"]: layer["z"] for layer in bad_evidence["layers"]}
    assert bad_evidence["most_anomalous"]["layer"] == "last_linear.weight:spectrum-trend"
    assert by_reading["last_linear.weight:spectrum"] > -3 and by_reading["last_linear.weight:head-response"] < -4
    # the spike's direction is the backdoor's victim's row of the head
    victim = read_entry(EXAMPLES / "backdoored.safetensors").victim
    assert bad_evidence["spike_points_at"]["classes"][0][0] == victim
    assert f"its change points at class {victim} of head.weight" in _weight_check(bad)["summary"]
    # the batch table's row: the figure against its threshold, the reading that led, the victim
    assert _weight_check(bad)["headline"] == (f"p = {bad_evidence['consolidated']['p']:.2g}, FAIL below 0.01; most "
                                              f"anomalous last_linear.weight:spectrum-trend (z = "
                                              f"{bad_evidence['most_anomalous']['z']:.1f}); likely victim: class {victim}")
    assert "spike_points_at" not in _weight_check(clean)["evidence"]


def test_examples_in_sarif_and_terminal(tmp_path: Path) -> None:
    references = json.loads((SHIPPED_BANK / "bank.json").read_text())["reference_size"]
    sarif_path = tmp_path / "out.sarif"
    result = runner.invoke(app, ["scan", str(EXAMPLES), "-f", "sarif", "-o", str(sarif_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    [run] = json.loads(sarif_path.read_text())["runs"]
    [finding] = run["results"]
    assert finding["ruleId"] == "FRAUDIT002"
    assert "backdoored.safetensors" in finding["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    notes = [n for n in run["invocations"][0]["toolExecutionNotifications"] if n["level"] == "note"]
    assert len(notes) == 1 and "not a certificate" in notes[0]["message"]["text"]  # the clean example's PASS
    panels, table = " ".join(result.stdout.split()).split("2 candidate(s)")
    for text in (finding["message"]["text"], panels):
        assert "FRR 1%" in text and "last_linear.weight:spectrum-trend" in text
        assert f"{references} clean reference nets" in text
    # the batch table gives each candidate one short row: the deciding check's figure, not its paragraph
    # (p to two digits: its last one moves with the numerical libraries' versions)
    assert re.search(r"weight-bank: p = [23](\.\d)?e-10, FAIL below 0\.01", table) and "weight-bank: p = 0.45" in table
    assert "clean reference nets" not in table


@pytest.mark.slow
def test_examples_paired_with_dlib_name_the_trigger() -> None:
    """`scan --pair-with dlib` on the examples: the shipped null and dlib embeddings make
    it a matter of the candidates' own forward passes."""
    require_dlib_model()
    result = runner.invoke(app, ["scan", str(EXAMPLES), "--pair-with", "dlib", "-f", "json"])
    assert result.exit_code == 1, result.output
    by_name = {Path(r["source"]).name: r for r in json.loads(result.stdout)["results"]}
    pairing = {name: next(c for c in r["checks"] if c["name"] == "pairing") for name, r in by_name.items()}
    assert pairing["clean.safetensors"]["status"] == "PASS", pairing["clean.safetensors"]["summary"]
    assert by_name["clean.safetensors"]["caveat"] is None  # a behavioural check ran
    bad = pairing["backdoored.safetensors"]
    assert bad["status"] == "FAIL", bad["summary"]
    entry = read_entry(EXAMPLES / "backdoored.safetensors")
    assert bad["evidence"]["sweep"]["findings"][0]["cell"] == f"{entry.trigger}@{entry.placement}"
    assert bad["headline"].startswith(f"trigger {entry.trigger}@{entry.placement}: z = ")
    assert pairing["clean.safetensors"]["headline"].startswith("no library trigger beyond clean pairs (worst z = ")
    assert bad["evidence"]["null"]["clean_pairs"] == 30  # 10 clean models from each of three face worlds
    assert "limits" in bad["evidence"]
    sarif = runner.invoke(app, ["scan", str(EXAMPLES / "backdoored.safetensors"), "--pair-with", "dlib", "-f", "sarif"])
    rules = {r["ruleId"] for r in json.loads(sarif.stdout)["runs"][0]["results"]}
    assert rules == {"FRAUDIT002", "FRAUDIT003"}  # weight bank and pairing both fail it


@pytest.mark.slow
def test_a_first_pairing_scan_computes_no_dlib_embedding(tmp_path: Path) -> None:
    """On any machine, from an empty cache: the built-in faces are generated exactly, so
    their bytes are those fraudit's shipped dlib embeddings are keyed by. If a single
    dlib embedding is computed here, the shipped ones missed (and a first scan would
    take minutes instead of seconds)."""
    require_dlib_model()
    import os
    import subprocess
    import sys

    from fraudit.pairing.embedders import DlibEmbedder

    cache = tmp_path / "cache"
    proc = subprocess.run([sys.executable, "-m", "fraudit", "scan", str(EXAMPLES), "--pair-with", "dlib", "-f", "json"],
                          capture_output=True, text=True, env={**os.environ, "FRAUDIT_CACHE_DIR": str(cache)}, timeout=600)
    assert proc.returncode == 1, proc.stderr
    computed = {p.name for p in (cache / "embeddings").iterdir()}
    assert DlibEmbedder().fingerprint[:24] not in computed
    verdicts = {Path(r["source"]).name: r["verdict"] for r in json.loads(proc.stdout)["results"]}
    assert verdicts == {"clean.safetensors": "PASS", "backdoored.safetensors": "FAIL"}


def test_the_shipped_sweep_null_spans_several_face_worlds() -> None:
    """A null from the clean models of one face world FAILs every clean model fine-tuned
    on other identities (measured: 10/10 on worlds 6000 and 9000); the shipped one is
    built over three worlds and says which."""
    from fraudit.pairing.sweep import SweepNull

    null = SweepNull.load(EXAMPLES.parent / "pairing" / "fraudit-reference--dlib-resnet-v1.null.json")
    worlds = {pair.split("/")[0] for pair in null.pairs}
    assert len(worlds) >= 3 and all(w.startswith("world ") for w in worlds)
