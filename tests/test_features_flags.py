"""Window flags, and features of windows that are constant, non-finite or saturated."""

from __future__ import annotations

import numpy as np
import pytest

from edgemon.errors import ConfigError
from edgemon.features import (
    CONSTANT_RTOL,
    FEATURE_NAMES,
    FeatureExtractor,
    WindowFlag,
    extract,
    window_flags,
)

NAMES = [*FEATURE_NAMES, "band.rms[0-6000]", "band.rms[100-200]"]
CONSTANT = WindowFlag.CONSTANT
NONFINITE = WindowFlag.NONFINITE
SATURATED = WindowFlag.SATURATED


def noise(n_windows: int = 1, n_samples: int = 256, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n_windows, n_samples))


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        (noise()[0], WindowFlag.NONE),
        (np.zeros(256), CONSTANT),
        (np.full(256, 9.81), CONSTANT),
        (np.full(256, -3.0), CONSTANT),
        (1.0 + 1e-12 * noise()[0], CONSTANT),
        (1.0 + 1e-6 * noise()[0], WindowFlag.NONE),
        (1e-3 * noise()[0], WindowFlag.NONE),
        (np.where(np.arange(256) == 7, np.nan, noise()[0]), NONFINITE),
        (np.where(np.arange(256) == 7, np.inf, noise()[0]), NONFINITE),
        (np.where(np.arange(256) == 7, -np.inf, np.zeros(256)), NONFINITE),
        (np.full(256, np.nan), NONFINITE),
    ],
)
def test_window_flags_cases(window, expected):
    assert window_flags(window[np.newaxis]).tolist() == [expected]


def test_window_flags_saturation():
    windows = noise(3)
    windows[1, 10] = 4.0
    windows[2, 20] = -4.0
    assert window_flags(windows, full_scale=4.0).tolist() == [0, SATURATED, SATURATED]
    assert window_flags(windows).tolist() == [0, 0, 0]
    assert window_flags(windows, full_scale=4.5).tolist() == [0, 0, 0]


def test_window_flags_any_channel():
    windows = noise(3, seed=1).reshape(1, 256, 3).repeat(4, axis=0)
    windows[1, :, 2] = 0.5
    windows[2, 5, 0] = np.nan
    windows[3, 9, 1] = 16.0
    flags = window_flags(windows, full_scale=16.0)
    assert flags.tolist() == [0, CONSTANT, NONFINITE, SATURATED]
    assert flags.dtype == np.uint8


@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.float32])
def test_window_flags_dtypes(dtype):
    windows = np.zeros((2, 64), dtype=dtype)
    windows[1, ::2] = 100
    assert window_flags(windows, full_scale=100).tolist() == [CONSTANT, SATURATED]


@pytest.mark.parametrize(
    ("windows", "options", "match"),
    [
        (np.zeros(16), {}, "windows must have shape"),
        (np.zeros((2, 16), dtype=complex), {}, "real numbers"),
        (np.zeros((2, 0)), {}, "at least one sample"),
        (np.ones((2, 16)), {"full_scale": 0}, "full_scale must be a positive number"),
        (np.ones((2, 16)), {"full_scale": np.inf}, "full_scale must be a positive number"),
    ],
)
def test_window_flags_rejects(windows, options, match):
    with pytest.raises(ConfigError, match=match):
        window_flags(windows, **options)


def test_constant_threshold_is_relative():
    base = np.full(256, 2.0)
    base[0] += 2.0 * CONSTANT_RTOL * 0.5
    above = np.full(256, 2.0)
    above[0] += 2.0 * CONSTANT_RTOL * 4
    assert window_flags(np.stack([base, above])).tolist() == [CONSTANT, 0]


@pytest.mark.parametrize(
    "window",
    [
        np.zeros(256),
        np.full(256, 9.81),
        np.full(256, -0.1),
        1.0 + 1e-13 * noise(seed=3)[0],
        np.full(256, 1e-300),
        np.full(256, 1e30),
    ],
    ids=["zero", "gravity", "negative", "near-constant", "tiny", "large"],
)
def test_constant_window_features_finite(window):
    features = extract(window[np.newaxis], 12000.0, NAMES)
    assert np.isfinite(features).all(), dict(zip(NAMES, features[0], strict=True))


def test_zero_window_features_are_zero():
    features = extract(np.zeros((1, 256)), 12000.0, NAMES)
    assert features.tolist() == [[0.0] * len(NAMES)]


def test_constant_window_statistics():
    features = dict(zip(NAMES, extract(np.full((1, 256), 2.5), 12000.0, NAMES)[0], strict=True))
    assert features["time.mean"] == features["time.median"] == features["time.rms"] == 2.5
    for name in ("time.std", "time.iqr", "time.skewness", "time.kurtosis", "time.peak_to_peak"):
        assert features[name] == 0.0, name


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("n_windows", [2, 64])
def test_nonfinite_window_isolated(bad, n_windows):
    windows = noise(n_windows, 512, seed=4)
    spoiled = windows.copy()
    spoiled[1, 100] = bad
    extractor = FeatureExtractor(NAMES, 12000.0, 512)
    clean = extractor.transform(windows)
    features = extractor.transform(spoiled)
    assert np.isnan(features[1]).all()
    others = np.arange(n_windows) != 1
    np.testing.assert_array_equal(features[others], clean[others])


def test_nonfinite_channel_isolated():
    windows = noise(2, 512, seed=5).reshape(1, 512, 2).repeat(3, axis=0)
    windows[1, 50, 1] = np.nan
    extractor = FeatureExtractor(["all", "time.peak"], 12000.0, 512, ("x", "y"), resultant=True)
    features = extractor.transform(windows).reshape(3, 3, -1)
    assert np.isnan(features[1, 1]).all()
    assert np.isnan(features[1, 2]).all()
    np.testing.assert_array_equal(features[1, 0], features[0, 0])
    assert np.isfinite(features[[0, 2]]).all()


@pytest.mark.parametrize("names", [["all"], ["time.std", "freq.centroid"], ["freq.median"]])
@pytest.mark.parametrize("resultant", [False, True])
@pytest.mark.parametrize("n_windows", [1, 7, 40])
def test_transform_with_flags_matches(names, resultant, n_windows):
    rng = np.random.default_rng(n_windows)
    windows = rng.normal(size=(n_windows, 128, 2))
    kinds = [None, "constant", "nan", "inf", "saturated", "zero"]
    for i in range(n_windows):
        kind = kinds[i % len(kinds)]
        if kind == "constant":
            windows[i, :, i % 2] = 1.5
        elif kind == "nan":
            windows[i, 3, 1] = np.nan
        elif kind == "inf":
            windows[i, 9, 0] = -np.inf
        elif kind == "saturated":
            windows[i, 17, 1] = 8.0
        elif kind == "zero":
            windows[i] = 0.0
    extractor = FeatureExtractor(names, 12000.0, 128, ("x", "y"), resultant=resultant)
    for full_scale in (None, 8.0):
        features, flags = extractor.transform_with_flags(windows, full_scale=full_scale)
        np.testing.assert_array_equal(features, extractor.transform(windows))
        np.testing.assert_array_equal(flags, window_flags(windows, full_scale=full_scale))
        assert flags.dtype == np.uint8


def test_transform_with_flags_integer_samples():
    windows = np.zeros((3, 64), dtype=np.int16)
    windows[1] = np.arange(64)
    windows[2, 5] = 32767
    extractor = FeatureExtractor(["time.median"], 1000.0, 64)
    _, flags = extractor.transform_with_flags(windows, full_scale=32767)
    np.testing.assert_array_equal(flags, window_flags(windows, full_scale=32767))
    assert flags.tolist() == [CONSTANT, 0, SATURATED]


def test_transform_with_flags_rejects_full_scale():
    extractor = FeatureExtractor(["time.median"], 1000.0, 64)
    with pytest.raises(ConfigError, match="full_scale must be a positive number"):
        extractor.transform_with_flags(np.zeros((1, 64)), full_scale=-1.0)


@pytest.mark.parametrize("n_windows", [1, 2, 3, 50])
@pytest.mark.parametrize("n_channels", [1, 3])
def test_flags_scalar_and_vector_paths_agree(n_windows, n_channels):
    # Few channels take a Python-float path, many take numpy: both must agree.
    rng = np.random.default_rng(n_windows * 10 + n_channels)
    choices = np.array([0.0, 1.0, -1.0, 2.5, 1e-12, np.nan, np.inf, -np.inf, 16.0, -16.0])
    for _ in range(20):
        windows = rng.choice(choices, size=(n_windows, 4, n_channels))
        windows[:, 0] += rng.normal(size=(n_windows, n_channels)) * rng.choice([0.0, 1.0])
        expected = [window_flags(window[np.newaxis], full_scale=16.0)[0] for window in windows]
        many = np.concatenate([windows] * 5)
        assert window_flags(windows, full_scale=16.0).tolist() == expected
        assert window_flags(many, full_scale=16.0).tolist() == expected * 5
