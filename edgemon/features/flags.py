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

__all__ = ["CONSTANT_RTOL", "window_flags"]

#: Peak-to-peak range, relative to the largest magnitude, at or below which a channel is constant.
CONSTANT_RTOL = 1e-9

_BITS = np.array(
    [WindowFlag.NONFINITE, WindowFlag.CONSTANT, WindowFlag.SATURATED], dtype=np.uint8
)


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
        raise ConfigError(f"windows must hold real numbers (integer or float), got dtype {samples.dtype}")
    if samples.ndim == 3 and samples.shape[2] == 1:
        samples = samples[:, :, 0]
    if samples.ndim not in (2, 3):
        raise ConfigError(
            "windows must have shape (n_windows, n_samples) or "
            f"(n_windows, n_samples, n_channels), got {samples.shape}"
        )
    if samples.shape[1] == 0:
        raise ConfigError(f"windows must hold at least one sample, got shape {samples.shape}")
    if full_scale is not None and not (
        isinstance(full_scale, int | float) and math.isfinite(full_scale) and full_scale > 0
    ):
        raise ConfigError(f"full_scale must be a positive number or None, got {full_scale!r}")

    # extremes[0] and [1] are each channel's maximum and minimum, shape
    # (n_windows,) or (n_windows, n_channels).  NaN propagates through both.
    extremes = np.stack(
        [np.maximum.reduce(samples, axis=1), np.minimum.reduce(samples, axis=1)]
    ).astype(np.float64, copy=False)
    channel_axes = tuple(range(1, extremes.ndim - 1))
    finite = np.isfinite(extremes).all(axis=0)
    magnitude = np.abs(extremes).max(axis=0)
    with np.errstate(invalid="ignore"):
        constant = finite & (extremes[0] - extremes[1] <= CONSTANT_RTOL * magnitude)
        saturated = finite & (magnitude >= (np.inf if full_scale is None else full_scale))

    # One bit-plane per flag, combined in one weighted sum.
    planes = np.stack([~finite, constant, saturated], axis=-1)
    if channel_axes:
        planes = planes.any(axis=1)
    return planes.astype(np.uint8) @ _BITS
