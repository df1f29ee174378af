"""``edgemon train``: from command-line options to an exported model file."""

from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
from typing import TextIO

from edgemon.errors import ConfigError

__all__ = ["parse_clusters", "parse_loads", "parse_pca", "train_from_args"]

logger = logging.getLogger(__name__)

#: Channel and sample rate a data set is trained on unless the user picks others.
DATASET_DEFAULTS: dict[str, tuple[tuple[str, ...], float | None]] = {
    "cwru": (("DE",), 12000.0),
    "mfpt": (("gs",), None),
    "ims": (("ch5", "ch6"), None),
}


def train_from_args(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run ``edgemon train`` with parsed options; return the exit status."""
    from edgemon.features import FeatureExtractor
    from edgemon.training.datasets import load_dataset
    from edgemon.training.export import export_model
    from edgemon.training.fit import DEFAULT_NOVELTY_QUANTILE, train_model
    from edgemon.training.presets import DEFAULT

    out = out if out is not None else sys.stdout
    channels, sample_rate = _channels_and_rate(args)
    names = DEFAULT.features if args.features is None else _split_names(args.features)
    n_clusters = DEFAULT.n_clusters if args.clusters is None else parse_clusters(args.clusters)

    recordings = load_dataset(
        args.dataset, args.data, channels=channels, sample_rate=sample_rate,
        loads=parse_loads(args.loads), progress=not args.quiet,
    )
    if not recordings:
        raise ConfigError(f"no recordings found in {args.data} for --dataset {args.dataset}")
    rate = recordings[0].recording.sample_rate
    extractor = FeatureExtractor(names, rate, args.window, channels, **DEFAULT.feature_options())
    trained = train_model(
        recordings,
        features=extractor,
        window=args.window,
        hop=args.hop,
        algorithm=args.algorithm,
        n_clusters=n_clusters,
        covariance_type=args.covariance,
        pca=parse_pca(args.pca),
        seed=args.seed,
        novelty_quantile=args.novelty_quantile or DEFAULT_NOVELTY_QUANTILE,
        dataset=args.dataset,
        progress=not args.quiet,
    )
    metadata = export_model(trained, args.out)
    _print_summary(out, args, metadata, trained, len(recordings))
    return 0


def _channels_and_rate(args: argparse.Namespace) -> tuple[tuple[str, ...], float | None]:
    default_channels, default_rate = DATASET_DEFAULTS.get(args.dataset, ((), None))
    channels = tuple(args.channels) if args.channels else default_channels
    if not channels:
        raise ConfigError(f"--channel is required for --dataset {args.dataset}: name the channel(s) to train on")
    rate = args.sample_rate if args.sample_rate is not None else default_rate
    if rate is not None and rate <= 0:
        raise ConfigError(f"--sample-rate must be a positive number of Hz, got {rate:g}")
    return channels, rate


def _split_names(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise ConfigError(f"--features must list at least one feature name, got {text!r}")
    return names


def parse_clusters(text: str) -> int | None:
    """Parse ``--clusters``: ``auto`` (None) or an integer >= 2."""
    if text.strip().lower() == "auto":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 2:
        raise ConfigError(f"--clusters must be an integer >= 2 or 'auto', got {text!r}")
    return value


def parse_loads(text: str | None) -> tuple[int, ...] | None:
    """Parse ``--loads`` such as ``0,1,2`` into motor loads in hp."""
    if text is None:
        return None
    try:
        loads = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        loads = ()
    if not loads or any(load < 0 for load in loads):
        raise ConfigError(f"--loads must be comma-separated motor loads in hp, e.g. 0,1,2, got {text!r}")
    return loads


def parse_pca(text: str | None) -> int | float | None:
    """Parse ``--pca``: a number of components (int >= 1) or a variance share in (0, 1)."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value.is_integer() and value >= 1:
        return int(value)
    if 0 < value < 1:
        return value
    raise ConfigError(f"--pca must be a number of components >= 1 or a variance share in (0, 1), got {text!r}")


def _print_summary(out: TextIO, args: argparse.Namespace, metadata, trained, n_files: int) -> None:
    labels = Counter(trained.labels.tolist())
    correct = sum(
        int(label == metadata.states[cluster])
        for label, cluster in zip(trained.labels.tolist(), trained.assignments.tolist(), strict=True)
    )
    out.write(
        f"model {metadata.model_id} written to {args.out}\n"
        f"  trained on {metadata.training.n_windows} windows from {n_files} files "
        f"({', '.join(f'{name} {count}' for name, count in sorted(labels.items()))})\n"
        f"  {metadata.algorithm}, {metadata.n_clusters} clusters ({metadata.selection.method}), "
        f"{len(metadata.columns)} features, window {metadata.window} at {metadata.sample_rate:g} Hz, hop {metadata.hop}\n"
        f"  training windows whose cluster's state matches their label: {correct / len(trained.labels):.1%}\n"
        f"  novelty threshold ({metadata.novelty.kind}): {metadata.novelty.threshold:.4g}\n"
        f"  inspect it with: edgemon inspect {args.out}\n"
    )
