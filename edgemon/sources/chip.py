"""Shared driver logic for accelerometers read by polling a hardware FIFO.

A chip driver subclass implements configuring its chip, reading the FIFO
level and overrun flag, and draining FIFO entries as raw counts. This module does the
rest, the same way for every chip:

- it polls the FIFO about every half FIFO's worth of samples and drains it
  in bursts, gathering ``block_size`` samples per block;
- on a FIFO overrun it estimates the samples lost from the time since the
  previous poll (samples produced at the output data rate minus the
  samples found in the FIFO, at least 1), ends the current block and starts
  the next one that many indices later, so the ring buffer reports a gap;
- a block whose samples include a full-scale count is flagged
  ``SATURATED``;
- a failed transfer is counted, logged (rate-limited) and flags the blocks
  on both sides of it ``BUS_ERROR``. Entries that the failed transfer may
  have consumed count as lost samples. After ``max_bus_errors`` failures
  in a row the source raises :class:`~edgemon.errors.SourceError`.
"""

from __future__ import annotations

import abc
import collections
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar

import numpy as np

from edgemon.errors import SourceError
from edgemon.flags import WindowFlag
from edgemon.sources.base import Block, Source
from edgemon.sources.bus import RegisterBus, SmbusDevice, SpiDevice
from edgemon.sources.ratelimit import RateLimitedLog

__all__ = ["AXES", "FifoChipSource", "FifoReadError"]

logger = logging.getLogger(__name__)

#: Axis names of 3-axis chips, in the order the chips store them.
AXES = ("x", "y", "z")


class FifoReadError(Exception):
    """A FIFO drain that failed part-way.

    Attributes
    ----------
    counts : ndarray of shape (n, 3)
        The entries read before the failure.
    lost : int
        Entries the failed transfer may have consumed.
    cause : OSError
        The transfer's error.
    """

    def __init__(self, counts: np.ndarray, lost: int, cause: OSError) -> None:
        super().__init__(str(cause))
        self.counts = counts
        self.lost = lost
        self.cause = cause


class FifoChipSource(Source):
    """Base class of chip drivers that poll a FIFO of 3-axis samples.

    Parameters
    ----------
    sample_rate : float
        Hz, the chip's output data rate.
    channels : sequence of str
        Axes to deliver, a subset of ``("x", "y", "z")`` in any order.
    full_scale : float
        g, the configured range.
    block_size : int
        Samples per block; a block is returned early when ``read`` times out.
    max_bus_errors : int
        Failed transfers in a row after which ``read`` raises SourceError.
    name : str
        Label for logs.
    device : SpiDevice or SmbusDevice, optional
        An open bus device with the calls of ``spidev.SpiDev`` or
        ``smbus2.SMBus`` (a register-level fake in tests). When absent,
        :meth:`open` opens the real bus.
    clock, sleep : callable
        ``time.monotonic`` and ``time.sleep``, replaceable for tests.
    """

    chip: ClassVar[str] = ""
    #: Samples the chip's FIFO holds.
    fifo_depth: ClassVar[int] = 32
    live = True

    def __init__(
        self,
        *,
        sample_rate: float,
        channels: Sequence[str],
        full_scale: float,
        block_size: int,
        max_bus_errors: int,
        name: str,
        device: SpiDevice | SmbusDevice | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.sample_rate = float(sample_rate)
        self.channels = tuple(channels)
        self.full_scale = float(full_scale)
        self.block_size = int(block_size)
        self.max_bus_errors = int(max_bus_errors)
        self.name = name
        self._device = device
        self._registers: RegisterBus | None = None
        self._clock = clock
        self._sleep = sleep
        self._log = RateLimitedLog(logger, clock=clock)
        self._axes = [AXES.index(channel) for channel in self.channels]
        self._poll_interval = min(self.fifo_depth // 2, self.block_size) / self.sample_rate
        # Rate used to estimate lost samples; a chip that reports its actual rate replaces it.
        self._estimate_rate = self.sample_rate

        self._counts = collections.Counter(
            {key: 0 for key in ("samples", "overruns", "overrun_samples", "bus_errors")}
        )
        self._next_index = 0
        self._opened_before = False
        self._reset_stream()

    # Hooks for each chip ---------------------------------------------------------------------

    @abc.abstractmethod
    def _connect(self, device: SpiDevice | SmbusDevice | None) -> RegisterBus:
        """Return register access over ``device``, or over the real bus when it is None.

        Raises SourceError when the real bus cannot be opened.
        """

    @abc.abstractmethod
    def _configure(self, registers: RegisterBus) -> None:
        """Check the chip's identity and start it streaming into its FIFO.

        Raises SourceError for a wrong identity; lets OSError from the bus propagate.
        """

    @abc.abstractmethod
    def _fifo_status(self, registers: RegisterBus) -> tuple[int, bool]:
        """Return the number of samples in the FIFO and whether it overran since the last call."""

    @abc.abstractmethod
    def _read_fifo(self, registers: RegisterBus, count: int) -> np.ndarray:
        """Drain ``count`` entries as raw counts of shape (count, 3).

        Raises FifoReadError when a transfer fails part-way.
        """

    @abc.abstractmethod
    def _standby(self, registers: RegisterBus) -> None:
        """Stop the chip's measurements."""

    @abc.abstractmethod
    def _to_g(self, counts: np.ndarray) -> tuple[np.ndarray, bool]:
        """Convert raw counts to g; also return whether any count is at full scale."""

    # Source interface ---------------------------------------------------------------------------

    def open(self) -> None:
        registers = self._connect(self._device)
        try:
            self._configure(registers)
        except OSError as exc:
            registers.close()
            raise SourceError(
                f"{self.name}: bus transfer failed while configuring the {self.chip}: "
                f"{exc.strerror or exc}; check the wiring and the bus settings"
            ) from exc
        except SourceError:
            registers.close()
            raise
        self._registers = registers
        if self._opened_before:
            self._continue_after_reopen()
        self._opened_before = True
        self._reset_stream()
        logger.info(
            "%s: %s streaming %s at %g Hz, range +-%g g",
            self.name,
            self.chip,
            ",".join(self.channels),
            self.sample_rate,
            self.full_scale,
        )

    def close(self) -> None:
        if self._registers is None:
            return
        try:
            self._standby(self._registers)
        except OSError as exc:
            logger.warning("%s: could not put the %s in standby: %s", self.name, self.chip, exc)
        self._registers.close()
        self._registers = None
        logger.info("%s: closed; counters %s", self.name, dict(self._counts))

    def counters(self) -> Mapping[str, int]:
        return dict(self._counts)

    def read(self, timeout: float) -> Block | None:
        if self._registers is None:
            raise SourceError(f"{self.name}: read() before open()")
        deadline = self._clock() + timeout
        while not self._ready:
            self._poll()
            if self._ready:
                break
            now = self._clock()
            if self._pending_size() >= self.block_size or (now >= deadline and self._pending):
                return self._take_pending()
            if now >= deadline:
                return None
            self._sleep(min(self._poll_interval, deadline - now))
        return self._ready.popleft()

    # Stream bookkeeping -------------------------------------------------------------------------

    def _continue_after_reopen(self) -> None:
        """Keep the sample index increasing across close() and open().

        The samples not delivered before the close, and those the chip
        produced while closed (estimated from the time), become one gap.
        """
        closed_for = max(0.0, self._clock() - self._last_status)
        missed = max(1, round(closed_for * self._estimate_rate))
        self._next_index += missed
        logger.info(
            "%s: reopened after %.1f s; about %d samples missed", self.name, closed_for, missed
        )

    def _reset_stream(self) -> None:
        self._pending: list[np.ndarray] = []
        self._pending_flags = WindowFlag.NONE
        self._ready: collections.deque[Block] = collections.deque()
        self._last_status = self._clock()
        self._failures_in_a_row = 0

    def _poll(self) -> None:
        """Read the FIFO status once and drain what it holds."""
        registers = self._registers
        now = self._clock()
        try:
            level, overrun = self._fifo_status(registers)
        except OSError as exc:
            self._bus_failure(exc, lost=0)
            return
        if overrun:
            produced = round((now - self._last_status) * self._estimate_rate)
            lost = max(1, produced - level)
            self._counts["overruns"] += 1
            self._counts["overrun_samples"] += lost
            self._log.warning(
                "overrun",
                "%s: %s FIFO overran; about %d samples lost (%d overruns so far); "
                "the reader is too slow for %g Hz",
                self.name,
                self.chip,
                lost,
                self._counts["overruns"],
                self.sample_rate,
            )
            self._skip(lost)
        self._last_status = now
        if level == 0:
            self._failures_in_a_row = 0
            return
        try:
            counts = self._read_fifo(registers, level)
        except FifoReadError as exc:
            self._append(exc.counts)
            self._bus_failure(exc.cause, lost=exc.lost)
            return
        self._failures_in_a_row = 0
        self._append(counts)

    def _append(self, counts: np.ndarray) -> None:
        if len(counts):
            self._pending.append(counts)
            self._next_index += len(counts)

    def _pending_size(self) -> int:
        return sum(len(counts) for counts in self._pending)

    def _skip(self, lost: int) -> None:
        """End the current block and continue ``lost`` indices later."""
        if self._pending:
            self._ready.append(self._take_pending())
        self._next_index += lost

    def _take_pending(self) -> Block:
        counts = np.concatenate(self._pending)
        samples, saturated = self._to_g(counts[:, self._axes])
        flags = self._pending_flags | (WindowFlag.SATURATED if saturated else WindowFlag.NONE)
        block = Block(
            samples, first_index=self._next_index - len(counts), received=self._clock(), flags=flags
        )
        self._pending = []
        self._pending_flags = WindowFlag.NONE
        self._counts["samples"] += len(counts)
        return block

    def _bus_failure(self, exc: OSError, lost: int) -> None:
        self._counts["bus_errors"] += 1
        self._failures_in_a_row += 1
        if self._failures_in_a_row >= self.max_bus_errors:
            raise SourceError(
                f"{self.name}: {self._failures_in_a_row} {self.chip} bus transfers failed in a "
                f"row, the last with: {exc}; check the wiring and the power supply"
            ) from exc
        self._log.warning(
            "bus",
            "%s: %s bus transfer failed: %s (%d bus errors so far)",
            self.name,
            self.chip,
            exc,
            self._counts["bus_errors"],
        )
        self._pending_flags |= WindowFlag.BUS_ERROR
        if lost:
            self._skip(lost)
        # The samples after the failure are flagged too: the FIFO state around it is uncertain.
        self._pending_flags |= WindowFlag.BUS_ERROR
