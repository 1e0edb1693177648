"""Pairing as one audit step: calibrate a candidate against a trusted model on
unlabelled faces, sweep the trigger library over probe identities, judge against
clean pairs. The ``PairingSetup`` names everything a null must share with the
candidate's sweep, so a null is never reused across setups that differ."""

from __future__ import annotations

import enum
from functools import lru_cache
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fraudit.faces.sources import SYNTHETIC, Probes, calibration_faces, probe_identities
from fraudit.pairing.embedders import Embedder, embed_cached
from fraudit.pairing.pair import PairCalibration, TranslatorKind, calibrate
from fraudit.pairing.sweep import SweepNull, SweepRun, default_cells, run_sweep, stamped_probes



class Direction(enum.StrEnum):
    """Which model's embeddings the translator maps into the other's space."""

    CANDIDATE_TO_TRUSTED = "candidate-to-trusted"
    TRUSTED_TO_CANDIDATE = "trusted-to-candidate"


@dataclass(frozen=True)
class PairingSetup:
    faces: str = SYNTHETIC
    n_faces: int = 2_000
    translator: TranslatorKind = TranslatorKind.LEAST_SQUARES
    direction: Direction = Direction.CANDIDATE_TO_TRUSTED
    probes: str = SYNTHETIC
    n_identities: int = 100
    per_identity: int = 4
    sweep_seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, enum.Enum) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> PairingSetup:
        values = dict(payload)
        values["translator"] = TranslatorKind(values["translator"])
        values["direction"] = Direction(values["direction"])
        return cls(**values)

    def null_key(self, trusted: Embedder) -> dict[str, Any]:
        """What a sweep null depends on: everything but the candidate."""
        return {**self.to_dict(), "trusted": trusted.fingerprint}


def pair_models(candidate: Embedder, trusted: Embedder, setup: PairingSetup, *,
                info: dict[str, Any] | None = None,
                progress: Callable[[str, int, int], None] | None = None) -> PairCalibration:
    faces = calibration_faces(setup.faces, n=setup.n_faces)
    c, t = (embed_cached(model, faces.images, progress=_stage(progress, f"Embedding calibration faces ({model.name})"))
            for model in (candidate, trusted))
    probe, reference = (c, t) if setup.direction is Direction.CANDIDATE_TO_TRUSTED else (t, c)
    return calibrate(probe, reference, kind=setup.translator, info={
        "faces": faces.source, "candidate": candidate.name, "candidate_fingerprint": candidate.fingerprint,
        "candidate_architecture": candidate.architecture,
        "trusted": trusted.name, "trusted_fingerprint": trusted.fingerprint,
        "probe_side": "candidate" if setup.direction is Direction.CANDIDATE_TO_TRUSTED else "trusted",
        "setup": setup.to_dict(), **(info or {}),
    })


@dataclass(frozen=True)
class SweepInputs:
    probes: Probes
    stamped: dict[str, np.ndarray]


def _stage(progress: Callable[[str, int, int], None] | None, stage: str) -> Callable[[int, int], None] | None:
    return None if progress is None else (lambda done, total: progress(stage, done, total))


@lru_cache(maxsize=2)  # a batch scan sweeps every candidate over the same stamped probes
def sweep_inputs(setup: PairingSetup) -> SweepInputs:
    probes = probe_identities(setup.probes, n_identities=setup.n_identities, per_identity=setup.per_identity)
    return SweepInputs(probes, stamped_probes(probes, default_cells(), seed=setup.sweep_seed))


def sweep_pair(pair: PairCalibration, candidate: Embedder, trusted: Embedder, inputs: SweepInputs,
               *, progress: Callable[[str, int, int], None] | None = None) -> SweepRun:
    return run_sweep(pair, candidate, trusted, inputs.probes, inputs.stamped,
                     progress=_stage(progress, "Sweeping triggers"))


def build_null(
    clean: Sequence[Embedder],
    trusted: Embedder,
    setup: PairingSetup,
    *,
    progress: Callable[[str, int, int], None] | None = None,
) -> SweepNull:
    """Pair every clean model with the trusted one and sweep it: the null of the sweep."""
    inputs = sweep_inputs(setup)
    runs = []
    for i, model in enumerate(clean):
        runs.append(sweep_pair(pair_models(model, trusted, setup), model, trusted, inputs))
        if progress is not None:
            progress("Sweeping clean pairs", i + 1, len(clean))
    return SweepNull.from_runs(runs, setup=setup.null_key(trusted), pairs=[m.name for m in clean])


def reference_null_path(arch_id: str, trusted: Embedder) -> Path:
    """Where fraudit ships the null for an architecture paired with a trusted model."""
    from fraudit.faces.generator import vendored_dir

    return vendored_dir().parent / "pairing" / f"{arch_id}--{trusted.name}.null.json"
