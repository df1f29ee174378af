"""Read recorded vibration files with their true sample rates, and resample them.

Shared by the daemon's file source, the simulator and training. Formats, and
where each one's sample rate comes from:

- ``cwru``: CWRU Bearing Data Center ``.mat`` (``X<rrr>_DE_time`` ...); the
  ``12k_``/``48k_`` name prefix, or the record number for the 48 kHz normal
  baseline records 97-100.
- ``mfpt``: MFPT ``.mat`` (struct ``bearing`` with ``gs`` and ``sr``); ``bearing.sr``.
- ``ims``: IMS text, headerless whitespace-separated columns; 20,480 Hz.
- ``csv``: CSV with a header row of channel names; a ``# sample_rate=`` line
  before the header, or the caller.
- ``wav``: integer PCM WAV (8, 16, 24 or 32 bit); the header.
- ``npy``: NumPy ``.npy`` of shape (n_samples,) or (n_samples, n_channels); the caller.

A rate that the file states is never overridden: passing a different
``sample_rate`` raises :class:`~edgemon.errors.RecordingError`, and
:func:`resample` is the way to change it. SciPy is imported only inside the
functions that read ``.mat`` files (``scipy.io``), so importing this module
loads numpy and the standard library only. :func:`resample` uses
:mod:`edgemon.polyphase`, not ``scipy.signal``, whose import would load
``scipy.stats`` too.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from edgemon.errors import RecordingError
from edgemon.polyphase import resample_poly
from edgemon.recordings._formats import (
    CWRU_BASELINE_RECORDS,
    FORMATS,
    IMS_SAMPLE_RATE,
    READERS,
    detect_format,
    stack_channels,
)

__all__ = [
    "CWRU_BASELINE_RECORDS",
    "FORMATS",
    "IMS_SAMPLE_RATE",
    "Recording",
    "read_recording",
    "resample",
]

logger = logging.getLogger(__name__)
# Upper bound on the up and down factors of resample(); see its docstring.
_MAX_RESAMPLE_FACTOR = 2**16


@dataclass(frozen=True, eq=False)
class Recording:
    """A multi-channel recording held in memory.

    Parameters
    ----------
    samples : ndarray of shape (n_samples, n_channels), float64
        The signal in the file's units (g for the CWRU, MFPT and IMS data,
        a fraction of full scale for WAV). Stored as given, not copied.
    sample_rate : float
        Hz. The rate at which ``samples`` were taken.
    channels : tuple of str
        One name per column of ``samples``.
    path : Path or None
        The file the samples came from.
    sha256 : str or None
        Hex digest of the file's bytes, exactly those that were parsed.
        Kept through :func:`resample`, so it always names the source file.
    attrs : mapping
        Values the file states besides the signal, e.g. ``rpm`` and
        ``record`` for CWRU, ``load_lbs`` and ``shaft_hz`` for MFPT.
    """

    samples: np.ndarray
    sample_rate: float
    channels: tuple[str, ...]
    path: Path | None = None
    sha256: str | None = None
    attrs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        samples = np.asarray(self.samples, dtype=np.float64)
        if samples.ndim != 2:
            raise RecordingError(
                f"samples must have shape (n_samples, n_channels), got shape {samples.shape}"
            )
        channels = tuple(self.channels)
        if len(channels) != samples.shape[1]:
            raise RecordingError(
                f"{len(channels)} channel names given for {samples.shape[1]} columns of samples"
            )
        if not (math.isfinite(self.sample_rate) and self.sample_rate > 0):
            raise RecordingError(
                f"sample_rate must be a positive number of Hz, got {self.sample_rate}"
            )
        object.__setattr__(self, "samples", samples)
        object.__setattr__(self, "sample_rate", float(self.sample_rate))
        object.__setattr__(self, "channels", channels)
        # A plain dict copy, not a read-only proxy, so that recordings pickle.
        object.__setattr__(self, "attrs", dict(self.attrs))

    @property
    def n_samples(self) -> int:
        """Number of samples per channel."""
        return self.samples.shape[0]

    @property
    def duration(self) -> float:
        """Length of the recording in seconds."""
        return self.n_samples / self.sample_rate

    @property
    def name(self) -> str:
        """File name for messages, or ``"recording"`` when there is no file."""
        return self.path.name if self.path is not None else "recording"

    def channel(self, name: str) -> np.ndarray:
        """Return the samples of one channel, shape (n_samples,), as a view."""
        return self.samples[:, self._channel_index(name)]

    def select(self, channels: str | Sequence[str]) -> Recording:
        """Return a recording with only ``channels``, in the order given.

        Raises
        ------
        RecordingError
            If a name is unknown or repeated; the message lists the available channels.
        """
        names = (channels,) if isinstance(channels, str) else tuple(channels)
        if not names:
            raise RecordingError(f"no channels requested from {self.name}")
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise RecordingError(
                f"channel {repeated[0]!r} requested more than once from {self.name}"
            )
        indices = [self._channel_index(name) for name in names]
        return Recording(
            self.samples[:, indices], self.sample_rate, names, self.path, self.sha256, self.attrs
        )

    def _channel_index(self, name: str) -> int:
        try:
            return self.channels.index(name)
        except ValueError:
            available = ", ".join(sorted(self.channels))
            raise RecordingError(
                f"channel {name!r} not found in {self.name}; available: {available}"
            ) from None


def read_recording(
    path: str | os.PathLike[str],
    *,
    channels: str | Sequence[str] | None = None,
    format: str | None = None,
    sample_rate: float | None = None,
) -> Recording:
    """Read a recorded file at its true sample rate.

    Parameters
    ----------
    path : str or path-like
        The file to read.
    channels : str or sequence of str, optional
        Channel names to keep, in this order. Default: all, in the file's
        order (``DE, FE, BA`` for CWRU; ``gs`` for MFPT; ``ch1`` ... for
        IMS, WAV and ``.npy``; the header's names for CSV).
    format : {"cwru", "mfpt", "ims", "csv", "wav", "npy"}, optional
        Default: detected from the content (magic bytes, MATLAB variable
        names) and, for text, the extension ``.csv``.
    sample_rate : float, optional
        Hz. Required for ``.npy``, for CSV without a ``# sample_rate=`` line
        and for CWRU files whose rate is not known from their name or record
        number. Overrides the 20,480 Hz default for IMS. For files that state
        their rate it must match that rate.

    Returns
    -------
    Recording
        float64 samples of shape (n_samples, n_channels).

    Raises
    ------
    RecordingError
        If the file is missing, unreadable, corrupt or empty, contains NaN
        or Inf, has channels of different lengths or has no known sample
        rate. Also if a requested channel is not in the file.
    """
    path = Path(path)
    if format is not None and format not in FORMATS:
        raise RecordingError(f"unknown format {format!r}; supported formats: {', '.join(FORMATS)}")
    if sample_rate is not None and not (math.isfinite(sample_rate) and sample_rate > 0):
        raise RecordingError(f"sample_rate must be a positive number of Hz, got {sample_rate}")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RecordingError(f"recording not found: {path}") from None
    except OSError as exc:
        raise RecordingError(f"cannot read recording {path}: {exc.strerror or exc}") from exc
    if not data:
        raise RecordingError(f"{path} is empty (0 bytes)")

    kind = format or detect_format(path, data)
    reader = READERS[kind]
    signals, rate, attrs = reader(path, data, sample_rate)
    recording = Recording(
        stack_channels(path, signals),
        rate,
        tuple(signals),
        path,
        hashlib.sha256(data).hexdigest(),
        attrs,
    )
    if channels is not None:
        recording = recording.select(channels)
    _check_finite(recording)
    logger.debug(
        "read %s: %s format, %d samples x %s at %g Hz",
        path,
        kind,
        recording.n_samples,
        ",".join(recording.channels),
        recording.sample_rate,
    )
    return recording


def resample(recording: Recording, sample_rate: float) -> Recording:
    """Resample a recording to ``sample_rate`` with a polyphase anti-aliasing filter.

    Uses :func:`edgemon.polyphase.resample_poly` (the filter and alignment of
    :func:`scipy.signal.resample_poly`, in numpy) with the exact rational ratio
    ``sample_rate / recording.sample_rate`` (e.g. 48,000 -> 12,000 Hz is
    1/4, 48,828 -> 12,000 Hz is 1000/4069). When the reduced ratio needs a
    factor above 65,536 (only for rates with awkward fractional parts), the
    ratio is rounded with :meth:`fractions.Fraction.limit_denominator`, the
    result carries the rate actually reached, and a warning is logged.

    Parameters
    ----------
    recording : Recording
        Any recording.
    sample_rate : float
        Hz, the target rate.

    Returns
    -------
    Recording
        ``ceil(n_samples * up / down)`` samples per channel at the new rate.
        ``path``, ``sha256`` and ``attrs`` are kept; ``attrs["resampled_from"]``
        records the original rate in Hz. The input is returned unchanged when
        the rates are equal.

    Raises
    ------
    RecordingError
        If ``sample_rate`` is not a positive number, or differs from the
        recording's rate by more than a factor of 65,536.
    """
    if not (math.isfinite(sample_rate) and sample_rate > 0):
        raise RecordingError(f"sample_rate must be a positive number of Hz, got {sample_rate}")
    if sample_rate == recording.sample_rate:
        return recording

    ratio = Fraction(sample_rate) / Fraction(recording.sample_rate)
    if not 1 / _MAX_RESAMPLE_FACTOR <= ratio <= _MAX_RESAMPLE_FACTOR:
        raise RecordingError(
            f"cannot resample {recording.name} from {recording.sample_rate!r} Hz to "
            f"{sample_rate!r} Hz: the rates differ by more than a factor of "
            f"{_MAX_RESAMPLE_FACTOR}; check the sample rates"
        )
    if max(ratio.numerator, ratio.denominator) > _MAX_RESAMPLE_FACTOR:
        if ratio <= 1:
            ratio = ratio.limit_denominator(_MAX_RESAMPLE_FACTOR)
        else:
            ratio = 1 / (1 / ratio).limit_denominator(_MAX_RESAMPLE_FACTOR)
        reached = recording.sample_rate * ratio.numerator / ratio.denominator
        logger.warning(
            "resampling %s from %r Hz to %r Hz needs factors above %d; using %d/%d, "
            "which gives %r Hz",
            recording.name,
            recording.sample_rate,
            sample_rate,
            _MAX_RESAMPLE_FACTOR,
            ratio.numerator,
            ratio.denominator,
            reached,
        )
        sample_rate = reached

    samples = resample_poly(recording.samples, ratio.numerator, ratio.denominator)
    attrs = {**recording.attrs, "resampled_from": recording.sample_rate}
    return Recording(
        samples, sample_rate, recording.channels, recording.path, recording.sha256, attrs
    )


# Format detection ------------------------------------------------------------------------------


def _check_finite(recording: Recording) -> None:
    finite = np.isfinite(recording.samples)
    if finite.all():
        return
    for index, name in enumerate(recording.channels):
        bad = np.flatnonzero(~finite[:, index])
        if bad.size:
            raise RecordingError(
                f"{recording.name}: channel {name} has {bad.size} NaN or Inf values, "
                f"the first at sample {bad[0]}"
            )
