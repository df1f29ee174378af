"""Tests of the file source on the bundled CWRU excerpt."""

from __future__ import annotations

import re

import numpy as np
import pytest
from fakes.clock import FakeClock

from edgemon.data import CWRU_EXCERPT
from edgemon.errors import ConfigError, SourceError
from edgemon.recordings import read_recording, resample
from edgemon.sources import check_source_options, make_source
from edgemon.sources.file import FileSource

INNER_RACE = CWRU_EXCERPT / "12k_Drive_End_IR007_0_105.mat"
NORMAL = CWRU_EXCERPT / "normal_0_97.mat"


def replay(source, timeout=10.0):
    blocks = []
    with source:
        while True:
            try:
                block = source.read(timeout)
            except EOFError:
                return blocks
            if block is not None:
                blocks.append(block)


@pytest.mark.parametrize("channels", [None, ["DE"], ["FE", "DE"]])
def test_replay_equals_recording(channels):
    blocks = replay(FileSource(INNER_RACE, channels, speed=0, block_size=4096))
    expected = read_recording(INNER_RACE, channels=channels)
    np.testing.assert_array_equal(np.concatenate([b.samples for b in blocks]), expected.samples)
    assert [b.first_index for b in blocks] == list(range(0, expected.n_samples, 4096))
    assert blocks[-1].n_samples == expected.n_samples % 4096


def test_replay_resamples_to_requested_rate():
    source = FileSource(NORMAL, ["DE"], 12000, speed=0, block_size=50000)
    blocks = replay(source)
    expected = resample(read_recording(NORMAL, channels=["DE"]), 12000.0)
    assert source.sample_rate == 12000.0
    np.testing.assert_array_equal(np.concatenate([b.samples for b in blocks]), expected.samples)


def test_eof_after_last_block_and_not_live():
    source = FileSource(INNER_RACE, ["DE"], speed=0, block_size=60000)
    with source:
        assert source.read(1.0).n_samples == 60000
        with pytest.raises(EOFError, match="end of recording after 60000 samples"):
            source.read(1.0)
    assert not source.live
    assert source.counters() == {"samples": 60000, "samples_total": 60000}


@pytest.mark.parametrize(("speed", "overshoot"), [(1.0, 0.0), (1.0, 0.004), (10.0, 0.001)])
def test_pacing_does_not_accumulate_sleep_error(speed, overshoot):
    clock = FakeClock(overshoot=overshoot)
    source = FileSource(
        INNER_RACE, ["DE"], speed=speed, block_size=600, clock=clock, sleep=clock.sleep
    )
    start = clock()
    blocks = replay(source)
    # 60000 samples at 12 kHz take 5 s at real time. Each late wake-up is absorbed
    # by the next deadline, so the total is off by one overshoot at most.
    assert len(blocks) == 100
    assert clock() - start == pytest.approx(5.0 / speed + overshoot, abs=1e-9)
    for i, block in enumerate(blocks):
        due = start + (i + 1) * 600 / (12000.0 * speed)
        assert block.received == pytest.approx(due + overshoot, abs=1e-9)


def test_timeout_shorter_than_wait_returns_none():
    clock = FakeClock()
    source = FileSource(
        INNER_RACE, ["DE"], speed=1.0, block_size=1200, clock=clock, sleep=clock.sleep
    )
    with source:
        assert source.read(0.04) is None
        assert clock.sleeps == [0.04]
        block = source.read(1.0)
    assert block.first_index == 0
    assert clock.sleeps == pytest.approx([0.04, 0.06])


def test_rate_unknown_before_open():
    source = FileSource(INNER_RACE)
    with pytest.raises(SourceError, match="known only after open"):
        _ = source.sample_rate
    with source:
        assert source.sample_rate == 12000.0
        assert source.channels == ("DE", "FE")


def test_unreadable_channel_raises_source_error():
    with pytest.raises(SourceError, match="channel 'BA' not found"):
        FileSource(NORMAL, ["BA"]).open()


def test_npy_needs_its_rate(tmp_path):
    path = tmp_path / "signal.npy"
    np.save(path, np.arange(10.0))
    blocks = replay(FileSource(path, speed=0, file_sample_rate=100.0, block_size=4))
    assert [b.n_samples for b in blocks] == [4, 4, 2]


def test_make_source_builds_file():
    source = make_source("file", {"path": str(INNER_RACE), "channels": ["DE"], "speed": 0})
    assert isinstance(source, FileSource)
    assert source.name == "file 12k_Drive_End_IR007_0_105.mat"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "option 'path' is missing"),
        ({"path": "/nonexistent/x.mat"}, "must name an existing file, got '/nonexistent/x.mat'"),
        ({"path": str(INNER_RACE), "speed": -1}, "'speed' must be a number of 0 or more"),
        ({"path": str(INNER_RACE), "format": "mp3"}, "'format' must be one of 'cwru'"),
        ({"path": str(INNER_RACE), "block_size": 0}, "'block_size' must be an integer from 1"),
        ({"path": str(INNER_RACE), "channels": []}, "'channels' must be a non-empty list"),
    ],
)
def test_options_rejected(options, message):
    problems = check_source_options("file", options)
    assert len(problems) == 1
    assert message in problems[0]
    with pytest.raises(ConfigError, match="file source"):
        make_source("file", options)


@pytest.mark.parametrize(
    ("start", "duration", "first", "last"),
    [
        (0.0, None, 0, 60000),
        (1.0, None, 12000, 60000),
        (1.0, 2.0, 12000, 36000),
        (4.5, 10.0, 54000, 60000),
    ],
)
def test_segment_selects_samples(start, duration, first, last):
    source = FileSource(
        INNER_RACE, ["DE"], speed=0, block_size=4096, start=start, duration=duration
    )
    blocks = replay(source)
    expected = read_recording(INNER_RACE, channels=["DE"]).samples[first:last]
    np.testing.assert_array_equal(np.concatenate([b.samples for b in blocks]), expected)
    assert blocks[0].first_index == first
    assert blocks[-1].end_index == last


def test_segment_after_resampling_counts_output_rate():
    source = FileSource(NORMAL, ["DE"], 12000, speed=0, block_size=50000, start=3.0)
    blocks = replay(source)
    assert blocks[0].first_index == 36000
    assert sum(b.n_samples for b in blocks) == 60985 - 36000


@pytest.mark.parametrize(
    ("start", "duration", "match"),
    [
        (5.0, None, "start=5 s is at or beyond the end of the recording"),
        (1.0, 1e-6, "duration=1e-06 s selects no samples"),
    ],
)
def test_segment_out_of_range_rejected(start, duration, match):
    with pytest.raises(SourceError, match=match):
        FileSource(INNER_RACE, ["DE"], speed=0, start=start, duration=duration).open()


def test_segment_options_validated():
    problems = check_source_options("file", {"path": str(INNER_RACE), "start": -1.0, "duration": 0})
    assert len(problems) == 2
    assert "start" in problems[0]
    assert "duration" in problems[1]


def test_file_source_renames_channels():
    source = FileSource(
        CWRU_EXCERPT / "normal_0_97.mat", channels=["DE"], rename={"DE": "accel"}, speed=0
    )
    source.open()
    assert source.channels == ("accel",)
    assert source.read(1.0).samples.shape[1] == 1
    source.close()


@pytest.mark.parametrize(
    ("channels", "rename", "message"),
    [
        (None, {"DE": ""}, "option 'rename' must be a table of file channel names"),
        (None, {"DE": "a", "FE": "a"}, "option 'rename' must be a table of file channel names"),
        (None, {"DE": 3}, "option 'rename' must be a table of file channel names"),
        (None, "x", "option 'rename' must be a table, got 'x'"),
        (["DE"], {"FE": "a"}, "option 'rename' names ['FE'], which option 'channels' does not"),
        (["DE", "FE"], {"DE": "FE"}, "give the channel names ['FE', 'FE'], which repeat"),
    ],
)
def test_file_source_rejects_bad_rename(channels, rename, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        FileSource(CWRU_EXCERPT / "normal_0_97.mat", channels=channels, rename=rename)


def test_file_source_limits_upsampling():
    source = FileSource(CWRU_EXCERPT / "normal_0_97.mat", channels=["DE"], sample_rate=48000 * 9.0)
    with pytest.raises(SourceError, match=r"9 times below the 432000 Hz .* \(at most 8\)"):
        source.open()
