"""The description of a model that travels inside its ``.onnx`` file.

Export stores one JSON document under the ``metadata_props`` key
``"edgemon"`` of the ONNX model.  It contains everything the daemon checks
before it starts: features and their order, window, sample rate and
channels.  It also names the clusters, sets when to report ``unknown``,
records where the model came from (training files with their sha256, library
versions), and stores the numeric parameters of the pure-numpy scorer.
``docs/model.md`` describes every field.

The document carries ``format_version``; a reader rejects versions it does
not know instead of guessing at their meaning.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgemon.errors import ModelError

__all__ = [
    "ALGORITHMS",
    "COVARIANCE_TYPES",
    "FORMAT_VERSION",
    "METADATA_KEY",
    "NOVELTY_KINDS",
    "ClusterSummary",
    "ModelMetadata",
    "Novelty",
    "ScorerParameters",
    "Selection",
    "TrainingFile",
    "TrainingSummary",
    "compute_model_id",
]

#: Key of the edgemon document in the ONNX ``metadata_props``.
METADATA_KEY = "edgemon"
#: Version of the metadata document that this module writes and reads.
FORMAT_VERSION = 1

ALGORITHMS = ("kmeans", "gmm")
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
#: Novelty definition of each algorithm; a larger score is farther from the training data.
NOVELTY_KINDS = {"kmeans": "distance", "gmm": "neg_log_likelihood"}


@dataclass(frozen=True)
class Novelty:
    """Definition of the novelty score and the threshold where ``unknown`` begins.

    ``threshold = q + margin * (q - median)``, where ``q`` is the
    ``quantile`` of the training scores and ``median`` their median.
    """

    #: ``"distance"`` (K-means) or ``"neg_log_likelihood"`` (GMM).
    kind: str
    #: Score above which a window is reported as ``unknown``.
    threshold: float
    quantile: float
    margin: float
    #: Median and ``quantile`` of the novelty scores of the training windows.
    training_median: float
    training_quantile: float


@dataclass(frozen=True)
class ClusterSummary:
    """The training windows that fell into one cluster."""

    state: str
    #: Number of training windows in the cluster.
    count: int
    #: Share of ``count`` that carries the label ``state``; 0 for an empty cluster.
    purity: float
    #: Training windows per label, most frequent first.
    label_counts: dict[str, int]

    @property
    def clear_majority(self) -> bool:
        """Whether more than half of the cluster's windows carry its state name."""
        return self.purity > 0.5


@dataclass(frozen=True)
class TrainingFile:
    """One recording the model was trained on."""

    name: str
    sha256: str
    label: str
    #: Windows cut from this recording.
    windows: int
    #: Sample rate of the file before any resampling, Hz.
    sample_rate: float


@dataclass(frozen=True)
class TrainingSummary:
    """Where the training data came from."""

    #: Data set kind, for example ``"cwru"`` or ``"files"``.
    dataset: str
    files: tuple[TrainingFile, ...]
    n_windows: int
    #: UTC time of training, ISO 8601 with a ``Z`` suffix.
    created: str
    seed: int
    #: Fitting options beyond the estimator's own, e.g. ``{"balance_labels": True}``.
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Selection:
    """How the number of clusters was chosen."""

    #: ``"user"``, ``"preset"``, ``"bic"``, ``"silhouette"`` or ``"elbow"``.
    method: str
    #: Score of each candidate number of clusters (empty for ``"user"`` and ``"preset"``).
    scores: dict[int, float] = field(default_factory=dict)
    #: Short reason, for example why the elbow replaced the silhouette.
    note: str = ""


@dataclass(frozen=True, eq=False)
class ScorerParameters:
    """The fitted numbers of the scaler, the optional PCA and the estimator.

    Arrays are read-only float64.  ``n_features`` is the number of feature
    columns, ``n_dims`` the number after PCA (``n_features`` without PCA),
    ``k`` the number of clusters.
    """

    #: Shape (n_features,).
    scaler_mean: np.ndarray
    #: Shape (n_features,); scikit-learn's ``scale_`` (zero variances already replaced by 1).
    scaler_scale: np.ndarray
    #: Shape (n_dims, n_features), or None without PCA.
    pca_components: np.ndarray | None = None
    #: Shape (n_features,) of the scaled features, or None without PCA.
    pca_mean: np.ndarray | None = None
    #: K-means centroids, shape (k, n_dims).
    centroids: np.ndarray | None = None
    #: GMM mixture weights, shape (k,).
    weights: np.ndarray | None = None
    #: GMM means, shape (k, n_dims).
    means: np.ndarray | None = None
    #: GMM Cholesky factors of the precisions; shape depends on ``covariance_type``
    #: as in scikit-learn: full (k, d, d), tied (d, d), diag (k, d), spherical (k,).
    precisions_cholesky: np.ndarray | None = None
    covariance_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the parameters as JSON-ready nested lists."""
        return {
            name: (value.tolist() if isinstance(value, np.ndarray) else value)
            for name, value in self.__dict__.items()
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScorerParameters:
        """Build parameters from :meth:`to_dict` output; arrays become read-only float64."""
        values: dict[str, Any] = {}
        for name in cls.__dataclass_fields__:
            value = data.get(name)
            if name == "covariance_type" or value is None:
                values[name] = value
                continue
            array = np.asarray(value, dtype=np.float64)
            array.setflags(write=False)
            values[name] = array
        return cls(**values)


@dataclass(frozen=True)
class ModelMetadata:
    """Everything edgemon stores about a model besides its ONNX graph.

    See ``docs/model.md`` for the meaning and units of each field.
    """

    model_id: str
    algorithm: str
    n_clusters: int
    #: Hz.
    sample_rate: float
    channels: tuple[str, ...]
    #: Samples per window.
    window: int
    #: Samples between the starts of consecutive windows.
    hop: int
    #: Feature specification, ``FeatureExtractor.to_dict()``; ``features["names"]`` in order.
    features: dict[str, Any]
    #: Name of each input column of the model, in order.
    columns: tuple[str, ...]
    #: State name of each cluster, indexed by cluster id.
    states: tuple[str, ...]
    novelty: Novelty
    clusters: tuple[ClusterSummary, ...]
    training: TrainingSummary
    selection: Selection
    #: PCA setting as given to training: None, an int (components) or a float (variance share).
    pca: int | float | None
    #: Library name -> version string, for the libraries that built the model.
    versions: dict[str, str]
    parameters: ScorerParameters
    format_version: int = FORMAT_VERSION

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the features per channel, in order."""
        return tuple(self.features.get("names", ()))

    @property
    def n_features(self) -> int:
        """Number of input columns the model scores."""
        return len(self.columns)

    # ----------------------------------------------------------------------
    # Serialisation

    def to_dict(self) -> dict[str, Any]:
        """Return the metadata as a JSON-ready dict."""
        return {
            "format_version": self.format_version,
            "model_id": self.model_id,
            "algorithm": self.algorithm,
            "n_clusters": self.n_clusters,
            "sample_rate": self.sample_rate,
            "channels": list(self.channels),
            "window": self.window,
            "hop": self.hop,
            "features": self.features,
            "columns": list(self.columns),
            "states": list(self.states),
            "novelty": dict(self.novelty.__dict__),
            "clusters": [dict(cluster.__dict__) for cluster in self.clusters],
            "training": {
                **{k: v for k, v in self.training.__dict__.items() if k != "files"},
                "files": [dict(f.__dict__) for f in self.training.files],
            },
            "selection": {
                "method": self.selection.method,
                "scores": {str(k): v for k, v in self.selection.scores.items()},
                "note": self.selection.note,
            },
            "pca": self.pca,
            "versions": dict(self.versions),
            "parameters": self.parameters.to_dict(),
        }

    def to_json(self) -> str:
        """Serialise to compact JSON; floats round-trip exactly."""
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> ModelMetadata:
        """Parse and validate the JSON document stored in a model file.

        Raises
        ------
        ModelError
            If the text is not JSON, has an unsupported ``format_version``, or
            a field is missing or of the wrong type.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelError(f"edgemon metadata is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ModelError("edgemon metadata must be a JSON object")
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelMetadata:
        """Build and validate metadata from :meth:`to_dict` output."""
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ModelError(
                f"unsupported edgemon model format_version {version!r}; this edgemon reads "
                f"version {FORMAT_VERSION}: upgrade edgemon or re-export the model"
            )
        try:
            metadata = cls._from_checked_dict(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelError(f"invalid edgemon metadata: {exc!r}") from exc
        metadata.validate()
        return metadata

    @classmethod
    def _from_checked_dict(cls, data: Mapping[str, Any]) -> ModelMetadata:
        training = data["training"]
        selection = data["selection"]
        return cls(
            format_version=int(data["format_version"]),
            model_id=_string(data, "model_id"),
            algorithm=_string(data, "algorithm"),
            n_clusters=int(data["n_clusters"]),
            sample_rate=float(data["sample_rate"]),
            channels=tuple(str(c) for c in data["channels"]),
            window=int(data["window"]),
            hop=int(data["hop"]),
            features=dict(data["features"]),
            columns=tuple(str(c) for c in data["columns"]),
            states=tuple(str(s) for s in data["states"]),
            novelty=Novelty(**data["novelty"]),
            clusters=tuple(
                ClusterSummary(
                    state=str(c["state"]),
                    count=int(c["count"]),
                    purity=float(c["purity"]),
                    label_counts={str(k): int(v) for k, v in c["label_counts"].items()},
                )
                for c in data["clusters"]
            ),
            training=TrainingSummary(
                dataset=str(training["dataset"]),
                files=tuple(TrainingFile(**f) for f in training["files"]),
                n_windows=int(training["n_windows"]),
                created=str(training["created"]),
                seed=int(training["seed"]),
                options=dict(training.get("options", {})),
            ),
            selection=Selection(
                method=str(selection["method"]),
                scores={int(k): float(v) for k, v in selection["scores"].items()},
                note=str(selection.get("note", "")),
            ),
            pca=data["pca"],
            versions={str(k): str(v) for k, v in data["versions"].items()},
            parameters=ScorerParameters.from_dict(data["parameters"]),
        )

    def validate(self) -> None:
        """Check that the fields agree with each other.

        Raises
        ------
        ModelError
            Naming the first inconsistent field.
        """
        problems = _consistency_problems(self)
        if problems:
            raise ModelError("invalid edgemon metadata: " + "; ".join(problems))


def compute_model_id(graph_bytes: bytes, metadata_json: str) -> str:
    """Return the 12-hex-digit id of a model.

    The id is the start of the sha256 of the serialised ONNX graph followed by
    the metadata JSON with an empty ``model_id``, so that it changes when the
    graph, the thresholds, the state names or the training data change.
    """
    digest = hashlib.sha256(graph_bytes)
    digest.update(metadata_json.encode("utf-8"))
    return digest.hexdigest()[:12]


def _string(data: Mapping[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise TypeError(f"{key} must be a string, got {type(value).__name__}")
    return value


def _consistency_problems(meta: ModelMetadata) -> list[str]:
    problems = []
    if meta.algorithm not in ALGORITHMS:
        problems.append(f"algorithm must be one of {ALGORITHMS}, got {meta.algorithm!r}")
    elif meta.novelty.kind != NOVELTY_KINDS[meta.algorithm]:
        problems.append(
            f"novelty kind of a {meta.algorithm} model must be "
            f"{NOVELTY_KINDS[meta.algorithm]!r}, got {meta.novelty.kind!r}"
        )
    if meta.n_clusters < 1 or len(meta.states) != meta.n_clusters:
        problems.append(
            f"states must name each of the n_clusters={meta.n_clusters} clusters, "
            f"got {len(meta.states)} names"
        )
    if tuple(cluster.state for cluster in meta.clusters) != meta.states:
        problems.append("clusters must list one entry per state, with the same state names")
    if not meta.sample_rate > 0 or not math.isfinite(meta.sample_rate):
        problems.append(f"sample_rate must be a positive number of Hz, got {meta.sample_rate}")
    if meta.window < 1 or meta.hop < 1:
        problems.append(f"window and hop must be >= 1, got {meta.window} and {meta.hop}")
    if not meta.channels:
        problems.append("channels must name at least one channel")
    if math.isnan(meta.novelty.threshold):
        problems.append("novelty threshold must be a number or inf, got NaN")
    problems.extend(_parameter_problems(meta))
    return problems


def _parameter_problems(meta: ModelMetadata) -> list[str]:
    params = meta.parameters
    n_features = len(meta.columns)
    problems = []
    for name in ("scaler_mean", "scaler_scale"):
        if getattr(params, name).shape != (n_features,):
            problems.append(f"parameters.{name} must have shape ({n_features},)")
    n_dims = n_features
    if (params.pca_components is None) != (params.pca_mean is None):
        problems.append("parameters.pca_components and pca_mean must both be set or both be null")
    elif params.pca_components is not None:
        n_dims = params.pca_components.shape[0]
        if params.pca_components.shape != (n_dims, n_features):
            problems.append(f"parameters.pca_components must have shape (n_dims, {n_features})")
    k = meta.n_clusters
    if meta.algorithm == "kmeans":
        if params.centroids is None or params.centroids.shape != (k, n_dims):
            problems.append(f"parameters.centroids must have shape ({k}, {n_dims})")
    elif meta.algorithm == "gmm":
        problems.extend(_gmm_parameter_problems(params, k, n_dims))
    return problems


def _gmm_parameter_problems(params: ScorerParameters, k: int, d: int) -> list[str]:
    if params.covariance_type not in COVARIANCE_TYPES:
        return [
            f"parameters.covariance_type must be one of {COVARIANCE_TYPES}, "
            f"got {params.covariance_type!r}"
        ]
    expected_cholesky = {
        "full": (k, d, d),
        "tied": (d, d),
        "diag": (k, d),
        "spherical": (k,),
    }[params.covariance_type]
    expected: dict[str, tuple[int, ...]] = {
        "weights": (k,),
        "means": (k, d),
        "precisions_cholesky": expected_cholesky,
    }
    return [
        f"parameters.{name} must have shape {shape}"
        for name, shape in expected.items()
        if getattr(params, name) is None or getattr(params, name).shape != shape
    ]
