"""``edgemon train``: from command-line options to an exported model file."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from edgemon.errors import ConfigError

if TYPE_CHECKING:
    from edgemon.training.presets import Preset

__all__ = [
    "check_data_path",
    "check_sample_rates",
    "parse_band",
    "parse_clusters",
    "parse_loads",
    "parse_orders",
    "parse_pca",
    "train_from_args",
    "train_preset",
]

#: Channels and sample rate a data set is trained on unless the user picks others.
DATASET_DEFAULTS: dict[str, tuple[tuple[str, ...], float | None]] = {
    "cwru": (("DE",), 12000.0),
    "mfpt": (("gs",), None),
    "ims": (("ch5", "ch6"), None),
}
#: Nominal shaft speed of each data set's machine, rpm: CWRU at 0 hp, MFPT 25 Hz, IMS 2000 rpm.
DATASET_SHAFT_RPM: dict[str, float] = {"cwru": 1797.0, "mfpt": 1500.0, "ims": 2000.0}


def train_preset(
    recordings: Sequence,
    path: str | Path,
    *,
    preset: Preset | None = None,
    shaft_rpm: float | None = None,
    dataset: str = "files",
    progress: bool = False,
    **overrides: Any,
):
    """Train with a preset's settings and export the model to ``path``.

    This is what ``edgemon train`` and ``edgemon demo`` run.

    Parameters
    ----------
    recordings : sequence of LabelledRecording
        All at one sample rate, with the same channels.
    path : path-like
        Model file to write.
    preset : Preset, default=DEFAULT
    shaft_rpm : float, optional
        Shaft speed of the machine, rpm; required when the features include
        envelope levels at defect orders.
    dataset : str
        Data set kind recorded in the metadata.
    **overrides
        Keyword arguments of :func:`edgemon.training.fit.train_model` that
        replace the preset's (``algorithm``, ``n_clusters``, ``pca``, ...).
        Without ``n_clusters``, the preset's number is fitted, capped on
        small training sets and recorded as selection method ``"preset"``.

    Returns
    -------
    TrainedModel, ModelMetadata
    """
    from edgemon.features import FeatureExtractor
    from edgemon.training.export import export_model
    from edgemon.training.fit import train_model
    from edgemon.training.presets import DEFAULT

    preset = preset or DEFAULT
    first = recordings[0].recording
    shaft_hz = None if shaft_rpm is None else shaft_rpm / 60.0
    if preset.uses_envelope and shaft_hz is None:
        raise ConfigError(
            "the features include envelope levels at bearing defect orders, which need the "
            "machine's shaft speed: pass --shaft-rpm, or choose --features without env.*"
        )
    extractor = FeatureExtractor(
        preset.features,
        first.sample_rate,
        preset.window,
        first.channels,
        **preset.feature_options(first.sample_rate, shaft_hz),
    )
    options: dict[str, Any] = {
        "algorithm": preset.algorithm,
        "balance_labels": preset.balance_labels,
        "feature_weights": preset.feature_weights,
    }
    if "n_clusters" not in overrides:
        # The preset's number is capped on small training sets; a number the
        # caller gives is fitted as it is.
        options["n_clusters"] = preset.n_clusters
        if preset.n_clusters is not None:
            options["min_windows_per_cluster"] = preset.min_windows_per_cluster
    options.update(overrides)
    trained = train_model(
        recordings,
        features=extractor,
        window=preset.window,
        hop=preset.hop,
        dataset=dataset,
        progress=progress,
        **options,
    )
    return trained, export_model(trained, path)


def train_from_args(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run ``edgemon train`` with parsed options; return the exit status."""
    from edgemon.training.datasets import load_dataset
    from edgemon.training.fit import DEFAULT_NOVELTY_MARGIN, DEFAULT_NOVELTY_QUANTILE
    from edgemon.training.presets import DEFAULT

    out = out if out is not None else sys.stdout
    channels, sample_rate = _channels_and_rate(args)
    preset = DEFAULT.with_changes(window=args.window, hop=args.hop)
    if args.features is not None:
        preset = preset.with_changes(features=_split_names(args.features))
    if args.envelope_band is not None:
        preset = preset.with_changes(envelope_band=parse_band(args.envelope_band))
    if args.defect_orders is not None:
        preset = preset.with_changes(defect_orders=parse_orders(args.defect_orders))
    shaft_rpm = (
        args.shaft_rpm if args.shaft_rpm is not None else DATASET_SHAFT_RPM.get(args.dataset)
    )
    if shaft_rpm is not None and not shaft_rpm > 0:
        raise ConfigError(f"--shaft-rpm must be a positive speed in rpm, got {shaft_rpm:g}")

    check_data_path(args.dataset, args.data)
    recordings = load_dataset(
        args.dataset,
        args.data,
        channels=channels,
        sample_rate=sample_rate,
        loads=parse_loads(args.loads),
        progress=not args.quiet,
    )
    if not recordings:
        raise ConfigError(f"no recordings found in {args.data} for --dataset {args.dataset}")
    if sample_rate is None:
        check_sample_rates(recordings)
    overrides: dict[str, Any] = {
        "algorithm": args.algorithm,
        "covariance_type": args.covariance,
        "pca": parse_pca(args.pca),
        "seed": args.seed,
        "novelty_quantile": args.novelty_quantile or DEFAULT_NOVELTY_QUANTILE,
        "novelty_margin": DEFAULT_NOVELTY_MARGIN
        if args.novelty_margin is None
        else args.novelty_margin,
    }
    if args.clusters is not None:
        overrides["n_clusters"] = parse_clusters(args.clusters)
    trained, metadata = train_preset(
        recordings,
        args.out,
        preset=preset,
        shaft_rpm=shaft_rpm,
        dataset=args.dataset,
        progress=not args.quiet,
        **overrides,
    )
    _print_summary(out, args, metadata, trained, len(recordings))
    return 0


def check_data_path(kind: str, path: Path) -> None:
    """Raise ConfigError, naming ``--data`` and what it must contain, if ``path`` is missing."""
    from edgemon.data import CWRU_EXCERPT
    from edgemon.training.datasets import DATASET_CONTENTS

    if path.exists():
        return
    raise ConfigError(
        f"data set not found: {path}; pass --data with {DATASET_CONTENTS[kind]}. The full "
        f"CWRU, MFPT and IMS recordings are not part of edgemon, but a CWRU excerpt is "
        f"installed in {CWRU_EXCERPT}"
    )


def check_sample_rates(recordings: Sequence) -> None:
    """Raise ConfigError, naming ``--sample-rate``, if the recordings' rates differ."""
    first_at_rate: dict[float, str] = {}
    for item in recordings:
        first_at_rate.setdefault(item.recording.sample_rate, item.recording.name)
    if len(first_at_rate) < 2:
        return
    rates = ", ".join(f"{name} at {rate:g} Hz" for rate, name in sorted(first_at_rate.items()))
    raise ConfigError(
        f"the recordings have {len(first_at_rate)} different sample rates ({rates}); pass "
        f"--sample-rate HZ to resample them all to one rate, e.g. --sample-rate "
        f"{min(first_at_rate):g}"
    )


def parse_band(text: str) -> tuple[float, float]:
    """Parse ``--envelope-band`` such as ``2500-4000`` into (low, high) Hz."""
    try:
        low, high = (float(part) for part in text.split("-"))
    except ValueError:
        low = high = -1.0
    if not 0 < low < high:
        raise ConfigError(
            "--envelope-band must be LOW-HIGH in Hz with 0 < LOW < HIGH, e.g. 2500-4000, got "
            f"{text!r}"
        )
    return low, high


def parse_orders(text: str) -> tuple[float, ...]:
    """Parse ``--defect-orders`` such as ``5.4152,3.5848`` into orders of shaft speed."""
    try:
        orders = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        orders = ()
    if not orders or any(not order > 0 for order in orders):
        raise ConfigError(
            f"--defect-orders must be comma-separated positive orders of shaft speed, "
            f"e.g. 5.4152,3.5848,4.7135, got {text!r}"
        )
    return orders


def _channels_and_rate(args: argparse.Namespace) -> tuple[tuple[str, ...], float | None]:
    default_channels, default_rate = DATASET_DEFAULTS.get(args.dataset, ((), None))
    channels = tuple(args.channels) if args.channels else default_channels
    if not channels:
        raise ConfigError(
            f"--channel is required for --dataset {args.dataset}: name the channel(s) to train on"
        )
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
        raise ConfigError(
            f"--loads must be comma-separated motor loads in hp, e.g. 0,1,2, got {text!r}"
        )
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
    raise ConfigError(
        f"--pca must be a number of components >= 1 or a variance share in (0, 1), got {text!r}"
    )


def _print_summary(out: TextIO, args: argparse.Namespace, metadata, trained, n_files: int) -> None:
    labels = Counter(trained.labels.tolist())
    correct = sum(
        int(label == metadata.states[cluster])
        for label, cluster in zip(
            trained.labels.tolist(), trained.assignments.tolist(), strict=True
        )
    )
    out.write(
        f"model {metadata.model_id} written to {args.out}\n"
        f"  trained on {metadata.training.n_windows} windows from {n_files} files "
        f"({', '.join(f'{name} {count}' for name, count in sorted(labels.items()))})\n"
        f"  {metadata.algorithm}, {metadata.n_clusters} clusters ({metadata.selection.method}), "
        f"{len(metadata.columns)} features, window {metadata.window} at "
        f"{metadata.sample_rate:g} Hz, hop {metadata.hop}\n"
        "  training windows whose cluster's state matches their label: "
        f"{correct / len(trained.labels):.1%}\n"
        f"  novelty threshold ({metadata.novelty.kind}): {metadata.novelty.threshold:.4g}\n"
        f"  inspect it with: edgemon inspect {args.out}\n"
    )
