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

import enum
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import t as student_t

from fraudit import __version__
from fraudit.artifacts import read_json_object
from fraudit.cache import file_sha256
from fraudit.errors import CorruptFileError, IncompatibleArtifactError
from fraudit.faces.sources import Probes
from fraudit.pairing.embedders import Embedder, embed_cached
from fraudit.pairing.pair import PairCalibration
from fraudit.resources import verify_shipped
from fraudit.triggers import Placement, get_trigger, stamp, trigger_library

SWEEP_FNMR = 0.01  # the pair threshold a stamped face is flagged at
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


class Statistic(enum.StrEnum):
    DISAGREEMENT = "disagreement"
    CONVERGENCE = "convergence"


@dataclass(frozen=True, order=True)
class Row:
    """One row of the sweep: a (trigger, placement) cell read through one statistic."""

    cell: str  # a Cell.key, "trigger@placement"
    statistic: Statistic

    @property
    def key(self) -> str:
        """The row's name in JSON documents and null files."""
        return f"{self.cell} {self.statistic}"

    @classmethod
    def parse(cls, key: str) -> Row:
        cell, _, statistic = key.rpartition(" ")
        return cls(cell, Statistic(statistic))

    def __str__(self) -> str:
        return self.key


def unit_centred(x: np.ndarray, mean: np.ndarray) -> np.ndarray:
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

    def statistics(self) -> dict[Row, float]:
        rates = self.flag_rates()
        out = {}
        for key in self.scores:
            out[Row(key, Statistic.DISAGREEMENT)] = rates[key]
            out[Row(key, Statistic.CONVERGENCE)] = float(np.linalg.norm(self.shifts[key].mean(axis=0)))
        return out

    def identity_shares(self, row: Row) -> np.ndarray:
        """Per probe identity: its share of flagged faces (disagreement), or how far its
        faces moved along the common shift (convergence)."""
        if row.statistic is Statistic.DISAGREEMENT:
            per_face = (self.scores[row.cell] < self.threshold).astype(np.float64)
        else:
            shifts = self.shifts[row.cell]
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
    clean_unit = unit_centred(clean_candidate, centre)
    scores, shifts = {}, {}
    for done, (key, images) in enumerate(stamped.items(), start=1):
        c = embed_cached(candidate, images)
        scores[key] = pair.score_sides(c, embed_cached(trusted, images))
        shifts[key] = unit_centred(c, centre) - clean_unit
        if progress is not None:
            progress(done, len(stamped))
    return SweepRun(pair.threshold(SWEEP_FNMR), pair.score_sides(clean_candidate, clean_trusted),
                    scores, shifts, probes.faces.labels)


@dataclass
class SweepNull:
    """The sweep's statistics on clean pairs over the same stamped probes."""

    values: dict[Row, list[float]]  # one value per clean pair
    n_faces: int
    setup: dict[str, Any] = field(default_factory=dict)  # what must match to reuse it
    pairs: list[str] = field(default_factory=list)
    sha256: str | None = None  # of the file it was loaded from: what a registry pins

    @classmethod
    def from_runs(cls, runs: list[SweepRun], *, setup: dict[str, Any], pairs: list[str]) -> SweepNull:
        stats = [r.statistics() for r in runs]
        return cls({k: [s[k] for s in stats] for k in stats[0]}, len(runs[0].labels), setup, pairs)

    def require_setup(self, key: dict[str, Any], *, name: str = "the null") -> None:
        """Refuse a null built with another setup or trusted model: its spread would be another's."""
        if self.setup != key:
            raise IncompatibleArtifactError(f"{name} was built with another setup or trusted model; rebuild it")

    def mean(self, row: Row) -> float:
        return float(np.mean(self.values[row]))

    def max(self, row: Row) -> float:
        return float(np.max(self.values[row]))

    def z_scores(self, statistics: dict[Row, float]) -> dict[Row, float]:
        z = {}
        for key, value in statistics.items():
            null = np.asarray(self.values[key])
            spread = float(null.std(ddof=1))
            if key.statistic is Statistic.DISAGREEMENT:  # never below the binomial noise of a share
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
                   "pairs": self.pairs, "values": {row.key: v for row, v in self.values.items()}}
        body = json.dumps(payload, indent=2, sort_keys=True)
        payload["sha256"] = hashlib.sha256(body.encode()).hexdigest()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, path: Path) -> SweepNull:
        """A null file: a shipped one must match the digest pinned in fraudit; any one
        must match its own sha256 and be consistent (one finite value per clean pair in
        every row, every row of the trigger library present)."""
        payload = read_json_object(path, kind="a sweep null", missing=f"{path}: no such sweep null")
        file_digest = verify_shipped(path) or file_sha256(path)
        digest = payload.pop("sha256", None)
        if hashlib.sha256(json.dumps(payload, indent=2, sort_keys=True).encode()).hexdigest() != digest:
            raise CorruptFileError(f"{path}: sweep null does not match its sha256; refusing a tampered file", path=path)
        try:
            values = {Row.parse(key): [float(v) for v in values] for key, values in payload["values"].items()}
            null = cls(values, int(payload["n_faces"]), payload["setup"], list(payload["pairs"]), file_digest)
            null.validate()
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CorruptFileError(f"{path}: not a consistent sweep null ({type(exc).__name__}: {exc})", path=path) from exc
        return null

    def validate(self) -> None:
        """Raise ``ValueError`` unless every row holds one finite value per clean pair
        (at least three) and the rows are the library's cells × both statistics."""
        n = len(self.pairs)
        if n < 3:
            raise ValueError(f"{n} clean pairs; a null needs at least 3")
        if self.n_faces <= 0:
            raise ValueError("no probe faces")
        for row, values in self.values.items():
            if len(values) != n or not all(np.isfinite(values)):
                raise ValueError(f"row {row.key} does not hold one finite value per clean pair")
        expected = {Row(cell.key, statistic) for cell in default_cells() for statistic in Statistic}
        if set(self.values) != expected:
            raise ValueError("its rows are not the trigger library's cells × statistics")


@dataclass(frozen=True)
class Finding:
    row: Row
    value: float
    null_mean: float
    z: float
    identities: list[tuple[str, float]]  # the probe identities that carry it most

    @property
    def cell(self) -> str:
        return self.row.cell

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row.key, "value": self.value, "null_mean": self.null_mean, "z": self.z,
                "identities": [list(i) for i in self.identities], "cell": self.cell}


@dataclass
class SweepVerdict:
    statistics: dict[Row, float]
    z: dict[Row, float]
    bound: float
    false_alarm: float
    clean_flag_rate: float
    findings: list[Finding]

    @property
    def failed(self) -> bool:
        return bool(self.findings)

    @property
    def worst(self) -> Row:
        return max(self.z, key=self.z.__getitem__)

    def ranked(self) -> list[Row]:
        """Rows from the highest z down."""
        return sorted(self.z, key=self.z.__getitem__, reverse=True)

    def to_dict(self) -> dict[str, Any]:
        return {
            "statistics": {row.key: v for row, v in self.statistics.items()},
            "z": {row.key: v for row, v in self.z.items()},
            "bound_z": self.bound, "false_alarm": self.false_alarm,
            "clean_flag_rate": self.clean_flag_rate,
            "findings": [f.to_dict() for f in self.findings], "limits": LIMITS,
        }


def judge(run: SweepRun, null: SweepNull, probes: Probes, *, false_alarm: float = DEFAULT_FALSE_ALARM,
          top: int = 5) -> SweepVerdict:
    statistics = run.statistics()
    z = null.z_scores(statistics)
    bound = null.bound(false_alarm)
    findings = []
    for row in sorted(z, key=z.__getitem__, reverse=True):
        if z[row] <= bound:
            break
        shares = run.identity_shares(row)
        order = np.argsort(-shares, kind="stable")[:top]
        findings.append(Finding(row, statistics[row], null.mean(row), z[row],
                                [(probes.identities[i], float(shares[i])) for i in order]))
    return SweepVerdict(statistics, z, bound, false_alarm, run.clean_flag_rate, findings)


def describe(finding: Finding, trusted: str) -> str:
    """One sentence on what a finding measured, against its clean-pair mean."""
    if finding.row.statistic is Statistic.DISAGREEMENT:
        return (f"{100 * finding.value:.0f}% of stamped probe faces disagree with {trusted} "
                f"(clean pairs {100 * finding.null_mean:.0f}%)")
    return (f"stamped faces of every probe identity shift together (mean shift {finding.value:.3f}, "
            f"clean models {finding.null_mean:.3f}): the pull of a backdoor toward one victim")
