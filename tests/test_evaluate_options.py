"""edgemon evaluate: the grid's settings and the command line reject bad options clearly."""

from __future__ import annotations

import logging

import pytest

from edgemon.cli import main
from edgemon.data import CWRU_EXCERPT
from edgemon.errors import ConfigError
from edgemon.training.grid import (
    ALGORITHMS,
    FEATURE_SETS,
    MIN_PCA_COLUMNS,
    FeatureConfig,
    Grid,
    feature_configs,
    parse_choices,
    parse_pca_settings,
)

STUDY_COLUMNS = tuple(
    f"DE:{domain}.{name}"
    for domain in ("time", "freq")
    for name in ("mean", "median", "std", "iqr", "skewness", "kurtosis")
)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"algorithms": ("kmean",)}, r"unknown value 'kmean' \(did you mean 'kmeans'\?\)"),
        ({"algorithms": ()}, "algorithms must name at least one"),
        ({"feature_sets": ("all", "all")}, "lists a value twice"),
        ({"domains": ("frequency",)}, "did you mean 'freq'"),
        ({"pca": (1.5,)}, "got 1.5"),
        ({"pca": (0,)}, "got 0"),
        ({"pca": (None, None)}, "lists a setting twice"),
        ({"max_clusters": 1}, "max_clusters must be an integer from 2"),
        ({"max_clusters": 3.0}, "max_clusters must be an integer"),
        ({"seeds": 0}, "seeds must be a number of seeds >= 1"),
    ],
)
def test_grid_rejects_bad_settings(settings, message):
    with pytest.raises(ConfigError, match=message):
        Grid(**settings)


def test_grid_defaults_cover_study():
    grid = Grid()
    assert grid.algorithms == ALGORITHMS
    assert grid.feature_sets == FEATURE_SETS
    assert grid.k_values == tuple(range(2, 9))
    assert grid.seed_values == (0, 1, 2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kmeans,optics", ("kmeans", "optics")),
        ("gmm", ("gmm-full", "gmm-tied", "gmm-diag", "gmm-spherical")),
        (" KMeans , gmm-tied ,", ("kmeans", "gmm-tied")),
    ],
)
def test_parse_algorithms(text, expected):
    assert parse_choices("--algorithms", text, ALGORITHMS) == expected


def test_parse_feature_aliases():
    assert parse_choices("--features", "groups,all", FEATURE_SETS) == (
        "averaging",
        "variance",
        "shape",
        "all",
    )


@pytest.mark.parametrize(
    ("text", "expected"), [("none,2,0.9", (None, 2, 0.9)), ("3", (3,)), ("0.5,none", (0.5, None))]
)
def test_parse_pca(text, expected):
    assert parse_pca_settings("--pca", text) == expected


@pytest.mark.parametrize("text", ["2.0", "1.0", "-1", "half", ",", "0"])
def test_parse_pca_rejects(text):
    with pytest.raises(ConfigError, match="--pca"):
        parse_pca_settings("--pca", text)


def test_feature_configs_select_columns():
    grid = Grid(feature_sets=("variance", "kurtosis", "default"), domains=("time", "both"))
    configs = feature_configs(grid, STUDY_COLUMNS, ("DE:band.rms[10-500]",))
    assert configs == [
        FeatureConfig("variance", "time", ("DE:time.std", "DE:time.iqr")),
        FeatureConfig(
            "variance", "both", ("DE:time.std", "DE:time.iqr", "DE:freq.std", "DE:freq.iqr")
        ),
        FeatureConfig("kurtosis", "time", ("DE:time.kurtosis",)),
        FeatureConfig("kurtosis", "both", ("DE:time.kurtosis", "DE:freq.kurtosis")),
        FeatureConfig("default", "preset", ("DE:band.rms[10-500]",)),
    ]


def test_pca_only_on_larger_sets():
    grid = Grid(pca=(None, 2, 4, 0.9))
    small = FeatureConfig("variance", "time", STUDY_COLUMNS[: MIN_PCA_COLUMNS - 1])
    four = FeatureConfig("variance", "both", STUDY_COLUMNS[:4])
    assert small.pca_settings(grid) == (None,)
    # Four components of four columns select nothing.
    assert four.pca_settings(grid) == (None, 2, 0.9)


def test_missing_default_set_left_out():
    configs = feature_configs(
        Grid(feature_sets=("all", "default"), domains=("both",)), STUDY_COLUMNS, None
    )
    assert [config.feature_set for config in configs] == ["all"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "give --dataset and --data, or --all-datasets with --data-root"),
        (["--dataset", "cwru"], "give --dataset and --data"),
        (["--all-datasets"], "--all-datasets requires --data-root"),
        (
            ["--all-datasets", "--data-root", "{root}", "--dataset", "cwru"],
            "leave out --dataset and --data",
        ),
        (["--all-datasets", "--data-root", "{root}"], "has no mfpt/, ims/ folder"),
        (
            ["--dataset", "cwru", "--data", "{excerpt}", "--data-root", "{root}"],
            "--data-root goes with --all-datasets",
        ),
        (
            ["--dataset", "cwru", "--data", "{excerpt}", "--algorithms", "dbscan"],
            "--algorithms: unknown value 'dbscan'",
        ),
        (
            ["--dataset", "cwru", "--data", "{excerpt}", "--features", "rms"],
            "--features: unknown value 'rms'",
        ),
        (
            ["--dataset", "cwru", "--data", "{excerpt}", "--domains", ""],
            "--domains must list at least one",
        ),
        (
            ["--dataset", "cwru", "--data", "{excerpt}", "--pca", "7.5"],
            "--pca: '7.5' is not a PCA setting",
        ),
        (
            ["--dataset", "cwru", "--data", "{excerpt}", "--max-clusters", "1"],
            "--max-clusters must be at least 2, got 1",
        ),
        (
            ["--dataset", "cwru", "--data", "{excerpt}", "--seeds", "0"],
            "--seeds must be a number of seeds >= 1, got 0",
        ),
        (
            ["--dataset", "cwru", "--data", "{excerpt}", "--jobs", "0"],
            "jobs must be a number of processes >= 1, or -1",
        ),
        (
            ["--dataset", "cwru", "--data", "{excerpt}", "--window", "0"],
            "window must be a positive number of samples",
        ),
        (
            ["--dataset", "cwru", "--data", "{excerpt}", "--hop", "-5"],
            "hop must be a positive number of samples",
        ),
        (["--dataset", "cwru", "--data", "{missing}"], "data set not found"),
    ],
)
def test_cli_rejects_bad_options(arguments, message, tmp_path, caplog):
    arguments = [
        a.format(excerpt=CWRU_EXCERPT, root=CWRU_EXCERPT.parent, missing=tmp_path / "missing")
        for a in arguments
    ]
    argv = ["evaluate", "--out", str(tmp_path / "report"), "--no-cache", "--quiet", *arguments]
    with caplog.at_level(logging.ERROR, logger="edgemon"):
        status = main(argv)
    assert status == 2
    assert message in caplog.text
    assert not (tmp_path / "report" / "summary.md").exists()


def test_cli_rejects_unknown_dataset(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--dataset", "paderborn", "--data", ".", "--out", "r"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'paderborn'" in capsys.readouterr().err


def test_out_must_be_folder(tmp_path, caplog):
    file = tmp_path / "report.txt"
    file.write_text("not a folder")
    with caplog.at_level(logging.ERROR, logger="edgemon"):
        status = main(
            [
                "evaluate",
                "--dataset",
                "cwru",
                "--data",
                str(CWRU_EXCERPT),
                "--out",
                str(file),
                "--no-cache",
                "--quiet",
                "--quick",
            ]
        )
    assert status == 2
    assert f"--out must be a folder, but {file} is a file" in caplog.text
