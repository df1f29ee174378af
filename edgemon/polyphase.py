"""Polyphase FIR resampling with numpy alone.

:func:`resample_poly` computes what ``scipy.signal.resample_poly`` computes
with its default settings (SciPy 1.17). The filter is a Kaiser-windowed sinc
low-pass filter: beta 5, 20 * max(up, down) + 1 taps, cut off at the lower of
the two Nyquist frequencies. The signal is padded with zeros at both ends, and
the output samples are aligned with the input. The tests compare both
functions: they agree to within 1e-12 of the largest output value.

It exists because importing any part of ``scipy.signal`` imports all of it,
``scipy.stats`` included, which added 2.4 s and 54 MiB of resident memory to
a process on the 2-core x86 machine of ``docs/benchmarks.md``: too much for
``edgemon replay`` and the daemon's file source on a small device.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["lowpass_filter", "resample_poly"]

#: Beta of the Kaiser window, as in scipy.signal.resample_poly's default ``("kaiser", 5.0)``.
KAISER_BETA = 5.0


def lowpass_filter(up: int, down: int) -> np.ndarray:
    """Return the anti-aliasing filter of a resampling by ``up / down``, with gain ``up``.

    A linear-phase low-pass FIR filter of ``20 * max(up, down) + 1`` taps,
    windowed-sinc with a Kaiser window (beta 5), cut off at ``1 / max(up,
    down)`` of the Nyquist frequency and scaled to a DC gain of ``up``.
    """
    rate = max(up, down)
    n_taps = 20 * rate + 1
    cutoff = 1.0 / rate
    m = np.arange(n_taps, dtype=np.float64) - 0.5 * (n_taps - 1)
    taps = cutoff * np.sinc(cutoff * m) * np.kaiser(n_taps, KAISER_BETA)
    return taps / taps.sum() * up


def resample_poly(x: np.ndarray, up: int, down: int) -> np.ndarray:
    """Resample ``x`` along its first axis by the rational factor ``up / down``.

    Parameters
    ----------
    x : ndarray of shape (n_samples,) or (n_samples, n_channels)
        The signal, float.
    up, down : int
        Positive upsampling and downsampling factors.

    Returns
    -------
    ndarray of shape (ceil(n_samples * up / down),) or (..., n_channels), float64
        A copy of ``x`` when the reduced ratio is 1.

    Raises
    ------
    ValueError
        If ``up`` or ``down`` is not a positive integer, or ``x`` is empty.
    """
    for name, value in (("up", up), ("down", down)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim not in (1, 2) or x.shape[0] == 0:
        raise ValueError(
            "x must have shape (n_samples,) or (n_samples, n_channels) with n_samples >= 1, "
            f"got {x.shape}"
        )
    common = math.gcd(int(up), int(down))
    up, down = int(up) // common, int(down) // common
    if up == down == 1:
        return x.copy()
    column = x.reshape(x.shape[0], -1)
    out = _polyphase(column, up, down)
    return out.reshape((out.shape[0], *x.shape[1:]))


def _polyphase(x: np.ndarray, up: int, down: int) -> np.ndarray:
    """Filter and resample the columns of ``x``, shape (n_in, n_channels)."""
    n_in, n_channels = x.shape
    n_out = -(-n_in * up // down)
    taps = lowpass_filter(up, down)
    half_len = (len(taps) - 1) // 2
    # Leading zeros put the centre of the filter on output sample 0, which is
    # sample `skip` of the full convolution with the upsampled signal.
    pre_pad = down - half_len % down
    skip = (half_len + pre_pad) // down
    n_phase_taps = -(-(pre_pad + len(taps)) // up)
    post_pad = n_phase_taps * up - pre_pad - len(taps)
    taps = np.concatenate((np.zeros(pre_pad), taps, np.zeros(post_pad)))

    # Output n is sum_t taps[p + t*up] * x[j - t] with p = (n + skip) * down % up
    # and j = (n + skip) * down // up, because only every up-th tap meets an
    # input sample (the others meet the zeros that upsampling inserts). The
    # outputs n = r, r + up, r + 2*up, ... share p, and their j step by down,
    # so each such phase is one product of strided windows of x with its taps.
    last_input = (n_out - 1 + skip) * down // up
    padded = np.zeros((n_phase_taps - 1 + max(n_in, last_input + 1), n_channels))
    padded[n_phase_taps - 1 : n_phase_taps - 1 + n_in] = x
    # windows[j] contains x[j - n_phase_taps + 1], ..., x[j], the inputs of an output at j.
    windows = np.lib.stride_tricks.sliding_window_view(padded, n_phase_taps, axis=0)
    out = np.empty((n_out, n_channels))
    for first in range(min(up, n_out)):
        position = (first + skip) * down
        phase_taps = taps[position % up :: up][::-1]
        count = len(range(first, n_out, up))
        start = position // up
        out[first::up] = windows[start : start + down * (count - 1) + 1 : down] @ phase_taps
    return out
