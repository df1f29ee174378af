"""Automatic choice of the number of clusters."""

from __future__ import annotations

import numpy as np
import pytest

from edgemon.errors import ConfigError
from edgemon.training.selection import MIN_SILHOUETTE, elbow_index, select_n_clusters


def _separated_blobs(k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Centres on the corners and axes of a cube of side 20, at least 10 apart.
    corners = np.array([[0, 0, 0], [20, 0, 0], [0, 20, 0], [0, 0, 20], [20, 20, 0], [20, 0, 20]])
    centres = corners[:k]
    return np.vstack([rng.normal(centre, 1.0, (80, 3)) for centre in centres])


@pytest.mark.parametrize("k", [2, 4, 6])
def test_silhouette_finds_blob_count(k):
    chosen, selection = select_n_clusters(_separated_blobs(k), algorithm="kmeans", k_range=(2, 8))
    assert chosen == k
    assert selection.method == "silhouette"
    assert set(selection.scores) == set(range(2, 9))
    assert selection.scores[k] == max(selection.scores.values())


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_bic_finds_blob_count(covariance_type):
    chosen, selection = select_n_clusters(
        _separated_blobs(3), algorithm="gmm", k_range=(2, 6), covariance_type=covariance_type
    )
    assert chosen == 3
    assert selection.method == "bic"
    assert selection.scores[3] == min(selection.scores.values())


def test_elbow_without_structure():
    # Gaussian noise in 10 dimensions has no clusters: every silhouette is low,
    # so the elbow decides.
    points = np.random.default_rng(1).normal(size=(400, 10))
    chosen, selection = select_n_clusters(points, algorithm="kmeans", k_range=(2, 8))
    assert selection.method == "elbow"
    assert str(MIN_SILHOUETTE) in selection.note
    assert 2 <= chosen <= 8
    inertias = list(selection.scores.values())
    assert inertias == sorted(inertias, reverse=True)


@pytest.mark.parametrize(
    ("y", "expected"),
    [([100.0, 20.0, 15.0, 12.0, 10.0], 1), ([100.0, 90.0, 20.0, 15.0, 10.0], 2), ([5.0] * 4, 0)],
)
def test_elbow_index_cases(y, expected):
    x = np.arange(2, 2 + len(y), dtype=float)
    assert elbow_index(x, np.array(y)) == expected


def test_select_caps_range_at_windows():
    points = _separated_blobs(2)[:6]
    _chosen, selection = select_n_clusters(points, algorithm="gmm", k_range=(2, 20))
    assert max(selection.scores) == 5


@pytest.mark.parametrize("k_range", [(1, 5), (6, 4)])
def test_select_rejects_range(k_range):
    with pytest.raises(ConfigError, match="k_range must satisfy"):
        select_n_clusters(_separated_blobs(2), algorithm="kmeans", k_range=k_range)
