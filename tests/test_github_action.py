"""The GitHub Action's own shell steps, run here as a runner would run them: the
targets step picks the files, the scan step writes SARIF and the HTML report and
records fraudit's exit code for the gate."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[1]
ACTION = ROOT / ".github" / "actions" / "fraudit-scan" / "action.yml"


def _step(action: dict, name: str) -> dict:
    return next(s for s in action["runs"]["steps"] if s.get("name") == name)


def _substitute(script: str, inputs: dict[str, str]) -> str:
    """What GitHub does to ``${{ inputs.x }}`` before bash sees the script."""
    return re.sub(r"\$\{\{\s*inputs\.([a-z-]+)\s*\}\}", lambda m: inputs[m.group(1)], script)


def test_the_scan_step_writes_sarif_and_html_and_keeps_the_exit_code(tmp_path: Path) -> None:
    action = yaml.safe_load(ACTION.read_text())
    inputs = {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()}
    inputs["paths"] = str(ROOT / "reference_models" / "examples")
    upload = _step(action, "Upload the HTML report as an artifact")
    assert upload["uses"].startswith("actions/upload-artifact@") and upload["with"]["path"] == "${{ inputs.html-file }}"
    runner_temp, output = tmp_path / "runner", tmp_path / "github-output"
    runner_temp.mkdir()
    bin_dir = tmp_path / "bin"  # `fraudit` on PATH, as the install step leaves it
    bin_dir.mkdir()
    (bin_dir / "fraudit").write_text(f"#!/bin/sh\nexec {sys.executable} -m fraudit \"$@\"\n")
    (bin_dir / "fraudit").chmod(0o755)
    env = {**os.environ, "RUNNER_TEMP": str(runner_temp), "GITHUB_OUTPUT": str(output),
           "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}
    for name in ("Choose what to scan", "Scan"):
        step = _step(action, name)
        step_env = {k: _substitute(str(v), inputs) for k, v in (step.get("env") or {}).items()}
        assert shutil.which("bash")
        done = subprocess.run(["bash", "-e", "-c", _substitute(step["run"], inputs)], cwd=tmp_path,
                              env={**env, **step_env}, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
    assert outputs["count"] == "1" and outputs["exit-code"] == "1"  # the backdoored example FAILs the gate
    sarif = json.loads((tmp_path / inputs["sarif-file"]).read_text())
    assert any(r["ruleId"] == "FRAUDIT002" for r in sarif["runs"][0]["results"])
    page = (tmp_path / inputs["html-file"]).read_text()
    assert page.count('class="candidate"') == 2 and 'data-verdict="FAIL"' in page
