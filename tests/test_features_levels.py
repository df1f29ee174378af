"""Relative band levels in dB: references, identities and conventions.

``band.rel_db`` is a ratio.  The tests compare it with a numpy reference
written from docs/features.md and with the ratio of the band RMS it derives
from.  They also check invariance to gain and offset, and the values given
where a ratio has no meaning (constant and NaN windows).
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from edgemon.errors import ConfigError
from edgemon.features import FeatureExtractor, extract

SAMPLE_RATE = 12000.0
DB_ATOL = 1e-9
LIMIT = 200.0

BANDS = [(0, 100), (88.4, 111.4), (500, 2000), (2000, 5000), (5000, 6000)]


# -- references ----------------------------------------------------------------------


def hann(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)


def one_sided_power(x: np.ndarray, nfft: int | None = None) -> np.ndarray:
    """Return c_k |X_k|**2 of the mean-removed, Hann-tapered window, Welch-averaged for nfft."""
    nfft = len(x) if nfft is None else nfft
    taper = hann(nfft)
    d = x - x.mean()
    powers = [
        np.abs(np.fft.rfft(d[start : start + nfft] * taper)) ** 2
        for start in range(0, len(x) - nfft + 1, nfft // 2)
    ]
    power = np.mean(powers, axis=0)
    power[1:-1] *= 2
    return power


def bin_frequencies(n: int, sample_rate: float) -> np.ndarray:
    """Return f_k = k * sample_rate / n for k = 0 ... n/2, as the extractor computes them."""
    return np.arange(n // 2 + 1) * (sample_rate / n)


def rel_db_reference(
    x: np.ndarray, low: float, high: float, sample_rate: float, nfft: int | None = None
) -> float:
    power = one_sided_power(x, nfft)
    frequencies = bin_frequencies(nfft or len(x), sample_rate)
    inside = (frequencies >= low) & (frequencies < high)
    return float(10 * np.log10(power[inside].sum() / power[frequencies > 0].sum()))


def random_windows(kind: str, n_windows: int, n_samples: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (n_windows, n_samples)
    if kind == "normal":
        return rng.normal(0.2, 1.5, size=shape)
    if kind == "impulsive":
        # Bursts at 3 kHz repeating at 107.4 Hz (3.5848 orders of 29.95 Hz), in noise.
        t = np.arange(n_samples) / SAMPLE_RATE
        phase = (t[np.newaxis] * 107.4 + rng.uniform(size=(n_windows, 1))) % 1
        bursts = np.exp(-phase * 60) * np.sin(2 * np.pi * 3000 * t)
        return bursts + rng.normal(size=shape) * 0.05
    if kind == "sine":
        t = np.arange(n_samples) / SAMPLE_RATE
        phases = rng.uniform(0, 2 * np.pi, size=(n_windows, 1))
        return 0.7 * np.sin(2 * np.pi * 157.0 * t + phases) + rng.normal(size=shape) * 0.01
    raise ValueError(kind)


def band_names(bands) -> list[str]:
    return [f"band.rel_db[{low}-{high}]" for low, high in bands]


@pytest.fixture(scope="module")
def cwru_windows(cwru_dir) -> np.ndarray:
    """Return 16 half-overlapping windows of 4096 samples, channels DE and FE, of record 198."""
    from edgemon.recordings import read_recording

    recording = read_recording(cwru_dir / "12k_Drive_End_OR014@6_1_198.mat", channels=("DE", "FE"))
    starts = np.arange(16) * 2048
    return recording.samples[starts[:, np.newaxis] + np.arange(4096)]


# -- band.rel_db against its reference -------------------------------------------------


@pytest.mark.parametrize("kind", ["normal", "impulsive", "sine"])
@pytest.mark.parametrize("n_windows", [1, 3, 40])
def test_rel_db_random_windows(kind, n_windows):
    windows = random_windows(kind, n_windows, 2048, seed=n_windows)
    features = extract(windows, SAMPLE_RATE, band_names(BANDS))
    for column, (low, high) in enumerate(BANDS):
        expected = [rel_db_reference(w, low, high, SAMPLE_RATE) for w in windows]
        np.testing.assert_allclose(features[:, column], expected, rtol=0, atol=DB_ATOL)


@pytest.mark.parametrize("nfft", [256, 1024])
def test_rel_db_welch(nfft):
    windows = random_windows("impulsive", 4, 2048, seed=nfft)
    features = extract(windows, SAMPLE_RATE, band_names(BANDS), nfft=nfft)
    for column, (low, high) in enumerate(BANDS):
        expected = [rel_db_reference(w, low, high, SAMPLE_RATE, nfft) for w in windows]
        np.testing.assert_allclose(features[:, column], expected, rtol=0, atol=DB_ATOL)


@pytest.mark.shared_data
def test_rel_db_real_windows(cwru_windows):
    names = band_names(BANDS)
    features = extract(cwru_windows, SAMPLE_RATE, names, channels=("DE", "FE"))
    for channel in range(2):
        for column, (low, high) in enumerate(BANDS):
            expected = [
                rel_db_reference(w, low, high, SAMPLE_RATE) for w in cwru_windows[:, :, channel]
            ]
            actual = features[:, channel * len(names) + column]
            np.testing.assert_allclose(actual, expected, rtol=0, atol=DB_ATOL)


def without_nyquist_bin(windows: np.ndarray) -> np.ndarray:
    """Project out the direction that feeds the Nyquist bin of the tapered, mean-removed window."""
    n = windows.shape[1]
    direction = (-1.0) ** np.arange(n) * hann(n)
    direction -= direction.mean()
    weights = windows @ direction / (direction @ direction)
    return windows - weights[:, np.newaxis] * direction


@pytest.mark.parametrize("kind", ["normal", "impulsive", "sine"])
def test_rel_db_equals_band_rms_ratio(kind):
    # band.rms excludes its upper edge, so no band.rms contains the Nyquist
    # bin that the total of band.rel_db includes.  These windows have none.
    windows = without_nyquist_bin(random_windows(kind, 8, 2048))
    resolution = SAMPLE_RATE / 2048
    total = f"band.rms[{resolution / 2}-{SAMPLE_RATE / 2}]"
    bands = BANDS[1:]
    names = [*band_names(bands), *(f"band.rms[{low}-{high}]" for low, high in bands), total]
    features = extract(windows, SAMPLE_RATE, names)
    n = len(bands)
    ratio_db = 20 * np.log10(features[:, n : 2 * n] / features[:, -1:])
    np.testing.assert_allclose(features[:, :n], ratio_db, rtol=0, atol=DB_ATOL)


def test_rel_db_bands_add_up_to_total():
    # Bands that tile (0, Nyquist] hold all the power: their shares sum to 1.
    windows = random_windows("normal", 5, 2048)
    edges = [2.0, 500.0, 1500.0, 4000.0, 6000.0]
    names = band_names(itertools.pairwise(edges))
    shares = 10 ** (extract(windows, SAMPLE_RATE, names) / 10)
    nyquist_power = np.array(
        [one_sided_power(w)[-1] / one_sided_power(w)[1:].sum() for w in windows]
    )
    np.testing.assert_allclose(shares.sum(axis=1) + nyquist_power, 1.0, rtol=1e-12)


def test_rel_db_sine_in_and_out_of_band():
    # A sine on bin 100 with a Hann taper puts its power in bins 99 to 101 only.
    n = 2048
    frequency = 100 * SAMPLE_RATE / n
    window = 0.3 * np.sin(2 * np.pi * frequency * np.arange(n) / SAMPLE_RATE)
    names = band_names([(500, 650), (2000, 3000)])
    features = extract(window[np.newaxis], SAMPLE_RATE, names)
    assert features[0, 0] == pytest.approx(0.0, abs=1e-12)
    assert features[0, 1] == -LIMIT


# -- invariance ------------------------------------------------------------------------

# Windows of 512 samples whose spread is well above the float64 rounding of
# their offset.
windows_512 = st.integers(min_value=1, max_value=4).flatmap(
    lambda n_windows: arrays(
        np.float64,
        (n_windows, 512),
        elements=st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
    ).filter(lambda w: (np.ptp(w, axis=1) > 1e-3 * (1 + np.abs(w).max(axis=1))).all())
)
INVARIANT_NAMES = ["band.rel_db"]
INVARIANT_OPTIONS = {"bands": [(0, 200), (200, 1000), (1000, 3000), (3000, 6000)]}


def levels_of(windows: np.ndarray) -> np.ndarray:
    return extract(windows, SAMPLE_RATE, INVARIANT_NAMES, **INVARIANT_OPTIONS)


@settings(max_examples=60, deadline=None)
@given(windows=windows_512, exponent=st.integers(-30, 30))
def test_levels_exact_for_power_of_two_gain(windows, exponent):
    # Scaling by a power of two is exact in every step, so nothing may change.
    np.testing.assert_array_equal(levels_of(windows * 2.0**exponent), levels_of(windows))


@settings(max_examples=60, deadline=None)
@given(windows=windows_512, gain=st.floats(0.01, 100) | st.floats(-100, -0.01))
def test_levels_gain_invariant(windows, gain):
    base = levels_of(windows)
    scaled = levels_of(windows * gain)
    # Shares of the total power, so rounding is relative to the total.
    np.testing.assert_allclose(10 ** (scaled / 10), 10 ** (base / 10), rtol=1e-9, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(windows=windows_512, offset=st.floats(-100, 100))
def test_levels_offset_invariant(windows, offset):
    base = levels_of(windows)
    shifted = levels_of(windows + offset)
    # Shifting rounds each deviation by about eps * scale, which moves a
    # share of the power by about that much over the window's spread.
    scale = np.abs(windows).max() + abs(offset)
    spread = windows.std(axis=1)[:, np.newaxis]
    share_error = 1e-12 * scale / spread
    share_difference = np.abs(10 ** (shifted / 10) - 10 ** (base / 10))
    assert (share_difference <= 1e-12 + share_error).all()


# -- windows without a meaningful ratio ----------------------------------------------------

FLAGGED_NAMES = ["band.rel_db"]
FLAGGED_OPTIONS = {"bands": BANDS}


@pytest.mark.parametrize(
    "window",
    [
        np.zeros(2048),
        np.full(2048, 0.1),
        np.full(2048, -3.3e5),
        np.full(2048, 1e-300),
        np.full(2048, 1234, dtype=np.int16),
    ],
    ids=["zero", "0.1", "-3.3e5", "1e-300", "int16"],
)
def test_constant_window_levels_finite(window):
    features = extract(window[np.newaxis], SAMPLE_RATE, FLAGGED_NAMES, **FLAGGED_OPTIONS)
    assert np.isfinite(features).all()
    assert (np.abs(features) <= LIMIT).all()


def test_zero_window_levels_at_limit():
    features = extract(np.zeros((2, 2048)), SAMPLE_RATE, FLAGGED_NAMES, **FLAGGED_OPTIONS)
    np.testing.assert_array_equal(features, -LIMIT)


def test_nan_window_levels_isolated():
    windows = random_windows("impulsive", 3, 2048)
    alone = extract(windows, SAMPLE_RATE, FLAGGED_NAMES, **FLAGGED_OPTIONS)
    windows[1, 100] = np.nan
    features = extract(windows, SAMPLE_RATE, FLAGGED_NAMES, **FLAGGED_OPTIONS)
    assert np.isnan(features[1]).all()
    np.testing.assert_allclose(features[[0, 2]], alone[[0, 2]], rtol=1e-12, atol=1e-12)


# -- configuration, names and the stored specification ---------------------------------------


def test_rel_db_band_above_nyquist_named():
    with pytest.raises(ConfigError, match=r"band 'band.rel_db\[5000-7000\]' is above Nyquist"):
        FeatureExtractor(["band.rel_db[5000-7000]"], SAMPLE_RATE, 2048)


def test_level_names_expand_to_configuration():
    extractor = FeatureExtractor(
        ["band.rel_db", "band.rms[10-20]"], SAMPLE_RATE, 2048, bands=[(10, 1000), "1000-3000"]
    )
    assert extractor.names == ("band.rel_db[10-1000]", "band.rel_db[1000-3000]", "band.rms[10-20]")


def test_level_specification_round_trip():
    extractor = FeatureExtractor(["band.rel_db"], SAMPLE_RATE, 2048, bands=[(10, 1000)])
    spec = json.loads(json.dumps(extractor.to_dict()))
    assert spec["names"] == ["band.rel_db[10-1000]"]
    rebuilt = FeatureExtractor.from_dict(spec)
    assert rebuilt == extractor
    windows = random_windows("impulsive", 3, 2048)
    np.testing.assert_array_equal(rebuilt.transform(windows), extractor.transform(windows))
