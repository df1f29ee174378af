"""``edgemon evaluate``: run the clustering grid on labelled recordings and write a report.

Steps of :func:`evaluate`, per data set:

1. Read the recordings with :func:`edgemon.training.datasets.load_dataset`,
   split them into folds (:mod:`edgemon.training.splits`), and compute the
   feature matrices of every segment (:mod:`edgemon.training.evaldata`).
   Windows the daemon would report ``invalid`` are dropped, as in training.
2. For every fold, feature set, domain, PCA setting, seed, algorithm and k
   (:mod:`edgemon.training.grid`), fit on the training side and score the
   test side (:mod:`edgemon.training.cells`).  Cells already in the cache
   (:mod:`edgemon.training.cache`) are not computed again; the others run in
   parallel processes with joblib.
3. Write the report (:mod:`edgemon.training.report`).
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from edgemon.errors import ConfigError
from edgemon.training.command import check_data_path
from edgemon.training.evaldata import DATASETS, DatasetSpec, PreparedDataset, prepare_dataset
from edgemon.training.grid import (
    ALGORITHMS,
    DOMAINS,
    FEATURE_SETS,
    K_ALGORITHMS,
    FeatureConfig,
    Grid,
    feature_configs,
    format_pca,
    parse_choices,
    parse_pca_settings,
)

__all__ = [
    "DATASETS",
    "DatasetResult",
    "DatasetSpec",
    "EvaluationRun",
    "PreparedDataset",
    "evaluate",
    "evaluate_from_args",
    "prepare_dataset",
    "preset_algorithm",
]

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class DatasetResult:
    """The grid's cells on one data set."""

    dataset: PreparedDataset
    configs: list[FeatureConfig]
    #: One row per cell: its settings and its scores (see ``cells.RESULT_FIELDS``).
    rows: list[dict[str, Any]]
    cached: int
    computed: int


@dataclass(eq=False)
class EvaluationRun:
    """Everything an evaluation produced."""

    results: list[DatasetResult]
    grid: Grid
    #: Seconds from the first file read to the last cell scored, before the report.
    elapsed: float
    jobs: int
    #: Files written, in the order written.
    files: list[Path]

    @property
    def cached(self) -> int:
        """Cells whose results came from the cache."""
        return sum(result.cached for result in self.results)

    @property
    def computed(self) -> int:
        """Cells computed in this run."""
        return sum(result.computed for result in self.results)


def evaluate(
    specs: Sequence[DatasetSpec],
    grid: Grid,
    out: str | os.PathLike[str],
    *,
    window: int | None = None,
    hop: int | None = None,
    jobs: int = -1,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    command: str | None = None,
) -> EvaluationRun:
    """Run the grid on each data set and write the report to ``out``.

    Parameters
    ----------
    specs : sequence of DatasetSpec
        Data sets, each reported in its own section.
    grid : Grid
    out : path-like
        Report folder; created if missing, files in it are replaced.
    window : int, optional
        Samples per window; default: the ``default`` preset's window.
    hop : int, optional
        Samples between window starts; default: the window, so that no two
        windows of a recording overlap.
    jobs : int, default=-1
        Worker processes, joblib style: -1 for all cores.
    cache_dir : path-like, optional
        Folder of the result cache; None disables the cache.
    progress : bool, default=True
        Show tqdm progress bars.
    command : str, optional
        The command line, recorded in the report.

    Returns
    -------
    EvaluationRun

    Raises
    ------
    ConfigError
        For invalid settings.
    RecordingError
        If a data set cannot be read or split.
    """
    from edgemon.training.cache import ResultCache
    from edgemon.training.presets import DEFAULT
    from edgemon.training.report import write_report

    window = DEFAULT.window if window is None else window
    hop = window if hop is None else hop
    for name, value in (("window", window), ("hop", hop)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive number of samples, got {value!r}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs == 0 or jobs < -1:
        raise ConfigError(
            f"jobs must be a number of processes >= 1, or -1 for all cores, got {jobs!r}"
        )
    if not specs:
        raise ConfigError("no data sets to evaluate")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out must be a folder, but {out} is a file")

    started = time.perf_counter()
    cache = ResultCache(cache_dir) if cache_dir is not None else None
    try:
        results = []
        for spec in specs:
            dataset = prepare_dataset(spec, window=window, hop=hop, progress=progress)
            results.append(_run_grid(dataset, grid, cache, jobs, progress))
    finally:
        if cache is not None:
            cache.close()
    run = EvaluationRun(results, grid, time.perf_counter() - started, jobs, [])
    run.files.extend(write_report(run, out, command=command))
    return run


# Running the grid ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Task:
    """Cells that share a fold, a feature configuration, a PCA setting and a seed."""

    split: int
    config: int
    cells: tuple[dict[str, Any], ...]
    keys: tuple[str, ...]


def _run_grid(
    dataset: PreparedDataset, grid: Grid, cache, jobs: int, progress: bool
) -> DatasetResult:
    configs = feature_configs(grid, dataset.study_columns, dataset.candidate_columns)
    rows: dict[str, dict[str, Any]] = {}
    tasks: list[_Task] = []
    cached = 0
    for split in range(len(dataset.plan.splits)):
        for index, config in enumerate(configs):
            context = dataset.context(split, config)
            groups = list(_cell_groups(grid, config, dataset.training_options(config)))
            keys = [[_key(context, cell) for cell in cells] for cells in groups]
            stored = (
                cache.get_many(key for group in keys for key in group) if cache is not None else {}
            )
            for cells, group_keys in zip(groups, keys, strict=True):
                missing = []
                for cell, key in zip(cells, group_keys, strict=True):
                    rows[key] = _row(dataset, split, config, cell, grid.k_values)
                    if key in stored:
                        rows[key].update(stored[key])
                        cached += 1
                    else:
                        missing.append((cell, key))
                if missing:
                    tasks.append(_Task(split, index, *map(tuple, zip(*missing, strict=True))))

    computed = sum(len(task.cells) for task in tasks)
    logger.info(
        "%s: %d cells, %d from the cache, %d to compute in %d tasks",
        dataset.spec.kind,
        len(rows),
        cached,
        computed,
        len(tasks),
    )
    for task, results in _execute(dataset, configs, tasks, jobs, progress):
        for key, result in zip(task.keys, results, strict=True):
            rows[key].update(result)
        if cache is not None:
            cache.put_many(zip(task.keys, results, strict=True))
    return DatasetResult(dataset, configs, list(rows.values()), cached, computed)


def _cell_groups(
    grid: Grid, config: FeatureConfig, training: dict[str, Any]
) -> Iterator[list[dict[str, Any]]]:
    """Yield the cells of one fold and feature configuration, grouped as tasks.

    ``training`` holds the fit options of the ``default`` preset
    (``PreparedDataset.training_options``); every cell of the configuration gets them.
    """
    k_algorithms = [algorithm for algorithm in grid.algorithms if algorithm in K_ALGORITHMS]
    extra = _preset_cells(grid, config)
    for pca in config.pca_settings(grid):
        if k_algorithms:
            for seed in grid.seed_values:
                cells = [
                    {"algorithm": algorithm, "k": k, "pca": pca, "seed": seed, **training}
                    for algorithm in k_algorithms
                    for k in grid.k_values
                ]
                cells += [{**cell, "pca": pca, "seed": seed, **training} for cell in extra]
                yield cells
        if "optics" in grid.algorithms:
            yield [{"algorithm": "optics", "k": None, "pca": pca, "seed": None, **training}]


def _preset_cells(grid: Grid, config: FeatureConfig) -> list[dict[str, Any]]:
    """Return the cells that score the default preset at its own k, if the grid's k range misses it.

    They run for the ``default`` feature set and for the study's twelve
    statistics (``all`` in ``both`` domains), its reference, with the
    preset's algorithm only.  Their rows carry ``extra=True`` and stay out of
    the study's findings and figures.
    """
    from edgemon.training.presets import DEFAULT

    algorithm = preset_algorithm()
    k = DEFAULT.n_clusters
    reference = config.is_candidate or (config.feature_set, config.domain) == ("all", "both")
    if not reference or k is None or k in grid.k_values or algorithm not in grid.algorithms:
        return []
    return [{"algorithm": algorithm, "k": k}]


def preset_algorithm() -> str:
    """Return the grid's name for the default preset's algorithm.

    A mixture uses full covariance, as ``edgemon train`` does by default.
    """
    from edgemon.training.presets import DEFAULT

    return "kmeans" if DEFAULT.algorithm == "kmeans" else "gmm-full"


def _key(context: dict[str, str], cell: dict[str, Any]) -> str:
    from edgemon.training.cache import cell_key

    return cell_key(context, cell)


def _row(
    dataset: PreparedDataset,
    split: int,
    config: FeatureConfig,
    cell: dict[str, Any],
    grid_k: tuple[int, ...],
) -> dict[str, Any]:
    return {
        "dataset": dataset.spec.kind,
        "split": dataset.plan.splits[split].name,
        "features": config.feature_set,
        "domain": config.domain,
        "columns": len(config.columns),
        "pca": format_pca(cell["pca"]),
        "algorithm": cell["algorithm"],
        "k": cell["k"],
        "seed": cell["seed"],
        "extra": cell["k"] is not None and cell["k"] not in grid_k,
    }


def _execute(dataset, configs, tasks: list[_Task], jobs: int, progress: bool):
    """Yield ``(task, results)`` as tasks finish, in any order."""
    if not tasks:
        return
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    from edgemon.training.cells import run_cells

    def calls():
        for number, task in enumerate(tasks):
            config = configs[task.config]
            train, train_labels = dataset.side(task.split, "train", config)
            test, test_labels = dataset.side(task.split, "test", config)
            yield delayed(_numbered)(
                number, run_cells, train, train_labels, test, test_labels, task.cells
            )

    bar = tqdm(
        total=sum(len(task.cells) for task in tasks),
        desc=f"evaluating {dataset.spec.kind}",
        unit="cell",
        disable=not progress,
    )
    with bar:
        for number, results in Parallel(n_jobs=jobs, return_as="generator_unordered")(calls()):
            bar.update(len(results))
            yield tasks[number], results


def _numbered(number: int, function, *args) -> tuple[int, Any]:
    return number, function(*args)


# Command line ------------------------------------------------------------------------------------


def evaluate_from_args(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run ``edgemon evaluate`` with parsed options; return the exit status."""
    out = out if out is not None else sys.stdout
    specs = _specs_from_args(args)
    grid = _grid_from_args(args)
    cache_dir = None if args.no_cache else (args.cache or _default_cache())
    run = evaluate(
        specs,
        grid,
        args.out,
        window=args.window,
        hop=args.hop,
        jobs=args.jobs,
        cache_dir=cache_dir,
        progress=not args.quiet,
        command=_command_line(args),
    )
    cells = run.cached + run.computed
    out.write(
        f"report written to {args.out}: {', '.join(path.name for path in run.files)}\n"
        f"  {cells} cells ({run.cached} from the cache, {run.computed} computed) "
        f"in {run.elapsed:.0f} s\n"
        f"  read it from {Path(args.out) / 'summary.md'}\n"
    )
    return 0


def _specs_from_args(args: argparse.Namespace) -> list[DatasetSpec]:
    if args.all_datasets:
        if args.dataset is not None or args.data is not None:
            raise ConfigError(
                "--all-datasets reads cwru, mfpt and ims from --data-root; "
                "leave out --dataset and --data"
            )
        if args.data_root is None:
            raise ConfigError(
                "--all-datasets requires --data-root, "
                "the folder that contains cwru/, mfpt/ and ims/"
            )
        missing = [kind for kind in DATASETS if not (args.data_root / kind).is_dir()]
        if missing:
            raise ConfigError(
                f"--data-root {args.data_root} has no "
                f"{', '.join(f'{kind}/' for kind in missing)} folder; "
                "it must hold cwru/, mfpt/ and ims/"
            )
        return [DatasetSpec.default(kind, args.data_root / kind) for kind in DATASETS]
    if args.data_root is not None:
        raise ConfigError("--data-root goes with --all-datasets; for one data set use --data")
    if args.dataset is None or args.data is None:
        raise ConfigError("give --dataset and --data, or --all-datasets with --data-root")
    check_data_path(args.dataset, args.data)
    return [DatasetSpec.default(args.dataset, args.data)]


def _grid_from_args(args: argparse.Namespace) -> Grid:
    grid = Grid.quick() if args.quick else Grid()
    changes: dict[str, Any] = {}
    if args.algorithms is not None:
        changes["algorithms"] = parse_choices("--algorithms", args.algorithms, ALGORITHMS)
    if args.features is not None:
        changes["feature_sets"] = parse_choices("--features", args.features, FEATURE_SETS)
    if args.domains is not None:
        changes["domains"] = parse_choices("--domains", args.domains, DOMAINS)
    if args.pca is not None:
        changes["pca"] = parse_pca_settings("--pca", args.pca)
    if args.max_clusters is not None:
        if args.max_clusters < 2:
            raise ConfigError(f"--max-clusters must be at least 2, got {args.max_clusters}")
        changes["max_clusters"] = args.max_clusters
    if args.seeds is not None:
        if args.seeds < 1:
            raise ConfigError(f"--seeds must be a number of seeds >= 1, got {args.seeds}")
        changes["seeds"] = args.seeds
    return replace(grid, **changes)


def _default_cache() -> Path:
    from edgemon.training.cache import default_cache_dir

    return default_cache_dir()


def _command_line(args: argparse.Namespace) -> str:
    """Return the options that decide the report's content, as a command line."""
    parts = ["edgemon", "evaluate"]
    if args.all_datasets:
        parts += ["--all-datasets", "--data-root", str(args.data_root)]
    else:
        parts += ["--dataset", args.dataset, "--data", str(args.data)]
    parts += ["--out", str(args.out)]
    if args.quick:
        parts.append("--quick")
    for option, value in (
        ("--algorithms", args.algorithms),
        ("--features", args.features),
        ("--domains", args.domains),
        ("--pca", args.pca),
        ("--max-clusters", args.max_clusters),
        ("--seeds", args.seeds),
        ("--window", args.window),
        ("--hop", args.hop),
    ):
        if value is not None:
            parts += [option, str(value)]
    return shlex.join(parts)
