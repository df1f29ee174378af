"""Fit a clustering model on labelled recordings.

Steps of :func:`train_model`:

1. Cut each recording into windows of ``window`` samples every ``hop``
   samples, and drop the windows the daemon would report as ``invalid``
   (constant or non-finite samples), logging how many.
2. Compute features with :class:`edgemon.features.FeatureExtractor`, the
   same code the daemon runs.
3. Fit ``StandardScaler``, optionally ``PCA``, then ``KMeans`` or
   ``GaussianMixture`` (:func:`fit_feature_matrix`).  The number of clusters
   is the caller's or chosen by :mod:`edgemon.training.selection`.
4. Name each cluster after the most frequent label among its training
   windows, and record counts and purity.
5. Learn the novelty threshold from the training scores:
   ``threshold = q + margin * (q - median)``, with ``q`` the
   ``novelty_quantile`` of the scores.  By construction at most
   ``1 - novelty_quantile`` of the training windows score above ``q``, and
   the margin, measured in the spread of the scores, leaves room for new
   data from the same machine.  The rule is invariant to shifts and scales
   of the score, so it suits distances and negative log-likelihoods alike.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from edgemon.errors import ConfigError, RecordingError
from edgemon.model.metadata import (
    ALGORITHMS,
    COVARIANCE_TYPES,
    NOVELTY_KINDS,
    ClusterSummary,
    Novelty,
    Selection,
    TrainingFile,
    TrainingSummary,
)

__all__ = [
    "DEFAULT_NOVELTY_MARGIN",
    "DEFAULT_NOVELTY_QUANTILE",
    "ClusterFit",
    "TrainedModel",
    "cap_clusters",
    "cut_windows",
    "fit_feature_matrix",
    "novelty_threshold",
    "train_model",
]

logger = logging.getLogger(__name__)

#: Quantile of the training novelty scores that anchors the threshold.
DEFAULT_NOVELTY_QUANTILE = 0.99
#: Distance beyond the quantile, in units of (quantile - median) of the training scores.
DEFAULT_NOVELTY_MARGIN = 1.0


@dataclass(frozen=True, eq=False)
class ClusterFit:
    """A fitted pipeline and what training learned about its clusters."""

    #: ``Pipeline([("scaler", ...), ("pca", ...)?, ("estimator", ...)])``.
    pipeline: Any
    algorithm: str
    #: Cluster of each training window, shape (n_windows,).
    assignments: np.ndarray
    #: Novelty score of each training window, shape (n_windows,).
    scores: np.ndarray
    clusters: tuple[ClusterSummary, ...]
    novelty: Novelty
    selection: Selection


@dataclass(frozen=True, eq=False)
class TrainedModel:
    """Everything :func:`edgemon.training.export.export_model` needs to write a model file."""

    pipeline: Any
    algorithm: str
    #: Training features, shape (n_windows, n_features), float64.
    features: np.ndarray
    #: Label of each training window, shape (n_windows,).
    labels: np.ndarray
    #: Cluster of each training window, shape (n_windows,).
    assignments: np.ndarray
    clusters: tuple[ClusterSummary, ...]
    novelty: Novelty
    selection: Selection
    pca: int | float | None
    #: ``FeatureExtractor.to_dict()`` of the extractor that computed ``features``.
    feature_spec: dict[str, Any]
    columns: tuple[str, ...]
    #: Hz.
    sample_rate: float
    channels: tuple[str, ...]
    window: int
    hop: int
    training: TrainingSummary

    @property
    def states(self) -> tuple[str, ...]:
        """State name of each cluster."""
        return tuple(cluster.state for cluster in self.clusters)


def train_model(
    recordings: Sequence,
    *,
    features: Sequence[str] | Any,
    window: int,
    hop: int,
    algorithm: str = "kmeans",
    n_clusters: int | None = None,
    covariance_type: str = "full",
    pca: int | float | None = None,
    seed: int = 0,
    novelty_quantile: float = DEFAULT_NOVELTY_QUANTILE,
    novelty_margin: float = DEFAULT_NOVELTY_MARGIN,
    k_range: tuple[int, int] = (2, 10),
    balance_labels: bool = False,
    feature_weights: str | Sequence[float] | None = None,
    min_windows_per_cluster: int | None = None,
    dataset: str = "files",
    progress: bool = False,
) -> TrainedModel:
    """Fit a clustering model on labelled recordings.

    Parameters
    ----------
    recordings : sequence of LabelledRecording
        From :func:`edgemon.training.datasets.load_dataset`; all at one
        sample rate with the same channels.
    features : sequence of str or FeatureExtractor
        Feature names, or an extractor configured for the recordings' sample
        rate, channels and ``window``.
    window : int
        Samples per window.
    hop : int
        Samples between the starts of consecutive windows of one recording.
    algorithm : {"kmeans", "gmm"}, default="kmeans"
    n_clusters : int, optional
        Number of clusters; None chooses it (BIC for GMM, silhouette or elbow
        for K-means) within ``k_range``.
    covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
        GMM covariance type; ignored for K-means.
    pca : int or float, optional
        None: no PCA.  An int: number of components.  A float in (0, 1): the
        share of variance the components must explain.
    seed : int, default=0
        Seeds the estimators and the selection.
    novelty_quantile : float, default=0.99
        Quantile of the training novelty scores that anchors the threshold.
    novelty_margin : float, default=1.0
        Margin beyond the quantile, in units of ``quantile - median``.
    k_range : (int, int), default=(2, 10)
        Candidates for the automatic choice of ``n_clusters``.
    balance_labels : bool, default=False
        Give every label the same total weight in the fit, so a condition
        with few training windows (often the healthy one) still gets clusters
        of its own. See :func:`fit_feature_matrix`.
    feature_weights : "blocks", sequence of float, or None, default=None
        Weights of the standardised features. ``"blocks"`` gives every
        feature family of every channel (all ``band.rel_db[...]`` columns of
        ``DE``, say) the same total weight, ``1 / sqrt(columns in the family)``
        per column.
    min_windows_per_cluster : int, optional
        With an int ``n_clusters`` taken from a preset rather than chosen
        by the user: fit at most one cluster per this many training windows
        (see :func:`cap_clusters`). The selection is then recorded as
        method ``"preset"``, with the rule in its note.
    dataset : str, default="files"
        Data set kind recorded in the metadata (``"cwru"``, ``"files"``, ...).
    progress : bool, default=False
        Show tqdm progress bars on the long steps.

    Returns
    -------
    TrainedModel

    Raises
    ------
    ConfigError
        If a parameter is invalid.
    RecordingError
        If the recordings disagree on sample rate or channels, or one is
        shorter than a window.
    """
    _check_options(algorithm, n_clusters, covariance_type, pca, novelty_quantile, novelty_margin)
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ConfigError(f"window must be a positive number of samples, got {window!r}")
    if isinstance(hop, bool) or not isinstance(hop, int) or hop < 1:
        raise ConfigError(f"hop must be a positive number of samples, got {hop!r}")
    if min_windows_per_cluster is not None and (
        isinstance(min_windows_per_cluster, bool)
        or not isinstance(min_windows_per_cluster, int)
        or min_windows_per_cluster < 1
    ):
        raise ConfigError(
            "min_windows_per_cluster must be a positive number of windows, "
            f"got {min_windows_per_cluster!r}"
        )
    if len(recordings) == 0:
        raise ConfigError("recordings must contain at least one labelled recording, got none")
    sample_rate, channels = _common_format(recordings)
    extractor = _extractor(features, sample_rate, window, channels)

    matrices, labels, files = [], [], []
    items = recordings
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(recordings, desc="computing features", unit="file")
    for item in items:
        matrix = _recording_features(item.recording, extractor, window, hop)
        matrices.append(matrix)
        labels.extend([item.label] * len(matrix))
        files.append(_training_file(item, len(matrix)))
    feature_matrix = np.concatenate(matrices)
    label_array = np.asarray(labels)

    preset_selection = None
    if n_clusters is not None and min_windows_per_cluster is not None:
        n_clusters, preset_selection = _preset_selection(
            n_clusters, len(feature_matrix), len(set(labels)), min_windows_per_cluster
        )
    fit = fit_feature_matrix(
        feature_matrix,
        label_array,
        algorithm=algorithm,
        n_clusters=n_clusters,
        covariance_type=covariance_type,
        pca=pca,
        seed=seed,
        novelty_quantile=novelty_quantile,
        novelty_margin=novelty_margin,
        k_range=k_range,
        balance_labels=balance_labels,
        feature_weights=_resolve_weights(feature_weights, extractor.columns),
        progress=progress,
    )
    if preset_selection is not None:
        fit = replace(fit, selection=preset_selection)
    options = {"balance_labels": balance_labels}
    if feature_weights is not None:
        options["feature_weights"] = (
            feature_weights if isinstance(feature_weights, str) else list(feature_weights)
        )
    training = TrainingSummary(
        dataset=dataset,
        files=tuple(files),
        n_windows=len(feature_matrix),
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        seed=seed,
        options=options,
    )
    return TrainedModel(
        pipeline=fit.pipeline,
        algorithm=algorithm,
        features=feature_matrix,
        labels=label_array,
        assignments=fit.assignments,
        clusters=fit.clusters,
        novelty=fit.novelty,
        selection=fit.selection,
        pca=pca,
        feature_spec=extractor.to_dict(),
        columns=tuple(extractor.columns),
        sample_rate=sample_rate,
        channels=channels,
        window=window,
        hop=hop,
        training=training,
    )


def cap_clusters(
    n_clusters: int, n_windows: int, n_labels: int, min_windows_per_cluster: int
) -> int:
    """Return ``n_clusters`` capped at one cluster per ``min_windows_per_cluster`` windows.

    A cluster fitted on a handful of windows draws a tight boundary, so new
    windows from the same healthy machine would fall outside it and be
    reported ``unknown``. The cap never goes below the number of labels, or 1.
    """
    return min(n_clusters, max(n_labels, n_windows // min_windows_per_cluster, 1))


def _preset_selection(
    n_clusters: int, n_windows: int, n_labels: int, min_windows_per_cluster: int
) -> tuple[int, Selection]:
    capped = cap_clusters(n_clusters, n_windows, n_labels, min_windows_per_cluster)
    note = (
        f"preset of {n_clusters} clusters, at most one per {min_windows_per_cluster} "
        f"training windows and no fewer than the {n_labels} labels"
    )
    if capped < n_clusters:
        note += f"; {n_windows} windows allow {capped}"
        logger.info(
            "fitting %d clusters instead of the preset's %d: %d training windows allow one "
            "cluster per %d windows",
            capped,
            n_clusters,
            n_windows,
            min_windows_per_cluster,
        )
    return capped, Selection(method="preset", note=note)


def fit_feature_matrix(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    algorithm: str = "kmeans",
    n_clusters: int | None = None,
    covariance_type: str = "full",
    pca: int | float | None = None,
    seed: int = 0,
    novelty_quantile: float = DEFAULT_NOVELTY_QUANTILE,
    novelty_margin: float = DEFAULT_NOVELTY_MARGIN,
    k_range: tuple[int, int] = (2, 10),
    balance_labels: bool = False,
    feature_weights: Sequence[float] | None = None,
    progress: bool = False,
) -> ClusterFit:
    """Fit scaler, optional PCA and the clustering estimator on a feature matrix.

    Parameters
    ----------
    features : ndarray of shape (n_windows, n_features), float64
        Finite feature vectors.
    labels : ndarray of shape (n_windows,)
        Condition label of each window.
    balance_labels : bool, default=False
        K-means: fit with ``sample_weight = n_windows / (n_labels * n_label)``.
        A Gaussian mixture takes no sample weights, so the windows of each
        smaller label are repeated (drawn with replacement, seeded) up to the
        count of the largest label for the fit. Naming the clusters, the
        novelty threshold and the automatic choice of k use the windows as
        they are.
    feature_weights : sequence of float, optional
        One positive factor per column, applied after standardisation. It is
        folded into the fitted scaler (``scale_ / weight``), so the exported
        graph and the numpy scorer need nothing new.

    The other parameters are those of :func:`train_model`.

    Returns
    -------
    ClusterFit
    """
    _check_options(algorithm, n_clusters, covariance_type, pca, novelty_quantile, novelty_margin)
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels).astype(str)
    if features.ndim != 2 or features.shape[0] != labels.shape[0]:
        raise ConfigError(
            f"features must have shape (n_windows, n_features) with one label per window, "
            f"got features {features.shape} and labels {labels.shape}"
        )
    if not np.all(np.isfinite(features)):
        raise ConfigError("features must be finite; drop windows with NaN or infinite features")
    if n_clusters is not None and n_clusters > features.shape[0]:
        raise ConfigError(
            f"n_clusters={n_clusters} exceeds the {features.shape[0]} training windows"
        )

    if feature_weights is not None:
        feature_weights = np.asarray(feature_weights, dtype=np.float64)
        if feature_weights.shape != (features.shape[1],) or not np.all(feature_weights > 0):
            raise ConfigError(
                f"feature_weights must be {features.shape[1]} positive numbers, one per column, "
                f"got shape {feature_weights.shape}"
            )

    from sklearn.pipeline import Pipeline

    transform_steps = _transform_steps(pca, seed)
    points = _fit_transform(transform_steps, features, feature_weights)
    if n_clusters is None:
        from edgemon.training.selection import select_n_clusters

        n_clusters, selection = select_n_clusters(
            points,
            algorithm=algorithm,
            k_range=k_range,
            covariance_type=covariance_type,
            seed=seed,
            progress=progress,
        )
    else:
        selection = Selection(method="user")

    estimator = _estimator(algorithm, n_clusters, covariance_type, seed)
    _fit_estimator(estimator, algorithm, points, labels, balance_labels, seed)
    pipeline = Pipeline([*transform_steps, ("estimator", estimator)])
    assignments = estimator.predict(points).astype(np.int64)
    if algorithm == "kmeans":
        distances = estimator.transform(points)
        preference = -distances
        scores = distances[np.arange(len(assignments)), assignments]
    else:
        preference = estimator.predict_proba(points)
        scores = -estimator.score_samples(points)

    clusters = _name_clusters(assignments, labels, preference, n_clusters)
    novelty = novelty_threshold(
        scores, kind=NOVELTY_KINDS[algorithm], quantile=novelty_quantile, margin=novelty_margin
    )
    logger.info(
        "fitted %s with %d clusters on %d windows; novelty threshold %.6g",
        algorithm,
        n_clusters,
        len(features),
        novelty.threshold,
    )
    return ClusterFit(
        pipeline=pipeline,
        algorithm=algorithm,
        assignments=assignments,
        scores=scores,
        clusters=clusters,
        novelty=novelty,
        selection=selection,
    )


def novelty_threshold(scores: np.ndarray, *, kind: str, quantile: float, margin: float) -> Novelty:
    """Return the novelty threshold learned from the training scores.

    ``threshold = q + margin * (q - median)`` with ``q`` the ``quantile`` of
    ``scores``.

    Parameters
    ----------
    scores : ndarray of shape (n_windows,)
        Novelty scores of the training windows.
    kind : {"distance", "neg_log_likelihood"}
    quantile : float
        In (0.5, 1).
    margin : float
        >= 0.
    """
    median = float(np.median(scores))
    anchor = float(np.quantile(scores, quantile))
    return Novelty(
        kind=kind,
        threshold=anchor + margin * (anchor - median),
        quantile=quantile,
        margin=margin,
        training_median=median,
        training_quantile=anchor,
    )


def cut_windows(samples: np.ndarray, window: int, hop: int) -> np.ndarray:
    """Cut a recording into windows.

    Parameters
    ----------
    samples : ndarray of shape (n_samples, n_channels)
    window, hop : int
        Samples per window and between window starts.

    Returns
    -------
    ndarray of shape (n_windows, window, n_channels)
        A read-only view; ``n_windows = 1 + (n_samples - window) // hop``,
        0 when the recording is shorter than a window.
    """
    if samples.shape[0] < window:
        return np.empty((0, window, samples.shape[1]))
    view = np.lib.stride_tricks.sliding_window_view(samples, window, axis=0)[::hop]
    return view.transpose(0, 2, 1)


# --------------------------------------------------------------------------
# Helpers


def _check_options(algorithm, n_clusters, covariance_type, pca, quantile, margin) -> None:
    if algorithm not in ALGORITHMS:
        raise ConfigError(f"algorithm must be one of {', '.join(ALGORITHMS)}; got {algorithm!r}")
    if n_clusters is not None and (
        isinstance(n_clusters, bool) or not isinstance(n_clusters, int) or n_clusters < 1
    ):
        raise ConfigError(f"n_clusters must be None or an integer >= 1, got {n_clusters!r}")
    if covariance_type not in COVARIANCE_TYPES:
        raise ConfigError(
            f"covariance_type must be one of {', '.join(COVARIANCE_TYPES)}; got {covariance_type!r}"
        )
    if pca is not None:
        valid_int = isinstance(pca, int) and not isinstance(pca, bool) and pca >= 1
        valid_share = isinstance(pca, float) and 0.0 < pca < 1.0
        if not (valid_int or valid_share):
            raise ConfigError(
                "pca must be None, a number of components >= 1 or a share of variance "
                f"in (0, 1), got {pca!r}"
            )
    if not 0.5 < quantile < 1.0:
        raise ConfigError(f"novelty_quantile must be in (0.5, 1), got {quantile!r}")
    if not margin >= 0.0:
        raise ConfigError(f"novelty_margin must be >= 0, got {margin!r}")


def _fit_transform(steps: list, features: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """Fit the scaler (with ``weights`` folded into it) and the optional PCA; return the points."""
    scaler = steps[0][1]
    scaler.fit(features)
    if weights is not None:
        scaler.scale_ = scaler.scale_ / weights
    points = scaler.transform(features)
    for _, step in steps[1:]:
        points = step.fit_transform(points)
    return points


def _fit_estimator(
    estimator, algorithm: str, points: np.ndarray, labels: np.ndarray, balance: bool, seed: int
) -> None:
    if not balance:
        estimator.fit(points)
        return
    names, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if algorithm == "kmeans":
        weights = len(labels) / (len(names) * counts[inverse])
        estimator.fit(points, sample_weight=weights)
        return
    rng = np.random.default_rng(seed)
    rows = [
        np.concatenate([members, rng.choice(members, counts.max() - len(members))])
        for members in (np.flatnonzero(inverse == i) for i in range(len(names)))
    ]
    estimator.fit(points[np.concatenate(rows)])


def _resolve_weights(
    weights: str | Sequence[float] | None, columns: Sequence[str]
) -> np.ndarray | None:
    """Turn ``feature_weights`` into one factor per column (see :func:`train_model`)."""
    if weights is None:
        return None
    if isinstance(weights, str):
        if weights != "blocks":
            raise ConfigError(
                f"feature_weights must be 'blocks', a list of numbers or None, got {weights!r}"
            )
        families = [column.split("[", 1)[0] for column in columns]
        sizes = Counter(families)
        return np.array([1.0 / np.sqrt(sizes[family]) for family in families])
    return np.asarray(weights, dtype=np.float64)


def _transform_steps(pca: int | float | None, seed: int) -> list:
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    steps: list = [("scaler", StandardScaler())]
    if pca is not None:
        steps.append(("pca", PCA(n_components=pca, random_state=seed)))
    return steps


def _estimator(algorithm: str, n_clusters: int, covariance_type: str, seed: int):
    if algorithm == "kmeans":
        from sklearn.cluster import KMeans

        return KMeans(n_clusters=n_clusters, n_init=10, random_state=seed)
    from sklearn.mixture import GaussianMixture

    return GaussianMixture(
        n_components=n_clusters, covariance_type=covariance_type, n_init=3, random_state=seed
    )


def _name_clusters(
    assignments: np.ndarray, labels: np.ndarray, preference: np.ndarray, n_clusters: int
) -> tuple[ClusterSummary, ...]:
    """Name each cluster after the majority label of its training windows.

    Ties go to the alphabetically first label.  A cluster without training
    windows (possible for a Gaussian mixture) takes the label of the training
    window that prefers it most.
    """
    clusters = []
    for k in range(n_clusters):
        members = labels[assignments == k]
        counts = Counter(members.tolist())
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        if ranked:
            state, top = ranked[0]
            purity = top / len(members)
            if purity <= 0.5:
                logger.warning(
                    "cluster %d has no clear majority: %s; naming it %r",
                    k,
                    dict(ranked),
                    state,
                )
        else:
            state = str(labels[int(np.argmax(preference[:, k]))])
            purity = 0.0
            logger.warning(
                "cluster %d has no training windows; naming it %r after its nearest window",
                k,
                state,
            )
        clusters.append(
            ClusterSummary(
                state=state, count=len(members), purity=purity, label_counts=dict(ranked)
            )
        )
    return tuple(clusters)


def _common_format(recordings: Sequence) -> tuple[float, tuple[str, ...]]:
    first = recordings[0].recording
    for item in recordings[1:]:
        recording = item.recording
        if recording.sample_rate != first.sample_rate:
            raise RecordingError(
                f"recordings must share one sample rate: {first.name} is "
                f"{first.sample_rate:g} Hz but {recording.name} is {recording.sample_rate:g} Hz; "
                "resample them to one rate with edgemon.recordings.resample, or pass "
                "sample_rate= to load_dataset"
            )
        if tuple(recording.channels) != tuple(first.channels):
            raise RecordingError(
                f"recordings must share the same channels: {first.name} has "
                f"{list(first.channels)} but {recording.name} has {list(recording.channels)}"
            )
    return float(first.sample_rate), tuple(first.channels)


def _extractor(features, sample_rate: float, window: int, channels: tuple[str, ...]):
    from edgemon.features import FeatureExtractor

    if isinstance(features, FeatureExtractor):
        spec = features.to_dict()
        expected = {"sample_rate": sample_rate, "window": window, "channels": list(channels)}
        for key, value in expected.items():
            if key in spec and _normalised(spec[key]) != _normalised(value):
                raise ConfigError(
                    f"feature extractor has {key}={spec[key]!r} but training uses {key}={value!r}"
                )
        return features
    return FeatureExtractor(
        list(features), sample_rate=sample_rate, window=window, channels=channels
    )


def _normalised(value):
    if isinstance(value, tuple | list):
        return [str(v) for v in value]
    if isinstance(value, int | float):
        return float(value)
    return value


def _recording_features(recording, extractor, window: int, hop: int) -> np.ndarray:
    from edgemon.features import window_flags
    from edgemon.flags import UNCLASSIFIABLE

    windows = cut_windows(recording.samples, window, hop)
    if len(windows) == 0:
        raise RecordingError(
            f"{recording.name} has {recording.n_samples} samples, fewer than one window of "
            f"{window}; use a shorter window or drop the file"
        )
    usable = (window_flags(windows) & UNCLASSIFIABLE) == 0
    matrix = extractor.transform(windows[usable])
    finite = np.all(np.isfinite(matrix), axis=1)
    dropped = len(windows) - int(finite.sum())
    if dropped:
        logger.warning(
            "dropped %d of %d windows of %s: unclassifiable samples or non-finite features",
            dropped,
            len(windows),
            recording.name,
        )
    return matrix[finite]


def _training_file(item, n_windows: int) -> TrainingFile:
    recording = item.recording
    path = recording.path
    return TrainingFile(
        name=Path(path).name if path is not None else recording.name,
        sha256=recording.sha256 or "",
        label=str(item.label),
        windows=n_windows,
        sample_rate=float(recording.attrs.get("resampled_from", recording.sample_rate)),
    )
