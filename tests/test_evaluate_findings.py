"""Paired tests of the study's findings on synthetic grid results."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgemon.training.findings import ALPHA, candidate_comparisons, compare, study_findings

SPLITS = ("0 hp held out", "1 hp held out", "2 hp held out")
SEEDS = (0, 1, 2)
GROUP_OF = {
    "mean": "averaging",
    "median": "averaging",
    "averaging": "averaging",
    "std": "variance",
    "iqr": "variance",
    "variance": "variance",
    "skewness": "shape",
    "kurtosis": "shape",
    "shape": "shape",
    "all": "all",
}


def _grid_rows(score, *, features=tuple(GROUP_OF), pcas=("none", "2"), ks=(2, 4, 8)):
    """Return one scored row per cell of a small grid; ``score(row, noise)`` sets the ARI."""
    rng = np.random.default_rng(0)
    rows = []
    algorithms = ("kmeans", "gmm-full", "gmm-diag")
    for split, feature, domain, pca in itertools.product(SPLITS, features, ("time", "both"), pcas):
        if pca != "none" and GROUP_OF[feature] != "all":
            continue
        base = {
            "dataset": "cwru",
            "split": split,
            "features": feature,
            "domain": domain,
            "pca": pca,
            "status": "ok",
        }
        for algorithm, k, seed in itertools.product(algorithms, ks, SEEDS):
            row = {**base, "algorithm": algorithm, "k": k, "seed": seed}
            row["ari"] = score(row, rng.normal(0, 0.005))
            rows.append(row)
        row = {**base, "algorithm": "optics", "k": None, "seed": None}
        row["ari"] = score(row, rng.normal(0, 0.005))
        rows.append(row)
    return rows


def _study_like(row, noise):
    value = {"averaging": 0.6, "variance": 0.65, "shape": 0.3, "all": 0.62}[
        GROUP_OF[row["features"]]
    ]
    value += {"kmeans": 0.03, "gmm-full": 0.0, "gmm-diag": 0.0, "optics": -0.4}[row["algorithm"]]
    value += 0.02 * (row["k"] or 4)
    return value + noise


def _verdicts(rows):
    return {finding.number: finding.verdict for finding in study_findings(rows, "ari")}


def test_findings_hold_on_study_like_data():
    assert _verdicts(_grid_rows(_study_like)) == {1: "holds", 2: "holds", 3: "holds", 4: "holds"}


def test_findings_fail_on_reversed_data():
    def reversed_score(row, noise):
        value = {"averaging": 0.3, "variance": 0.3, "shape": 0.6, "all": 0.9}[
            GROUP_OF[row["features"]]
        ]
        value += {"kmeans": -0.1, "gmm-full": 0.0, "gmm-diag": 0.0, "optics": 0.2}[row["algorithm"]]
        value += 0.1 if row["pca"] == "2" else 0.0
        value += 0.1 if row["domain"] == "both" else 0.0
        return value - 0.02 * (row["k"] or 4) + noise

    assert _verdicts(_grid_rows(reversed_score)) == {
        1: "does not hold",
        2: "does not hold",
        3: "does not hold",
        4: "does not hold",
    }


def test_findings_not_significant_on_noise():
    verdicts = _verdicts(_grid_rows(lambda row, noise: 0.5 + noise))
    assert verdicts[1] == "not significant"
    assert verdicts[3] == "holds"


def test_finding_needs_its_arms():
    rows = _grid_rows(_study_like, features=("std", "kurtosis"))
    findings = {finding.number: finding for finding in study_findings(rows, "ari")}
    assert findings[1].verdict == "not tested"
    assert "averaging" in findings[1].reason


def test_compare_pairs_over_split_and_seed():
    rows = _grid_rows(_study_like)
    comparison = compare(
        rows,
        "ari",
        ("kmeans", lambda r: r["algorithm"] == "kmeans"),
        ("gmm-full", lambda r: r["algorithm"] == "gmm-full"),
        ("features", "domain", "pca", "k"),
    )
    assert comparison.pairs == len(SPLITS) * len(SEEDS)
    assert comparison.median_difference == pytest.approx(0.03, abs=0.005)
    # Nine positive pairs: the exact one-sided p-value is 1 / 2**9.
    assert comparison.p_greater == pytest.approx(1 / 512)
    assert comparison.outcome == "a"
    assert comparison.splits_a_higher == len(SPLITS)


def test_compare_repeats_optics_for_every_seed():
    rows = _grid_rows(_study_like)
    comparison = compare(
        rows,
        "ari",
        ("kmeans", lambda r: r["algorithm"] == "kmeans"),
        ("optics", lambda r: r["algorithm"] == "optics"),
        ("features", "domain", "pca"),
    )
    assert comparison.pairs == len(SPLITS) * len(SEEDS)
    assert comparison.p_greater < ALPHA


def test_compare_uses_shared_settings_only():
    rows = _grid_rows(_study_like)
    # PCA rows exist only for 'all'; comparing PCA with none pairs 'all' rows only.
    comparison = compare(
        rows,
        "ari",
        ("PCA 2", lambda r: r["pca"] == "2"),
        ("no PCA", lambda r: r["pca"] == "none"),
        ("features", "domain", "algorithm", "k"),
    )
    assert comparison.mean_b == pytest.approx(comparison.mean_a, abs=0.01)


def test_compare_equal_arms_not_significant():
    rows = [
        {"split": split, "seed": seed, "arm": arm, "ari": 0.5, "status": "ok"}
        for split in SPLITS
        for seed in SEEDS
        for arm in "ab"
    ]
    comparison = compare(
        rows, "ari", ("a", lambda r: r["arm"] == "a"), ("b", lambda r: r["arm"] == "b"), ()
    )
    assert comparison.p_greater == 1.0
    assert comparison.p_less == 1.0
    assert comparison.outcome == "none"


def test_compare_without_shared_settings_none():
    rows = _grid_rows(_study_like)
    assert (
        compare(rows, "ari", ("x", lambda r: r["features"] == "nothing"), ("y", lambda r: True), ())
        is None
    )


def test_failed_cells_left_out():
    rows = _grid_rows(_study_like)
    for row in rows[::2]:
        row["status"] = "failed: rejected"
        row["ari"] = float("nan")
    assert all(finding.verdict != "not tested" for finding in study_findings(rows, "ari"))


def test_candidate_compared_with_study_sets():
    rows = _grid_rows(_study_like, features=("variance", "shape", "all"))
    for row in _grid_rows(lambda row, noise: 0.9 + noise, features=("all",)):
        rows.append({**row, "features": "default", "domain": "preset"})
    comparisons = candidate_comparisons(rows, "ari", algorithm="kmeans", k=4)
    assert comparisons[0].b == "all (both), the study's statistics"
    assert comparisons[1].b.startswith("variance (")
    assert comparisons[1].b.endswith("the study's best set")
    for comparison in comparisons:
        assert comparison.outcome == "a"
        assert comparison.pairs == len(SPLITS) * len(SEEDS)
