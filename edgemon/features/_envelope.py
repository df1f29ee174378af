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

The level in dB relates that peak to the window's own floor, the median
envelope-spectrum amplitude over the bins with ``low <= f_k <= high`` of the
settings' ``floor_band``: ``20 log10(level / floor)``.  A gain that scales the
whole envelope spectrum cancels in the ratio.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgemon.features._spectrum import Band, decibels, format_number, hann, single_sided_factors
from edgemon.features._stats import SampleStatistics
from edgemon.features._workspace import Workspace, cached_attribute

__all__ = ["DEFAULT_FLOOR_BAND", "DefectFrequency", "Envelope", "EnvelopePlan", "EnvelopeSettings"]

#: Envelope-spectrum frequencies, Hz, whose median is the floor of
#: ``env.level_db`` unless the settings give another ``floor_band``.
DEFAULT_FLOOR_BAND = Band(1.0, 600.0)


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
    floor_band : Band, default=Band(1.0, 600.0)
        Envelope-spectrum frequencies, Hz, whose median amplitude is the
        floor of the ``env.level_db`` features.  Both edges are inclusive.
    """

    band: Band
    targets: tuple[DefectFrequency, ...] = ()
    shaft_hz: float | None = None
    tolerance: float = 0.02
    floor_band: Band = DEFAULT_FLOOR_BAND

    def to_dict(self) -> dict:
        """Return the settings as plain JSON types."""
        return {
            "band": [self.band.low, self.band.high],
            "targets": [str(target) for target in self.targets],
            "shaft_hz": self.shaft_hz,
            "tolerance": self.tolerance,
            "floor_band": [self.floor_band.low, self.floor_band.high],
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
    floor : bool, default=False
        Whether a requested feature needs the floor.  ``settings.floor_band``
        then contains at least one bin.
    """

    def __init__(
        self,
        sample_rate: float,
        window: int,
        settings: EnvelopeSettings,
        targets: tuple[DefectFrequency, ...],
        *,
        floor: bool = False,
    ) -> None:
        self.window = window
        self.n_bins = window // 2 + 1
        self.resolution = sample_rate / window
        self.frequencies = np.arange(self.n_bins) * self.resolution
        band = settings.band
        self.passband = _bin_range((self.frequencies >= band.low) & (self.frequencies < band.high))
        self.taper = hann(window)
        self.amplitude_scale = single_sided_factors(self.n_bins, window) / self.taper.sum()

        # The search ranges of all targets, laid end to end, so that one
        # take and one maximum.reduceat give every level of a row.
        self.target_index = {target: i for i, target in enumerate(targets)}
        ranges = [
            self.search_bins(target.hertz(settings.shaft_hz), settings.tolerance)
            for target in targets
        ]
        self.gather = np.concatenate(
            [np.arange(r.start, r.stop) for r in ranges] or [np.empty(0, dtype=np.intp)]
        )
        lengths = [r.stop - r.start for r in ranges]
        self.gather_starts = np.cumsum([0, *lengths[:-1]]) if ranges else np.empty(0, np.intp)

        self.floor_bins = None
        if floor:
            floor_band = settings.floor_band
            self.floor_bins = _bin_range(
                (self.frequencies >= floor_band.low) & (self.frequencies <= floor_band.high)
            )
            size = self.floor_bins.stop - self.floor_bins.start
            # Positions of the median: the middle one, or the middle two.
            self.floor_kth = tuple(sorted({(size - 1) // 2, size // 2}))

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

    @cached_attribute
    def levels(self) -> np.ndarray:
        """Level of every planned target, shape (n_rows, n_targets), unit of the samples."""
        plan = self._plan
        amplitude = self.amplitude
        gathered = self._workspace.array(
            "envelope.gathered", (amplitude.shape[0], plan.gather.size)
        )
        np.take(amplitude, plan.gather, axis=1, out=gathered, mode="clip")
        return np.maximum.reduceat(gathered, plan.gather_starts, axis=1)

    @cached_attribute
    def floor(self) -> np.ndarray:
        """Median amplitude over the floor band's bins, shape (n_rows,), unit of the samples."""
        plan = self._plan
        values = self.amplitude[:, plan.floor_bins]
        scratch = self._workspace.array("envelope.floor", values.shape)
        np.copyto(scratch, values)
        scratch.partition(plan.floor_kth, axis=1)
        low, high = plan.floor_kth[0], plan.floor_kth[-1]
        return (scratch[:, low] + scratch[:, high]) * 0.5

    @cached_attribute
    def _levels_db(self) -> np.ndarray:
        return decibels(self.levels, self.floor[:, np.newaxis], 20.0)

    def level(self, target: DefectFrequency) -> np.ndarray:
        """Largest envelope-spectrum amplitude near ``target``, shape (n_rows,)."""
        return self.levels[:, self._plan.target_index[target]]

    def level_db(self, target: DefectFrequency) -> np.ndarray:
        """Level near ``target`` over the floor, ``20 log10(level / floor)`` dB, shape (n_rows,)."""
        return self._levels_db[:, self._plan.target_index[target]]


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
