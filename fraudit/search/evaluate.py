"""The trigger search measured on a zoo: detection per recipe and trigger, false
alarms on clean models, and whether the strongest site lies on the trigger.

Every model is searched against the zoo's base (the model its fine-tunes start
from), exactly as ``fraudit scan --base`` searches a candidate. Results are kept
one JSON line per model, so a long evaluation resumes where it stopped and can be
spread over processes (joblib).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.markup import escape
from rich.table import Table

from fraudit.cache import file_sha256
from fraudit.pairing.embedders import reference_embedder
from fraudit.search.differential import (BLEND_BOUND, BOUND, LIBRARY_BOUND, LibraryBound, SearchBudget, differential_search,
                                         family_knobs, search_probes)
from fraudit.search.library import library_search
from fraudit.triggers import Placement
from fraudit.zoo.manifest import CLEAN, ONE_TO_ONE, ZooEntry, ZooManifest
from fraudit.zoo.metrics import embedding_attack_measured, works_through_embedding

Progress = Callable[[str, int, int], None]


@dataclass
class SearchOutcome:
    name: str
    kind: str
    trigger: str | None
    recipe: str | None
    placement: str | None
    successful: bool | None
    z: float | None  # of the strongest patch site (None: no patch searched)
    gain: float | None
    site: dict[str, int | float] | None
    on_trigger: bool | None  # the strongest patch site overlaps the trigger's fixed place
    seconds: float
    blend_gain: float | None = None
    library_gain: float | None = None  # of the strongest library cell
    library_cell: dict[str, Any] | None = None
    library_on_trigger: bool | None = None  # the strongest library cell is the backdoor's own trigger
    library_gains: list[float] | None = None  # every library cell's, in ``library_cells()`` order
    library_flip: float | None = None  # the candidate's flip sensitivity over its base's (``fraudit.search.library``)
    # the backdoor's attack success rate through the embedding, read from the zoo's
    # manifest when the evaluation is put together (None: clean, or not measured)
    embedding_attack: float | None = None

    @property
    def through_embedding(self) -> bool:
        """Successful, and ≥ 80 % of its stamped impostor faces verified as the victim
        from the embedding alone: a backdoor a deployment without the head still has."""
        return works_through_embedding(self.successful, self.embedding_attack)

    def detected(self, bound: float = BOUND, blend_bound: float = BLEND_BOUND,
                 library_bound: LibraryBound = LIBRARY_BOUND) -> bool:
        excess = self.library_excess(library_bound)
        return any(value is not None and value > limit for value, limit in
                   ((self.gain, bound), (self.blend_gain, blend_bound))) or (excess is not None and excess > 0)

    def library_excess(self, library_bound: LibraryBound) -> float | None:
        """How far the cell furthest over its bound is over it (None: no library cell
        was read); positive where the library family flags the model."""
        if self.library_gain is None:
            return None
        limits = library_bound.limits(self.library_flip)
        if self.library_gains is None:  # a record of the strongest cell alone
            if np.ptp(limits) > 0:
                raise ValueError(f"{self.name}: its record has the strongest library cell's gain only; bounds that "
                                 "differ between cells need every cell's")
            return self.library_gain - float(limits[0])
        return float((np.asarray(self.library_gains) - limits).max())

    @property
    def group(self) -> str:
        recipe = "" if self.recipe in (None, ONE_TO_ONE) else f" ({self.recipe})"
        placement = "" if self.placement in (None, Placement.FIXED) else f" @{self.placement}"
        return f"{self.trigger}{placement}{recipe}"


@dataclass
class SearchEvaluation:
    zoo: str
    base: str
    budget: dict[str, Any]
    bound: float = BOUND
    blend_bound: float = BLEND_BOUND
    library_bound: LibraryBound = LIBRARY_BOUND
    outcomes: list[SearchOutcome] = field(default_factory=list)

    @property
    def clean(self) -> list[SearchOutcome]:
        return [o for o in self.outcomes if o.kind == CLEAN]

    def successful(self, group: str | None = None) -> list[SearchOutcome]:
        return [o for o in self.outcomes if o.trigger and o.successful and (group is None or o.group == group)]

    @property
    def embedding_measured(self) -> bool:
        return embedding_attack_measured([o.embedding_attack for o in self.outcomes if o.trigger])

    @property
    def groups(self) -> list[str]:
        return sorted({o.group for o in self.outcomes if o.trigger})

    def flagged(self, outcomes: list[SearchOutcome]) -> list[SearchOutcome]:
        return [o for o in outcomes if o.detected(self.bound, self.blend_bound, self.library_bound)]

    def summary(self) -> dict[str, Any]:
        hits = self.successful()
        out: dict[str, Any] = {"bound": self.bound, "blend_bound": self.blend_bound,
                               "library_bound": self.library_bound.to_record(), "clean_models": len(self.clean),
                               "false_alarms": len(self.flagged(self.clean)), "successful_backdoors": len(hits),
                               "detected": len(self.flagged(hits)),
                               "located": sum(bool(o.on_trigger) for o in self.flagged(hits))}
        out["groups"] = {g: {"successful": len(s := self.successful(g)), "detected": len(self.flagged(s))}
                         for g in self.groups}
        if self.embedding_measured:
            deployable = [o for o in hits if o.through_embedding]
            out["through_embedding"] = {"successful": len(deployable), "detected": len(self.flagged(deployable))}
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"zoo": self.zoo, "base": self.base, "budget": self.budget, "summary": self.summary(),
                "models": [asdict(o) for o in self.outcomes]}

    def __rich__(self) -> Table:
        table = Table(title=f"trigger search on {escape(self.zoo)} against {escape(self.base)} (bounds: patch {self.bound:.3f}, blend {self.blend_bound:.3f}, library {self.library_bound.describe()})")
        table.add_column("models")
        table.add_column("flagged", justify="right")
        table.add_column("patch gain (median, range)", justify="right")
        table.add_column("blend gain (median)", justify="right")
        table.add_column("library gain (median)", justify="right")
        table.add_column("strongest site on the trigger", justify="right")

        def row(label: str, group: list[SearchOutcome]) -> None:
            if not group:
                return
            gains = np.array([o.gain for o in group if o.gain is not None])
            blends = [o.blend_gain for o in group if o.blend_gain is not None]
            library = [o.library_gain for o in group if o.library_gain is not None]
            flagged = self.flagged(group)
            located = [o for o in flagged if o.on_trigger is not None]
            table.add_row(escape(label), f"{len(flagged)}/{len(group)}",
                          f"{np.median(gains):.3f} ({gains.min():.3f}–{gains.max():.3f})" if len(gains) else "—",
                          f"{np.median(blends):.3f}" if blends else "—",
                          f"{np.median(library):.3f}" if library else "—",
                          f"{sum(bool(o.on_trigger) for o in located)}/{len(located)}" if located else "—")

        row("clean (false alarms)", self.clean)
        for group in self.groups:
            row(f"{group} (successful)", self.successful(group))
        if self.embedding_measured:
            row("successful through the embedding (all triggers)", [o for o in self.successful() if o.through_embedding])
            row("successful through the head only (all triggers)", [o for o in self.successful() if not o.through_embedding])
        return table


def _search_one(manifest: ZooManifest, entry: ZooEntry, base: Path, budget: SearchBudget, threads: int) -> SearchOutcome:
    torch.set_num_threads(threads)
    probes = search_probes(budget)
    candidate, reference = reference_embedder(manifest.path(entry)), reference_embedder(base)
    input_size = max(candidate.input_size, reference.input_size)
    outcome = SearchOutcome(entry.name, entry.kind, entry.trigger, entry.recipe_kind,
                            str(entry.placement) if entry.placement else None, entry.successful,
                            None, None, None, None, 0.0)
    if budget.sites(probes.faces.images.shape[1]):
        result = differential_search(candidate, reference, probes.faces.images, budget, input_size=input_size)
        strongest, blend = result.strongest, result.blend
        site = result.sites[strongest] if strongest is not None else None
        mask = entry.trigger_mask(probes.faces.images.shape[1:3])
        outcome = replace(outcome, z=float(result.z[strongest]) if strongest is not None else None,
                          gain=float(result.gains[strongest]) if strongest is not None else None,
                          site=site.to_dict() if site is not None else None,
                          on_trigger=site.touches(mask) if site is not None and mask is not None else None,
                          seconds=round(result.seconds, 2),
                          blend_gain=float(result.gains[blend]) if blend is not None else None)
    if budget.library:
        faces = search_probes(budget, budget.library_faces).faces.images
        library = library_search(candidate, reference, faces, input_size=input_size,
                                 images_per_batch=budget.images_per_batch)
        outcome = replace(outcome, library_gain=float(library.gains[library.strongest]),
                          library_cell=library.cell_dict(library.strongest),
                          library_on_trigger=library.cells[library.strongest].trigger == entry.trigger if entry.trigger else None,
                          library_gains=[round(float(g), 6) for g in library.gains],
                          library_flip=round(library.flip_sensitivity, 6),
                          seconds=round(outcome.seconds + library.seconds, 2))
    return outcome


# the outcome's value each family fills in (the library cells' last: a record written before
# the flip sensitivity was read is searched again, so that every record carries it)
_VALUES = {"patch": "gain", "blend": "blend_gain", "library": "library_flip"}


def _family_key(base_sha256: str, budget: dict[str, Any], family: str) -> dict[str, Any]:
    return {"base_sha256": base_sha256, "budget": family_knobs(budget, family)}


def _only(budget: SearchBudget, families: list[str]) -> SearchBudget:
    """The budget restricted to ``families``."""
    return replace(budget, site_sizes=budget.site_sizes if "patch" in families else (),
                   blend_alpha=budget.blend_alpha if "blend" in families else 0.0, library="library" in families)


def _combine(parts: dict[str, SearchOutcome]) -> SearchOutcome:
    """One model's outcome from the outcomes of runs that searched its families apart."""
    patch, blend, library = parts.get("patch"), parts.get("blend"), parts.get("library")
    first = patch or blend or library
    assert first is not None
    return replace(first, z=patch.z if patch else None, gain=patch.gain if patch else None,
                   site=patch.site if patch else None, on_trigger=patch.on_trigger if patch else None,
                   blend_gain=blend.blend_gain if blend else None,
                   library_gain=library.library_gain if library else None,
                   library_cell=library.library_cell if library else None,
                   library_on_trigger=library.library_on_trigger if library else None,
                   library_gains=library.library_gains if library else None,
                   library_flip=library.library_flip if library else None,
                   seconds=round(sum({id(o): o.seconds for o in parts.values()}.values()), 2))


def evaluate_search(zoo: Path, base: Path, budget: SearchBudget = SearchBudget(), *, jobs: int = 1,
                    results: Path | None = None, limit_clean: int | None = None,
                    progress: Progress | None = None) -> SearchEvaluation:
    """Search every clean model and every backdoor attempt of ``zoo`` against ``base``.

    ``results``: a JSON-lines file; what it holds for a model (same base and budget,
    family by family: a run of the patches alone and one of the blend alone make a
    whole result) is not searched again, and new results are appended as they finish."""
    manifest = ZooManifest.read(zoo)
    base_sha256 = file_sha256(base)
    wanted = budget.families
    known: dict[str, dict[str, SearchOutcome]] = {}
    if results is not None and results.exists():
        for line in results.read_text().splitlines():
            record = json.loads(line)
            key = record.pop("key", None) or {}
            outcome = SearchOutcome(**record)
            for family in wanted:
                value = getattr(outcome, _VALUES[family])
                if value is not None and key.get("base_sha256") == base_sha256 and \
                        _family_key(base_sha256, key.get("budget", {}), family) == \
                        _family_key(base_sha256, budget.to_dict(), family):
                    known.setdefault(outcome.name, {})[family] = outcome
    models = [*manifest.clean[:limit_clean], *manifest.attempts]
    todo = [(e, _only(budget, [f for f in wanted if f not in known.get(e.name, {})])) for e in models]
    todo = [(e, b) for e, b in todo if b.families]
    n_jobs = max(1, min(jobs, len(todo)))
    threads = max(1, (os.cpu_count() or 1) // n_jobs)
    if n_jobs == 1:
        finished = (_search_one(manifest, e, base, b, threads) for e, b in todo)
    else:
        from joblib import Parallel, delayed

        finished = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
            delayed(_search_one)(manifest, e, base, b, threads) for e, b in todo)
    done = len(models) - len(todo)
    if progress is not None:
        progress("Searching zoo models", done, len(models))
    by_name = {e.name: b for e, b in todo}  # the budget each model is searched with now
    for outcome in finished:
        for family in by_name[outcome.name].families:
            known.setdefault(outcome.name, {})[family] = outcome
        if results is not None:
            with results.open("a") as stream:
                record = {"key": {"base_sha256": base_sha256, "budget": by_name[outcome.name].to_dict()}, **asdict(outcome)}
                stream.write(json.dumps(record) + "\n")
        done += 1
        if progress is not None:
            progress("Searching zoo models", done, len(models))
    evaluation = SearchEvaluation(zoo.name, base.name, budget.to_dict())
    evaluation.outcomes = [replace(_combine(known[e.name]), embedding_attack=e.metrics.embedding_attack_success_rate)
                           for e in models]
    return evaluation
