"""edgemon evaluate end to end on the bundled excerpt: every report file, and the cache."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pytest

from edgemon.cli import main
from edgemon.data import CWRU_EXCERPT
from edgemon.training.cells import RESULT_FIELDS
from edgemon.training.evaluate import DatasetSpec, evaluate, preset_algorithm
from edgemon.training.grid import Grid
from edgemon.training.presets import DEFAULT

pytestmark = pytest.mark.slow

REPORT_FILES = {
    "summary.md",
    "results.md",
    "results.csv",
    "run.json",
    "cwru-metric-vs-k.png",
    "cwru-heatmap.png",
    "cwru-scatter.png",
    "cwru-confusion.png",
}


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    """Run the quick grid once, through the command line, with a fresh cache."""
    folder = tmp_path_factory.mktemp("evaluate")
    argv = [
        "evaluate",
        "--dataset",
        "cwru",
        "--data",
        str(CWRU_EXCERPT),
        "--out",
        str(folder / "report"),
        "--quick",
        "--cache",
        str(folder / "cache"),
        "--jobs",
        "2",
        "--quiet",
    ]
    assert main(argv) == 0
    return folder


def test_quick_grid_writes_every_file(quick_report):
    report = quick_report / "report"
    assert {path.name for path in report.iterdir()} == REPORT_FILES
    for name in REPORT_FILES:
        assert (report / name).stat().st_size > 0
    assert (report / "cwru-heatmap.png").read_bytes().startswith(b"\x89PNG")


def test_quick_grid_summary_states_findings(quick_report):
    summary = (quick_report / "report" / "summary.md").read_text()
    for claim in (
        "averaging and variance features beat shape features",
        "K-means slightly beats the Gaussian mixtures; OPTICS is clearly worse",
        "feature combinations and PCA bring no significant gain",
        "more clusters score higher",
    ):
        assert claim in summary
    assert "Wilcoxon signed-rank test" in summary
    assert "### The default preset of `edgemon train`" in summary
    assert "0 hp held out" in summary


def test_quick_grid_csv_covers_grid(quick_report):
    with (quick_report / "report" / "results.csv").open() as file:
        rows = list(csv.DictReader(file))
    grid = Grid.quick()
    algorithms = {row["algorithm"] for row in rows}
    assert algorithms == set(grid.algorithms)
    assert {row["features"] for row in rows} == set(grid.feature_sets)
    k_rows = [row for row in rows if row["algorithm"] != "optics"]
    extra_k = DEFAULT.n_clusters not in (None, *grid.k_values)
    expected_k = {*grid.k_values, DEFAULT.n_clusters} if extra_k else set(grid.k_values)
    assert {int(row["k"]) for row in k_rows} == expected_k
    if extra_k:
        # The preset's own k is scored for its features and their reference only.
        preset_k = [row for row in k_rows if int(row["k"]) == DEFAULT.n_clusters]
        assert {(row["features"], row["domain"], row["algorithm"]) for row in preset_k} == {
            ("default", "preset", preset_algorithm()),
            ("all", "both", preset_algorithm()),
        }
    assert all(row["k"] == "" for row in rows if row["algorithm"] == "optics")
    # Two folds and one seed per setting; OPTICS runs once per fold.
    assert {row["runs"] for row in rows} == {"2"}
    assert all(row["failed"] == "0" for row in rows)
    optics = [row for row in rows if row["algorithm"] == "optics"]
    assert all(row["noise_share_mean"] != "" for row in optics)


def test_run_record_lists_data(quick_report):
    record = json.loads((quick_report / "report" / "run.json").read_text())
    (dataset,) = record["datasets"]
    assert len(dataset["files"]) == 7
    assert all(len(file["sha256"]) == 64 for file in dataset["files"])
    assert [split["name"] for split in dataset["splits"]] == ["0 hp held out", "1 hp held out"]
    assert record["cells"]["computed"] == record["cells"]["total"]


def test_second_run_hits_cache(quick_report, tmp_path):
    spec = DatasetSpec.default("cwru", CWRU_EXCERPT)
    run = evaluate(
        [spec],
        Grid.quick(),
        tmp_path / "again",
        jobs=1,
        cache_dir=quick_report / "cache",
        progress=False,
    )
    assert run.computed == 0
    assert run.cached > 0
    first = (quick_report / "report" / "results.csv").read_text()
    assert (tmp_path / "again" / "results.csv").read_text() == first


def test_one_more_seed_computes_only_new_cells(quick_report, tmp_path):
    spec = DatasetSpec.default("cwru", CWRU_EXCERPT)
    grid = replace(Grid.quick(), seeds=2)
    run = evaluate(
        [spec], grid, tmp_path / "more", jobs=1, cache_dir=quick_report / "cache", progress=False
    )
    new_seed = [row for result in run.results for row in result.rows if row["seed"] == 1]
    assert run.computed == len(new_seed)
    assert run.cached == sum(len(result.rows) for result in run.results) - len(new_seed)


def test_cells_store_every_field(quick_report, tmp_path):
    spec = DatasetSpec.default("cwru", CWRU_EXCERPT)
    run = evaluate(
        [spec],
        Grid.quick(),
        tmp_path / "fields",
        jobs=1,
        cache_dir=quick_report / "cache",
        progress=False,
    )
    for row in run.results[0].rows:
        assert row["status"] == "ok"
        assert set(RESULT_FIELDS) <= set(row)


@pytest.mark.shared_data
def test_ims_report_without_labels(ims_dir, tmp_path):
    grid = Grid(
        algorithms=("kmeans", "optics"),
        feature_sets=("variance", "all"),
        domains=("both",),
        pca=(None,),
        max_clusters=3,
        seeds=1,
    )
    run = evaluate(
        [DatasetSpec.default("ims", ims_dir)],
        grid,
        tmp_path,
        cache_dir=None,
        jobs=1,
        progress=False,
    )
    names = {path.name for path in run.files}
    assert {"ims-metric-vs-k.png", "ims-heatmap.png", "ims-scatter.png"} <= names
    # A single label gives no confusion matrix and no label scores.
    assert "ims-confusion.png" not in names
    rows = run.results[0].rows
    kmeans = [row for row in rows if row["algorithm"] == "kmeans"]
    assert all(np.isnan(row["ari"]) for row in kmeans)
    assert all(-1 <= row["silhouette"] <= 1 for row in kmeans)
    assert all(0 <= row["unknown_rate"] <= 1 for row in kmeans)
    summary = (tmp_path / "summary.md").read_text()
    assert "single label" in summary
    assert "files before 2003.10.22.12.49.13 train, the rest test" in summary
