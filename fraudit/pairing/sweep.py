"""The offline trigger sweep (beyond the thesis): fraudit plays the attacker.

Every trigger of the zoo's library, at every placement, is stamped on probe faces
of many identities. For each stamped face the calibrated pair scores how well the
candidate's (translated) embedding agrees with the trusted model's; a score below
the pair's threshold is a flag. A backdoor drags the candidate's embedding of a
triggered face towards its victim while the trusted model still sees the person,
so its trigger's cells light up.

The statistic of a (trigger, placement) row is its flag rate over all probe faces;
each identity's own flag rate localises the finding. What a clean pair's rows look
like — the trigger itself moves a trusted model trained on real faces — comes from
clean pairs swept over the *same* faces (``SweepNull``); a row's excess over that
null is a z-score, and the sweep FAILs when the largest one passes the Bonferroni
bound for the stated false-alarm rate.

The trusted side of every stamped face does not depend on the candidate and is
cached, so an audit costs only the candidate's forward passes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import norm

from fraudit import __version__
from fraudit.errors import CorruptFileError
from fraudit.faces.sources import Probes
from fraudit.pairing.embedders import Embedder, embed_cached
from fraudit.pairing.pair import PairCalibration
from fraudit.zoo.triggers import Placement, get_trigger, stamp, trigger_library

SWEEP_FNMR = "1%"  # the pair threshold a stamped face is flagged at
DEFAULT_FALSE_ALARM = 0.01
# A row's null spread is never taken below the binomial noise of its flag rate at
# this base rate: a handful of clean pairs can agree by chance to the third decimal.
MIN_NULL_RATE = 0.01
LIMITS = (
    "covers only the triggers of fraudit's library at its placements, and identities "
    "like the probe faces; a trigger of another shape, size or place, or a backdoor "
    "that fires only for an impostor far from every probe identity, can pass"
)


@dataclass(frozen=True)
class Cell:
    trigger: str
    placement: Placement

    @property
    def key(self) -> str:
        return f"{self.trigger}@{self.placement}"


def default_cells() -> tuple[Cell, ...]:
    return tuple(Cell(t, p) for t in trigger_library() for p in Placement)


def stamped_probes(probes: Probes, cells: tuple[Cell, ...], *, seed: int = 0) -> dict[str, np.ndarray]:
    """Each cell's stamped copy of every probe face (random placements seeded per cell)."""
    out = {}
    for index, cell in enumerate(cells):
        rng = np.random.default_rng([seed, index])
        out[cell.key] = stamp(probes.faces.images, get_trigger(cell.trigger), cell.placement, rng=rng)
    return out


@dataclass
class SweepRun:
    """One pair's pass over the stamped probes: scores per cell, flag rates per row."""

    threshold: float
    clean_scores: np.ndarray
    scores: dict[str, np.ndarray]
    labels: np.ndarray

    @property
    def clean_flag_rate(self) -> float:
        return float(np.mean(self.clean_scores < self.threshold))

    def flag_rates(self) -> dict[str, float]:
        return {key: float(np.mean(s < self.threshold)) for key, s in self.scores.items()}

    def identity_flag_rates(self, key: str) -> np.ndarray:
        flagged = self.scores[key] < self.threshold
        counts = np.bincount(self.labels, minlength=self.labels.max() + 1)
        return np.bincount(self.labels, weights=flagged, minlength=len(counts)) / np.maximum(counts, 1)


def run_sweep(
    pair: PairCalibration,
    candidate: Embedder,
    trusted: Embedder,
    probes: Probes,
    stamped: dict[str, np.ndarray],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> SweepRun:
    """Score every clean and stamped probe face through the pair."""
    def scores(images: np.ndarray) -> np.ndarray:
        return pair.score_sides(embed_cached(candidate, images), embed_cached(trusted, images))

    clean = scores(probes.faces.images)
    per_cell = {}
    for done, (key, images) in enumerate(stamped.items(), start=1):
        per_cell[key] = scores(images)
        if progress is not None:
            progress(done, len(stamped))
    return SweepRun(float(pair.thresholds[SWEEP_FNMR]), clean, per_cell, probes.faces.labels)


@dataclass
class SweepNull:
    """Flag rates of clean pairs on the same stamped probes: the sweep's null."""

    rates: dict[str, list[float]]  # cell key -> one flag rate per clean pair
    n_faces: int
    setup: dict[str, Any] = field(default_factory=dict)  # what must match to reuse it
    pairs: list[str] = field(default_factory=list)

    @classmethod
    def from_runs(cls, runs: list[SweepRun], *, setup: dict[str, Any], pairs: list[str]) -> SweepNull:
        if len(runs) < 2:
            raise ValueError("a sweep null needs at least two clean pairs")
        keys = list(runs[0].scores)
        return cls({k: [r.flag_rates()[k] for r in runs] for k in keys}, len(runs[0].labels), setup, pairs)

    def z_scores(self, rates: dict[str, float]) -> dict[str, float]:
        z = {}
        for key, rate in rates.items():
            null = np.asarray(self.rates[key])
            floor = max(float(null.mean()), MIN_NULL_RATE)
            spread = max(float(null.std(ddof=1)), np.sqrt(floor * (1 - floor) / self.n_faces))
            z[key] = float((rate - null.mean()) / spread)
        return z

    def bound(self, false_alarm: float = DEFAULT_FALSE_ALARM) -> float:
        """The z a row must pass: Bonferroni over the rows, one-sided."""
        return float(norm.isf(false_alarm / len(self.rates)))

    def save(self, path: Path) -> Path:
        payload = {"fraudit_version": __version__, "n_faces": self.n_faces, "setup": self.setup,
                   "pairs": self.pairs, "rates": self.rates}
        body = json.dumps(payload, indent=2, sort_keys=True)
        payload["sha256"] = hashlib.sha256(body.encode()).hexdigest()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, path: Path) -> SweepNull:
        payload = json.loads(path.read_text())
        digest = payload.pop("sha256", None)
        if hashlib.sha256(json.dumps(payload, indent=2, sort_keys=True).encode()).hexdigest() != digest:
            raise CorruptFileError(f"{path}: sweep null does not match its sha256; refusing a tampered file")
        return cls(payload["rates"], payload["n_faces"], payload["setup"], payload["pairs"])


@dataclass(frozen=True)
class Finding:
    cell: str
    flag_rate: float
    null_mean: float
    z: float
    identities: list[tuple[str, float]]  # most flagged probe identities


@dataclass
class SweepVerdict:
    rates: dict[str, float]
    z: dict[str, float]
    bound: float
    false_alarm: float
    clean_flag_rate: float
    findings: list[Finding]

    @property
    def failed(self) -> bool:
        return bool(self.findings)

    @property
    def worst(self) -> str:
        return max(self.z, key=self.z.get)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        return {
            "flag_rates": self.rates, "z": self.z, "bound_z": self.bound, "false_alarm": self.false_alarm,
            "clean_flag_rate": self.clean_flag_rate, "findings": [asdict(f) for f in self.findings],
            "limits": LIMITS,
        }


def judge(run: SweepRun, null: SweepNull, probes: Probes, *, false_alarm: float = DEFAULT_FALSE_ALARM,
          top: int = 5) -> SweepVerdict:
    rates = run.flag_rates()
    z = null.z_scores(rates)
    bound = null.bound(false_alarm)
    findings = []
    for key in sorted(z, key=z.get, reverse=True):  # type: ignore[arg-type]
        if z[key] <= bound:
            break
        per_identity = run.identity_flag_rates(key)
        order = np.argsort(-per_identity, kind="stable")[:top]
        findings.append(Finding(key, rates[key], float(np.mean(null.rates[key])), z[key],
                                [(probes.identities[i], float(per_identity[i])) for i in order]))
    return SweepVerdict(rates, z, bound, false_alarm, run.clean_flag_rate, findings)
