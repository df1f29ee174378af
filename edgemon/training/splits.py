"""Train/test splits of labelled recordings that keep every window on one side.

A split never puts windows of the same stretch of a recording on both sides,
because overlapping or neighbouring windows of one recording are nearly
identical and would make any clustering look good.  Each recording is cut
into :class:`Segment` objects first (the whole recording, or consecutive
parts of it), windows are cut inside a segment only, and a split assigns
whole segments to the training or the test side.

Two kinds of split:

* **leave one load out** (CWRU motor load in hp, MFPT radial load in lbs):
  fold *i* tests on the *i*-th smallest load of every label and trains on
  the others.  A label recorded at a single load (the CWRU normal baseline
  exists only at 0 hp) is split in time into as many consecutive,
  non-overlapping parts as there are folds, and fold *i* tests on part *i*.
* **early and later files** (IMS, a run in time order): the first half of
  the files trains, the later half tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgemon.errors import ConfigError

__all__ = ["LOAD_KEYS", "Segment", "Split", "SplitPlan", "make_splits", "window_ranges"]

#: Attribute that holds the load of a recording, and its unit, per data set kind.
LOAD_KEYS: dict[str, tuple[str, str]] = {"cwru": ("load_hp", "hp"), "mfpt": ("load_lbs", "lbs")}


@dataclass(frozen=True)
class Segment:
    """A contiguous stretch of one recording, windowed on its own."""

    #: Index of the recording in the list given to :func:`make_splits`.
    recording: int
    #: First sample and one past the last sample, at the recording's sample rate.
    start: int
    stop: int
    label: str
    #: File name, with the sample range when the segment is a part of the file.
    name: str


@dataclass(frozen=True)
class Split:
    """One fold: which segments train and which test."""

    name: str
    train: tuple[int, ...]
    test: tuple[int, ...]


@dataclass(frozen=True)
class SplitPlan:
    """The segments of a data set and the folds over them."""

    #: ``"leave-one-load-out"`` or ``"early-later"``.
    kind: str
    segments: tuple[Segment, ...]
    splits: tuple[Split, ...]
    #: One sentence on how the folds were made, for the report.
    description: str


def make_splits(kind: str, recordings: Sequence) -> SplitPlan:
    """Split labelled recordings into folds for evaluation.

    Parameters
    ----------
    kind : {"cwru", "mfpt", "ims"}
        Data set kind; CWRU and MFPT are split by load, IMS by time.
    recordings : sequence of LabelledRecording
        From :func:`edgemon.training.datasets.load_dataset`; IMS recordings
        in time order.

    Returns
    -------
    SplitPlan

    Raises
    ------
    ConfigError
        If the recordings do not allow such a split: fewer than two loads,
        a label at some loads but not all, or fewer than two IMS files.
    """
    if not recordings:
        raise ConfigError("no recordings to split")
    if kind in LOAD_KEYS:
        key, unit = LOAD_KEYS[kind]
        return _leave_one_load_out(recordings, key, unit)
    if kind == "ims":
        return _early_later(recordings)
    raise ConfigError(f"cannot split a {kind!r} data set; choose one of cwru, mfpt, ims")


def window_ranges(segment: Segment, window: int, hop: int) -> np.ndarray:
    """Return the sample ranges of the windows cut from a segment.

    Returns
    -------
    ndarray of shape (n_windows, 2), int64
        ``[start, stop)`` of each window in the recording's samples, in the
        order :func:`edgemon.training.fit.cut_windows` cuts them.
    """
    length = segment.stop - segment.start
    if length < window:
        return np.empty((0, 2), dtype=np.int64)
    starts = segment.start + hop * np.arange(1 + (length - window) // hop, dtype=np.int64)
    return np.column_stack([starts, starts + window])


def _leave_one_load_out(recordings: Sequence, key: str, unit: str) -> SplitPlan:
    loads_by_label: dict[str, list[float]] = {}
    for item in recordings:
        load = item.attrs.get(key)
        if load is None:
            raise ConfigError(f"{item.recording.name} has no {key}; cannot hold out loads")
        loads_by_label.setdefault(item.label, []).append(float(load))
    loads_by_label = {label: sorted(set(loads)) for label, loads in loads_by_label.items()}

    n_folds = max(len(loads) for loads in loads_by_label.values())
    if n_folds < 2:
        raise ConfigError(
            f"leave-one-load-out needs recordings at two or more loads; all are at "
            f"{_loads_text(next(iter(loads_by_label.values())), unit)}"
        )
    for label, loads in loads_by_label.items():
        if 1 < len(loads) < n_folds:
            raise ConfigError(
                f"label {label!r} is recorded at {_loads_text(loads, unit)} only; holding out "
                f"loads needs each label at all {n_folds} loads or at a single load"
            )

    segments: list[Segment] = []
    fold_of_segment: list[int] = []
    for index, item in enumerate(recordings):
        loads = loads_by_label[item.label]
        n_samples = item.recording.n_samples
        if len(loads) == 1:
            bounds = np.linspace(0, n_samples, n_folds + 1).astype(np.int64)
            for part in range(n_folds):
                start, stop = int(bounds[part]), int(bounds[part + 1])
                name = f"{item.recording.name}[{start}:{stop}]"
                segments.append(Segment(index, start, stop, item.label, name))
                fold_of_segment.append(part)
        else:
            segments.append(Segment(index, 0, n_samples, item.label, item.recording.name))
            fold_of_segment.append(loads.index(float(item.attrs[key])))

    splits = []
    for fold in range(n_folds):
        test = tuple(i for i, f in enumerate(fold_of_segment) if f == fold)
        train = tuple(i for i, f in enumerate(fold_of_segment) if f != fold)
        splits.append(Split(_fold_name(loads_by_label, fold, n_folds, unit), train, test))

    single = sorted(label for label, loads in loads_by_label.items() if len(loads) == 1)
    description = (
        f"leave one load out over {n_folds} folds: each fold tests on one load of every "
        f"label and trains on the others"
    )
    if single:
        description += (
            f"; {', '.join(single)} exists at one load only, so it is cut in time into "
            f"{n_folds} consecutive parts and each fold tests on one part"
        )
    return SplitPlan("leave-one-load-out", tuple(segments), tuple(splits), description)


def _fold_name(loads_by_label: dict[str, list[float]], fold: int, n_folds: int, unit: str) -> str:
    held = {label: loads[fold] for label, loads in loads_by_label.items() if len(loads) > 1}
    if len(set(held.values())) == 1:
        return f"{next(iter(held.values())):g} {unit} held out"
    by_label = ", ".join(f"{label} {load:g} {unit}" for label, load in sorted(held.items()))
    return f"{by_label} held out"


def _loads_text(loads: list[float], unit: str) -> str:
    return ", ".join(f"{load:g}" for load in loads) + f" {unit}"


def _early_later(recordings: Sequence) -> SplitPlan:
    if len(recordings) < 2:
        raise ConfigError(
            f"an early/later split needs at least two files in time order, got {len(recordings)}"
        )
    segments = tuple(
        Segment(index, 0, item.recording.n_samples, item.label, item.recording.name)
        for index, item in enumerate(recordings)
    )
    n_train = len(recordings) // 2
    first_test = recordings[n_train].recording.name
    split = Split(
        f"files before {first_test} train, the rest test",
        tuple(range(n_train)),
        tuple(range(n_train, len(recordings))),
    )
    description = (
        f"early and later files: the first {n_train} of {len(recordings)} files in time "
        "order train, the later ones test"
    )
    return SplitPlan("early-later", segments, (split,), description)
