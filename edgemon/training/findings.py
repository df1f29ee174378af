"""Test the study's four findings, and the default preset's gain, on the grid's results.

Every claim is checked by a paired comparison of two arms of the grid, such
as "the averaging feature sets" against "the shape feature sets":

1. Rows of each arm are matched on the grid settings the claim does not
   compare (for example algorithm, domain, PCA and k), so that both arms are
   scored on the same settings.  Settings that only one arm has are left out.
2. Within each (split, seed) pair, each arm's score is the mean over its
   matched rows.  OPTICS has no seed; its rows count for every seed.
3. The differences over the (split, seed) pairs are tested with the
   Wilcoxon signed-rank test (``scipy.stats.wilcoxon``, exact for small
   samples without ties), one-sided in each direction, at
   :data:`ALPHA` = 0.05, with no correction for the number of tests.

The seeds of one split share its data, so pairs within a split are not
independent and the p-values are optimistic.  Each comparison therefore also
states in how many splits the first arm scored higher.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgemon.training.grid import CANDIDATE, K_ALGORITHMS, STUDY_FEATURE_SETS

__all__ = [
    "ALPHA",
    "LOWER_IS_BETTER",
    "Comparison",
    "Finding",
    "candidate_comparisons",
    "compare",
    "study_findings",
    "usable_rows",
]

#: Significance level of every test.
ALPHA = 0.05

#: Scores where a lower value is better.
LOWER_IS_BETTER = frozenset({"unknown_rate", "noise_share"})

_GROUPS = {
    "averaging": ("mean", "median", "averaging"),
    "variance": ("std", "iqr", "variance"),
    "shape": ("skewness", "kurtosis", "shape"),
}

Row = dict[str, Any]


@dataclass(frozen=True)
class Comparison:
    """A paired comparison of arm ``a`` against arm ``b`` on one metric."""

    a: str
    b: str
    metric: str
    #: Number of (split, seed) pairs.
    pairs: int
    mean_a: float
    mean_b: float
    #: Median over the pairs of ``a - b``.
    median_difference: float
    #: One-sided p-values for ``a > b`` and ``a < b``; NaN for fewer than two pairs.
    p_greater: float
    p_less: float
    #: Splits in which ``a`` scored higher and lower on average, and the number of splits.
    splits_a_higher: int
    splits_a_lower: int
    splits: int

    @property
    def outcome(self) -> str:
        """``"a"`` or ``"b"`` when that arm is significantly better, else ``"none"``."""
        if self.p_greater < ALPHA:
            return "a"
        if self.p_less < ALPHA:
            return "b"
        return "none"


@dataclass(frozen=True)
class Finding:
    """One finding of the study, tested on one data set and metric."""

    number: int
    claim: str
    #: ``"holds"``, ``"partly holds"``, ``"not significant"`` (the data point
    #: neither way at ``ALPHA``), ``"does not hold"`` (significant the other
    #: way) or ``"not tested"`` (the grid lacks an arm).
    verdict: str
    comparisons: tuple[Comparison, ...]
    #: The reason for the verdict, in one or two sentences.
    reason: str


def usable_rows(rows: Iterable[Row], metric: str) -> list[Row]:
    """Return the rows that were scored and have a finite ``metric``."""
    return [
        row
        for row in rows
        if row.get("status") == "ok" and row.get(metric) is not None and np.isfinite(row[metric])
    ]


def compare(
    rows: Sequence[Row],
    metric: str,
    a: tuple[str, Callable[[Row], bool]],
    b: tuple[str, Callable[[Row], bool]],
    match: Sequence[str],
) -> Comparison | None:
    """Compare two arms of the grid, paired over (split, seed).

    Parameters
    ----------
    rows : sequence of dict
        Scored cells (see :func:`usable_rows`).
    metric : str
        A score column, e.g. ``"ari"``.
    a, b : (name, predicate)
        Each arm's name and which rows belong to it.
    match : sequence of str
        Row fields that must be equal for rows of the two arms to be paired.

    Returns
    -------
    Comparison or None
        None when the arms share no setting.
    """
    seeds = sorted({row["seed"] for row in rows if row["seed"] is not None}) or [None]
    arms = []
    for _, belongs in (a, b):
        values: dict[tuple, dict[tuple, list[float]]] = defaultdict(lambda: defaultdict(list))
        for row in rows:
            if not belongs(row):
                continue
            setting = tuple(row[field] for field in match)
            for seed in seeds if row["seed"] is None else [row["seed"]]:
                values[(row["split"], seed)][setting].append(float(row[metric]))
        arms.append(values)

    units, scores_a, scores_b = [], [], []
    for unit in sorted(set(arms[0]) & set(arms[1]), key=str):
        # Sorted, so that the sums run in the same order in every process:
        # set order changes with string hashing, and Wilcoxon ranks near-ties.
        shared = sorted(set(arms[0][unit]) & set(arms[1][unit]), key=str)
        if not shared:
            continue
        units.append(unit)
        scores_a.append(np.mean([np.mean(arms[0][unit][s]) for s in shared]))
        scores_b.append(np.mean([np.mean(arms[1][unit][s]) for s in shared]))
    if not units:
        return None

    scores_a, scores_b = np.array(scores_a), np.array(scores_b)
    differences = scores_a - scores_b
    by_split: dict[Any, list[float]] = defaultdict(list)
    for (split, _), difference in zip(units, differences, strict=True):
        by_split[split].append(difference)
    return Comparison(
        a=a[0],
        b=b[0],
        metric=metric,
        pairs=len(units),
        mean_a=float(scores_a.mean()),
        mean_b=float(scores_b.mean()),
        median_difference=float(np.median(differences)),
        p_greater=_wilcoxon(differences, "greater"),
        p_less=_wilcoxon(differences, "less"),
        splits_a_higher=sum(np.mean(values) > 0 for values in by_split.values()),
        splits_a_lower=sum(np.mean(values) < 0 for values in by_split.values()),
        splits=len(by_split),
    )


def _wilcoxon(differences: np.ndarray, alternative: str) -> float:
    from scipy.stats import wilcoxon

    if differences.size < 2:
        return float("nan")
    if np.all(differences == 0):
        return 1.0
    return float(wilcoxon(differences, alternative=alternative).pvalue)


# The study's findings ----------------------------------------------------------------------------


def study_findings(rows: Sequence[Row], metric: str) -> list[Finding]:
    """Test the study's four findings on the rows of one labelled data set.

    Only the study's feature sets are used; the ``default`` preset is not
    part of the study.
    """
    rows = [row for row in usable_rows(rows, metric) if row["features"] in STUDY_FEATURE_SETS]
    return [
        _finding_features(rows, metric),
        _finding_algorithms(rows, metric),
        _finding_combinations(rows, metric),
        _finding_clusters(rows, metric),
    ]


def _finding_features(rows: Sequence[Row], metric: str) -> Finding:
    claim = "averaging and variance features beat shape features"
    match = ("algorithm", "domain", "pca", "k")
    comparisons = _present(
        compare(rows, metric, _features_arm(group), _features_arm("shape"), match)
        for group in ("averaging", "variance")
    )
    if len(comparisons) < 2:
        return _not_tested(
            1, claim, comparisons, "the grid needs averaging, variance and shape feature sets"
        )
    outcomes = [c.outcome for c in comparisons]
    if outcomes == ["a", "a"]:
        return Finding(
            1, claim, "holds", comparisons, "both groups score significantly higher than shape"
        )
    if "b" in outcomes:
        return Finding(
            1, claim, "does not hold", comparisons, "shape scores significantly higher than a group"
        )
    if "a" in outcomes:
        return Finding(
            1,
            claim,
            "partly holds",
            comparisons,
            "only one group scores significantly higher than shape",
        )
    return Finding(
        1, claim, "not significant", comparisons, "neither group differs significantly from shape"
    )


def _finding_algorithms(rows: Sequence[Row], metric: str) -> Finding:
    claim = "K-means slightly beats the Gaussian mixtures; OPTICS is clearly worse"
    kmeans = ("kmeans", lambda row: row["algorithm"] == "kmeans")
    gmm = ("gmm (all covariance types)", lambda row: row["algorithm"].startswith("gmm"))
    optics = ("optics", lambda row: row["algorithm"] == "optics")
    versus_gmm = compare(rows, metric, kmeans, gmm, ("features", "domain", "pca", "k"))
    versus_optics = compare(rows, metric, kmeans, optics, ("features", "domain", "pca"))
    per_type = _present(
        compare(
            rows,
            metric,
            kmeans,
            (name, lambda row, name=name: row["algorithm"] == name),
            ("features", "domain", "pca", "k"),
        )
        for name in K_ALGORITHMS[1:]
    )
    comparisons = _present([versus_gmm, versus_optics, *per_type])
    if versus_gmm is None or versus_optics is None:
        return _not_tested(2, claim, comparisons, "the grid needs kmeans, a gmm and optics")

    gmm_part = versus_gmm.outcome == "a"
    optics_part = versus_optics.outcome == "a"
    if gmm_part and optics_part:
        return Finding(
            2, claim, "holds", comparisons, "K-means scores significantly higher than both"
        )

    parts = [
        "K-means scores significantly higher than the mixtures"
        if gmm_part
        else _gmm_text(versus_gmm),
        "OPTICS scores significantly lower than K-means"
        if optics_part
        else _optics_text(versus_optics),
    ]
    if gmm_part or optics_part:
        verdict = "partly holds"
    elif "b" in (versus_gmm.outcome, versus_optics.outcome):
        verdict = "does not hold"
    else:
        verdict = "not significant"
    return Finding(2, claim, verdict, comparisons, "; ".join(parts))


def _gmm_text(comparison: Comparison) -> str:
    if comparison.outcome == "b":
        return "the mixtures score significantly higher than K-means"
    return "K-means and the mixtures do not differ significantly"


def _optics_text(comparison: Comparison) -> str:
    if comparison.outcome == "b":
        return "OPTICS scores significantly higher than K-means"
    return "OPTICS and K-means do not differ significantly"


def _finding_combinations(rows: Sequence[Row], metric: str) -> Finding:
    claim = "feature combinations and PCA bring no significant gain"
    comparisons = [
        _versus_best_part(
            rows,
            metric,
            "features",
            ("all", "all six statistics"),
            ("averaging", "variance", "shape"),
            "group",
            ("algorithm", "domain", "pca", "k"),
        ),
        _versus_best_part(
            rows,
            metric,
            "domain",
            ("both", "both domains"),
            ("time", "freq"),
            "single domain",
            ("features", "algorithm", "pca", "k"),
        ),
    ]
    for setting in sorted({row["pca"] for row in rows} - {"none"}):
        comparisons.append(
            compare(
                rows,
                metric,
                (f"PCA {setting}", lambda r, s=setting: r["pca"] == s),
                ("no PCA", lambda r: r["pca"] == "none"),
                ("features", "domain", "algorithm", "k"),
            )
        )
    comparisons_tuple = _present(comparisons)
    if not comparisons_tuple:
        return _not_tested(
            3, claim, comparisons_tuple, "the grid needs 'all' or 'both' or a PCA setting"
        )
    gains = [c.a for c in comparisons_tuple if c.outcome == "a"]
    if not gains:
        return Finding(
            3,
            claim,
            "holds",
            comparisons_tuple,
            "no combination or PCA setting scores significantly higher",
        )
    verdict = "does not hold" if len(gains) == len(comparisons_tuple) else "partly holds"
    return Finding(
        3, claim, verdict, comparisons_tuple, f"significant gain from {', '.join(gains)}"
    )


def _versus_best_part(
    rows: Sequence[Row],
    metric: str,
    field: str,
    combined: tuple[str, str],
    parts: Sequence[str],
    kind: str,
    match: Sequence[str],
) -> Comparison | None:
    """Compare a combined setting of ``field`` with the part that has the best mean ``metric``.

    ``combined`` is the setting's value and its name in the report.  The best
    part is picked on the same scores, which favours it.
    """
    value, name = combined
    present = [part for part in parts if any(row[field] == part for row in rows)]
    if not present or not any(row[field] == value for row in rows):
        return None
    best = max(present, key=lambda part: _mean(rows, metric, lambda r, p=part: r[field] == p))
    return compare(
        rows,
        metric,
        (name, lambda r: r[field] == value),
        (f"best {kind} ({best})", lambda r: r[field] == best),
        match,
    )


def _finding_clusters(rows: Sequence[Row], metric: str) -> Finding:
    claim = "more clusters score higher"
    ks = sorted({row["k"] for row in rows if row["k"] is not None})
    if len(ks) < 2:
        return _not_tested(4, claim, (), "the grid needs at least two numbers of clusters")
    low, high = ks[0], ks[-1]
    comparison = compare(
        rows,
        metric,
        (f"k = {high}", lambda r: r["k"] == high),
        (f"k = {low}", lambda r: r["k"] == low),
        ("features", "domain", "pca", "algorithm"),
    )
    comparisons = _present([comparison])
    if comparison is None:
        return _not_tested(4, claim, comparisons, "no setting was scored at both k")
    best_k = max(ks, key=lambda k: _mean(rows, metric, lambda r, k=k: r["k"] == k))
    reason = f"the mean is highest at k = {best_k}"

    if comparison.outcome == "a":
        verdict, result = "holds", f"k = {high} scores significantly higher than k = {low}"
    elif comparison.outcome == "b":
        verdict, result = "does not hold", f"k = {low} scores significantly higher than k = {high}"
    else:
        verdict, result = "not significant", f"k = {high} and k = {low} do not differ significantly"
    return Finding(4, claim, verdict, comparisons, f"{result}; {reason}")


# The default preset ------------------------------------------------------------------------------


def candidate_comparisons(
    rows: Sequence[Row], metric: str, *, algorithm: str, k: int | None = None
) -> list[Comparison]:
    """Compare the ``default`` feature set with the study's statistics, paired over (split, seed).

    The references are the study's twelve statistics (``all`` in ``both``
    domains), and the study feature set and domain with the best mean
    ``metric`` for ``algorithm`` (the lowest for :data:`LOWER_IS_BETTER`).
    The best set is picked on the same scores it is compared on, which
    favours it.  Rows are matched on PCA and k; with ``k`` given, only that
    number of clusters is compared.
    """
    rows = [
        row
        for row in usable_rows(rows, metric)
        if row["algorithm"] == algorithm and (k is None or row["k"] == k)
    ]
    candidate = ("default", lambda r: r["features"] == CANDIDATE)
    study = [row for row in rows if row["features"] in STUDY_FEATURE_SETS]
    if not study or not any(row["features"] == CANDIDATE for row in rows):
        return []
    settings = sorted({(row["features"], row["domain"]) for row in study})
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    best = max(
        settings,
        key=lambda s: sign * _mean(study, metric, lambda r, s=s: (r["features"], r["domain"]) == s),
    )
    references = {}
    if ("all", "both") in settings:
        references[("all", "both")] = "all (both), the study's statistics"
    if best != ("all", "both"):
        references[best] = f"{best[0]} ({best[1]}), the study's best set"
    else:
        references[best] = "all (both), the study's statistics and its best set"
    comparisons = [
        compare(
            rows,
            metric,
            candidate,
            (name, lambda r, setting=setting: (r["features"], r["domain"]) == setting),
            ("pca", "k"),
        )
        for setting, name in references.items()
    ]
    return _present(comparisons)


# Helpers ----------------------------------------------------------------------------------------


def _features_arm(group: str) -> tuple[str, Callable[[Row], bool]]:
    members = _GROUPS[group]
    return f"{group} ({', '.join(members[:2])})", lambda row: row["features"] in members


def _mean(rows: Sequence[Row], metric: str, belongs: Callable[[Row], bool]) -> float:
    values = [row[metric] for row in rows if belongs(row)]
    return float(np.mean(values)) if values else float("-inf")


def _present(comparisons: Iterable[Comparison | None]) -> tuple[Comparison, ...]:
    return tuple(c for c in comparisons if c is not None)


def _not_tested(
    number: int, claim: str, comparisons: tuple[Comparison, ...], reason: str
) -> Finding:
    return Finding(number, claim, "not tested", comparisons, reason)
