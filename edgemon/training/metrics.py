"""Scores of a clustering against known condition labels, and without labels.

A cluster-to-label mapping is learned on the training side and applied to
the test side, so that an accuracy measures how well the clusters a model
found name the conditions of data it never saw:

* **majority mapping**: each cluster takes the most frequent training label
  among its windows (ties go to the label that sorts first), so several
  clusters may share a label.  This is how ``edgemon train`` names states.
* **Hungarian matching**: a one-to-one assignment of clusters to labels that
  maximises the number of training windows whose cluster's label matches
  (``scipy.optimize.linear_sum_assignment``).  With more clusters than
  labels, the clusters left over have no label.

Noise (cluster :data:`NOISE`, which OPTICS gives to windows in no dense
region) is never dropped:

* the label-agreement scores (ARI, NMI, homogeneity, completeness,
  V-measure) treat all noise windows as one more cluster;
* both accuracies count a noise window as wrong, because it has no label;
  so does a window in a cluster that the mapping left without a label;
* the silhouette is computed on the windows that are not noise, because a
  noise "cluster" has no centre;
* :func:`noise_share` reports how many windows are noise.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import numpy as np

from edgemon.errors import ConfigError

__all__ = [
    "LABEL_SCORES",
    "NOISE",
    "hungarian_mapping",
    "label_scores",
    "majority_mapping",
    "mapped_accuracy",
    "noise_share",
    "silhouette",
]

#: Cluster id of a noise window (OPTICS).
NOISE = -1

#: Names of the scores :func:`label_scores` returns, in order.
LABEL_SCORES = ("ari", "nmi", "homogeneity", "completeness", "v_measure")


def majority_mapping(clusters: np.ndarray, labels: np.ndarray) -> dict[int, str]:
    """Map each cluster to the most frequent label among its windows.

    Parameters
    ----------
    clusters : ndarray of shape (n_windows,), int
        Cluster of each training window; :data:`NOISE` windows are ignored.
    labels : ndarray of shape (n_windows,)
        Condition label of each training window.

    Returns
    -------
    dict of int to str
        A label for every cluster that has at least one training window.
        Ties go to the label that sorts first.
    """
    clusters, labels = _pair(clusters, labels)
    mapping = {}
    for cluster in np.unique(clusters):
        if cluster == NOISE:
            continue
        counts = Counter(labels[clusters == cluster].tolist())
        label, _ = min(counts.items(), key=lambda item: (-item[1], item[0]))
        mapping[int(cluster)] = label
    return mapping


def hungarian_mapping(clusters: np.ndarray, labels: np.ndarray) -> dict[int, str]:
    """Map clusters to labels one to one, maximising the training windows that agree.

    Parameters
    ----------
    clusters : ndarray of shape (n_windows,), int
        Cluster of each training window; :data:`NOISE` windows are ignored.
    labels : ndarray of shape (n_windows,)
        Condition label of each training window.

    Returns
    -------
    dict of int to str
        ``min(n_clusters, n_labels)`` clusters, each with a different label.
        The other clusters are missing from the mapping.
    """
    from scipy.optimize import linear_sum_assignment

    clusters, labels = _pair(clusters, labels)
    kept = clusters != NOISE
    cluster_ids = np.unique(clusters[kept])
    label_names = np.unique(labels[kept])
    if cluster_ids.size == 0:
        return {}
    contingency = np.zeros((cluster_ids.size, label_names.size), dtype=np.int64)
    rows = np.searchsorted(cluster_ids, clusters[kept])
    columns = np.searchsorted(label_names, labels[kept])
    np.add.at(contingency, (rows, columns), 1)
    matched_rows, matched_columns = linear_sum_assignment(contingency, maximize=True)
    return {
        int(cluster_ids[row]): str(label_names[column])
        for row, column in zip(matched_rows, matched_columns, strict=True)
    }


def mapped_accuracy(clusters: np.ndarray, labels: np.ndarray, mapping: Mapping[int, str]) -> float:
    """Return the share of windows whose cluster's mapped label equals their label.

    Parameters
    ----------
    clusters : ndarray of shape (n_windows,), int
        Cluster of each (test) window.
    labels : ndarray of shape (n_windows,)
        True label of each window.
    mapping : mapping of int to str
        Cluster-to-label mapping learned on the training side.  Noise windows
        and windows of clusters missing from the mapping count as wrong.

    Returns
    -------
    float
        In [0, 1]; NaN for no windows.
    """
    clusters, labels = _pair(clusters, labels)
    if clusters.size == 0:
        return float("nan")
    predicted = np.array([mapping.get(int(cluster)) for cluster in clusters], dtype=object)
    return float(np.mean(predicted == labels.astype(object)))


def label_scores(labels: np.ndarray, clusters: np.ndarray) -> dict[str, float]:
    """Score the agreement of clusters with labels, without any mapping.

    The scores follow scikit-learn's definitions (``adjusted_rand_score``,
    ``normalized_mutual_info_score`` with the arithmetic mean,
    ``homogeneity_completeness_v_measure``), computed here from one
    contingency table because the grid scores many thousands of cells.

    Parameters
    ----------
    labels : ndarray of shape (n_windows,)
        True label of each window.
    clusters : ndarray of shape (n_windows,), int
        Cluster of each window; all :data:`NOISE` windows form one cluster.

    Returns
    -------
    dict
        ``ari`` (adjusted Rand index), ``nmi`` (normalised mutual
        information), ``homogeneity``, ``completeness`` and ``v_measure``.
        All are NaN when the windows carry fewer than two labels, because
        they then carry no information about conditions.
    """
    clusters, labels = _pair(clusters, labels)
    label_names, label_index = np.unique(labels, return_inverse=True)
    if label_names.size < 2:
        return dict.fromkeys(LABEL_SCORES, float("nan"))
    cluster_ids, cluster_index = np.unique(clusters, return_inverse=True)
    contingency = np.zeros((label_names.size, cluster_ids.size))
    np.add.at(contingency, (label_index, cluster_index), 1.0)
    return {"ari": _adjusted_rand(contingency), **_information_scores(contingency)}


def _adjusted_rand(contingency: np.ndarray) -> float:
    """Adjusted Rand index from the pair confusion matrix, as scikit-learn computes it."""
    n = contingency.sum()
    sum_squares = float((contingency**2).sum())
    per_label = contingency.sum(axis=1)
    per_cluster = contingency.sum(axis=0)
    together_both = sum_squares - n
    together_clusters_only = float((contingency @ per_cluster).sum()) - sum_squares
    together_labels_only = float((contingency.T @ per_label).sum()) - sum_squares
    apart_both = n * n - together_clusters_only - together_labels_only - sum_squares
    if together_clusters_only == 0 and together_labels_only == 0:
        return 1.0
    numerator = 2.0 * (together_both * apart_both - together_labels_only * together_clusters_only)
    denominator = (together_both + together_labels_only) * (together_labels_only + apart_both) + (
        together_both + together_clusters_only
    ) * (together_clusters_only + apart_both)
    return float(numerator / denominator)


def _information_scores(contingency: np.ndarray) -> dict[str, float]:
    """NMI, homogeneity, completeness and V-measure of a table with at least two labels."""
    n = contingency.sum()
    per_label = contingency.sum(axis=1)
    per_cluster = contingency.sum(axis=0)
    rows, columns = np.nonzero(contingency)
    counts = contingency[rows, columns]
    mutual = float(
        np.sum(counts / n * np.log(counts * n / (per_label[rows] * per_cluster[columns])))
    )
    mutual = max(mutual, 0.0) if per_cluster.size > 1 else 0.0
    entropy_labels = _entropy(per_label)
    entropy_clusters = _entropy(per_cluster)
    homogeneity = mutual / entropy_labels
    completeness = mutual / entropy_clusters if entropy_clusters else 1.0
    total = homogeneity + completeness
    v_measure = 2 * homogeneity * completeness / total if total else 0.0
    normaliser = max((entropy_labels + entropy_clusters) / 2, np.finfo(np.float64).eps)
    return {
        "nmi": mutual / normaliser if mutual else 0.0,
        "homogeneity": homogeneity,
        "completeness": completeness,
        "v_measure": v_measure,
    }


def _entropy(counts: np.ndarray) -> float:
    shares = counts[counts > 0] / counts.sum()
    return float(-np.sum(shares * np.log(shares)))


def silhouette(
    points: np.ndarray, clusters: np.ndarray, *, sample_size: int = 1000, seed: int = 0
) -> float:
    """Return the mean silhouette coefficient of the windows that are not noise.

    Parameters
    ----------
    points : ndarray of shape (n_windows, n_dims)
        Windows in the space the clustering saw (scaled, and projected when
        PCA is used).
    clusters : ndarray of shape (n_windows,), int
    sample_size : int, default=1000
        Windows drawn at random for the coefficient; all when fewer.
    seed : int, default=0
        Seeds the draw.

    Returns
    -------
    float
        In [-1, 1]; NaN unless there are at least two clusters and fewer
        clusters than windows, where the coefficient is undefined.
    """
    from sklearn.metrics import silhouette_score

    clustered = np.asarray(clusters) != NOISE
    points = np.asarray(points)[clustered]
    clusters = np.asarray(clusters)[clustered]
    n_clusters = np.unique(clusters).size
    if n_clusters < 2 or n_clusters >= clusters.size:
        return float("nan")
    size = min(sample_size, clusters.size)
    if size < clusters.size:
        # When one cluster contains nearly every window, a draw can miss the others.
        rng = np.random.default_rng(seed)
        chosen = rng.choice(clusters.size, size=size, replace=False)
        if np.unique(clusters[chosen]).size < 2:
            return float("nan")
        points, clusters = points[chosen], clusters[chosen]
    return float(silhouette_score(points, clusters))


def noise_share(clusters: np.ndarray) -> float:
    """Return the share of windows in the noise cluster; NaN for no windows."""
    clusters = np.asarray(clusters)
    if clusters.size == 0:
        return float("nan")
    return float(np.mean(clusters == NOISE))


def _pair(clusters: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    clusters = np.asarray(clusters).astype(np.int64, copy=False)
    labels = np.asarray(labels).astype(str)
    if clusters.shape != labels.shape or clusters.ndim != 1:
        raise ConfigError(
            f"clusters and labels must be 1-D and of equal length, got shapes "
            f"{clusters.shape} and {labels.shape}"
        )
    return clusters, labels
