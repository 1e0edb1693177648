"""Translators on embeddings with a known linear relation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group

from fraudit.pairing.translators import (
    AffineTranslator,
    LeastSquaresTranslator,
    RotationTranslator,
    cosine,
)


def _faces(n: int, dim: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)) + 3.0  # far from zero-mean, like dlib


def test_rotation_recovers_a_rotation_exactly() -> None:
    X = _faces(500, 16, 0)
    R = ortho_group.rvs(16, random_state=1)
    Y = (X - X.mean(0)) @ R
    model = RotationTranslator().fit(X, Y)
    assert np.allclose(model.W_, R, atol=1e-8)
    assert np.allclose(model.score(X, Y), 1.0)
    assert np.linalg.det(model.W_) == pytest.approx(np.linalg.det(R))


def test_rotation_sign_correction_gives_a_proper_rotation() -> None:
    """Eq. C.5: with a reflection in the data, W stays a rotation (det +1)."""
    X = _faces(400, 8, 2)
    reflection = np.diag([1.0] * 7 + [-1.0])
    model = RotationTranslator().fit(X, (X - X.mean(0)) @ reflection)
    assert np.linalg.det(model.W_) == pytest.approx(1.0)


def test_rotation_between_different_dimensions() -> None:
    X = _faces(600, 12, 3)
    Q = ortho_group.rvs(24, random_state=4)[:12]  # 12×24, orthonormal rows: an isometry into 24-d
    Y = (X - X.mean(0)) @ Q
    model = RotationTranslator().fit(X, Y)
    assert model.W_.shape == (12, 24)
    assert np.allclose(model.score(X, Y), 1.0, atol=1e-8)


def test_least_squares_recovers_a_general_linear_map() -> None:
    X = _faces(800, 10, 5)
    A = np.random.default_rng(6).normal(size=(10, 6))
    Y = (X - X.mean(0)) @ A + 0.5
    model = LeastSquaresTranslator().fit(X, Y)
    assert np.mean(model.score(X, Y)) > 0.99


def test_affine_learns_with_negative_cosine_and_stops_early() -> None:
    X = _faces(2000, 10, 7)
    A = np.random.default_rng(8).normal(size=(10, 10))
    Y = (X - X.mean(0)) @ A + np.random.default_rng(9).normal(scale=0.05, size=(2000, 10))
    model = AffineTranslator(max_epochs=300).fit(X, Y)
    assert model.epochs_ < 300  # early stopping fired
    assert np.mean(model.score(X, Y)) > 0.97
    unrelated = _faces(2000, 10, 10)
    assert np.mean(model.score(unrelated, Y)) < 0.2  # different faces do not agree


def test_cosine_known_values() -> None:
    a = np.array([[1.0, 0.0], [1.0, 1.0]])
    b = np.array([[0.0, 2.0], [2.0, 2.0]])
    assert np.allclose(cosine(a, b), [0.0, 1.0])
