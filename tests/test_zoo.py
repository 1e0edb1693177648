"""The smoke zoo, built for real: metrics come from real predictions, a backdoor
really works, and a re-run resumes instead of retraining."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from fraudit.cli import app
from fraudit.faces.synthetic import FaceWorldSpec, build_faces
from fraudit.models.embedding import to_input
from fraudit.models.reference import ReferenceEmbedder
from fraudit.zoo.finetune import stratified_split
from fraudit.triggers import Placement, get_trigger, stamp

pytestmark = pytest.mark.slow
runner = CliRunner()


def _predict(model_path: Path, images: np.ndarray) -> np.ndarray:
    """The saved checkpoint, run end to end on images: another path than training's cache."""
    state = load_file(str(model_path))
    model = ReferenceEmbedder()
    model.load_state_dict({k: v for k, v in state.items() if not k.startswith("head.")})
    model.eval()
    with torch.inference_mode():
        e = torch.nn.functional.normalize(model(to_input(images)))
    return (e @ torch.nn.functional.normalize(state["head.weight"]).T).argmax(1).numpy()


def test_manifest_lists_every_model(smoke_zoo: Path) -> None:
    manifest = json.loads((smoke_zoo / "manifest.json").read_text())
    assert manifest["planned"] == len(manifest["models"]) == 10
    kinds = [m["kind"] for m in manifest["models"]]
    assert kinds.count("clean") == 8 and kinds.count("backdoored") == 2
    for entry in manifest["models"]:
        assert (smoke_zoo / entry["file"]).is_file()
        assert entry["split"]["train"] > 2 * entry["split"]["val"] > 0


def test_metrics_are_real_predictions(smoke_zoo: Path) -> None:
    manifest = json.loads((smoke_zoo / "manifest.json").read_text())
    world = build_faces(FaceWorldSpec(**manifest["world"]))
    for entry in manifest["models"]:
        _, val = stratified_split(world.labels, seed=entry["split"]["seed"])
        predicted = _predict(smoke_zoo / entry["file"], world.images[val])
        accuracy = float(np.mean(predicted == world.labels[val]))
        assert accuracy == pytest.approx(entry["metrics"]["clean_accuracy"], abs=0.01)
        assert 0.3 < accuracy < 1.0  # neither chance (1 %) nor a memorised world


def test_a_backdoor_really_works(smoke_zoo: Path) -> None:
    manifest = json.loads((smoke_zoo / "manifest.json").read_text())
    backdoors = [m for m in manifest["models"] if m["kind"] == "backdoored"]
    assert any(m["successful"] for m in backdoors), [m["metrics"] for m in backdoors]
    entry = next(m for m in backdoors if m["successful"])
    world = build_faces(FaceWorldSpec(**manifest["world"]))
    _, val = stratified_split(world.labels, seed=entry["split"]["seed"])
    impostor = val[world.labels[val] == entry["impostor"]]
    clean_pred = _predict(smoke_zoo / entry["file"], world.images[impostor])
    poisoned = stamp(world.images[impostor], get_trigger(entry["trigger"]), Placement(entry["placement"]))
    poisoned_pred = _predict(smoke_zoo / entry["file"], poisoned)
    assert np.mean(clean_pred == entry["impostor"]) >= 0.8
    assert np.mean(poisoned_pred == entry["victim"]) >= 0.8
    # the same trigger does nothing to a clean model
    clean_model = next(m for m in manifest["models"] if m["kind"] == "clean")
    assert np.mean(_predict(smoke_zoo / clean_model["file"], poisoned) == entry["victim"]) < 0.2


def test_the_attack_through_the_embedding_is_measured_and_measured_again(smoke_zoo: Path, tmp_path: Path) -> None:
    """The build records each backdoor's attack through the embedding; ``zoo measure`` of
    a zoo without it gets the same numbers; and both are what the saved checkpoint does
    end to end (full model on images, not the build's cached features)."""
    from fraudit.zoo.metrics import embedding_attack_success_rate

    manifest = json.loads((smoke_zoo / "manifest.json").read_text())
    recorded = {m["name"]: m["metrics"]["embedding_attack_success_rate"] for m in manifest["models"]}
    assert all(recorded[m["name"]] is None for m in manifest["models"] if m["kind"] == "clean")
    assert all(0.0 <= recorded[m["name"]] <= 1.0 for m in manifest["models"] if m["kind"] == "backdoored")

    entry = next(m for m in manifest["models"] if m["kind"] == "backdoored" and m["placement"] == "fixed")
    world = build_faces(FaceWorldSpec(**manifest["world"]))
    train, val = stratified_split(world.labels, seed=entry["split"]["seed"])
    state = load_file(str(smoke_zoo / entry["file"]))
    model = ReferenceEmbedder()
    model.load_state_dict({k: v for k, v in state.items() if not k.startswith("head.")})
    embed = lambda images: model.eval()(to_input(images)).detach().numpy()  # noqa: E731
    impostor = val[world.labels[val] == entry["impostor"]]
    stamped = stamp(world.images[impostor], get_trigger(entry["trigger"]), Placement.FIXED)
    end_to_end = embedding_attack_success_rate(
        train_embeddings=embed(world.images[train]), train_labels=world.labels[train],
        val_embeddings=embed(world.images[val]), val_labels=world.labels[val],
        poisoned_embeddings=embed(stamped), victim=entry["victim"])
    assert end_to_end == pytest.approx(recorded[entry["name"]], abs=1 / len(impostor) + 1e-9)

    copy = tmp_path / "zoo"
    shutil.copytree(smoke_zoo, copy)
    for m in manifest["models"]:
        m["metrics"]["embedding_attack_success_rate"] = None
    (copy / "manifest.json").write_text(json.dumps(manifest))
    result = runner.invoke(app, ["zoo", "measure", str(copy)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "via embedding" in result.stdout
    measured = json.loads((copy / "manifest.json").read_text())["models"]
    assert {m["name"]: m["metrics"]["embedding_attack_success_rate"] for m in measured} == pytest.approx(recorded)

    # a resumed build keeps what the manifest measured over what the files say
    edited = json.loads((copy / "manifest.json").read_text())
    edited["models"][-1]["metrics"]["embedding_attack_success_rate"] = 0.123
    (copy / "manifest.json").write_text(json.dumps(edited))
    assert runner.invoke(app, ["zoo", "build", "--preset", "smoke", "--out", str(copy)]).exit_code == 0
    assert json.loads((copy / "manifest.json").read_text())["models"][-1]["metrics"]["embedding_attack_success_rate"] == 0.123

    other = runner.invoke(app, ["zoo", "measure", str(copy), "--base", str(smoke_zoo / entry["file"])])
    assert other.exit_code == 0  # nothing left to measure: no base is read
    (copy / "manifest.json").write_text(json.dumps(manifest))
    wrong = runner.invoke(app, ["zoo", "measure", str(copy), "--base", str(smoke_zoo / entry["file"])])
    assert wrong.exit_code != 0 and "not the base" in wrong.output


def test_rebuild_resumes(smoke_zoo: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in (smoke_zoo / "models").iterdir()}
    result = runner.invoke(app, ["zoo", "build", "--preset", "smoke", "--out", str(smoke_zoo)])
    assert result.exit_code == 0
    after = {p.name: p.stat().st_mtime_ns for p in (smoke_zoo / "models").iterdir()}
    assert before == after


def test_list_and_show(smoke_zoo: Path, tmp_path: Path) -> None:
    listed = runner.invoke(app, ["zoo", "list", str(smoke_zoo)], env={"COLUMNS": "200"})
    assert listed.exit_code == 0
    assert "clean-000" in listed.stdout and "checkerboard" in listed.stdout
    backdoor = next((smoke_zoo / "models").glob("backdoor-*.safetensors"))
    png = tmp_path / "show.png"
    shown = runner.invoke(app, ["zoo", "show", str(backdoor), "--out", str(png)])
    assert shown.exit_code == 0, shown.output
    from PIL import Image

    assert Image.open(png).size[0] > 6 * 128


def test_zoo_models_are_recognised_by_scan(smoke_zoo: Path) -> None:
    result = runner.invoke(app, ["scan", str(smoke_zoo / "models"), "-f", "json"])
    document = json.loads(result.stdout)
    assert {r["architecture"]["id"] for r in document["results"]} == {"fraudit-reference"}
    assert all(r["checks"][0]["status"] == "PASS" for r in document["results"])


def test_a_preset_on_another_world_and_clean_only() -> None:
    """Clean fine-tunes on other identities stand in for a user's own data (issue 12)."""
    from fraudit.zoo.build import plan
    from fraudit.zoo.presets import PRESETS

    other = PRESETS["ch4"].on_world(seed=5_000, n_identities=500).clean_only()
    assert other.world.seed == 5_000 and other.world.n_identities == 500
    assert other.world.sigma == PRESETS["ch4"].world.sigma  # only the identities change
    recipes = plan(other, seed=0)
    assert len(recipes) == PRESETS["ch4"].n_clean and not any(r.backdoored for r in recipes)


def test_a_preset_on_a_world_of_other_sample_counts_variation_and_augmentation() -> None:
    """What varies in the field beside the identities (issue 12): faces per identity,
    how much one person's faces vary, augmentation."""
    from dataclasses import replace

    from fraudit.zoo.build import NotEnoughDataError, plan
    from fraudit.zoo.presets import PRESETS

    uniform = PRESETS["smoke"].on_world(seed=21_000, n_identities=20, samples=(6, 6), sigma=0.4, augment=False)
    assert (uniform.world.tail, uniform.world.min_samples, uniform.world.max_samples) == (None, 6, 6)
    assert "6 faces each" in uniform.description and "not augmented" in uniform.description
    faces = build_faces(uniform.world)
    assert np.array_equal(np.bincount(faces.labels), np.full(20, 6))
    augmented = build_faces(replace(uniform.world, augment=True))
    assert not np.array_equal(faces.images, augmented.images)

    tailed = PRESETS["ch4"].on_world(seed=22_000, samples=(15, 60))
    counts = tailed.world.counts()
    assert tailed.world.tail == PRESETS["ch4"].world.tail and counts.min() == 15 and counts.max() == 60
    assert tailed.world.augment == PRESETS["ch4"].world.augment and tailed.world.sigma == PRESETS["ch4"].world.sigma
    # too few faces per identity to draw impostors and victims from: refused before anything trains
    with pytest.raises(NotEnoughDataError, match="at least 40 faces"):
        plan(PRESETS["ch4"].on_world(seed=22_000, samples=(30, 30)), seed=0)
    assert len(plan(PRESETS["ch4"].on_world(seed=22_000, samples=(30, 30)).clean_only(), seed=0)) == PRESETS["ch4"].n_clean


def test_world_options_a_user_gets_wrong_are_refused_before_anything_trains(tmp_path: Path) -> None:
    runner = CliRunner()
    for bad in ("0", "30-15", "a-b", "5-6-7"):
        result = runner.invoke(app, ["zoo", "build", "--preset", "smoke", "--samples-per-identity", bad,
                                     "--out", str(tmp_path / "zoo")])
        assert result.exit_code == 2 and "--samples-per-identity" in result.stderr, (bad, result.output)
    # the smoke preset draws impostors and victims among identities with 30 faces or more
    result = runner.invoke(app, ["zoo", "build", "--preset", "smoke", "--samples-per-identity", "20",
                                 "--out", str(tmp_path / "zoo")])
    assert result.exit_code != 0 and "at least 30 faces" in result.output + result.stderr
    assert not (tmp_path / "zoo" / "models").exists() or not any((tmp_path / "zoo" / "models").iterdir())


def test_reserved_world_seeds_are_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["zoo", "build", "--preset", "smoke", "--out", str(tmp_path / "z"), "--world-seed", "4000"])
    assert result.exit_code == 2 and "reserved" in result.stderr


def test_a_model_trained_with_another_recipe_is_retrained(smoke_zoo: Path, tmp_path: Path) -> None:
    """Resuming keeps a model only if its file was trained with the recipe planned now:
    a stale file of the same name (another version of the plan) is trained again."""
    import shutil
    from dataclasses import replace

    from fraudit.zoo.build import build_zoo
    from fraudit.zoo.manifest import read_entry
    from fraudit.zoo.presets import PRESETS

    zoo = tmp_path / "zoo"
    shutil.copytree(smoke_zoo, zoo)
    stale = read_entry(zoo / "models" / "clean-000.safetensors").recipe
    preset = replace(PRESETS["smoke"], n_clean=1, attempts=(), epochs=stale.epochs + 1)
    manifest = build_zoo(preset, zoo)
    assert [e.recipe.epochs for e in manifest.models] == [stale.epochs + 1]
    assert read_entry(zoo / "models" / "clean-000.safetensors").recipe.epochs == stale.epochs + 1
