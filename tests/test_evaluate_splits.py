"""Evaluation splits: held-out loads, time parts, and no window on both sides."""

from __future__ import annotations

import numpy as np
import pytest

from edgemon.data import CWRU_EXCERPT
from edgemon.errors import ConfigError
from edgemon.recordings import Recording
from edgemon.training.datasets import LabelledRecording, load_dataset
from edgemon.training.splits import make_splits, window_ranges

WINDOW = 2048


def _recording(label: str, n_samples: int = 10_000, **attrs) -> LabelledRecording:
    samples = np.zeros((n_samples, 1))
    return LabelledRecording(Recording(samples, 12000.0, ("DE",)), label, attrs)


def _windows_by_file(plan, indices, hop: int) -> dict[int, np.ndarray]:
    """Return the sample ranges of every window on one side, per recording."""
    ranges: dict[int, list[np.ndarray]] = {}
    for index in indices:
        segment = plan.segments[index]
        ranges.setdefault(segment.recording, []).append(window_ranges(segment, WINDOW, hop))
    return {recording: np.concatenate(parts) for recording, parts in ranges.items()}


def _assert_no_shared_window(plan, hop: int) -> None:
    for split in plan.splits:
        train = _windows_by_file(plan, split.train, hop)
        test = _windows_by_file(plan, split.test, hop)
        for recording in set(train) & set(test):
            for start, stop in test[recording]:
                overlap = (train[recording][:, 0] < stop) & (start < train[recording][:, 1])
                assert not overlap.any(), (
                    f"{split.name}: a window of recording {recording} is on both sides"
                )


@pytest.mark.parametrize("hop", [512, 2048])
def test_excerpt_splits_share_no_window(hop):
    recordings = load_dataset("cwru", CWRU_EXCERPT, channels=("DE",), sample_rate=12000.0)
    plan = make_splits("cwru", recordings)
    assert [split.name for split in plan.splits] == ["0 hp held out", "1 hp held out"]
    _assert_no_shared_window(plan, hop)


def test_excerpt_split_cuts_normal_in_time():
    recordings = load_dataset("cwru", CWRU_EXCERPT, channels=("DE",), sample_rate=12000.0)
    plan = make_splits("cwru", recordings)
    normal = [s for s in plan.segments if s.label == "normal"]
    assert len(normal) == 2
    assert normal[0].start == 0
    assert normal[0].stop == normal[1].start
    assert normal[1].stop == recordings[normal[0].recording].recording.n_samples
    for split, part in zip(plan.splits, normal, strict=True):
        assert plan.segments.index(part) in split.test


def test_every_segment_tested_once():
    recordings = [
        _recording(label, load_hp=load) for label in ("inner_race", "ball") for load in (0, 1, 2)
    ] + [_recording("normal", load_hp=0)]
    plan = make_splits("cwru", recordings)
    tested = [index for split in plan.splits for index in split.test]
    assert sorted(tested) == list(range(len(plan.segments)))
    for split in plan.splits:
        assert set(split.train).isdisjoint(split.test)
        assert set(split.train) | set(split.test) == set(range(len(plan.segments)))


def test_fold_holds_out_one_load():
    recordings = [_recording(label, load_hp=load) for label in ("a", "b") for load in (0, 1, 2)]
    plan = make_splits("cwru", recordings)
    for load, split in enumerate(plan.splits):
        assert split.name == f"{load} hp held out"
        held = {recordings[plan.segments[i].recording].attrs["load_hp"] for i in split.test}
        trained = {recordings[plan.segments[i].recording].attrs["load_hp"] for i in split.train}
        assert held == {load}
        assert load not in trained


def test_mfpt_pairs_loads_by_rank():
    recordings = [_recording("inner_race", load_lbs=load) for load in (0, 50, 150)]
    recordings += [_recording("outer_race", load_lbs=load) for load in (25, 50, 150)]
    plan = make_splits("mfpt", recordings)
    assert [split.name for split in plan.splits] == [
        "inner_race 0 lbs, outer_race 25 lbs held out",
        "50 lbs held out",
        "150 lbs held out",
    ]


def test_ims_early_files_train():
    recordings = [_recording("healthy", order=i) for i in range(5)]
    plan = make_splits("ims", recordings)
    (split,) = plan.splits
    assert split.train == (0, 1)
    assert split.test == (2, 3, 4)


@pytest.mark.parametrize(
    ("kind", "recordings", "message"),
    [
        ("cwru", [_recording("a", load_hp=0), _recording("b", load_hp=0)], "two or more loads"),
        (
            "cwru",
            [_recording("a", load_hp=load) for load in (0, 1, 2)]
            + [_recording("b", load_hp=load) for load in (0, 1)],
            "label 'b' is recorded at 0, 1 hp only",
        ),
        ("cwru", [_recording("a")], "has no load_hp"),
        ("ims", [_recording("healthy")], "at least two files"),
        ("files", [_recording("a")], "cannot split a 'files' data set"),
        ("cwru", [], "no recordings"),
    ],
)
def test_impossible_split_rejected(kind, recordings, message):
    with pytest.raises(ConfigError, match=message):
        make_splits(kind, recordings)


def test_window_ranges_match_cut():
    from edgemon.training.fit import cut_windows
    from edgemon.training.splits import Segment

    samples = np.arange(10_000, dtype=float)[:, np.newaxis]
    segment = Segment(0, 1000, 7000, "a", "file")
    ranges = window_ranges(segment, WINDOW, 1000)
    windows = cut_windows(samples[segment.start : segment.stop], WINDOW, 1000)
    assert len(ranges) == len(windows)
    for (start, stop), window in zip(ranges, windows, strict=True):
        np.testing.assert_array_equal(window[:, 0], samples[start:stop, 0])


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("kind", "channels", "rate", "n_folds"),
    [
        ("cwru", ("DE",), 12000.0, 3),
        ("mfpt", ("gs",), None, 5),
        ("ims", ("ch5", "ch6"), None, 1),
    ],
)
def test_shared_data_splits_share_no_window(request, kind, channels, rate, n_folds):
    folder = request.getfixturevalue(f"{kind}_dir")
    recordings = load_dataset(kind, folder, channels=channels, sample_rate=rate)
    plan = make_splits(kind, recordings)
    assert len(plan.splits) == n_folds
    _assert_no_shared_window(plan, hop=1024)
    for split in plan.splits:
        assert {plan.segments[i].label for i in split.test} == {
            plan.segments[i].label for i in split.train
        }
