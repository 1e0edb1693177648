"""A weight bank: per audited layer and reading, a clean-weight density model with
calibrated scores, consolidated into one network score with its own threshold.

Fitting uses clean reference networks only. Calibration is cross-fitted: the
reference set is split into K folds; each fold is scored by a model fitted on the
other folds, so every reference network contributes one held-out score per layer
and reading. Those out-of-fold scores give each layer's clean distribution
(z-scores, lower-tail p-values) and the consolidated statistic's distribution,
from which thresholds are read at the stated false-rejection rates. A candidate
is scored by the same K fold models (averaged), so its score and the held-out
calibration scores come from models that never saw the network they score. Each
fold fits its own PCA too: a PCA fitted on all references keeps every reference
network's own directions, so held-out references would look worse than new
networks (by z ≈ +20 on the 4096-wide backward reading of ``last_linear``).

Consolidation (the thesis leaves it open): Fisher's method over the layer/reading
p-values, F = −2 Σ log p_k, whose clean distribution is matched by a scaled χ²
(Satterthwaite: the readings of one network are correlated, so F is over-dispersed
relative to χ²_2K); the network's consolidated p-value is that scaled χ²'s tail.
"""

from __future__ import annotations

import enum
import hashlib
import warnings
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import stats

from fraudit.bank.estimators import IndexAlignedGaussian, PCAGaussianMixture, Projection
from fraudit.bank.readings import (
    Reading,
    ReadingSet,
    head_aligned_score,
    head_response_score,
    read_vectors,
    readings_for,
    change_spectrum,
    spike_over_median,
    spike_over_trend,
)
from fraudit.bank.response import RESPONSE_KEY
from fraudit.errors import IncompatibleArtifactError, NotEnoughDataError

FROZEN_TOLERANCE = 1e-6
# the p-value floor keeps log p finite for networks far outside the clean range
MIN_P = 1e-300
# cross-fitting needs references in every fold and spread left over
MIN_REFERENCES = 4
# a reading whose references' spread lies more between their sources (face worlds,
# datasets) than within them reads the fine-tuning data more than the model
DATA_DEPENDENT = 0.5


class EstimatorKind(enum.StrEnum):
    INDEX_ALIGNED = "index-aligned"
    EM_GMM = "em-gmm"


SPECTRUM_KIND = "spectrum"  # a LayerModel scored by spike_score against the base, nothing fitted
TREND_KIND = "spectrum-trend"  # scored by trend_spike_score against the base, nothing fitted
# the readings of a layer's change spectrum, by what each makes of its singular values:
# read the same way from a checkpoint or a folded export
SPECTRUM_READS = {SPECTRUM_KIND: spike_over_median, TREND_KIND: spike_over_trend}
CHANGE_SPECTRUM_KINDS = tuple(SPECTRUM_READS)
HEAD_KIND = "head-aligned"  # scored by head_aligned_score against the base and the candidate's head
# scored by head_response_score: the candidate's embeddings of the response faces against
# the base's (its base_weight) along the candidate's head
RESPONSE_KIND = "head-response"


def frozen_digest(weight: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(weight, dtype=np.float32).tobytes()).hexdigest()


def make_estimator(kind: EstimatorKind, em_components: Sequence[int] | None = None):
    if kind is EstimatorKind.INDEX_ALIGNED:
        return IndexAlignedGaussian()
    return PCAGaussianMixture(components=em_components)


@dataclass
class LayerModel:
    """One layer in one reading: its estimator (or the frozen reference) and calibration."""

    layer: str
    reading: Reading
    shape: tuple[int, ...]
    kind: str  # an EstimatorKind, "frozen" (every reference holds the same weights), "spectrum", "spectrum-trend",
    # "head-aligned" or "head-response"
    estimators: list  # one per cross-fitting fold, sharing one projection
    reference: str | None  # sha256 of the frozen weights (float32 bytes)
    oof_scores: np.ndarray  # per reference network, held-out
    oof_vector_mean: np.ndarray  # per vector: mean held-out log-likelihood
    oof_vector_std: np.ndarray
    base_weight: np.ndarray | None = None  # the spectrum reading's starting point
    # the references' spectrum scores with each unit at unit length: how a layer that
    # reaches the bank with BatchNorm folded in is judged (see spike_score)
    unit_scores: np.ndarray | None = None
    unit_rows: bool = False  # this model judges by the unit-length reading
    head_key: str | None = None  # the head-aligned reading's classification head, in the candidate
    # the share of the references' spread that lies between their sources (see data_dependence)
    data_dependence: float | None = None

    def for_folded(self) -> LayerModel:
        """The same layer judged by its unit-length reading, which folding does not change."""
        assert self.kind in CHANGE_SPECTRUM_KINDS and self.unit_scores is not None
        return replace(self, oof_scores=self.unit_scores,
                       oof_vector_mean=np.array([self.unit_scores.mean()]),
                       oof_vector_std=np.array([self.unit_scores.std() + 1e-9]), unit_rows=True)

    @property
    def key(self) -> str:
        return f"{self.layer}:{self.reading}"

    @property
    def mean(self) -> float:
        return float(self.oof_scores.mean())

    @property
    def std(self) -> float:
        return float(self.oof_scores.std(ddof=1)) or 1.0

    def vector_scores(self, weight: np.ndarray, head: np.ndarray | None = None) -> np.ndarray:
        if self.kind == RESPONSE_KIND:  # ``weight``: the candidate's embeddings of the response faces
            assert self.base_weight is not None and head is not None
            return np.array([head_response_score(weight, self.base_weight, head)])
        if self.kind == HEAD_KIND:
            assert self.base_weight is not None and head is not None
            return np.array([head_aligned_score(weight, self.base_weight, head)])
        if self.kind in CHANGE_SPECTRUM_KINDS:
            assert self.base_weight is not None
            return np.array([SPECTRUM_READS[self.kind](change_spectrum(weight, self.base_weight,
                                                                      unit_rows=self.unit_rows))])
        vectors = read_vectors(weight, self.reading)
        if self.kind == "frozen":
            # fine-tuning copies frozen layers bit for bit: any change is an anomaly
            changed = frozen_digest(weight) != self.reference
            return np.full(len(vectors), -np.inf if changed else 0.0)
        return np.mean([e.score_samples(vectors) for e in self.estimators], axis=0)



    def thresholds(self, frr: Sequence[float]) -> dict[float, float]:
        """The score below which a network is rejected at each FRR."""
        return {a: self.mean - stats.norm.ppf(1 - a) * self.std for a in frr}

    def z(self, score: float) -> float:
        if self.kind == "frozen":
            return 0.0 if score == 0.0 else -np.inf
        return (score - self.mean) / self.std


@dataclass(frozen=True)
class LayerScore:
    key: str
    score: float
    z: float
    p: float
    threshold: dict[float, float]  # score threshold at each FRR
    worst_vectors: list[int]
    reference_scores: tuple[float, ...] = ()  # the clean references' held-out scores it is judged against


@dataclass(frozen=True)
class NetworkScore:
    layers: list[LayerScore]
    statistic: float  # Fisher's F
    p: float  # consolidated lower-tail p-value
    thresholds: dict[float, float]  # F thresholds at each FRR
    missing_layers: list[str] = field(default_factory=list)
    reference_statistics: tuple[float, ...] = ()  # the clean references' held-out F

    @property
    def worst(self) -> LayerScore:
        return min(self.layers, key=lambda s: s.p)


def _fisher(z_by_layer: np.ndarray) -> np.ndarray:
    """F per network from an (n_networks, n_readings) z matrix."""
    log_p = np.maximum(stats.norm.logcdf(z_by_layer), np.log(MIN_P))
    return -2.0 * log_p.sum(axis=-1)


def _scaled_chi2(clean_f: np.ndarray) -> tuple[float, float]:
    """(scale c, dof ν) with F / c ~ χ²_ν matching the clean F's mean and variance."""
    mean, var = float(clean_f.mean()), float(clean_f.var(ddof=1))
    var = max(var, 1e-9)
    return var / (2 * mean), 2 * mean * mean / var


def data_dependence(scores: np.ndarray, sources: Sequence[int]) -> float | None:
    """How much a reading reads the fine-tuning data: the share of its references'
    spread that lies between their sources (face worlds, datasets) rather than within
    them — the one-way intraclass correlation ICC(1), floored at 0. Measured on the
    shipped banks' references: the change spectrum's spike over its median 0.65–0.97
    (low-variation data concentrates every clean fine-tune's change), the spike over
    its trend 0.30–0.49, the head response ≤ 0.31. None without two sources and two
    references more than sources (nothing to tell between from within)."""
    scores = np.asarray(scores, np.float64)
    labels = np.asarray(sources)
    groups = [scores[labels == s] for s in dict.fromkeys(labels.tolist())]
    n, k = len(scores), len(groups)
    if k < 2 or n - k < 2:
        return None
    with warnings.catch_warnings():  # no spread within sources: F is infinite, or undefined if none at all
        warnings.simplefilter("ignore")
        f = float(stats.f_oneway(*groups).statistic)
    if np.isnan(f):
        return None
    n0 = (n - sum(len(g) ** 2 for g in groups) / n) / (k - 1)  # the mean group size, for unequal groups
    return 1.0 if np.isinf(f) else float(max((f - 1) / (f + n0 - 1), 0.0))


def fit_layer_models(
    networks: Sequence[dict[str, np.ndarray]],
    layers: Sequence[str],
    *,
    kind: EstimatorKind,
    folds: int = 3,
    seed: int = 0,
    variance: float = 0.95,
    em_components: Sequence[int] | None = None,
    readings: ReadingSet = ReadingSet.VECTORS,
    base: dict[str, np.ndarray] | None = None,
    head: tuple[str, str] | None = None,
    without: Collection[Reading] = (),
    sources: Sequence[int] | None = None,
) -> list[LayerModel]:
    """``readings``: the thesis' vector readings (each fitted, calibrated out of fold),
    or the spectrum of each trained layer's change from ``base``, read as the spike
    over the median and over the trend of the next values (nothing is fitted: the
    references' scores are its calibration), with — for ``head-aligned`` — the
    ``head`` = (embedding layer, head tensor) reading beside that layer's spectrum,
    when every reference carries the head; for ``head-response``, the response
    reading beside it (every network and the base then hold their embeddings of the
    response faces under ``RESPONSE_KEY``). A layer every reference holds
    bit-identically is checked as frozen either way. ``without``: readings left out.
    ``sources``: each network's source (face world, dataset), from which every
    reading's ``data_dependence`` is measured."""
    n = len(networks)
    if n < MIN_REFERENCES:
        raise NotEnoughDataError(f"a bank needs at least {MIN_REFERENCES} clean reference networks, got {n}")
    folds = min(folds, n)
    assignment = np.random.default_rng(seed).permutation(n) % folds
    models: list[LayerModel] = []
    for layer in layers:
        weights = np.stack([np.asarray(net[layer], dtype=np.float64) for net in networks])
        for reading in readings_for(weights.shape[1:]):
            X = np.stack([read_vectors(w, reading) for w in weights])
            frozen = float(np.abs(X - X[0]).max()) <= FROZEN_TOLERANCE
            if frozen:
                models.append(LayerModel(layer, reading, weights.shape[1:], "frozen", [], frozen_digest(weights[0]),
                                         np.zeros(n), np.zeros(X.shape[1]), np.ones(X.shape[1])))
                continue
            if readings.reads_change:
                if base is None or layer not in base or base[layer].shape != weights.shape[1:]:
                    raise NotEnoughDataError(f"{layer}: the spectrum reading needs the base's weights of this layer")
                # each reference's spectra once (as a checkpoint and in unit length), read both ways
                spectra = [change_spectrum(w, base[layer]) for w in weights]
                unit_spectra = [change_spectrum(w, base[layer], unit_rows=True) for w in weights]
                for reading_of, kind_of in ((Reading.SPECTRUM, SPECTRUM_KIND), (Reading.SPECTRUM_TREND, TREND_KIND)):
                    if reading_of in without:
                        continue
                    scores = np.array([SPECTRUM_READS[kind_of](v) for v in spectra])
                    unit = np.array([SPECTRUM_READS[kind_of](v) for v in unit_spectra])
                    models.append(LayerModel(layer, reading_of, weights.shape[1:], kind_of, [], None, scores,
                                             np.array([scores.mean()]), np.array([scores.std() + 1e-9]),
                                             np.asarray(base[layer], np.float64), unit))
                if readings is ReadingSet.HEAD_ALIGNED and head is not None and head[0] == layer \
                        and Reading.HEAD_ALIGNED not in without and all(head[1] in net for net in networks):
                    aligned = np.array([head_aligned_score(w, base[layer], net[head[1]])
                                        for w, net in zip(weights, networks)])
                    models.append(LayerModel(layer, Reading.HEAD_ALIGNED, weights.shape[1:], HEAD_KIND, [], None,
                                             aligned, np.array([aligned.mean()]), np.array([aligned.std() + 1e-9]),
                                             np.asarray(base[layer], np.float64), head_key=head[1]))
                if readings is ReadingSet.HEAD_RESPONSE and head is not None and head[0] == layer \
                        and Reading.HEAD_RESPONSE not in without and RESPONSE_KEY in base \
                        and all(head[1] in net and RESPONSE_KEY in net for net in networks):
                    moved = np.array([head_response_score(net[RESPONSE_KEY], base[RESPONSE_KEY], net[head[1]])
                                      for net in networks])
                    models.append(LayerModel(layer, Reading.HEAD_RESPONSE, base[RESPONSE_KEY].shape, RESPONSE_KIND, [],
                                             None, moved, np.array([moved.mean()]), np.array([moved.std() + 1e-9]),
                                             np.asarray(base[RESPONSE_KEY], np.float64), head_key=head[1]))
                break  # one spectrum per layer, whatever its vector readings
            if reading in without:
                continue
            oof_vectors = np.zeros((n, X.shape[1]))
            fold_models = []
            for k in range(folds):
                held = assignment == k
                projection = Projection.fit(X[~held].reshape(-1, X.shape[-1]), variance)
                estimator = make_estimator(kind, em_components).fit(X[~held], projection=projection)
                fold_models.append(estimator)
                for i in np.flatnonzero(held):
                    oof_vectors[i] = estimator.score_samples(X[i])
            models.append(LayerModel(
                layer, reading, weights.shape[1:], str(kind), fold_models, None,
                oof_vectors.sum(axis=1), oof_vectors.mean(axis=0), oof_vectors.std(axis=0) + 1e-9,
            ))
    if sources is None:
        return models
    return [m if m.kind == "frozen" else replace(m, data_dependence=data_dependence(m.oof_scores, sources))
            for m in models]


def score_network(
    models: Sequence[LayerModel], weights: dict[str, np.ndarray], *, frr: Sequence[float], top_vectors: int = 5,
    folded: dict[str, np.ndarray] | None = None,
) -> NetworkScore:
    """Score the layers the candidate has; calibrate the consolidation on that subset.

    ``folded``: layers an export holds only with BatchNorm folded in, whose frozen ones
    the bank has already matched to its base up to that folding (``WeightBank.covers``):
    a frozen one scores as unchanged, a spectrum reads it by its unit-length reading,
    and no vector reading can use it."""
    folded = folded or {}
    # a layer with a head-aligned reading is read along the candidate's head when it
    # carries one (of the embedding's width), by its spectrum when it does not
    along_head = {m.layer for m in models if m.kind == HEAD_KIND and m.layer in weights and m.head_key in weights
                  and np.shape(weights[m.head_key])[-1] == m.shape[0]}
    # the response reading sits beside the spectrum, for a candidate whose head and
    # embeddings of the response faces are given
    responding = {m.layer for m in models if m.kind == RESPONSE_KIND and RESPONSE_KEY in weights
                  and m.head_key in weights and np.shape(weights[m.head_key])[-1] == m.shape[-1]}
    present: list[LayerModel] = []
    for m in models:
        if m.kind == RESPONSE_KIND:
            if m.layer in responding:
                present.append(m)
            continue
        if m.kind == HEAD_KIND or (m.kind in CHANGE_SPECTRUM_KINDS and m.layer in along_head):
            if m.kind == HEAD_KIND and m.layer in along_head:
                present.append(m)
            continue
        if m.layer in weights:
            present.append(m)
        elif m.layer in folded and m.kind == "frozen":
            present.append(m)
        elif m.layer in folded and m.kind in CHANGE_SPECTRUM_KINDS:
            present.append(m.for_folded())
    missing = sorted({m.layer for m in models} - {m.layer for m in present})
    layer_scores: list[LayerScore] = []
    for m in present:
        if m.layer not in weights and m.kind == "frozen":
            # matched to the base up to folding: unchanged, as its checkpoint would score
            layer_scores.append(LayerScore(m.key, 0.0, m.z(0.0), float(stats.norm.cdf(m.z(0.0))), m.thresholds(frr), [],
                                           tuple(m.oof_scores.tolist())))
            continue
        read = RESPONSE_KEY if m.kind == RESPONSE_KIND else m.layer
        w = np.asarray(weights[read] if read in weights else folded[read], dtype=np.float64)
        if tuple(w.shape) != tuple(m.shape):
            raise IncompatibleArtifactError(f"{m.layer} has shape {tuple(w.shape)}, the bank's has {tuple(m.shape)}")
        per_vector = m.vector_scores(w, head=weights.get(m.head_key) if m.head_key else None)
        score = float(per_vector.sum())
        z = m.z(score)
        p = float(max(stats.norm.cdf(z), MIN_P)) if np.isfinite(z) else MIN_P
        vector_z = (per_vector - m.oof_vector_mean) / m.oof_vector_std
        # a spectrum is one number for the whole layer: no vector to point at
        worst = [] if m.kind in (*CHANGE_SPECTRUM_KINDS, HEAD_KIND, RESPONSE_KIND) else [int(i) for i in np.argsort(vector_z)[:top_vectors]]
        layer_scores.append(LayerScore(m.key, score, float(z), p, m.thresholds(frr), worst, tuple(m.oof_scores.tolist())))
    if not layer_scores:
        raise IncompatibleArtifactError("the candidate has none of the bank's layers")
    # one row per reference network: its held-out z in each present reading
    clean_z = np.array([[m.z(score) for m, score in zip(present, row)] for row in zip(*(m.oof_scores for m in present))])
    statistic, p, clean_f, (c, nu) = consolidate(clean_z, np.array([s.z for s in layer_scores]))
    thresholds = {a: float(c * stats.chi2.isf(a, nu)) for a in frr}
    return NetworkScore(layer_scores, statistic, p, thresholds, missing, tuple(clean_f.tolist()))


def consolidate(clean_z: np.ndarray, z: np.ndarray) -> tuple[float, float, np.ndarray, tuple[float, float]]:
    """One network's readings' z (``z``: n_readings) against the clean references'
    (``clean_z``: n_references × n_readings): Fisher's F, its consolidated p-value
    from the references' scaled χ², the references' F, and that χ²'s (scale, dof)."""
    clean_f = _fisher(clean_z)
    c, nu = _scaled_chi2(clean_f)
    statistic = float(_fisher(z))
    p = float(max(stats.chi2.sf(statistic / c, nu), MIN_P)) if np.isfinite(statistic) else MIN_P
    return statistic, p, clean_f, (c, nu)
