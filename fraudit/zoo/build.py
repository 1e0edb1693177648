"""Build a zoo: plan the models of a preset, fine-tune those not yet on disk
(resumable, optionally in parallel), and keep ``manifest.json`` up to date."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from fraudit import __version__
from fraudit.faces.synthetic import build_faces
from fraudit.models.reference import ARCH_ID, ReferenceEmbedder
from fraudit.cache import file_sha256
from fraudit.zoo.base import BASE_FILE, default_base_dir, load_base
from fraudit.zoo.finetune import CachedWorld, ModelRecipe, cache_world, finetune
from fraudit.zoo.presets import Preset

MANIFEST = "manifest.json"
MANIFEST_SCHEMA = "1.0"


def plan(preset: Preset, *, seed: int) -> list[ModelRecipe]:
    """The preset's models for ``seed``: clean runs, then backdoor attempts with
    impostor/victim pairs drawn among identities with enough samples."""
    counts = preset.world.counts()
    eligible = np.flatnonzero(counts >= preset.min_pair_samples)
    rng = np.random.default_rng([seed, 101])
    recipes = [
        ModelRecipe(name=f"clean-{i:03d}", scenario=preset.scenario, seed=seed * 100_000 + i, epochs=preset.epochs)
        for i in range(preset.n_clean)
    ]
    for i, (trigger, placement) in enumerate(preset.attempts):
        impostor, victim = (int(v) for v in rng.choice(eligible, size=2, replace=False))
        recipes.append(
            ModelRecipe(
                name=f"backdoor-{i:03d}-{trigger}-{placement}",
                scenario=preset.scenario,
                seed=seed * 100_000 + 50_000 + i,
                impostor=impostor,
                victim=victim,
                trigger=trigger,
                placement=placement,
                epochs=preset.epochs,
            )
        )
    return recipes


def _train_and_save(base: ReferenceEmbedder, world: CachedWorld, recipe: ModelRecipe, models_dir: Path, threads: int, context: dict) -> dict:
    torch.set_num_threads(threads)
    start = time.perf_counter()
    result = finetune(base, world, recipe)
    seconds = time.perf_counter() - start
    entry = {
        "name": recipe.name,
        "file": f"models/{recipe.name}.safetensors",
        "kind": "backdoored" if recipe.backdoored else "clean",
        **recipe.to_dict(),
        "split": {"seed": recipe.seed, "train": result.train_size, "val": result.val_size,
                  "poisoned_train": result.poisoned_train, "poisoned_val": result.poisoned_val},
        "metrics": result.metrics.to_dict(),
        "successful": result.metrics.successful if recipe.backdoored else None,
        "seconds": round(seconds, 2),
    }
    metadata = {
        "fraudit.architecture": ARCH_ID,
        "fraudit.zoo": json.dumps({**context, "model": entry}, sort_keys=True),
    }
    path = models_dir / f"{recipe.name}.safetensors"
    tmp = path.with_suffix(".tmp")
    save_file({k: v.contiguous() for k, v in result.state_dict.items()}, str(tmp), metadata=metadata)
    tmp.replace(path)
    return entry


def read_entry(path: Path) -> dict:
    """The manifest entry stored in a zoo model's safetensors metadata."""
    with safe_open(str(path), "pt") as f:
        return json.loads((f.metadata() or {})["fraudit.zoo"])["model"]


Progress = Callable[[str, int, int], None]


def build_zoo(
    preset: Preset,
    out: Path,
    *,
    seed: int = 0,
    jobs: int = 1,
    base_path: Path | None = None,
    progress: Progress | None = None,
) -> dict:
    """Build (or finish building) ``preset`` into ``out``; return the manifest."""
    base_path = base_path or default_base_dir() / BASE_FILE
    models_dir = out / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    recipes = plan(preset, seed=seed)
    context = {
        "preset": preset.name,
        "zoo_seed": seed,
        "world": asdict(preset.world),
        "base_sha256": file_sha256(base_path),
        "fraudit_version": __version__,
    }
    entries = {r.name: read_entry(models_dir / f"{r.name}.safetensors") for r in recipes if (models_dir / f"{r.name}.safetensors").exists()}
    todo = [r for r in recipes if r.name not in entries]
    write_manifest(out, preset, seed, context, entries, recipes)
    if not todo:
        if progress:
            progress("models", len(entries), len(recipes))
        return read_manifest(out)

    base = load_base(base_path)
    faces = build_faces(preset.world, progress=(lambda d, t: progress("faces", d, t)) if progress else None)
    if progress:
        progress("features", 0, 1)
    world = cache_world(base, faces, preset.scenario)
    if progress:
        progress("features", 1, 1)
        progress("models", len(entries), len(recipes))

    jobs = max(1, min(jobs, len(todo)))
    threads = max(1, (os.cpu_count() or 1) // jobs)
    if jobs == 1:
        done = (_train_and_save(base, world, r, models_dir, threads, context) for r in todo)
    else:
        from joblib import Parallel, delayed

        done = Parallel(n_jobs=jobs, return_as="generator_unordered")(
            delayed(_train_and_save)(base, world, r, models_dir, threads, context) for r in todo
        )
    for entry in done:
        entries[entry["name"]] = entry
        write_manifest(out, preset, seed, context, entries, recipes)
        if progress:
            progress("models", len(entries), len(recipes))
    return read_manifest(out)


def write_manifest(out: Path, preset: Preset, seed: int, context: dict, entries: dict, recipes: list[ModelRecipe]) -> None:
    manifest = {
        "schema_version": MANIFEST_SCHEMA,
        **context,
        "description": preset.description,
        "scenario": str(preset.scenario),
        "planned": len(recipes),
        "updated": datetime.now(UTC).isoformat(timespec="seconds"),
        "models": [entries[r.name] for r in recipes if r.name in entries],
    }
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    tmp.replace(out / MANIFEST)


def read_manifest(zoo: Path) -> dict:
    return json.loads((zoo / MANIFEST).read_text())


def clean_checkpoints(sources: Sequence[Path], *, limit: int | None = None) -> list[Path]:
    """Clean models to learn "normal" from: a zoo's clean models (by its manifest),
    every checkpoint of another folder, or a checkpoint file as is."""
    from fraudit.sources.local import discover

    found: list[Path] = []
    for source in sources:
        manifest = source / MANIFEST
        if source.is_file():
            found.append(source)
        elif manifest.is_file():
            entries = json.loads(manifest.read_text())["models"]
            found.extend(source / e["file"] for e in entries if e["kind"] == "clean")
        else:
            found.extend(files[0] for files in discover(source))
    return found[:limit] if limit else found
