"""Write the evaluation report: tables, figures, the summary of findings and the run record.

Files written to the report folder:

=============================  ===================================================
``summary.md``                 the study's findings per data set, with their tests,
                               the ``default`` preset's gain, and the run time
``results.md``                 tables: best settings, feature set x algorithm,
                               score against k
``results.csv``                every grid setting, averaged over splits and seeds
``run.json``                   command, grid, data files and sha256s, versions,
                               cell counts and run time
``<kind>-metric-vs-k.png``     mean score against k, one line per algorithm
``<kind>-heatmap.png``         feature set x algorithm
``<kind>-scatter.png``         the best setting's test windows on two principal
                               components, by cluster and by true label
``<kind>-confusion.png``       the best setting's confusion matrix over all folds
                               (labelled data sets only)
=============================  ===================================================
"""

from __future__ import annotations

import json
import logging
import os
import platform
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from edgemon.training import aggregate
from edgemon.training.aggregate import METRIC_NAMES, grid_rows, primary_metrics, ranked
from edgemon.training.figures import algorithm_order, draw_figures, heatmap_values, score_curves
from edgemon.training.findings import ALPHA, study_findings
from edgemon.training.grid import CANDIDATE, STUDY_FEATURE_SETS
from edgemon.training.markdown import candidate_section, findings_section, markdown_table, number

__all__ = ["write_report"]

logger = logging.getLogger(__name__)


def write_report(run, out: Path, *, command: str | None = None) -> list[Path]:
    """Write every report file for an :class:`~edgemon.training.evaluate.EvaluationRun`.

    Returns
    -------
    list of Path
        The files written.
    """
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    table = [row for result in run.results for row in aggregate.aggregate(result.rows)]
    aggregate.write_csv(table, out / "results.csv")
    written.append(out / "results.csv")

    sections, tables, findings = [], [], {}
    for result in run.results:
        if result.dataset.labelled:
            findings[result.dataset.spec.kind] = {
                metric: study_findings(grid_rows(result.rows), metric)
                for metric in primary_metrics(True)
            }
        figures = draw_figures(result, out)
        written.extend(figures.values())
        sections.append(_dataset_summary(result, figures, findings.get(result.dataset.spec.kind)))
        tables.append(_dataset_tables(result))

    (out / "results.md").write_text(_results_markdown(tables), encoding="utf-8")
    summary = _summary_markdown(run, [*_at_a_glance(run, findings), *sections], command)
    (out / "summary.md").write_text(summary, encoding="utf-8")
    (out / "run.json").write_text(
        json.dumps(_run_record(run, command), indent=2) + "\n", encoding="utf-8"
    )
    written += [out / "results.md", out / "summary.md", out / "run.json"]
    logger.info("report written to %s", out)
    return written


# Summary --------------------------------------------------------------------------------------


def _summary_markdown(run, sections: Sequence[str], command: str | None) -> str:
    cells = run.cached + run.computed
    lines = [
        "# Clustering evaluation",
        "",
        'This report tests the findings of Sepin et al. (2023), "Comparison of Clustering '
        'Algorithms for Statistical Features of Vibration Data Sets", on real bearing '
        "recordings, with training and test windows from different recordings or different "
        "parts of a recording. Every score is measured on the test side of a fold. "
        "docs/evaluation.md explains the metrics and the folds.",
        "",
        f"- Command: `{command or 'edgemon evaluate'}`",
        f"- Grid: {_grid_text(run.grid)}",
        f"- Significance: Wilcoxon signed-rank test over (split, seed) pairs, one-sided, "
        f"alpha = {ALPHA}, no correction for multiple tests. Pairs within a split share "
        "their data, so the p-values are optimistic; each comparison also says in how many "
        "splits the first arm scored higher.",
        f"- Run time: {cells} cells ({run.computed} computed, {run.cached} from the cache) in "
        f"{run.elapsed / 60:.1f} min with {_jobs_text(run.jobs)} on {_machine_text()}, "
        "before this report was written. The cells took "
        f"{_cpu_seconds(run) / 60:.1f} CPU minutes when they were computed.",
        "",
        "Files: [results.md](results.md) (tables), [results.csv](results.csv) (every setting), "
        "[run.json](run.json) (data files, sha256s and versions).",
        "",
    ]
    return "\n".join(lines + list(sections))


def _at_a_glance(run, findings: dict[str, dict[str, list]]) -> list[str]:
    """Return the verdict of every finding on every labelled data set, in one table."""
    if not findings:
        return []
    metrics = primary_metrics(True)
    header = ["finding of the study"]
    header += [f"{kind.upper()}, {METRIC_NAMES[m]}" for kind in findings for m in metrics]
    first = next(iter(findings.values()))[metrics[0]]
    body = []
    for index, finding in enumerate(first):
        verdicts = [findings[kind][m][index].verdict for kind in findings for m in metrics]
        body.append([f"{finding.number}. {finding.claim}", *verdicts])
    unlabelled = [r.dataset.spec.kind.upper() for r in run.results if not r.dataset.labelled]
    lines = ["## At a glance", "", *markdown_table(header, body), ""]
    if unlabelled:
        lines += [
            f"{', '.join(unlabelled)} has a single label, so it has no verdicts; its section "
            "reports the silhouette and the unknown rate on the later files instead.",
            "",
        ]
    lines += [
        "Each data set's section below gives the comparisons behind every verdict, with "
        "the p-values, and the default preset's gain over the study's statistics.",
        "",
    ]
    return lines


def _dataset_summary(result, figures: dict[str, Path], findings: dict | None) -> str:
    dataset = result.dataset
    labelled = dataset.labelled
    main, second = primary_metrics(labelled)
    lines = [f"## {dataset.spec.kind.upper()}", "", _data_text(dataset), ""]
    if findings is not None:
        lines += findings_section(findings, (main, second), METRIC_NAMES)
    else:
        lines += [
            "This data set has a single label, so the study's findings, which compare "
            "clusters with condition labels, are not tested here. The tables show the "
            "silhouette of the later files' windows and the share of them that the novelty "
            "rule of `edgemon train` would report as `unknown`.",
            "",
        ]
        lines += _unlabelled_overview(result)
    lines += candidate_section(result, labelled, METRIC_NAMES)
    lines += _best_settings(result, main, second, limit=5)
    lines += ["### Figures", ""]
    for name, path in figures.items():
        lines += [f"![{name}]({path.name})", ""]
    return "\n".join(lines)


def _data_text(dataset) -> str:
    labels = ", ".join(dataset.labels_present)
    n_windows = sum(len(labels_) for labels_ in dataset.labels)
    channels = ", ".join(dataset.spec.channels)
    return (
        f"{len(dataset.files)} files ({labels}); channel {channels} at {dataset.sample_rate:g} Hz; "
        f"{n_windows} windows of {dataset.window} samples every {dataset.hop} samples. "
        f"Folds: {dataset.plan.description}: "
        + "; ".join(split.name for split in dataset.plan.splits)
        + "."
    )


def _unlabelled_overview(result) -> list[str]:
    rows = [
        r
        for r in aggregate.aggregate(grid_rows(result.rows))
        if r["features"] in STUDY_FEATURE_SETS and r["pca"] == "none"
    ]
    algorithms = sorted({r["algorithm"] for r in rows}, key=algorithm_order)
    body = []
    for algorithm in algorithms:
        members = [r for r in rows if r["algorithm"] == algorithm]
        if not members:
            continue
        best = max(members, key=lambda r: _finite(r["silhouette_mean"]))
        body.append(
            [
                algorithm,
                f"{best['features']} ({best['domain']})"
                + ("" if best["k"] is None else f", k = {best['k']}"),
                number(best["silhouette_mean"]),
                number(_mean_of(members, "silhouette_mean")),
                number(_mean_of(members, "unknown_rate_mean"), percent=True),
                number(_mean_of(members, "noise_share_mean"), percent=True),
            ]
        )
    header = [
        "algorithm",
        "best setting by silhouette",
        "its silhouette",
        "mean silhouette",
        "mean unknown rate",
        "mean noise share",
    ]
    return [
        "### Overview (no PCA, the study's feature sets)",
        "",
        *markdown_table(header, body),
        "",
    ]


def _best_settings(result, main: str, second: str, *, limit: int) -> list[str]:
    header = [
        "features",
        "domain",
        "PCA",
        "algorithm",
        "k",
        METRIC_NAMES[main],
        METRIC_NAMES[second],
    ]
    body = [
        [
            r["features"],
            r["domain"],
            r["pca"],
            r["algorithm"],
            _k_text(r),
            _mean_std(r, main),
            number(r[f"{second}_mean"], percent=second == "unknown_rate"),
        ]
        for r in ranked(result.rows, main)[:limit]
    ]
    lines = [f"### Best settings by {METRIC_NAMES[main]}", ""]
    if main == "silhouette":
        lines += [
            "OPTICS is left out here: its silhouette ignores the windows it leaves as noise, "
            "so it cannot be ranked with the others (see the OPTICS table in results.md).",
            "",
        ]
    return [*lines, *markdown_table(header, body), ""]


# Tables ---------------------------------------------------------------------------------------


def _results_markdown(tables: Sequence[str]) -> str:
    lines = [
        "# Clustering evaluation: tables",
        "",
        "Means over every split and seed, measured on the test side of each fold; "
        "results.csv has every setting. The summary is in [summary.md](summary.md).",
        "",
    ]
    return "\n".join(lines + list(tables))


def _dataset_tables(result) -> str:
    dataset = result.dataset
    main, second = primary_metrics(dataset.labelled)
    lines = [f"## {dataset.spec.kind.upper()}", ""]
    lines += _best_settings(result, main, second, limit=15)

    values, row_names, columns, k_text = heatmap_values(result, main)
    header = ["features (domain)", *columns]
    body = [[name, *(number(v) for v in row)] for name, row in zip(row_names, values, strict=True)]
    lines += [
        f"### Feature set x algorithm: {METRIC_NAMES[main]} ({k_text}, no PCA)",
        "",
        *markdown_table(header, body),
        "",
    ]

    for metric in (main, second):
        curves, flat = score_curves(result, metric)
        ks = sorted({int(k) for series in curves.values() for k in series[0]})
        header = ["algorithm", *(f"k = {k}" for k in ks)]
        body = []
        for algorithm, (k_values, mean, _) in curves.items():
            by_k = dict(zip(k_values.tolist(), mean.tolist(), strict=True))
            body.append(
                [algorithm, *(number(by_k.get(k), percent=metric == "unknown_rate") for k in ks)]
            )
        for algorithm, value in flat.items():
            body.append(
                [
                    f"{algorithm} (no k)",
                    *([number(value, percent=metric == "unknown_rate")] * len(ks)),
                ]
            )
        lines += [
            f"### {METRIC_NAMES[metric]} against k (the study's feature sets, no PCA)",
            "",
            *markdown_table(header, body),
            "",
        ]

    optics = [
        r
        for r in aggregate.aggregate(result.rows)
        if r["algorithm"] == "optics" and r["pca"] == "none"
    ]
    if optics:
        header = ["features", "domain", "clusters found", "noise share", METRIC_NAMES[main]]
        body = [
            [
                r["features"],
                r["domain"],
                number(r["clusters_found_mean"], digits=1),
                number(r["noise_share_mean"], percent=True),
                number(r[f"{main}_mean"]),
            ]
            for r in optics
        ]
        lines += ["### OPTICS (no PCA)", "", *markdown_table(header, body), ""]
    return "\n".join(lines)


# Run record -------------------------------------------------------------------------------------


def _run_record(run, command: str | None) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in ("edgemon", "numpy", "scipy", "scikit-learn", "joblib", "matplotlib"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return {
        "command": command,
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "grid": run.grid.to_dict(),
        "cells": {
            "total": run.cached + run.computed,
            "computed": run.computed,
            "cached": run.cached,
            "failed": sum(
                1 for result in run.results for row in result.rows if row.get("status") != "ok"
            ),
        },
        "elapsed_seconds": round(run.elapsed, 1),
        "cell_cpu_seconds": round(_cpu_seconds(run), 1),
        "jobs": run.jobs,
        "machine": _machine_text(),
        "versions": versions,
        "datasets": [_dataset_record(result) for result in run.results],
    }


def _dataset_record(result) -> dict[str, Any]:
    dataset = result.dataset
    return {
        "kind": dataset.spec.kind,
        "path": str(dataset.spec.path),
        "channels": list(dataset.spec.channels),
        "sample_rate": dataset.sample_rate,
        "window": dataset.window,
        "hop": dataset.hop,
        "features": {"study": dataset.study_spec, CANDIDATE: dataset.candidate_spec},
        "default_note": dataset.candidate_note,
        "files": list(dataset.files),
        "splits": [
            {
                "name": split.name,
                "train": [dataset.plan.segments[i].name for i in split.train],
                "test": [dataset.plan.segments[i].name for i in split.test],
            }
            for split in dataset.plan.splits
        ],
    }


# Helpers ---------------------------------------------------------------------------------------


def _grid_text(grid) -> str:
    return (
        f"algorithms {', '.join(grid.algorithms)}; feature sets {', '.join(grid.feature_sets)}; "
        f"domains {', '.join(grid.domains)}; PCA {', '.join(grid.to_dict()['pca'])}; "
        f"k from 2 to {grid.max_clusters}; {grid.seeds} seed{'s' if grid.seeds > 1 else ''} "
        "per setting"
    )


def _cpu_seconds(run) -> float:
    return float(
        sum(row.get("cpu_seconds") or 0.0 for result in run.results for row in result.rows)
    )


def _jobs_text(jobs: int) -> str:
    return "all cores (--jobs -1)" if jobs == -1 else f"--jobs {jobs}"


def _machine_text() -> str:
    return f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"


def _k_text(row: dict[str, Any]) -> str:
    if row["k"] is None:
        return f"({number(row['clusters_found_mean'], digits=1)} found)"
    return str(row["k"])


def _mean_std(row: dict[str, Any], metric: str) -> str:
    spread = row[f"{metric}_std"]
    if spread is None or not np.isfinite(spread):
        return number(row[f"{metric}_mean"])
    return f"{number(row[f'{metric}_mean'])} ± {number(spread)}"


def _mean_of(rows: Sequence[dict[str, Any]], key: str) -> float:
    values = [r[key] for r in rows if r[key] is not None and np.isfinite(r[key])]
    return float(np.mean(values)) if values else float("nan")


def _finite(value: float) -> float:
    return value if value is not None and np.isfinite(value) else float("-inf")
