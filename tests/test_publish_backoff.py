"""Tests of the reconnect backoff."""

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgemon.publish.backoff import Backoff


@given(
    min_delay=st.floats(0.01, 10.0),
    factor=st.floats(1.0, 100.0),
    attempts=st.integers(1, 80),
    seed=st.integers(0, 2**32 - 1),
)
def test_backoff_delays_capped_and_jittered(min_delay, factor, attempts, seed):
    max_delay = min_delay * factor
    backoff = Backoff(min_delay, max_delay, random.Random(seed))
    for attempt in range(attempts):
        step = min(max_delay, min_delay * 2.0**attempt)
        delay = backoff.next_delay()
        assert step / 2 <= delay <= step


def test_backoff_reset():
    backoff = Backoff(1.0, 60.0, random.Random(0))
    for _ in range(10):
        backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() <= 1.0


def test_backoff_delays_differ_between_devices():
    first = Backoff(1.0, 60.0, random.Random(1)).next_delay()
    second = Backoff(1.0, 60.0, random.Random(2)).next_delay()
    assert first != second


@pytest.mark.parametrize(("low", "high"), [(0.0, 1.0), (2.0, 1.0), (-1.0, 1.0)])
def test_backoff_invalid_bounds(low, high):
    with pytest.raises(ValueError, match="0 < min_delay <= max_delay"):
        Backoff(low, high)
