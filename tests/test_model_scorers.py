"""The onnxruntime and numpy scorers against each other and against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from synthetic_models import blobs, trained_model

from edgemon.model import MAX_NOVELTY, load_model
from edgemon.model.metadata import ScorerParameters
from edgemon.model.numpy_backend import gmm_log_likelihood, kmeans_distances
from edgemon.training.export import export_model

CASES = [
    ("kmeans", "full", None),
    ("kmeans", "full", 3),
    ("kmeans", "full", 0.9),
    ("gmm", "full", None),
    ("gmm", "tied", None),
    ("gmm", "diag", None),
    ("gmm", "spherical", None),
    ("gmm", "full", 4),
    ("gmm", "diag", 0.95),
]
IDS = [f"{a}-{c}-pca{p}" for a, c, p in CASES]


@pytest.fixture(scope="module", params=CASES, ids=IDS)
def exported(request, tmp_path_factory):
    algorithm, covariance_type, pca = request.param
    trained = trained_model(algorithm, covariance_type=covariance_type, pca=pca)
    path = tmp_path_factory.mktemp("models") / "model.onnx"
    export_model(trained, path)
    return path, trained


def _reference(trained, features):
    """Labels and novelty from scikit-learn."""
    labels = trained.pipeline.predict(features)
    if trained.algorithm == "kmeans":
        novelty = trained.pipeline.transform(features).min(axis=1)
    else:
        novelty = -trained.pipeline.score_samples(features)
    return labels, novelty


def _test_points(trained):
    rng = np.random.default_rng(1)
    held_out, _ = blobs(n_per_label=40, seed=7)
    wide = rng.normal(6.0, 6.0, (200, trained.features.shape[1])) * np.std(trained.features, axis=0)
    return np.vstack([trained.features, held_out, wide])


@pytest.mark.parametrize("backend", ["onnxruntime", "numpy"])
def test_scorer_matches_sklearn(exported, backend):
    path, trained = exported
    features = _test_points(trained)
    clusters, novelty = load_model(path, backend=backend).score(features)
    labels, expected = _reference(trained, features)
    assert clusters.dtype == np.int64
    assert novelty.dtype == np.float64
    np.testing.assert_array_equal(clusters, labels)
    np.testing.assert_allclose(novelty, expected, rtol=1e-9, atol=1e-9)


def test_backends_agree(exported):
    path, trained = exported
    features = _test_points(trained)
    onnx_clusters, onnx_novelty = load_model(path, backend="onnxruntime").score(features)
    numpy_clusters, numpy_novelty = load_model(path, backend="numpy").score(features)
    np.testing.assert_array_equal(onnx_clusters, numpy_clusters)
    np.testing.assert_allclose(onnx_novelty, numpy_novelty, rtol=1e-9, atol=1e-9)


def _centres_in_feature_space(trained):
    estimator = trained.pipeline.steps[-1][1]
    centres = getattr(estimator, "cluster_centers_", None)
    if centres is None:
        centres = estimator.means_
    return trained.pipeline[:-1].inverse_transform(centres)


@pytest.mark.parametrize("backend", ["onnxruntime", "numpy"])
def test_novelty_on_centroids_finite(exported, backend):
    path, trained = exported
    model = load_model(path, backend=backend)
    on_centres = _centres_in_feature_space(trained)
    # Repeat each centre, nudged by one ulp, to probe the rounding of |x|^2 - 2x.c + |c|^2.
    nudged = np.vstack([on_centres, np.nextafter(on_centres, np.inf), on_centres * (1 + 1e-15)])
    clusters, novelty = model.score(nudged)
    assert np.all(np.isfinite(novelty))
    if trained.algorithm == "kmeans":
        assert np.all(novelty >= 0)
        assert np.all(novelty < 1e-6)
        np.testing.assert_array_equal(clusters[: len(on_centres)], np.arange(len(on_centres)))


@pytest.mark.parametrize("backend", ["onnxruntime", "numpy"])
@pytest.mark.parametrize("factor", [1e3, 1e8, 1e50])
def test_novelty_far_away_finite(exported, backend, factor):
    path, trained = exported
    model = load_model(path, backend=backend)
    far = np.vstack([trained.features[:5] * factor, -trained.features[:5] * factor])
    _, novelty = model.score(far)
    assert np.all(np.isfinite(novelty))
    assert np.all(novelty > model.metadata.novelty.threshold)


@pytest.mark.parametrize("backend", ["onnxruntime", "numpy"])
def test_novelty_overflow_saturates(exported, backend):
    path, trained = exported
    model = load_model(path, backend=backend)
    overflow = np.full((2, trained.features.shape[1]), 1e200)
    overflow[1] *= -1
    _, novelty = model.score(overflow)
    assert np.all(novelty > model.metadata.novelty.threshold)
    assert not np.any(np.isnan(novelty))
    if trained.algorithm == "gmm":
        assert np.all(novelty == MAX_NOVELTY)


@pytest.mark.parametrize("backend", ["onnxruntime", "numpy"])
def test_novelty_nan_for_nan_features(exported, backend):
    path, trained = exported
    features = trained.features[:3].copy()
    features[1, 0] = np.nan
    _, novelty = load_model(path, backend=backend).score(features)
    assert np.isnan(novelty[1])
    assert np.all(np.isfinite(novelty[[0, 2]]))


@pytest.mark.parametrize("backend", ["onnxruntime", "numpy"])
def test_score_empty_batch(exported, backend):
    path, trained = exported
    clusters, novelty = load_model(path, backend=backend).score(
        np.empty((0, trained.features.shape[1]))
    )
    assert clusters.shape == (0,)
    assert novelty.shape == (0,)


# --------------------------------------------------------------------------
# Numeric kernels


finite_points = arrays(
    np.float64,
    st.tuples(st.integers(1, 8), st.just(3)),
    elements=st.floats(-1e6, 1e6, allow_nan=False),
)


@settings(max_examples=60, deadline=None)
@given(points=finite_points, centroids=arrays(np.float64, (4, 3), elements=st.floats(-1e6, 1e6)))
def test_kmeans_distances_match_definition(points, centroids):
    distances = kmeans_distances(points, centroids)
    expected = np.linalg.norm(points[:, None, :] - centroids[None, :, :], axis=2)
    assert np.all(distances >= 0)
    np.testing.assert_allclose(distances, expected, rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    points=finite_points,
    covariance_type=st.sampled_from(["full", "tied", "diag", "spherical"]),
    seed=st.integers(0, 2**16),
)
def test_gmm_log_likelihood_matches_sklearn(points, covariance_type, seed):
    from sklearn.mixture import GaussianMixture

    rng = np.random.default_rng(seed)
    train = rng.normal(0, 1, (60, 3)) * [1.0, 3.0, 0.5] + rng.normal(0, 2, (1, 3))
    gmm = GaussianMixture(3, covariance_type=covariance_type, random_state=seed).fit(train)
    params = ScorerParameters.from_dict(
        {
            "scaler_mean": [0.0] * 3,
            "scaler_scale": [1.0] * 3,
            "weights": gmm.weights_.tolist(),
            "means": gmm.means_.tolist(),
            "precisions_cholesky": gmm.precisions_cholesky_.tolist(),
            "covariance_type": covariance_type,
        }
    )
    labels, log_likelihood = gmm_log_likelihood(points, params)
    expected = gmm.score_samples(points)
    assert np.all(np.isfinite(log_likelihood))
    np.testing.assert_allclose(log_likelihood, expected, rtol=1e-9)
    weighted = gmm._estimate_weighted_log_prob(points)
    best = weighted[np.arange(len(points)), gmm.predict(points)]
    chosen = weighted[np.arange(len(points)), labels]
    np.testing.assert_allclose(chosen, best, rtol=1e-9)
