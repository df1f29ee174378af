"""Quality flags that travel with each window from the source to the MQTT payload.

A flagged window is still published, so no window disappears silently, but the
state logic does not report a machine condition for a window whose samples
cannot be trusted.  The flags are bits so that several can hold at once.
"""

from __future__ import annotations

import enum

import numpy as np

__all__ = ["UNCLASSIFIABLE", "WindowFlag", "flag_names"]


class WindowFlag(enum.IntFlag):
    """Quality flags of one window, stored as ``uint8`` bits in flag arrays."""

    NONE = 0
    #: Samples were lost inside the window: the stream is discontinuous there.
    GAP = 1
    #: At least one sample reached the sensor's full scale, so the signal is clipped.
    SATURATED = 2
    #: The window is constant, or so nearly constant that shape statistics are meaningless.
    CONSTANT = 4
    #: The window contains NaN or infinite samples.
    NONFINITE = 8
    #: The sensor driver reported a bus or FIFO error while the window was read.
    BUS_ERROR = 16


#: Flags that make a window unfit for classification: its state is reported as ``invalid``.
UNCLASSIFIABLE = (
    WindowFlag.SATURATED | WindowFlag.CONSTANT | WindowFlag.NONFINITE | WindowFlag.BUS_ERROR
)


def flag_names(bits: int | np.integer) -> list[str]:
    """Return the lower-case names of the flags set in ``bits``, in bit order.

    Parameters
    ----------
    bits : int
        A combination of :class:`WindowFlag` values, for example one element
        of a ``uint8`` flag array.

    Returns
    -------
    list of str
        For example ``["gap", "saturated"]``; empty when no flag is set.
    """
    value = WindowFlag(int(bits))
    return [flag.name.lower() for flag in WindowFlag if flag and flag in value]
