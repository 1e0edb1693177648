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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.markup import escape
from rich.table import Table

from fraudit.pairing.audit import PairingSetup, Progress, audit_pair, pair_models
from fraudit.pairing.embedders import Embedder, embed_cached, reference_embedder
from fraudit.pairing.sweep import SweepNull
from fraudit.pairing.thresholds import flagged_rate, passed_rate
from fraudit.rates import format_rate
from fraudit.zoo.manifest import CLEAN, ONE_TO_ONE, ZooManifest
from fraudit.zoo.metrics import embedding_attack_measured, works_through_embedding


@dataclass
class ModelOutcome:
    name: str
    kind: str
    trigger: str | None
    recipe: str | None  # one-to-one, many-to-one or implant (backdoored models)
    successful: bool | None
    genuine_mean: float
    # FNMR -> flagged share (clean models) or passed share (backdoored models)
    poisoned: dict[float, float]
    sweep_failed: bool | None = None
    sweep_cell: str | None = None
    sweep_z: float | None = None
    # the backdoor's attack success rate through the embedding (the zoo's manifest; None: clean or not measured)
    embedding_attack: float | None = None

    @property
    def through_embedding(self) -> bool:
        return works_through_embedding(self.successful, self.embedding_attack)

    def to_dict(self) -> dict[str, Any]:
        return {**vars(self), "poisoned": {format_rate(k): v for k, v in self.poisoned.items()}}


@dataclass
class PairingEvaluation:
    zoo: str
    trusted: str
    setup: dict[str, Any]
    outcomes: list[ModelOutcome] = field(default_factory=list)

    @property
    def clean(self) -> list[ModelOutcome]:
        return [o for o in self.outcomes if o.kind == CLEAN]

    @property
    def fnmrs(self) -> list[float]:
        return list(self.outcomes[0].poisoned) if self.outcomes else []

    def successful(self, group: str) -> list[ModelOutcome]:
        """The successful backdoors of one group (a trigger, and the recipe unless one-to-one)."""
        return [o for o in self.outcomes if o.trigger and _group(o) == group and o.successful]

    @property
    def triggers(self) -> list[str]:
        """The groups results are reported by: each trigger, split by recipe."""
        return sorted({_group(o) for o in self.outcomes if o.trigger})

    def to_dict(self) -> dict[str, Any]:
        return {"trusted": self.trusted, "setup": self.setup, "models": [o.to_dict() for o in self.outcomes],
                "summary": self.summary()}

    def summary(self) -> dict[str, Any]:
        clean = self.clean
        out: dict[str, Any] = {"clean_models": len(clean)}
        for fnmr in self.fnmrs if clean else []:
            out[f"clean_flagged_{format_rate(fnmr)}"] = _mean_max([o.poisoned[fnmr] for o in clean])
        for trigger in self.triggers:
            group = self.successful(trigger)
            entry: dict[str, Any] = {"successful": len(group)}
            for fnmr in self.fnmrs if group else []:
                entry[f"backdoor_passed_{format_rate(fnmr)}"] = _mean_max([o.poisoned[fnmr] for o in group])
            entry["sweep_detected"] = _share([o.sweep_failed for o in group])
            out[trigger] = entry
        out["sweep_false_alarms"] = _share([o.sweep_failed for o in clean])
        if self.embedding_measured:
            deployable = [o for o in self.outcomes if o.trigger and o.through_embedding]
            out["through_embedding"] = {"successful": len(deployable),
                                        "sweep_detected": _share([o.sweep_failed for o in deployable])}
        return out

    @property
    def embedding_measured(self) -> bool:
        return embedding_attack_measured([o.embedding_attack for o in self.outcomes if o.trigger])

    def __rich__(self) -> Table:
        setup = self.setup
        table = Table(title=f"{escape(self.zoo)} paired with {escape(self.trusted)} "
                            f"({setup['translator']}, {setup['direction']}); mean / worst")
        table.add_column("poisoned samples")
        for fnmr in self.fnmrs:
            table.add_column(f"at FNMR {format_rate(fnmr)}", justify="right")
        table.add_column("sweep", justify="right")

        def cells(group: list[ModelOutcome]) -> list[str]:
            stats = [_mean_max([o.poisoned[f] for o in group]) for f in self.fnmrs]
            return [f"{100 * s['mean']:.1f} / {100 * s['max']:.1f}%" if s else "—" for s in stats]

        false_alarms = _share([o.sweep_failed for o in self.clean])
        table.add_row(f"flagged on clean pairs ({len(self.clean)})", *cells(self.clean),
                      "—" if false_alarms is None else f"{100 * false_alarms:.0f}% false alarms")
        for trigger in self.triggers:
            group = self.successful(trigger)
            detected = _share([o.sweep_failed for o in group])
            table.add_row(f"passed on {trigger} backdoors ({len(group)} successful)", *cells(group),
                          "—" if detected is None else f"{100 * detected:.0f}% detected")
        if self.embedding_measured:
            group = [o for o in self.outcomes if o.trigger and o.through_embedding]
            detected = _share([o.sweep_failed for o in group])
            table.add_row(f"passed on backdoors that work through the embedding ({len(group)})", *cells(group),
                          "—" if detected is None else f"{100 * detected:.0f}% detected")
        return table


def _group(outcome: ModelOutcome) -> str:
    recipe = "" if outcome.recipe in (None, ONE_TO_ONE) else f" ({outcome.recipe})"
    return f"{outcome.trigger}{recipe}"


def _mean_max(values: list[float]) -> dict[str, float]:
    return {"mean": float(np.mean(values)), "max": float(np.max(values))} if values else {}


def _share(flags: list[bool | None]) -> float | None:
    known = [f for f in flags if f is not None]
    return float(np.mean(known)) if known else None


def evaluate_zoo(
    zoo: Path,
    trusted: Embedder,
    setup: PairingSetup,
    *,
    null: SweepNull | None = None,
    limit_clean: int | None = None,
    progress: Progress | None = None,
) -> PairingEvaluation:
    if null is not None:
        null.require_setup(setup.null_key(trusted))
    manifest = ZooManifest.read(zoo)
    world = manifest.load_faces()
    clean = list(manifest.clean[:limit_clean])
    attempts = list(manifest.attempts)
    # Every attempt's poisoned samples, once: clean pairs are scored on all of them.
    poisoned = {e.name: e.stamped_impostor_faces(world) for e in attempts}
    evaluation = PairingEvaluation(zoo.name, trusted.name, setup.null_key(trusted))
    models = clean + attempts
    for done, entry in enumerate(models, start=1):
        candidate = reference_embedder(manifest.path(entry))
        pair = pair_models(candidate, trusted, setup)
        faces = [poisoned[entry.name]] if entry.kind != CLEAN else list(poisoned.values())
        scores = np.concatenate([pair.score_sides(embed_cached(candidate, f), embed_cached(trusted, f)) for f in faces])
        rate = flagged_rate if entry.kind == CLEAN else passed_rate
        outcome = ModelOutcome(entry.name, entry.kind, entry.trigger, entry.recipe_kind, entry.successful,
                               float(pair.genuine.mean()), {k: rate(scores, t) for k, t in pair.thresholds.items()},
                               embedding_attack=entry.metrics.embedding_attack_success_rate)
        if null is not None:
            verdict = audit_pair(candidate, trusted, setup, null=null, pair=pair).verdict
            outcome.sweep_failed, outcome.sweep_cell = verdict.failed, verdict.worst.key
            outcome.sweep_z = verdict.z[verdict.worst]
        evaluation.outcomes.append(outcome)
        if progress is not None:
            progress("Pairing zoo models", done, len(models))
    return evaluation
