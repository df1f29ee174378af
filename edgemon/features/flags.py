"""Quality flags of windows, computed from their samples.

``window_flags`` sets three of the :class:`~edgemon.flags.WindowFlag` bits;
the ring buffer sets ``GAP`` and the source sets ``BUS_ERROR``:

- ``NONFINITE``: a sample of any channel is NaN or infinite;
- ``CONSTANT``: a channel's peak-to-peak range is at most
  ``CONSTANT_RTOL`` times its largest magnitude, that is, constant up to
  float64 rounding (an all-zero channel included);
- ``SATURATED``: a finite sample's magnitude reaches ``full_scale``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from edgemon.errors import ConfigError
from edgemon.flags import WindowFlag

__all__ = ["CONSTANT_RTOL", "check_full_scale", "flags_from_extremes", "window_flags"]

#: Peak-to-peak range, relative to the largest magnitude, at or below which a channel is constant.
CONSTANT_RTOL = 1e-9


def window_flags(windows: Any, *, full_scale: float | None = None) -> np.ndarray:
    """Flag windows that are non-finite, constant or saturated.

    Parameters
    ----------
    windows : array-like of shape (n_windows, n_samples) or (n_windows, n_samples, n_channels)
        Samples in physical units (g), any integer or float dtype.
    full_scale : float, optional
        The largest magnitude the sensor reports, in the unit of the
        samples; a window reaching it in any channel is ``SATURATED``.
        None (the default, as for recordings) skips that check.

    Returns
    -------
    ndarray of shape (n_windows,), uint8
        :class:`~edgemon.flags.WindowFlag` bits.

    Raises
    ------
    ConfigError
        If ``windows`` has the wrong shape or dtype, or ``full_scale`` is not positive.

    Examples
    --------
    >>> import numpy as np
    >>> windows = np.array([[0.0, 1.0, -1.0, 0.5], [2.0, 2.0, 2.0, 2.0], [0.0, np.nan, 0.0, 0.0]])
    >>> [WindowFlag(int(bits)).name for bits in window_flags(windows)]
    ['NONE', 'CONSTANT', 'NONFINITE']
    """
    samples = np.asarray(windows)
    if samples.dtype.kind not in "iuf":
        raise ConfigError(
            f"windows must hold real numbers (integer or float), got dtype {samples.dtype}"
        )
    if samples.ndim == 2:
        samples = samples[:, :, np.newaxis]
    if samples.ndim != 3:
        raise ConfigError(
            "windows must have shape (n_windows, n_samples) or "
            f"(n_windows, n_samples, n_channels), got {samples.shape}"
        )
    if samples.shape[1] == 0:
        raise ConfigError(f"windows must hold at least one sample, got shape {samples.shape}")
    check_full_scale(full_scale)

    # NaN propagates through maximum and minimum, so the extremes reveal it.
    highest = np.maximum.reduce(samples, axis=1).astype(np.float64, copy=False)
    lowest = np.minimum.reduce(samples, axis=1).astype(np.float64, copy=False)
    return flags_from_extremes(highest, lowest, full_scale)


def check_full_scale(full_scale: Any) -> None:
    """Raise ConfigError unless ``full_scale`` is None or a positive, finite number."""
    if full_scale is not None and not (
        isinstance(full_scale, int | float)
        and not isinstance(full_scale, bool)
        and math.isfinite(full_scale)
        and full_scale > 0
    ):
        raise ConfigError(f"full_scale must be a positive number or None, got {full_scale!r}")


def flags_from_extremes(
    highest: np.ndarray, lowest: np.ndarray, full_scale: float | None
) -> np.ndarray:
    """Compute window flags from each channel's largest and smallest sample.

    Parameters
    ----------
    highest, lowest : ndarray of shape (n_windows, n_channels), float64
        Maximum and minimum of each channel of each window; NaN where the
        channel contains NaN.
    full_scale : float or None
        As for :func:`window_flags`.

    Returns
    -------
    ndarray of shape (n_windows,), uint8
    """
    # Each channel gets its bits, then they are ORed over the channels.  A
    # non-finite channel gets NONFINITE alone: its range means nothing.  The
    # range is finite exactly when both extremes are (short of overflow
    # beyond 1.8e308), and max(|highest|, |lowest|) = max(highest, -lowest)
    # because highest >= lowest.
    if highest.size <= _SCALAR_MAX_CHANNELS:
        return _flags_of_few(highest.tolist(), lowest.tolist(), full_scale)
    with np.errstate(invalid="ignore"):  # inf - inf
        spread = highest - lowest
    finite = np.isfinite(spread)
    magnitude = np.maximum(highest, np.negative(lowest))
    bits = (spread <= CONSTANT_RTOL * magnitude) * np.uint8(WindowFlag.CONSTANT)
    if full_scale is not None:
        bits |= (magnitude >= full_scale) * np.uint8(WindowFlag.SATURATED)
    bits = np.where(finite, bits, np.uint8(WindowFlag.NONFINITE))
    return np.bitwise_or.reduce(bits, axis=1)


#: Up to this many channels in a batch, plain Python floats beat numpy,
#: whose ten or so calls cost about a microsecond each on arrays this small.
_SCALAR_MAX_CHANNELS = 8


def _flags_of_few(
    highest: list[list[float]], lowest: list[list[float]], full_scale: float | None
) -> np.ndarray:
    """Compute what :func:`flags_from_extremes` does, for a few channels, in Python floats."""
    flags = []
    for window_highest, window_lowest in zip(highest, lowest, strict=True):
        bits = 0
        for high, low in zip(window_highest, window_lowest, strict=True):
            spread = high - low
            if not math.isfinite(spread):
                bits |= WindowFlag.NONFINITE
                continue
            magnitude = max(high, -low)
            if spread <= CONSTANT_RTOL * magnitude:
                bits |= WindowFlag.CONSTANT
            if full_scale is not None and magnitude >= full_scale:
                bits |= WindowFlag.SATURATED
        flags.append(bits)
    return np.array(flags, dtype=np.uint8)
