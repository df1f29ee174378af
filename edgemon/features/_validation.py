"""Checks of the feature stage's configuration and input, each raising ConfigError with the fix.

Everything that can be wrong with a configuration is caught when a
:class:`~edgemon.features.FeatureExtractor` is built, so a daemon fails at
start-up rather than on its first window.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgemon.errors import ConfigError
from edgemon.features._envelope import DefectFrequency, EnvelopeSettings
from edgemon.features._spectrum import Band, SpectrumPlan, format_number
from edgemon.features.catalogue import parse_band, parse_defect_frequency

__all__ = [
    "MIN_FLOOR_BINS",
    "MIN_WINDOW",
    "check_band",
    "check_channels",
    "check_envelope",
    "check_envelope_floor",
    "check_envelope_target",
    "check_nfft",
    "check_sample_rate",
    "check_window",
    "check_windows",
]

#: Shortest window and FFT length accepted, in samples.
MIN_WINDOW = 16

#: Minimum number of envelope-spectrum bins in the floor band of
#: ``env.level_db``.  The median of fewer is the level of one or two lines
#: rather than a floor.
MIN_FLOOR_BINS = 5

#: Name of the vector-magnitude channel added by ``resultant=True``.
RESULTANT = "resultant"


def _is_integer(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def check_sample_rate(sample_rate: Any) -> float:
    """Return ``sample_rate`` as a float after checking it is a positive, finite number of Hz."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | float | np.number):
        raise ConfigError(f"sample_rate must be a number of Hz, got {sample_rate!r}")
    value = float(sample_rate)
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"sample_rate must be positive and finite, got {sample_rate!r} Hz")
    return value


def check_window(window: Any) -> int:
    """Return ``window`` after checking it is an even number of samples >= MIN_WINDOW."""
    if not _is_integer(window) or window < MIN_WINDOW or window % 2:
        raise ConfigError(
            f"window must be an even number of samples >= {MIN_WINDOW}, got {window!r}; "
            "a power of two such as 2048 is fastest"
        )
    return int(window)


def check_nfft(nfft: Any, window: int) -> int:
    """Return the FFT length (``window`` when None) after checking it fits the window."""
    if nfft is None:
        return window
    if not _is_integer(nfft) or nfft < MIN_WINDOW or nfft % 2:
        raise ConfigError(f"nfft must be an even number >= {MIN_WINDOW}, got {nfft!r}")
    if nfft > window:
        raise ConfigError(
            f"nfft={nfft} is longer than the window of {window} samples; "
            f"use nfft <= {window} or a longer window"
        )
    if (window - nfft) % (nfft // 2):
        raise ConfigError(
            f"nfft={nfft} does not tile the window of {window} samples in segments that "
            f"overlap by half (window - nfft must be a multiple of {nfft // 2}); "
            "use a power of two for both"
        )
    return int(nfft)


def check_channels(channels: Any, resultant: Any) -> tuple[str, ...]:
    """Return the channel names after checking they are distinct, non-empty strings."""
    if isinstance(channels, str) or not isinstance(channels, Sequence) or not channels:
        raise ConfigError(
            "channels must be a non-empty sequence of names such as ('x', 'y', 'z'), "
            f"got {channels!r}"
        )
    for name in channels:
        if not isinstance(name, str) or not name or ":" in name:
            raise ConfigError(f"channel names must be non-empty strings without ':', got {name!r}")
    if len(set(channels)) != len(channels):
        raise ConfigError(f"channel names must be distinct, got {list(channels)}")
    if not isinstance(resultant, bool):
        raise ConfigError(f"resultant must be True or False, got {resultant!r}")
    if resultant:
        if len(channels) < 2:
            raise ConfigError(f"resultant=True needs at least 2 channels, got {list(channels)}")
        if RESULTANT in channels:
            raise ConfigError(
                f"a channel is named {RESULTANT!r}, which resultant=True adds; rename that channel"
            )
    return tuple(channels)


def check_band(band: Any) -> Band:
    """Return a :class:`Band` from a Band, a ``(low, high)`` pair or a ``"low-high"`` string."""
    if isinstance(band, Band):
        return band
    if isinstance(band, str):
        try:
            return parse_band(band)
        except ValueError as error:
            raise ConfigError(f"invalid band {band!r}: {error}") from error
    if isinstance(band, Sequence) and len(band) == 2:
        low, high = band
        if all(
            isinstance(edge, int | float | np.number) and not isinstance(edge, bool)
            for edge in band
        ):
            low, high = float(low), float(high)
            if math.isfinite(low) and math.isfinite(high) and 0 <= low < high:
                return Band(low, high)
    raise ConfigError(f"a band must be a pair (low, high) of Hz with 0 <= low < high, got {band!r}")


def check_band_in_spectrum(name: str, band: Band, plan: SpectrumPlan, sample_rate: float) -> None:
    """Check that ``band`` lies below the Nyquist frequency and contains at least one bin."""
    nyquist = sample_rate / 2
    if band.high > nyquist:
        raise ConfigError(
            f"band {name!r} is above Nyquist ({format_number(nyquist)} Hz) at "
            f"sample_rate={format_number(sample_rate)}; lower its upper edge"
        )
    if not plan.band_mask(band).any():
        resolution = sample_rate / plan.nfft
        raise ConfigError(
            f"band {name!r} contains no FFT bin at the resolution of {resolution:.4g} Hz "
            f"(sample_rate={format_number(sample_rate)}, nfft={plan.nfft}); widen it or raise nfft"
        )


def check_envelope(envelope: Any, sample_rate: float, window: int) -> EnvelopeSettings | None:
    """Return validated :class:`EnvelopeSettings` from settings, a mapping or None."""
    if isinstance(envelope, EnvelopeSettings):
        # Check its fields as a mapping's, since a dataclass checks nothing.
        envelope = {
            "band": envelope.band,
            "targets": envelope.targets,
            "shaft_hz": envelope.shaft_hz,
            "tolerance": envelope.tolerance,
            "floor_band": envelope.floor_band,
        }
    if envelope is None:
        settings = None
    elif isinstance(envelope, Mapping):
        settings = _envelope_from_mapping(envelope)
    else:
        raise ConfigError(
            "envelope must be a mapping such as {'band': (2000, 5000), 'shaft_hz': 29.95}, "
            f"got {envelope!r}"
        )
    if settings is None:
        return None

    nyquist = sample_rate / 2
    band = settings.band
    if not 0 < band.low < band.high <= nyquist:
        raise ConfigError(
            f"envelope band {band} Hz must satisfy 0 < low < high <= Nyquist "
            f"({format_number(nyquist)} Hz at sample_rate={format_number(sample_rate)})"
        )
    resolution = sample_rate / window
    if band.high - band.low < 2 * resolution:
        raise ConfigError(
            f"envelope band {band} Hz is narrower than two FFT bins of {resolution:.4g} Hz; "
            "widen it"
        )
    if settings.shaft_hz is not None and not (
        isinstance(settings.shaft_hz, int | float)
        and math.isfinite(settings.shaft_hz)
        and settings.shaft_hz > 0
    ):
        raise ConfigError(
            f"envelope shaft_hz must be a positive number of Hz, got {settings.shaft_hz!r}"
        )
    if not (isinstance(settings.tolerance, int | float) and 0 <= settings.tolerance < 0.5):
        raise ConfigError(
            f"envelope tolerance must be a fraction in [0, 0.5), got {settings.tolerance!r}; "
            "0.02 allows for 2 % slip"
        )
    if settings.floor_band.low <= 0:
        raise ConfigError(
            f"envelope floor_band {settings.floor_band} Hz must have a low edge above 0 Hz, "
            "so that the floor leaves out the 0 Hz bin; the default is (1, 600)"
        )
    return settings


def _envelope_from_mapping(envelope: Mapping) -> EnvelopeSettings:
    known = {"band", "targets", "shaft_hz", "tolerance", "floor_band"}
    unknown = sorted(set(envelope) - known)
    if unknown:
        raise ConfigError(
            f"unknown envelope settings {unknown}; known settings are {sorted(known)}"
        )
    if "band" not in envelope:
        raise ConfigError("envelope settings need a band, for example {'band': (2000, 5000)}")
    targets = envelope.get("targets", ())
    if targets is None:
        targets = ()
    if isinstance(targets, str) or not isinstance(targets, Sequence):
        raise ConfigError(
            f"envelope targets must be a list such as ['3.5848x', '162Hz'], got {targets!r}"
        )
    parsed = []
    for target in targets:
        if isinstance(target, DefectFrequency):
            parsed.append(target)
            continue
        try:
            parsed.append(parse_defect_frequency(str(target)))
        except ValueError as error:
            raise ConfigError(f"invalid envelope target {target!r}: {error}") from error
    shaft_hz = envelope.get("shaft_hz")
    return EnvelopeSettings(
        band=check_band(envelope["band"]),
        targets=tuple(parsed),
        shaft_hz=float(shaft_hz)
        if isinstance(shaft_hz, int | float) and not isinstance(shaft_hz, bool)
        else shaft_hz,
        tolerance=envelope.get("tolerance", EnvelopeSettings.tolerance),
        floor_band=_floor_band(envelope.get("floor_band", EnvelopeSettings.floor_band)),
    )


def _floor_band(band: Any) -> Band:
    try:
        return check_band(band)
    except ConfigError as error:
        raise ConfigError(f"invalid envelope floor_band: {error}") from error


def check_envelope_target(
    name: str, target: DefectFrequency, settings: EnvelopeSettings | None
) -> None:
    """Check that an ``env.level`` feature can be computed with these settings.

    The target must lie below the width of the envelope band, which bounds
    the envelope's frequencies and, being at most the Nyquist frequency,
    keeps the target inside the spectrum.
    """
    if settings is None:
        raise ConfigError(
            f"feature {name!r} needs envelope settings, for example "
            "envelope={'band': (2000, 5000), 'shaft_hz': 29.95}"
        )
    if target.unit == "x" and settings.shaft_hz is None:
        raise ConfigError(
            f"feature {name!r} is an order of the shaft speed; set envelope shaft_hz "
            "(rpm / 60) or give the frequency in Hz"
        )
    frequency = target.hertz(settings.shaft_hz)
    width = settings.band.high - settings.band.low
    if frequency * (1 + settings.tolerance) >= width:
        raise ConfigError(
            f"feature {name!r} at {frequency:.6g} Hz is not below the envelope band's width "
            f"({format_number(width)} Hz), which bounds the envelope's frequencies; widen the band"
        )


def check_envelope_floor(
    name: str, settings: EnvelopeSettings, sample_rate: float, window: int
) -> None:
    """Check that the floor band of an ``env.level_db`` feature contains enough bins.

    The band must lie inside (0, Nyquist), so that every bin in it has the
    same single-sided scaling as the levels, and below the width of the
    envelope band, above which the envelope spectrum is mostly leakage.
    """
    floor_band = settings.floor_band
    nyquist = sample_rate / 2
    if floor_band.high >= nyquist:
        raise ConfigError(
            f"feature {name!r}: envelope floor_band {floor_band} Hz must lie below Nyquist "
            f"({format_number(nyquist)} Hz at sample_rate={format_number(sample_rate)}); "
            "lower its upper edge"
        )
    width = settings.band.high - settings.band.low
    if floor_band.high > width:
        raise ConfigError(
            f"feature {name!r}: envelope floor_band {floor_band} Hz reaches above the "
            f"envelope band's width ({format_number(width)} Hz), which bounds the "
            "envelope's frequencies; lower the floor band's upper edge or widen the band"
        )
    resolution = sample_rate / window
    frequencies = np.arange(window // 2 + 1) * resolution
    n_bins = int(
        np.count_nonzero((frequencies >= floor_band.low) & (frequencies <= floor_band.high))
    )
    if n_bins < MIN_FLOOR_BINS:
        raise ConfigError(
            f"feature {name!r}: envelope floor_band {floor_band} Hz contains {n_bins} bins of the "
            f"envelope spectrum at its resolution of {resolution:.4g} Hz "
            f"(sample_rate={format_number(sample_rate)}, window={window}) but needs at least "
            f"{MIN_FLOOR_BINS}; widen the floor band or lengthen the window"
        )


def check_windows(windows: Any, window: int, n_channels: int) -> np.ndarray:
    """Return ``windows`` as an ndarray after checking its shape and dtype."""
    samples = np.asarray(windows)
    if samples.dtype.kind not in "iuf":
        raise ConfigError(
            f"windows must hold real numbers (integer or float), got dtype {samples.dtype}"
        )
    expected = (
        f"(n_windows, {window}, {n_channels})"
        if n_channels > 1
        else f"(n_windows, {window}) or (n_windows, {window}, 1)"
    )
    if samples.ndim == 2 and n_channels == 1:
        ok = samples.shape[1] == window
    elif samples.ndim == 3:
        ok = samples.shape[1:] == (window, n_channels)
    else:
        ok = False
    if not ok:
        raise ConfigError(f"windows must have shape {expected}, got {samples.shape}")
    return samples
