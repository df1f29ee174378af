"""Tests of the ring buffer: windows on the hop grid, gaps, flags and overruns."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgemon.errors import ConfigError
from edgemon.flags import WindowFlag
from edgemon.ringbuffer import RingBuffer
from edgemon.sources.base import Block


def block(samples, first_index, flags=WindowFlag.NONE):
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim == 1:
        samples = samples[:, None]
    return Block(samples, first_index=first_index, received=0.0, flags=flags)


def expected_windows(stream, window, hop):
    if len(stream) < window:
        return np.empty((0, window, stream.shape[1]))
    windows = np.lib.stride_tricks.sliding_window_view(stream, window, axis=0)
    return windows[::hop].transpose(0, 2, 1)


def split_points(draw, n):
    cuts = draw(st.lists(st.integers(0, n), max_size=12))
    return sorted(set(cuts) | {0, n})


@st.composite
def streams(draw):
    n_channels = draw(st.integers(1, 3))
    window = draw(st.integers(1, 16))
    hop = draw(st.integers(1, 20))
    n = draw(st.integers(0, 200))
    seed = draw(st.integers(0, 2**32 - 1))
    stream = np.random.default_rng(seed).normal(size=(n, n_channels))
    return stream, window, hop, split_points(draw, n)


@given(streams())
@settings(max_examples=200, deadline=None)
def test_windows_equal_sliding_window_view(case):
    stream, window, hop, cuts = case
    buffer = RingBuffer(
        capacity=max(window, len(stream), 1), n_channels=stream.shape[1], window=window, hop=hop
    )
    for start, stop in pairwise(cuts):
        buffer.push(block(stream[start:stop], first_index=start))
    batch = buffer.pop_windows()

    expected = expected_windows(stream, window, hop)
    assert batch.samples.shape == (len(expected), window, stream.shape[1])
    np.testing.assert_array_equal(batch.samples, expected)
    np.testing.assert_array_equal(batch.starts, np.arange(len(expected)) * hop)
    assert not batch.flags.any()


@given(streams(), st.data())
@settings(max_examples=200, deadline=None)
def test_split_and_pop_order_irrelevant(case, data):
    stream, window, hop, cuts = case
    other_cuts = split_points(data.draw, len(stream))
    capacity = window + hop + len(stream)

    def run(cuts, pop_every_push):
        buffer = RingBuffer(capacity, stream.shape[1], window, hop)
        batches = []
        for start, stop in pairwise(cuts):
            buffer.push(block(stream[start:stop], first_index=start))
            if pop_every_push:
                batches.append(buffer.pop_windows(max_windows=data.draw(st.integers(0, 3))))
        batches.append(buffer.pop_windows())
        return (
            np.concatenate([b.samples for b in batches]),
            np.concatenate([b.starts for b in batches]),
        )

    reference = run(cuts, pop_every_push=False)
    for result in (run(other_cuts, pop_every_push=False), run(other_cuts, pop_every_push=True)):
        np.testing.assert_array_equal(result[0], reference[0])
        np.testing.assert_array_equal(result[1], reference[1])


@given(st.integers(1, 12), st.integers(1, 12), st.integers(0, 60), st.integers(1, 30), st.data())
@settings(max_examples=200, deadline=None)
def test_gap_flags_exactly_spanning_windows(window, hop, gap_at, skipped, data):
    n = gap_at + data.draw(st.integers(0, 60))
    stream = np.arange(float(n))
    indices = np.arange(n) + np.where(np.arange(n) >= gap_at, skipped, 0)
    buffer = RingBuffer(max(window, n), 1, window, hop)
    cuts = split_points(data.draw, n)
    for start, stop in pairwise(cuts):
        # A block never straddles the gap: the jump is between blocks.
        for lo, hi in ((start, min(stop, gap_at)), (max(start, gap_at), stop)):
            if lo < hi:
                buffer.push(block(stream[lo:hi], first_index=int(indices[lo])))
    batch = buffer.pop_windows()

    expected = expected_windows(stream[:, None], window, hop)
    np.testing.assert_array_equal(batch.samples, expected)
    received_starts = np.arange(len(expected)) * hop
    np.testing.assert_array_equal(batch.starts, indices[received_starts])
    spans_jump = (received_starts < gap_at) & (received_starts + window > gap_at)
    if gap_at == 0 or gap_at == n:
        spans_jump[:] = False
    np.testing.assert_array_equal(batch.flags == WindowFlag.GAP, spans_jump)
    assert buffer.stats.gaps == (0 < gap_at < n)
    assert buffer.stats.gap_samples == (skipped if 0 < gap_at < n else 0)


@given(st.integers(1, 8), st.integers(1, 8), st.integers(0, 24), st.data())
@settings(max_examples=200, deadline=None)
def test_windows_never_corrupted_under_overrun(window, hop, extra, data):
    # Each sample's value is its source index, so a window must contain a run of
    # consecutive received indices starting at its start.
    capacity = window + extra
    buffer = RingBuffer(capacity, 1, window, hop)
    received, windows, starts = [], [], []
    index = 0
    for _ in range(data.draw(st.integers(1, 15))):
        index += data.draw(st.sampled_from([0, 0, 0, 3]))
        size = data.draw(st.integers(0, 2 * capacity))
        values = np.arange(index, index + size)
        buffer.push(block(values.astype(float), first_index=index))
        received.extend(values)
        index += size
        batch = buffer.pop_windows(max_windows=data.draw(st.sampled_from([None, 0, 1])))
        windows.append(batch.samples[:, :, 0])
        starts.append(batch.starts)
    windows, starts = np.concatenate(windows), np.concatenate(starts)
    received = np.asarray(received)

    positions = np.searchsorted(received, starts)
    assert np.all(np.diff(positions) >= hop)
    for window_samples, position in zip(windows, positions, strict=True):
        np.testing.assert_array_equal(window_samples, received[position : position + window])
    assert buffer.stats.samples_in == len(received)


def test_gap_example_from_docstring():
    buffer = RingBuffer(capacity=32, n_channels=1, window=4, hop=2)
    buffer.push(block(np.arange(6.0), first_index=0))
    buffer.push(block(np.arange(9.0, 13.0), first_index=9))
    batch = buffer.pop_windows()
    np.testing.assert_array_equal(batch.starts, [0, 2, 4, 9])
    np.testing.assert_array_equal(batch.samples[2, :, 0], [4, 5, 9, 10])
    assert list(batch.flags) == [0, 0, WindowFlag.GAP, 0]
    assert buffer.stats.gaps == 1
    assert buffer.stats.gap_samples == 3


@pytest.mark.parametrize(
    ("flag_block", "expected"),
    [
        # blocks of 4 samples; windows of 4 with hop 2 start at 0, 2, 4, 6, 8
        (0, [1, 1, 0, 0, 0]),
        (1, [0, 1, 1, 1, 0]),
        (2, [0, 0, 0, 1, 1]),
    ],
)
@pytest.mark.parametrize("flag", [WindowFlag.SATURATED, WindowFlag.BUS_ERROR])
def test_block_flags_reach_overlapping_windows(flag_block, expected, flag):
    buffer = RingBuffer(capacity=64, n_channels=2, window=4, hop=2)
    for i in range(3):
        flags = flag if i == flag_block else WindowFlag.NONE
        buffer.push(block(np.zeros((4, 2)), first_index=4 * i, flags=flags))
    batch = buffer.pop_windows()
    assert list(batch.flags) == [int(flag) * e for e in expected]


def test_flags_combine_with_gap():
    buffer = RingBuffer(capacity=64, n_channels=1, window=4, hop=4)
    buffer.push(block(np.zeros(2), first_index=0, flags=WindowFlag.SATURATED))
    buffer.push(block(np.zeros(6), first_index=10))
    batch = buffer.pop_windows()
    assert list(batch.flags) == [WindowFlag.SATURATED | WindowFlag.GAP, 0]


@pytest.mark.parametrize(
    ("capacity", "sizes", "overrun_samples", "starts"),
    [
        # 10 then 10 samples into 12 slots, no pop between: samples 0..7 overwritten.
        (12, [10, 10], 8, [8, 12, 16]),
        # A single block larger than the buffer keeps only its last 12 samples.
        (12, [30], 18, [18, 22, 26]),
        # Fits exactly: nothing lost.
        (20, [10, 10], 0, [0, 4, 8, 12, 16]),
    ],
)
def test_overrun_counted_not_silent(capacity, sizes, overrun_samples, starts):
    buffer = RingBuffer(capacity=capacity, n_channels=1, window=4, hop=4)
    first = 0
    for size in sizes:
        buffer.push(block(np.arange(first, first + size, dtype=float), first_index=first))
        first += size
    batch = buffer.pop_windows()
    assert buffer.stats.overrun_samples == overrun_samples
    assert buffer.stats.overruns == (overrun_samples > 0)
    np.testing.assert_array_equal(batch.starts, starts)
    # Windows hold the right samples: no corruption from the wrap-around.
    np.testing.assert_array_equal(batch.samples[:, :, 0], np.add.outer(starts, np.arange(4)))
    assert not batch.flags.any()


def test_overrun_ignores_already_windowed_samples():
    buffer = RingBuffer(capacity=8, n_channels=1, window=4, hop=4)
    buffer.push(block(np.arange(8.0), first_index=0))
    assert len(buffer.pop_windows()) == 2
    buffer.push(block(np.arange(8.0, 16.0), first_index=8))
    assert buffer.stats.overruns == 0
    np.testing.assert_array_equal(buffer.pop_windows().starts, [8, 12])


def test_hop_beyond_window_skips_not_overruns():
    buffer = RingBuffer(capacity=8, n_channels=1, window=2, hop=5)
    for first in range(0, 40, 4):
        buffer.push(block(np.arange(first, first + 4, dtype=float), first_index=first))
        buffer.pop_windows()
    assert buffer.stats.overruns == 0
    assert buffer.stats.windows_out == 8


def test_max_windows_leaves_rest():
    buffer = RingBuffer(capacity=64, n_channels=1, window=4, hop=2)
    buffer.push(block(np.arange(12.0), first_index=0))
    assert buffer.available == 5
    np.testing.assert_array_equal(buffer.pop_windows(max_windows=2).starts, [0, 2])
    np.testing.assert_array_equal(buffer.pop_windows().starts, [4, 6, 8])
    assert buffer.stats.windows_out == 5


def test_empty_pop_shapes():
    batch = RingBuffer(capacity=8, n_channels=3, window=4, hop=2).pop_windows()
    assert batch.samples.shape == (0, 4, 3)
    assert batch.starts.dtype == np.int64
    assert batch.flags.dtype == np.uint8


def test_batch_owns_its_memory():
    buffer = RingBuffer(capacity=8, n_channels=1, window=4, hop=4)
    buffer.push(block(np.ones(4), first_index=0))
    batch = buffer.pop_windows()
    buffer.push(block(np.zeros(8), first_index=4))
    assert batch.samples.flags.c_contiguous
    assert batch.samples.sum() == 4


@pytest.mark.parametrize(
    ("samples", "first_index", "message"),
    [
        (np.zeros((4, 2)), 4, "shape"),
        (np.zeros((4, 1)), 2, "in order"),
    ],
)
def test_push_rejects_bad_block(samples, first_index, message):
    buffer = RingBuffer(capacity=16, n_channels=1, window=4, hop=2)
    buffer.push(block(np.zeros(4), first_index=0))
    with pytest.raises(ValueError, match=message):
        buffer.push(block(samples, first_index=first_index))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"capacity": 3, "window": 4}, "capacity must be at least the window"),
        ({"window": 0}, "window must be a positive integer"),
        ({"hop": 1.5}, "hop must be a positive integer"),
        ({"n_channels": 0}, "n_channels must be a positive integer"),
    ],
)
def test_constructor_rejects(kwargs, message):
    arguments = {"capacity": 16, "n_channels": 1, "window": 4, "hop": 2, **kwargs}
    with pytest.raises(ConfigError, match=message):
        RingBuffer(**arguments)
