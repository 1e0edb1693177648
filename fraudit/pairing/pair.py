"""A calibrated model pair: the translator from the candidate's (probe) space to the
trusted (reference) space, the genuine and zero-effort-impostor score distributions
on held-out faces, and thresholds at FNMR 0.1 / 1 / 5 % (thesis §5.3.3–5.3.4).

Stored as ``pair.safetensors`` (translator arrays, score samples) + ``pair.json``
(translator kind, faces' source, thresholds, summary statistics, sha256).
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from fraudit import __version__
from fraudit.artifacts import read_json_object
from fraudit.errors import CorruptFileError, IncompatibleArtifactError, NotEnoughDataError, SourceNotFoundError
from fraudit.pairing.embedders import Embedder
from fraudit.pairing.thresholds import DEFAULT_FNMR, passed_rate, thresholds
from fraudit.pairing.translators import AffineTranslator, LeastSquaresTranslator, RotationTranslator
from fraudit.rates import format_rate, parse_rate

SCHEMA_VERSION = "1.0"


class TranslatorKind(enum.StrEnum):
    AFFINE = "affine"
    ROTATION = "rotation"
    LEAST_SQUARES = "least-squares"


Translator = AffineTranslator | RotationTranslator | LeastSquaresTranslator

TRANSLATOR_CLASSES: dict[TranslatorKind, type[Translator]] = {
    TranslatorKind.AFFINE: AffineTranslator,
    TranslatorKind.ROTATION: RotationTranslator,
    TranslatorKind.LEAST_SQUARES: LeastSquaresTranslator,
}
MIN_FACES = 10


@dataclass
class PairCalibration:
    kind: TranslatorKind
    translator: Translator
    genuine: np.ndarray
    impostor: np.ndarray
    thresholds: dict[float, float]  # score threshold per FNMR
    info: dict[str, Any] = field(default_factory=dict)

    def verify(self, candidate: Embedder, trusted: Embedder) -> None:
        """Refuse models other than the two the pair was calibrated with."""
        for side, model in (("candidate", candidate), ("trusted", trusted)):
            if model.fingerprint != self.info.get(f"{side}_fingerprint"):
                source = self.info.get(f"{side}_source", model.name)
                raise IncompatibleArtifactError(f"the {side} model at {source} changed since the pair was calibrated")

    def threshold(self, fnmr: float) -> float:
        if fnmr not in self.thresholds:
            raise IncompatibleArtifactError(
                f"the pair has thresholds at FNMR {', '.join(map(format_rate, self.thresholds))}, not {format_rate(fnmr)}")
        return float(self.thresholds[fnmr])

    def __rich__(self) -> Group:
        info = self.info
        table = Table()
        for column in ("FNMR", "threshold", "ZEI pass (FMR)"):
            table.add_column(column, justify="right")
        for fnmr, threshold in self.thresholds.items():
            table.add_row(format_rate(fnmr), f"{threshold:.3f}", f"{100 * passed_rate(self.impostor, threshold):.1f}%")
        return Group(
            Text.from_markup(f"pair [bold]{escape(str(info.get('candidate')))}[/] → [bold]{escape(str(info.get('trusted')))}[/] "
                             f"({self.kind} translator, {escape(str(info.get('faces')))})"),
            f"genuine {self.genuine.mean():.3f} ± {self.genuine.std():.3f}, zero-effort impostor "
            f"{self.impostor.mean():.3f} ± {self.impostor.std():.3f} on {len(self.genuine)} held-out faces",
            table,
        )

    def score(self, probe: np.ndarray, reference: np.ndarray) -> np.ndarray:
        return self.translator.score(probe, reference)

    def score_sides(self, candidate: np.ndarray, trusted: np.ndarray) -> np.ndarray:
        """Scores of the same faces embedded by both models, in the direction fitted."""
        if self.info.get("probe_side", "candidate") == "candidate":
            return self.score(candidate, trusted)
        return self.score(trusted, candidate)


def calibrate(
    probe: np.ndarray,
    reference: np.ndarray,
    *,
    kind: TranslatorKind = TranslatorKind.AFFINE,
    held_out: float = 0.3,
    fnmrs: tuple[float, ...] = DEFAULT_FNMR,
    seed: int = 0,
    info: dict[str, Any] | None = None,
) -> PairCalibration:
    """Fit on part of the faces; genuine (same face) and ZEI (another face) scores on the rest."""
    if len(probe) != len(reference) or len(probe) < MIN_FACES:
        raise NotEnoughDataError(f"need the same ≥ {MIN_FACES} faces embedded by both models")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(probe))
    n_test = max(5, int(round(held_out * len(probe))))
    test, train = order[:n_test], order[n_test:]
    translator = TRANSLATOR_CLASSES[kind]().fit(probe[train], reference[train])
    genuine = translator.score(probe[test], reference[test])
    shifted = np.roll(test, 1 + int(rng.integers(len(test) - 1)))  # each face against another face
    impostor = translator.score(probe[test], reference[shifted])
    return PairCalibration(kind, translator, genuine, impostor, thresholds(genuine, fnmrs),
                           {"fit_faces": int(len(train)), "held_out_faces": int(len(test)), **(info or {})})


def save_pair(pair: PairCalibration, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    arrays = {f"translator.{k}": np.asarray(v, np.float64) for k, v in vars(pair.translator).items()
              if k.endswith("_") and isinstance(v, np.ndarray)}
    arrays |= {"scores.genuine": pair.genuine, "scores.impostor": pair.impostor}
    path = out / "pair.safetensors"
    save_file(arrays, str(path))
    header = {
        "schema_version": SCHEMA_VERSION,
        "fraudit_version": __version__,
        "translator": str(pair.kind),
        "thresholds_fnmr": {format_rate(fnmr): threshold for fnmr, threshold in pair.thresholds.items()},
        "genuine": {"mean": float(pair.genuine.mean()), "std": float(pair.genuine.std())},
        "impostor": {"mean": float(pair.impostor.mean()), "std": float(pair.impostor.std())},
        "info": pair.info,
        "arrays_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }
    (out / "pair.json").write_text(json.dumps(header, indent=2) + "\n")
    return out


def load_pair(folder: Path) -> PairCalibration:
    if not (folder / "pair.json").is_file() or not (folder / "pair.safetensors").is_file():
        raise SourceNotFoundError(f"{folder}: not a pair folder (make one with 'fraudit pair calibrate')", path=folder)
    header = read_json_object(folder / "pair.json", kind="a fraudit pair")
    path = folder / "pair.safetensors"
    if hashlib.sha256(path.read_bytes()).hexdigest() != header.get("arrays_sha256"):
        raise CorruptFileError(f"{folder}: pair.safetensors does not match pair.json; refusing a tampered pair", path=folder)
    try:
        arrays = load_file(str(path))
        kind = TranslatorKind(header["translator"])
        translator = TRANSLATOR_CLASSES[kind].__new__(TRANSLATOR_CLASSES[kind])
        for key, value in arrays.items():
            if key.startswith("translator."):
                setattr(translator, key.removeprefix("translator."), value)
        fnmrs = {parse_rate(label): float(t) for label, t in header["thresholds_fnmr"].items()}
        return PairCalibration(kind, translator, arrays["scores.genuine"], arrays["scores.impostor"],
                               fnmrs, header["info"])
    except (SafetensorError, KeyError, TypeError, ValueError) as exc:
        raise CorruptFileError(f"{folder}: not a fraudit pair ({type(exc).__name__}: {exc})", path=folder) from exc
