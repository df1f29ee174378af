"""Load an edgemon model file and score features with it.

``load_model`` reads the ONNX header with edgemon's own protobuf reader,
validates the edgemon metadata, recomputes the model id to detect a file that
was changed after export, and picks a scorer: onnxruntime where it is
installed, the numpy scorer elsewhere.
"""

from __future__ import annotations

import importlib.util
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from edgemon.errors import ConfigError, ModelError
from edgemon.model.metadata import METADATA_KEY, ModelMetadata, compute_model_id
from edgemon.model.numpy_backend import NumpyScorer
from edgemon.model.onnxfile import OnnxInfo, read_onnx

__all__ = ["BACKENDS", "MAX_NOVELTY", "Model", "Scorer", "load_model"]

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "onnxruntime", "numpy")

#: Novelty reported where the score overflows float64 for finite features
#: (feature vectors around 1e150 standard deviations from the training data).
MAX_NOVELTY = float(np.finfo(np.float64).max)

# Relative tolerance for comparing sample rates given as floats.
_RATE_RTOL = 1e-9


class Scorer(Protocol):
    """What a backend provides: its name and ``score`` (see ``NumpyScorer.score``)."""

    backend: str

    def score(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class Model:
    """A loaded model: its metadata and a scorer.

    Build it with :func:`load_model`.

    Attributes
    ----------
    metadata : ModelMetadata
    backend : str
        ``"onnxruntime"`` or ``"numpy"``.
    path : Path or None
        The file the model was loaded from.
    """

    def __init__(self, metadata: ModelMetadata, scorer: Scorer, path: Path | None = None) -> None:
        self.metadata = metadata
        self.backend: str = scorer.backend
        self.path = path
        self._scorer = scorer

    def __repr__(self) -> str:
        return (
            f"Model(id={self.metadata.model_id!r}, algorithm={self.metadata.algorithm!r}, "
            f"n_clusters={self.metadata.n_clusters}, backend={self.backend!r})"
        )

    def score(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Assign each feature vector to a cluster and score its novelty.

        Parameters
        ----------
        features : array_like of shape (n_windows, n_features)
            Feature vectors in the order of ``metadata.columns``.

        Returns
        -------
        clusters : ndarray of shape (n_windows,), int64
            Cluster id; ``metadata.states[cluster]`` names its state.
        novelty : ndarray of shape (n_windows,), float64
            Distance to the nearest centroid (K-means) or negative
            log-likelihood (GMM); larger is farther from the training data.
            NaN for rows with non-finite features.  Where the score overflows
            for finite features it is :data:`MAX_NOVELTY`, never inf or NaN.

        Raises
        ------
        ModelError
            If ``features`` does not have ``n_features`` columns.
        """
        features = np.asarray(features, dtype=np.float64)
        expected = self.metadata.n_features
        if features.ndim != 2 or features.shape[1] != expected:
            raise ModelError(
                f"model {self.metadata.model_id} expects features of shape "
                f"(n_windows, {expected}), got {features.shape}"
            )
        clusters, novelty = self._scorer.score(features)
        overflow = ~np.isfinite(novelty) & np.isfinite(features).all(axis=1)
        if overflow.any():
            novelty = np.where(overflow, MAX_NOVELTY, novelty)
        return clusters, novelty

    def check_compatible(
        self,
        *,
        sample_rate: float,
        channels: Sequence[str] | int,
        window: int,
        features: Sequence[str] | None = None,
        source: str = "source",
    ) -> None:
        """Check that a configured source and window match what the model was trained on.

        Parameters
        ----------
        sample_rate : float
            Sample rate the source delivers, Hz.
        channels : sequence of str or int
            Channel names the source delivers, in order; an int checks the
            channel count only.
        window : int
            Configured window length, samples.
        features : sequence of str, optional
            Configured feature names; None means "use the model's".
        source : str
            Name of the source, used in the messages.

        Raises
        ------
        ModelError
            Listing every mismatch with both values and how to fix it.
        """
        meta = self.metadata
        problems = []
        if not math.isclose(sample_rate, meta.sample_rate, rel_tol=_RATE_RTOL):
            problems.append(
                f"model expects sample_rate={meta.sample_rate:g} Hz but source {source!r} "
                f"delivers {sample_rate:g} Hz; retrain with --sample-rate {sample_rate:g}, "
                f"or for a file source set sample_rate = {meta.sample_rate:g} in its "
                "[sensors.source] table, which resamples the recording"
            )
        problems.extend(_channel_problems(meta.channels, channels, source))
        if window != meta.window:
            problems.append(
                f"model expects window={meta.window} samples but the configuration sets "
                f"window={window}; set window = {meta.window} or retrain with --window {window}"
            )
        if features is not None and tuple(features) != meta.feature_names:
            problems.append(
                f"model expects the features {list(meta.feature_names)} in this order but the "
                f"configuration lists {list(features)}; remove the features setting to use "
                "the model's list, or retrain with the configured features"
            )
        if problems:
            path = f" ({self.path})" if self.path else ""
            raise ModelError(
                f"model {meta.model_id}{path} does not match the configuration: "
                + "; ".join(problems)
            )


def load_model(path: str | Path, backend: str = "auto") -> Model:
    """Load an edgemon ``.onnx`` model file.

    Parameters
    ----------
    path : str or Path
        Model file written by ``edgemon train`` (``edgemon.training.export.export_model``).
    backend : {"auto", "onnxruntime", "numpy"}, default="auto"
        Scorer to use.  ``"auto"`` picks onnxruntime where it is installed
        and the numpy scorer elsewhere.

    Returns
    -------
    Model

    Raises
    ------
    ConfigError
        If ``backend`` is not one of :data:`BACKENDS`.
    ModelError
        If the file is missing, not ONNX, has no or invalid edgemon metadata,
        was modified after export, or ``backend="onnxruntime"`` and
        onnxruntime is not installed.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    path = Path(path)
    info = read_onnx(path)
    metadata = read_metadata(info, source=str(path))

    if backend == "auto":
        backend = "onnxruntime" if _onnxruntime_available() else "numpy"
    scorer: Scorer
    if backend == "onnxruntime":
        from edgemon.model.onnxruntime_backend import OnnxRuntimeScorer

        scorer = OnnxRuntimeScorer(path.read_bytes(), metadata.algorithm, metadata.n_features)
    else:
        scorer = NumpyScorer(metadata.algorithm, metadata.parameters)
    logger.info(
        "loaded model %s (%s, %d clusters) from %s with the %s backend",
        metadata.model_id,
        metadata.algorithm,
        metadata.n_clusters,
        path,
        scorer.backend,
    )
    return Model(metadata, scorer, path)


def read_metadata(info: OnnxInfo, source: str) -> ModelMetadata:
    """Parse, validate and authenticate the edgemon metadata of a decoded ONNX file.

    Raises
    ------
    ModelError
        If the metadata is absent, invalid, or its model id does not match the
        graph and metadata (the file was changed after export).
    """
    text = info.metadata_props.get(METADATA_KEY)
    if text is None:
        raise ModelError(
            f"{source!r} is an ONNX model without edgemon metadata "
            f"(metadata_props[{METADATA_KEY!r}]); export it with 'edgemon train'"
        )
    try:
        metadata = ModelMetadata.from_json(text)
    except ModelError as exc:
        raise ModelError(f"{source!r}: {exc}") from exc
    expected = model_id_of(info.graph_bytes, metadata)
    if expected != metadata.model_id:
        raise ModelError(
            f"{source!r} was modified after export: its graph and metadata hash to "
            f"model id {expected} but the metadata says {metadata.model_id}; "
            "export the model again with 'edgemon train'"
        )
    return metadata


def model_id_of(graph_bytes: bytes, metadata: ModelMetadata) -> str:
    """Return the model id of a graph and its metadata (whatever ``model_id`` it holds)."""
    document = metadata.to_dict()
    document["model_id"] = ""
    unsigned = ModelMetadata.from_dict(document)
    return compute_model_id(graph_bytes, unsigned.to_json())


def _channel_problems(
    expected: tuple[str, ...], configured: Sequence[str] | int, source: str
) -> list[str]:
    if isinstance(configured, int):
        if configured == len(expected):
            return []
        return [
            f"model expects {len(expected)} channel(s) {list(expected)} but source "
            f"{source!r} delivers {configured}; configure {len(expected)} channel(s) "
            "or retrain on the source's channels"
        ]
    if tuple(configured) == expected:
        return []
    return [
        f"model expects channels {list(expected)} but source {source!r} delivers "
        f"{list(configured)}; configure the source's channels as {list(expected)} "
        "or retrain on the source's channels"
    ]


def _onnxruntime_available() -> bool:
    # find_spec looks for the package without importing it; the backend imports it
    # only after switching its telemetry off.
    if importlib.util.find_spec("onnxruntime") is None:
        logger.info("onnxruntime is not installed; scoring with the numpy backend")
        return False
    return True
