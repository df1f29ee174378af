"""Score feature vectors with numpy alone, from the parameters in the model metadata.

This backend runs where onnxruntime cannot be installed (32-bit ARM Raspberry
Pi OS).  It computes what the exported ONNX graph computes: the
``StandardScaler``, the optional PCA projection, then either the Euclidean
distance to each K-means centroid or the Gaussian-mixture log-likelihood.

Distances are computed from differences (``x - c``) rather than the expanded
``|x|^2 - 2 x.c + |c|^2`` form of the ONNX graph, so they are never negative.
The log-sum-exp subtracts the row maximum.  A point far from every component
therefore gets a large finite log-likelihood instead of ``-inf``, as long as
its squared distances fit in float64.
"""

from __future__ import annotations

import numpy as np

from edgemon.model.metadata import ScorerParameters

__all__ = ["NumpyScorer", "gmm_log_likelihood", "kmeans_distances", "project"]

_LOG_2PI = float(np.log(2.0 * np.pi))
#: Elements of the largest array of differences that kmeans_distances computes at once.
_CHUNK_ELEMENTS = 1 << 18


def project(features: np.ndarray, params: ScorerParameters) -> np.ndarray:
    """Scale the features and apply the PCA projection if the model has one.

    Parameters
    ----------
    features : ndarray of shape (n_windows, n_features), float64
    params : ScorerParameters

    Returns
    -------
    ndarray of shape (n_windows, n_dims), float64
    """
    scaled = (features - params.scaler_mean) / params.scaler_scale
    if params.pca_components is None:
        return scaled
    return (scaled - params.pca_mean) @ params.pca_components.T


def kmeans_distances(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Return the Euclidean distance of each point to each centroid.

    Parameters
    ----------
    points : ndarray of shape (n_windows, n_dims)
    centroids : ndarray of shape (n_clusters, n_dims)

    Returns
    -------
    ndarray of shape (n_windows, n_clusters), non-negative
    """
    squared = np.empty((points.shape[0], centroids.shape[0]))
    # All centroids at once, in chunks of rows that bound the (rows, centroids,
    # dims) differences, because the daemon scores a window or two per call.
    step = max(1, _CHUNK_ELEMENTS // max(1, centroids.size))
    for start in range(0, points.shape[0], step):
        diff = points[start : start + step, np.newaxis, :] - centroids
        squared[start : start + step] = np.einsum("ikj,ikj->ik", diff, diff)
    return np.sqrt(squared)


def _log_gaussian(points: np.ndarray, params: ScorerParameters) -> np.ndarray:
    """Return log N(x | mean_k, cov_k) of each point and component, shape (n, k)."""
    means = params.means
    chol = params.precisions_cholesky
    covariance_type = params.covariance_type
    n_components, n_dims = means.shape
    squared = np.empty((points.shape[0], n_components))

    if covariance_type == "full":
        for k in range(n_components):
            y = (points - means[k]) @ chol[k]
            squared[:, k] = np.einsum("ij,ij->i", y, y)
        log_det = np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
    elif covariance_type == "tied":
        for k in range(n_components):
            y = (points - means[k]) @ chol
            squared[:, k] = np.einsum("ij,ij->i", y, y)
        log_det = np.full(n_components, np.log(np.diagonal(chol)).sum())
    elif covariance_type == "diag":
        for k in range(n_components):
            y = (points - means[k]) * chol[k]
            squared[:, k] = np.einsum("ij,ij->i", y, y)
        log_det = np.log(chol).sum(axis=1)
    else:  # spherical
        for k in range(n_components):
            diff = points - means[k]
            squared[:, k] = np.einsum("ij,ij->i", diff, diff) * chol[k] ** 2
        log_det = n_dims * np.log(chol)

    return -0.5 * (n_dims * _LOG_2PI + squared) + log_det


def gmm_log_likelihood(
    points: np.ndarray, params: ScorerParameters
) -> tuple[np.ndarray, np.ndarray]:
    """Return the most likely component and the log-likelihood of each point.

    Parameters
    ----------
    points : ndarray of shape (n_windows, n_dims)
        Scaled (and projected) features.
    params : ScorerParameters
        GMM parameters with ``weights``, ``means``, ``precisions_cholesky``
        and ``covariance_type`` set.

    Returns
    -------
    labels : ndarray of shape (n_windows,), int64
    log_likelihood : ndarray of shape (n_windows,), float64
        ``log sum_k w_k N(x | mean_k, cov_k)``, as scikit-learn's
        ``score_samples``.  ``-inf`` only where the squared Mahalanobis
        distance overflows float64.
    """
    weighted = _log_gaussian(points, params) + np.log(params.weights)
    labels = np.argmax(weighted, axis=1).astype(np.int64)
    top = weighted.max(axis=1)
    finite = np.isfinite(top)
    log_likelihood = top.copy()
    shifted = weighted[finite] - top[finite, np.newaxis]
    log_likelihood[finite] += np.log(np.exp(shifted).sum(axis=1))
    return labels, log_likelihood


class NumpyScorer:
    """Score features with numpy from the parameters stored in the model metadata.

    Parameters
    ----------
    algorithm : {"kmeans", "gmm"}
    params : ScorerParameters
        Validated parameters (``ModelMetadata.validate`` checks their shapes).
    """

    backend = "numpy"

    def __init__(self, algorithm: str, params: ScorerParameters) -> None:
        self.algorithm = algorithm
        self.params = params

    def score(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the cluster and raw novelty score of each row of ``features``.

        Parameters
        ----------
        features : ndarray of shape (n_windows, n_features), float64

        Returns
        -------
        clusters : ndarray of shape (n_windows,), int64
        novelty : ndarray of shape (n_windows,), float64
            Distance to the nearest centroid (K-means) or negative
            log-likelihood (GMM).
        """
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            points = project(features, self.params)
            if self.algorithm == "kmeans":
                distances = kmeans_distances(points, self.params.centroids)
                clusters = np.argmin(distances, axis=1).astype(np.int64)
                return clusters, distances[np.arange(len(clusters)), clusters]
            clusters, log_likelihood = gmm_log_likelihood(points, self.params)
            return clusters, -log_likelihood
