"""Pairing as one audit step: calibrate a candidate against a trusted model on
unlabelled faces, sweep the trigger library over probe identities, judge against
clean pairs. The ``PairingSetup`` names everything a null must share with the
candidate's sweep, so a null is never reused across setups that differ.

``audit_pair`` is the one place that does this: the pairing check of ``scan``,
``fraudit pair sweep`` and ``fraudit pair evaluate`` all call it."""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Group
from rich.markup import escape
from rich.table import Table

from fraudit.errors import NotEnoughDataError, SourceNotFoundError
from fraudit.faces.sources import SYNTHETIC, Probes, calibration_faces, probe_identities
from fraudit.pairing.embedders import Embedder, embed_cached
from fraudit.pairing.pair import PairCalibration, TranslatorKind, calibrate
from fraudit.pairing.sweep import (
    DEFAULT_FALSE_ALARM,
    LIMITS,
    SWEEP_FNMR,
    Statistic,
    SweepNull,
    SweepRun,
    SweepVerdict,
    default_cells,
    describe,
    judge,
    run_sweep,
    stamped_probes,
)
from fraudit.pictures import face_row, png_base64
from fraudit.rates import format_rate
from fraudit.resources import pairing_dir

# A null's spread needs at least this many clean pairs (Student t with n − 1 dof).
MIN_NULL_PAIRS = 3
Progress = Callable[[str, int, int], None]


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
                info: dict[str, Any] | None = None, progress: Progress | None = None) -> PairCalibration:
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


def _stage(progress: Progress | None, stage: str) -> Callable[[int, int], None] | None:
    return None if progress is None else (lambda done, total: progress(stage, done, total))


@lru_cache(maxsize=2)  # a batch scan sweeps every candidate over the same stamped probes
def sweep_inputs(setup: PairingSetup) -> SweepInputs:
    probes = probe_identities(setup.probes, n_identities=setup.n_identities, per_identity=setup.per_identity)
    return SweepInputs(probes, stamped_probes(probes, default_cells(), seed=setup.sweep_seed))


def sweep_pair(pair: PairCalibration, candidate: Embedder, trusted: Embedder, inputs: SweepInputs,
               *, progress: Progress | None = None) -> SweepRun:
    return run_sweep(pair, candidate, trusted, inputs.probes, inputs.stamped,
                     progress=_stage(progress, "Sweeping triggers"))


def build_null(clean: Sequence[Embedder], trusted: Embedder, setup: PairingSetup, *,
               progress: Progress | None = None) -> SweepNull:
    """Pair every clean model with the trusted one and sweep it: the null of the sweep."""
    if len(clean) < MIN_NULL_PAIRS:
        raise NotEnoughDataError(f"a null needs at least {MIN_NULL_PAIRS} clean models; found {len(clean)}")
    inputs = sweep_inputs(setup)
    runs = []
    for i, model in enumerate(clean):
        runs.append(sweep_pair(pair_models(model, trusted, setup), model, trusted, inputs))
        if progress is not None:
            progress("Sweeping clean pairs", i + 1, len(clean))
    return SweepNull.from_runs(runs, setup=setup.null_key(trusted), pairs=[m.name for m in clean])


def shipped_null_path(architecture: str, trusted: Embedder) -> Path:
    """Where fraudit ships the null for an architecture paired with a trusted model."""
    return pairing_dir() / f"{architecture}--{trusted.name}.null.json"


class NullNotFoundError(SourceNotFoundError):
    """No clean-pair null exists for this architecture and trusted model."""


def load_null(path: Path | None, *, candidate: Embedder, trusted: Embedder, setup: PairingSetup) -> tuple[SweepNull, Path]:
    """The null a sweep is judged against (``path``, or the shipped one for the
    candidate's architecture), refused unless it was built with this setup."""
    path = path or shipped_null_path(candidate.architecture, trusted)
    if not path.is_file():
        raise NullNotFoundError(
            f"no clean-pair null for {candidate.architecture} with {trusted.name} at {path} (build one with "
            f"'fraudit pair null CLEAN... --trusted TRUSTED --out FILE', pass it with --pair-null / --null)", path=path)
    null = SweepNull.load(path)
    null.require_setup(setup.null_key(trusted), name=path.name)
    return null, path


@dataclass(frozen=True)
class PairingAudit:
    """One candidate paired with a trusted model, swept and judged against clean pairs."""

    pair: PairCalibration
    run: SweepRun
    verdict: SweepVerdict
    null: SweepNull
    null_path: Path | None
    probes: Probes
    trusted: str
    stamped: dict[str, np.ndarray] | None = None  # per cell, the stamped probe faces swept

    @property
    def failed(self) -> bool:
        return self.verdict.failed

    def summary(self) -> str:
        """One line for a report: the strongest finding, or the worst row and the bound."""
        verdict, pairs = self.verdict, len(self.null.pairs)
        rate = format_rate(verdict.false_alarm)
        if verdict.failed:
            top = verdict.findings[0]
            cells = sorted({f.cell for f in verdict.findings},
                           key=lambda c: -max(f.z for f in verdict.findings if f.cell == c))
            names = ", ".join(n for n, _ in top.identities[:3])
            return (f"trigger {top.cell}: {describe(top, self.trusted)} (z={top.z:.1f} > {verdict.bound:.1f}, "
                    f"false alarm {rate}, {pairs} clean pairs); "
                    f"flagged triggers: {', '.join(cells)}; most affected probe identities: {names}")
        worst = verdict.worst
        return (f"no library trigger moves it away from {self.trusted} beyond clean pairs "
                f"(worst {worst}: z={verdict.z[worst]:.1f} ≤ {verdict.bound:.1f}, false alarm "
                f"{rate}, {pairs} clean pairs)")

    def headline(self) -> str:
        """The summary cut to a table row."""
        verdict = self.verdict
        if verdict.failed:
            top = verdict.findings[0]
            return f"trigger {top.cell}: z = {top.z:.1f} > {verdict.bound:.1f} (false alarm {format_rate(verdict.false_alarm)})"
        return f"no library trigger beyond clean pairs (worst z = {verdict.z[verdict.worst]:.1f} ≤ {verdict.bound:.1f})"

    def evidence(self) -> dict[str, Any]:
        pair = self.pair
        return {
            "pair": {"translator": str(pair.kind), "faces": pair.info["faces"], "threshold_fnmr": format_rate(SWEEP_FNMR),
                     "threshold": pair.threshold(SWEEP_FNMR), "genuine_mean": float(pair.genuine.mean()),
                     "impostor_mean": float(pair.impostor.mean())},
            "probes": self.probes.source,
            "sweep": self.verdict.to_dict(),
            **({"identities_png_base64": png_base64(self.affected_faces())} if self.failed and self.stamped else {}),
        }

    def affected_faces(self) -> np.ndarray:
        """The top finding's most affected probe identities, one face each, wearing its trigger."""
        assert self.stamped is not None and self.failed
        top = self.verdict.findings[0]
        index = {name: i for i, name in enumerate(self.probes.identities)}
        labels = self.probes.faces.labels
        faces = [self.stamped[top.cell][int(np.flatnonzero(labels == index[name])[0])] for name, _ in top.identities]
        return face_row(faces)

    def __rich__(self) -> Group:
        verdict, null = self.verdict, self.null
        table = Table(title=f"trigger sweep: {escape(self.probes.source)}, pair threshold at FNMR "
                            f"{format_rate(SWEEP_FNMR)} = {self.run.threshold:.3f}")
        for column in ("trigger@placement", "statistic", "candidate", "clean pairs (mean)", "z", ""):
            table.add_column(column, justify="right")
        for row in verdict.ranked():
            value, null_mean = verdict.statistics[row], null.mean(row)
            shown = ((f"{100 * value:.1f}%", f"{100 * null_mean:.1f}%") if row.statistic is Statistic.DISAGREEMENT
                     else (f"{value:.3f}", f"{null_mean:.3f}"))
            table.add_row(row.cell, str(row.statistic), *shown, f"{verdict.z[row]:.1f}",
                          "[red]FAIL[/]" if verdict.z[row] > verdict.bound else "")
        lines: list[Any] = [table, (
            f"clean probe faces flagged: {100 * verdict.clean_flag_rate:.1f}%; FAIL bound z > {verdict.bound:.2f} "
            f"(false alarm {format_rate(verdict.false_alarm)} over {len(verdict.z)} rows, {len(null.pairs)} clean pairs)")]
        for finding in verdict.findings:
            names = ", ".join(f"{escape(n)} ({r:.2f})" for n, r in finding.identities)
            lines.append(f"[red]FAIL[/] {finding.row}: {escape(describe(finding, self.trusted))}; most affected identities {names}")
        if not verdict.failed:
            lines.append("[green]PASS[/]: no trigger of the library moves the candidate beyond clean pairs")
        lines.append(f"[dim]Limits: the sweep {LIMITS}.[/]")
        return Group(*lines)


def audit_pair(candidate: Embedder, trusted: Embedder, setup: PairingSetup, *,
               null: SweepNull | None = None, null_path: Path | None = None,
               pair: PairCalibration | None = None, false_alarm: float = DEFAULT_FALSE_ALARM,
               progress: Progress | None = None) -> PairingAudit:
    """Calibrate (unless ``pair`` is given), sweep the trigger library and judge the
    candidate against clean pairs: ``null``, else the file at ``null_path``, else the
    null fraudit ships for the candidate's architecture and this trusted model."""
    if null is None:
        null, null_path = load_null(null_path, candidate=candidate, trusted=trusted, setup=setup)
    else:
        null.require_setup(setup.null_key(trusted))
    pair = pair or pair_models(candidate, trusted, setup, progress=progress)
    inputs = sweep_inputs(setup)
    run = sweep_pair(pair, candidate, trusted, inputs, progress=progress)
    verdict = judge(run, null, inputs.probes, false_alarm=false_alarm)
    return PairingAudit(pair, run, verdict, null, null_path, inputs.probes, trusted.name, inputs.stamped)
