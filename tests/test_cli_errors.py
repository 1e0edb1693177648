"""Every command meets bad input the same way: one line on stderr and exit 2 — never a
traceback, never exit 1 (the code ``scan`` keeps for FAIL). Through the real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fraudit.cli import app

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parent.parent / "reference_models" / "examples"
CLEAN = str(EXAMPLES / "clean.safetensors")


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    """A missing path, an empty file, a garbage file, a garbage folder and an output
    path that cannot be created (its parent is a regular file, which root cannot bypass)."""
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "garbage.pt").write_bytes(b"\x13\x37 not a model, not a pickle \xff\xfe" * 8)
    garbage_dir = tmp_path / "garbage-dir"
    garbage_dir.mkdir()
    (garbage_dir / "manifest.json").write_text("{not json")
    (garbage_dir / "pair.json").write_text("{not json")
    (garbage_dir / "pair.safetensors").write_bytes(b"\x00" * 16)
    (garbage_dir / "bank.json").write_text("{not json")
    (garbage_dir / "bank.safetensors").write_bytes(b"\x00" * 16)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    return {
        "missing": tmp_path / "does-not-exist",
        "empty": tmp_path / "empty.pt",
        "garbage": tmp_path / "garbage.pt",
        "garbage-dir": garbage_dir,
        "unwritable": blocker / "out",
    }


# (command line with {placeholders}, the bad input it exercises)
CASES = [
    # fraudit bank
    # four copies: enough references to get past the count, so each file is read
    ("bank build {bad} {bad} {bad} {bad} --arch fraudit-reference --out {tmp}/bank", ("missing", "empty", "garbage", "garbage-dir")),
    ("bank build {examples} --arch fraudit-reference --out {bad}", ("unwritable",)),
    ("bank build {examples} --arch fraudit-reference --readings spectrum --base {bad} --out {tmp}/bank",
     ("missing", "empty", "garbage")),
    ("bank info {bad}", ("missing", "empty", "garbage", "garbage-dir")),
    ("bank evaluate {bad} {tmp}", ("missing", "empty", "garbage-dir")),
    ("bank evaluate {shipped_bank} {bad}", ("missing", "empty", "garbage-dir")),
    ("bank evaluate {shipped_bank} {tmp} -o {bad}", ("unwritable",)),
    # fraudit pair
    ("pair calibrate {bad} --trusted {clean} --out {tmp}/pair --n-faces 40", ("missing", "empty", "garbage", "garbage-dir")),
    ("pair calibrate {clean} --trusted {bad} --out {tmp}/pair --n-faces 40", ("missing", "empty", "garbage")),
    ("pair calibrate {clean} --trusted {clean} --out {bad} --n-faces 40", ("unwritable",)),
    ("pair null {bad} --trusted {clean} --out {tmp}/null.json", ("missing", "empty", "garbage", "garbage-dir")),
    ("pair null {clean} --trusted {clean} --out {bad}", ("unwritable",)),
    ("pair sweep {bad}", ("missing", "empty", "garbage", "garbage-dir")),
    ("pair score {bad} {clean}", ("missing", "empty", "garbage", "garbage-dir")),
    ("pair evaluate {bad} --trusted {clean}", ("missing", "empty", "garbage", "garbage-dir")),
    ("pair evaluate {tmp} --trusted {clean} -o {bad}", ("unwritable",)),
    # fraudit zoo
    ("zoo build --preset smoke --out {tmp}/zoo --base {bad}", ("missing", "empty", "garbage")),
    ("zoo build --preset smoke --out {bad}", ("unwritable",)),
    ("zoo base --out {bad}", ("unwritable",)),
    ("zoo list {bad}", ("missing", "empty", "garbage", "garbage-dir")),
    ("zoo measure {bad}", ("missing", "empty", "garbage", "garbage-dir")),
    ("zoo show {bad}", ("missing", "empty", "garbage", "garbage-dir")),
    ("zoo show {clean} --out {bad}", ("unwritable",)),
    # fraudit scan keeps per-candidate errors in its report, but its own output path is the CLI's
    ("scan {clean} -f json -o {bad}", ("unwritable",)),
]


def _expand(template: str, bad: Path, tmp: Path) -> list[str]:
    text = template.format(bad=bad, tmp=tmp, clean=CLEAN, examples=EXAMPLES,
                           shipped_bank=EXAMPLES.parent / "banks" / "fraudit-reference-last-layer")
    return text.split()


@pytest.mark.parametrize(("template", "kind"), [(t, k) for t, kinds in CASES for k in kinds],
                         ids=[f"{t.split(' {')[0]}-{k}" for t, kinds in CASES for k in kinds])
def test_bad_input_is_one_line_and_exit_2(template: str, kind: str, inputs: dict[str, Path], tmp_path: Path) -> None:
    result = runner.invoke(app, _expand(template, inputs[kind], tmp_path))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output


def test_the_error_line_names_what_was_wrong(inputs: dict[str, Path], tmp_path: Path) -> None:
    missing = runner.invoke(app, ["zoo", "list", str(inputs["missing"])])
    assert "not a zoo folder" in missing.stderr and "does-not-exist" in missing.stderr
    empty = runner.invoke(app, ["bank", "build", *[str(inputs["empty"])] * 4, "--arch", "fraudit-reference",
                                "--out", str(tmp_path / "b")])
    assert "empty file" in empty.stderr
    blocked = runner.invoke(app, ["bank", "build", str(EXAMPLES), "--arch", "fraudit-reference",
                                  "--out", str(inputs["unwritable"])])
    assert "a-file/out" in blocked.stderr
