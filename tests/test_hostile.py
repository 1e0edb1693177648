"""Hostile inputs through the real CLI: every class of evasion in issue 10, each
with a canary that proves no payload ran inside fraudit, and (where a payload
exists) a proof that it does run when the file is loaded the ordinary way."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
import sys
from pathlib import Path

import pytest
from helpers import hostile, malicious
from typer.testing import CliRunner

from fraudit.cli import app
from fraudit.report.json_report import json_schema

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parent.parent / "reference_models" / "examples"
REFERENCE_MODELS = EXAMPLES.parent


def _scan(*args: str) -> tuple[int, dict]:
    result = runner.invoke(app, ["scan", *args, "-f", "json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, json.loads(result.stdout)


def _checks(document: dict, name: str) -> dict:
    [result] = [r for r in document["results"] if Path(r["source"]).name == name]
    return {c["name"]: c for c in result["checks"]} | {"_result": result}


@pytest.fixture
def deep_cleanup():
    """Trees deeper than Python's recursion limit break shutil.rmtree (pytest's own
    tmp-path cleanup included): remove them with rm, which walks iteratively."""
    roots: list[Path] = []
    yield roots.append
    for root in roots:
        subprocess.run(["rm", "-rf", str(root)], check=False)


def _runs_when_loaded(code: str, canary: Path) -> bool:
    subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120, check=False)
    return canary.exists()


# --- files that passed and run code when loaded the ordinary way ------------------------

def test_onnx_that_is_also_a_pickle_fails_as_a_polyglot(tmp_path: Path, canary: Path) -> None:
    import onnx

    path = hostile.onnx_pickle_polyglot(tmp_path / "face.onnx", canary)
    assert len(onnx.load(str(path)).graph.initializer) > 0  # a real model to onnx
    code, document = _scan(str(path))
    safety = _checks(document, "face.onnx")["file-safety"]
    assert code == 1 and safety["status"] == "FAIL"
    assert "polyglot" in safety["summary"] and "os.system" in safety["summary"]
    assert not canary.exists()
    assert _runs_when_loaded(f"import pickle; pickle.load(open({str(path)!r}, 'rb'))", canary)


def test_safetensors_that_is_also_a_zip_fails_as_a_polyglot(tmp_path: Path, canary: Path) -> None:
    from safetensors.torch import load_file

    path = hostile.safetensors_zip_polyglot(tmp_path / "model.safetensors", canary)
    assert "last_linear.weight" in load_file(str(path))  # real weights to safetensors
    code, document = _scan(str(path))
    safety = _checks(document, "model.safetensors")["file-safety"]
    assert code == 1 and safety["status"] == "FAIL" and "polyglot" in safety["summary"]
    assert not canary.exists()
    # a zip reader that unpickles its data.pkl runs the payload
    code = (f"import pickle, zipfile; pickle.loads(zipfile.ZipFile({str(path)!r}).read('archive/data.pkl'))")
    assert _runs_when_loaded(code, canary)


def test_decoy_integer_opcode_is_read_like_the_unpickler_reads_it(tmp_path: Path, canary: Path) -> None:
    path = hostile.decoy_integer_pickle(tmp_path / "decoy.pt", canary)
    result = runner.invoke(app, ["scan", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "os.system" in result.stdout and "weights_only=False" not in result.output
    assert not canary.exists()
    assert _runs_when_loaded(f"import pickle; pickle.load(open({str(path)!r}, 'rb'))", canary)


def test_a_pickle_that_cannot_be_read_to_its_end_fails_as_unscannable(tmp_path: Path) -> None:
    path = tmp_path / "cut.pkl"
    path.write_bytes(b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01")  # no STOP
    code, document = _scan(str(path))
    safety = _checks(document, "cut.pkl")["file-safety"]
    assert code == 1 and safety["status"] == "FAIL" and "cannot be read to its end" in safety["summary"]


@pytest.mark.parametrize("builder", [hostile.protocol0_under_text_name, hostile.pickle_in_hidden_folder,
                                     hostile.numpy_object_array, hostile.joblib_file])
def test_a_folder_scan_finds_what_a_direct_scan_fails(tmp_path: Path, canary: Path, builder) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    path = builder(folder, canary)
    code, document = _scan(str(folder))
    [result] = document["results"]
    assert result["source"].endswith(path.name) and result["verdict"] == "FAIL", result
    assert code == 1 and not canary.exists()


def test_the_object_array_and_joblib_payloads_are_live(tmp_path: Path) -> None:
    canary = tmp_path / "ran-npy"
    path = hostile.numpy_object_array(tmp_path, canary)
    assert _runs_when_loaded(f"import numpy; numpy.load({str(path)!r}, allow_pickle=True)", canary)
    canary = tmp_path / "ran-joblib"
    path = hostile.joblib_file(tmp_path, canary)
    assert _runs_when_loaded(f"import joblib; joblib.load({str(path)!r})", canary)


@pytest.mark.parametrize("builder", [hostile.custom_op_in_subgraph, hostile.custom_op_in_local_function])
def test_hidden_custom_operators_are_a_warning(tmp_path: Path, builder) -> None:
    path = builder(tmp_path / "model.onnx")
    code, document = _scan(str(path))
    safety = _checks(document, "model.onnx")["file-safety"]
    assert safety["status"] == "WARN" and "vendor.ops::FastGemm" in safety["summary"]


# --- reads outside what was asked ------------------------------------------------------

def test_a_symlink_out_of_the_folder_is_skipped_and_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("root:SECRET-HASH:0:0\n")
    folder = tmp_path / "models"
    folder.mkdir()
    hostile.symlink_out(folder, secret)
    result = runner.invoke(app, ["scan", str(folder), "-f", "json"])
    assert "SECRET" not in result.output and "726f6f74" not in result.output  # nor its bytes in hex
    [entry] = json.loads(result.stdout)["results"]
    assert entry["verdict"] == "INCONCLUSIVE" and "outside the scanned folder" in entry["skipped"]


def test_onnx_external_data_through_a_symlink_is_not_followed(tmp_path: Path) -> None:
    path = hostile.onnx_with_external_data(tmp_path / "m", symlink_to=tmp_path / "elsewhere.bin")
    code, document = _scan(str(path))
    safety = _checks(document, "model.onnx")["file-safety"]
    assert safety["status"] == "ERROR" and "symlink" in safety["summary"]


def test_onnx_with_external_data_is_one_candidate(tmp_path: Path) -> None:
    hostile.onnx_with_external_data(tmp_path / "m")
    code, document = _scan(str(tmp_path / "m"))
    [result] = document["results"]
    # the clean example exported with its weights in an external file: recognised from its
    # graph, read whole, and scored by the bank like its safetensors
    assert result["source"].endswith("model.onnx") and result["verdict"] == "PASS"
    assert result["architecture"]["id"] == "fraudit-reference" and code == 0
    assert result["architecture"]["recognised_from"] == "ONNX graph topology"


def test_any_index_json_makes_a_folder_one_model(tmp_path: Path) -> None:
    from helpers.models import reference_state_dict, write_safetensors

    state = reference_state_dict()
    keys = sorted(state)
    write_safetensors(tmp_path / "a.safetensors", {k: state[k] for k in keys[:10]})
    write_safetensors(tmp_path / "b.safetensors", {k: state[k] for k in keys[10:]})
    (tmp_path / "diffusion_pytorch_model.safetensors.index.json").write_text("{}")
    code, document = _scan(str(tmp_path))
    [result] = document["results"]
    assert len(result["files"]) == 2 and result["architecture"]["id"] == "fraudit-reference"


@pytest.mark.parametrize("revision", ["../../../../etc", "/tmp/local-folder", "main/../../x", "a b", "v1..2"])
def test_a_hub_revision_that_is_a_path_is_refused_before_any_call(tmp_path: Path, revision: str) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub")}
    proc = subprocess.run([sys.executable, "-m", "fraudit", "scan", f"hf://org/name@{revision}", "-f", "json"],
                          capture_output=True, text=True, env=env, timeout=120)
    [result] = json.loads(proc.stdout)["results"]
    assert proc.returncode == 2 and result["verdict"] == "ERROR"
    assert "not a branch, tag or 40-hex commit" in result["error"]
    assert not (tmp_path / "hub").exists()  # nothing was written, not even inside the cache


# --- whole batches lost, hangs and memory -----------------------------------------------

def test_fifo_and_deep_folders_do_not_hang_or_crash(tmp_path: Path, deep_cleanup) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    deep_cleanup(folder)
    hostile.fifo(folder)
    hostile.deep_folders(folder / "deep", depth=1_200)
    proc = subprocess.run([sys.executable, "-m", "fraudit", "scan", str(folder), "-f", "json"],
                          capture_output=True, text=True, timeout=240)
    results = {Path(r["source"]).name: r for r in json.loads(proc.stdout)["results"]}
    assert "FIFO" in results["pipe.txt"]["skipped"]
    assert "deep.pt" in results  # found at depth 1,200, no RecursionError
    assert "Traceback" not in proc.stderr


def test_caps_refuse_what_would_cost_gigabytes(tmp_path: Path) -> None:
    hostile.huge_safetensors_header(tmp_path / "header.safetensors")
    hostile.sparse_onnx(tmp_path / "sparse.onnx")
    hostile.million_opcode_pt(tmp_path / "million.pt")
    code, document = _scan(str(tmp_path))
    verdicts = {Path(r["source"]).name: r for r in document["results"]}
    assert "cap" in _checks(document, "header.safetensors")["file-safety"]["summary"]
    assert verdicts["sparse.onnx"]["verdict"] == "ERROR"
    assert verdicts["million.pt"]["verdict"] in ("FAIL", "ERROR")


@pytest.mark.parametrize("target", ["folder", "long"])
def test_an_output_path_that_cannot_be_written_is_one_line_and_exit_2(tmp_path: Path, target: str) -> None:
    output = tmp_path if target == "folder" else tmp_path / ("x" * 5_000)
    result = runner.invoke(app, ["scan", str(EXAMPLES / "clean.safetensors"), "-f", "json", "-o", str(output)])
    assert result.exit_code == 2 and result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1


# --- reports -----------------------------------------------------------------------------

def test_names_cannot_drive_the_terminal_or_break_json_and_sarif(tmp_path: Path, canary: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    hostile.escape_sequence_name(folder, canary)
    hostile.markup_name(folder, canary)
    hostile.undecodable_name(folder, canary)
    proc = subprocess.run([sys.executable, "-m", "fraudit", "scan", str(folder)], capture_output=True,
                          env={**os.environ, "COLUMNS": "250"}, timeout=120)
    terminal = proc.stdout.decode("utf-8")
    assert "\x1b[2J" not in terminal and "\\x1b[2J" in terminal  # shown, not obeyed
    assert "evil[bold red]x.pkl" in terminal  # markup shown literally
    assert "\\xff\\xfe" in terminal
    for fmt in ("json", "sarif"):
        out = tmp_path / f"report.{fmt}"
        proc = subprocess.run([sys.executable, "-m", "fraudit", "scan", str(folder), "-f", fmt, "-o", str(out)],
                              capture_output=True, timeout=120)
        assert proc.returncode == 1, proc.stderr
        text = out.read_bytes().decode("utf-8")  # strict UTF-8
        assert "\\ud" not in text  # no lone surrogates, even escaped
        document = json.loads(text)
        if fmt == "json":
            import jsonschema

            jsonschema.validate(document, json_schema())
        else:
            uris = [loc["physicalLocation"]["artifactLocation"]["uri"]
                    for r in document["runs"][0]["results"] for loc in r["locations"]]
            assert any("%FF%FE" in u for u in uris) and any("%1B%5B2J" in u for u in uris)
            assert all(" " not in u for u in uris)
    assert not canary.exists()


def test_pair_null_without_pair_with_and_a_missing_bank_are_errors(tmp_path: Path) -> None:
    model = str(EXAMPLES / "clean.safetensors")
    result = runner.invoke(app, ["scan", model, "--pair-null", str(tmp_path / "null.json")])
    assert result.exit_code == 2 and "needs --pair-with" in result.stderr
    result = runner.invoke(app, ["scan", model, "--bank", str(tmp_path / "nonexistent")])
    assert result.exit_code == 2 and "not found" in result.stderr


# --- trusted artifacts --------------------------------------------------------------------

def test_an_edited_bank_header_is_refused(tmp_path: Path) -> None:
    bank = tmp_path / "bank"
    shutil.copytree(REFERENCE_MODELS / "banks" / "fraudit-reference-last-layer", bank)
    header = json.loads((bank / "bank.json").read_text())
    for edit in ("rename", "trim"):
        edited = json.loads(json.dumps(header))
        if edit == "rename":
            for entry in edited["models"]:
                entry["layer"] = entry["layer"].replace("last_linear.weight", "last_linear.weight_")
            edited["layers"] = sorted({e["layer"] for e in edited["models"]})
        else:
            edited["models"] = [e for e in edited["models"] if e["layer"] != "last_linear.weight"]
            edited["layers"] = sorted({e["layer"] for e in edited["models"]})
        (bank / "bank.json").write_text(json.dumps(edited))
        code, document = _scan(str(EXAMPLES / "backdoored.safetensors"), "--bank", str(bank))
        check = _checks(document, "backdoored.safetensors")["weight-bank"]
        assert check["status"] == "ERROR" and code == 2, (edit, check["summary"])


def test_a_user_bank_reports_its_digest(tmp_path: Path) -> None:
    bank = tmp_path / "bank"
    shutil.copytree(REFERENCE_MODELS / "banks" / "fraudit-reference-last-layer", bank)
    _, document = _scan(str(EXAMPLES / "backdoored.safetensors"), "--bank", str(bank))
    evidence = _checks(document, "backdoored.safetensors")["weight-bank"]["evidence"]
    from fraudit.cache import file_sha256

    assert evidence["bank_sha256"] == file_sha256(bank / "bank.json") and evidence["bank_shipped"] is False
    _, document = _scan(str(EXAMPLES / "backdoored.safetensors"))
    assert _checks(document, "backdoored.safetensors")["weight-bank"]["evidence"]["bank_shipped"] is True


def test_a_modified_shipped_artifact_is_refused(tmp_path: Path) -> None:
    """Shipped files are checked against digests pinned in the package, not against
    a digest in the file: an edited and re-hashed null (or bank) is refused."""
    mirror = tmp_path / "reference_models"
    shutil.copytree(REFERENCE_MODELS, mirror, ignore=shutil.ignore_patterns("examples"))
    null = mirror / "pairing" / "fraudit-reference--dlib-resnet-v1.null.json"
    payload = json.loads(null.read_text())
    payload.pop("sha256")
    payload["values"] = {k: [v * 3 for v in vs] for k, vs in payload["values"].items()}  # a laxer null
    import hashlib

    payload["sha256"] = hashlib.sha256(json.dumps(payload, indent=2, sort_keys=True).encode()).hexdigest()
    null.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    header = mirror / "banks" / "fraudit-reference-last-layer" / "bank.json"
    header.write_text(header.read_text().replace('"frr": [\n    0.01', '"frr": [\n    0.0001'))

    from fraudit.errors import CorruptFileError
    from fraudit.pairing.sweep import SweepNull

    env = {**os.environ, "FRAUDIT_REFERENCE_MODELS": str(mirror)}
    proc = subprocess.run([sys.executable, "-m", "fraudit", "scan", str(EXAMPLES / "backdoored.safetensors"), "-f", "json"],
                          capture_output=True, text=True, env=env, timeout=300)
    [result] = json.loads(proc.stdout)["results"]
    bank = next(c for c in result["checks"] if c["name"] == "weight-bank")
    assert bank["status"] == "ERROR" and "pinned" in bank["summary"]
    code = ("import os, sys; from pathlib import Path; from fraudit.pairing.sweep import SweepNull; "
            f"SweepNull.load(Path({str(null)!r}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode != 0 and CorruptFileError.__name__ in proc.stderr and "pinned" in proc.stderr
    assert SweepNull.load(REFERENCE_MODELS / "pairing" / null.name).sha256  # the real one still loads


def test_every_shipped_artifact_matches_its_pin() -> None:
    from fraudit.cache import file_sha256
    from fraudit.resources import pinned_digests

    pins = pinned_digests()
    assert pins, "fraudit/pins.json is empty"
    for relative, digest in pins.items():
        assert file_sha256(REFERENCE_MODELS / relative) == digest, f"{relative}: re-pin with scripts/pin_shipped.py"
    shipped = {p.relative_to(REFERENCE_MODELS).as_posix() for folder in ("banks", "pairing", "base", "mobileface-base", "dcgan-digiface")
               for p in (REFERENCE_MODELS / folder).rglob("*") if p.is_file() and p.suffix != ".md"}
    assert shipped == set(pins), "every trusted shipped file is pinned, and only those"


# --- one folder with everything -------------------------------------------------------------

@pytest.mark.slow
def test_a_folder_of_every_hostile_case_is_reported_whole(tmp_path: Path, canary: Path, deep_cleanup) -> None:
    folder = tmp_path / "batch"
    deep_cleanup(folder)
    hostile.write_all(folder, canary)
    for fmt in ("json", "sarif"):
        out = tmp_path / f"report.{fmt}"
        proc = subprocess.run([sys.executable, "-m", "fraudit", "scan", str(folder), "-f", fmt, "-o", str(out)],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 2, proc.stderr  # errors (capped files) win over failures
        assert "Traceback" not in proc.stderr
        document = json.loads(out.read_text(encoding="utf-8"))
        if fmt == "json":
            import jsonschema

            jsonschema.validate(document, json_schema())
            verdicts = [r["verdict"] for r in document["results"]]
            # nothing hostile passes; the one benign model among them (the clean example
            # exported with its weights in a file beside it) is read whole and may
            passed = [Path(r["source"]) for r in document["results"] if r["verdict"] == "PASS"]
            assert all(p.parent.name == "external" for p in passed), passed
            assert len(verdicts) >= 28
    assert not canary.exists()
    malicious.unpickle_in_subprocess(folder / "notes.txt", torch_file=False)
    assert canary.exists()  # and the payloads were live


def test_a_stray_zip_signature_in_tensor_data_is_not_a_polyglot(tmp_path: Path) -> None:
    """Four bytes spelling a zip end record occur by chance in large tensors: only an
    archive whose central directory lists members counts as a zip."""
    import torch
    from safetensors.torch import save_file

    weights = torch.zeros(64, dtype=torch.uint8)
    weights[-22:-18] = torch.tensor(list(b"PK\x05\x06"), dtype=torch.uint8)
    save_file({"w": weights}, str(tmp_path / "m.safetensors"))
    assert zipfile.is_zipfile(tmp_path / "m.safetensors")
    _, document = _scan(str(tmp_path / "m.safetensors"))
    assert _checks(document, "m.safetensors")["file-safety"]["status"] == "PASS"
