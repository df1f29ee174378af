"""Behaviour shared by the register-level accelerometer fakes.

A fake chip samples a scripted signal at its output data rate, on the
test's clock: each bus transfer first moves the chip forward to the current
time, pushing one FIFO entry per sample period. A full FIFO discards its
oldest entry and records an overrun, as a stream-mode FIFO does. Transfers
can be made to fail, by their number, to test bus-error handling.
"""

from __future__ import annotations

import collections
import errno
import math
from collections.abc import Callable, Iterable

import numpy as np

Signal = Callable[[float], Iterable[float]]


class FakeFifoChip:
    """Base of the fakes: sampling, FIFO, counters and failure injection.

    Parameters
    ----------
    clock : callable
        The test's clock; the chip samples ``signal`` on it.
    signal : callable
        ``signal(t)`` returns the (x, y, z) acceleration in g at time ``t``.
    fifo_depth : int
        Entries the FIFO holds.
    """

    def __init__(self, clock: Callable[[], float], signal: Signal, fifo_depth: int) -> None:
        self.clock = clock
        self.signal = signal
        self.fifo_depth = fifo_depth
        self.fifo: collections.deque[np.ndarray] = collections.deque()
        self.overrun = False
        self.started_at: float | None = None
        self.produced = 0
        self.discarded = 0
        self.transfers = 0
        self.data_reads = 0
        self.fail_transfers: set[int] = set()
        self.fail_data_reads: set[int] = set()
        self.fail_from: int | None = None
        self.closed = False
        self.sample_times: list[float] = []

    # To be provided by each chip.

    def measuring(self) -> bool:
        raise NotImplementedError

    def odr(self) -> float:
        raise NotImplementedError

    def to_counts(self, g: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # Shared behaviour.

    def update(self) -> None:
        """Sample the signal for every sample period that ended since the last update."""
        if not self.measuring():
            self.started_at = None
            return
        now = self.clock()
        if self.started_at is None:
            self.started_at = now
            self.produced = 0
            return
        due = math.floor((now - self.started_at) * self.odr() + 1e-9)
        while self.produced < due:
            self.produced += 1
            t = self.started_at + self.produced / self.odr()
            self.sample_times.append(t)
            if len(self.fifo) == self.fifo_depth:
                self.fifo.popleft()
                self.discarded += 1
                self.overrun = True
            self.fifo.append(self.to_counts(np.asarray(self.signal(t), dtype=float)))

    def begin_transfer(self, data_read: bool = False) -> bool:
        """Count a transfer and update the chip; return True if this transfer must fail.

        Transfers are numbered from 1 in ``transfers``, and FIFO data reads
        also in ``data_reads``; ``fail_transfers``, ``fail_data_reads`` and
        ``fail_from`` select the ones that fail.
        """
        self.transfers += 1
        if data_read:
            self.data_reads += 1
            if self.data_reads in self.fail_data_reads:
                self.update()
                return True
        self.update()
        if self.fail_from is not None and self.transfers >= self.fail_from:
            return True
        return self.transfers in self.fail_transfers

    def close(self) -> None:
        self.closed = True


def bus_error() -> OSError:
    return OSError(errno.EIO, "Remote I/O error (injected)")
