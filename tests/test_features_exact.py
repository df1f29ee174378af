"""Every feature against a straightforward reference on one window, to 1e-9 relative.

The references use numpy and scipy.stats on a single 1-D window, written
from the definitions in docs/features.md, so that they share no code with
the vectorised kernels.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import scipy.stats

from edgemon.features import FEATURE_NAMES, FeatureExtractor, extract

RTOL = 1e-9
SAMPLE_RATE = 12000.0


# -- references -----------------------------------------------------------------


def hann(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)


def amplitude_spectrum(x: np.ndarray, nfft: int | None = None) -> np.ndarray:
    """Hann-tapered single-sided amplitude spectrum, Welch-averaged in power when nfft < len(x)."""
    nfft = len(x) if nfft is None else nfft
    taper = hann(nfft)
    d = x - x.mean()
    powers = [
        np.abs(np.fft.rfft(d[start : start + nfft] * taper)) ** 2
        for start in range(0, len(x) - nfft + 1, nfft // 2)
    ]
    amplitude = np.sqrt(np.mean(powers, axis=0)) * 2 / taper.sum()
    amplitude[0] /= 2
    amplitude[-1] /= 2
    return amplitude


def band_rms(x: np.ndarray, low: float, high: float, sample_rate: float) -> float:
    """RMS in [low, high) from the Hann-tapered periodogram, scaled as a power density."""
    n = len(x)
    taper = hann(n)
    power = np.abs(np.fft.rfft((x - x.mean()) * taper)) ** 2 / (n * np.sum(taper**2))
    power[1:-1] *= 2
    frequencies = np.fft.rfftfreq(n, 1 / sample_rate)
    inside = (frequencies >= low) & (frequencies < high)
    return float(np.sqrt(power[inside].sum()))


def envelope_level(
    x: np.ndarray, band: tuple[float, float], frequency: float, tolerance: float, sample_rate: float
) -> float:
    """Ideal band-pass, scipy.signal.hilbert, then the Hann amplitude spectrum of the envelope."""
    n = len(x)
    spectrum = np.fft.rfft(x - x.mean())
    frequencies = np.fft.rfftfreq(n, 1 / sample_rate)
    spectrum[(frequencies < band[0]) | (frequencies >= band[1])] = 0
    envelope = np.abs(scipy.signal.hilbert(np.fft.irfft(spectrum, n)))
    amplitude = amplitude_spectrum(envelope)
    half_width = max(tolerance * frequency, sample_rate / n)
    return float(amplitude[np.abs(frequencies - frequency) <= half_width].max())


def reference(name: str, x: np.ndarray, sample_rate: float) -> float:
    """Compute one scalar feature of one 1-D window from its definition."""
    domain, _, feature = name.partition(".")
    if domain == "freq":
        amplitude = amplitude_spectrum(x)
        if feature == "centroid":
            frequencies = np.fft.rfftfreq(len(x), 1 / sample_rate)
            return float(np.sum(frequencies * amplitude) / np.sum(amplitude))
        return statistic(feature, amplitude)
    d = x - x.mean()
    rms_ac = np.sqrt(np.mean(d**2))
    peak = np.max(np.abs(d))
    indicators = {
        "rms_ac": rms_ac,
        "rms": np.sqrt(np.mean(x**2)),
        "peak": peak,
        "peak_to_peak": np.ptp(x),
        "crest_factor": peak / rms_ac,
        "shape_factor": rms_ac / np.mean(np.abs(d)),
        "impulse_factor": peak / np.mean(np.abs(d)),
        "clearance_factor": peak / np.mean(np.sqrt(np.abs(d))) ** 2,
    }
    if feature in indicators:
        return float(indicators[feature])
    return statistic(feature, x)


def statistic(name: str, x: np.ndarray) -> float:
    return float(
        {
            "mean": np.mean,
            "median": np.median,
            "std": np.std,
            "iqr": scipy.stats.iqr,
            "skewness": scipy.stats.skew,
            "kurtosis": scipy.stats.kurtosis,
        }[name](x)
    )


def assert_matches_reference(
    features: np.ndarray, windows: np.ndarray, names: list[str], sample_rate: float
) -> None:
    expected = np.array([[reference(name, w, sample_rate) for name in names] for w in windows])
    for column, name in enumerate(names):
        np.testing.assert_allclose(
            features[:, column], expected[:, column], rtol=RTOL, atol=0, err_msg=name
        )


# -- windows ----------------------------------------------------------------------


def random_windows(kind: str, n_windows: int, n_samples: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (n_windows, n_samples)
    if kind == "normal":
        return rng.normal(0.2, 1.5, size=shape)
    if kind == "skewed":
        return rng.gamma(2.0, 0.3, size=shape) - 0.4
    if kind == "impulsive":
        x = rng.normal(size=shape) * 0.05
        x[:, :: n_samples // 8] += 3.0
        return x
    if kind == "sine":
        t = np.arange(n_samples) / SAMPLE_RATE
        phases = rng.uniform(0, 2 * np.pi, size=(n_windows, 1))
        return 0.7 * np.sin(2 * np.pi * 157.0 * t + phases) + rng.normal(size=shape) * 0.01
    raise ValueError(kind)


@pytest.fixture(scope="module")
def cwru_windows(cwru_dir) -> np.ndarray:
    """Return 64 half-overlapping windows of 2048 samples, channels DE and FE, of record 198."""
    from edgemon.recordings import read_recording

    recording = read_recording(cwru_dir / "12k_Drive_End_OR014@6_1_198.mat", channels=("DE", "FE"))
    starts = np.arange(64) * 1024
    return recording.samples[starts[:, np.newaxis] + np.arange(2048)]


# -- tests ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["normal", "skewed", "impulsive", "sine"])
@pytest.mark.parametrize("n_windows", [1, 3, 64])
def test_features_random_windows(kind, n_windows):
    windows = random_windows(kind, n_windows, 2048)
    names = list(FEATURE_NAMES)
    assert_matches_reference(extract(windows, SAMPLE_RATE, names), windows, names, SAMPLE_RATE)


@pytest.mark.parametrize("n_samples", [16, 18, 1000, 2050, 4096])
@pytest.mark.parametrize("n_windows", [1, 16])
def test_features_window_lengths(n_samples, n_windows):
    windows = random_windows("skewed", n_windows, n_samples, seed=n_samples)
    names = list(FEATURE_NAMES)
    assert_matches_reference(extract(windows, SAMPLE_RATE, names), windows, names, SAMPLE_RATE)


@pytest.mark.shared_data
def test_features_real_windows(cwru_windows):
    names = list(FEATURE_NAMES)
    features = extract(cwru_windows, SAMPLE_RATE, names, channels=("DE", "FE"))
    n = len(names)
    assert_matches_reference(features[:, :n], cwru_windows[:, :, 0], names, SAMPLE_RATE)
    assert_matches_reference(features[:, n:], cwru_windows[:, :, 1], names, SAMPLE_RATE)


@pytest.mark.shared_data
def test_features_real_resultant(cwru_windows):
    names = ["time.rms", "time.kurtosis", "freq.iqr", "freq.centroid"]
    extractor = FeatureExtractor(names, SAMPLE_RATE, 2048, ("DE", "FE"), resultant=True)
    features = extractor.transform(cwru_windows)
    magnitude = np.sqrt(np.sum(cwru_windows**2, axis=2))
    assert extractor.columns[-4:] == tuple(f"resultant:{name}" for name in names)
    assert_matches_reference(features[:, -4:], magnitude, names, SAMPLE_RATE)


@pytest.mark.shared_data
@pytest.mark.parametrize("band", [(0.0, 500.0), (500.0, 2000.0), (2500.0, 6000.0)])
def test_band_rms_real_windows(cwru_windows, band):
    windows = cwru_windows[:8, :, 0]
    features = extract(windows, SAMPLE_RATE, [f"band.rms[{band[0]}-{band[1]}]"])
    expected = [band_rms(w, *band, SAMPLE_RATE) for w in windows]
    np.testing.assert_allclose(features[:, 0], expected, rtol=RTOL)


@pytest.mark.shared_data
def test_envelope_levels_real_windows(cwru_windows):
    # Record 198: outer race fault at 1772 rpm; BPFO is 3.5848 orders.
    shaft_hz = 1772 / 60
    windows = cwru_windows[:8, :, 0]
    envelope = {"band": (2000, 5000), "shaft_hz": shaft_hz, "tolerance": 0.02}
    names = ["env.level[3.5848x]", "env.level[1x]", "env.level[250Hz]"]
    features = extract(windows, SAMPLE_RATE, names, envelope=envelope)
    for column, frequency in enumerate([3.5848 * shaft_hz, shaft_hz, 250.0]):
        expected = [envelope_level(w, (2000, 5000), frequency, 0.02, SAMPLE_RATE) for w in windows]
        np.testing.assert_allclose(features[:, column], expected, rtol=RTOL, err_msg=names[column])


@pytest.mark.parametrize("nfft", [256, 512, 1024])
def test_welch_spectrum_statistics(nfft):
    windows = random_windows("impulsive", 5, 2048, seed=nfft)
    names = ["freq.mean", "freq.median", "freq.std", "freq.iqr", "freq.skewness", "freq.kurtosis"]
    features = extract(windows, SAMPLE_RATE, names, nfft=nfft)
    for row, window in zip(features, windows, strict=True):
        amplitude = amplitude_spectrum(window, nfft)
        expected = [statistic(name.partition(".")[2], amplitude) for name in names]
        np.testing.assert_allclose(row, expected, rtol=RTOL)


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.float32])
def test_features_narrow_dtypes(dtype):
    rng = np.random.default_rng(3)
    windows = (rng.normal(size=(4, 1024)) * 1000).astype(dtype)
    names = list(FEATURE_NAMES)
    features = extract(windows, SAMPLE_RATE, names)
    assert features.dtype == np.float64
    assert_matches_reference(features, windows.astype(np.float64), names, SAMPLE_RATE)


def test_channel_major_columns():
    rng = np.random.default_rng(4)
    windows = rng.normal(size=(6, 512, 3))
    names = ["time.std", "freq.median"]
    extractor = FeatureExtractor(names, SAMPLE_RATE, 512, ("x", "y", "z"))
    features = extractor.transform(windows)
    assert extractor.columns == (
        "x:time.std",
        "x:freq.median",
        "y:time.std",
        "y:freq.median",
        "z:time.std",
        "z:freq.median",
    )
    for channel in range(3):
        alone = extract(np.ascontiguousarray(windows[:, :, channel]), SAMPLE_RATE, names)
        np.testing.assert_array_equal(features[:, 2 * channel : 2 * channel + 2], alone)
