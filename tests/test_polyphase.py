"""Tests of the numpy polyphase resampler against scipy.signal.resample_poly."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st

from edgemon.polyphase import lowpass_filter, resample_poly

RATIOS = [
    pytest.param(1, 4, id="48k-to-12k"),
    pytest.param(1000, 4069, id="48828-to-12k"),
    pytest.param(32, 15, id="12k-to-25600"),
    pytest.param(8, 15, id="48k-to-25600"),
    pytest.param(3, 1, id="up-3"),
    pytest.param(2, 3, id="2-over-3"),
]


@pytest.mark.parametrize(("up", "down"), RATIOS)
def test_filter_equals_scipy_firwin(up, down):
    rate = max(up, down)
    expected = scipy.signal.firwin(20 * rate + 1, 1 / rate, window=("kaiser", 5.0)) * up
    np.testing.assert_allclose(lowpass_filter(up, down), expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize(("up", "down"), RATIOS)
@pytest.mark.parametrize("n_samples", [1, 2, 5, 97, 4000])
def test_resample_equals_scipy(up, down, n_samples):
    x = np.random.default_rng(n_samples).normal(size=(n_samples, 2))
    expected = scipy.signal.resample_poly(x, up, down, axis=0)
    result = resample_poly(x, up, down)
    assert result.shape == expected.shape
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-12 * np.abs(expected).max())


@given(
    n_samples=st.integers(1, 300),
    up=st.integers(1, 40),
    down=st.integers(1, 40),
    n_channels=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
)
@settings(max_examples=150, deadline=None)
def test_resample_property_equals_scipy(n_samples, up, down, n_channels, seed):
    x = np.random.default_rng(seed).uniform(-10, 10, size=(n_samples, n_channels))
    expected = scipy.signal.resample_poly(x, up, down, axis=0)
    result = resample_poly(x, up, down)
    assert result.shape == expected.shape
    tolerance = 1e-12 * max(1.0, np.abs(expected).max())
    np.testing.assert_allclose(result, expected, rtol=0, atol=tolerance)


def test_resample_one_dimensional():
    x = np.sin(np.linspace(0, 20, 480))
    result = resample_poly(x, 1, 4)
    assert result.shape == (120,)
    np.testing.assert_allclose(result, scipy.signal.resample_poly(x, 1, 4), atol=1e-13)


def test_resample_reduced_ratio_one_copies():
    x = np.arange(6.0).reshape(3, 2)
    result = resample_poly(x, 3, 3)
    np.testing.assert_array_equal(result, x)
    assert result is not x


@pytest.mark.parametrize(
    ("up", "down", "message"),
    [
        (0, 4, "up must be a positive integer, got 0"),
        (1, -2, "down must be a positive integer, got -2"),
        (1.5, 2, "up must be a positive integer, got 1.5"),
        (True, 2, "up must be a positive integer, got True"),
    ],
)
def test_resample_rejects_factor(up, down, message):
    with pytest.raises(ValueError, match=message):
        resample_poly(np.ones(10), up, down)


def test_resample_rejects_empty_signal():
    with pytest.raises(ValueError, match="n_samples >= 1"):
        resample_poly(np.ones((0, 2)), 1, 4)
