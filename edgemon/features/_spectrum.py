"""Single-sided amplitude spectrum of each window, its band levels and centroid.

The spectrum of a window is taken after removing the window's mean and
multiplying by a periodic Hann taper ``w[i] = 0.5 - 0.5 cos(2 pi i / nfft)``.
Amplitudes are scaled by ``2 / sum(w)`` (``1 / sum(w)`` at 0 Hz and at the
Nyquist frequency), so a sine of amplitude ``A`` whose frequency falls on a
bin shows a peak of exactly ``A``.

When ``nfft`` is shorter than the window, the window is cut into segments of
``nfft`` samples that overlap by half, and the squared magnitudes of the
segments are averaged before the square root (Welch's method).

Band levels integrate power: the RMS of the signal in the band ``[low, high)``
is ``sqrt(sum_k c_k |X_k|**2 / (nfft * sum(w**2)))`` over the bins ``k`` whose
centre frequency ``f_k`` satisfies ``low <= f_k < high``, with ``c_k = 2``
(1 at 0 Hz and at the Nyquist frequency).  Summed over all bins, this is the
variance of a stationary signal, and a sine of amplitude ``A`` inside a band
gives ``A / sqrt(2)``.

Relative band levels divide a band's power by the power of every bin above
0 Hz and express the share in dB.  They come from the same band powers, so a
level costs one more column in the band-weight matrix, not another FFT.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from edgemon.features._stats import SampleStatistics, ratio
from edgemon.features._workspace import Workspace, cached_attribute

__all__ = ["DB_LIMIT", "Band", "Spectrum", "SpectrumPlan", "decibels", "hann"]

#: Largest magnitude of a level in dB.  Levels are clipped to
#: [-DB_LIMIT, DB_LIMIT] so that a zero power or amplitude, as in a constant
#: window, gives a finite value instead of -inf.  -200 dB is a power share
#: of 1e-20, far below what a 24-bit converter resolves (about -146 dB of
#: full scale).  It is above the rounding error of a float64 FFT, which is
#: 1e-26 of the total power or less for a 4096-point sine.
DB_LIMIT = 200.0


@dataclass(frozen=True, order=True)
class Band:
    """A frequency band ``[low, high)`` in Hz."""

    low: float
    high: float

    def __str__(self) -> str:
        return f"{format_number(self.low)}-{format_number(self.high)}"


def format_number(value: float) -> str:
    """Format a number for a feature name: shortest round-trip form, no trailing ``.0``."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def hann(n: int) -> np.ndarray:
    """Periodic Hann taper of length ``n``: ``0.5 - 0.5 cos(2 pi i / n)``."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def decibels(numerator: np.ndarray, denominator: np.ndarray, factor: float) -> np.ndarray:
    """Return ``factor * log10(numerator / denominator)``, clipped to [-DB_LIMIT, DB_LIMIT].

    ``factor`` is 10 for powers and 20 for amplitudes.  Both arrays are
    non-negative.  A zero denominator counts as the smallest normal float64
    (see :func:`ratio`), so ``0 / 0`` gives ``-DB_LIMIT``.  NaN stays NaN.
    Returns a new array of the broadcast shape.
    """
    bound = 10.0 ** (DB_LIMIT / factor)
    values = ratio(numerator, denominator)
    # Two ufuncs cost less than np.clip's Python wrapper on a single window.
    np.maximum(values, 1.0 / bound, out=values)
    np.minimum(values, bound, out=values)
    np.log10(values, out=values)
    values *= factor
    return values


def single_sided_factors(n_bins: int, nfft: int) -> np.ndarray:
    """Return 2 for each bin, except 1 at 0 Hz and, for even ``nfft``, at the Nyquist bin."""
    factors = np.full(n_bins, 2.0)
    factors[0] = 1.0
    if nfft % 2 == 0:
        factors[-1] = 1.0
    return factors


class SpectrumPlan:
    """Everything about the spectrum that depends on the configuration alone.

    Parameters
    ----------
    sample_rate : float
        Hz.
    window : int
        Samples per window.
    nfft : int
        FFT length; ``window - nfft`` is a multiple of ``nfft // 2``.
    bands : sequence of Band
        Bands whose RMS or relative level is requested, each containing at
        least one bin.
    """

    def __init__(self, sample_rate: float, window: int, nfft: int, bands: tuple[Band, ...]) -> None:
        self.nfft = nfft
        self.hop = nfft // 2
        self.n_segments = 1 + (window - nfft) // self.hop
        self.n_bins = nfft // 2 + 1
        self.taper = hann(nfft)
        self.frequencies = np.arange(self.n_bins) * (sample_rate / nfft)

        factors = single_sided_factors(self.n_bins, nfft)
        self.amplitude_scale = factors / self.taper.sum()
        power_scale = factors / (nfft * np.dot(self.taper, self.taper))

        # Band power is computed from squared amplitudes, so the weights undo
        # the amplitude scaling and apply the power scaling in one matrix.
        # The last column sums every bin above 0 Hz: the total power that
        # relative levels divide by.
        self.bands = bands
        self.band_index = {band: i for i, band in enumerate(bands)}
        weights = power_scale / self.amplitude_scale**2
        self.band_weights = np.zeros((self.n_bins, len(bands) + 1))
        for i, band in enumerate(bands):
            inside = self.band_mask(band)
            self.band_weights[inside, i] = weights[inside]
        self.band_weights[1:, -1] = weights[1:]

    def band_mask(self, band: Band) -> np.ndarray:
        """Return a boolean mask of the bins inside ``band``, shape (n_bins,)."""
        return (self.frequencies >= band.low) & (self.frequencies < band.high)


class Spectrum:
    """Amplitude spectrum of a batch of rows and the quantities derived from it, on demand.

    Parameters
    ----------
    samples : SampleStatistics
        Statistics of the samples, whose ``deviations`` (mean removed) are
        transformed.
    plan : SpectrumPlan
    workspace : Workspace
    """

    def __init__(self, samples: SampleStatistics, plan: SpectrumPlan, workspace: Workspace) -> None:
        self._samples = samples
        self._plan = plan
        self._workspace = workspace

    @cached_attribute
    def amplitude(self) -> np.ndarray:
        """Single-sided amplitude spectrum, shape (n_rows, n_bins), unit of the samples."""
        return amplitude_spectrum(self._samples.deviations, self._plan, self._workspace)

    @cached_attribute
    def centroid(self) -> np.ndarray:
        """Amplitude-weighted mean frequency ``sum(f A) / sum(A)`` in Hz; 0 for a zero spectrum."""
        amplitude = self.amplitude
        return ratio(amplitude @ self._plan.frequencies, np.add.reduce(amplitude, axis=1))

    @cached_attribute
    def _band_power(self) -> np.ndarray:
        """Power of each planned band, then the total above 0 Hz; shape (n_rows, n_bands + 1)."""
        amplitude = self.amplitude
        squared = self._workspace.array("spectrum.squared", amplitude.shape)
        np.multiply(amplitude, amplitude, out=squared)
        return squared @ self._plan.band_weights

    @cached_attribute
    def _band_rms(self) -> np.ndarray:
        return np.sqrt(self._band_power)

    @cached_attribute
    def _band_rel_db(self) -> np.ndarray:
        power = self._band_power
        return decibels(power[:, :-1], power[:, -1:], 10.0)

    def band_rms(self, band: Band) -> np.ndarray:
        """RMS of the signal in ``band``, shape (n_rows,), unit of the samples."""
        return self._band_rms[:, self._plan.band_index[band]]

    def band_rel_db(self, band: Band) -> np.ndarray:
        """Share of the power above 0 Hz that lies in ``band``, in dB, shape (n_rows,)."""
        return self._band_rel_db[:, self._plan.band_index[band]]


def amplitude_spectrum(
    deviations: np.ndarray, plan: SpectrumPlan, workspace: Workspace
) -> np.ndarray:
    """Compute the scaled single-sided amplitude spectrum of each row.

    Parameters
    ----------
    deviations : ndarray of shape (n_rows, window), float64
    plan : SpectrumPlan
    workspace : Workspace

    Returns
    -------
    ndarray of shape (n_rows, n_bins)
        A view of a workspace array, valid until the next batch.
    """
    n_rows = deviations.shape[0]
    amplitude = workspace.array("spectrum.amplitude", (n_rows, plan.n_bins))

    if plan.n_segments == 1:
        tapered = workspace.array("spectrum.tapered", (n_rows, plan.nfft))
        np.multiply(deviations, plan.taper, out=tapered)
        spectrum = workspace.array("spectrum.complex", (n_rows, plan.n_bins), np.complex128)
        np.fft.rfft(tapered, axis=1, out=spectrum)
        np.abs(spectrum, out=amplitude)
    else:
        segments = sliding_window_view(deviations, plan.nfft, axis=1)[:, :: plan.hop]
        shape = (n_rows, plan.n_segments)
        tapered = workspace.array("spectrum.tapered", (*shape, plan.nfft))
        np.multiply(segments, plan.taper, out=tapered)
        spectrum = workspace.array("spectrum.complex", (*shape, plan.n_bins), np.complex128)
        np.fft.rfft(tapered, axis=2, out=spectrum)
        power = workspace.array("spectrum.power", (*shape, plan.n_bins))
        np.abs(spectrum, out=power)
        np.multiply(power, power, out=power)
        np.mean(power, axis=1, out=amplitude)
        np.sqrt(amplitude, out=amplitude)

    amplitude *= plan.amplitude_scale
    return amplitude
