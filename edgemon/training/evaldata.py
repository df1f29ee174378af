"""Feature matrices of a data set's segments and its folds, ready for the evaluation grid.

:func:`prepare_dataset` reads the recordings the way ``edgemon train`` reads
them, splits them into folds (:mod:`edgemon.training.splits`), cuts every
segment into windows and computes two feature matrices per segment with
:class:`edgemon.features.FeatureExtractor`, the code the daemon runs: the
study's twelve statistics (``time.all`` and ``freq.all``, from which the
grid selects columns) and the features of the ``default`` preset.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgemon.errors import ConfigError, RecordingError
from edgemon.training.grid import FeatureConfig
from edgemon.training.splits import SplitPlan, make_splits

__all__ = ["DATASETS", "STUDY_FEATURES", "DatasetSpec", "PreparedDataset", "prepare_dataset"]

logger = logging.getLogger(__name__)

#: Data set kinds that ``edgemon evaluate`` can split into folds, in report order.
DATASETS = ("cwru", "mfpt", "ims")
#: The study's statistics in both domains; the grid selects columns from them.
STUDY_FEATURES = ("time.all", "freq.all")


@dataclass(frozen=True)
class DatasetSpec:
    """The recordings of one data set and how to read them."""

    kind: str
    path: Path
    #: Channels to read, e.g. ``("DE",)``.
    channels: tuple[str, ...]
    #: Hz to resample every recording to, or None to keep each file's rate.
    sample_rate: float | None

    @classmethod
    def default(cls, kind: str, path: str | os.PathLike[str]) -> DatasetSpec:
        """Return the channels and sample rate that ``edgemon train`` uses for the kind.

        CWRU: channel DE at 12 kHz (the 48 kHz normal baseline is resampled);
        MFPT: channel gs at its own 48,828 Hz; IMS: channels ch5 and ch6
        (bearing 3) at 20,480 Hz.
        """
        from edgemon.training.command import DATASET_DEFAULTS

        if kind not in DATASETS:
            raise ConfigError(f"--dataset must be one of {', '.join(DATASETS)}, got {kind!r}")
        channels, sample_rate = DATASET_DEFAULTS[kind]
        return cls(kind, Path(path), tuple(channels), sample_rate)


@dataclass(frozen=True, eq=False)
class PreparedDataset:
    """Feature matrices of every segment of a data set, and its folds."""

    spec: DatasetSpec
    plan: SplitPlan
    #: File name, sha256 and label of each recording, in loading order.
    files: tuple[dict[str, Any], ...]
    #: Hz, after resampling.
    sample_rate: float
    window: int
    hop: int
    #: Per segment: the study's statistics, shape (n_windows, len(study_columns)).
    study: tuple[np.ndarray, ...]
    study_columns: tuple[str, ...]
    study_spec: dict[str, Any]
    #: Per segment: the ``default`` preset's features; None when they cannot be computed.
    candidate: tuple[np.ndarray, ...] | None
    candidate_columns: tuple[str, ...] | None
    candidate_spec: dict[str, Any] | None
    #: The reason the ``default`` features are missing, or None.
    candidate_note: str | None
    #: Per segment: the label of each window.
    labels: tuple[np.ndarray, ...]

    @property
    def labels_present(self) -> tuple[str, ...]:
        """The distinct labels, sorted."""
        return tuple(sorted({str(label) for labels in self.labels for label in labels[:1]}))

    @property
    def labelled(self) -> bool:
        """True when the data set has two or more labels to score clusters against."""
        return len(self.labels_present) >= 2

    def side(self, split: int, side: str, config: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
        """Return the features and labels of the ``"train"`` or ``"test"`` side of a fold."""
        segments = getattr(self.plan.splits[split], side)
        if config.is_candidate:
            matrices, columns = self.candidate, self.candidate_columns
        else:
            matrices, columns = self.study, self.study_columns
        indices = [columns.index(column) for column in config.columns]
        features = np.concatenate([matrices[i][:, indices] for i in segments])
        labels = np.concatenate([self.labels[i] for i in segments])
        return features, labels

    def training_options(self, config: FeatureConfig) -> dict[str, Any]:
        """Return how ``edgemon train`` fits these columns, as cell settings.

        The study's feature sets get none.  The ``default`` set is fitted with
        its preset's settings: ``balance`` (every label weighted equally) and
        ``weights`` (one factor per standardised column).
        """
        if not config.is_candidate:
            return {}
        from edgemon.training.fit import _resolve_weights
        from edgemon.training.presets import DEFAULT

        weights = _resolve_weights(DEFAULT.feature_weights, config.columns)
        return {
            "balance": bool(DEFAULT.balance_labels),
            "weights": None if weights is None else [float(w) for w in weights],
        }

    def context(self, split: int, config: FeatureConfig) -> dict[str, str]:
        """Return what a fold's cells depend on, as a digest for the cache key."""
        from edgemon.training.cells import OPTICS_ALGORITHM, OPTICS_MIN_SAMPLES

        fold = self.plan.splits[split]

        def identity(index: int) -> list:
            segment = self.plan.segments[index]
            return [
                self.files[segment.recording]["sha256"],
                segment.start,
                segment.stop,
                segment.label,
            ]

        document = {
            "data": {
                "kind": self.spec.kind,
                "channels": self.spec.channels,
                "sample_rate": self.spec.sample_rate,
            },
            "windows": {"window": self.window, "hop": self.hop},
            "features": self.candidate_spec if config.is_candidate else self.study_spec,
            "feature_set": [config.feature_set, config.domain],
            "columns": config.columns,
            "train": [identity(i) for i in fold.train],
            "test": [identity(i) for i in fold.test],
            "optics": {"min_samples": OPTICS_MIN_SAMPLES, "algorithm": OPTICS_ALGORITHM},
        }
        text = json.dumps(document, sort_keys=True, default=str)
        return {"digest": hashlib.sha256(text.encode("utf-8")).hexdigest()}


def prepare_dataset(
    spec: DatasetSpec, *, window: int, hop: int, progress: bool = False
) -> PreparedDataset:
    """Read a data set, split it and compute the feature matrices of every segment.

    Raises
    ------
    RecordingError
        If the recordings cannot be read, or a segment is shorter than a window.
    ConfigError
        If the recordings cannot be split.
    """
    from edgemon.features import FeatureExtractor
    from edgemon.training.datasets import load_dataset

    recordings = load_dataset(
        spec.kind,
        spec.path,
        channels=spec.channels,
        sample_rate=spec.sample_rate,
        progress=progress,
    )
    plan = make_splits(spec.kind, recordings)
    rate = recordings[0].recording.sample_rate
    study = FeatureExtractor(STUDY_FEATURES, rate, window, spec.channels)
    candidate, note = _candidate_extractor(spec, rate, window)

    study_matrices, candidate_matrices, labels = [], [], []
    for segment in plan.segments:
        item = recordings[segment.recording]
        windows = _usable_windows(
            item.recording.samples[segment.start : segment.stop], window, hop, segment.name
        )
        matrix = study.transform(windows)
        preset = (
            candidate.transform(windows) if candidate is not None else np.empty((len(windows), 0))
        )
        finite = np.all(np.isfinite(matrix), axis=1) & np.all(np.isfinite(preset), axis=1)
        if not finite.all():
            logger.warning(
                "dropped %d windows of %s with non-finite features",
                int((~finite).sum()),
                segment.name,
            )
        study_matrices.append(matrix[finite])
        candidate_matrices.append(preset[finite])
        labels.append(np.full(int(finite.sum()), item.label))

    files = tuple(
        {
            "name": item.recording.name,
            "sha256": item.sha256 or "",
            "label": item.label,
            **_load_attr(item),
        }
        for item in recordings
    )
    return PreparedDataset(
        spec=spec,
        plan=plan,
        files=files,
        sample_rate=float(rate),
        window=window,
        hop=hop,
        study=tuple(study_matrices),
        study_columns=tuple(study.columns),
        study_spec=study.to_dict(),
        candidate=tuple(candidate_matrices) if candidate is not None else None,
        candidate_columns=tuple(candidate.columns) if candidate is not None else None,
        candidate_spec=candidate.to_dict() if candidate is not None else None,
        candidate_note=note,
        labels=tuple(labels),
    )


def _candidate_extractor(spec: DatasetSpec, rate: float, window: int):
    """Return the default preset's extractor for a data set, or None and the reason.

    The shaft speed for envelope features is the data set's nominal speed,
    as ``edgemon train`` takes it.
    """
    from edgemon.features import FeatureExtractor
    from edgemon.training.command import DATASET_SHAFT_RPM
    from edgemon.training.presets import DEFAULT

    rpm = DATASET_SHAFT_RPM.get(spec.kind)
    shaft_hz = None if rpm is None else rpm / 60.0
    try:
        options = DEFAULT.feature_options(rate, shaft_hz)
        return FeatureExtractor(DEFAULT.features, rate, window, spec.channels, **options), None
    except ConfigError as exc:
        note = f"the default preset's features cannot be computed here: {exc}"
        logger.warning("%s: %s", spec.kind, note)
        return None, note


def _usable_windows(samples: np.ndarray, window: int, hop: int, name: str) -> np.ndarray:
    from edgemon.features import window_flags
    from edgemon.flags import UNCLASSIFIABLE
    from edgemon.training.fit import cut_windows

    windows = cut_windows(samples, window, hop)
    if len(windows) == 0:
        raise RecordingError(
            f"{name} has {len(samples)} samples, fewer than one window of {window}; "
            "use a shorter --window"
        )
    usable = (window_flags(windows) & UNCLASSIFIABLE) == 0
    if not usable.all():
        logger.warning(
            "dropped %d of %d windows of %s: unclassifiable samples",
            int((~usable).sum()),
            len(windows),
            name,
        )
    return windows[usable]


def _load_attr(item) -> dict[str, Any]:
    return {
        key: item.attrs[key] for key in ("load_hp", "load_lbs") if item.attrs.get(key) is not None
    }
