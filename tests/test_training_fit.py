"""train_model and fit_feature_matrix: windows, cluster names, thresholds, real recordings."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from synthetic_models import blobs

from edgemon.data import CWRU_EXCERPT
from edgemon.errors import ConfigError, RecordingError
from edgemon.features import FeatureExtractor
from edgemon.model import load_model
from edgemon.recordings import Recording
from edgemon.training.datasets import LabelledRecording, load_dataset
from edgemon.training.export import export_model
from edgemon.training.fit import (
    cut_windows,
    fit_feature_matrix,
    novelty_threshold,
    train_model,
)

FEATURES = ["all"]


# --------------------------------------------------------------------------
# Windows and thresholds


@pytest.mark.parametrize(
    ("n_samples", "window", "hop", "expected"),
    [(10, 4, 2, 4), (10, 4, 4, 2), (4, 4, 1, 1), (3, 4, 1, 0), (12, 3, 5, 2)],
)
def test_cut_windows_count(n_samples, window, hop, expected):
    samples = np.arange(n_samples * 2, dtype=float).reshape(n_samples, 2)
    windows = cut_windows(samples, window, hop)
    assert windows.shape == (expected, window, 2)
    for index in range(expected):
        np.testing.assert_array_equal(windows[index], samples[index * hop : index * hop + window])


def test_novelty_threshold_rule():
    scores = np.arange(1001, dtype=float)
    novelty = novelty_threshold(scores, kind="distance", quantile=0.99, margin=1.0)
    assert novelty.training_median == 500.0
    assert novelty.training_quantile == pytest.approx(990.0)
    assert novelty.threshold == pytest.approx(990.0 + (990.0 - 500.0))


def test_novelty_threshold_shift_invariant():
    scores = np.random.default_rng(0).gamma(2.0, size=500)
    base = novelty_threshold(scores, kind="distance", quantile=0.95, margin=0.5)
    shifted = novelty_threshold(
        3 * scores - 40, kind="neg_log_likelihood", quantile=0.95, margin=0.5
    )
    assert shifted.threshold == pytest.approx(3 * base.threshold - 40)


# --------------------------------------------------------------------------
# Fitting a feature matrix


@pytest.mark.parametrize("algorithm", ["kmeans", "gmm"])
def test_fit_names_clusters_by_majority(algorithm):
    features, labels = blobs()
    fit = fit_feature_matrix(features, labels, algorithm=algorithm, n_clusters=3)
    assert sorted(fit.clusters[k].state for k in range(3)) == sorted(set(labels))
    for k, cluster in enumerate(fit.clusters):
        members = labels[fit.assignments == k]
        assert cluster.count == len(members)
        assert cluster.purity == pytest.approx(np.mean(members == cluster.state))
        assert sum(cluster.label_counts.values()) == cluster.count
    assert fit.selection.method == "user"


def test_fit_records_mixed_cluster(caplog):
    features, _ = blobs()
    # Two labels spread evenly over every blob: no cluster has a clear majority.
    labels = np.array(["a", "b"] * (len(features) // 2))
    with caplog.at_level(logging.WARNING, logger="edgemon.training.fit"):
        fit = fit_feature_matrix(features, labels, n_clusters=3)
    assert all(cluster.purity == pytest.approx(0.5) for cluster in fit.clusters)
    assert all(cluster.state == "a" for cluster in fit.clusters)
    assert not any(cluster.clear_majority for cluster in fit.clusters)
    assert "no clear majority" in caplog.text


def test_fit_training_unknown_rate():
    features, labels = blobs(n_per_label=300)
    for algorithm in ("kmeans", "gmm"):
        fit = fit_feature_matrix(features, labels, algorithm=algorithm, n_clusters=3)
        assert np.mean(fit.scores > fit.novelty.threshold) <= 0.01


def test_fit_pca_share():
    features, labels = blobs()
    fit = fit_feature_matrix(features, labels, n_clusters=3, pca=0.9)
    pca = fit.pipeline.named_steps["pca"]
    assert np.sum(pca.explained_variance_ratio_) >= 0.9
    assert pca.n_components_ < features.shape[1]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"algorithm": "optics"}, "algorithm must be one of kmeans, gmm"),
        ({"n_clusters": 0}, "n_clusters must be None or an integer >= 1"),
        ({"n_clusters": 10_000}, "exceeds the 450 training windows"),
        ({"covariance_type": "banded"}, "covariance_type must be one of"),
        ({"pca": 0}, "pca must be None, a number of components"),
        ({"pca": 1.5}, "pca must be None, a number of components"),
        ({"novelty_quantile": 0.3}, "novelty_quantile must be in"),
        ({"novelty_margin": -1.0}, "novelty_margin must be >= 0"),
    ],
    ids=[
        "algorithm",
        "k-zero",
        "k-large",
        "covariance",
        "pca-zero",
        "pca-share",
        "quantile",
        "margin",
    ],
)
def test_fit_rejects_options(options, message):
    features, labels = blobs()
    with pytest.raises(ConfigError, match=message):
        fit_feature_matrix(features, labels, **options)


def test_fit_rejects_nonfinite():
    features, labels = blobs()
    features[3, 2] = np.nan
    with pytest.raises(ConfigError, match="features must be finite"):
        fit_feature_matrix(features, labels, n_clusters=3)


# --------------------------------------------------------------------------
# train_model on recordings


def _synthetic_recording(label: str, frequency: float, n_samples: int = 8192, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / 12000.0
    samples = np.sin(2 * np.pi * frequency * t) + 0.1 * rng.normal(size=n_samples)
    recording = Recording(samples[:, None], 12000.0, ("DE",), sha256="ab" * 32)
    return LabelledRecording(recording, label)


def test_train_model_synthetic_recordings():
    recordings = [
        _synthetic_recording("low", 100.0),
        _synthetic_recording("high", 2000.0, seed=1),
    ]
    trained = train_model(recordings, features=FEATURES, window=512, hop=256, n_clusters=2)
    assert trained.features.shape == (2 * 31, 12)
    assert sorted(trained.states) == ["high", "low"]
    assert trained.columns[0] == "DE:time.mean"
    assert trained.feature_spec["window"] == 512
    assert [f.windows for f in trained.training.files] == [31, 31]
    assert trained.training.created.endswith("Z")


def test_train_model_drops_constant_windows(caplog):
    good = _synthetic_recording("low", 100.0)
    samples = good.recording.samples.copy()
    samples[:1024] = 0.25
    flat = LabelledRecording(Recording(samples, 12000.0, ("DE",)), "low")
    recordings = [flat, _synthetic_recording("high", 2000.0, seed=1)]
    with caplog.at_level(logging.WARNING, logger="edgemon.training.fit"):
        trained = train_model(recordings, features=FEATURES, window=512, hop=256, n_clusters=2)
    assert trained.training.files[0].windows == 31 - 3
    assert "dropped 3 of 31 windows" in caplog.text


def test_train_model_accepts_extractor():
    extractor = FeatureExtractor(["time.rms", "freq.centroid"], 12000.0, 512, ("DE",))
    recordings = [_synthetic_recording("low", 100.0), _synthetic_recording("high", 2000.0, seed=1)]
    trained = train_model(recordings, features=extractor, window=512, hop=512, n_clusters=2)
    assert trained.columns == ("DE:time.rms", "DE:freq.centroid")
    with pytest.raises(ConfigError, match="feature extractor has window=512"):
        train_model(recordings, features=extractor, window=1024, hop=512, n_clusters=2)


def test_train_model_rejects_mixed_rates():
    slow = _synthetic_recording("low", 100.0)
    fast = LabelledRecording(Recording(np.zeros((8192, 1)), 48000.0, ("DE",)), "high")
    with pytest.raises(RecordingError, match="must share one sample rate"):
        train_model([slow, fast], features=FEATURES, window=512, hop=256)


def test_train_model_rejects_short_recording():
    short = LabelledRecording(Recording(np.zeros((100, 1)), 12000.0, ("DE",)), "low")
    with pytest.raises(RecordingError, match="fewer than one window of 512"):
        train_model([short], features=FEATURES, window=512, hop=256)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"window": 0}, "window must be a positive number"),
        ({"hop": 1.5}, "hop must be a positive number"),
        ({"algorithm": "dbscan"}, "algorithm must be one of"),
        ({"min_windows_per_cluster": 0}, "min_windows_per_cluster must be a positive"),
    ],
)
def test_train_model_rejects_options(options, message):
    arguments = {"features": FEATURES, "window": 512, "hop": 256, **options}
    with pytest.raises(ConfigError, match=message):
        train_model([_synthetic_recording("low", 100.0)], **arguments)


def _train_preset_clusters(recordings, n_clusters: int = 10):
    return train_model(
        recordings,
        features=FEATURES,
        window=512,
        hop=256,
        n_clusters=n_clusters,
        min_windows_per_cluster=20,
    )


def test_train_model_caps_preset_clusters(caplog):
    recordings = [_synthetic_recording("low", 100.0), _synthetic_recording("high", 2000.0, seed=1)]
    with caplog.at_level(logging.INFO, logger="edgemon.training.fit"):
        trained = _train_preset_clusters(recordings)
    # 62 windows allow one cluster per 20 windows.
    assert len(trained.clusters) == 3
    assert trained.selection.method == "preset"
    assert "preset of 10 clusters, at most one per 20 training windows" in trained.selection.note
    assert "62 windows allow 3" in trained.selection.note
    assert "fitting 3 clusters instead of the preset's 10" in caplog.text


def test_train_model_cap_counts_kept_windows():
    good = _synthetic_recording("low", 100.0)
    samples = good.recording.samples.copy()
    samples[:1024] = 0.25
    flat = LabelledRecording(Recording(samples, 12000.0, ("DE",)), "low")
    trained = _train_preset_clusters([flat, _synthetic_recording("high", 2000.0, seed=1)])
    # 3 constant windows are dropped, and 59 windows allow only 2 clusters.
    assert trained.training.n_windows == 59
    assert len(trained.clusters) == 2
    assert "59 windows allow 2" in trained.selection.note


def test_train_model_preset_clusters_within_cap():
    recordings = [_synthetic_recording("low", 100.0), _synthetic_recording("high", 2000.0, seed=1)]
    trained = _train_preset_clusters(recordings, n_clusters=2)
    assert len(trained.clusters) == 2
    assert trained.selection.method == "preset"
    assert "allow" not in trained.selection.note


def test_train_model_rejects_no_recordings():
    with pytest.raises(ConfigError, match="at least one labelled recording"):
        train_model([], features=FEATURES, window=512, hop=256)


def _state_accuracy(model, recordings, window):
    extractor = FeatureExtractor.from_dict(model.metadata.features)
    correct = unknown = total = 0
    for item in recordings:
        features = extractor.transform(cut_windows(item.recording.samples, window, window))
        clusters, novelty = model.score(features)
        known = novelty <= model.metadata.novelty.threshold
        states = np.asarray(model.metadata.states)[clusters]
        correct += int(np.sum(known & (states == item.label)))
        unknown += int(np.sum(~known))
        total += len(clusters)
    return correct / total, unknown / total


def _split(item, share):
    """Return the first ``share`` of a recording and the rest, as two labelled recordings."""
    recording = item.recording
    cut = int(recording.n_samples * share)
    parts = []
    for samples in (recording.samples[:cut], recording.samples[cut:]):
        part = Recording(
            samples,
            recording.sample_rate,
            recording.channels,
            recording.path,
            recording.sha256,
            recording.attrs,
        )
        parts.append(LabelledRecording(part, item.label, item.attrs))
    return parts


def test_train_bundled_excerpt(tmp_path):
    # Train on the first 70 % of each recording of the shipped excerpt and
    # score the last 30 %, which shares no window with the training data.
    data = load_dataset("cwru", CWRU_EXCERPT, channels="DE", sample_rate=12000.0)
    train, held_out = zip(*(_split(item, 0.7) for item in data), strict=True)
    trained = train_model(
        list(train), features=FEATURES, window=2048, hop=1024, n_clusters=8, dataset="cwru"
    )
    path = tmp_path / "excerpt.onnx"
    metadata = export_model(trained, path)
    assert set(metadata.states) == {"normal", "inner_race", "ball", "outer_race"}
    assert metadata.training.dataset == "cwru"
    assert metadata.training.files[0].sha256 == data[0].recording.sha256
    normal = next(f for f in metadata.training.files if f.label == "normal")
    assert normal.sample_rate == 48000.0
    model = load_model(path)
    accuracy, unknown = _state_accuracy(model, held_out, 2048)
    assert accuracy >= 0.9
    assert unknown <= 0.05


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("algorithm", ["kmeans", "gmm"])
def test_train_cwru_unseen_load(cwru_dir, tmp_path, algorithm):
    # Train on 0 and 1 hp, score the 2 hp recordings the model never saw.
    train = load_dataset("cwru", cwru_dir, channels="DE", sample_rate=12000.0, loads=[0, 1])
    held_out = load_dataset("cwru", cwru_dir, channels="DE", sample_rate=12000.0, loads=[2])
    trained = train_model(
        train, features=FEATURES, window=2048, hop=1024, algorithm=algorithm, n_clusters=8
    )
    assert np.mean(trained.assignments >= 0) == 1.0
    export_model(trained, tmp_path / "cwru.onnx")
    model = load_model(tmp_path / "cwru.onnx")
    _, training_novelty = model.score(trained.features)
    assert np.mean(training_novelty > model.metadata.novelty.threshold) <= 0.01
    accuracy, unknown = _state_accuracy(model, held_out, 2048)
    assert accuracy >= 0.6
    assert unknown <= 0.15


# --------------------------------------------------------------------------
# Label balance and feature weights


def imbalanced_blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A small 'normal' blob beside a large fault blob that has two modes."""
    rng = np.random.default_rng(seed)
    normal = rng.normal(0.0, 0.3, (12, 2)) + np.array([2.5, 0.0])
    fault = np.vstack(
        [
            rng.normal(0.0, 0.3, (300, 2)) + np.array([-2.0, 0.0]),
            rng.normal(0.0, 0.3, (300, 2)) + np.array([0.0, 2.0]),
        ]
    )
    return np.vstack([normal, fault]), np.array(["normal"] * 12 + ["fault"] * 600)


@pytest.mark.parametrize("algorithm", ["kmeans", "gmm"])
def test_fit_balance_gives_minority_a_cluster(algorithm):
    features, labels = imbalanced_blobs()
    balanced = fit_feature_matrix(
        features, labels, algorithm=algorithm, n_clusters=2, balance_labels=True
    )
    assert sorted(c.state for c in balanced.clusters) == ["fault", "normal"]
    normal = next(c for c in balanced.clusters if c.state == "normal")
    assert normal.count == 12
    assert normal.purity == 1.0


def test_fit_unbalanced_splits_majority():
    # Without balance, two clusters go to the two fault modes and the few normal
    # windows join one of them: the reason balance_labels exists.
    features, labels = imbalanced_blobs()
    plain = fit_feature_matrix(features, labels, algorithm="kmeans", n_clusters=2)
    assert [c.state for c in plain.clusters] == ["fault", "fault"]


def test_fit_feature_weights_fold_into_scaler():
    features, labels = blobs()
    weights = np.linspace(0.5, 2.0, features.shape[1])
    plain = fit_feature_matrix(features, labels, n_clusters=3)
    weighted = fit_feature_matrix(features, labels, n_clusters=3, feature_weights=weights)
    plain_scale = plain.pipeline.named_steps["scaler"].scale_
    weighted_scale = weighted.pipeline.named_steps["scaler"].scale_
    np.testing.assert_allclose(weighted_scale, plain_scale / weights)
    scaled = weighted.pipeline.named_steps["scaler"].transform(features)
    expected = plain.pipeline.named_steps["scaler"].transform(features) * weights
    np.testing.assert_allclose(scaled, expected)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([1.0, 2.0], "feature_weights must be 6 positive numbers"),
        ([1.0, 1.0, 1.0, 1.0, 1.0, 0.0], "positive"),
    ],
)
def test_fit_feature_weights_invalid(weights, message):
    features, labels = blobs()
    with pytest.raises(ConfigError, match=message):
        fit_feature_matrix(features, labels, n_clusters=3, feature_weights=weights)


def test_train_block_weights_per_family(tmp_path):
    recordings = load_dataset("cwru", CWRU_EXCERPT, channels=("DE",), sample_rate=12000, loads=(0,))
    extractor = FeatureExtractor(
        ["time.kurtosis", "band.rms"],
        12000.0,
        2048,
        ("DE",),
        bands=[(100, 1000), (1000, 3000), (3000, 5000), (5000, 5900)],
    )
    trained = train_model(
        recordings,
        features=extractor,
        window=2048,
        hop=2048,
        n_clusters=4,
        balance_labels=True,
        feature_weights="blocks",
    )
    scaler = trained.pipeline.named_steps["scaler"]
    ratio = np.sqrt(trained.features.var(axis=0)) / scaler.scale_
    np.testing.assert_allclose(ratio, [1.0, 0.5, 0.5, 0.5, 0.5])
    assert trained.training.options == {"balance_labels": True, "feature_weights": "blocks"}
    metadata = export_model(trained, tmp_path / "model.onnx")
    assert (
        load_model(tmp_path / "model.onnx").metadata.training.options == metadata.training.options
    )
