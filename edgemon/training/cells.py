"""One cell of the evaluation grid: fit on the training side, score the test side.

The steps are those of ``edgemon train`` (:mod:`edgemon.training.fit`).
``StandardScaler``, optional ``PCA``, then ``KMeans`` or ``GaussianMixture``
are fitted on the training windows.  Each cluster is named after the
majority label of its training windows.  The novelty threshold is learned
from the training scores with :func:`edgemon.training.fit.novelty_threshold`
and its default quantile and margin, and it decides which test windows
would be reported ``unknown``.

One difference keeps the grid affordable: each cell is one initialisation
(``n_init=1``, seeded by the cell's seed), where ``edgemon train`` keeps the
best of 10 K-means and 3 mixture initialisations.  The grid's seeds are
therefore its restarts, and the spread over seeds shows how much a single
fit depends on its initialisation.

OPTICS has no ``predict``.  A test window takes the cluster of its nearest
training window when it lies within that window's core distance, that is
when OPTICS would count it as directly density-reachable.  Otherwise it is
noise.  OPTICS has no novelty score, so its ``unknown_rate`` is NaN and its
``noise_share`` says how many test windows fell outside every cluster.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# Imported at module level so that their OpenMP and BLAS libraries are loaded
# before run_cells limits the threads, because threadpoolctl limits only the
# libraries that are already loaded.
from sklearn.cluster import OPTICS, KMeans
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from edgemon.training import metrics

__all__ = [
    "OPTICS_ALGORITHM",
    "OPTICS_MIN_SAMPLES",
    "RESULT_FIELDS",
    "Prediction",
    "cluster",
    "evaluate_cell",
    "fit_predict",
    "project",
    "run_cells",
    "score_prediction",
]

#: OPTICS ``min_samples``, as a share of the training windows (at least 5).
OPTICS_MIN_SAMPLES = 0.01
#: OPTICS neighbour search.  Brute force is exact, like the trees, and about a
#: third faster for a few thousand windows of a few dozen features.
OPTICS_ALGORITHM = "brute"

#: Fields of a cell's result, besides ``status``.
RESULT_FIELDS = (
    *metrics.LABEL_SCORES,
    "accuracy_majority",
    "accuracy_hungarian",
    "silhouette",
    "noise_share",
    "unknown_rate",
    "clusters_found",
    "components",
    "n_train",
    "n_test",
    "warnings",
    "cpu_seconds",
)


@dataclass(frozen=True, eq=False)
class Prediction:
    """A clustering fitted on the training windows and its output on the test windows."""

    #: Cluster of each training and test window; :data:`metrics.NOISE` for OPTICS noise.
    train_clusters: np.ndarray
    test_clusters: np.ndarray
    #: Test windows in the space the clustering saw, shape (n_test, n_components).
    test_points: np.ndarray
    #: Cluster-to-label mappings learned on the training side.
    majority: dict[int, str]
    hungarian: dict[int, str]
    #: True for test windows above the novelty threshold; None for OPTICS.
    unknown: np.ndarray | None


def project(
    train: np.ndarray,
    test: np.ndarray,
    pca: int | float | None,
    weights: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Scale, and optionally project, the windows with transforms fitted on the training side.

    Parameters
    ----------
    train, test : ndarray of shape (n_windows, n_columns), float64
    pca : None, int or float
        None: scaling only.  An int: that many principal components.  A
        float in (0, 1): as many components as explain that share of variance.
    weights : sequence of float, optional
        One factor per column, applied after standardisation and before PCA,
        as ``edgemon train`` applies its ``feature_weights``.

    Returns
    -------
    train_points, test_points : ndarray of shape (n_windows, n_components)
    """
    scaler = StandardScaler().fit(train)
    if weights is not None:
        scaler.scale_ = scaler.scale_ / np.asarray(weights, dtype=np.float64)
    train_points, test_points = scaler.transform(train), scaler.transform(test)
    if pca is not None:
        # The SVD of these small matrices is exact, so the random state never matters.
        projection = PCA(n_components=pca, random_state=0).fit(train_points)
        train_points, test_points = (
            projection.transform(train_points),
            projection.transform(test_points),
        )
    return train_points, test_points


def cluster(
    train_points: np.ndarray,
    train_labels: np.ndarray,
    test_points: np.ndarray,
    *,
    algorithm: str,
    k: int | None,
    seed: int | None,
    balance: bool = False,
) -> Prediction:
    """Fit one clustering algorithm on projected training windows and apply it to the test windows.

    Parameters
    ----------
    train_points, test_points : ndarray of shape (n_windows, n_components)
        From :func:`project`.
    train_labels : ndarray of shape (n_train,)
    algorithm : str
        ``"kmeans"``, ``"gmm-<covariance type>"`` or ``"optics"``.
    k : int or None
        Number of clusters; None for OPTICS.
    seed : int or None
        Seeds the initialisation; None for OPTICS, which is deterministic.
    balance : bool, default=False
        Give every label the same total weight in the fit, as ``edgemon
        train`` does with ``balance_labels``.  OPTICS takes no weights and
        ignores it.
    """
    if algorithm == "optics":
        return _optics(train_points, train_labels, test_points)
    return _centroid_model(train_points, train_labels, test_points, algorithm, k, seed, balance)


def fit_predict(
    train: np.ndarray,
    train_labels: np.ndarray,
    test: np.ndarray,
    *,
    algorithm: str,
    k: int | None,
    pca: int | float | None,
    seed: int | None,
    balance: bool = False,
    weights: Sequence[float] | None = None,
) -> Prediction:
    """Project, then cluster: one grid setting from feature matrices to a prediction."""
    train_points, test_points = project(train, test, pca, weights)
    return cluster(
        train_points,
        train_labels,
        test_points,
        algorithm=algorithm,
        k=k,
        seed=seed,
        balance=balance,
    )


def evaluate_cell(
    train_points: np.ndarray,
    train_labels: np.ndarray,
    test_points: np.ndarray,
    test_labels: np.ndarray,
    *,
    algorithm: str,
    k: int | None,
    seed: int | None,
    balance: bool = False,
) -> dict[str, Any]:
    """Cluster and score one grid cell on projected windows.

    Returns
    -------
    dict
        ``status`` (``"ok"``, or ``"failed: <message>"`` when scikit-learn
        rejected the fit, with every score NaN) and :data:`RESULT_FIELDS`.
        ``warnings`` counts the warnings the fit raised (mostly scikit-learn's
        ``ConvergenceWarning``); ``cpu_seconds`` is the CPU time of the fit
        and its scores in this process.
    """
    started = time.process_time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            prediction = cluster(
                train_points,
                train_labels,
                test_points,
                algorithm=algorithm,
                k=k,
                seed=seed,
                balance=balance,
            )
        except (ValueError, np.linalg.LinAlgError) as exc:
            return _failed(exc, len(train_points), len(test_points), len(caught), started)
    result = score_prediction(prediction, test_labels, seed=seed or 0)
    result.update(
        status="ok",
        n_train=len(train_points),
        n_test=len(test_points),
        warnings=len(caught),
        cpu_seconds=time.process_time() - started,
    )
    return result


def score_prediction(prediction: Prediction, test_labels: np.ndarray, *, seed: int = 0) -> dict:
    """Return the scores of a prediction on the test windows.

    See :mod:`edgemon.training.metrics` for the scores and how noise counts.
    """
    clusters = prediction.test_clusters
    result: dict[str, Any] = metrics.label_scores(test_labels, clusters)
    single_label = np.unique(test_labels).size < 2
    for name, mapping in (
        ("accuracy_majority", prediction.majority),
        ("accuracy_hungarian", prediction.hungarian),
    ):
        result[name] = (
            float("nan")
            if single_label
            else metrics.mapped_accuracy(clusters, test_labels, mapping)
        )
    # The silhouette costs about as much as a fit, so it is computed only
    # where no labels exist and the label scores cannot be computed.
    result["silhouette"] = (
        metrics.silhouette(prediction.test_points, clusters, seed=seed)
        if single_label
        else float("nan")
    )
    result["noise_share"] = metrics.noise_share(clusters)
    result["unknown_rate"] = (
        float("nan") if prediction.unknown is None else float(np.mean(prediction.unknown))
    )
    found = np.unique(prediction.train_clusters)
    result["clusters_found"] = int(np.count_nonzero(found != metrics.NOISE))
    result["components"] = int(prediction.test_points.shape[1])
    return result


def run_cells(
    train: np.ndarray,
    train_labels: np.ndarray,
    test: np.ndarray,
    test_labels: np.ndarray,
    cells: Sequence[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Evaluate several cells on the same feature matrices; the unit of work of a joblib worker.

    Each cell is a mapping with ``algorithm``, ``k``, ``pca`` and ``seed``,
    and optionally ``balance`` and ``weights`` (see :func:`cluster` and
    :func:`project`).  The projection is fitted once per PCA setting and
    weights.  BLAS and OpenMP are held to one thread, because the cells
    already run in parallel processes and nested threads would only compete
    for the same cores.
    """
    results = []
    projections: dict[Any, tuple[np.ndarray, np.ndarray] | Exception] = {}
    with threadpool_limits(limits=1):
        for cell in cells:
            started = time.process_time()
            weights = cell.get("weights")
            key = (cell["pca"], None if weights is None else tuple(weights))
            if key not in projections:
                try:
                    projections[key] = project(train, test, cell["pca"], weights)
                except (ValueError, np.linalg.LinAlgError) as exc:
                    projections[key] = exc
            projection = projections[key]
            if isinstance(projection, Exception):
                results.append(_failed(projection, len(train), len(test), 0, started))
                continue
            train_points, test_points = projection
            results.append(
                evaluate_cell(
                    train_points,
                    train_labels,
                    test_points,
                    test_labels,
                    algorithm=cell["algorithm"],
                    k=cell["k"],
                    seed=cell["seed"],
                    balance=cell.get("balance", False),
                )
            )
    return results


def _failed(
    exc: Exception, n_train: int, n_test: int, n_warnings: int, started: float
) -> dict[str, Any]:
    result: dict[str, Any] = dict.fromkeys(RESULT_FIELDS, float("nan"))
    result.update(
        status=f"failed: {exc}",
        n_train=n_train,
        n_test=n_test,
        warnings=n_warnings,
        cpu_seconds=time.process_time() - started,
    )
    return result


def _centroid_model(
    train_points, train_labels, test_points, algorithm, k, seed, balance
) -> Prediction:
    from edgemon.model.metadata import NOVELTY_KINDS
    from edgemon.training.fit import (
        DEFAULT_NOVELTY_MARGIN,
        DEFAULT_NOVELTY_QUANTILE,
        _fit_estimator,
        novelty_threshold,
    )

    name, _, covariance_type = algorithm.partition("-")
    if name == "kmeans":
        estimator = KMeans(n_clusters=k, n_init=1, random_state=seed)
    else:
        estimator = GaussianMixture(
            n_components=k, covariance_type=covariance_type, n_init=1, random_state=seed
        )
    # NOTE: the label balance of edgemon train (sample weights for K-means,
    # seeded oversampling for a mixture) comes from its private helper, so
    # that the two cannot drift apart.
    _fit_estimator(estimator, name, train_points, train_labels, balance, seed)
    if name == "kmeans":
        train_scores = estimator.transform(train_points).min(axis=1)
        test_scores = estimator.transform(test_points).min(axis=1)
    else:
        train_scores = -estimator.score_samples(train_points)
        test_scores = -estimator.score_samples(test_points)
    novelty = novelty_threshold(
        train_scores,
        kind=NOVELTY_KINDS[name],
        quantile=DEFAULT_NOVELTY_QUANTILE,
        margin=DEFAULT_NOVELTY_MARGIN,
    )
    train_clusters = estimator.predict(train_points).astype(np.int64)
    return Prediction(
        train_clusters=train_clusters,
        test_clusters=estimator.predict(test_points).astype(np.int64),
        test_points=test_points,
        majority=metrics.majority_mapping(train_clusters, train_labels),
        hungarian=metrics.hungarian_mapping(train_clusters, train_labels),
        unknown=test_scores > novelty.threshold,
    )


def _optics(train_points, train_labels, test_points) -> Prediction:
    min_samples = max(5, round(OPTICS_MIN_SAMPLES * len(train_points)))
    optics = OPTICS(min_samples=min_samples, algorithm=OPTICS_ALGORITHM).fit(train_points)
    train_clusters = optics.labels_.astype(np.int64)

    distances, nearest = NearestNeighbors(n_neighbors=1).fit(train_points).kneighbors(test_points)
    nearest = nearest[:, 0]
    reachable = distances[:, 0] <= optics.core_distances_[nearest]
    test_clusters = np.where(reachable, train_clusters[nearest], metrics.NOISE)
    return Prediction(
        train_clusters=train_clusters,
        test_clusters=test_clusters,
        test_points=test_points,
        majority=metrics.majority_mapping(train_clusters, train_labels),
        hungarian=metrics.hungarian_mapping(train_clusters, train_labels),
        unknown=None,
    )
