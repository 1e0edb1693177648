"""The four backdoor metrics of thesis §3.3.1, from real predictions on a
validation split, and the 80 % success rule."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

SUCCESS_THRESHOLD = 0.80


@dataclass(frozen=True)
class BackdoorMetrics:
    clean_accuracy: float
    attack_success_rate: float | None
    clean_impostor_accuracy: float | None
    victim_accuracy: float | None

    @property
    def successful(self) -> bool:
        """All four at or above 80 % (only a backdoored model can succeed)."""
        values = (self.clean_accuracy, self.attack_success_rate, self.clean_impostor_accuracy, self.victim_accuracy)
        return all(v is not None and v >= SUCCESS_THRESHOLD for v in values)

    def to_dict(self) -> dict[str, float | None]:
        return asdict(self)


def backdoor_metrics(
    *,
    clean_labels: np.ndarray,
    clean_predictions: np.ndarray,
    poisoned_predictions: np.ndarray | None = None,
    impostors: Sequence[int] = (),
    victim: int | None = None,
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
    )
