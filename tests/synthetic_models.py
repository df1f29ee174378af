"""Trained models on synthetic feature matrices, for the model and export tests.

The blobs differ in scale per column (1e-2 to 1e3) like real vibration
features, so the scaler matters.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgemon.model import TrainingFile, TrainingSummary
from edgemon.training.export import export_model
from edgemon.training.fit import TrainedModel, fit_feature_matrix

COLUMN_SCALES = np.array([1.0, 10.0, 100.0, 1e3, 0.01, 1.0])
LABELS = ("normal", "inner_race", "ball")


def blobs(n_per_label: int = 150, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return three separated Gaussian blobs, shape (3 * n, 6), and their labels."""
    rng = np.random.default_rng(seed)
    features = np.vstack(
        [rng.normal(centre, 1.0, (n_per_label, COLUMN_SCALES.size)) for centre in (0, 6, 12)]
    )
    labels = np.repeat(LABELS, n_per_label)
    return features * COLUMN_SCALES, labels


def trained_model(
    algorithm: str = "kmeans",
    *,
    covariance_type: str = "full",
    pca: int | float | None = None,
    n_clusters: int | None = 3,
    features: np.ndarray | None = None,
    labels: np.ndarray | None = None,
) -> TrainedModel:
    """Fit a model on synthetic blobs and wrap it as if trained on recordings."""
    if features is None:
        features, labels = blobs()
    fit = fit_feature_matrix(
        features,
        labels,
        algorithm=algorithm,
        n_clusters=n_clusters,
        covariance_type=covariance_type,
        pca=pca,
    )
    n_columns = features.shape[1]
    names = [f"f{i}" for i in range(n_columns)]
    return TrainedModel(
        pipeline=fit.pipeline,
        algorithm=algorithm,
        features=features,
        labels=labels,
        assignments=fit.assignments,
        clusters=fit.clusters,
        novelty=fit.novelty,
        selection=fit.selection,
        pca=pca,
        feature_spec={"names": names, "sample_rate": 12000.0, "window": 1024},
        columns=tuple(f"DE_{name}" for name in names),
        sample_rate=12000.0,
        channels=("DE",),
        window=1024,
        hop=512,
        training=TrainingSummary(
            dataset="synthetic",
            files=tuple(
                TrainingFile(f"{label}.npy", "0" * 64, label, int(np.sum(labels == label)), 12000.0)
                for label in LABELS
            ),
            n_windows=len(features),
            created="2024-01-01T00:00:00Z",
            seed=0,
        ),
    )


def exported_model(
    tmp_path: Path, algorithm: str = "kmeans", **options
) -> tuple[Path, TrainedModel]:
    """Train on synthetic blobs and export; return the file and the trained model."""
    trained = trained_model(algorithm, **options)
    path = tmp_path / f"{algorithm}.onnx"
    export_model(trained, path)
    return path, trained
