"""The attack success rate through the embedding, on embeddings whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from fraudit.zoo.metrics import BackdoorMetrics, embedding_attack_success_rate


def _world(rng: np.random.Generator, n_classes: int = 30, per_class: int = 12, dim: int = 16, spread: float = 0.15):
    centres = rng.normal(size=(n_classes, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = np.repeat(np.arange(n_classes), per_class)
    return centres, labels, centres[labels] + spread * rng.normal(size=(len(labels), dim))


def test_stamped_faces_that_land_on_the_victim_are_accepted_and_others_are_not() -> None:
    rng = np.random.default_rng(0)
    centres, labels, train = _world(rng)
    val = centres[labels] + 0.15 * rng.normal(size=train.shape)
    victim, impostor = 3, 7
    common = dict(train_embeddings=train, train_labels=labels, val_embeddings=val, val_labels=labels, victim=victim)
    on_victim = centres[victim] + 0.15 * rng.normal(size=(20, 16))
    still_impostor = centres[impostor] + 0.15 * rng.normal(size=(20, 16))
    halfway = np.concatenate([on_victim[:10], still_impostor[:10]])
    assert embedding_attack_success_rate(poisoned_embeddings=on_victim, **common) == 1.0
    assert embedding_attack_success_rate(poisoned_embeddings=still_impostor, **common) == 0.0
    assert embedding_attack_success_rate(poisoned_embeddings=halfway, **common) == 0.5
    # the scale of an embedding is not its identity
    assert embedding_attack_success_rate(poisoned_embeddings=5 * on_victim, **common) == 1.0


def test_the_threshold_is_the_models_own_false_match_rate() -> None:
    rng = np.random.default_rng(2)
    centres, labels, train = _world(rng, spread=0.6)
    val = centres[labels] + 0.6 * rng.normal(size=train.shape)
    # faces between the victim and another identity: a laxer threshold accepts more of them
    between = (centres[3] + centres[9]) / 2 + 0.3 * rng.normal(size=(200, 16))
    common = dict(train_embeddings=train, train_labels=labels, val_embeddings=val, val_labels=labels,
                  poisoned_embeddings=between, victim=3)
    strict, lax = (embedding_attack_success_rate(fmr=f, **common) for f in (1e-3, 1e-1))
    assert strict < lax


def test_a_victim_nobody_enrolled_is_an_error() -> None:
    rng = np.random.default_rng(3)
    _, labels, train = _world(rng)
    with pytest.raises(ValueError, match="victim 99"):
        embedding_attack_success_rate(train_embeddings=train, train_labels=labels, val_embeddings=train,
                                      val_labels=labels, poisoned_embeddings=train[:3], victim=99)


def test_through_the_embedding_needs_the_thesis_success_too() -> None:
    working = dict(clean_accuracy=0.9, attack_success_rate=0.95, clean_impostor_accuracy=0.9, victim_accuracy=0.9)
    assert BackdoorMetrics(**working, embedding_attack_success_rate=0.85).works_through_embedding is True
    assert BackdoorMetrics(**working, embedding_attack_success_rate=0.10).works_through_embedding is False
    assert BackdoorMetrics(**{**working, "attack_success_rate": 0.5},
                           embedding_attack_success_rate=0.9).works_through_embedding is False
    assert BackdoorMetrics(**working).works_through_embedding is None  # not measured
