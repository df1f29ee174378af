"""Relative band levels and envelope levels in dB: references, identities and conventions.

``band.rel_db`` and ``env.level_db`` are ratios.  The tests compare them
with numpy references written from docs/features.md and with the ratio of
the features they derive from.  They also check invariance to gain and
offset, and the values given where a ratio has no meaning (constant and NaN
windows).
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

ENVELOPE = {
    "band": (2000, 5000),
    "targets": ["3.5848x", "5.4152x", "250Hz"],
    "shaft_hz": 29.95,
    "tolerance": 0.05,
}
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


def envelope_spectrum(x: np.ndarray, band: tuple[float, float], sample_rate: float) -> np.ndarray:
    """Return E_k: ideal band-pass and analytic signal in one complex FFT pair, then |rfft|."""
    n = len(x)
    spectrum = np.fft.fft(x - x.mean())
    frequencies = np.fft.fftfreq(n, 1 / sample_rate)
    keep = (frequencies >= band[0]) & (frequencies < band[1])
    envelope = np.abs(np.fft.ifft(np.where(keep, 2 * spectrum, 0)))
    taper = hann(n)
    amplitude = np.abs(np.fft.rfft((envelope - envelope.mean()) * taper)) * 2 / taper.sum()
    amplitude[[0, -1]] /= 2
    return amplitude


def level_db_reference(
    x: np.ndarray,
    frequency: float,
    sample_rate: float,
    band: tuple[float, float] = (2000, 5000),
    tolerance: float = 0.05,
    floor_band: tuple[float, float] = (1, 600),
) -> float:
    amplitude = envelope_spectrum(x, band, sample_rate)
    frequencies = bin_frequencies(len(x), sample_rate)
    floor_bins = (frequencies >= floor_band[0]) & (frequencies <= floor_band[1])
    floor = np.median(amplitude[floor_bins])
    search = np.abs(frequencies - frequency) <= max(tolerance * frequency, sample_rate / len(x))
    return float(20 * np.log10(amplitude[search].max() / floor))


def target_hertz(target: str, shaft_hz: float) -> float:
    return float(target[:-1]) * shaft_hz if target.endswith("x") else float(target[:-2])


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


# -- env.level_db against its reference ---------------------------------------------------


@pytest.mark.parametrize("kind", ["normal", "impulsive", "sine"])
@pytest.mark.parametrize("floor_band", [(1, 600), (10, 300), (50.5, 52 * SAMPLE_RATE / 2048)])
def test_level_db_random_windows(kind, floor_band):
    windows = random_windows(kind, 6, 2048, seed=7)
    envelope = ENVELOPE | {"floor_band": floor_band}
    features = extract(windows, SAMPLE_RATE, ["env.level_db"], envelope=envelope)
    for column, target in enumerate(ENVELOPE["targets"]):
        frequency = target_hertz(target, ENVELOPE["shaft_hz"])
        expected = [
            level_db_reference(w, frequency, SAMPLE_RATE, floor_band=floor_band) for w in windows
        ]
        np.testing.assert_allclose(features[:, column], expected, rtol=0, atol=DB_ATOL)


@pytest.mark.shared_data
def test_level_db_real_windows(cwru_windows):
    names = ["env.level_db[3.5848x]", "env.level_db[1x]", "env.level_db[0.39828x]"]
    features = extract(cwru_windows, SAMPLE_RATE, names, channels=("DE", "FE"), envelope=ENVELOPE)
    for channel in range(2):
        for column, name in enumerate(names):
            frequency = target_hertz(name[13:-1], ENVELOPE["shaft_hz"])
            expected = [
                level_db_reference(w, frequency, SAMPLE_RATE) for w in cwru_windows[:, :, channel]
            ]
            actual = features[:, channel * len(names) + column]
            np.testing.assert_allclose(actual, expected, rtol=0, atol=DB_ATOL, err_msg=name)


def test_level_db_is_level_over_floor():
    windows = random_windows("impulsive", 5, 4096)
    names = ["env.level[3.5848x]", "env.level_db[3.5848x]"]
    features = extract(windows, SAMPLE_RATE, names, envelope=ENVELOPE)
    floor, _ = envelope_floor_and_peak(windows)
    np.testing.assert_allclose(
        features[:, 1], 20 * np.log10(features[:, 0] / floor), rtol=0, atol=DB_ATOL
    )
    # The bursts repeat at the target, so their line rises well above the floor.
    assert (features[:, 1] > 20).all()


# Computed once with the numpy reference implementation of the study that
# chose the recommended default, as `features(windows, 12000, 29.95)`.  Each
# row is the DE channel of a record, one window of 4096 samples from sample
# 8192.  The values are 18 relative third-octave levels, then the envelope
# levels at 5.4152x, 3.5848x, 7.1696x, 4.7135x, 0.39828x and 1x.  That code
# adds 1e-12 to numerator and denominator, which moves them by under 1e-7 dB.
STUDY_VALUES = {
    "12k_Drive_End_IR007_0_105.mat": [
        [-56.271623, -39.707732, -26.958854, -36.278428, -38.530221, -33.702894, -27.686873,
         -21.016467, -14.390142, -26.333126, -21.295701, -10.351233, -14.111063, -16.020033,
         -5.588179, -5.822558, -6.172516, -22.204703],
        [27.436267, 21.468868, 14.908757, 2.114738, 5.949110, 7.063457],
    ],
    "12k_Drive_End_OR014@6_1_198.mat": [
        [-46.345808, -36.256602, -19.721375, -24.584341, -25.665092, -24.160383, -16.784238,
         -17.286813, -17.809780, -16.225945, -17.651131, -22.181503, -24.778106, -23.940746,
         -13.442108, -2.636458, -6.589665, -12.304611],
        [8.927456, 7.522705, 3.582902, 6.769815, 8.157276, 5.752782],
    ],
    "12k_Drive_End_B021_2_224.mat": [
        [-50.267223, -38.388986, -20.313085, -27.927017, -28.789898, -25.519297, -18.492445,
         -18.213675, -17.481391, -18.313392, -15.197156, -13.176235, -23.230829, -23.144937,
         -11.206094, -1.461643, -16.825289, -16.154286],
        [9.613842, 11.856178, 2.130964, 3.842691, 13.547250, 15.038942],
    ],
}  # fmt: skip


@pytest.mark.shared_data
@pytest.mark.parametrize("record", sorted(STUDY_VALUES))
def test_recommended_preset_matches_study(cwru_dir, record):
    from edgemon.recordings import read_recording

    centres = 1000.0 * 2.0 ** (np.arange(-10, 8) / 3.0)
    bands = [(float(c * 2 ** (-1 / 6)), float(c * 2 ** (1 / 6))) for c in centres]
    envelope = {
        "band": (2500, 4000),
        "targets": ["5.4152x", "3.5848x", "7.1696x", "4.7135x", "0.39828x", "1x"],
        "shaft_hz": 29.95,
        "tolerance": 0.05,
    }
    extractor = FeatureExtractor(
        ["band.rel_db", "env.level_db"], SAMPLE_RATE, 4096, bands=bands, envelope=envelope
    )
    samples = read_recording(cwru_dir / record, channels="DE").samples[8192 : 8192 + 4096, 0]
    features = extractor.transform(samples[np.newaxis])
    rel_db, level_db = STUDY_VALUES[record]
    np.testing.assert_allclose(features[0], [*rel_db, *level_db], rtol=0, atol=1e-3)


# -- invariance ------------------------------------------------------------------------

# Windows of 512 samples whose spread is well above the float64 rounding of
# their offset.  At 12 kHz the floor band 1-600 Hz contains 25 bins.
windows_512 = st.integers(min_value=1, max_value=4).flatmap(
    lambda n_windows: arrays(
        np.float64,
        (n_windows, 512),
        elements=st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
    ).filter(lambda w: (np.ptp(w, axis=1) > 1e-3 * (1 + np.abs(w).max(axis=1))).all())
)
INVARIANT_NAMES = ["band.rel_db", "env.level_db"]
INVARIANT_OPTIONS = {
    "bands": [(0, 200), (200, 1000), (1000, 3000), (3000, 6000)],
    "envelope": {"band": (2000, 5000), "targets": ["100Hz", "400Hz", "1000Hz"]},
}


def levels_of(windows: np.ndarray) -> np.ndarray:
    return extract(windows, SAMPLE_RATE, INVARIANT_NAMES, **INVARIANT_OPTIONS)


def envelope_floor_and_peak(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return each window's envelope floor (1 to 600 Hz) and largest envelope amplitude, in g."""
    floor_bins = (bin_frequencies(windows.shape[1], SAMPLE_RATE) >= 1) & (
        bin_frequencies(windows.shape[1], SAMPLE_RATE) <= 600
    )
    spectra = np.array([envelope_spectrum(w, (2000, 5000), SAMPLE_RATE) for w in windows])
    return np.median(spectra[:, floor_bins], axis=1), spectra.max(axis=1)


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
    n_bands = len(INVARIANT_OPTIONS["bands"])
    # Shares of the total power, so rounding is relative to the total.
    np.testing.assert_allclose(
        10 ** (scaled[:, :n_bands] / 10), 10 ** (base[:, :n_bands] / 10), rtol=1e-9, atol=1e-12
    )
    # Rounding is relative to the largest envelope amplitude, so it moves a
    # level by about 1e-15 of that amplitude over the floor.
    floor, peak = envelope_floor_and_peak(windows)
    relative = 1e-12 * (peak / floor)[:, np.newaxis]
    difference = np.abs(10 ** (scaled[:, n_bands:] / 20) / 10 ** (base[:, n_bands:] / 20) - 1)
    assert (difference <= 1e-9 + relative).all()


@settings(max_examples=60, deadline=None)
@given(windows=windows_512, offset=st.floats(-100, 100))
def test_levels_offset_invariant(windows, offset):
    base = levels_of(windows)
    shifted = levels_of(windows + offset)
    n_bands = len(INVARIANT_OPTIONS["bands"])
    # Shifting rounds each deviation by about eps * scale, which moves a
    # share of the power by about that much over the window's spread.
    scale = np.abs(windows).max() + abs(offset)
    spread = windows.std(axis=1)[:, np.newaxis]
    share_error = 1e-12 * scale / spread
    share_difference = np.abs(10 ** (shifted[:, :n_bands] / 10) - 10 ** (base[:, :n_bands] / 10))
    assert (share_difference <= 1e-12 + share_error).all()
    # The same rounding, in g, moves a level by that much over the floor.
    floor, _ = envelope_floor_and_peak(windows)
    difference = np.abs(10 ** (shifted[:, n_bands:] / 20) / 10 ** (base[:, n_bands:] / 20) - 1)
    assert (difference <= 1e-9 + 1e-12 * scale / floor[:, np.newaxis]).all()


# -- windows without a meaningful ratio ----------------------------------------------------

FLAGGED_NAMES = ["band.rel_db", "env.level_db"]
FLAGGED_OPTIONS = {"bands": BANDS, "envelope": ENVELOPE}


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


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"floor_band": (0, 600)}, r"floor_band 0-600 Hz must have a low edge above 0 Hz"),
        ({"floor_band": (600, 1)}, r"invalid envelope floor_band: a band must be a pair"),
        ({"floor_band": "1-600-7"}, r"invalid envelope floor_band"),
        ({"floor_band": (1, 6000)}, r"floor_band 1-6000 Hz must lie below Nyquist \(6000 Hz"),
        ({"floor_band": (1, 7000)}, r"must lie below Nyquist"),
        ({"floor_band": (100, 101)}, r"contains 0 bins of the envelope spectrum"),
        ({"floor_band": (100, 120)}, r"contains 3 bins .* needs at least 5"),
        ({"band": (2000, 2400)}, r"floor_band 1-600 Hz reaches above the envelope band's width"),
    ],
)
def test_floor_band_rejected(options, match):
    envelope = ENVELOPE | options
    with pytest.raises(ConfigError, match=match):
        FeatureExtractor(["env.level_db[250Hz]"], SAMPLE_RATE, 2048, envelope=envelope)


def test_floor_band_checked_only_when_used():
    # At 1 kHz the default floor band reaches above Nyquist, which matters
    # to env.level_db only.
    envelope = {"band": (100, 450), "targets": ["50Hz"]}
    extractor = FeatureExtractor(["env.level"], 1000.0, 1024, envelope=envelope)
    assert extractor.names == ("env.level[50Hz]",)
    with pytest.raises(ConfigError, match=r"'env.level_db\[50Hz\]': envelope floor_band"):
        FeatureExtractor(["env.level", "env.level_db"], 1000.0, 1024, envelope=envelope)


def test_rel_db_band_above_nyquist_named():
    with pytest.raises(ConfigError, match=r"band 'band.rel_db\[5000-7000\]' is above Nyquist"):
        FeatureExtractor(["band.rel_db[5000-7000]"], SAMPLE_RATE, 2048)


def test_level_names_expand_to_configuration():
    extractor = FeatureExtractor(
        ["band.rel_db", "env.level_db", "band.rms[10-20]"],
        SAMPLE_RATE,
        2048,
        bands=[(10, 1000), "1000-3000"],
        envelope=ENVELOPE,
    )
    assert extractor.names == (
        "band.rel_db[10-1000]",
        "band.rel_db[1000-3000]",
        "env.level_db[3.5848x]",
        "env.level_db[5.4152x]",
        "env.level_db[250Hz]",
        "band.rms[10-20]",
    )


def test_level_specification_round_trip():
    envelope = ENVELOPE | {"floor_band": (5.5, 420)}
    extractor = FeatureExtractor(
        ["band.rel_db", "env.level_db"], SAMPLE_RATE, 2048, bands=[(10, 1000)], envelope=envelope
    )
    spec = json.loads(json.dumps(extractor.to_dict()))
    assert spec["envelope"]["floor_band"] == [5.5, 420.0]
    assert spec["names"] == [
        "band.rel_db[10-1000]",
        "env.level_db[3.5848x]",
        "env.level_db[5.4152x]",
        "env.level_db[250Hz]",
    ]
    rebuilt = FeatureExtractor.from_dict(spec)
    assert rebuilt == extractor
    windows = random_windows("impulsive", 3, 2048)
    np.testing.assert_array_equal(rebuilt.transform(windows), extractor.transform(windows))


def test_specification_without_floor_band_uses_default():
    # Specifications stored before floor_band existed lack the key.
    spec = FeatureExtractor(["env.level"], SAMPLE_RATE, 2048, envelope=ENVELOPE).to_dict()
    del spec["envelope"]["floor_band"]
    rebuilt = FeatureExtractor.from_dict(spec)
    assert rebuilt.to_dict()["envelope"]["floor_band"] == [1.0, 600.0]
