"""Markdown pieces of the evaluation report: tables, numbers, the findings and the default preset.

:mod:`edgemon.training.report` assembles them into ``summary.md`` and ``results.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgemon.training.findings import (
    LOWER_IS_BETTER,
    Comparison,
    Finding,
    candidate_comparisons,
    usable_rows,
)
from edgemon.training.grid import CANDIDATE

__all__ = ["candidate_section", "findings_section", "markdown_table", "number"]


def markdown_table(header: Sequence[str], body: Sequence[Sequence[Any]]) -> list[str]:
    """Return the lines of a Markdown table; an empty body gives one line saying so."""
    if not body:
        return ["(no results for this table in the grid that was run)"]
    lines = [
        "| " + " | ".join(str(cell) for cell in header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in body]
    return lines


def number(value: Any, *, percent: bool = False, digits: int = 3) -> str:
    """Format a score for a table: 3 decimals, or a percentage; ``n/a`` for NaN or None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if percent:
        return f"{100 * value:.1f} %"
    return f"{value:.{digits}f}"


def findings_section(
    findings: Mapping[str, Sequence[Finding]], metrics: Sequence[str], names: Mapping[str, str]
) -> list[str]:
    """Return the verdict table of the study's findings, then each finding's comparisons."""
    header = ["finding of the study", *(names[metric] for metric in metrics)]
    first = findings[metrics[0]]
    body = [
        [f"{finding.number}. {finding.claim}", *(f"**{findings[m][i].verdict}**" for m in metrics)]
        for i, finding in enumerate(first)
    ]
    lines = ["### The study's findings on this data set", "", *markdown_table(header, body), ""]
    for index, finding in enumerate(first):
        lines += [f"#### {finding.number}. {finding.claim}", ""]
        for metric in metrics:
            result = findings[metric][index]
            lines.append(f"- {names[metric]}: **{result.verdict}**: {result.reason}.")
        lines.append("")
        rows = [(metric, c) for metric in metrics for c in findings[metric][index].comparisons]
        lines += [*comparison_table(rows, names), ""]
    return lines


def comparison_table(rows: Sequence[tuple[str, Comparison]], names: Mapping[str, str]) -> list[str]:
    """Return a table of paired comparisons, one per row."""
    header = [
        "metric",
        "a",
        "b",
        "pairs",
        "mean a",
        "mean b",
        "median a - b",
        "p (a > b)",
        "p (a < b)",
        "splits where a is higher",
    ]
    body = [
        [
            names.get(metric, metric),
            c.a,
            c.b,
            c.pairs,
            number(c.mean_a),
            number(c.mean_b),
            f"{c.median_difference:+.3f}",
            _p(c.p_greater),
            _p(c.p_less),
            f"{c.splits_a_higher} of {c.splits}",
        ]
        for metric, c in rows
    ]
    return markdown_table(header, body)


def candidate_section(result, labelled: bool, names: Mapping[str, str]) -> list[str]:
    """Return the section on the ``default`` preset of ``edgemon train``.

    It shows the preset's gain over the study's statistics and its per-fold scores.
    """
    from edgemon.training.evaluate import preset_algorithm
    from edgemon.training.presets import DEFAULT

    dataset = result.dataset
    lines = ["### The default preset of `edgemon train`", ""]
    if dataset.candidate_spec is None:
        return [*lines, f"Not evaluated: {dataset.candidate_note}.", ""]
    rows = [row for row in result.rows if row["features"] == CANDIDATE]
    if not rows:
        return [*lines, "Not evaluated: the grid's --features leaves out 'default'.", ""]

    algorithm = preset_algorithm()
    preset_k = DEFAULT.n_clusters
    n_labels = len(dataset.labels_present)
    lines += [
        f"Features: {', '.join(dataset.candidate_spec['names'])} "
        f"({len(dataset.candidate_columns)} columns); algorithm {algorithm}; "
        f"k = {preset_k if preset_k is not None else 'chosen automatically'}. "
        "Each comparison pairs the default features with a study feature set on the same "
        "algorithm, PCA setting, k, split and seed. The study's best set is picked on the "
        "same test scores, which favours it. Where the grid's k range misses the "
        "preset's k, the default features and the study's twelve statistics are also scored "
        "at that k.",
        "",
    ]
    main, second = ("ari", "accuracy_majority") if labelled else ("silhouette", "unknown_rate")
    ks = {row["k"] for row in result.rows if row["k"] is not None}
    entries = [
        (main, "every k", c) for c in candidate_comparisons(result.rows, main, algorithm=algorithm)
    ]
    if preset_k is not None and preset_k in ks:
        entries += [
            (second, str(preset_k), c)
            for c in candidate_comparisons(result.rows, second, algorithm=algorithm, k=preset_k)
        ]
    if labelled and n_labels in ks and n_labels != preset_k:
        entries += [
            (main, str(n_labels), c)
            for c in candidate_comparisons(result.rows, main, algorithm=algorithm, k=n_labels)
        ]
    lines += _gain_table(entries, names)

    for k in dict.fromkeys(
        k for k in (preset_k, n_labels if labelled else None) if k is not None and k in ks
    ):
        lines += _per_fold(result, rows, algorithm, k, labelled, names)
    if preset_k is not None and preset_k not in ks:
        lines += [
            f"The preset's k = {preset_k} was not scored because the grid's "
            f"--algorithms leave out {algorithm}.",
            "",
        ]
    return lines


def _gain_table(
    entries: Sequence[tuple[str, str, Comparison]], names: Mapping[str, str]
) -> list[str]:
    """Return the default preset's comparisons; for ``unknown_rate`` a lower value is the gain."""
    if not entries:
        return ["(no comparison: the grid lacks the study's feature sets for this algorithm)", ""]
    header = [
        "metric",
        "k",
        "reference",
        "pairs",
        "mean default",
        "mean reference",
        "median default - reference",
        "p (default better)",
        "splits where default is better",
    ]
    body = []
    for metric, k_text, c in entries:
        # The scores where lower is better are shares, shown in percent.
        lower_better = metric in LOWER_IS_BETTER
        p_value = c.p_less if lower_better else c.p_greater
        better_splits = c.splits_a_lower if lower_better else c.splits_a_higher
        difference = (
            f"{100 * c.median_difference:+.1f} points"
            if lower_better
            else f"{c.median_difference:+.3f}"
        )
        body.append(
            [
                names.get(metric, metric),
                k_text,
                c.b,
                c.pairs,
                number(c.mean_a, percent=lower_better),
                number(c.mean_b, percent=lower_better),
                difference,
                _p(p_value),
                f"{better_splits} of {c.splits}",
            ]
        )
    return [*markdown_table(header, body), ""]


def _per_fold(result, rows, algorithm: str, k: int, labelled: bool, names) -> list[str]:
    chosen = [r for r in rows if r["algorithm"] == algorithm and r["k"] == k and r["pca"] == "none"]
    metrics = (
        ("accuracy_majority", "accuracy_hungarian", "ari", "unknown_rate")
        if labelled
        else ("silhouette", "unknown_rate")
    )
    header = ["fold", *(names.get(m, m) for m in metrics)]
    body = []
    for split in result.dataset.plan.splits:
        members = [r for r in chosen if r["split"] == split.name]
        cells = []
        for metric in metrics:
            values = [r[metric] for r in usable_rows(members, metric)]
            cells.append(
                number(float(np.mean(values)) if values else None, percent=metric == "unknown_rate")
            )
        body.append([split.name, *cells])
    return [f"Per fold, k = {k}, no PCA, mean over seeds:", "", *markdown_table(header, body), ""]


def _p(value: float) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:.3g}"
