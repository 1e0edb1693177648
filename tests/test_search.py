"""The differential trigger search: real models, real optimisation, the real CLI.

The held-out triggers of the evaluation (``fraudit.zoo.heldout``) must stay out of
the search: its method modules never import the zoo, and it draws no content from
any list — patches are optimised from noise.
"""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from fraudit.cli import app
from fraudit.pairing.embedders import reference_embedder
from fraudit.resources import base_dir, examples_dir
from fraudit.search.differential import (BLEND_BOUND, BOUND, LIBRARY_BOUND, LinearBound, SearchBudget, differential_search,
                                         paste, search_probes)
from fraudit.search.library import library_search
from fraudit.search.sites import LibraryCell, Site, face_sites, library_cells
from fraudit.triggers import get_trigger

EXAMPLES = examples_dir()
BASE = base_dir() / "fraudit-reference-base.safetensors"
QUICK = SearchBudget()


def test_sites_cover_the_face_with_half_overlap() -> None:
    sites = face_sites(64, (8,))
    assert {s.size for s in sites} == {8}
    tops = sorted({s.top for s in sites})
    assert np.diff(tops).tolist() == [4] * (len(tops) - 1)  # half of the side
    assert all(0 <= s.top and s.top + s.size <= 64 and 0 <= s.left and s.left + s.size <= 64 for s in sites)


def test_paste_puts_each_sites_patch_on_its_own_copy() -> None:
    faces = torch.zeros(2, 3, 16, 16)
    sites = [Site(0, 0, 4), Site(8, 8, 4)]
    out = paste(faces, sites, torch.stack([torch.full((3, 4, 4), 1.0), torch.full((3, 4, 4), 2.0)]))
    assert out.shape == (4, 3, 16, 16)
    assert out[:2, :, :4, :4].eq(1).all() and out[:2].sum() == 2 * 3 * 16
    assert out[2:, :, 8:12, 8:12].eq(2).all() and out[2:].sum() == 2 * 2 * 3 * 16


def test_a_model_against_itself_gains_nothing() -> None:
    """The differential is exactly zero when the candidate is its own base: whatever
    the optimiser finds moves both sides alike, so nothing can stand out."""
    model = reference_embedder(BASE)
    result = differential_search(model, model, search_probes(QUICK).faces.images, SearchBudget(steps=3, faces=6))
    assert np.abs(result.gains).max() < 1e-5
    assert len(result.patches) == len(result.sites) and result.patches[0].dtype == np.uint8


def test_scouting_then_refining_ends_each_finalist_where_a_full_search_would() -> None:
    """Coarse to fine is the full search cut short, never another search: a finalist
    carries its pattern and Adam state on, so its gain is the full search's bit for
    bit, and no site's gain is above it, so a bound set on full searches stays a bound."""
    model, base = reference_embedder(EXAMPLES / "backdoored.safetensors"), reference_embedder(BASE)
    faces = search_probes(QUICK).faces.images
    short = SearchBudget(steps=4, scout_steps=2, finalists=3, faces=6)
    full = differential_search(model, base, faces, replace(short, finalists=1_000))
    ticks: list[tuple[int, int]] = []
    cut = differential_search(model, base, faces, short, progress=lambda done, total: ticks.append((done, total)))
    assert cut.sites == full.sites
    patch = cut.patch_sites
    finalists = patch[np.argsort(-cut.gains[patch])[:3]]
    assert np.array_equal(cut.gains[finalists], full.gains[finalists])
    assert np.array_equal(cut.gains[cut.blend], full.gains[full.blend])
    assert (cut.gains <= full.gains).all() and (cut.gains < full.gains).any()
    # progress counts site-steps: 63 patch sites scouted for 2, the blend run for all 4, 3 finalists for 2 more
    assert ticks[-1] == (63 * 2 + 1 * 4 + 3 * 2,) * 2 and [d for d, _ in ticks] == sorted(d for d, _ in ticks)
    assert "2 Adam steps at every site, 4 for the 3 strongest and the blend" in short.describe(64)


def test_search_method_never_sees_the_held_out_triggers() -> None:
    from tests.test_floors import GRAPH

    for module in ("fraudit.search.differential", "fraudit.search.sites", "fraudit.search.library",
                   "fraudit.detectors.trigger_search"):
        reachable, todo = set(), [module]
        while todo:
            for name in GRAPH[todo.pop()] - reachable:
                reachable.add(name)
                todo.append(name)
        assert not {m for m in reachable if m.startswith("fraudit.zoo")}, module


def test_the_library_cells_find_the_examples_checkerboard_at_its_own_place() -> None:
    """The shipped backdoored example answers the library's checkerboard on the cheek:
    its strongest cell is that trigger at that place, far above the clean example's
    strongest cell; a model against itself gains exactly nothing."""
    cells = library_cells()
    assert len(cells) == 15 and len(set(cells)) == 15
    faces = search_probes(QUICK, QUICK.library_faces).faces.images
    base = reference_embedder(BASE)
    backdoored = library_search(reference_embedder(EXAMPLES / "backdoored.safetensors"), base, faces)
    clean = library_search(reference_embedder(EXAMPLES / "clean.safetensors"), base, faces)
    itself = library_search(base, base, faces)
    strongest = backdoored.cells[backdoored.strongest]
    assert (strongest.trigger, strongest.centre) == ("checkerboard", (0.60, 0.40))
    assert backdoored.gains.max() > 3 * clean.gains.max()
    assert np.abs(itself.gains).max() < 1e-6 and itself.flip_sensitivity == pytest.approx(0.0, abs=1e-6)
    assert backdoored.cell_dict(backdoored.strongest)["gain"] == pytest.approx(
        backdoored.candidate_convergence.max() - backdoored.reference_convergence[backdoored.strongest], abs=0.2)


def test_a_fine_tune_without_augmentation_shows_itself_in_its_flip_sensitivity(
        smoke_zoo: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Fine-tuned on faces that were never mirrored, a clean model answers a horizontal
    mirror more than one fine-tuned on augmented faces does (on the smoke world: 0.041
    against 0.029 over the base; on the 1,000-identity worlds 0.24-0.28 against
    0.01-0.08): the reading the library cells report beside their gain, since such
    fine-tunes answer an occluder over an eye as weak backdoors answer their trigger."""
    from fraudit.zoo.build import build_zoo
    from fraudit.zoo.presets import PRESETS

    folder = tmp_path_factory.mktemp("not-augmented") / "zoo"
    build_zoo(PRESETS["smoke"].on_world(augment=False).clean_only().with_clean(1), folder)
    faces = search_probes(QUICK, QUICK.library_faces).faces.images
    base = reference_embedder(BASE)
    augmented, not_augmented = (library_search(reference_embedder(zoo / "models" / "clean-000.safetensors"), base,
                                               faces).flip_sensitivity for zoo in (smoke_zoo, folder))
    assert not_augmented > 1.25 * augmented > 0, (augmented, not_augmented)


def test_a_fail_on_an_unmirrored_fine_tune_says_what_its_flip_sensitivity_means() -> None:
    """The measured ranges: 0.01-0.08 for fine-tunes on augmented faces, 0.12-0.28 for
    fine-tunes on faces never mirrored, where clean models exceed the bounds too."""
    from fraudit.search.library import unmirrored_caveat

    assert unmirrored_caveat(0.08) is None and unmirrored_caveat(-0.02) is None
    assert "never mirrored" in unmirrored_caveat(0.12) and "+0.260" in unmirrored_caveat(0.26)


def test_the_library_bound_is_a_prediction_bound_of_a_line() -> None:
    """At the covariate's mean the line's bound is the fitted value plus the Student-t
    margin of one more model; away from it the margin widens; a constant ignores it;
    a bound that needs the covariate refuses a record without it."""
    from scipy.stats import t as student_t

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 0.3, 40)
    y = 0.01 + 0.1 * x + rng.normal(0, 0.005, 40)
    line = LinearBound.fit(x, y, 0.005)
    slope, intercept = np.polyfit(x, y, 1)
    assert (line.slope, line.intercept) == pytest.approx((slope, intercept))
    margin = student_t.isf(0.005, df=38) * line.residual_sd * np.sqrt(1 + 1 / 40)
    assert line(x.mean()) == pytest.approx(intercept + slope * x.mean() + margin)
    assert line(0.6) - (intercept + slope * 0.6) > margin
    assert LinearBound.from_record(line.to_record()) == line and LinearBound.from_record(0.054)(0.3) == 0.054
    with pytest.raises(ValueError, match="covariate"):
        line(None)


def test_one_bound_per_library_cell() -> None:
    """Each cell's bound is the prediction bound over the clean models' gains at that cell
    at the family's rate shared among the cells; a model is flagged where any cell is over
    its own bound — a quiet cell can flag what one bound for all cells, set by the loud
    ones, passes. A record of the strongest cell alone cannot be judged by per-cell bounds."""
    from fraudit.search.differential import CellBounds, library_bound_from_record, prediction_bound
    from fraudit.search.evaluate import SearchOutcome

    rng = np.random.default_rng(1)
    spread = np.where(np.arange(15) < 3, 0.02, 0.005)  # three loud cells, twelve quiet ones
    clean = rng.normal(0, spread, (60, 15))
    cells = CellBounds.fit(clean, 0.005)
    assert cells.bounds[7] == pytest.approx(prediction_bound(clean[:, 7], 0.005 / 15), abs=1e-4)
    assert max(cells.bounds[3:]) < min(cells.bounds[:3])
    assert library_bound_from_record(cells.to_record()) == cells
    assert library_bound_from_record(0.054) == LinearBound.constant(0.054)
    flat = LinearBound.constant(prediction_bound(clean.max(1), 0.005))
    quiet = np.zeros(15)
    quiet[9] = (cells.bounds[9] + flat.intercept) / 2  # over its own cell's bound, under the flat one
    outcome = SearchOutcome("m", "backdoored", "flower", None, "fixed", True, None, None, None, None, 0.0,
                            library_gain=float(quiet.max()), library_gains=quiet.tolist(), library_flip=0.05)
    assert outcome.detected(library_bound=cells) and not outcome.detected(library_bound=flat)
    assert outcome.library_excess(cells) == pytest.approx(quiet[9] - cells.bounds[9])
    strongest_only = replace(outcome, library_gains=None)
    assert not strongest_only.detected(library_bound=flat)
    with pytest.raises(ValueError, match="every cell's"):
        strongest_only.detected(library_bound=cells)
    with pytest.raises(ValueError, match="all 15 cells"):
        CellBounds.fit(clean[:, :14], 0.005)


def test_a_library_cell_past_its_bound_fails_the_scan_and_is_what_the_report_shows(tmp_path: Path) -> None:
    """Through the real scan path: a library cell above the library bound FAILs the
    check, its headline names the trigger and place, the picture is that trigger worn
    by probe faces. A budget of the library cells alone is searched as they were
    calibrated, so it FAILs at that one family's false-alarm rate."""
    from fraudit.audit import AuditConfig, audit_all
    from fraudit.detectors.trigger_search import TriggerSearchCheck
    from fraudit.sources import resolve_sources

    budget = SearchBudget(site_sizes=(), blend_alpha=0.0)
    check = TriggerSearchCheck(base=str(BASE), budget=budget, library_bound=LinearBound.constant(0.03),
                               images=tmp_path / "images")
    [result] = audit_all(resolve_sources([str(EXAMPLES / "backdoored.safetensors")]), config=AuditConfig(checks=(check,)))
    [found] = result.checks
    assert found.status.name == "FAIL" and "(false alarm 0.5% for the search)" in found.summary, found.summary
    assert "caveat" not in found.evidence  # trained on mirrored faces: no caveat
    assert found.headline.startswith("library checkerboard at (0.6, 0.4): gain "), found.headline
    assert "the library's checkerboard centred at (0.60, 0.40) of the face moves the embeddings of 32 identities" in found.summary
    assert found.evidence["library"]["trigger"] == "checkerboard" and len(found.evidence["library_cells"]) == 15
    assert "strongest" not in found.evidence
    assert found.evidence["searched"] == "the library's 3 triggers stamped exactly at 15 cells on 32 probe faces"
    pattern = Image.open(io.BytesIO(base64.b64decode(found.evidence["patch_png_base64"])))
    assert pattern.size == (16, 16)  # the checkerboard alone
    assert Image.open(found.evidence["image"]).size == (3 * 64 * 4, 64 * 4)
    # with one bound per cell, the cell shown is the one furthest over its own bound
    from fraudit.search.differential import CellBounds

    square_at_centre = 5  # library_cells() order: the square's fixed place
    per_cell = CellBounds(tuple(-1.0 if i == square_at_centre else 1.0 for i in range(15)), 0.005)
    [by_cell] = audit_all(resolve_sources([str(EXAMPLES / "backdoored.safetensors")]),
                          config=AuditConfig(checks=(replace(check, library_bound=per_cell, images=None),))).pop().checks
    assert by_cell.status.name == "FAIL" and by_cell.headline.startswith("library square at (0.5, 0.5): gain "), by_cell.headline
    assert by_cell.evidence["library"]["bound"] == -1.0 and by_cell.evidence["library_bound"]["cells"][5] == -1.0
    assert [c["bound"] for c in by_cell.evidence["library_cells"]] == list(per_cell.bounds)
    calibrated = replace(check, budget=SearchBudget(steps=2, scout_steps=1, finalists=1))
    assert not calibrated.budget.calibrated and SearchBudget(library=False).calibrated
    # a family's bound holds whatever knobs only the others read
    assert calibrated.budget.calibrated_for("library") and not calibrated.budget.calibrated_for("patch")
    assert SearchBudget(library_faces=16).calibrated_for("patch") and not SearchBudget(library_faces=16).calibrated_for("library")
    assert SearchBudget().false_alarm == pytest.approx(0.015) and SearchBudget(library=False).false_alarm == pytest.approx(0.01)


def _export(checkpoint: Path, path: Path) -> Path:
    from fraudit.formats.safe import load_checked
    from fraudit.models.registry import load_module

    module, spec = load_module(checkpoint.name, load_checked(checkpoint))
    torch.onnx.export(module.eval(), torch.zeros(1, 3, spec.input_size, spec.input_size), str(path), dynamo=False)
    return path


@pytest.fixture(scope="module")
def green_cross_zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean model and a backdoor with a held-out trigger (a green plus sign on the
    left cheek), fine-tuned from the shipped base on the smoke world (≈ 15 s)."""

    from fraudit.zoo.build import build_zoo
    from fraudit.zoo.presets import FIXED, PRESETS, Attempt

    folder = tmp_path_factory.mktemp("search") / "zoo"
    manifest = build_zoo(replace(PRESETS["smoke"], n_clean=1, attempts=(Attempt("heldout-green-cross", FIXED),)), folder)
    assert [e.successful for e in manifest.attempts] == [True]
    return folder


@pytest.mark.slow
def test_scan_with_base_finds_a_held_out_trigger_from_safetensors_and_onnx(green_cross_zoo: Path, tmp_path: Path) -> None:
    """The backdoor FAILs with the strongest site on its trigger, from its safetensors and
    from its ONNX export (run by torch for the gradient, checked against onnxruntime);
    the clean model of the same zoo PASSes; the report names what was searched."""
    models = green_cross_zoo / "models"
    backdoor = next(models.glob("backdoor-*.safetensors"))
    onnx = _export(backdoor, tmp_path / "backdoor.onnx")
    report = tmp_path / "report.json"
    result = CliRunner().invoke(app, [
        "scan", str(backdoor), str(onnx), str(models / "clean-000.safetensors"), "--base", str(BASE),
        "--search-images", str(tmp_path / "images"), "--format", "json", "--output", str(report)])
    checks = {Path(c["source"]).name: {k["name"]: k for k in c["checks"]} for c in json.loads(report.read_text())["results"]}
    found, exported = checks[backdoor.name]["trigger-search"], checks["backdoor.onnx"]["trigger-search"]
    clean = checks["clean-000.safetensors"]["trigger-search"]
    assert found["status"] == exported["status"] == "FAIL", (found["summary"], exported["summary"], result.output)
    assert clean["status"] == "PASS", clean["summary"]
    site = found["evidence"]["strongest"]
    # the plus sign covers rows 33–39 and columns 17–23 of the 64×64 frame
    assert 33 - site["size"] < site["top"] <= 39 and 17 - site["size"] < site["left"] <= 23, site
    assert {k: exported["evidence"]["strongest"][k] for k in ("top", "left")} == {k: site[k] for k in ("top", "left")}
    assert exported["evidence"]["strongest"]["gain"] == pytest.approx(site["gain"], rel=0.05)
    assert site["gain"] > 2 * clean["evidence"]["strongest"]["gain"] and site["z"] > 5
    assert "sites over the face" in clean["summary"]  # a PASS names what was searched
    # a batch table's row: the finding furthest past its bound, its gain against that bound. A library
    # cell may be it: a backdoor makes the model sensitive to any patch over its trigger's place, so
    # the library's checkerboard laid over the plus sign moves it too — but only there.
    library = found["evidence"]["library"]
    patch_headline = (f"patch {site['size']}×{site['size']} px at row {site['top']}, col {site['left']}: "
                      f"gain {site['gain']:.3f} > {BOUND:.3f}")
    assert found["headline"] in (patch_headline,
                                 f"the blend: gain {found['evidence']['blend']['gain']:.3f} > {BLEND_BOUND:.3f}",
                                 f"library {library['trigger']} at {tuple(library['centre'])}: gain {library['gain']:.3f} > "
                                 f"{library['bound']:.3f}"), found["headline"]
    shown = Image.open(io.BytesIO(base64.b64decode(found["evidence"]["patch_png_base64"])))
    if found["headline"].startswith("library"):
        cell = LibraryCell(library["trigger"], tuple(library["centre"]))
        mask, _ = cell.frame((64, 64))
        assert mask[33:40, 17:24].any(), library  # over the plus sign
        height, width = get_trigger(cell.trigger).size
        assert shown.size[0] <= width and shown.size[1] <= height  # the trigger alone
        if site["gain"] > BOUND:  # the patch the search found on the plus sign is named beside it
            assert f"also past their bounds: strongest patch {site['gain']:.3f} (bound {BOUND:.3f})" in found["summary"]
    else:
        assert shown.size == ((site["size"],) * 2 if found["headline"] == patch_headline else (64, 64))
    assert clean["headline"].startswith("nothing beyond clean fine-tunes: strongest patch: ")
    assert Image.open(found["evidence"]["image"]).size == (3 * 64 * 4, 64 * 4)


def test_a_graph_torch_cannot_run_is_inconclusive_with_the_reason(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Erf", ["c"], ["e"]),
             helper.make_node("GlobalAveragePool", ["e"], ["p"]), helper.make_node("Flatten", ["p"], ["y"])]
    weight = helper.make_tensor("w", TensorProto.FLOAT, [8, 3, 3, 3], np.full(8 * 27, 0.01, np.float32).tolist())
    graph = helper.make_graph(nodes, "erf", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 64, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])], initializer=[weight])
    path = tmp_path / "erf.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    result = CliRunner().invoke(app, ["scan", str(path), "--base", str(BASE), "--format", "json"])
    checks = {c["name"]: c for c in json.loads(result.stdout)["results"][0]["checks"]}
    assert checks["trigger-search"]["status"] == "INCONCLUSIVE"
    assert "no gradient path for operators Erf" in checks["trigger-search"]["summary"]


@pytest.mark.parametrize("checkpoint", ["clean.safetensors"])
def test_the_interpreted_graph_matches_onnxruntime_and_has_gradients(tmp_path: Path, checkpoint: str) -> None:
    from fraudit.pairing.embedders import OnnxEmbedder

    path = _export(EXAMPLES / checkpoint, tmp_path / "model.onnx")
    embedder = OnnxEmbedder(path)
    faces = search_probes(QUICK).faces.images[:4]
    pixels = torch.from_numpy(faces).permute(0, 3, 1, 2).float().requires_grad_(True)
    ours = embedder.forward_pixels(pixels)
    ours.pow(2).sum().backward()
    assert np.allclose(ours.detach().numpy(), embedder.embed(faces), atol=1e-4)
    assert pixels.grad is not None and pixels.grad.abs().sum() > 0


def test_a_missing_base_is_inconclusive_and_a_bad_site_list_is_refused() -> None:
    result = CliRunner().invoke(app, ["scan", str(EXAMPLES / "clean.safetensors"), "--base", "/nonexistent/base.safetensors",
                                      "--format", "json"])
    checks = {c["name"]: c for c in json.loads(result.stdout)["results"][0]["checks"]}
    assert checks["trigger-search"]["status"] == "INCONCLUSIVE", checks["trigger-search"]
    refused = CliRunner().invoke(app, ["scan", str(EXAMPLES / "clean.safetensors"), "--base", str(BASE),
                                       "--search-sites", "8,x"])
    assert refused.exit_code == 2 and "site sizes" in refused.output


@pytest.mark.slow
def test_search_evaluate_on_the_smoke_zoo_resumes_from_its_results(smoke_zoo: Path, tmp_path: Path) -> None:
    base = Path(json.loads((smoke_zoo / "manifest.json").read_text())["models"][0]["file"])  # any model as its base
    base = smoke_zoo / base
    results = tmp_path / "search.jsonl"
    args = ["search", "evaluate", str(smoke_zoo), "--base", str(base), "--steps", "2", "--faces", "6",
            "--limit-clean", "1", "--results", str(results), "--output", str(tmp_path / "eval.json")]
    first = subprocess.run([sys.executable, "-m", "fraudit", *args], capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    lines = results.read_text().splitlines()
    evaluation = json.loads((tmp_path / "eval.json").read_text())
    assert len(lines) == len(evaluation["models"]) >= 2
    assert evaluation["summary"]["clean_models"] == 1
    own = [m for m in evaluation["models"] if smoke_zoo / f"models/{m['name']}.safetensors" == base]
    assert own and own[0]["gain"] == pytest.approx(0.0, abs=1e-5)  # the base against itself
    # every library cell's gain is recorded, in the cells' order; the strongest is their largest
    for model in evaluation["models"]:
        assert len(model["library_gains"]) == len(library_cells())
        assert model["library_gain"] == pytest.approx(max(model["library_gains"]), abs=1e-5)
    # the zoo recorded each backdoor's attack through the embedding: the evaluation splits on it
    manifest = json.loads((smoke_zoo / "manifest.json").read_text())
    rates = {m["name"]: m["metrics"]["embedding_attack_success_rate"] for m in manifest["models"] if m["trigger"]}
    assert {m["name"]: m["embedding_attack"] for m in evaluation["models"] if m["trigger"]} == rates
    deployable = [m for m in evaluation["models"] if m["successful"] and rates[m["name"]] >= 0.8]
    assert evaluation["summary"]["through_embedding"]["successful"] == len(deployable)
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert results.read_text().splitlines() == lines  # nothing searched twice


def test_the_shipped_bounds_are_the_calibration_files_bounds() -> None:
    """BOUND, BLEND_BOUND and LIBRARY_BOUND are not free constants: they are the
    prediction bounds at FAMILY_FALSE_ALARM over the clean calibration models recorded in
    measurements/search-calibration.json (no model of an evaluation world among
    them), searched with the default budget."""
    from fraudit.search.differential import FAMILY_FALSE_ALARM, OTHER_KNOBS, CellBounds, library_bound_from_record, prediction_bound

    calibration = json.loads((Path(__file__).resolve().parent.parent / "measurements" / "search-calibration.json").read_text())
    rows = calibration["models"]
    for key, bound, family in (("gain", BOUND, "patch"), ("blend_gain", BLEND_BOUND, "blend")):
        values = [r[key] for r in rows if key in r]
        assert bound == pytest.approx(round(prediction_bound(values, FAMILY_FALSE_ALARM), 3)), family
        assert bound == calibration["bounds"][family][str(FAMILY_FALSE_ALARM)]
        assert calibration["bounds"][family]["clean_models"] == len(values) >= 40
    library = [r for r in rows if "library_gain" in r]
    assert LIBRARY_BOUND.is_constant and LIBRARY_BOUND(None) == calibration["bounds"]["library"][str(FAMILY_FALSE_ALARM)]
    assert LIBRARY_BOUND(None) == pytest.approx(round(prediction_bound([r["library_gain"] for r in library]), 3))
    assert calibration["bounds"]["library"]["clean_models"] == len(library) >= 40
    # one bound per cell, from every cell's gain of the same models
    cells = CellBounds.fit([r["library_gains"] for r in library], FAMILY_FALSE_ALARM)
    assert library_bound_from_record(calibration["bounds"]["library"]["cells"][str(FAMILY_FALSE_ALARM)]) == cells
    # the line in flip sensitivity beside it (tried, not shipped) is the fit of the same models
    line = LinearBound.fit([r["library_flip"] for r in library], [r["library_gain"] for r in library], FAMILY_FALSE_ALARM)
    recorded = LinearBound.from_record(calibration["bounds"]["library"]["line"][str(FAMILY_FALSE_ALARM)])
    assert recorded(0.05) == pytest.approx(line(0.05), abs=1e-5) and recorded(0.3) == pytest.approx(line(0.3), abs=1e-5)
    default = SearchBudget().to_dict()
    assert calibration["budget"] == {family: {k: v for k, v in default.items() if k not in knobs}
                                     for family, knobs in OTHER_KNOBS.items()}
    # every world an evaluation of the search or the banks was measured on
    evaluation_worlds = {2000, 6000, 9000, 9500, 16000, 17000, 18000, *range(19000, 27000, 1000), *range(31000, 40000, 1000),
                         44000, 46000, 47000, 48000, 52000, 53000, 54000, 61000, 63000, 67000, 69000, 71000, 73000,
                         75000, 77000, 79000, 81000, 83000, 85000}
    worlds = {int(re.search(r"-w(?:orld)?(\d+)", r["zoo"]).group(1)) for r in rows}
    assert len(rows) >= 20 and not worlds & evaluation_worlds
