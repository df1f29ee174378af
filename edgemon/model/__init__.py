"""What the device loads: the model file's metadata and its two scorers.

``load_model(path)`` returns a :class:`Model` whose ``score(features)``
returns the cluster and the novelty score of each window.  The onnxruntime
scorer runs the exported ONNX graph.  The numpy scorer computes the same
numbers from the parameters stored in the metadata, for devices without
onnxruntime.  Nothing here imports onnx, scikit-learn or skl2onnx.
"""

from edgemon.model.loading import BACKENDS, MAX_NOVELTY, Model, load_model
from edgemon.model.metadata import (
    FORMAT_VERSION,
    METADATA_KEY,
    ClusterSummary,
    ModelMetadata,
    Novelty,
    ScorerParameters,
    Selection,
    TrainingFile,
    TrainingSummary,
)

__all__ = [
    "BACKENDS",
    "FORMAT_VERSION",
    "MAX_NOVELTY",
    "METADATA_KEY",
    "ClusterSummary",
    "Model",
    "ModelMetadata",
    "Novelty",
    "ScorerParameters",
    "Selection",
    "TrainingFile",
    "TrainingSummary",
    "load_model",
]
