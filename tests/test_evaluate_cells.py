"""Grid cells: fit on the training side, score the test side, OPTICS noise and failures."""

from __future__ import annotations

import numpy as np
import pytest

from edgemon.training.cells import RESULT_FIELDS, evaluate_cell, fit_predict, project, run_cells
from edgemon.training.metrics import NOISE


def _blobs(centres, n=60, seed=0, spread=0.3):
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(centre, spread, (n, 2)) for centre in centres])


CENTRES = [(0.0, 0.0), (6.0, 0.0), (0.0, 6.0)]
LABELS = np.repeat(["ball", "inner_race", "normal"], 60)


@pytest.mark.parametrize(
    "algorithm", ["kmeans", "gmm-full", "gmm-tied", "gmm-diag", "gmm-spherical"]
)
def test_separated_blobs_score_perfectly(algorithm):
    train, test = _blobs(CENTRES, seed=0), _blobs(CENTRES, seed=1)
    result = run_cells(
        train, LABELS, test, LABELS, [{"algorithm": algorithm, "k": 3, "pca": None, "seed": 0}]
    )[0]
    assert result["status"] == "ok"
    assert set(RESULT_FIELDS) <= set(result)
    assert result["accuracy_majority"] > 0.95
    assert result["accuracy_hungarian"] > 0.95
    assert result["ari"] > 0.9
    assert np.isnan(result["silhouette"])  # computed only without labels


def test_optics_clusters_pure_but_noisy():
    # OPTICS splits Gaussian blobs at density changes and leaves their thin
    # edges as noise: every clustered test window is right, every noise one wrong.
    train, test = _blobs(CENTRES, seed=0), _blobs(CENTRES, seed=1)
    result = run_cells(
        train, LABELS, test, LABELS, [{"algorithm": "optics", "k": None, "pca": None, "seed": None}]
    )[0]
    assert result["status"] == "ok"
    assert 0 < result["noise_share"] < 1
    assert result["accuracy_majority"] == pytest.approx(1 - result["noise_share"])
    assert result["clusters_found"] >= 3
    assert np.isnan(result["unknown_rate"])


def test_mapping_learned_on_training_side():
    # Same windows, but the test side's labels are rotated: the clusters still
    # agree perfectly with the test labels (ARI 1), yet every mapped label is wrong.
    train, test = _blobs(CENTRES, seed=0), _blobs(CENTRES, seed=1)
    rotated = np.roll(LABELS, 60)
    result = run_cells(
        train, LABELS, test, rotated, [{"algorithm": "kmeans", "k": 3, "pca": None, "seed": 0}]
    )[0]
    assert result["ari"] == pytest.approx(1.0)
    assert result["accuracy_majority"] == 0.0
    assert result["accuracy_hungarian"] == 0.0


def test_extra_clusters_hurt_hungarian_only():
    train, test = _blobs(CENTRES, seed=0), _blobs(CENTRES, seed=1)
    result = run_cells(
        train, LABELS, test, LABELS, [{"algorithm": "kmeans", "k": 6, "pca": None, "seed": 0}]
    )[0]
    assert result["accuracy_majority"] > 0.95
    assert result["accuracy_hungarian"] < 0.9


def test_optics_far_windows_are_noise():
    train = _blobs(CENTRES, seed=0)
    far = np.array([[40.0, 40.0], [-40.0, 40.0], [40.0, -40.0]])
    test = np.vstack([_blobs(CENTRES, n=20, seed=1), far])
    test_labels = np.concatenate(
        [np.repeat(["ball", "inner_race", "normal"], 20), ["ball", "inner_race", "normal"]]
    )
    prediction = fit_predict(train, LABELS, test, algorithm="optics", k=None, pca=None, seed=None)
    assert np.all(prediction.test_clusters[-3:] == NOISE)
    assert prediction.unknown is None
    train_points, test_points = project(train, test, None)
    result = evaluate_cell(
        train_points, LABELS, test_points, test_labels, algorithm="optics", k=None, seed=None
    )
    assert result["noise_share"] >= 3 / len(test)
    # Noise windows count as wrong, so accuracy is at most the share of non-noise windows.
    assert result["accuracy_majority"] <= 1 - result["noise_share"] + 1e-12
    assert np.isnan(result["unknown_rate"])


def test_novelty_flags_far_windows():
    train = _blobs(CENTRES, seed=0)
    test = np.vstack([_blobs(CENTRES, n=20, seed=1), [[50.0, 50.0]] * 6])
    for algorithm in ("kmeans", "gmm-full"):
        prediction = fit_predict(train, LABELS, test, algorithm=algorithm, k=3, pca=None, seed=0)
        assert prediction.unknown[-6:].all()
        assert prediction.unknown[:-6].mean() < 0.05


def test_single_label_gives_silhouette():
    train, test = _blobs(CENTRES, seed=0), _blobs(CENTRES, seed=1)
    healthy = np.full(len(train), "healthy")
    result = run_cells(
        train, healthy, test, healthy, [{"algorithm": "kmeans", "k": 3, "pca": None, "seed": 0}]
    )[0]
    assert result["silhouette"] > 0.8
    assert np.isnan(result["ari"])
    assert np.isnan(result["accuracy_majority"])
    assert result["unknown_rate"] == 0.0


def test_pca_components_recorded():
    rng = np.random.default_rng(0)
    train = np.hstack([_blobs(CENTRES, seed=0), rng.normal(size=(180, 3))])
    test = np.hstack([_blobs(CENTRES, seed=1), rng.normal(size=(180, 3))])
    cells = [{"algorithm": "kmeans", "k": 3, "pca": pca, "seed": 0} for pca in (None, 2, 0.5)]
    results = run_cells(train, LABELS, test, LABELS, cells)
    assert [result["components"] for result in results[:2]] == [5, 2]
    assert 1 <= results[2]["components"] < 5


def test_rejected_fit_recorded_as_failed():
    train, test = _blobs(CENTRES, n=2, seed=0), _blobs(CENTRES, n=2, seed=1)
    labels = np.repeat(["ball", "inner_race", "normal"], 2)
    # More clusters than training windows: scikit-learn rejects the fit.
    result = run_cells(
        train, labels, test, labels, [{"algorithm": "kmeans", "k": 8, "pca": None, "seed": 0}]
    )[0]
    assert result["status"].startswith("failed: ")
    assert "n_clusters=8" in result["status"]
    assert np.isnan(result["ari"])
    assert result["n_train"] == 6


def test_cells_reproducible():
    train, test = _blobs(CENTRES, seed=0), _blobs(CENTRES, seed=1)
    cell = {"algorithm": "gmm-diag", "k": 4, "pca": None, "seed": 3}
    first, second = (run_cells(train, LABELS, test, LABELS, [cell])[0] for _ in range(2))
    for field in ("ari", "nmi", "accuracy_majority", "accuracy_hungarian", "unknown_rate"):
        assert first[field] == second[field]


def test_weights_scale_standardised_columns():
    rng = np.random.default_rng(0)
    train, test = rng.normal(size=(50, 3)) * [1.0, 10.0, 100.0], rng.normal(size=(20, 3))
    plain, _ = project(train, test, None)
    weighted, _ = project(train, test, None, weights=[1.0, 0.5, 2.0])
    np.testing.assert_allclose(weighted, plain * [1.0, 0.5, 2.0])


def test_balance_gives_small_label_cluster():
    # 300 windows of one label against 6 of another: without balance K-means
    # spends both clusters on the large label.
    rng = np.random.default_rng(0)
    big = rng.normal(0.0, 1.0, (300, 2))
    small = rng.normal((4.0, 0.0), 0.3, (6, 2))
    train = np.vstack([big, small])
    labels = np.array(["fault"] * 300 + ["normal"] * 6)
    test = np.vstack([rng.normal(0.0, 1.0, (50, 2)), rng.normal((4.0, 0.0), 0.3, (10, 2))])
    test_labels = np.array(["fault"] * 50 + ["normal"] * 10)
    cell = {"algorithm": "kmeans", "k": 2, "pca": None, "seed": 0}
    plain, balanced = run_cells(train, labels, test, test_labels, [cell, {**cell, "balance": True}])
    assert (
        "normal"
        in fit_predict(
            train, labels, test, algorithm="kmeans", k=2, pca=None, seed=0, balance=True
        ).majority.values()
    )
    assert balanced["accuracy_majority"] > plain["accuracy_majority"]
