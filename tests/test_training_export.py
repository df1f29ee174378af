"""export_model: the ONNX graph, its metadata and the parity check."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest
from synthetic_models import trained_model

from edgemon.errors import ModelError
from edgemon.model import load_model
from edgemon.model.metadata import ScorerParameters
from edgemon.training import export
from edgemon.training.export import (
    TARGET_OPSET,
    build_metadata,
    check_parity,
    export_model,
    to_onnx_bytes,
)


@pytest.fixture(scope="module")
def kmeans_trained():
    return trained_model("kmeans", pca=4)


@pytest.fixture(scope="module")
def gmm_trained():
    return trained_model("gmm", covariance_type="full")


@pytest.mark.parametrize("name", ["kmeans_trained", "gmm_trained"])
def test_export_graph_format(request, tmp_path, name):
    trained = request.getfixturevalue(name)
    path = tmp_path / "model.onnx"
    metadata = export_model(trained, path)
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    assert model.ir_version == 8
    assert {o.domain: o.version for o in model.opset_import}[""] == TARGET_OPSET
    assert [i.name for i in model.graph.input] == ["features"]
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    outputs = [o.name for o in model.graph.output]
    expected = ["label", "scores"] if trained.algorithm == "kmeans" else ["label", "score_samples"]
    assert set(expected) <= set(outputs)
    assert not any(node.op_type == "ZipMap" for node in model.graph.node)
    assert len(metadata.model_id) == 12


def test_export_clamps_squared_distances(tmp_path, kmeans_trained):
    path = tmp_path / "model.onnx"
    export_model(kmeans_trained, path)
    nodes = list(onnx.load(str(path)).graph.node)
    sqrt = next(node for node in nodes if node.op_type == "Sqrt")
    producer = next(node for node in nodes if sqrt.input[0] in node.output)
    assert producer.op_type == "Max"
    assert nodes.index(producer) < nodes.index(sqrt)


def test_export_metadata_matches_file(tmp_path, gmm_trained):
    path = tmp_path / "model.onnx"
    metadata = export_model(gmm_trained, path)
    loaded = load_model(path).metadata
    assert loaded.to_dict() == metadata.to_dict()
    assert loaded.states == gmm_trained.states
    assert loaded.parameters.covariance_type == "full"


def test_export_id_changes_with_threshold(tmp_path, kmeans_trained):
    first = export_model(kmeans_trained, tmp_path / "a.onnx")
    again = export_model(kmeans_trained, tmp_path / "b.onnx")
    novelty = dataclasses.replace(kmeans_trained.novelty, threshold=123.0)
    changed = export_model(
        dataclasses.replace(kmeans_trained, novelty=novelty), tmp_path / "c.onnx"
    )
    assert first.model_id == again.model_id
    assert changed.model_id != first.model_id


def test_export_replaces_existing_file(tmp_path, kmeans_trained):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"old")
    export_model(kmeans_trained, path)
    assert load_model(path).metadata.algorithm == "kmeans"
    assert not (tmp_path / "model.onnx.tmp").exists()


def test_export_unwritable_path(tmp_path, kmeans_trained):
    with pytest.raises(ModelError, match="cannot write model file"):
        export_model(kmeans_trained, tmp_path / "missing-folder" / "model.onnx")


@pytest.mark.parametrize("name", ["kmeans_trained", "gmm_trained"])
def test_parity_passes(request, name):
    trained = request.getfixturevalue(name)
    metadata = build_metadata(trained)
    reports = check_parity(to_onnx_bytes(trained), metadata, trained)
    assert [r.scorer for r in reports] == ["onnxruntime", "numpy"]
    for report in reports:
        assert report.passed
        assert report.n_windows == len(trained.features)
        assert report.worst_error_ratio < 1e-2


def _perturbed(params: ScorerParameters, name: str, delta: float) -> ScorerParameters:
    values = params.to_dict()
    values[name] = (np.asarray(values[name]) + delta).tolist()
    return ScorerParameters.from_dict(values)


@pytest.mark.parametrize("name", ["kmeans_trained", "gmm_trained"])
def test_parity_fails_export(request, tmp_path, monkeypatch, name):
    # Check that a numpy scorer whose parameters drift from the graph stops the export.
    trained = request.getfixturevalue(name)
    original = export.scorer_parameters
    field = "centroids" if trained.algorithm == "kmeans" else "means"
    monkeypatch.setattr(
        export, "scorer_parameters", lambda pipeline: _perturbed(original(pipeline), field, 0.5)
    )
    path = tmp_path / "model.onnx"
    with pytest.raises(ModelError, match="export parity check failed") as raised:
        export_model(trained, path)
    assert "numpy:" in str(raised.value)
    assert "onnxruntime:" not in str(raised.value)
    assert not path.exists()


def test_parity_tolerates_rounding(kmeans_trained):
    # A relative change of 1e-13 in the centroids stays within the tolerance.
    trained = kmeans_trained
    metadata = build_metadata(trained)
    params = metadata.parameters
    values = params.to_dict()
    values["centroids"] = (np.asarray(values["centroids"]) * (1 + 1e-13)).tolist()
    drifted = dataclasses.replace(metadata, parameters=ScorerParameters.from_dict(values))
    reports = check_parity(to_onnx_bytes(trained), drifted, trained)
    assert all(report.passed for report in reports)
