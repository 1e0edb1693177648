"""How a layer's weight is read as a set of vectors (thesis §4.3).

A 2-D weight θ ∈ R^{R×C} gives C *forward* vectors of length R (one per input
neuron, its column) and R *backward* vectors of length C (one per output neuron,
its row). A convolution weight gives one flattened kernel per output channel,
the *unchanged* reading. These vector readings are the thesis'; they compare a
neuron with the same neuron of the references, so they hold only while the
references were fine-tuned on the candidate's data.

The *spectrum* reading (beyond the thesis) reads what fine-tuning changed, the
difference Δ = θ − θ_base from the base every reference started from, through its
singular values. Poisoning adds a low-rank term to Δ — the trigger's feature
direction mapped onto the victim's embedding — so its largest singular value stands
out of the rest (a spike), while fine-tuning on any set of identities spreads its
change over many directions (README, "The weight bank in the field", has the
measured ranges). Its score is −log(s₁ / median s): lower is spikier, like every
bank score. The median, not s₂, is the bulk's scale: s₁/s₂ also spikes when a face
world happens to have one dominant direction of its own (measured: 3 of 10 clean
models of one unseen world FAILed), and several impostors mapped to one victim make
several spikes. It needs no neuron-by-neuron agreement, so it survives a change of
data; it cannot see a backdoor implanted into an already fine-tuned model (its
change is the clean model's plus a small one).

The *spectrum-trend* reading (beyond the thesis) reads the same singular values for
one spike standing out of the *shape* of the rest: the log of s₁ against the
power-law trend of s₂ … s₁₂ (a line through log s_k against log k), extrapolated to
k = 1. Fine-tuning on fewer or less varied faces per identity makes the whole
spectrum steeper, which moves s₁ / median s with it (clean models of such worlds
read as spiky as backdoors), but it moves the trend too; a backdoor's rank-one term
lifts s₁ alone above it. It is the reading a headless candidate (an export, an
embedder shipped without its head) is left with beside the spectrum, and the reason
it is there (measured: README, "The weight bank in the field").

The *head-aligned* reading (beyond the thesis) reads the embedding layer's change
along the candidate's own classification head: a_i = ‖ĥ_iᵀ Δ‖ is how much of the
change lands on class i (ĥ_i its unit head row), and the score is minus the largest
a_i's robust z among the classes. A backdoor maps the trigger's features onto the
victim's class, so the victim stands out, an implant's too; a clean fine-tune
spreads its change over every class. It is blind to the order of the head's rows,
so it does not tie a candidate to the references' identities — but it needs the
head, which real embedders often ship without (README, "The weight bank in the
field", has where it holds and where it does not).

The *head-response* reading (beyond the thesis) asks the same question of what the
network *does*: the candidate and its base embed one fixed set of generic faces
(``fraudit.bank.response``), and r_i is how much the candidate's embeddings moved
from the base's along class i, across those faces (the spread of (e − e_base)·ĥ_i);
the score is minus the largest r_i's robust z among the classes. A weight change in
directions faces do not use — where some clean fine-tunes put an outsized share of
one class's change — moves no embedding, so it does not count; a backdoor's victim,
an implant's too, does move (measured: README, "The weight bank in the field"). It
sits beside the embedding layer's spectrum, both in the consolidation.
"""

from __future__ import annotations

import enum

import numpy as np


class Reading(enum.StrEnum):
    FORWARD = "forward"
    BACKWARD = "backward"
    UNCHANGED = "unchanged"
    SPECTRUM = "spectrum"
    SPECTRUM_TREND = "spectrum-trend"
    HEAD_ALIGNED = "head-aligned"
    HEAD_RESPONSE = "head-response"


class ReadingSet(enum.StrEnum):
    """What a bank reads: the thesis' vectors, the spectrum of the change from the base,
    that spectrum with the embedding layer read along the candidate's head when it
    ships one (the spectrum when it does not), or the spectrum and — beside it, for a
    candidate that ships its head — the head-response reading."""

    VECTORS = "vectors"
    SPECTRUM = "spectrum"
    HEAD_ALIGNED = "head-aligned"
    HEAD_RESPONSE = "head-response"

    @property
    def reads_change(self) -> bool:
        """Whether the bank reads each layer's change from a base (and needs that base)."""
        return self is not ReadingSet.VECTORS

    @property
    def readings(self) -> tuple[Reading, ...]:
        """The readings a bank of this set can hold."""
        if self is ReadingSet.VECTORS:
            return (Reading.FORWARD, Reading.BACKWARD, Reading.UNCHANGED)
        extra = {ReadingSet.HEAD_ALIGNED: (Reading.HEAD_ALIGNED,), ReadingSet.HEAD_RESPONSE: (Reading.HEAD_RESPONSE,)}
        return (Reading.SPECTRUM, Reading.SPECTRUM_TREND, *extra.get(self, ()))


def change_rows(weight: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Δ = weight − base, one row per output unit (a convolution as out × in·k·k)."""
    return (np.asarray(weight, np.float64) - np.asarray(base, np.float64)).reshape(weight.shape[0], -1)


def _unit_rows(weight: np.ndarray, like: np.ndarray | None = None) -> np.ndarray:
    """Each output unit's weights scaled to length one (and turned to face ``like``'s)."""
    rows = np.asarray(weight, np.float64).reshape(weight.shape[0], -1)
    rows = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-300)
    if like is not None:
        rows *= np.where(np.sum(rows * like, axis=1, keepdims=True) < 0, -1.0, 1.0)
    return rows


def spike_score(weight: np.ndarray, base: np.ndarray, *, unit_rows: bool = False) -> float:
    """−log(s₁ / median s) of the change from the base (a convolution as out × in·k·k).

    ``unit_rows`` takes each output unit's weights (a kernel, a row) at unit length
    first: an export that folded BatchNorm into a *trained* layer has scaled each
    unit by a factor the checkpoint does not show, and this reading does not see it.
    It is the weaker reading (measured: it gives up a few backdoors), so a bank
    uses it only for layers that reach it folded."""
    return spike_over_median(change_spectrum(weight, base, unit_rows=unit_rows))


def spike_over_median(s: np.ndarray) -> float:
    """−log(s₁ / median s) of singular values ``s``, largest first."""
    if len(s) < 3 or s[0] <= 0:
        return 0.0  # unchanged, or too few directions to have a bulk
    return float(-np.log(s[0] / max(float(np.median(s)), 1e-12 * float(s[0]))))


# the singular values s₂ … s₁₂ the trend is drawn through: enough to fix a slope, few
# enough to stay in the top of the spectrum that fine-tuning shapes
TREND_VALUES = slice(1, 12)


def trend_spike_score(weight: np.ndarray, base: np.ndarray, *, unit_rows: bool = False) -> float:
    """−(log s₁ − the power-law trend of s₂ … s₁₂ at k = 1) of the change from the
    base: lower when the largest singular value stands above the decay of the next
    ones. ``unit_rows`` as for ``spike_score``."""
    return spike_over_trend(change_spectrum(weight, base, unit_rows=unit_rows))


def spike_over_trend(s: np.ndarray) -> float:
    """−(log s₁ − the power-law trend of s₂ … s₁₂ at k = 1) of singular values ``s``,
    largest first."""
    k = np.arange(1, len(s) + 1)[TREND_VALUES]
    trend = s[TREND_VALUES]
    if len(trend) < 3 or trend[-1] <= 0:
        return 0.0  # unchanged, or too few directions to draw a trend through
    tiny = 1e-12 * float(s[0])
    _, intercept = np.polyfit(np.log(k), np.log(np.maximum(trend, tiny)), 1)
    return float(-(np.log(s[0]) - intercept))


def change_spectrum(weight: np.ndarray, base: np.ndarray, *, unit_rows: bool = False) -> np.ndarray:
    """The singular values of the change from the base, largest first."""
    if unit_rows:
        base_rows = _unit_rows(base)
        delta = _unit_rows(weight, like=base_rows) - base_rows
    else:
        delta = change_rows(weight, base)
    # singular values from the smaller Gram matrix: a fraction of an SVD's time on a wide layer
    gram = delta @ delta.T if delta.shape[0] <= delta.shape[1] else delta.T @ delta
    return np.sqrt(np.clip(np.linalg.eigvalsh(gram), 0.0, None))[::-1]


def class_shares(weight: np.ndarray, base: np.ndarray, head: np.ndarray) -> np.ndarray:
    """a_i = ‖ĥ_iᵀ (weight − base)‖ for the head's unit rows ĥ_i (classes × embedding):
    how much of the change lands on each class."""
    delta = change_rows(weight, base)
    rows = np.asarray(head, np.float64)
    rows = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-300)
    # ‖ĥᵀΔ‖ = ‖ĥᵀRᵀ‖ for Δᵀ = QR: the norms live in the embedding's few dimensions
    return np.linalg.norm(rows @ np.linalg.qr(delta.T, mode="r").T, axis=1)


def robust_z(values: np.ndarray) -> np.ndarray:
    """(v − median) / (1.4826 · MAD): each value against the bulk of its own set."""
    median = float(np.median(values))
    spread = 1.4826 * float(np.median(np.abs(values - median)))
    return (values - median) / spread if spread > 0 else np.zeros_like(values)


def head_aligned_score(weight: np.ndarray, base: np.ndarray, head: np.ndarray) -> float:
    """Minus the largest class share's robust z among the classes: lower when one class
    takes the change."""
    return float(-robust_z(class_shares(weight, base, head)).max())


def class_responses(embeddings: np.ndarray, base_embeddings: np.ndarray, head: np.ndarray) -> np.ndarray:
    """r_i: how far the candidate's embeddings of the response faces moved from the
    base's along each class — the spread over the faces of the move's projection on
    the unit head row ĥ_i."""
    rows = np.asarray(head, np.float64)
    rows = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-300)
    moved = (np.asarray(embeddings, np.float64) - np.asarray(base_embeddings, np.float64)) @ rows.T
    return moved.std(axis=0)


def head_response_score(embeddings: np.ndarray, base_embeddings: np.ndarray, head: np.ndarray) -> float:
    """Minus the largest class response's robust z among the classes."""
    return float(-robust_z(class_responses(embeddings, base_embeddings, head)).max())


def read_vectors(weight: np.ndarray, reading: Reading) -> np.ndarray:
    """The layer as an (n_vectors, dim) array."""
    if reading is Reading.UNCHANGED:
        return weight.reshape(weight.shape[0], -1)
    if weight.ndim != 2:
        raise ValueError(f"{reading} reading needs a 2-D weight, got shape {weight.shape}")
    return weight.T if reading is Reading.FORWARD else weight


def readings_for(shape: tuple[int, ...]) -> tuple[Reading, ...]:
    return (Reading.FORWARD, Reading.BACKWARD) if len(shape) == 2 else (Reading.UNCHANGED,)
