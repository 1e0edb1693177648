"""Measure what a zoo built by an earlier version of fraudit did not record: each
backdoor's embedding attack success rate (``fraudit.zoo.metrics``).

The models are not retrained and their files are not touched: each backdoor's
trained layers run again from the base's frozen features of the zoo's faces, on
the same stamped validation faces its build drew, and the rate is written into
the zoo's manifest (which a resumed build keeps)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from fraudit.cache import file_sha256
from fraudit.errors import IncompatibleArtifactError
from fraudit.formats.safe import load_checked
from fraudit.zoo.base import default_base_path, load_base
from fraudit.zoo.finetune import cache_world, measure_embedding_attack
from fraudit.zoo.manifest import ZooManifest

Progress = Callable[[str, int, int], None]


def measure_zoo(folder: Path, *, base_path: Path | None = None, progress: Progress | None = None) -> ZooManifest:
    """Add the embedding attack success rate to every backdoor of the zoo that lacks it."""
    manifest = ZooManifest.read(folder)
    todo = [e for e in manifest.attempts if e.metrics.embedding_attack_success_rate is None]
    if not todo:
        return manifest
    base_path = base_path or default_base_path()
    if file_sha256(base_path) != manifest.base_sha256:
        raise IncompatibleArtifactError(
            f"{base_path} is not the base {folder} was fine-tuned from (sha256 {manifest.base_sha256[:12]}…); "
            "pass that base with --base")
    base = load_base(base_path)
    if progress:
        progress("features", 0, 1)
    world = cache_world(base, manifest.load_faces(), manifest.scenario)
    if progress:
        progress("features", 1, 1)
    entries = {e.name: e for e in manifest.models}
    for done, entry in enumerate(todo):
        if progress:
            progress("backdoors", done, len(todo))
        rate = measure_embedding_attack(base, world, entry.recipe, load_checked(manifest.path(entry)))
        entries[entry.name] = replace(entry, metrics=replace(entry.metrics, embedding_attack_success_rate=rate))
        manifest = replace(manifest, models=tuple(entries[e.name] for e in manifest.models))
        manifest.write()
    if progress:
        progress("backdoors", len(todo), len(todo))
    return manifest
