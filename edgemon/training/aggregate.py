"""Aggregate the grid's cells over splits and seeds, and write them as CSV.

A cell is one fit: a data set, split, feature set, domain, PCA setting,
algorithm, k and seed.  An aggregated row is one grid setting: the mean (and
for the main scores the standard deviation) of its cells over every split
and seed.  Failed cells are counted, not averaged.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "AGGREGATE_COLUMNS",
    "METRIC_NAMES",
    "SETTING_FIELDS",
    "aggregate",
    "grid_rows",
    "primary_metrics",
    "ranked",
    "unit_means",
    "write_csv",
]

#: Fields that identify a grid setting.
SETTING_FIELDS = ("dataset", "features", "domain", "columns", "pca", "algorithm", "k")

_MEANS = (
    "ari",
    "nmi",
    "homogeneity",
    "completeness",
    "v_measure",
    "accuracy_majority",
    "accuracy_hungarian",
    "silhouette",
    "noise_share",
    "unknown_rate",
    "clusters_found",
    "cpu_seconds",
)
_SPREADS = ("ari", "accuracy_majority", "silhouette")

#: Columns of an aggregated row, in CSV order.
AGGREGATE_COLUMNS = (
    *SETTING_FIELDS,
    "runs",
    "failed",
    "warnings",
    *(f"{name}_mean" for name in _MEANS),
    *(f"{name}_std" for name in _SPREADS),
)


def aggregate(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Average cells over splits and seeds, one row per grid setting.

    Returns
    -------
    list of dict
        Keys :data:`AGGREGATE_COLUMNS`.  ``runs`` counts the scored cells,
        ``failed`` those scikit-learn rejected, ``warnings`` the warnings
        their fits raised.  A score that is NaN in every cell (labels on a
        data set with one label) stays NaN.
    """
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[tuple(row[field] for field in SETTING_FIELDS)].append(row)

    table = []
    for setting, members in groups.items():
        scored = [row for row in members if row.get("status") == "ok"]
        entry: dict[str, Any] = dict(zip(SETTING_FIELDS, setting, strict=True))
        entry["runs"] = len(scored)
        entry["failed"] = len(members) - len(scored)
        entry["warnings"] = int(sum(row.get("warnings") or 0 for row in members))
        for name in _MEANS:
            entry[f"{name}_mean"] = _nanmean([row[name] for row in scored])
        for name in _SPREADS:
            entry[f"{name}_std"] = _nanstd([row[name] for row in scored])
        table.append(entry)
    table.sort(key=_sort_key)
    return table


def unit_means(rows: Iterable[dict[str, Any]], metric: str) -> np.ndarray:
    """Return the mean ``metric`` of each (split, seed) pair, for error bands.

    OPTICS rows (seed None) form their own pair per split.
    """
    units: dict[tuple, list[float]] = defaultdict(list)
    for row in rows:
        value = row.get(metric)
        if row.get("status") == "ok" and value is not None and math.isfinite(value):
            units[(row["split"], row["seed"])].append(value)
    return np.array([np.mean(values) for values in units.values()])


def write_csv(table: Sequence[dict[str, Any]], path: Path) -> None:
    """Write aggregated rows with 4 significant decimals; NaN and None as empty fields."""
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=AGGREGATE_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in table:
            writer.writerow({key: _csv_value(row.get(key)) for key in AGGREGATE_COLUMNS})


#: Name of each score in the report.
METRIC_NAMES = {
    "ari": "adjusted Rand index",
    "nmi": "normalised mutual information",
    "v_measure": "V-measure",
    "accuracy_majority": "accuracy (majority mapping)",
    "accuracy_hungarian": "accuracy (Hungarian matching)",
    "silhouette": "silhouette of the test windows",
    "unknown_rate": "share of test windows above the novelty threshold",
}


def primary_metrics(labelled: bool) -> tuple[str, str]:
    """Return the main and the second score of a data set.

    With labels, ARI and majority accuracy; without, silhouette and unknown rate.
    """
    return ("ari", "accuracy_majority") if labelled else ("silhouette", "unknown_rate")


def ranked(rows: Iterable[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """Return the aggregated settings with a finite ``metric``, best first.

    Ranked by silhouette, OPTICS is left out, because its silhouette leaves
    its noise windows out.
    """
    table = [
        r
        for r in aggregate(rows)
        if r["runs"]
        and np.isfinite(r[f"{metric}_mean"])
        and not (metric == "silhouette" and r["algorithm"] == "optics")
    ]
    return sorted(table, key=lambda r: -r[f"{metric}_mean"])


def grid_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the rows of the grid itself, without the cells that score the preset at its own k."""
    return [row for row in rows if not row.get("extra")]


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return value


def _nanmean(values: list[Any]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _nanstd(values: list[Any]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.std(finite)) if len(finite) > 1 else float("nan")


def _sort_key(row: dict[str, Any]) -> tuple:
    return (
        row["dataset"],
        row["features"],
        row["domain"],
        row["pca"],
        row["algorithm"],
        -1 if row["k"] is None else row["k"],
    )
