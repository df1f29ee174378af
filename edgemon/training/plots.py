"""The evaluation report's figures, drawn with matplotlib's Agg renderer into PNG files.

Each function takes prepared numbers and writes one file; :mod:`edgemon.training.report`
decides what to draw.  Figures are built with :class:`matplotlib.figure.Figure`
and never through ``pyplot``, so no GUI backend or global state is involved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = ["DPI", "plot_confusion", "plot_heatmap", "plot_metric_vs_k", "plot_scatter"]

#: Resolution of every PNG; modest, so the committed report stays small.
DPI = 80

_ALGORITHM_STYLE = {
    "kmeans": ("K-means", "tab:blue"),
    "gmm-full": ("GMM full", "tab:orange"),
    "gmm-tied": ("GMM tied", "tab:green"),
    "gmm-diag": ("GMM diag", "tab:red"),
    "gmm-spherical": ("GMM spherical", "tab:purple"),
    "optics": ("OPTICS", "tab:gray"),
}


def plot_metric_vs_k(
    curves: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]]],
    flat: Mapping[str, Mapping[str, float]],
    path: Path,
    *,
    title: str,
    labels: Mapping[str, str],
) -> None:
    """Draw one panel per metric: the mean score against k, one line per algorithm.

    Parameters
    ----------
    curves : mapping
        ``curves[metric][algorithm] = (k, mean, std)``, arrays of equal length;
        the band is mean ± std.
    flat : mapping
        ``flat[metric][algorithm] = mean`` for algorithms without k (OPTICS),
        drawn as a dashed horizontal line.
    path : Path
        PNG file to write.
    title : str
    labels : mapping
        Axis label of each metric.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    metrics = list(curves)
    figure = Figure(figsize=(4.2 * len(metrics), 3.6), layout="constrained")
    axes = figure.subplots(1, len(metrics), squeeze=False)[0]
    for axis, metric in zip(axes, metrics, strict=True):
        for algorithm, (ks, mean, std) in curves[metric].items():
            name, colour = _ALGORITHM_STYLE.get(algorithm, (algorithm, None))
            axis.plot(ks, mean, marker="o", markersize=3, label=name, color=colour)
            axis.fill_between(ks, mean - std, mean + std, alpha=0.12, color=colour)
        for algorithm, value in flat.get(metric, {}).items():
            name, colour = _ALGORITHM_STYLE.get(algorithm, (algorithm, None))
            # OPTICS's silhouette leaves its noise windows out.
            note = "no k, noise left out" if metric == "silhouette" else "no k"
            axis.axhline(value, linestyle="--", color=colour, label=f"{name} ({note})")
        axis.set_xlabel("number of clusters k")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_ylabel(labels.get(metric, metric))
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    figure.suptitle(title, fontsize="medium")
    figure.savefig(path, dpi=DPI)


def plot_heatmap(
    values: np.ndarray,
    rows: Sequence[str],
    columns: Sequence[str],
    path: Path,
    *,
    title: str,
    label: str,
) -> None:
    """Draw a table of scores as a heat map with the value in each cell.

    Parameters
    ----------
    values : ndarray of shape (len(rows), len(columns))
        NaN for settings that were not run; drawn blank.
    rows, columns : sequence of str
        Row and column names.
    path : Path
    title, label : str
        Title, and the colour bar's label.
    """
    from matplotlib.figure import Figure

    height = 1.2 + 0.28 * len(rows)
    width = 2.5 + 0.95 * len(columns)
    figure = Figure(figsize=(width, height), layout="constrained")
    axis = figure.subplots()
    masked = np.ma.masked_invalid(values)
    image = axis.imshow(
        masked, aspect="auto", cmap="viridis", vmin=_low(values), vmax=_high(values)
    )
    axis.set_xticks(
        range(len(columns)),
        [_ALGORITHM_STYLE.get(c, (c,))[0] for c in columns],
        rotation=30,
        ha="right",
    )
    axis.set_yticks(range(len(rows)), rows)
    span = _high(values) - _low(values)
    for (i, j), value in np.ndenumerate(values):
        if np.isfinite(value):
            bright = span > 0 and (value - _low(values)) / span > 0.6
            axis.text(
                j,
                i,
                f"{value:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="black" if bright else "white",
            )
    figure.colorbar(image, ax=axis, label=label)
    axis.set_title(title, fontsize="medium")
    figure.savefig(path, dpi=DPI)


def plot_scatter(
    points: np.ndarray,
    clusters: np.ndarray,
    labels: np.ndarray,
    path: Path,
    *,
    title: str,
) -> None:
    """Draw windows on two principal components, coloured by cluster and by true label.

    Parameters
    ----------
    points : ndarray of shape (n_windows, 2)
    clusters : ndarray of shape (n_windows,), int
        -1 marks noise.
    labels : ndarray of shape (n_windows,)
    path : Path
    title : str
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9.0, 4.0), layout="constrained")
    by_cluster, by_label = figure.subplots(1, 2, sharex=True, sharey=True)
    for axis, groups, heading in (
        (by_cluster, clusters, "coloured by cluster"),
        (by_label, labels, "coloured by true label"),
    ):
        for index, group in enumerate(np.unique(groups)):
            members = groups == group
            name = "noise" if str(group) == "-1" else str(group)
            colour = "lightgray" if name == "noise" else f"C{index % 10}"
            axis.scatter(
                points[members, 0], points[members, 1], s=6, color=colour, label=name, alpha=0.7
            )
        axis.set_title(heading, fontsize="small")
        axis.set_xlabel("principal component 1")
        axis.legend(fontsize="x-small", markerscale=2, loc="best")
        axis.grid(alpha=0.3)
    by_cluster.set_ylabel("principal component 2")
    figure.suptitle(title, fontsize="medium")
    figure.savefig(path, dpi=DPI)


def plot_confusion(
    counts: np.ndarray,
    true_labels: Sequence[str],
    predicted_labels: Sequence[str],
    path: Path,
    *,
    title: str,
) -> None:
    """Draw a confusion matrix of window counts, shaded by the share of each true label.

    Parameters
    ----------
    counts : ndarray of shape (len(true_labels), len(predicted_labels)), int
    true_labels, predicted_labels : sequence of str
        Row and column names.
    path : Path
    title : str
    """
    from matplotlib.figure import Figure

    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    figure = Figure(
        figsize=(1.8 + 1.1 * len(predicted_labels), 1.4 + 0.7 * len(true_labels)),
        layout="constrained",
    )
    axis = figure.subplots()
    image = axis.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    axis.set_xticks(range(len(predicted_labels)), predicted_labels, rotation=30, ha="right")
    axis.set_yticks(range(len(true_labels)), true_labels)
    axis.set_xlabel("predicted state")
    axis.set_ylabel("true label")
    for (i, j), count in np.ndenumerate(counts):
        axis.text(
            j,
            i,
            str(count),
            ha="center",
            va="center",
            fontsize=8,
            color="white" if shares[i, j] > 0.5 else "black",
        )
    figure.colorbar(image, ax=axis, label="share of the true label's windows")
    axis.set_title(title, fontsize="medium")
    figure.savefig(path, dpi=DPI)


def _low(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.min()) if finite.size else 0.0


def _high(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.max()) if finite.size else 1.0
