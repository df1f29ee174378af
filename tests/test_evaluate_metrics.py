"""Evaluation metrics: label scores, cluster-to-label mappings, noise and silhouette."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as sk

from edgemon.errors import ConfigError
from edgemon.training.metrics import (
    NOISE,
    hungarian_mapping,
    label_scores,
    majority_mapping,
    mapped_accuracy,
    noise_share,
    silhouette,
)

LABELS = np.array(["normal"] * 4 + ["inner"] * 4 + ["outer"] * 4)


@pytest.mark.parametrize(
    "clusters",
    [
        [0] * 4 + [1] * 4 + [2] * 4,  # perfect
        [2] * 4 + [0] * 4 + [1] * 4,  # perfect, ids permuted
        [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5],  # each label split in two
        [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2],  # unrelated to labels
        [0] * 12,  # one cluster
        [0, 0, 0, NOISE, 1, 1, NOISE, 1, 2, 2, 2, NOISE],  # OPTICS noise
    ],
)
def test_label_scores_match_sklearn(clusters):
    clusters = np.array(clusters)
    scores = label_scores(LABELS, clusters)
    homogeneity, completeness, v_measure = sk.homogeneity_completeness_v_measure(LABELS, clusters)
    assert scores["ari"] == pytest.approx(sk.adjusted_rand_score(LABELS, clusters))
    assert scores["nmi"] == pytest.approx(sk.normalized_mutual_info_score(LABELS, clusters))
    assert scores["homogeneity"] == pytest.approx(homogeneity)
    assert scores["completeness"] == pytest.approx(completeness)
    assert scores["v_measure"] == pytest.approx(v_measure)


def test_label_scores_permutation_invariant():
    clusters = np.array([0, 0, 1, 1, 1, 2, 2, 2, 0, 2, 1, 1])
    permuted = np.array([5, 9, 7])[clusters]
    assert label_scores(LABELS, clusters) == pytest.approx(label_scores(LABELS, permuted))


def test_label_scores_single_label_nan():
    scores = label_scores(np.array(["healthy"] * 6), np.array([0, 0, 1, 1, 2, 2]))
    assert all(np.isnan(value) for value in scores.values())


def test_noise_counts_as_one_cluster():
    # Noise windows of different labels are one "cluster" for ARI, not dropped.
    clusters = np.array([0, 0, 0, NOISE, 1, 1, 1, NOISE, 2, 2, 2, NOISE])
    merged = np.where(clusters == NOISE, 99, clusters)
    dropped = clusters != NOISE
    assert label_scores(LABELS, clusters)["ari"] == pytest.approx(
        sk.adjusted_rand_score(LABELS, merged)
    )
    assert label_scores(LABELS, clusters)["ari"] < sk.adjusted_rand_score(
        LABELS[dropped], clusters[dropped]
    )


def test_noise_share_and_accuracy():
    clusters = np.array([0, 0, 0, NOISE, 1, 1, 1, NOISE, 2, 2, 2, NOISE])
    mapping = {0: "normal", 1: "inner", 2: "outer"}
    assert noise_share(clusters) == pytest.approx(0.25)
    # Every noise window counts as wrong.
    assert mapped_accuracy(clusters, LABELS, mapping) == pytest.approx(0.75)
    assert NOISE not in majority_mapping(clusters, LABELS)
    assert NOISE not in hungarian_mapping(clusters, LABELS)


def test_majority_lets_clusters_share_label():
    train_clusters = np.array([0, 0, 1, 1, 2, 2, 2])
    train_labels = np.array(["a", "a", "b", "b", "b", "b", "a"])
    assert majority_mapping(train_clusters, train_labels) == {0: "a", 1: "b", 2: "b"}
    # One to one: cluster 2 goes unmatched because cluster 1 is purely b.
    assert hungarian_mapping(train_clusters, train_labels) == {0: "a", 1: "b"}


def test_hungarian_differs_from_majority():
    train_clusters = np.array([0, 0, 1, 1, 2, 2])
    train_labels = np.array(["a", "a", "b", "b", "b", "b"])
    test_clusters = np.array([0, 1, 2, 2])
    test_labels = np.array(["a", "b", "b", "b"])
    majority = majority_mapping(train_clusters, train_labels)
    hungarian = hungarian_mapping(train_clusters, train_labels)
    assert mapped_accuracy(test_clusters, test_labels, majority) == 1.0
    # The cluster left without a label makes its two test windows wrong.
    assert mapped_accuracy(test_clusters, test_labels, hungarian) == 0.5


def test_majority_tie_goes_to_first_label():
    assert majority_mapping(np.array([0, 0]), np.array(["outer", "inner"])) == {0: "inner"}


def test_mapping_learned_on_train_side():
    # The test side's labels never change the mapping.
    train_clusters = np.array([0, 0, 1, 1])
    train_labels = np.array(["a", "a", "b", "b"])
    mapping = majority_mapping(train_clusters, train_labels)
    test_clusters = np.array([0, 0, 1, 1])
    assert mapped_accuracy(test_clusters, np.array(["b", "b", "a", "a"]), mapping) == 0.0


def test_unmapped_cluster_counts_wrong():
    assert mapped_accuracy(np.array([0, 7]), np.array(["a", "a"]), {0: "a"}) == 0.5


def test_mismatched_lengths_rejected():
    with pytest.raises(ConfigError, match="equal length"):
        mapped_accuracy(np.array([0, 1, 2]), np.array(["a", "b"]), {})


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.sampled_from("abcd")), min_size=1, max_size=60),
)
def test_majority_at_least_hungarian_on_train(pairs):
    # On the windows it was learned from, the majority mapping is optimal
    # among all mappings, so one-to-one matching can never beat it.
    clusters = np.array([cluster for cluster, _ in pairs])
    labels = np.array([label for _, label in pairs])
    majority = mapped_accuracy(clusters, labels, majority_mapping(clusters, labels))
    hungarian = mapped_accuracy(clusters, labels, hungarian_mapping(clusters, labels))
    assert majority >= hungarian - 1e-12
    assert len(set(hungarian_mapping(clusters, labels).values())) == len(
        hungarian_mapping(clusters, labels)
    )


@settings(max_examples=40, deadline=None)
@given(st.permutations(range(6)), st.lists(st.integers(0, 5), min_size=2, max_size=40))
def test_hungarian_accuracy_permutation_invariant(permutation, clusters):
    clusters = np.array(clusters)
    labels = np.array(["x", "y", "z"])[clusters % 3]
    renamed = np.array(permutation)[clusters]
    accuracy = mapped_accuracy(clusters, labels, hungarian_mapping(clusters, labels))
    renamed_accuracy = mapped_accuracy(renamed, labels, hungarian_mapping(renamed, labels))
    assert accuracy == pytest.approx(renamed_accuracy)


def test_silhouette_ignores_noise():
    rng = np.random.default_rng(0)
    points = np.vstack(
        [rng.normal(0, 0.1, (20, 2)), rng.normal(5, 0.1, (20, 2)), rng.uniform(-50, 50, (5, 2))]
    )
    clusters = np.array([0] * 20 + [1] * 20 + [NOISE] * 5)
    expected = sk.silhouette_score(points[:40], clusters[:40])
    assert silhouette(points, clusters) == pytest.approx(expected)


@pytest.mark.parametrize("clusters", [[0, 0, 0, 0], [NOISE, NOISE, 0, 0], [0, 1, 2, 3]])
def test_silhouette_undefined_nan(clusters):
    points = np.arange(8, dtype=float).reshape(4, 2)
    assert np.isnan(silhouette(points, np.array(clusters)))
