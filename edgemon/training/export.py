"""Export a trained model to one ``.onnx`` file and check it against scikit-learn.

The whole scikit-learn pipeline (``StandardScaler``, optional ``PCA``,
``KMeans`` or ``GaussianMixture``) is converted with skl2onnx:

* Input ``features``: float64, shape (n_windows, n_features).  Features are
  float64 from the feature stage on, and a float64 graph agrees with
  scikit-learn to about 1e-13 where float32 gives NaN distances for points on
  a centroid (skl2onnx 1.20 computes ``sqrt(|x|^2 - 2 x.c + |c|^2)``).
* ``target_opset`` is pinned to :data:`TARGET_OPSET` (17, IR version 8).
  onnxruntime 1.16, the oldest release edgemon accepts, implements opset 19
  and so loads it.
* K-means outputs ``label`` (int64) and ``scores`` (distance to each
  centroid).  Export inserts ``Max(squared, 0)`` before the graph's ``Sqrt``
  so that rounding can never make a distance NaN.
* GaussianMixture is converted with the ``score_samples`` option and outputs
  ``label``, ``probabilities`` and ``score_samples`` (log-likelihood).
* Neither estimator is a classifier, so skl2onnx adds no ZipMap and the
  ``zipmap=False`` option does not apply.

Before the file is written, :func:`check_parity` compares onnxruntime and the
numpy scorer with scikit-learn on the training features, and
:func:`check_robustness` scores points on every centroid and far outside the
training data.  A failed check raises :class:`~edgemon.errors.ModelError`
and writes nothing.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from edgemon.errors import ModelError
from edgemon.model.loading import model_id_of
from edgemon.model.metadata import METADATA_KEY, ModelMetadata, ScorerParameters
from edgemon.model.numpy_backend import NumpyScorer
from edgemon.model.onnxruntime_backend import INPUT_NAME, OUTPUT_NAMES, OnnxRuntimeScorer
from edgemon.training.fit import TrainedModel

__all__ = [
    "PARITY_RTOL",
    "TARGET_OPSET",
    "ParityReport",
    "build_metadata",
    "check_parity",
    "check_robustness",
    "export_model",
    "to_onnx_bytes",
]

logger = logging.getLogger(__name__)

#: ONNX opset of the exported graph (IR version 8); see the module docstring.
TARGET_OPSET = 17

#: Relative tolerance of the export parity check, see :func:`check_parity`.
PARITY_RTOL = 1e-9

#: Libraries whose versions go into the metadata.
_VERSIONED = ("edgemon", "numpy", "scikit-learn", "skl2onnx", "onnx", "onnxruntime")


@dataclass(frozen=True)
class ParityReport:
    """Agreement of one scorer with scikit-learn on the training features."""

    scorer: str
    n_windows: int
    #: Windows whose labels differ although the two candidate clusters are not tied.
    label_mismatches: int
    #: Windows whose labels differ at a tie within the tolerance (accepted).
    boundary_cases: int
    #: Largest novelty error divided by its tolerance; <= 1 passes.
    worst_error_ratio: float

    @property
    def passed(self) -> bool:
        """Whether the scorer agrees with scikit-learn within the tolerances."""
        return self.label_mismatches == 0 and self.worst_error_ratio <= 1.0


def export_model(trained: TrainedModel, path: str | Path) -> ModelMetadata:
    """Convert a trained model to ONNX, check it, and write it to ``path``.

    Parameters
    ----------
    trained : TrainedModel
        Result of :func:`edgemon.training.fit.train_model`.
    path : str or Path
        Output ``.onnx`` file; replaced atomically if it exists.

    Returns
    -------
    ModelMetadata
        The metadata stored in the file, with its ``model_id``.

    Raises
    ------
    ModelError
        If onnxruntime or the numpy scorer disagree with scikit-learn beyond
        the parity tolerance, score a probe point as NaN, negative distance
        or infinite, or the file cannot be written.
    """
    path = Path(path)
    onnx_model = _convert(trained)
    metadata = build_metadata(trained)
    graph_bytes = onnx_model.graph.SerializeToString()
    metadata = replace(metadata, model_id=model_id_of(graph_bytes, metadata))
    entry = onnx_model.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = metadata.to_json()
    model_bytes = onnx_model.SerializeToString()

    reports = check_parity(model_bytes, metadata, trained)
    for report in reports:
        logger.info(
            "parity of %s with scikit-learn on %d windows: %d boundary cases, "
            "worst error %.3g of tolerance",
            report.scorer,
            report.n_windows,
            report.boundary_cases,
            report.worst_error_ratio,
        )
    failed = [report for report in reports if not report.passed]
    if failed:
        details = "; ".join(
            f"{r.scorer}: {r.label_mismatches} of {r.n_windows} labels differ away from a tie, "
            f"worst novelty error {r.worst_error_ratio:.3g} times the tolerance"
            for r in failed
        )
        raise ModelError(
            f"export parity check failed, {path} was not written ({details}); "
            f"the tolerance is rtol={PARITY_RTOL:g} of the squared distances or log-likelihood "
            "terms, see docs/model.md"
        )
    check_robustness(model_bytes, metadata, trained)
    _write_atomically(path, model_bytes)
    logger.info("wrote model %s to %s (%d bytes)", metadata.model_id, path, len(model_bytes))
    return metadata


# --------------------------------------------------------------------------
# Conversion


def to_onnx_bytes(trained: TrainedModel) -> bytes:
    """Return the serialised ONNX graph of ``trained`` without edgemon metadata."""
    return _convert(trained).SerializeToString()


def _convert(trained: TrainedModel):
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import DoubleTensorType

    estimator = trained.pipeline.steps[-1][1]
    options = {id(estimator): {"score_samples": True}} if trained.algorithm == "gmm" else None
    n_features = trained.features.shape[1]
    # An int target_opset: skl2onnx 1.20's GaussianMixture converter compares
    # target_opset with an int and fails on the {domain: version} form.
    onnx_model = to_onnx(
        trained.pipeline,
        initial_types=[(INPUT_NAME, DoubleTensorType([None, n_features]))],
        target_opset=TARGET_OPSET,
        options=options,
    )
    outputs = [output.name for output in onnx_model.graph.output]
    missing = [name for name in OUTPUT_NAMES[trained.algorithm] if name not in outputs]
    if missing:
        raise ModelError(f"skl2onnx produced the outputs {outputs}, expected {missing} among them")
    if trained.algorithm == "kmeans":
        _clamp_squared_distances(onnx_model, OUTPUT_NAMES["kmeans"][1])
    onnx_model.graph.name = f"edgemon_{trained.algorithm}"
    onnx_model.doc_string = (
        f"edgemon {trained.algorithm} model: features -> cluster label and novelty source"
    )
    return onnx_model


def _clamp_squared_distances(onnx_model, output_name: str) -> None:
    """Insert ``Max(x, 0)`` in front of the ``Sqrt`` that produces ``output_name``."""
    from onnx import helper, numpy_helper

    graph = onnx_model.graph
    for position, node in enumerate(graph.node):  # noqa: B007 (position is used after the loop)
        if node.op_type == "Sqrt" and list(node.output) == [output_name]:
            break
    else:
        raise ModelError(
            f"K-means graph has no Sqrt node producing {output_name!r}; this skl2onnx "
            "version converts KMeans differently, so the distance clamp cannot be applied"
        )
    zero_name = "edgemon_zero"
    clamped_name = "edgemon_squared_distances_clamped"
    graph.initializer.append(numpy_helper.from_array(np.array(0.0), name=zero_name))
    clamp = helper.make_node(
        "Max", [node.input[0], zero_name], [clamped_name], name="edgemon_clamp_squared"
    )
    node.input[0] = clamped_name
    graph.node.insert(position, clamp)


# --------------------------------------------------------------------------
# Metadata


def build_metadata(trained: TrainedModel) -> ModelMetadata:
    """Return the metadata of ``trained`` with an empty ``model_id``."""
    metadata = ModelMetadata(
        model_id="",
        algorithm=trained.algorithm,
        n_clusters=len(trained.clusters),
        sample_rate=float(trained.sample_rate),
        channels=tuple(trained.channels),
        window=int(trained.window),
        hop=int(trained.hop),
        features=trained.feature_spec,
        columns=tuple(trained.columns),
        states=tuple(cluster.state for cluster in trained.clusters),
        novelty=trained.novelty,
        clusters=tuple(trained.clusters),
        training=trained.training,
        selection=trained.selection,
        pca=trained.pca,
        versions=_library_versions(),
        parameters=scorer_parameters(trained.pipeline),
    )
    # Normalise through JSON so that the id computed now matches the one a
    # reader recomputes from the stored text (tuples become lists, and so on).
    return ModelMetadata.from_dict(json.loads(metadata.to_json()))


def scorer_parameters(pipeline) -> ScorerParameters:
    """Extract the fitted numbers of a ``scaler [-> pca] -> estimator`` pipeline."""
    steps = dict(pipeline.named_steps)
    scaler = steps["scaler"]
    values: dict = {"scaler_mean": scaler.mean_, "scaler_scale": scaler.scale_}
    if "pca" in steps:
        values["pca_components"] = steps["pca"].components_
        values["pca_mean"] = steps["pca"].mean_
    estimator = pipeline.steps[-1][1]
    if hasattr(estimator, "cluster_centers_"):
        values["centroids"] = estimator.cluster_centers_
    else:
        values["weights"] = estimator.weights_
        values["means"] = estimator.means_
        values["precisions_cholesky"] = estimator.precisions_cholesky_
        values["covariance_type"] = estimator.covariance_type
    return ScorerParameters.from_dict(
        {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in values.items()}
    )


def _library_versions() -> dict[str, str]:
    versions = {}
    for name in _VERSIONED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


# --------------------------------------------------------------------------
# Checks


def check_parity(
    model_bytes: bytes, metadata: ModelMetadata, trained: TrainedModel
) -> list[ParityReport]:
    """Compare onnxruntime and the numpy scorer with scikit-learn on the training features.

    Tolerances (``rtol`` = :data:`PARITY_RTOL`), per window:

    * K-means: ``|d_scorer**2 - d_sklearn**2| <= rtol * (|z|**2 + max_k |c_k|**2)``
      for the distance to the assigned centroid, where ``z`` is the scaled
      (and projected) feature vector and ``c_k`` the centroids.  A label may
      differ only where the squared distances to the two clusters differ by
      no more than that bound.
    * GMM: ``|ll_scorer - ll_sklearn| <= rtol * (1 + |ll_sklearn| + L)`` where
      ``L`` is the largest ``|log det + log weight|`` of a component.  A label
      may differ only where the two components' weighted log-probabilities
      differ by no more than that bound.

    Returns
    -------
    list of ParityReport
        One for onnxruntime, one for the numpy scorer.
    """
    features = trained.features
    scorers = [
        OnnxRuntimeScorer(model_bytes, metadata.algorithm, metadata.n_features),
        NumpyScorer(metadata.algorithm, metadata.parameters),
    ]
    if metadata.algorithm == "kmeans":
        reference = _kmeans_reference(trained)
    else:
        reference = _gmm_reference(trained)
    return [_compare(scorer, features, *reference) for scorer in scorers]


def _kmeans_reference(trained: TrainedModel):
    pipeline = trained.pipeline
    features = trained.features
    points = pipeline[:-1].transform(features)
    centroids = pipeline.steps[-1][1].cluster_centers_
    squared = pipeline.transform(features) ** 2
    scale = PARITY_RTOL * (
        np.einsum("ij,ij->i", points, points) + np.max(np.sum(centroids**2, axis=1))
    )

    def novelty_error(labels, novelty):
        expected = squared[np.arange(len(labels)), labels]
        return np.abs(novelty**2 - expected) / scale

    # Per window: squared distance of each cluster, the reference label, the tolerance.
    return -squared, pipeline.predict(features), scale, novelty_error


def _gmm_reference(trained: TrainedModel):
    pipeline = trained.pipeline
    features = trained.features
    gmm = pipeline.steps[-1][1]
    log_likelihood = pipeline.score_samples(features)
    params = scorer_parameters(pipeline)
    constant = np.max(np.abs(_gmm_log_det(params) + np.log(gmm.weights_)))
    scale = PARITY_RTOL * (1.0 + np.abs(log_likelihood) + constant)
    with np.errstate(divide="ignore"):
        # log responsibilities differ from the weighted log-probabilities by a per-row constant.
        log_resp = np.log(pipeline.predict_proba(features))

    def novelty_error(labels, novelty):
        return np.abs(-novelty - log_likelihood) / scale

    return log_resp, pipeline.predict(features), scale, novelty_error


def _gmm_log_det(params: ScorerParameters) -> np.ndarray:
    chol = params.precisions_cholesky
    n_components, n_dims = params.means.shape
    if params.covariance_type == "full":
        return np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
    if params.covariance_type == "tied":
        return np.full(n_components, np.log(np.diagonal(chol)).sum())
    if params.covariance_type == "diag":
        return np.log(chol).sum(axis=1)
    return n_dims * np.log(chol)


def _compare(scorer, features, preference, labels, scale, novelty_error) -> ParityReport:
    """Compare one scorer with the reference.

    ``preference[i, k]`` is larger for the better cluster: the negative
    squared distance, or the log responsibility.  A differing label is a
    boundary case when its preference is within ``scale[i]`` of the
    reference label's.
    """
    clusters, novelty = scorer.score(features)
    rows = np.arange(len(labels))
    differ = clusters != labels
    gap = preference[rows, labels] - preference[rows, clusters]
    boundary = differ & (gap <= scale)
    errors = novelty_error(clusters, novelty)
    worst = float(np.max(errors)) if errors.size else 0.0
    if not np.all(np.isfinite(errors)):
        worst = float("inf")
    return ParityReport(
        scorer=scorer.backend,
        n_windows=len(labels),
        label_mismatches=int(np.sum(differ & ~boundary)),
        boundary_cases=int(np.sum(boundary)),
        worst_error_ratio=worst,
    )


def check_robustness(model_bytes: bytes, metadata: ModelMetadata, trained: TrainedModel) -> None:
    """Score points on every centroid and far outside the training data with onnxruntime.

    Raises
    ------
    ModelError
        If a K-means distance is NaN or negative, or a GMM log-likelihood is
        not finite, for any probe point.
    """
    probes = _probe_points(trained)
    scorer = OnnxRuntimeScorer(model_bytes, metadata.algorithm, metadata.n_features)
    _, novelty = scorer.score(probes)
    bad = ~np.isfinite(novelty)
    if metadata.algorithm == "kmeans":
        bad |= novelty < 0
    if bad.any():
        raise ModelError(
            f"exported {metadata.algorithm} graph gives an invalid novelty score "
            f"({novelty[bad][:3].tolist()}) for {int(bad.sum())} of {len(probes)} probe points "
            "on the centroids or far from the training data; the model was not written"
        )


def _probe_points(trained: TrainedModel) -> np.ndarray:
    """Return feature vectors on each centroid or mean and far outside the training data."""
    pipeline = trained.pipeline
    estimator = pipeline.steps[-1][1]
    centres = getattr(estimator, "cluster_centers_", None)
    if centres is None:
        centres = estimator.means_
    # Transforming back from the model space: with PCA the round trip lands on
    # the centre again because the components are orthonormal.
    on_centres = pipeline[:-1].inverse_transform(centres)
    features = trained.features
    spread = np.max(np.abs(features), axis=0) + 1.0
    far = np.vstack([spread * 1e3, -spread * 1e3, spread * 1e6])
    return np.vstack([on_centres, far])


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise ModelError(f"cannot write model file {path}: {exc}") from exc
