"""Argument parsers of the ``edgemon`` sub-commands.

Each sub-command's options are declared here with their help text and
defaults; the functions that run them are in :mod:`edgemon.cli.handlers`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgemon import __version__
from edgemon.cli import handlers

__all__ = ["DEFAULT_BROKER", "build_parser"]

DEFAULT_BROKER = "mqtt://127.0.0.1:1883"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgemon",
        description="Streaming condition monitoring for vibration sensors on edge devices.",
    )
    parser.add_argument("--version", action="version", version=f"edgemon {__version__}")
    parser.add_argument(
        "--log-level",
        default=None,
        choices=("debug", "info", "warning", "error"),
        help="log messages of this level and above to stderr (default: $EDGEMON_LOG_LEVEL, "
        "else warning for demo and info for the other commands)",
    )
    parser.set_defaults(default_log_level="info")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    for add in (
        _add_demo,
        _add_train,
        _add_run,
        _add_replay,
        _add_watch,
        _add_inspect,
        _add_evaluate,
    ):
        add(commands)
    return parser


def _add_demo(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "demo",
        help="train on the bundled CWRU excerpt and replay held-out data through the full pipeline",
        description="Train a model on part of the bundled CWRU excerpt, then replay the held-out "
        "part through the daemon's pipeline, publishing to the broker when one is reachable.",
    )
    p.add_argument(
        "--mqtt",
        default=DEFAULT_BROKER,
        metavar="URL",
        help=f"broker to publish to (default: {DEFAULT_BROKER})",
    )
    p.add_argument(
        "--speed", type=float, default=4.0, help="replay speed: 1 real time, 0 unpaced (default: 4)"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("edgemon-demo"),
        metavar="DIR",
        help="folder for the model and the outbox (default: ./edgemon-demo)",
    )
    p.set_defaults(handler=handlers.run_demo, default_log_level="warning")


def _add_train(commands: argparse._SubParsersAction) -> None:
    from edgemon.training.command import DATASET_DEFAULTS
    from edgemon.training.presets import DEFAULT

    p = commands.add_parser(
        "train",
        help="train a model on labelled recordings and export it as ONNX",
        description="Compute features on labelled recordings, fit a clustering model, name each "
        "cluster by the majority label of its windows, and export it as one .onnx file. "
        "With --dataset files, also pass --channel, --shaft-rpm (the default features include "
        "envelope levels at the bearing defect orders) and, when the recordings' sample rates "
        "differ, --sample-rate.",
    )
    p.add_argument(
        "--dataset",
        required=True,
        choices=("cwru", "mfpt", "ims", "files"),
        help="how to read labels: a known data set's file naming, or a manifest ('files')",
    )
    p.add_argument(
        "--data",
        required=True,
        type=Path,
        metavar="PATH",
        help="folder of the data set, or the manifest file (CSV or TOML) for --dataset files",
    )
    p.add_argument(
        "--channel",
        action="append",
        dest="channels",
        metavar="NAME",
        help=(
            "channel to train on; repeat for several (default: "
            + ", ".join(
                f"{' and '.join(names)} for {kind}" for kind, (names, _) in DATASET_DEFAULTS.items()
            )
            + "; required for files)"
        ),
    )
    p.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="FILE",
        help="model file to write, e.g. model.onnx",
    )
    p.add_argument(
        "--algorithm",
        choices=("kmeans", "gmm"),
        default=DEFAULT.algorithm,
        help=f"clustering algorithm (default: {DEFAULT.algorithm})",
    )
    p.add_argument(
        "--clusters",
        default=None,
        metavar="K",
        help=(
            "number of clusters, or 'auto' (BIC for gmm, silhouette for kmeans) (default: "
            f"{DEFAULT.n_clusters or 'auto'}, capped at one cluster per "
            f"{DEFAULT.min_windows_per_cluster} training windows; a given K is not capped)"
        ),
    )
    p.add_argument(
        "--covariance",
        choices=("full", "tied", "diag", "spherical"),
        default="full",
        help="GMM covariance type (default: full)",
    )
    p.add_argument(
        "--window",
        type=int,
        default=DEFAULT.window,
        help=f"samples per window (default: {DEFAULT.window})",
    )
    p.add_argument(
        "--hop",
        type=int,
        default=DEFAULT.hop,
        help=f"samples between window starts (default: {DEFAULT.hop})",
    )
    p.add_argument(
        "--features",
        default=None,
        metavar="NAMES",
        help=(
            "comma-separated feature names or groups, e.g. 'time.all,freq.all' (default: relative "
            "third-octave band levels and envelope levels at the defect orders, see "
            "docs/features.md)"
        ),
    )
    p.add_argument(
        "--shaft-rpm",
        type=float,
        default=None,
        metavar="RPM",
        help=(
            "the machine's shaft speed, for envelope levels at defect orders (default: 1797 for "
            "cwru, 1500 for mfpt, 2000 for ims; required for files unless --features leaves out "
            "env.*)"
        ),
    )
    p.add_argument(
        "--defect-orders",
        default=None,
        metavar="LIST",
        help=(
            "bearing defect frequencies as orders of shaft speed, comma-separated (default: the "
            "SKF 6205 of the CWRU rig: 5.4152,3.5848,7.1696,4.7135,0.39828,1)"
        ),
    )
    p.add_argument(
        "--envelope-band",
        default=None,
        metavar="LOW-HIGH",
        help=(
            "band-pass before envelope demodulation, Hz, around a structural resonance (default: "
            "2500-4000)"
        ),
    )
    p.add_argument(
        "--sample-rate",
        type=float,
        default=None,
        metavar="HZ",
        help=(
            "resample every recording to this rate (default: 12000 for cwru, else the recordings' "
            "own rate, which must then be the same for all)"
        ),
    )
    p.add_argument(
        "--loads",
        default=None,
        metavar="LIST",
        help="cwru only: motor loads in hp to train on, e.g. 0,1,2 (default: all)",
    )
    p.add_argument(
        "--pca",
        default=None,
        metavar="N",
        help="PCA before clustering: a number of components, or a variance share in (0, 1)",
    )
    p.add_argument(
        "--novelty-quantile",
        type=float,
        default=None,
        metavar="Q",
        help=(
            "quantile of the training novelty scores that anchors the 'unknown' threshold "
            "(default: 0.99)"
        ),
    )
    p.add_argument(
        "--novelty-margin",
        type=float,
        default=None,
        metavar="M",
        help="the threshold is q + M * (q - median) of the training scores (default: 1.0)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=handlers.run_train)


def _add_run(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "run",
        help="run the monitoring daemon from a configuration file",
        description="Run the daemon until SIGINT or SIGTERM.",
    )
    p.add_argument(
        "--config",
        required=True,
        type=Path,
        metavar="FILE",
        help="TOML configuration, e.g. /etc/edgemon/edgemon.toml (see deploy/edgemon.toml)",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="validate the configuration and the models, print a summary and exit",
    )
    p.set_defaults(handler=handlers.run_run)


def _add_mqtt_options(p: argparse.ArgumentParser, default: str | None) -> None:
    hint = f"(default: {default})" if default else "(default: print states instead of publishing)"
    p.add_argument(
        "--mqtt",
        default=default,
        metavar="URL",
        help=f"broker URL: mqtt://, mqtts://, ws:// or wss:// {hint}",
    )
    p.add_argument(
        "--topic-prefix", default="edgemon", help="first topic levels (default: edgemon)"
    )
    p.add_argument("--username", default=None, help="MQTT user name")
    p.add_argument(
        "--password-env",
        default=None,
        metavar="VAR",
        help="environment variable that contains the MQTT password",
    )
    p.add_argument(
        "--password-file", default=None, metavar="FILE", help="file that contains the MQTT password"
    )
    p.add_argument(
        "--ca", default=None, metavar="FILE", help="CA certificate (PEM) for mqtts:// and wss://"
    )
    p.add_argument(
        "--protocol", choices=("3.1.1", "5"), default="5", help="MQTT protocol version (default: 5)"
    )


def _add_replay(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "replay",
        help="replay recordings through the daemon's pipeline and exit at the end",
        description="Replay recorded files through the same pipeline as 'edgemon run'.",
    )
    p.add_argument(
        "--model", required=True, type=Path, metavar="FILE", help="model file from 'edgemon train'"
    )
    p.add_argument(
        "--input",
        required=True,
        action="append",
        dest="inputs",
        type=Path,
        metavar="FILE",
        help="recording to replay; repeat to replay several in order",
    )
    p.add_argument(
        "--channel",
        action="append",
        dest="channels",
        metavar="NAME",
        help=(
            "channel to read, or FILE=MODEL to read the file's channel FILE as the model's "
            "channel MODEL; repeat for several; the same channels are read from every input "
            "(default: the model's channels)"
        ),
    )
    p.add_argument(
        "--file-sample-rate",
        type=float,
        default=None,
        metavar="HZ",
        help="the files' own sample rate, for CSV and .npy files that do not state it",
    )
    p.add_argument("--device", default="replay", help="device name in topics (default: replay)")
    p.add_argument(
        "--sensor",
        default=None,
        help="sensor name in topics (default: the first channel, lowercase)",
    )
    p.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="1 real time, 10 ten times faster, 0 as fast as possible (default: 0)",
    )
    p.add_argument(
        "--start",
        type=float,
        default=0.0,
        metavar="S",
        help="seconds into each recording where the replay starts (default: 0)",
    )
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="S",
        help="seconds to replay from --start (default: to the end)",
    )
    p.add_argument(
        "--hop",
        type=int,
        default=None,
        help="samples between window starts (default: the model's hop)",
    )
    p.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help=(
            "folder of the outbox (default: $XDG_STATE_HOME/edgemon/replay/HOST-PORT, "
            "one per broker)"
        ),
    )
    p.add_argument(
        "--flush-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help=(
            "how long to wait at the end for the broker to acknowledge every state; "
            "exit status 1 if it has not (default: 30)"
        ),
    )
    p.add_argument(
        "--backend",
        choices=("auto", "onnxruntime", "numpy"),
        default="auto",
        help="model backend (default: auto)",
    )
    p.add_argument(
        "--json", action="store_true", help="without --mqtt: print JSON payloads instead of lines"
    )
    _add_mqtt_options(p, default=None)
    p.set_defaults(handler=handlers.run_replay)


def _add_watch(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "watch",
        help="print the states that devices publish",
        description="Subscribe to state messages and print one line per message.",
    )
    p.add_argument("--device", default="+", help="device to watch, or + for all (default: +)")
    p.add_argument("--sensor", default="+", help="sensor to watch, or + for all (default: +)")
    p.add_argument("--json", action="store_true", help="print the raw JSON payloads, one per line")
    _add_mqtt_options(p, default=DEFAULT_BROKER)
    p.set_defaults(handler=handlers.run_watch)


def _add_inspect(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "inspect",
        help="print a model file's metadata",
        description="Print what a model file contains and how it was trained.",
    )
    p.add_argument("model", type=Path, metavar="MODEL", help="model file (.onnx)")
    p.add_argument("--json", action="store_true", help="print the raw metadata as JSON")
    p.set_defaults(handler=handlers.run_inspect)


def _add_evaluate(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "evaluate",
        help="compare clustering settings on labelled recordings and write a report",
        description=(
            "Run a grid of clustering settings (algorithm, features, domain, PCA, number of "
            "clusters, seeds) on recordings split by load or time, score each against the "
            "condition labels, and write tables, plots and a summary to --out. "
            "See docs/evaluation.md."
        ),
    )
    data = p.add_argument_group("data")
    data.add_argument(
        "--dataset",
        choices=("cwru", "mfpt", "ims"),
        default=None,
        help="data set kind; it decides the channels, the sample rate and how folds are made",
    )
    data.add_argument(
        "--data", type=Path, default=None, metavar="DIR", help="folder of the --dataset recordings"
    )
    data.add_argument(
        "--all-datasets",
        action="store_true",
        help="evaluate cwru, mfpt and ims from --data-root into one report",
    )
    data.add_argument(
        "--data-root",
        type=Path,
        default=None,
        metavar="DIR",
        help="with --all-datasets: folder holding cwru/, mfpt/ and ims/",
    )
    p.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="DIR",
        help="report folder (created; its report files are replaced)",
    )
    grid = p.add_argument_group(
        "grid (comma-separated lists; default: the full grid, or the small one with --quick)"
    )
    grid.add_argument(
        "--algorithms",
        default=None,
        metavar="LIST",
        help=(
            "kmeans, gmm-full, gmm-tied, gmm-diag, gmm-spherical, optics; gmm means all four "
            "mixtures"
        ),
    )
    grid.add_argument(
        "--features",
        default=None,
        metavar="LIST",
        help=(
            "mean, median, std, iqr, skewness, kurtosis, averaging, variance, shape, all, default "
            "(the preset of 'edgemon train'); statistics and groups are aliases"
        ),
    )
    grid.add_argument(
        "--domains", default=None, metavar="LIST", help="time, freq, both (default: all three)"
    )
    grid.add_argument(
        "--pca",
        default=None,
        metavar="LIST",
        help=(
            "none, a number of components, or a share of explained variance in (0, 1) (default: "
            "none,2,0.9)"
        ),
    )
    grid.add_argument(
        "--max-clusters",
        type=int,
        default=None,
        metavar="K",
        help="try every number of clusters from 2 to K (default: 8; 4 with --quick)",
    )
    grid.add_argument(
        "--seeds",
        type=int,
        default=None,
        metavar="N",
        help="random seeds per setting (default: 3; 1 with --quick)",
    )
    grid.add_argument(
        "--quick", action="store_true", help="a small grid that runs in about a minute"
    )
    p.add_argument(
        "--window",
        type=int,
        default=None,
        metavar="N",
        help="samples per window (default: the window of 'edgemon train')",
    )
    p.add_argument(
        "--hop",
        type=int,
        default=None,
        metavar="N",
        help="samples between window starts (default: the window, so windows do not overlap)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=-1,
        metavar="N",
        help="worker processes; -1 uses all cores (default: -1)",
    )
    p.add_argument(
        "--cache",
        type=Path,
        default=None,
        metavar="DIR",
        help=(
            "result cache folder (default: $XDG_CACHE_HOME/edgemon/evaluate, else "
            "~/.cache/edgemon/evaluate)"
        ),
    )
    p.add_argument("--no-cache", action="store_true", help="compute every cell and store nothing")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=handlers.run_evaluate)
