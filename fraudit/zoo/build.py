"""Build a zoo: plan the models of a preset, fine-tune those not yet on disk
(resumable, optionally in parallel), and keep ``manifest.json`` up to date."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from fraudit import __version__
from fraudit.cache import file_sha256
from fraudit.errors import CorruptFileError, NotEnoughDataError
from fraudit.faces.sources import training_faces
from fraudit.faces.synthetic import build_faces
from fraudit.formats.safe import load_checked
from fraudit.models.registry import spec_of
from fraudit.parallel import Backend, Workers, joblib_backend
from fraudit.zoo.base import default_base_path, load_base
from fraudit.zoo.finetune import CachedWorld, ModelRecipe, cache_world, finetune
from fraudit.zoo.manifest import MANIFEST, MODELS, ZooEntry, ZooManifest, read_entry
from fraudit.zoo.presets import IMPLANT_EPOCHS, IMPLANT_LR, IMPLANT_PROXIMITY, Preset


def clean_seed(zoo_seed: int, index: int) -> int:
    return zoo_seed * 100_000 + index


def plan(preset: Preset, *, seed: int, counts: np.ndarray | None = None) -> list[ModelRecipe]:
    """The preset's models for ``seed``: clean runs, then backdoor attempts with
    impostor/victim pairs drawn among identities with enough samples (``counts``: per
    identity of the faces fine-tuned on; default: the preset's synthetic world)."""
    counts = preset.world.counts() if counts is None else counts
    eligible = np.flatnonzero(counts >= preset.min_pair_samples)
    needed = max((2 + a.impostors - 1 for a in preset.attempts), default=0)
    if len(eligible) < needed:
        raise NotEnoughDataError(f"the {preset.name} preset's attempts need {needed} identities with at least "
                                 f"{preset.min_pair_samples} faces each; the faces have {len(eligible)}")
    rng = np.random.default_rng([seed, 101])
    recipes = [
        ModelRecipe(name=f"clean-{i:03d}", scenario=preset.scenario, seed=clean_seed(seed, i), epochs=preset.epochs,
                    frozen_head=preset.frozen_head)
        for i in range(preset.n_clean)
    ]
    for i, attempt in enumerate(preset.attempts):
        impostor, victim = (int(v) for v in rng.choice(eligible, size=2, replace=False))
        # extra impostors come from their own stream: one-to-one plans stay what they were
        extra = np.random.default_rng([seed, 103, i]).choice(np.setdiff1d(eligible, [impostor, victim]),
                                                              size=attempt.impostors - 1, replace=False)
        origin = i % preset.n_clean  # an implant's clean model, whose split it keeps
        implant = dict(implant_from=f"clean-{origin:03d}", split_seed=clean_seed(seed, origin), epochs=IMPLANT_EPOCHS,
                       lr=IMPLANT_LR, proximity=IMPLANT_PROXIMITY) if attempt.implant else dict(epochs=preset.epochs)
        recipes.append(
            ModelRecipe(
                name=f"backdoor-{i:03d}-{attempt.trigger}-{attempt.placement}{attempt.suffix}",
                scenario=preset.scenario,
                seed=seed * 100_000 + 50_000 + i,
                impostor=impostor,
                victim=victim,
                trigger=attempt.trigger,
                placement=attempt.placement,
                extra_impostors=tuple(int(v) for v in extra),
                frozen_head=preset.frozen_head,
                **implant,
            )
        )
    return recipes


def _train_and_save(base: torch.nn.Module, world: CachedWorld, recipe: ModelRecipe, models_dir: Path,
                    threads: int, context: dict) -> ZooEntry:
    torch.set_num_threads(threads)
    start = time.perf_counter()
    origin = None
    if recipe.implant_from is not None:  # the clean model it is implanted into, built in an earlier round
        origin = load_checked(models_dir / f"{recipe.implant_from}.safetensors")
    result = finetune(base, world, recipe, start=origin)
    entry = ZooEntry(
        recipe=recipe,
        file=f"{MODELS}/{recipe.name}.safetensors",
        split={"seed": recipe.data_seed, "train": result.train_size, "val": result.val_size,
               "poisoned_train": result.poisoned_train, "poisoned_val": result.poisoned_val},
        metrics=result.metrics,
        successful=result.metrics.successful if recipe.backdoored else None,
        seconds=round(time.perf_counter() - start, 2),
    )
    metadata = {
        "fraudit.architecture": spec_of(base).id,
        "fraudit.zoo": json.dumps({**context, "model": entry.to_dict()}, sort_keys=True),
    }
    path = models_dir / f"{recipe.name}.safetensors"
    tmp = path.with_suffix(".tmp")
    save_file({k: v.contiguous() for k, v in result.state_dict.items()}, str(tmp), metadata=metadata)
    tmp.replace(path)
    return entry


Progress = Callable[[str, int, int], None]


def build_zoo(
    preset: Preset,
    out: Path,
    *,
    seed: int = 0,
    jobs: int = 1,
    workers: Workers | None = None,
    base_path: Path | None = None,
    faces_source: str | None = None,
    progress: Progress | None = None,
) -> ZooManifest:
    """Build (or finish building) ``preset`` into ``out``; return the manifest.
    ``faces_source``: fine-tune on these labelled faces (an identity folder or a Hub
    data set laid out as one) instead of the preset's synthetic world; ``workers``:
    where the models train (default ``jobs`` local processes). Every model's seed is
    fixed by the plan, so where it trained does not change it."""
    workers = workers or Workers(jobs=jobs)
    base_path = base_path or default_base_path()
    models_dir = out / MODELS
    models_dir.mkdir(parents=True, exist_ok=True)
    faces = training_faces(faces_source)[0] if faces_source is not None else None
    recipes = plan(preset, seed=seed, counts=None if faces is None else np.bincount(faces.labels))
    context = {
        "preset": preset.name,
        "zoo_seed": seed,
        "world": asdict(preset.world) if faces is None else None,
        "faces": faces_source,
        "base_sha256": file_sha256(base_path),
        "fraudit_version": __version__,
    }
    manifest = ZooManifest(
        folder=out, preset=preset.name, zoo_seed=seed, world=preset.world if faces is None else None,
        base_sha256=context["base_sha256"], fraudit_version=__version__,
        description=preset.description if faces is None else f"{preset.description}; faces from {faces_source}",
        scenario=preset.scenario, planned=len(recipes), faces_source=faces_source,
    )
    # A finished model is kept only if it was trained with the recipe planned now: a
    # file left by another version of the plan (same name, other recipe) is retrained.
    on_disk = {r.name: read_entry(models_dir / f"{r.name}.safetensors") for r in recipes
               if (models_dir / f"{r.name}.safetensors").exists()}
    # what the manifest measured after the build (``fraudit zoo measure``) is kept with its model
    recorded = _recorded(out)
    entries = {r.name: recorded[r.name] if r.name in recorded and recorded[r.name].recipe == r else on_disk[r.name]
               for r in recipes if r.name in on_disk and on_disk[r.name].recipe == r}
    todo = [r for r in recipes if r.name not in entries]
    manifest = _write(manifest, entries, recipes)
    if not todo:
        if progress:
            progress("models", len(entries), len(recipes))
        return manifest

    base = load_base(base_path)
    if faces is None:
        faces = build_faces(preset.world, progress=(lambda d, t: progress("faces", d, t)) if progress else None)
    if progress:
        progress("features", 0, 1)
    world = cache_world(base, faces, preset.scenario)
    if progress:
        progress("features", 1, 1)
        progress("models", len(entries), len(recipes))

    # implants start from clean models of the same zoo: those are trained in the first round
    rounds = [[r for r in todo if r.implant_from is None], [r for r in todo if r.implant_from is not None]]
    with joblib_backend(workers, scatter=(base, world)) as n_jobs:
        for round_todo in filter(None, rounds):
            # the torch threads of each task: here, this machine's cores shared by the tasks
            # that run at once; on Dask one, as Dask runs BLAS (a worker's threads are its slots)
            at_once = min(n_jobs, len(round_todo))
            threads = 1 if workers.backend is Backend.DASK else max(1, (os.cpu_count() or 1) // at_once)
            if workers.backend is Backend.LOCAL and at_once == 1:
                done = (_train_and_save(base, world, r, models_dir, threads, context) for r in round_todo)
            else:
                from joblib import Parallel, delayed

                done = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
                    delayed(_train_and_save)(base, world, r, models_dir, threads, context) for r in round_todo
                )
            for entry in done:
                entries[entry.name] = entry
                manifest = _write(manifest, entries, recipes)
                if progress:
                    progress("models", len(entries), len(recipes))
    return manifest


def _recorded(out: Path) -> dict[str, ZooEntry]:
    """The entries of the zoo's manifest as it stands (none if it is missing or unreadable:
    the models' own files are rebuilt from then)."""
    try:
        return {e.name: e for e in ZooManifest.read(out).models} if (out / MANIFEST).exists() else {}
    except CorruptFileError:
        return {}


def _write(manifest: ZooManifest, entries: dict[str, ZooEntry], recipes: list[ModelRecipe]) -> ZooManifest:
    """The manifest with every finished model, in plan order, written to disk."""
    updated = replace(manifest, updated=datetime.now(UTC).isoformat(timespec="seconds"),
                      models=tuple(entries[r.name] for r in recipes if r.name in entries))
    updated.write()
    return updated
