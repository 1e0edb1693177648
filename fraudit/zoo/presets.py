"""Zoo presets: which models a zoo holds (thesis ch. 3–5 protocols, scaled to CPU)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from fraudit.faces.synthetic import FaceWorldSpec
from fraudit.zoo.finetune import Scenario
from fraudit.triggers import Placement

# The zoo's identity data set, standing in for CASIA-WebFace: 1,000 identities,
# 15-299 samples each (heavy tail), identities disjoint from the base's.
ZOO_WORLD = FaceWorldSpec(seed=2_000, n_identities=1_000, sigma=0.7)
SMOKE_WORLD = FaceWorldSpec(seed=7, n_identities=100, sigma=0.6, max_samples=120)

FIXED, RANDOM = Placement.FIXED, Placement.RANDOM

# Latent seeds whose identities have a job already: a zoo on one of them would train
# on the base's identities or on the faces pairing calibrates and probes with.
RESERVED_SEEDS = {1_000: "the base model's training identities",
                  3_000: "the base's held-out identities and pairing's calibration faces",
                  4_000: "pairing's probe identities"}


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    scenario: Scenario
    world: FaceWorldSpec
    n_clean: int
    attempts: tuple[tuple[str, Placement], ...]
    epochs: int
    # Impostor and victim are drawn among identities with at least this many
    # samples, so the validation split holds enough of them to measure ≥ 80 %.
    min_pair_samples: int = 40

    def on_world(self, *, seed: int | None = None, n_identities: int | None = None) -> Preset:
        """The same recipe on another face world — other identities (another latent
        seed) and their number — standing in for a user's own clean data."""
        world = replace(self.world, **{k: v for k, v in (("seed", seed), ("n_identities", n_identities)) if v is not None})
        return replace(self, world=world, description=f"{self.description}; world seed {world.seed}, "
                                                      f"{world.n_identities} identities")

    def clean_only(self) -> Preset:
        return replace(self, attempts=(), description=f"{self.description}; clean models only")

    def with_clean(self, n_clean: int) -> Preset:
        return replace(self, n_clean=n_clean, description=f"{self.description}; {n_clean} clean models")


def _cycle(pairs: list[tuple[str, Placement]], n: int) -> tuple[tuple[str, Placement], ...]:
    return tuple(pairs[i % len(pairs)] for i in range(n))


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "smoke",
            "a few last-layer models on a 100-identity world, for the tests (≤ 2 min)",
            Scenario.LAST_LAYER,
            SMOKE_WORLD,
            n_clean=8,
            attempts=_cycle([("checkerboard", FIXED)], 2),
            epochs=10,
            min_pair_samples=30,
        ),
        Preset(
            "examples",
            "the shipped example pair: one clean and large-checkerboard attempts (last-layer)",
            Scenario.LAST_LAYER,
            ZOO_WORLD,
            n_clean=1,
            attempts=_cycle([("checkerboard", FIXED)], 6),
            epochs=12,
        ),
        Preset(
            "ch4",
            "last-layer fine-tunes (§4.4): 40 clean, 30 attempts over every trigger and placement",
            Scenario.LAST_LAYER,
            ZOO_WORLD,
            n_clean=40,
            attempts=_cycle(
                [(t, p) for t in ("checkerboard", "square", "flower") for p in (FIXED, RANDOM)], 30
            ),
            epochs=12,
        ),
        Preset(
            "ch4-multi",
            "multi-layer fine-tunes (§4.7): 40 clean, 30 attempts with checkerboard and square",
            Scenario.MULTI_LAYER,
            ZOO_WORLD,
            n_clean=40,
            attempts=_cycle([("checkerboard", FIXED), ("square", FIXED)], 30),
            epochs=8,
        ),
        Preset(
            "ch5",
            "multi-layer models for pairing (§5.3.2): 10 clean, 20 large- and 20 small-trigger attempts",
            Scenario.MULTI_LAYER,
            ZOO_WORLD,
            n_clean=10,
            attempts=_cycle([("checkerboard", FIXED), ("square", FIXED)], 40),
            epochs=8,
        ),
    )
}
