"""inspect_text: the description printed by ``edgemon inspect``."""

from __future__ import annotations

from dataclasses import replace

import pytest
from synthetic_models import exported_model, trained_model

from edgemon.errors import ModelError
from edgemon.model import Selection, load_model
from edgemon.training.export import export_model
from edgemon.training.inspect import inspect_text


@pytest.mark.parametrize(
    ("algorithm", "options"),
    [("kmeans", {"pca": 0.9}), ("gmm", {"covariance_type": "tied"})],
)
def test_inspect_lists_everything(tmp_path, algorithm, options):
    path, _trained = exported_model(tmp_path, algorithm, **options)
    metadata = load_model(path).metadata
    text = inspect_text(path)
    assert metadata.model_id in text
    assert "opsets ai.onnx 17" in text
    assert "features: float64 [?, 6]" in text
    assert "sample rate  12000 Hz" in text
    for column in metadata.columns:
        assert column in text
    for cluster in metadata.clusters:
        assert cluster.state in text
    assert f"{metadata.novelty.threshold:.6g}" in text
    assert "given by the user" in text
    assert "normal.npy" in text
    assert "scikit-learn" in text
    if algorithm == "gmm":
        assert "tied covariance" in text
        assert "score_samples: float64" in text
    else:
        assert "(90% of the variance)" in text
        assert "scores: float64" in text


def test_inspect_rejects_foreign_file(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x00\x01not onnx")
    with pytest.raises(ModelError, match="not an ONNX model"):
        inspect_text(path)


def test_inspect_names_preset_selection(tmp_path):
    note = "preset of 32 clusters, at most one per 20 training windows; 450 windows allow 22"
    trained = replace(trained_model(), selection=Selection(method="preset", note=note))
    path = tmp_path / "preset.onnx"
    export_model(trained, path)
    text = inspect_text(path)
    assert "method  preset default, capped on small training sets" in text
    assert note in text
    assert "given by the user" not in text
