"""Clean-weight density models for one layer reading, in scikit-learn's shape:
``fit(X)`` on the reference networks' vectors, ``score_samples(x)`` per vector.

``X`` is (n_networks, n_vectors, dim): the same reading of the same layer in each
clean reference network. Both models reduce with a PCA fitted to 95 % explained
variance on all the vectors (thesis §4.3 step 3).

* ``PCAGaussianMixture`` is the thesis' configuration: an EM-fitted GMM whose size
  is chosen by BIC over a grid (AIC reported too); vectors score by their mixture
  likelihood, whichever component they fall in.
* ``IndexAlignedGaussian`` uses what fine-tuning from a common base guarantees:
  vector *i* of every network is the same neuron, so component *i* is that neuron's
  distribution across runs. Its mean is the per-index mean and all components share
  one within-index covariance, shrunk (Ledoit–Wolf) so it stays well conditioned
  with few networks. Closed form, no EM; a vector scores against its own component.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from sklearn.covariance import ledoit_wolf
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture

LOG_2PI = np.log(2 * np.pi)


class Projection:
    """The fitted PCA's mean and components: all that ``transform`` needs, and all we store."""

    def __init__(self, mean: np.ndarray, components: np.ndarray) -> None:
        self.mean_ = mean
        self.components_ = components

    @classmethod
    def fit(cls, vectors: np.ndarray, variance: float) -> Projection:
        pca = PCA(n_components=variance, svd_solver="full").fit(vectors)
        return cls(pca.mean_, pca.components_)

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float64) - self.mean_) @ self.components_.T

    @property
    def n_components_(self) -> int:
        return int(self.components_.shape[0])


def _check_stack(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 3 or X.shape[0] < 2:
        raise ValueError(f"expected (n_networks ≥ 2, n_vectors, dim), got {X.shape}")
    return X


class IndexAlignedGaussian:
    def __init__(self, *, variance: float = 0.95) -> None:
        self.variance = variance

    def fit(self, X: np.ndarray, *, projection: Projection | None = None) -> IndexAlignedGaussian:
        """``projection``: a PCA already fitted (shared across cross-fitting folds)."""
        X = _check_stack(X)
        n_networks, n_vectors, dim = X.shape
        self.pca_ = projection or Projection.fit(X.reshape(-1, dim), self.variance)
        Z = self.pca_.transform(X.reshape(-1, dim)).reshape(n_networks, n_vectors, -1)
        self.means_ = Z.mean(axis=0)
        residuals = (Z - self.means_).reshape(-1, Z.shape[-1])
        # centred per index already: assume_centered keeps the estimator from re-centring
        covariance, self.shrinkage_ = ledoit_wolf(residuals, assume_centered=True)
        # n_networks − 1 degrees of freedom per index, not n_networks
        covariance *= n_networks / (n_networks - 1)
        self._set_covariance(covariance)
        return self

    def _set_covariance(self, covariance: np.ndarray) -> None:
        self.covariance_ = covariance
        self._cho = cho_factor(covariance, lower=True)
        self._logdet = 2.0 * np.sum(np.log(np.diag(self._cho[0])))
        self.n_components_ = self.means_.shape[0]

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The learned state, without the (shared) projection."""
        return {"means": self.means_, "covariance": self.covariance_}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], projection: Projection) -> IndexAlignedGaussian:
        model = cls()
        model.pca_ = projection
        model.means_ = arrays["means"]
        model._set_covariance(arrays["covariance"])
        return model

    def score_samples(self, x: np.ndarray) -> np.ndarray:
        """Log-likelihood of each vector under its own index's component."""
        z = self.pca_.transform(x)
        if z.shape[0] != self.means_.shape[0]:
            raise ValueError(f"expected {self.means_.shape[0]} vectors, got {z.shape[0]}")
        diff = z - self.means_
        mahalanobis = np.einsum("ij,ij->i", diff, cho_solve(self._cho, diff.T).T)
        return -0.5 * (mahalanobis + self._logdet + z.shape[1] * LOG_2PI)

    @property
    def n_dims_(self) -> int:
        return int(self.pca_.n_components_)


class PCAGaussianMixture:
    def __init__(
        self,
        *,
        variance: float = 0.95,
        components: Sequence[int] | None = None,
        covariance_type: str = "full",
        max_iter: int = 100,
        random_state: int = 0,
    ) -> None:
        self.variance = variance
        self.components = components
        self.covariance_type = covariance_type
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, X: np.ndarray, *, projection: Projection | None = None) -> PCAGaussianMixture:
        X = _check_stack(X)
        n_networks, n_vectors, dim = X.shape
        self.pca_ = projection or Projection.fit(X.reshape(-1, dim), self.variance)
        Z = self.pca_.transform(X.reshape(-1, dim))
        grid = sorted(set(self.components or default_grid(n_vectors)))
        grid = [k for k in grid if k <= len(Z)]
        self.bic_: dict[int, float] = {}
        self.aic_: dict[int, float] = {}
        best: GaussianMixture | None = None
        for k in grid:
            gmm = GaussianMixture(
                n_components=k,
                covariance_type=self.covariance_type,
                max_iter=self.max_iter,
                reg_covar=1e-6,
                random_state=self.random_state,
            ).fit(Z)
            self.bic_[k] = float(gmm.bic(Z))
            self.aic_[k] = float(gmm.aic(Z))
            if best is None or self.bic_[k] < self.bic_[best.n_components]:
                best = gmm
        assert best is not None
        self.gmm_ = best
        self.n_components_ = best.n_components
        return self

    def score_samples(self, x: np.ndarray) -> np.ndarray:
        return self.gmm_.score_samples(self.pca_.transform(x))

    def to_arrays(self) -> dict[str, np.ndarray]:
        g = self.gmm_
        return {"weights": g.weights_, "means": g.means_, "covariances": g.covariances_,
                "precisions_cholesky": g.precisions_cholesky_}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], projection: Projection, *, covariance_type: str = "full") -> PCAGaussianMixture:
        model = cls(covariance_type=covariance_type)
        model.pca_ = projection
        gmm = GaussianMixture(n_components=len(arrays["weights"]), covariance_type=covariance_type)
        gmm.weights_, gmm.means_ = arrays["weights"], arrays["means"]
        gmm.covariances_, gmm.precisions_cholesky_ = arrays["covariances"], arrays["precisions_cholesky"]
        model.gmm_ = gmm
        model.n_components_ = gmm.n_components
        return model

    @property
    def n_dims_(self) -> int:
        return int(self.pca_.n_components_)


def default_grid(n_vectors: int) -> list[int]:
    """Powers of two up to the number of vectors per network, and that number (§4.5)."""
    grid = [2**k for k in range(0, 12) if 2**k < n_vectors]
    return [*grid, n_vectors]
