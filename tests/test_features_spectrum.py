"""Spectrum scaling, band levels and envelope levels on signals whose answer is known."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgemon.features import FeatureExtractor, extract
from edgemon.features._spectrum import SpectrumPlan, amplitude_spectrum
from edgemon.features._workspace import Workspace

SAMPLE_RATE = 12000.0
WINDOW = 2048
RESOLUTION = SAMPLE_RATE / WINDOW


def sine(amplitude: float, frequency: float, n: int = WINDOW, phase: float = 0.3) -> np.ndarray:
    t = np.arange(n) / SAMPLE_RATE
    return amplitude * np.sin(2 * np.pi * frequency * t + phase)


def spectrum_of(x: np.ndarray, nfft: int | None = None) -> np.ndarray:
    n = x.shape[-1]
    plan = SpectrumPlan(SAMPLE_RATE, n, nfft or n, ())
    rows = np.atleast_2d(x - x.mean(axis=-1, keepdims=True))
    return amplitude_spectrum(rows, plan, Workspace()).copy()


@pytest.mark.parametrize("amplitude", [0.01, 1.0, 37.5])
@pytest.mark.parametrize("bin_index", [1, 64, 128, 1000])
def test_sine_peak_equals_amplitude(amplitude, bin_index):
    spectrum = spectrum_of(sine(amplitude, bin_index * RESOLUTION))[0]
    assert spectrum.argmax() == bin_index
    assert spectrum[bin_index] == pytest.approx(amplitude, rel=1e-12)


@pytest.mark.parametrize("nfft", [256, 512, 2048])
def test_sine_peak_with_welch(nfft):
    frequency = 40 * SAMPLE_RATE / nfft
    spectrum = spectrum_of(sine(2.0, frequency), nfft)[0]
    assert spectrum[40] == pytest.approx(2.0, rel=1e-12)


def test_nyquist_cosine_amplitude():
    n = np.arange(WINDOW)
    spectrum = spectrum_of(3.0 * (-1.0) ** n)[0]
    assert spectrum[-1] == pytest.approx(3.0, rel=1e-12)


def test_sine_band_rms_is_amplitude_over_root_two():
    window = sine(2.0, 100 * RESOLUTION)
    names = ["band.rms[500-700]", "band.rms[1000-2000]", "band.rms[0-6000]", "time.std"]
    features = extract(window[np.newaxis], SAMPLE_RATE, names)[0]
    assert features[0] == pytest.approx(2.0 / np.sqrt(2), rel=1e-12)
    assert features[1] < 1e-12
    assert features[2] == pytest.approx(2.0 / np.sqrt(2), rel=1e-12)
    assert features[3] == pytest.approx(2.0 / np.sqrt(2), rel=1e-12)


def test_bands_add_up_in_power():
    window = np.random.default_rng(0).normal(size=(1, WINDOW))
    edges = [0, 100, 1000, 2500, 4000, 6000]
    names = [f"band.rms[{low}-{high}]" for low, high in itertools.pairwise(edges)]
    parts = extract(window, SAMPLE_RATE, names)[0]
    whole = extract(window, SAMPLE_RATE, ["band.rms[0-6000]"])[0, 0]
    assert np.sqrt(np.sum(parts**2)) == pytest.approx(whole, rel=1e-12)


def test_band_edges_half_open():
    # A bin-centred sine at exactly the upper edge belongs to the band above it.
    frequency = 128 * RESOLUTION
    names = [f"band.rms[0-{frequency}]", f"band.rms[{frequency}-6000]"]
    features = extract(sine(1.0, frequency)[np.newaxis], SAMPLE_RATE, names)[0]
    assert features[1] > features[0]


def test_sine_centroid_is_its_frequency():
    frequency = 300 * RESOLUTION
    centroid = extract(sine(1.0, frequency)[np.newaxis], SAMPLE_RATE, ["freq.centroid"])[0, 0]
    assert centroid == pytest.approx(frequency, rel=1e-9)


def test_offset_does_not_change_spectrum():
    window = np.random.default_rng(1).normal(size=(1, WINDOW))
    names = ["freq.all", "freq.centroid", "time.peak", "time.crest_factor", "time.std"]
    np.testing.assert_allclose(
        extract(window + 9.81, SAMPLE_RATE, names), extract(window, SAMPLE_RATE, names), rtol=1e-9
    )


def amplitude_modulated(
    modulation_hz: float, carrier_hz: float = 3000.0, depth: float = 0.5
) -> np.ndarray:
    t = np.arange(WINDOW) / SAMPLE_RATE
    return (1 + depth * np.cos(2 * np.pi * modulation_hz * t)) * np.sin(2 * np.pi * carrier_hz * t)


def test_envelope_finds_modulation():
    modulation = 20 * RESOLUTION
    extractor = FeatureExtractor(
        ["env.level[117.1875Hz]", "env.level[4x]", "env.level[200Hz]"],
        SAMPLE_RATE,
        WINDOW,
        envelope={"band": (2000, 4500), "shaft_hz": modulation / 4, "tolerance": 0.01},
    )
    at_modulation, as_order, elsewhere = extractor.transform(
        amplitude_modulated(modulation)[np.newaxis]
    )[0]
    # The envelope is 1 + 0.5 cos(...): its spectrum shows the depth, 0.5, at the modulation.
    assert at_modulation == pytest.approx(0.5, rel=1e-6)
    assert as_order == at_modulation
    assert elsewhere < 1e-6


def test_envelope_tolerance_widens_search():
    # The target is bin 20 and the modulation sits at bin 23, whose Hann
    # main lobe spans bins 22-24: one bin of search (tolerance 0) misses it,
    # 16 % (3.2 bins) finds it.
    names = ["env.level[117.1875Hz]"]
    window = amplitude_modulated(23 * RESOLUTION)[np.newaxis]
    narrow = extract(window, SAMPLE_RATE, names, envelope={"band": (2000, 4500), "tolerance": 0.0})
    wide = extract(window, SAMPLE_RATE, names, envelope={"band": (2000, 4500), "tolerance": 0.16})
    assert narrow[0, 0] < 1e-6
    assert wide[0, 0] == pytest.approx(0.5, rel=1e-6)
