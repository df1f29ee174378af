"""The pure-Python ONNX header reader, checked against the onnx package."""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper
from synthetic_models import exported_model

from edgemon.errors import ModelError
from edgemon.model.onnxfile import parse_onnx, read_onnx


def _tiny_model(metadata: dict[str, str] | None = None) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.producer_name = "edgemon-tests"
    model.producer_version = "1.2.3"
    helper.set_model_props(model, metadata or {})
    return model


@pytest.mark.parametrize("algorithm", ["kmeans", "gmm"])
def test_reader_matches_onnx_package(tmp_path, algorithm):
    path, _ = exported_model(tmp_path, algorithm)
    expected = onnx.load(str(path))
    info = read_onnx(path)
    assert info.ir_version == expected.ir_version
    assert info.producer_name == expected.producer_name
    assert info.producer_version == expected.producer_version
    assert info.opset_import == {o.domain: o.version for o in expected.opset_import}
    assert info.metadata_props == {p.key: p.value for p in expected.metadata_props}
    assert info.n_nodes == len(expected.graph.node)
    assert info.graph_name == expected.graph.name
    assert [i.name for i in info.inputs] == [i.name for i in expected.graph.input]
    assert [o.name for o in info.outputs] == [o.name for o in expected.graph.output]
    assert info.graph_bytes == expected.graph.SerializeToString()


def test_reader_shapes_and_types():
    model = _tiny_model({"a": "1", "b": "é"})
    info = parse_onnx(model.SerializeToString())
    assert info.inputs[0].element_type == "float32"
    assert info.inputs[0].shape == ("batch", 3)
    assert info.outputs[0].shape == (None, 3)
    assert info.metadata_props == {"a": "1", "b": "é"}
    assert info.producer_version == "1.2.3"
    assert info.opset_import == {"": 17}


def test_reader_exported_input_is_float64(tmp_path):
    path, trained = exported_model(tmp_path, "kmeans")
    info = read_onnx(path)
    assert info.inputs[0].name == "features"
    assert info.inputs[0].element_type == "float64"
    assert info.inputs[0].shape[1] == trained.features.shape[1]


def test_reader_skips_unknown_fields():
    model = _tiny_model({"k": "v"})
    # Field 99, varint 5, and field 98, 3 bytes: unknown to the reader and to onnx.
    data = model.SerializeToString() + bytes([0x98, 0x06, 0x05, 0x92, 0x06, 0x03]) + b"abc"
    assert parse_onnx(data).metadata_props == {"k": "v"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "no IR version or no graph"),
        (b"\x08", "truncated varint"),
        (b"\x0a\x10abc", "claims 16 bytes"),
        (b"\x0b", "unsupported wire type 3"),
        (b"PK\x03\x04 not a model at all", "not an ONNX model"),
        (b"\x08\x08", "no IR version or no graph"),
    ],
    ids=["empty", "truncated-varint", "short-field", "group", "zip", "no-graph"],
)
def test_reader_rejects_malformed(data, message):
    with pytest.raises(ModelError, match=message):
        parse_onnx(data, source="bad.onnx")


def test_reader_rejects_truncated_file(tmp_path):
    path, _ = exported_model(tmp_path, "gmm")
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(ModelError, match="is not an ONNX model"):
        read_onnx(truncated)


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_reader_rejects_non_files(tmp_path, kind):
    path = tmp_path / "model.onnx"
    if kind == "directory":
        path.mkdir()
    with pytest.raises(ModelError, match="not found or not a regular file"):
        read_onnx(path)
