"""Property tests of the feature kernels: shift, scale, permutation and batch independence."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from edgemon.features import FEATURE_NAMES, extract

SAMPLE_RATE = 12000.0
TIME_NAMES = [name for name in FEATURE_NAMES if name.startswith("time.")]
FREQ_NAMES = [name for name in FEATURE_NAMES if name.startswith("freq.")]
INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}

# Windows whose spread is well above float64 rounding of their offset, so
# that no window is constant and relative comparisons are meaningful.
windows_strategy = st.integers(min_value=1, max_value=6).flatmap(
    lambda n_windows: st.sampled_from([16, 64, 250, 512]).flatmap(
        lambda n_samples: arrays(
            np.float64,
            (n_windows, n_samples),
            elements=st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
        ).filter(lambda w: (np.ptp(w, axis=1) > 1e-3 * (1 + np.abs(w).max(axis=1))).all())
    )
)


def features_of(windows: np.ndarray, names=FEATURE_NAMES) -> np.ndarray:
    return extract(windows, SAMPLE_RATE, list(names))


def column(features: np.ndarray, name: str) -> np.ndarray:
    return features[:, INDEX[name]]


def assert_close(
    actual: np.ndarray, expected: np.ndarray, scale: np.ndarray, rtol: float = 1e-7
) -> None:
    # Compare relative to the window's own scale: a feature near 0 (a
    # median of a centred window) carries the rounding of that scale.
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * np.max(scale))


@settings(max_examples=60, deadline=None)
@given(windows=windows_strategy, offset=st.floats(-100, 100))
def test_shift(windows, offset):
    base = features_of(windows)
    shifted = features_of(windows + offset)
    # Shifting rounds each deviation by about eps * scale, so features in g
    # move by that much, and ratios by that much over the spread.
    scale = np.abs(windows).max() + abs(offset)
    in_g = 1e-9 * scale
    ratios = in_g / column(base, "time.std").min()
    for name in ("time.mean", "time.median"):
        assert_close(column(shifted, name), column(base, name) + offset, scale)
    for name in (
        "time.std",
        "time.iqr",
        "time.rms_ac",
        "time.peak",
        "time.peak_to_peak",
        "freq.mean",
        "freq.median",
        "freq.std",
        "freq.iqr",
    ):
        np.testing.assert_allclose(
            column(shifted, name), column(base, name), rtol=1e-9, atol=in_g, err_msg=name
        )
    for name in ("time.skewness", "time.kurtosis", "time.crest_factor", "time.shape_factor"):
        np.testing.assert_allclose(
            column(shifted, name), column(base, name), rtol=1e-9, atol=ratios, err_msg=name
        )
    # Spectral shape is only defined where the spectrum is not flat.
    spread = column(base, "freq.std") > 1e-3 * column(base, "freq.mean")
    for name in ("freq.skewness", "freq.kurtosis", "freq.centroid"):
        atol = ratios * column(base, "freq.centroid").max() if name == "freq.centroid" else ratios
        np.testing.assert_allclose(
            column(shifted, name)[spread],
            column(base, name)[spread],
            rtol=1e-6,
            atol=1e3 * atol,
            err_msg=name,
        )


@settings(max_examples=60, deadline=None)
@given(windows=windows_strategy, factor=st.floats(0.01, 100) | st.floats(-100, -0.01))
def test_scale(windows, factor):
    base = features_of(windows)
    scaled = features_of(windows * factor)
    magnitude = abs(factor)
    scale = np.abs(windows).max() * magnitude
    for name in ("time.mean", "time.median"):
        assert_close(column(scaled, name), column(base, name) * factor, scale)
    for name in (
        "time.std",
        "time.iqr",
        "time.rms",
        "time.peak",
        "time.peak_to_peak",
        *FREQ_NAMES[:4],
    ):
        assert_close(column(scaled, name), column(base, name) * magnitude, scale)
    sign = np.sign(factor)
    assert_close(column(scaled, "time.skewness"), column(base, "time.skewness") * sign, 1.0)
    for name in (
        "time.kurtosis",
        "time.crest_factor",
        "time.shape_factor",
        "time.impulse_factor",
        "time.clearance_factor",
        "freq.skewness",
        "freq.kurtosis",
        "freq.centroid",
    ):
        assert_close(column(scaled, name), column(base, name), np.abs(column(base, name)).max())


@settings(max_examples=60, deadline=None)
@given(windows=windows_strategy, seed=st.integers(0, 2**32 - 1))
def test_time_features_permutation_invariant(windows, seed):
    permuted = np.random.default_rng(seed).permuted(windows, axis=1)
    base = features_of(windows, TIME_NAMES)
    np.testing.assert_allclose(
        features_of(permuted, TIME_NAMES), base, rtol=1e-9, atol=1e-9 * np.abs(windows).max()
    )


@settings(max_examples=40, deadline=None)
@given(windows=windows_strategy, seed=st.integers(0, 2**32 - 1))
def test_batch_order_independent(windows, seed):
    # Equal up to rounding: numpy and BLAS kernels may sum a row in another
    # order depending on where it sits in memory.
    order = np.random.default_rng(seed).permutation(len(windows))
    base = features_of(windows)
    permuted = features_of(windows[order])
    alone = features_of(windows[:1].copy())
    atol = 1e-12 * max(1.0, np.abs(windows).max())
    for name, i in INDEX.items():
        scale = max(atol, 1e-12 * np.abs(base[:, i]).max())
        np.testing.assert_allclose(
            permuted[:, i], base[order, i], rtol=1e-9, atol=scale, err_msg=name
        )
        np.testing.assert_allclose(alone[:, i], base[:1, i], rtol=1e-9, atol=scale, err_msg=name)


@settings(max_examples=60, deadline=None)
@given(windows=windows_strategy)
def test_order_statistics_bounds(windows):
    features = features_of(windows)
    q = np.percentile(windows, [25, 50, 75], axis=1)
    np.testing.assert_allclose(column(features, "time.median"), q[1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(column(features, "time.iqr"), q[2] - q[0], rtol=1e-9, atol=1e-9)
    peak = column(features, "time.peak")
    assert (peak <= column(features, "time.peak_to_peak") + 1e-9).all()
    assert (column(features, "time.crest_factor") >= 1 - 1e-12).all()
    assert (column(features, "time.kurtosis") >= -2 - 1e-9).all()
