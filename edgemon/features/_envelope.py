"""Envelope spectrum of each window and its levels at bearing defect frequencies.

A local bearing defect excites a structural resonance at every impact, so the
defect frequency shows up as the repetition rate of bursts in a high
frequency band rather than as a line in the raw spectrum.  The envelope method
recovers it:

1. band-pass: keep the FFT bins of the mean-removed window with
   ``low <= f_k < high`` (an ideal filter, applied circularly);
2. analytic signal: double those bins, zero the rest and take the inverse
   complex FFT, which is the Hilbert transform method with numpy FFTs only;
3. envelope: the magnitude of the analytic signal;
4. envelope spectrum: the amplitude spectrum of the envelope with its mean
   removed, with the same Hann taper and scaling as the raw spectrum.

The level at a defect frequency ``f`` is the largest envelope-spectrum
amplitude over the bins within ``max(tolerance * f, df)`` of ``f``, where
``df = sample_rate / window``.  The tolerance absorbs the few per cent by
which slip and load move the real defect frequency from its nominal value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgemon.features._spectrum import Band, format_number, hann, single_sided_factors
from edgemon.features._stats import SampleStatistics
from edgemon.features._workspace import Workspace, cached_attribute

__all__ = ["DefectFrequency", "Envelope", "EnvelopePlan", "EnvelopeSettings"]


@dataclass(frozen=True)
class DefectFrequency:
    """A frequency of interest in the envelope spectrum.

    ``unit`` is ``"x"`` for an order of the shaft speed (for example the
    ball-pass frequency of the outer race, 3.5848x for an SKF 6205) or
    ``"Hz"`` for a fixed frequency.
    """

    value: float
    unit: str

    def __str__(self) -> str:
        return f"{format_number(self.value)}{self.unit}"

    def hertz(self, shaft_hz: float | None) -> float:
        """Return the frequency in Hz; orders need ``shaft_hz``."""
        if self.unit == "Hz":
            return self.value
        if shaft_hz is None:
            raise ValueError(f"the order {self} needs the shaft speed")
        return self.value * shaft_hz


@dataclass(frozen=True)
class EnvelopeSettings:
    """Settings of the envelope features.

    Parameters
    ----------
    band : Band
        Band-pass applied before demodulation, Hz.  Choose it around a
        structural resonance that the impacts excite, above the running
        speed harmonics.
    targets : tuple of DefectFrequency, default=()
        Frequencies that the bare name ``env.level`` expands to.
    shaft_hz : float or None, default=None
        Shaft speed in Hz (rpm / 60); needed by targets given as orders.
    tolerance : float, default=0.02
        Relative half-width of the search around each target.
    """

    band: Band
    targets: tuple[DefectFrequency, ...] = ()
    shaft_hz: float | None = None
    tolerance: float = 0.02

    def to_dict(self) -> dict:
        """Return the settings as plain JSON types."""
        return {
            "band": [self.band.low, self.band.high],
            "targets": [str(target) for target in self.targets],
            "shaft_hz": self.shaft_hz,
            "tolerance": self.tolerance,
        }


class EnvelopePlan:
    """Bins, taper and search ranges of the envelope features for one configuration.

    Parameters
    ----------
    sample_rate : float
        Hz.
    window : int
        Samples per window.
    settings : EnvelopeSettings
        Already validated against ``sample_rate`` and ``window``.
    targets : sequence of DefectFrequency
        Every target that a requested feature needs.
    """

    def __init__(
        self,
        sample_rate: float,
        window: int,
        settings: EnvelopeSettings,
        targets: tuple[DefectFrequency, ...],
    ) -> None:
        self.window = window
        self.n_bins = window // 2 + 1
        self.resolution = sample_rate / window
        self.frequencies = np.arange(self.n_bins) * self.resolution
        band = settings.band
        self.passband = _bin_range((self.frequencies >= band.low) & (self.frequencies < band.high))
        self.taper = hann(window)
        self.amplitude_scale = single_sided_factors(self.n_bins, window) / self.taper.sum()
        self.target_bins = {
            target: self.search_bins(target.hertz(settings.shaft_hz), settings.tolerance)
            for target in targets
        }

    def search_bins(self, frequency: float, tolerance: float) -> slice:
        """Return the bins within ``max(tolerance * frequency, resolution)`` of ``frequency`` Hz."""
        half_width = max(tolerance * frequency, self.resolution)
        return _bin_range(np.abs(self.frequencies - frequency) <= half_width)


def _bin_range(mask: np.ndarray) -> slice:
    """Return the slice from the first to the last true element of a contiguous ``mask``."""
    inside = np.flatnonzero(mask)
    return slice(int(inside[0]), int(inside[-1]) + 1)


class Envelope:
    """Envelope spectrum of a batch of rows, computed on first use.

    Parameters
    ----------
    samples : SampleStatistics
        Statistics of the samples, whose ``deviations`` (mean removed) are
        demodulated.
    plan : EnvelopePlan
    workspace : Workspace
    """

    def __init__(self, samples: SampleStatistics, plan: EnvelopePlan, workspace: Workspace) -> None:
        self._samples = samples
        self._plan = plan
        self._workspace = workspace

    @cached_attribute
    def amplitude(self) -> np.ndarray:
        """Amplitude spectrum of the envelope, shape (n_rows, n_bins), unit of the samples."""
        return envelope_spectrum(self._samples.deviations, self._plan, self._workspace)

    def level(self, target: DefectFrequency) -> np.ndarray:
        """Largest envelope-spectrum amplitude near ``target``, shape (n_rows,)."""
        return np.maximum.reduce(self.amplitude[:, self._plan.target_bins[target]], axis=1)


def envelope_spectrum(
    deviations: np.ndarray, plan: EnvelopePlan, workspace: Workspace
) -> np.ndarray:
    """Compute the scaled amplitude spectrum of the band-passed envelope of each row.

    Returns
    -------
    ndarray of shape (n_rows, n_bins)
        A view of a workspace array, valid until the next batch.
    """
    n_rows, window = deviations.shape
    spectrum = workspace.array("envelope.spectrum", (n_rows, plan.n_bins), np.complex128)
    np.fft.rfft(deviations, axis=1, out=spectrum)

    analytic_spectrum = workspace.array(
        "envelope.analytic_spectrum", (n_rows, window), np.complex128
    )
    analytic_spectrum.fill(0.0)
    np.multiply(spectrum[:, plan.passband], 2.0, out=analytic_spectrum[:, plan.passband])
    analytic = workspace.array("envelope.analytic", (n_rows, window), np.complex128)
    np.fft.ifft(analytic_spectrum, axis=1, out=analytic)

    envelope = workspace.array("envelope.envelope", (n_rows, window))
    np.abs(analytic, out=envelope)
    envelope -= (np.add.reduce(envelope, axis=1) / window)[:, np.newaxis]
    envelope *= plan.taper
    np.fft.rfft(envelope, axis=1, out=spectrum)

    amplitude = workspace.array("envelope.amplitude", (n_rows, plan.n_bins))
    np.abs(spectrum, out=amplitude)
    amplitude *= plan.amplitude_scale
    return amplitude
