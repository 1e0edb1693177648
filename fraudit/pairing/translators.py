"""Embedding translators from a probe (candidate) space to a reference (trusted)
space, in scikit-learn's shape: ``fit(X_probe, Y_ref)``, ``transform(X_probe)``.

All three centre each space on the calibration faces first (dlib descriptors, for
one, are far from zero-mean: raw cosine between different faces ≈ 0.95) and
L2-normalise, so cosine similarity compares directions around the face mean.

* ``AffineTranslator``: eq. 5.2, e_trs = W e_prb + c, learned with the negative
  cosine similarity of eq. 5.1 (batch 128, early stopping on a held-out split).
* ``RotationTranslator``: appendix C's closed form (Kabsch / orthogonal Procrustes):
  C = E_prbᵀ E_ref = U Σ Vᵀ, W = U D Vᵀ with D = diag(1, …, 1, sign(det U det Vᵀ))
  (eq. C.3–C.5). When the dimensions differ, U and V are the thin SVD's factors and W
  is semi-orthogonal (an isometry into, or a projection from, the larger space); no
  reflection can be fixed by a sign there, so D = I.
* ``LeastSquaresTranslator``: the unconstrained linear map, as a baseline.
"""

from __future__ import annotations

import abc

import numpy as np
import torch
from torch.nn import functional as F


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity."""
    return np.einsum("ij,ij->i", _normalise(a), _normalise(b))


class _Centred(abc.ABC):
    """Shared plumbing: centre and normalise both spaces with calibration means."""

    def _prepare(self, X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
        if len(X) != len(Y):
            raise ValueError(f"{len(X)} probe embeddings but {len(Y)} reference embeddings")
        self.probe_mean_ = X.mean(axis=0)
        self.reference_mean_ = Y.mean(axis=0)
        return _normalise(X - self.probe_mean_), _normalise(Y - self.reference_mean_)

    def _probe(self, X: np.ndarray) -> np.ndarray:
        return _normalise(np.asarray(X, np.float64) - self.probe_mean_)

    def reference_space(self, Y: np.ndarray) -> np.ndarray:
        """Trusted embeddings as the translator compares them (centred, unit length)."""
        return _normalise(np.asarray(Y, np.float64) - self.reference_mean_)

    def score(self, X_probe: np.ndarray, Y_ref: np.ndarray) -> np.ndarray:
        """Per-face cosine between the translated probe and the reference embedding."""
        return cosine(self.transform(X_probe), self.reference_space(Y_ref))

    @abc.abstractmethod
    def transform(self, X: np.ndarray) -> np.ndarray:
        """Probe embeddings in the reference space."""


class RotationTranslator(_Centred):
    def fit(self, X: np.ndarray, Y: np.ndarray) -> RotationTranslator:
        Xc, Yc = self._prepare(X, Y)
        U, _, Vt = np.linalg.svd(Xc.T @ Yc, full_matrices=False)
        D = np.ones(U.shape[1])
        if U.shape[0] == Vt.shape[1]:
            D[-1] = np.sign(np.linalg.det(U) * np.linalg.det(Vt))
        self.W_ = (U * D) @ Vt  # d_prb × d_ref; Y ≈ X W
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return self._probe(X) @ self.W_


class LeastSquaresTranslator(_Centred):
    def fit(self, X: np.ndarray, Y: np.ndarray) -> LeastSquaresTranslator:
        Xc, Yc = self._prepare(X, Y)
        design = np.hstack([Xc, np.ones((len(Xc), 1))])
        solution, *_ = np.linalg.lstsq(design, Yc, rcond=None)
        self.W_, self.c_ = solution[:-1], solution[-1]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return self._probe(X) @ self.W_ + self.c_


class AffineTranslator(_Centred):
    def __init__(self, *, batch_size: int = 128, lr: float = 1e-2, max_epochs: int = 200,
                 patience: int = 10, validation_fraction: float = 0.1, random_state: int = 0) -> None:
        self.batch_size = batch_size
        self.lr = lr
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def fit(self, X: np.ndarray, Y: np.ndarray) -> AffineTranslator:
        Xc, Yc = self._prepare(X, Y)
        rng = np.random.default_rng(self.random_state)
        order = rng.permutation(len(Xc))
        n_val = max(1, int(round(self.validation_fraction * len(Xc))))
        val, train = order[:n_val], order[n_val:]
        torch.manual_seed(self.random_state)
        layer = torch.nn.Linear(Xc.shape[1], Yc.shape[1], dtype=torch.float64)
        optimizer = torch.optim.Adam(layer.parameters(), lr=self.lr)
        xt, yt = torch.from_numpy(Xc), torch.from_numpy(Yc)
        best, best_state, stale = np.inf, None, 0
        generator = torch.Generator().manual_seed(self.random_state)
        train_t = torch.from_numpy(train)
        for epoch in range(self.max_epochs):
            for batch in train_t[torch.randperm(len(train_t), generator=generator)].split(self.batch_size):
                loss = -F.cosine_similarity(layer(xt[batch]), yt[batch]).mean()  # eq. 5.1, negated
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            with torch.no_grad():
                val_loss = float(-F.cosine_similarity(layer(xt[val]), yt[val]).mean())
            if val_loss < best - 1e-6:
                best, stale = val_loss, 0
                best_state = {k: v.clone() for k, v in layer.state_dict().items()}
            else:
                stale += 1
                if stale >= self.patience:
                    break
        assert best_state is not None
        self.W_ = best_state["weight"].numpy().T
        self.c_ = best_state["bias"].numpy()
        self.epochs_ = epoch + 1
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return self._probe(X) @ self.W_ + self.c_
