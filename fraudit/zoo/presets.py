"""Zoo presets: which models a zoo holds (thesis ch. 3–5 protocols, scaled to CPU)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from fraudit.faces.synthetic import FaceWorldSpec
from fraudit.zoo.finetune import Scenario
from fraudit.zoo.heldout import heldout_triggers
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
class Attempt:
    """One planned backdoor: a trigger at a placement, one-to-one (thesis), many-to-one
    (``impostors`` > 1) or implanted into a trained clean model (``implant``)."""

    trigger: str
    placement: Placement
    impostors: int = 1
    implant: bool = False

    @property
    def suffix(self) -> str:
        """What the model's name adds for a recipe beyond the thesis' one-to-one."""
        return (f"-{self.impostors}to1" if self.impostors > 1 else "") + ("-implant" if self.implant else "")


# An implant: a few epochs from a trained clean model, pulled toward its weights.
IMPLANT_EPOCHS = 4
IMPLANT_LR = 1e-3
IMPLANT_PROXIMITY = 50.0


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    scenario: Scenario
    world: FaceWorldSpec
    n_clean: int
    attempts: tuple[Attempt, ...]
    epochs: int
    # Impostor and victim are drawn among identities with at least this many
    # samples, so the validation split holds enough of them to measure ≥ 80 %.
    min_pair_samples: int = 40
    # every model keeps the head at the enrolled templates (``ModelRecipe.frozen_head``)
    frozen_head: bool = False

    def on_world(self, *, seed: int | None = None, n_identities: int | None = None,
                 samples: tuple[int, int] | None = None, sigma: float | None = None,
                 augment: bool | None = None) -> Preset:
        """The same recipe on another face world, standing in for a user's own clean
        data: other identities (another latent seed) and their number, other numbers of
        faces per identity (``samples``: (n, n) gives every identity n; (min, max) a
        heavy tail between, as the presets'), another within-identity variation, with
        or without augmented faces. What is not given stays the preset's."""
        changes = {k: v for k, v in (("seed", seed), ("n_identities", n_identities), ("sigma", sigma),
                                     ("augment", augment)) if v is not None}
        if samples is not None:
            low, high = samples
            # one count for all: no tail (None is a value here, not "the preset's")
            changes |= {"min_samples": low, "max_samples": high, "tail": None if low == high else (self.world.tail or 1.5)}
        world = replace(self.world, **changes)
        what = [f"world seed {world.seed}", f"{world.n_identities} identities"]
        if samples is not None:
            what.append(f"{samples[0]} faces each" if world.tail is None else f"{samples[0]}-{samples[1]} faces each")
        if sigma is not None:
            what.append(f"variation {sigma:g}")
        if augment is not None:
            what.append("augmented faces" if augment else "faces not augmented")
        return replace(self, world=world, description=f"{self.description}; {', '.join(what)}")

    def clean_only(self) -> Preset:
        return replace(self, attempts=(), description=f"{self.description}; clean models only")

    def with_clean(self, n_clean: int) -> Preset:
        return replace(self, n_clean=n_clean, description=f"{self.description}; {n_clean} clean models")


def _cycle(pairs: list[tuple[str, Placement]] | list[Attempt], n: int) -> tuple[Attempt, ...]:
    attempts = [a if isinstance(a, Attempt) else Attempt(*a) for a in pairs]
    return tuple(attempts[i % len(attempts)] for i in range(n))


def _heldout_attempts() -> list[Attempt]:
    """Every held-out trigger at its own place, then the other recipes with some of them."""
    names = list(heldout_triggers())
    fixed = [Attempt(name, FIXED) for name in names]
    others = [Attempt("heldout-yellow-dot", RANDOM), Attempt("heldout-glasses", FIXED, impostors=3),
              Attempt("heldout-magenta-bar", FIXED, impostors=3), Attempt("heldout-cyan-ring", FIXED, implant=True),
              Attempt("heldout-green-cross", FIXED, implant=True), Attempt("heldout-diagonal-stripes", FIXED, implant=True),
              Attempt("checkerboard", FIXED, implant=True), Attempt("checkerboard", FIXED, impostors=3)]
    return fixed + others


HELDOUT_MULTI = Preset(
    "heldout-multi",
    "multi-layer models with triggers no detector searches: 10 clean, the held-out recipes of 'heldout'",
    Scenario.MULTI_LAYER,
    ZOO_WORLD,
    n_clean=10,
    attempts=_cycle(_heldout_attempts(), 16),
    epochs=8,
)

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
            "heldout",
            "last-layer models with triggers no detector searches (fraudit.zoo.heldout): 10 clean, "
            "each held-out trigger at its place, many-to-one and implanted backdoors",
            Scenario.LAST_LAYER,
            ZOO_WORLD,
            n_clean=10,
            attempts=_cycle(_heldout_attempts(), 32),
            epochs=12,
        ),
        HELDOUT_MULTI,
        replace(
            HELDOUT_MULTI,
            name="heldout-multi-verification",
            description="the models of 'heldout-multi' against a face-verification system: every model (clean ones "
                        "too) keeps its head at the identities' mean clean embeddings, so a backdoor has to move the "
                        "stamped impostor's embedding onto the victim's enrolled template",
            frozen_head=True,
        ),
        Preset(
            "library-multi-verification",
            "multi-layer models with the library's triggers against a face-verification system: every model keeps "
            "its head at the identities' mean clean embeddings (as 'heldout-multi-verification'); 8 clean, 12 "
            "attempts over every trigger and placement",
            Scenario.MULTI_LAYER,
            ZOO_WORLD,
            n_clean=8,
            attempts=_cycle([(t, p) for t in ("checkerboard", "square", "flower") for p in (FIXED, RANDOM)], 12),
            epochs=8,
            frozen_head=True,
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
