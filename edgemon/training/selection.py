"""Choose the number of clusters automatically.

* Gaussian mixture: the Bayesian information criterion (BIC) of a mixture
  fitted for each candidate k; the smallest BIC wins.
* K-means: the mean silhouette coefficient of each candidate k, computed on
  a random subsample of at most ``sample_size`` points for speed; the largest
  wins.  A mean silhouette below :data:`MIN_SILHOUETTE` (0.25) is commonly
  read as "no substantial structure".  When even the best candidate scores
  below it, the silhouette cannot tell the candidates apart, so the elbow of
  the inertia curve decides instead.  The elbow is the k whose point lies
  farthest from the straight line through the first and last points of the
  curve, with both axes scaled to [0, 1].
"""

from __future__ import annotations

import logging

import numpy as np

from edgemon.errors import ConfigError
from edgemon.model.metadata import Selection

__all__ = ["MIN_SILHOUETTE", "elbow_index", "select_n_clusters"]

logger = logging.getLogger(__name__)

#: Silhouette below which K-means selection falls back to the elbow rule.
MIN_SILHOUETTE = 0.25


def select_n_clusters(
    points: np.ndarray,
    *,
    algorithm: str,
    k_range: tuple[int, int] = (2, 10),
    covariance_type: str = "full",
    seed: int = 0,
    sample_size: int = 2000,
    progress: bool = False,
) -> tuple[int, Selection]:
    """Return the number of clusters to fit and how it was chosen.

    Parameters
    ----------
    points : ndarray of shape (n_windows, n_dims)
        Scaled (and projected) training features.
    algorithm : {"kmeans", "gmm"}
    k_range : (int, int), default=(2, 10)
        Smallest and largest candidate, inclusive; the largest is capped at
        ``n_windows - 1``.
    covariance_type : str, default="full"
        Covariance type of the mixtures compared by BIC.
    seed : int, default=0
        Seeds the estimators and the silhouette subsample.
    sample_size : int, default=2000
        Points used for each silhouette coefficient.
    progress : bool, default=False
        Show a tqdm progress bar over the candidates.

    Returns
    -------
    k : int
    selection : Selection
        Method (``"bic"``, ``"silhouette"`` or ``"elbow"``) and the score of
        each candidate (BIC, silhouette, or K-means inertia for the elbow).
    """
    low, high = k_range
    high = min(high, points.shape[0] - 1)
    if low < 2 or high < low:
        raise ConfigError(
            f"k_range must satisfy 2 <= low <= high < n_windows={points.shape[0]}, got {k_range}"
        )
    candidates = range(low, high + 1)
    if progress:
        from tqdm.auto import tqdm

        candidates = tqdm(candidates, desc="choosing k", unit="k")
    if algorithm == "gmm":
        return _select_by_bic(points, candidates, covariance_type, seed)
    return _select_by_silhouette(points, candidates, seed, sample_size)


def _select_by_bic(points, candidates, covariance_type: str, seed: int) -> tuple[int, Selection]:
    from sklearn.mixture import GaussianMixture

    scores = {}
    for k in candidates:
        mixture = GaussianMixture(k, covariance_type=covariance_type, random_state=seed)
        scores[k] = float(mixture.fit(points).bic(points))
    best = min(scores, key=scores.__getitem__)
    logger.info("chose %d clusters by BIC (%.6g)", best, scores[best])
    return best, Selection(method="bic", scores=scores)


def _select_by_silhouette(points, candidates, seed: int, sample_size: int) -> tuple[int, Selection]:
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    silhouettes = {}
    inertias = {}
    for k in candidates:
        kmeans = KMeans(k, n_init=4, random_state=seed).fit(points)
        inertias[k] = float(kmeans.inertia_)
        silhouettes[k] = float(
            silhouette_score(
                points,
                kmeans.labels_,
                sample_size=min(sample_size, points.shape[0]),
                random_state=seed,
            )
        )
    best = max(silhouettes, key=silhouettes.__getitem__)
    if silhouettes[best] >= MIN_SILHOUETTE or len(inertias) < 3:
        logger.info("chose %d clusters by silhouette (%.3f)", best, silhouettes[best])
        return best, Selection(method="silhouette", scores=silhouettes)

    ks = list(inertias)
    elbow = ks[elbow_index(np.array(ks, dtype=float), np.array(list(inertias.values())))]
    note = (
        f"best silhouette {silhouettes[best]:.3f} at k={best} is below {MIN_SILHOUETTE}; "
        "chose the elbow of the inertia curve"
    )
    logger.info("chose %d clusters by the elbow rule: %s", elbow, note)
    return elbow, Selection(method="elbow", scores=inertias, note=note)


def elbow_index(x: np.ndarray, y: np.ndarray) -> int:
    """Return the index of the point farthest from the chord of a decreasing curve.

    Parameters
    ----------
    x, y : ndarray of shape (n_points,)
        The curve, ``x`` increasing; at least 3 points.

    Returns
    -------
    int
        Index into ``x`` of the elbow; 0 when the curve is a straight line.
    """
    x_scaled = (x - x[0]) / (x[-1] - x[0])
    y_span = y[0] - y[-1]
    if y_span == 0:
        return 0
    y_scaled = (y[0] - y) / y_span
    # Distance above the chord y = x of the normalised, increasing curve.
    return int(np.argmax(y_scaled - x_scaled))
