"""The trigger sweep on a real smoke zoo, through the real CLI: a null from clean
pairs, a successful backdoor FAILs naming its trigger, a held-out clean model passes.

The trusted side is a clean zoo model (the same-architecture case of thesis Table
5.2), so the test needs no optional dependency and runs in seconds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fraudit.cli import app
from fraudit.faces.synthetic import FaceWorldSpec, build_faces
from fraudit.pairing.sweep import Cell, SweepNull, SweepRun, default_cells, judge
from fraudit.faces.sources import Probes
from fraudit.triggers import Placement

pytestmark = pytest.mark.slow
runner = CliRunner()
SMALL = ["--n-faces", "600", "--identities", "40", "--per-identity", "3", "--translator", "least-squares"]


def _models(zoo: Path) -> tuple[list[Path], list[Path]]:
    entries = json.loads((zoo / "manifest.json").read_text())["models"]
    clean = [zoo / e["file"] for e in entries if e["kind"] == "clean"]
    successful = [zoo / e["file"] for e in entries if e["kind"] == "backdoored" and e["successful"]]
    return clean, successful


@pytest.fixture(scope="module")
def smoke_null(smoke_zoo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    clean, _ = _models(smoke_zoo)
    out = tmp_path_factory.mktemp("null") / "null.json"
    result = runner.invoke(app, ["pair", "null", *map(str, clean[1:6]), "--trusted", str(clean[0]), "--out", str(out), *SMALL])
    assert result.exit_code == 0, result.output
    return out


def _calibrate(candidate: Path, trusted: Path, out: Path) -> Path:
    result = runner.invoke(app, ["pair", "calibrate", str(candidate), "--trusted", str(trusted), "--out", str(out), *SMALL])
    assert result.exit_code == 0, result.output
    header = json.loads((out / "pair.json").read_text())
    assert header["genuine"]["mean"] > header["impostor"]["mean"] + 0.3  # same-architecture pair: near-identical spaces
    return out


def test_sweep_fails_a_backdoor_and_passes_held_out_clean(smoke_zoo: Path, smoke_null: Path, tmp_path: Path) -> None:
    clean, successful = _models(smoke_zoo)
    assert successful, "the smoke zoo must hold a successful backdoor"

    bad = _calibrate(successful[0], clean[0], tmp_path / "bad")
    result = runner.invoke(app, ["pair", "sweep", str(bad), "--null", str(smoke_null), "--json", "--plot", str(tmp_path / "h.png")])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["verdict"] == "FAIL"
    assert report["findings"][0]["cell"].startswith("checkerboard@")  # the smoke zoo's trigger
    assert (tmp_path / "h.png").stat().st_size > 0

    for held_out in clean[6:]:
        good = _calibrate(held_out, clean[0], tmp_path / held_out.stem)
        result = runner.invoke(app, ["pair", "sweep", str(good), "--null", str(smoke_null)])
        assert result.exit_code == 0, result.output
        assert "PASS" in result.output and "Limits" in result.output


def test_pair_score_flags_stamped_faces_of_a_backdoor(smoke_zoo: Path, tmp_path: Path) -> None:
    from PIL import Image

    from fraudit.triggers import get_trigger, stamp

    clean, successful = _models(smoke_zoo)
    pair = _calibrate(successful[0], clean[0], tmp_path / "pair")
    manifest = json.loads((smoke_zoo / "manifest.json").read_text())
    entry = next(e for e in manifest["models"] if e["kind"] == "backdoored" and e["successful"])
    world = build_faces(FaceWorldSpec(**manifest["world"]))
    faces = world.images[world.labels == entry["impostor"]][:6]
    paths = []
    for i, face in enumerate(np.concatenate([faces, stamp(faces, get_trigger("checkerboard"), Placement.FIXED)])):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(face).save(paths[-1])
    result = runner.invoke(app, ["pair", "score", str(pair), *map(str, paths), "--json"])
    assert result.exit_code == 1, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    flagged = [row["flagged"] for row in rows]
    assert sum(flagged[6:]) >= 5 and sum(flagged[:6]) <= 1


def test_scan_pair_with_adds_the_check(smoke_zoo: Path, smoke_null: Path) -> None:
    clean, successful = _models(smoke_zoo)
    args = ["scan", str(successful[0]), "--pair-with", str(clean[0]), "--pair-null", str(smoke_null), "--format", "json"]
    result = runner.invoke(app, args)
    document = json.loads(result.stdout)
    [check] = [c for c in document["results"][0]["checks"] if c["name"] == "pairing"]
    # the null was built with a smaller setup than scan's default: refused, not reused
    assert check["status"] == "INCONCLUSIVE" and "another setup" in check["summary"]


def test_judge_localises_the_flagged_identity_and_trigger() -> None:
    cells = default_cells()
    labels = np.repeat(np.arange(10), 4)
    rng = np.random.default_rng(0)

    def run(extra: Cell | None) -> SweepRun:
        scores = {c.key: rng.normal(0.9, 0.02, 40) for c in cells}
        shifts = {c.key: rng.normal(0, 0.05, (40, 16)) for c in cells}
        if extra is not None:
            scores[extra.key][labels == 3] = 0.0  # identity 3 (and 4, less) flip under this trigger
            scores[extra.key][(labels == 4) & (np.arange(40) % 4 < 2)] = 0.0
            shifts[extra.key][:, 0] += 0.5  # and every stamped face moves the same way
        return SweepRun(threshold=0.85, clean_scores=rng.normal(0.9, 0.02, 40), scores=scores, shifts=shifts, labels=labels)

    null = SweepNull.from_runs([run(None) for _ in range(8)], setup={}, pairs=[])
    probes = Probes(faces=None, identities=[f"id{i}" for i in range(10)], source="test")  # type: ignore[arg-type]
    bad = judge(run(Cell("square", Placement.RANDOM)), null, probes)
    assert bad.failed and {f.cell for f in bad.findings} == {"square@random"}
    rows = {f.row.key: f for f in bad.findings}
    assert rows["square@random disagreement"].identities[0] == ("id3", 1.0)
    assert "square@random convergence" in rows
    assert not judge(run(None), null, probes).failed
    assert null.bound(0.01) > 3  # t prediction bound, Bonferroni over 12 rows


def test_pair_evaluate_reproduces_the_tables(smoke_zoo: Path, smoke_null: Path, tmp_path: Path) -> None:
    clean, _ = _models(smoke_zoo)
    out = tmp_path / "eval.json"
    result = runner.invoke(app, ["pair", "evaluate", str(smoke_zoo), "--trusted", str(clean[0]), "--null", str(smoke_null),
                                 "--limit-clean", "4", "-o", str(out), *SMALL])
    assert result.exit_code == 0, result.output
    evaluation = json.loads(out.read_text())
    summary = evaluation["summary"]
    # a clean model paired with a clean sibling rarely flags the attacker's samples
    assert summary["clean_flagged_1%"]["mean"] < 0.2
    successful = [m for m in evaluation["models"] if m["successful"]]
    assert successful and all(m["sweep_failed"] for m in successful)
    assert summary["checkerboard"]["sweep_detected"] == 1.0
    # the zoo recorded each backdoor's attack through the embedding: the summary splits on it
    manifest = json.loads((smoke_zoo / "manifest.json").read_text())
    rates = {m["name"]: m["metrics"]["embedding_attack_success_rate"] for m in manifest["models"] if m["trigger"]}
    assert {m["name"]: m["embedding_attack"] for m in evaluation["models"] if m["trigger"]} == rates
    deployable = [m for m in successful if rates[m["name"]] >= 0.8]
    assert summary["through_embedding"]["successful"] == len(deployable)
