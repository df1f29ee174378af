"""The evaluation report's figures: which ones to draw and the numbers behind them.

For each data set: the mean score against k per algorithm, the feature set
x algorithm heat map, and for the best setting (refitted on every fold with
seed 0) the test windows on two principal components and the confusion
matrix.  :mod:`edgemon.training.plots` draws them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from edgemon.training import plots
from edgemon.training.aggregate import (
    METRIC_NAMES,
    aggregate,
    grid_rows,
    primary_metrics,
    ranked,
    unit_means,
)
from edgemon.training.grid import K_ALGORITHMS, STUDY_FEATURE_SETS

__all__ = [
    "AXIS_NAMES",
    "algorithm_order",
    "draw_figures",
    "heatmap_values",
    "pca_value",
    "score_curves",
]

logger = logging.getLogger(__name__)

#: Shorter names for plot axes.
AXIS_NAMES = {
    **METRIC_NAMES,
    "accuracy_majority": "accuracy (majority)",
    "silhouette": "silhouette (test windows)",
    "unknown_rate": "unknown rate (test windows)",
}


def draw_figures(result, out: Path) -> dict[str, Path]:
    """Draw every figure of one data set into ``out``; return them by caption."""
    dataset = result.dataset
    kind = dataset.spec.kind
    main, second = primary_metrics(dataset.labelled)
    figures: dict[str, Path] = {}

    curves = {}
    flat = {}
    for metric in (main, second):
        curves[metric], flat[metric] = score_curves(result, metric)
    if any(curves.values()) or any(flat.values()):
        path = out / f"{kind}-metric-vs-k.png"
        plots.plot_metric_vs_k(
            curves,
            flat,
            path,
            title=f"{kind.upper()}: the study's feature sets, no PCA, test side",
            labels=AXIS_NAMES,
        )
        figures["score against the number of clusters"] = path

    values, row_names, columns, k_text = heatmap_values(result, main)
    if values.size:
        path = out / f"{kind}-heatmap.png"
        plots.plot_heatmap(
            values,
            row_names,
            columns,
            path,
            title=f"{kind.upper()}: {METRIC_NAMES[main]}, {k_text}, no PCA",
            label=AXIS_NAMES[main],
        )
        figures["feature set x algorithm"] = path

    settings = ranked(result.rows, main)
    if settings:
        figures.update(_best_figures(result, settings[0], out))
    return figures


def score_curves(result, metric: str):
    """Return the mean ``metric`` against k per algorithm, and the flat mean of OPTICS.

    The study's feature sets without PCA, over every (split, seed) pair; see
    :func:`edgemon.training.plots.plot_metric_vs_k` for the layout.
    """
    rows = [
        r
        for r in grid_rows(result.rows)
        if r["features"] in STUDY_FEATURE_SETS and r["pca"] == "none"
    ]
    curves, flat = {}, {}
    for algorithm in sorted({r["algorithm"] for r in rows}, key=algorithm_order):
        members = [r for r in rows if r["algorithm"] == algorithm]
        if algorithm not in K_ALGORITHMS:
            values = unit_means(members, metric)
            if values.size:
                flat[algorithm] = float(values.mean())
            continue
        ks, means, spreads = [], [], []
        for k in sorted({r["k"] for r in members}):
            values = unit_means([r for r in members if r["k"] == k], metric)
            if values.size:
                ks.append(k)
                means.append(values.mean())
                spreads.append(values.std())
        if ks:
            curves[algorithm] = (np.array(ks), np.array(means), np.array(spreads))
    return curves, flat


def heatmap_values(result, metric: str):
    """Return the feature set x algorithm table at k = number of labels, or the mean over k."""
    n_labels = len(result.dataset.labels_present)
    rows = grid_rows(result.rows)
    ks = {r["k"] for r in rows if r["k"] is not None}
    fixed_k = n_labels if n_labels >= 2 and n_labels in ks else None
    k_text = f"k = {fixed_k}" if fixed_k is not None else "mean over k"
    table = aggregate(
        r for r in rows if r["pca"] == "none" and (fixed_k is None or r["k"] in (fixed_k, None))
    )
    columns = sorted({r["algorithm"] for r in table}, key=algorithm_order)
    row_keys = [(c.feature_set, c.domain) for c in result.configs]
    values = np.full((len(row_keys), len(columns)), np.nan)
    for i, key in enumerate(row_keys):
        for j, algorithm in enumerate(columns):
            members = [
                r[f"{metric}_mean"]
                for r in table
                if (r["features"], r["domain"]) == key and r["algorithm"] == algorithm
            ]
            finite = [v for v in members if np.isfinite(v)]
            if finite:
                values[i, j] = np.mean(finite)
    row_names = [f"{features} ({domain})" for features, domain in row_keys]
    return values, row_names, columns, k_text


def _best_figures(result, best: dict[str, Any], out: Path) -> dict[str, Path]:
    """Draw the best setting's scatter and confusion matrix from a refit on every fold."""
    dataset = result.dataset
    kind = dataset.spec.kind
    name = f"{best['features']} ({best['domain']}), PCA {best['pca']}, {best['algorithm']}" + (
        "" if best["k"] is None else f", k = {best['k']}"
    )
    predictions = _refit(result, best)
    figures: dict[str, Path] = {}

    prediction, test_labels = predictions[0]
    path = out / f"{kind}-scatter.png"
    plots.plot_scatter(
        _plane(prediction.test_points),
        prediction.test_clusters,
        test_labels,
        path,
        title=f"{kind.upper()} best setting: {name}\n"
        f"test windows of fold '{dataset.plan.splits[0].name}', seed 0",
    )
    figures["best setting, test windows of the first fold"] = path

    if dataset.labelled:
        labels = list(dataset.labels_present)
        states = [*labels, "no label"]
        counts = np.zeros((len(labels), len(states)), dtype=np.int64)
        for prediction, test_labels in predictions:
            for true, cluster in zip(test_labels, prediction.test_clusters, strict=True):
                state = prediction.majority.get(int(cluster), "no label")
                counts[labels.index(str(true)), states.index(state)] += 1
        if not counts[:, -1].any():
            counts, states = counts[:, :-1], states[:-1]
        path = out / f"{kind}-confusion.png"
        plots.plot_confusion(
            counts,
            labels,
            states,
            path,
            title=f"{kind.upper()} best setting: {name}\ntest windows of all folds, seed 0",
        )
        figures["best setting, confusion matrix over all folds"] = path
    return figures


def _refit(result, best: dict[str, Any]) -> list[tuple[Any, np.ndarray]]:
    """Return the best setting's prediction and the test labels of every fold, seed 0."""
    import warnings

    from edgemon.training.cells import fit_predict

    dataset = result.dataset
    config = next(
        c for c in result.configs if (c.feature_set, c.domain) == (best["features"], best["domain"])
    )
    seed = None if best["algorithm"] == "optics" else 0
    predictions = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for split in range(len(dataset.plan.splits)):
            train, train_labels = dataset.side(split, "train", config)
            test, test_labels = dataset.side(split, "test", config)
            prediction = fit_predict(
                train,
                train_labels,
                test,
                algorithm=best["algorithm"],
                k=best["k"],
                pca=pca_value(best["pca"]),
                seed=seed,
                **dataset.training_options(config),
            )
            predictions.append((prediction, test_labels))
    if caught:
        logger.warning(
            "%s: refitting the best setting for the figures raised %d warnings, the first: %s",
            dataset.spec.kind,
            len(caught),
            caught[0].message,
        )
    return predictions


def _plane(points: np.ndarray) -> np.ndarray:
    """Return windows on two axes: their first two principal components, or padded with zeros."""
    from sklearn.decomposition import PCA

    if points.shape[1] > 2:
        return PCA(n_components=2, random_state=0).fit_transform(points)
    if points.shape[1] == 1:
        return np.column_stack([points[:, 0], np.zeros(len(points))])
    return points


def pca_value(text: str) -> int | float | None:
    """Parse a PCA setting as the report writes it (``none``, ``2``, ``0.9``)."""
    if text == "none":
        return None
    value = float(text)
    return int(value) if value.is_integer() and value >= 1 else value


def algorithm_order(name: str) -> int:
    """Return the position of an algorithm in the report's tables and figures."""
    order = (*K_ALGORITHMS, "optics")
    return order.index(name) if name in order else len(order)
