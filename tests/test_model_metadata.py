"""ModelMetadata: JSON round trip and validation."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from synthetic_models import trained_model

from edgemon.errors import ModelError
from edgemon.model import FORMAT_VERSION, ModelMetadata
from edgemon.training.export import build_metadata


@pytest.fixture(scope="module", params=["kmeans", "gmm"])
def metadata(request):
    options = {"pca": 3} if request.param == "kmeans" else {"covariance_type": "diag"}
    return build_metadata(trained_model(request.param, **options))


def test_metadata_round_trip(metadata):
    restored = ModelMetadata.from_json(metadata.to_json())
    assert restored.to_dict() == metadata.to_dict()
    assert restored.to_json() == metadata.to_json()
    assert restored.states == metadata.states
    assert restored.novelty == metadata.novelty
    assert restored.clusters == metadata.clusters
    assert restored.training == metadata.training


def test_metadata_parameters_read_only(metadata):
    params = ModelMetadata.from_json(metadata.to_json()).parameters
    assert params.scaler_mean.dtype == np.float64
    with pytest.raises(ValueError, match="read-only"):
        params.scaler_mean[0] = 1.0


def test_metadata_fields(metadata):
    document = metadata.to_dict()
    assert document["format_version"] == FORMAT_VERSION
    assert metadata.feature_names == tuple(f"f{i}" for i in range(6))
    assert metadata.n_features == 6
    assert set(metadata.versions) == {
        "edgemon",
        "numpy",
        "scikit-learn",
        "skl2onnx",
        "onnx",
        "onnxruntime",
    }
    assert (
        metadata.novelty.kind
        == {"kmeans": "distance", "gmm": "neg_log_likelihood"}[metadata.algorithm]
    )
    assert sum(cluster.count for cluster in metadata.clusters) == metadata.training.n_windows
    json.loads(metadata.to_json())


def _broken(metadata, edit):
    document = copy.deepcopy(metadata.to_dict())
    edit(document)
    return json.dumps(document)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("states"), "invalid edgemon metadata"),
        (lambda d: d.update(algorithm="dbscan"), "algorithm must be one of"),
        (lambda d: d.update(states=d["states"][:-1]), "states must name each"),
        (lambda d: d["novelty"].update(kind="density"), "novelty kind of a"),
        (lambda d: d.update(sample_rate=-1.0), "sample_rate must be a positive"),
        (lambda d: d.update(window=0), "window and hop must be >= 1"),
        (lambda d: d.update(channels=[]), "channels must name at least one"),
        (lambda d: d["parameters"].update(scaler_mean=[0.0]), "scaler_mean must have shape"),
        (lambda d: d.update(model_id=12), "model_id must be a string"),
        (lambda d: d.update(format_version="1"), "unsupported edgemon model format_version"),
    ],
    ids=[
        "missing-field",
        "algorithm",
        "states-count",
        "novelty-kind",
        "sample-rate",
        "window",
        "channels",
        "parameter-shape",
        "model-id-type",
        "version-string",
    ],
)
def test_metadata_rejects_invalid(metadata, edit, message):
    with pytest.raises(ModelError, match=message):
        ModelMetadata.from_json(_broken(metadata, edit))


def test_metadata_rejects_estimator_shapes():
    kmeans = build_metadata(trained_model("kmeans"))
    text = _broken(kmeans, lambda d: d["parameters"].update(centroids=[[0.0] * 6]))
    with pytest.raises(ModelError, match="centroids must have shape"):
        ModelMetadata.from_json(text)
    gmm = build_metadata(trained_model("gmm"))
    text = _broken(gmm, lambda d: d["parameters"].update(covariance_type="banded"))
    with pytest.raises(ModelError, match="covariance_type must be one of"):
        ModelMetadata.from_json(text)
    text = _broken(gmm, lambda d: d["parameters"].update(weights=[1.0]))
    with pytest.raises(ModelError, match="weights must have shape"):
        ModelMetadata.from_json(text)


@pytest.mark.parametrize("text", ["[1, 2]", "not json", '{"format_version": 1}'])
def test_metadata_rejects_documents(text):
    with pytest.raises(ModelError, match="metadata"):
        ModelMetadata.from_json(text)
