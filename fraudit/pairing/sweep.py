"""The offline trigger sweep (beyond the thesis): fraudit plays the attacker.

Every trigger of the zoo's library, at every placement, is stamped on probe faces
of many identities, and two statistics are read per (trigger, placement) row:

* **disagreement** — the share of stamped faces whose pair score falls below the
  pair's FNMR-1 % threshold: the candidate, translated, stops agreeing with the
  trusted model about who this is (thesis ch. 5, applied before deployment). Each
  identity's own share localises the finding.
* **convergence** — the length of the mean shift the trigger causes in the
  candidate's own (centred, unit) embeddings, ‖mean_i ĉ(stamped_i) − ĉ(face_i)‖. A
  backdoor drags every stamped face toward one victim, so the shifts add up; a
  clean model's shifts mostly cancel. This needs no agreement between the two
  models, which matters when the trusted model shares little with the candidate
  (dlib and a 64×64 CNN: genuine cosine ≈ 0.45 after translation).

What a clean model's rows look like — a trigger moves every model a little, and
moves a trusted model trained on real faces too — comes from clean pairs swept
over the *same* faces (``SweepNull``). A row FAILs when it passes the one-sided
prediction bound of the clean pairs (Student t, Bonferroni over all rows) at the
stated false-alarm rate.

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
from scipy.stats import t as student_t

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


STATISTICS = ("disagreement", "convergence")


def row_key(cell: str, statistic: str) -> str:
    return f"{cell} {statistic}"


def _unit_centred(x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64) - mean
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@dataclass
class SweepRun:
    """One pair's pass over the stamped probes: pair scores and candidate shifts per cell."""

    threshold: float
    clean_scores: np.ndarray
    scores: dict[str, np.ndarray]
    shifts: dict[str, np.ndarray]  # per cell: ĉ(stamped) − ĉ(face), one row per probe face
    labels: np.ndarray

    @property
    def clean_flag_rate(self) -> float:
        return float(np.mean(self.clean_scores < self.threshold))

    def flag_rates(self) -> dict[str, float]:
        return {key: float(np.mean(s < self.threshold)) for key, s in self.scores.items()}

    def statistics(self) -> dict[str, float]:
        rates = self.flag_rates()
        out = {}
        for key in self.scores:
            out[row_key(key, "disagreement")] = rates[key]
            out[row_key(key, "convergence")] = float(np.linalg.norm(self.shifts[key].mean(axis=0)))
        return out

    def identity_shares(self, cell: str, statistic: str) -> np.ndarray:
        """Per probe identity: its share of flagged faces (disagreement), or how far its
        faces moved along the common shift (convergence)."""
        if statistic == "disagreement":
            per_face = (self.scores[cell] < self.threshold).astype(np.float64)
        else:
            shifts = self.shifts[cell]
            direction = shifts.mean(axis=0)
            per_face = shifts @ (direction / max(float(np.linalg.norm(direction)), 1e-12))
        counts = np.bincount(self.labels)
        return np.bincount(self.labels, weights=per_face, minlength=len(counts)) / np.maximum(counts, 1)


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
    clean_candidate = embed_cached(candidate, probes.faces.images)
    clean_trusted = embed_cached(trusted, probes.faces.images)
    centre = clean_candidate.astype(np.float64).mean(axis=0)
    clean_unit = _unit_centred(clean_candidate, centre)
    scores, shifts = {}, {}
    for done, (key, images) in enumerate(stamped.items(), start=1):
        c = embed_cached(candidate, images)
        scores[key] = pair.score_sides(c, embed_cached(trusted, images))
        shifts[key] = _unit_centred(c, centre) - clean_unit
        if progress is not None:
            progress(done, len(stamped))
    return SweepRun(float(pair.thresholds[SWEEP_FNMR]), pair.score_sides(clean_candidate, clean_trusted),
                    scores, shifts, probes.faces.labels)


@dataclass
class SweepNull:
    """The sweep's statistics on clean pairs over the same stamped probes."""

    values: dict[str, list[float]]  # row -> one value per clean pair
    n_faces: int
    setup: dict[str, Any] = field(default_factory=dict)  # what must match to reuse it
    pairs: list[str] = field(default_factory=list)

    @classmethod
    def from_runs(cls, runs: list[SweepRun], *, setup: dict[str, Any], pairs: list[str]) -> SweepNull:
        if len(runs) < 3:
            raise ValueError("a sweep null needs at least three clean pairs")
        stats = [r.statistics() for r in runs]
        return cls({k: [s[k] for s in stats] for k in stats[0]}, len(runs[0].labels), setup, pairs)

    def z_scores(self, statistics: dict[str, float]) -> dict[str, float]:
        z = {}
        for key, value in statistics.items():
            null = np.asarray(self.values[key])
            spread = float(null.std(ddof=1))
            if key.endswith("disagreement"):  # never below the binomial noise of a share
                floor = min(max(float(null.mean()), MIN_NULL_RATE), 0.5)
                spread = max(spread, float(np.sqrt(floor * (1 - floor) / self.n_faces)))
            z[key] = float((value - null.mean()) / max(spread, 1e-9))
        return z

    def bound(self, false_alarm: float = DEFAULT_FALSE_ALARM) -> float:
        """The z a row must pass: a one-sided prediction bound for one more clean pair
        (Student t with n − 1 degrees of freedom), Bonferroni over the rows."""
        n = len(next(iter(self.values.values())))
        return float(student_t.isf(false_alarm / len(self.values), df=n - 1) * np.sqrt(1 + 1 / n))

    def save(self, path: Path) -> Path:
        payload = {"fraudit_version": __version__, "n_faces": self.n_faces, "setup": self.setup,
                   "pairs": self.pairs, "values": self.values}
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
        return cls(payload["values"], payload["n_faces"], payload["setup"], payload["pairs"])


@dataclass(frozen=True)
class Finding:
    row: str
    value: float
    null_mean: float
    z: float
    identities: list[tuple[str, float]]  # the probe identities that carry it most

    @property
    def cell(self) -> str:
        return self.row.split(" ")[0]


@dataclass
class SweepVerdict:
    statistics: dict[str, float]
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
            "statistics": self.statistics, "z": self.z, "bound_z": self.bound, "false_alarm": self.false_alarm,
            "clean_flag_rate": self.clean_flag_rate,
            "findings": [{**asdict(f), "cell": f.cell} for f in self.findings], "limits": LIMITS,
        }


def judge(run: SweepRun, null: SweepNull, probes: Probes, *, false_alarm: float = DEFAULT_FALSE_ALARM,
          top: int = 5) -> SweepVerdict:
    statistics = run.statistics()
    z = null.z_scores(statistics)
    bound = null.bound(false_alarm)
    findings = []
    for key in sorted(z, key=z.get, reverse=True):  # type: ignore[arg-type]
        if z[key] <= bound:
            break
        cell, statistic = key.split(" ")
        shares = run.identity_shares(cell, statistic)
        order = np.argsort(-shares, kind="stable")[:top]
        findings.append(Finding(key, statistics[key], float(np.mean(null.values[key])), z[key],
                                [(probes.identities[i], float(shares[i])) for i in order]))
    return SweepVerdict(statistics, z, bound, false_alarm, run.clean_flag_rate, findings)


def describe(finding: Finding, trusted: str) -> str:
    """One sentence on what a finding measured, against its clean-pair mean."""
    if finding.row.endswith("disagreement"):
        return (f"{100 * finding.value:.0f}% of stamped probe faces disagree with {trusted} "
                f"(clean pairs {100 * finding.null_mean:.0f}%)")
    return (f"stamped faces of every probe identity shift together (mean shift {finding.value:.3f}, "
            f"clean models {finding.null_mean:.3f}): the pull of a backdoor toward one victim")
