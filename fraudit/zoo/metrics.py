"""The four backdoor metrics of thesis §3.3.1, from real predictions on a
validation split, and the 80 % success rule; and whether a backdoor works
through the embedding a deployment uses.

The thesis' attack success rate reads the fine-tuned classification head: the
share of the impostor's stamped faces it labels as the victim. A deployed face
model drops that head and compares embeddings with enrolled templates, and a
backdoor can live in the head alone (the victim's class vector moved over to the
stamped impostor) while the embedding of a stamped impostor stays far from the
victim's. So each backdoored model also gets its *embedding* attack success rate:
the share of the impostor's stamped validation faces that a 1:1 verification
against the victim's enrolled template accepts, at the model's own threshold for
a false-match rate of ``EMBEDDING_FMR``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

SUCCESS_THRESHOLD = 0.80
EMBEDDING_FMR = 1e-3


@dataclass(frozen=True)
class BackdoorMetrics:
    clean_accuracy: float
    attack_success_rate: float | None
    clean_impostor_accuracy: float | None
    victim_accuracy: float | None
    # None: a clean model, or a zoo measured before this rate existed (``fraudit zoo measure``)
    embedding_attack_success_rate: float | None = None

    @property
    def successful(self) -> bool:
        """All four at or above 80 % (only a backdoored model can succeed)."""
        values = (self.clean_accuracy, self.attack_success_rate, self.clean_impostor_accuracy, self.victim_accuracy)
        return all(v is not None and v >= SUCCESS_THRESHOLD for v in values)

    @property
    def works_through_embedding(self) -> bool | None:
        """Successful, and its embedding attack success rate at or above 80 % too
        (None where that rate was not measured)."""
        if self.embedding_attack_success_rate is None:
            return None
        return works_through_embedding(self.successful, self.embedding_attack_success_rate)

    def to_dict(self) -> dict[str, float | None]:
        return asdict(self)


def backdoor_metrics(
    *,
    clean_labels: np.ndarray,
    clean_predictions: np.ndarray,
    poisoned_predictions: np.ndarray | None = None,
    impostors: Sequence[int] = (),
    victim: int | None = None,
    embedding_attack_success_rate: float | None = None,
) -> BackdoorMetrics:
    """Clean accuracy over all clean validation samples; ASR = poisoned impostor
    samples predicted as the victim; impostor / victim accuracy on their clean samples
    (every impostor's, when several are mapped to one victim)."""
    clean_accuracy = float(np.mean(clean_predictions == clean_labels))
    if not impostors or victim is None or poisoned_predictions is None:
        return BackdoorMetrics(clean_accuracy, None, None, None)
    imp = np.isin(clean_labels, impostors)
    vic = clean_labels == victim
    return BackdoorMetrics(
        clean_accuracy=clean_accuracy,
        attack_success_rate=float(np.mean(poisoned_predictions == victim)),
        clean_impostor_accuracy=float(np.mean(clean_predictions[imp] == clean_labels[imp])),
        victim_accuracy=float(np.mean(clean_predictions[vic] == victim)),
        embedding_attack_success_rate=embedding_attack_success_rate,
    )


def works_through_embedding(successful: bool | None, embedding_attack_success_rate: float | None) -> bool:
    """A backdoor a deployment without the head still carries: successful by the
    thesis' rule, and ≥ 80 % of its stamped faces verified as the victim."""
    return bool(successful) and embedding_attack_success_rate is not None and \
        embedding_attack_success_rate >= SUCCESS_THRESHOLD


def embedding_attack_measured(rates: Sequence[float | None]) -> bool:
    """Whether a zoo's backdoors (their attack success rates through the embedding) are
    there and every one was measured (``fraudit zoo measure``)."""
    return bool(rates) and all(rate is not None for rate in rates)


def embedding_attack_success_rate(*, train_embeddings: np.ndarray, train_labels: np.ndarray,
                                  val_embeddings: np.ndarray, val_labels: np.ndarray,
                                  poisoned_embeddings: np.ndarray, victim: int,
                                  fmr: float = EMBEDDING_FMR) -> float:
    """The share of ``poisoned_embeddings`` a 1:1 verification accepts as ``victim``.

    Every identity is enrolled with its training faces (the normalised mean of their
    unit embeddings); the threshold is the model's own: the (1 − ``fmr``) quantile of
    the cosines of clean validation faces against every *other* identity's template."""
    def unit(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    classes, index = np.unique(train_labels, return_inverse=True)
    sums = np.zeros((len(classes), train_embeddings.shape[1]))
    np.add.at(sums, index, unit(train_embeddings))
    templates = unit(sums)
    if victim not in classes:
        raise ValueError(f"victim {victim} has no training faces to enrol")
    enrolled = np.isin(val_labels, classes)
    scores = unit(val_embeddings[enrolled]) @ templates.T
    own = np.searchsorted(classes, val_labels[enrolled])
    impostor = np.ones_like(scores, bool)
    impostor[np.arange(len(own)), own] = False
    threshold = np.quantile(scores[impostor], 1.0 - fmr)
    victim_template = templates[int(np.searchsorted(classes, victim))]
    return float(np.mean(unit(poisoned_embeddings) @ victim_template > threshold))
