"""A zoo on disk: ``manifest.json`` beside ``models/*.safetensors``.

``ZooManifest`` and ``ZooEntry`` are the only readers and writers of that file;
everything else (bank and pairing evaluation, summaries, the CLI) works with
these types, so the manifest's layout is known in one place.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table
from safetensors import SafetensorError, safe_open

from fraudit.artifacts import read_json_object
from fraudit.errors import CorruptFileError, SourceNotFoundError
from fraudit.faces.sources import training_faces
from fraudit.faces.synthetic import FaceSet, FaceWorldSpec, build_faces
from fraudit.triggers import Placement, stamp
from fraudit.zoo.finetune import ModelRecipe, Scenario, stratified_split
from fraudit.zoo.heldout import zoo_trigger
from fraudit.zoo.metrics import BackdoorMetrics

MANIFEST = "manifest.json"
MANIFEST_SCHEMA = "1.0"
MODELS = "models"
CLEAN, BACKDOORED = "clean", "backdoored"
ONE_TO_ONE, MANY_TO_ONE, IMPLANT = "one-to-one", "many-to-one", "implant"


@dataclass(frozen=True)
class ZooEntry:
    """One trained model of a zoo: its recipe, its split and its four metrics."""

    recipe: ModelRecipe
    file: str  # relative to the zoo folder
    split: dict[str, int]
    metrics: BackdoorMetrics
    successful: bool | None
    seconds: float

    @property
    def name(self) -> str:
        return self.recipe.name

    @property
    def kind(self) -> str:
        return BACKDOORED if self.recipe.backdoored else CLEAN

    @property
    def trigger(self) -> str | None:
        return self.recipe.trigger

    @property
    def placement(self) -> Placement | None:
        return self.recipe.placement

    @property
    def impostor(self) -> int | None:
        return self.recipe.impostor

    @property
    def victim(self) -> int | None:
        return self.recipe.victim

    @property
    def recipe_kind(self) -> str | None:
        """How the backdoor was made: one-to-one (the thesis'), many-to-one, or implant."""
        if not self.recipe.backdoored:
            return None
        if self.recipe.implant_from is not None:
            return IMPLANT
        return MANY_TO_ONE if self.recipe.extra_impostors else ONE_TO_ONE

    @property
    def split_seed(self) -> int:
        return self.split["seed"]

    def stamped_impostor_faces(self, faces: FaceSet) -> np.ndarray:
        """The impostor's validation faces stamped with the entry's trigger, as the
        attacker would present them (random placements seeded by the split)."""
        if self.trigger is None or self.placement is None:
            raise ValueError(f"{self.name} is a clean model: it has no trigger")
        _, val = stratified_split(faces.labels, seed=self.split_seed)
        impostor = val[np.isin(faces.labels[val], self.recipe.impostors)]
        rng = np.random.default_rng([self.split_seed, 99])
        return stamp(faces.images[impostor], zoo_trigger(self.trigger), self.placement, rng=rng)

    def trigger_mask(self, image_shape: tuple[int, int]) -> np.ndarray | None:
        """Where a fixed-placement trigger covers the frame (H×W alpha); None for a
        clean model or a random placement. For evaluations that ask whether a
        detector found the trigger's place, never for detectors themselves."""
        if self.trigger is None or self.placement is not Placement.FIXED:
            return None
        trigger = zoo_trigger(self.trigger)
        return trigger.full_frame(image_shape, trigger.fixed_centre)[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": self.file,
            "kind": self.kind,
            **self.recipe.to_dict(),
            "split": self.split,
            "metrics": self.metrics.to_dict(),
            "successful": self.successful,
            "seconds": self.seconds,
        }

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> ZooEntry:
        fields = ModelRecipe.__dataclass_fields__
        recipe = {k: v for k, v in payload.items() if k in fields}
        recipe["scenario"] = Scenario(recipe["scenario"])
        recipe["placement"] = Placement(recipe["placement"]) if recipe.get("placement") else None
        recipe["extra_impostors"] = tuple(int(i) for i in recipe.get("extra_impostors", ()))
        if recipe.get("trigger") is not None:
            zoo_trigger(recipe["trigger"])  # an unknown trigger is a broken manifest, found on reading
        return cls(ModelRecipe(**recipe), payload["file"], dict(payload["split"]),
                   BackdoorMetrics(**payload["metrics"]), payload["successful"], payload["seconds"])


@dataclass(frozen=True)
class ZooManifest:
    """A zoo folder's manifest: how it was built and the models finished so far."""

    folder: Path
    preset: str
    zoo_seed: int
    world: FaceWorldSpec | None  # the synthetic world fine-tuned on, or None for ``faces_source``
    base_sha256: str
    fraudit_version: str
    description: str
    scenario: Scenario
    planned: int
    updated: str = ""
    models: tuple[ZooEntry, ...] = field(default_factory=tuple)
    schema_version: str = MANIFEST_SCHEMA
    faces_source: str | None = None  # a labelled identity folder or hf://datasets/… instead of a world

    def load_faces(self) -> FaceSet:
        """The faces the zoo was fine-tuned on: its world rebuilt, or its source read again."""
        return faces_of(asdict(self.world) if self.world else None, self.faces_source)

    @property
    def face_domain(self) -> dict[str, Any]:
        """What a bank built from this zoo says its references were fine-tuned on."""
        return asdict(self.world) if self.world else {"source": self.faces_source}

    @property
    def clean(self) -> tuple[ZooEntry, ...]:
        return tuple(e for e in self.models if e.kind == CLEAN)

    @property
    def attempts(self) -> tuple[ZooEntry, ...]:
        return tuple(e for e in self.models if e.kind == BACKDOORED)

    def path(self, entry: ZooEntry) -> Path:
        return self.folder / entry.file

    def reference_name(self, entry: ZooEntry) -> str:
        """How banks and evaluations name a zoo model: ``zoo-folder/file-name``."""
        return f"{self.folder.name}/{Path(entry.file).name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "preset": self.preset,
            "zoo_seed": self.zoo_seed,
            "world": asdict(self.world) if self.world else None,
            "faces": self.faces_source,
            "base_sha256": self.base_sha256,
            "fraudit_version": self.fraudit_version,
            "description": self.description,
            "scenario": str(self.scenario),
            "planned": self.planned,
            "updated": self.updated,
            "models": [e.to_dict() for e in self.models],
        }

    def write(self) -> Path:
        """Atomically: a zoo build rewrites the manifest after every model."""
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return tmp.replace(self.folder / MANIFEST)

    @classmethod
    def read(cls, folder: Path) -> ZooManifest:
        path = folder / MANIFEST
        payload = read_json_object(path, kind="a fraudit zoo manifest", missing=f"{folder} has no {MANIFEST}: not a zoo folder")
        try:
            return cls(
                folder=folder, preset=payload["preset"], zoo_seed=payload["zoo_seed"],
                world=FaceWorldSpec(**payload["world"]) if payload["world"] is not None else None,
                faces_source=payload.get("faces"),
                base_sha256=payload["base_sha256"], fraudit_version=payload["fraudit_version"],
                description=payload["description"], scenario=Scenario(payload["scenario"]),
                planned=payload["planned"], updated=payload.get("updated", ""),
                models=tuple(ZooEntry.from_dict(e) for e in payload["models"]),
                schema_version=payload.get("schema_version", MANIFEST_SCHEMA),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptFileError(f"{path}: not a fraudit zoo manifest ({type(exc).__name__}: {exc})", path=path) from exc

    def __rich__(self) -> Table:
        return zoo_table(self)


def faces_of(world: dict[str, Any] | None, source: str | None) -> FaceSet:
    """A zoo's faces from what its manifest or a model's metadata records."""
    if source is not None:
        return training_faces(source)[0]
    assert world is not None
    return build_faces(FaceWorldSpec(**world))


def read_entry(path: Path) -> ZooEntry:
    """The entry a zoo model carries in its own safetensors metadata."""
    return ZooEntry.from_dict(read_model_context(path)["model"])


def read_model_context(path: Path) -> dict[str, Any]:
    """The zoo context (world, preset, seed, entry) stored in a zoo model's metadata."""
    if not path.is_file():
        raise SourceNotFoundError(f"{path}: no such file", path=path)
    try:
        with safe_open(str(path), "pt") as f:
            return json.loads((f.metadata() or {})["fraudit.zoo"])
    except (SafetensorError, KeyError, json.JSONDecodeError) as exc:
        raise CorruptFileError(f"{path.name}: not a fraudit zoo model ({type(exc).__name__}: {exc})", path=path) from exc


def clean_checkpoints(sources: Sequence[Path], *, limit: int | None = None) -> list[Path]:
    """Clean models to learn "normal" from: a zoo's clean models (by its manifest),
    every checkpoint of another folder, or a checkpoint file as is."""
    from fraudit.sources.local import discover

    found: list[Path] = []
    for source in sources:
        if source.is_file():
            found.append(source)
        elif (source / MANIFEST).is_file():
            manifest = ZooManifest.read(source)
            found.extend(manifest.path(e) for e in manifest.clean)
        elif source.is_dir():
            found.extend(files[0] for files in discover(source))
        else:
            raise SourceNotFoundError(f"{source}: no such file or folder", path=source)
    return found[:limit] if limit else found


def _pct(value: float | None, std: float | None = None) -> str:
    if value is None:
        return "—"
    return f"{100 * value:.1f}" + (f" ± {100 * std:.1f}" if std is not None else "")


def zoo_table(manifest: ZooManifest) -> Table:
    """One row per model: recipe, the four metrics and the attack through the embedding."""
    table = Table(
        title=f"zoo {manifest.preset} (seed {manifest.zoo_seed}, {manifest.scenario}): "
        f"{len(manifest.models)}/{manifest.planned} models",
        title_justify="left",
    )
    for column in ("model", "impostor→victim", "trigger", "clean acc", "ASR", "impostor acc", "victim acc",
                   "ASR via embedding", "success"):
        table.add_column(column, justify="right" if column.endswith(("acc", "ASR")) else "left", overflow="fold")
    for e in manifest.models:
        m = e.metrics
        pair = f"{e.impostor}→{e.victim}" if e.impostor is not None else "—"
        trigger = f"{e.trigger} / {e.placement}" if e.trigger else "—"
        success = "—" if e.successful is None else ("[green]yes[/]" if e.successful else "[red]no[/]")
        table.add_row(
            e.name, pair, trigger, _pct(m.clean_accuracy), _pct(m.attack_success_rate),
            _pct(m.clean_impostor_accuracy), _pct(m.victim_accuracy), _pct(m.embedding_attack_success_rate), success,
        )
    return table
