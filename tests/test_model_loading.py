"""load_model: backends, rejected files and the compatibility check."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from synthetic_models import exported_model

from edgemon.errors import ConfigError, ModelError
from edgemon.model import METADATA_KEY, load_model


@pytest.fixture(scope="module")
def kmeans_file(tmp_path_factory):
    path, _ = exported_model(tmp_path_factory.mktemp("kmeans"), "kmeans")
    return path


def _rewrite_metadata(source, target, edit):
    model = onnx.load(str(source))
    for entry in model.metadata_props:
        if entry.key == METADATA_KEY:
            document = json.loads(entry.value)
            edit(document)
            entry.value = json.dumps(document)
    onnx.save(model, str(target))


@pytest.mark.parametrize("backend", ["auto", "onnxruntime", "numpy"])
def test_load_backends(kmeans_file, backend):
    model = load_model(kmeans_file, backend=backend)
    expected = "numpy" if backend == "numpy" else "onnxruntime"
    assert model.backend == expected
    assert model.metadata.algorithm == "kmeans"
    assert model.path == kmeans_file
    assert "kmeans" in repr(model)


def test_load_unknown_backend(kmeans_file):
    with pytest.raises(ConfigError, match="backend must be one of auto, onnxruntime, numpy"):
        load_model(kmeans_file, backend="tensorrt")


def test_load_onnxruntime_missing(kmeans_file, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ModelError, match="onnxruntime is not installed"):
        load_model(kmeans_file, backend="onnxruntime")
    assert load_model(kmeans_file, backend="auto").backend == "numpy"


def test_load_missing_file(tmp_path):
    with pytest.raises(ModelError, match="not found or not a regular file"):
        load_model(tmp_path / "absent.onnx")


def test_load_not_onnx(tmp_path):
    path = tmp_path / "notes.onnx"
    path.write_text("[model]\nthis is a TOML file, not a model\n")
    with pytest.raises(ModelError, match="is not an ONNX model"):
        load_model(path)


def test_load_foreign_onnx(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "foreign",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
    )
    path = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(ModelError, match="without edgemon metadata"):
        load_model(path)


def test_load_unsupported_version(kmeans_file, tmp_path):
    target = tmp_path / "future.onnx"
    _rewrite_metadata(kmeans_file, target, lambda d: d.update(format_version=99))
    with pytest.raises(ModelError, match="unsupported edgemon model format_version 99"):
        load_model(target)


def test_load_invalid_metadata_json(kmeans_file, tmp_path):
    model = onnx.load(str(kmeans_file))
    model.metadata_props[0].value = "{not json"
    target = tmp_path / "broken.onnx"
    onnx.save(model, str(target))
    with pytest.raises(ModelError, match="not valid JSON"):
        load_model(target)


def test_load_modified_threshold(kmeans_file, tmp_path):
    target = tmp_path / "edited.onnx"
    _rewrite_metadata(kmeans_file, target, lambda d: d["novelty"].update(threshold=1e9))
    with pytest.raises(ModelError, match="was modified after export"):
        load_model(target)


def test_load_resaved_by_onnx(kmeans_file, tmp_path):
    # A plain load and save keeps the bytes of the graph, so the id still matches.
    target = tmp_path / "resaved.onnx"
    onnx.save(onnx.load(str(kmeans_file)), str(target))
    assert load_model(target).metadata.model_id == load_model(kmeans_file).metadata.model_id


def test_score_wrong_columns(kmeans_file):
    model = load_model(kmeans_file)
    with pytest.raises(ModelError, match=r"expects features of shape \(n_windows, 6\)"):
        model.score(np.zeros((2, 5)))
    with pytest.raises(ModelError, match="expects features of shape"):
        model.score(np.zeros(6))


# --------------------------------------------------------------------------
# check_compatible


def test_compatible_accepts_match(kmeans_file):
    model = load_model(kmeans_file)
    model.check_compatible(sample_rate=12000.0, channels=("DE",), window=1024)
    model.check_compatible(sample_rate=12000, channels=1, window=1024, features=None)
    model.check_compatible(
        sample_rate=12000.0, channels=["DE"], window=1024, features=model.metadata.feature_names
    )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"sample_rate": 25600.0},
            "model expects sample_rate=12000 Hz but source 'udp' delivers 25600 Hz; "
            "retrain with --sample-rate 25600, or for a file source set sample_rate = 12000 "
            "in its [sensors.source] table",
        ),
        ({"channels": ("x", "y")}, "model expects channels ['DE'] but source 'udp' delivers"),
        ({"channels": 3}, "model expects 1 channel(s) ['DE'] but source 'udp' delivers 3"),
        (
            {"window": 2048},
            "model expects window=1024 samples but the configuration sets window=2048; "
            "set window = 1024 or retrain with --window 2048",
        ),
        ({"features": ["rms"]}, "model expects the features ['f0', 'f1'"),
    ],
    ids=["sample-rate", "channel-names", "channel-count", "window", "features"],
)
def test_compatible_rejects_mismatch(kmeans_file, settings, message):
    model = load_model(kmeans_file)
    arguments = {"sample_rate": 12000.0, "channels": ("DE",), "window": 1024, "source": "udp"}
    arguments.update(settings)
    with pytest.raises(ModelError) as raised:
        model.check_compatible(**arguments)
    assert message in str(raised.value)
    assert model.metadata.model_id in str(raised.value)


def test_compatible_lists_every_mismatch(kmeans_file):
    model = load_model(kmeans_file)
    with pytest.raises(ModelError) as raised:
        model.check_compatible(sample_rate=48000.0, channels=2, window=4096)
    text = str(raised.value)
    assert "sample_rate=12000" in text
    assert "channel(s)" in text
    assert "window=4096" in text


# --------------------------------------------------------------------------
# Run path


@pytest.mark.parametrize("backend", ["onnxruntime", "numpy"])
def test_run_path_imports(kmeans_file, backend):
    # Check that loading and scoring imports neither the training libraries
    # nor, for the numpy backend, onnxruntime.
    script = f"""
import sys
import numpy as np
from edgemon.model import load_model
model = load_model({str(kmeans_file)!r}, backend={backend!r})
model.score(np.zeros((2, model.metadata.n_features)))
heavy = ["sklearn", "skl2onnx", "onnx", "scipy.stats", "matplotlib"]
if {backend!r} == "numpy":
    heavy.append("onnxruntime")
print(",".join(name for name in heavy if name in sys.modules))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_onnxruntime_telemetry_off(kmeans_file, tmp_path):
    # Linux onnxruntime wheels create a telemetry database in the user's cache
    # at import unless ORT_DISABLE_TELEMETRY is set; the backend sets it.
    home = tmp_path / "home"
    home.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("ORT_")}
    env["HOME"] = str(home)
    code = (
        "import numpy as np\n"
        "from edgemon.model import load_model\n"
        f"model = load_model({str(kmeans_file)!r}, backend='onnxruntime')\n"
        "model.score(np.zeros((1, model.metadata.n_features)))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)
    assert not (home / ".cache" / "Microsoft").exists()
