"""Pairing measured on a zoo (thesis Tables 5.2 and 5.3, plus the sweep).

For every zoo model the candidate is paired with the trusted model on the
calibration faces. Poisoned samples are each attempt's impostor validation faces
stamped with its trigger, as the attacker would present them:

* clean pairs: the share of poisoned samples flagged (FNMR on poisoned samples,
  Table 5.2 — a false alarm caused by the trigger alone);
* successful backdoored pairs: the share of their own poisoned samples that still
  pass (FMR on poisoned samples, Table 5.3 — attacks that get through);

at the thresholds set at clean FNMR 0.1 / 1 / 5 %. The trigger sweep runs on the
same models against a null built from *other* clean models (a zoo of another
seed), so its detection and false-alarm rates are measured on models it never saw.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fraudit.faces.synthetic import FaceWorldSpec, build_faces
from fraudit.pairing.audit import PairingSetup, pair_models, sweep_inputs, sweep_pair
from fraudit.pairing.embedders import Embedder, embed_cached, reference_embedder
from fraudit.pairing.sweep import SweepNull, judge
from fraudit.pairing.thresholds import flagged_rate, passed_rate
from fraudit.zoo.finetune import stratified_split
from fraudit.zoo.triggers import Placement, get_trigger, stamp


@dataclass
class ModelOutcome:
    name: str
    kind: str
    trigger: str | None
    successful: bool | None
    genuine_mean: float
    # FNMR label -> flagged share (clean models) or passed share (backdoored models)
    poisoned: dict[str, float]
    sweep_failed: bool | None = None
    sweep_cell: str | None = None
    sweep_z: float | None = None


@dataclass
class PairingEvaluation:
    trusted: str
    setup: dict[str, Any]
    outcomes: list[ModelOutcome] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"trusted": self.trusted, "setup": self.setup, "models": [vars(o) for o in self.outcomes],
                "summary": self.summary()}

    def summary(self) -> dict[str, Any]:
        clean = [o for o in self.outcomes if o.kind == "clean"]
        out: dict[str, Any] = {"clean_models": len(clean)}
        for fnmr in (clean[0].poisoned if clean else {}):
            out[f"clean_flagged_{fnmr}"] = _mean_max([o.poisoned[fnmr] for o in clean])
        triggers = sorted({o.trigger for o in self.outcomes if o.trigger})
        for trigger in triggers:
            group = [o for o in self.outcomes if o.trigger == trigger and o.successful]
            entry: dict[str, Any] = {"successful": len(group)}
            for fnmr in (group[0].poisoned if group else {}):
                entry[f"backdoor_passed_{fnmr}"] = _mean_max([o.poisoned[fnmr] for o in group])
            entry["sweep_detected"] = _share([o.sweep_failed for o in group])
            out[trigger] = entry
        out["sweep_false_alarms"] = _share([o.sweep_failed for o in clean])
        return out


def _mean_max(values: list[float]) -> dict[str, float]:
    return {"mean": float(np.mean(values)), "max": float(np.max(values))} if values else {}


def _share(flags: list[bool | None]) -> float | None:
    known = [f for f in flags if f is not None]
    return float(np.mean(known)) if known else None


def poisoned_samples(entry: dict[str, Any], world_images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The attempt's impostor validation faces stamped with its trigger (seeded)."""
    _, val = stratified_split(labels, seed=entry["split"]["seed"])
    impostor = val[labels[val] == entry["impostor"]]
    rng = np.random.default_rng([entry["split"]["seed"], 99])
    return stamp(world_images[impostor], get_trigger(entry["trigger"]), Placement(entry["placement"]), rng=rng)


def evaluate_zoo(
    zoo: Path,
    trusted: Embedder,
    setup: PairingSetup,
    *,
    null: SweepNull | None = None,
    limit_clean: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> PairingEvaluation:
    manifest = json.loads((zoo / "manifest.json").read_text())
    world = build_faces(FaceWorldSpec(**manifest["world"]))
    entries = manifest["models"]
    clean = [e for e in entries if e["kind"] == "clean"][:limit_clean]
    attempts = [e for e in entries if e["kind"] != "clean"]
    # Every attempt's poisoned samples, once: clean pairs are scored on all of them.
    poisoned = {e["name"]: poisoned_samples(e, world.images, world.labels) for e in attempts}
    inputs = sweep_inputs(setup) if null is not None else None
    evaluation = PairingEvaluation(trusted.name, setup.null_key(trusted))
    models = clean + attempts
    for done, entry in enumerate(models, start=1):
        candidate = reference_embedder(zoo / entry["file"])
        pair = pair_models(candidate, trusted, setup)
        faces = [poisoned[entry["name"]]] if entry["kind"] != "clean" else list(poisoned.values())
        scores = np.concatenate([pair.score_sides(embed_cached(candidate, f), embed_cached(trusted, f)) for f in faces])
        rate = flagged_rate if entry["kind"] == "clean" else passed_rate
        outcome = ModelOutcome(entry["name"], entry["kind"], entry.get("trigger"), entry.get("successful"),
                               float(pair.genuine.mean()), {k: rate(scores, t) for k, t in pair.thresholds.items()})
        if null is not None and inputs is not None:
            verdict = judge(sweep_pair(pair, candidate, trusted, inputs), null, inputs.probes)
            outcome.sweep_failed, outcome.sweep_cell = verdict.failed, verdict.worst
            outcome.sweep_z = verdict.z[verdict.worst]
        evaluation.outcomes.append(outcome)
        if progress is not None:
            progress("Pairing zoo models", done, len(models))
    return evaluation

