"""Fixed-capacity multi-channel sample buffer that cuts windows on a hop grid.

The processing thread owns the buffer, so it has no locks. Blocks from a
source go in with :meth:`RingBuffer.push`; :meth:`RingBuffer.pop_windows`
returns every complete window since the last call. Window ``k`` covers the
received samples ``[k * hop, k * hop + window)``, counted over the samples
actually received, so windows are exactly
``sliding_window_view(stream, window, axis=0)[::hop]`` of the concatenated
stream.

How lost samples are handled::

    source indices   0 1 2 3 4 5 | 9 10 11 12 ...     (6, 7, 8 never arrived)
    received stream  0 1 2 3 4 5   9 10 11 12 ...     (concatenated, nothing invented)
    window of 4      [0 1 2 3]                         clean
    hop of 2             [2 3 4 5]                     clean
                             [4 5 9 10]                GAP: spans the jump
                                 [9 10 11 12]          clean

- A jump in ``Block.first_index`` is a gap: ``gaps`` counts jumps and
  ``gap_samples`` the samples the jumps skipped. Every window that contains
  samples from both sides of a jump is flagged ``GAP``.
- A block's flags (``SATURATED``, ``BUS_ERROR``) are OR-ed into every window
  that contains at least one of the block's samples.
- When a push would overwrite samples that a future window still needs, the
  oldest are dropped and counted as an overrun (``overruns`` events,
  ``overrun_samples`` samples). Windowing restarts at the oldest sample
  kept, so no window spans the hole; the ``starts`` of the windows show it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgemon.errors import ConfigError
from edgemon.flags import WindowFlag
from edgemon.sources.base import Block

__all__ = ["RingBuffer", "RingBufferStats", "WindowBatch"]


@dataclass(frozen=True, slots=True)
class WindowBatch:
    """Windows cut by one :meth:`RingBuffer.pop_windows` call.

    Attributes
    ----------
    samples : ndarray of shape (n_windows, window, n_channels), float64
        The windows, C-contiguous, owned by the batch.
    starts : ndarray of shape (n_windows,), int64
        Source sample index of each window's first sample.
    flags : ndarray of shape (n_windows,), uint8
        :class:`~edgemon.flags.WindowFlag` bits of each window.
    """

    samples: np.ndarray
    starts: np.ndarray
    flags: np.ndarray

    def __len__(self) -> int:
        return int(self.starts.shape[0])


@dataclass(frozen=True, slots=True)
class RingBufferStats:
    """Counters of a ring buffer since it was created.

    Attributes
    ----------
    samples_in : int
        Samples pushed, per channel.
    windows_out : int
        Windows returned by :meth:`RingBuffer.pop_windows`.
    gaps : int
        Jumps in the source sample index.
    gap_samples : int
        Samples the jumps skipped (lost before they reached the buffer).
    overruns : int
        Pushes that overwrote samples not yet windowed.
    overrun_samples : int
        Samples dropped by those pushes before any window used them.
    """

    samples_in: int = 0
    windows_out: int = 0
    gaps: int = 0
    gap_samples: int = 0
    overruns: int = 0
    overrun_samples: int = 0


_BLOCK_FLAG_BITS = tuple(int(flag) for flag in WindowFlag if flag)


class RingBuffer:
    """Fixed-capacity buffer of multi-channel samples, cut into windows by hop.

    Parameters
    ----------
    capacity : int
        Samples per channel that the buffer stores; at least ``window``.
        Samples that a future window needs are dropped (and counted as an
        overrun) only when more than ``capacity`` of them wait at once.
    n_channels : int
        Columns of every pushed block.
    window : int
        Samples per window.
    hop : int
        Samples between the starts of consecutive windows. ``hop > window``
        skips the samples between windows by design; they are not overruns.

    Examples
    --------
    >>> import numpy as np
    >>> from edgemon.sources.base import Block
    >>> buffer = RingBuffer(capacity=16, n_channels=1, window=4, hop=2)
    >>> buffer.push(Block(np.arange(8.0)[:, None], first_index=0, received=0.0))
    >>> batch = buffer.pop_windows()
    >>> batch.starts
    array([0, 2, 4])
    >>> batch.samples[1, :, 0]
    array([2., 3., 4., 5.])
    """

    def __init__(self, capacity: int, n_channels: int, window: int, hop: int) -> None:
        for name, value in (("window", window), ("hop", hop), ("n_channels", n_channels)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(capacity, bool) or not isinstance(capacity, int | np.integer):
            raise ConfigError(f"capacity must be an integer, got {capacity!r}")
        if capacity < window:
            raise ConfigError(
                f"capacity must be at least the window ({window} samples), got {capacity}; "
                f"a few windows' worth, e.g. {4 * window}, leaves room for a slow consumer"
            )
        self.capacity = int(capacity)
        self.n_channels = int(n_channels)
        self.window = int(window)
        self.hop = int(hop)

        self._samples = np.zeros((self.capacity, self.n_channels), dtype=np.float64)
        # Source sample index minus received position of each stored sample (changes at gaps only).
        self._index_offsets = np.zeros(self.capacity, dtype=np.int64)
        self._flags = np.zeros(self.capacity, dtype=np.uint8)
        # True where the sample's source index does not follow the previous sample's.
        self._jump_before = np.zeros(self.capacity, dtype=bool)

        # Positions count received samples from 0; slot = position % capacity.
        self._written = 0
        self._next_start = 0
        self._next_index: int | None = None

        # Returned by every pop that finds no complete window; its arrays have no elements.
        self._empty = WindowBatch(
            samples=np.empty((0, self.window, self.n_channels), dtype=np.float64),
            starts=np.empty(0, dtype=np.int64),
            flags=np.empty(0, dtype=np.uint8),
        )
        self._windows_out = 0
        self._gaps = 0
        self._gap_samples = 0
        self._overruns = 0
        self._overrun_samples = 0

    @property
    def stats(self) -> RingBufferStats:
        """A snapshot of the counters."""
        return RingBufferStats(
            samples_in=self._written,
            windows_out=self._windows_out,
            gaps=self._gaps,
            gap_samples=self._gap_samples,
            overruns=self._overruns,
            overrun_samples=self._overrun_samples,
        )

    @property
    def pending(self) -> int:
        """Samples held that a future window still needs."""
        return max(0, self._written - self._next_start)

    @property
    def available(self) -> int:
        """Complete windows that :meth:`pop_windows` would return now."""
        span = self._written - self._next_start
        if span < self.window:
            return 0
        return (span - self.window) // self.hop + 1

    def push(self, block: Block) -> None:
        """Append a block's samples.

        Raises
        ------
        ValueError
            If the block's channel count differs from the buffer's, or its
            ``first_index`` is before the end of the previous block (a source
            must deliver samples in order).
        """
        samples = np.asarray(block.samples)
        if samples.ndim != 2 or samples.shape[1] != self.n_channels:
            raise ValueError(
                f"block samples must have shape (n_samples, {self.n_channels}), got {samples.shape}"
            )
        n = samples.shape[0]
        if n == 0:
            return

        jump = False
        if self._next_index is not None:
            skipped = block.first_index - self._next_index
            if skipped < 0:
                raise ValueError(
                    f"block first_index {block.first_index} is before the end of the previous "
                    f"block ({self._next_index}); sources must deliver samples in order"
                )
            if skipped > 0:
                jump = True
                self._gaps += 1
                self._gap_samples += skipped
        self._next_index = block.first_index + n

        start_position = self._written
        self._written += n
        oldest_kept = self._written - self.capacity
        if oldest_kept > self._next_start:
            self._overruns += 1
            self._overrun_samples += oldest_kept - self._next_start
            self._next_start = oldest_kept

        # Only the last `capacity` samples of a block larger than the buffer are stored.
        kept = min(n, self.capacity)
        offset = n - kept
        first_slot = (start_position + offset) % self.capacity
        flags = np.uint8(int(block.flags))
        # Slices, not index arrays: up to the end of the storage, then from its start.
        head = min(kept, self.capacity - first_slot)
        index_offset = block.first_index - start_position
        self._store(first_slot, samples[offset : offset + head], index_offset, flags)
        if head < kept:
            self._store(0, samples[offset + head :], index_offset, flags)
        if jump and offset == 0:
            self._jump_before[first_slot] = True

    def _store(self, slot: int, samples: np.ndarray, index_offset: int, flags: np.uint8) -> None:
        stop = slot + len(samples)
        self._samples[slot:stop] = samples
        self._index_offsets[slot:stop] = index_offset
        self._flags[slot:stop] = flags
        self._jump_before[slot:stop] = False

    def pop_windows(self, max_windows: int | None = None) -> WindowBatch:
        """Return the complete windows since the last call, oldest first.

        Parameters
        ----------
        max_windows : int, optional
            Return at most this many; the rest stay for the next call.

        Returns
        -------
        WindowBatch
            Possibly empty (zero windows).
        """
        if max_windows is not None and (
            isinstance(max_windows, bool) or not isinstance(max_windows, int) or max_windows < 0
        ):
            raise ConfigError(f"max_windows must be None or an integer >= 0, got {max_windows!r}")
        n_windows = self.available
        if max_windows is not None:
            n_windows = min(n_windows, max_windows)
        if n_windows == 0:
            return self._empty

        span = (n_windows - 1) * self.hop + self.window
        first_slot = self._next_start % self.capacity
        offsets = np.arange(n_windows) * self.hop
        # A view of the storage unless the span wraps around its end; the windows are copied below.
        samples = self._read(self._samples, first_slot, span)
        item, channel = samples.strides
        windows = np.lib.stride_tricks.as_strided(
            samples,
            shape=(n_windows, self.window, self.n_channels),
            strides=(self.hop * item, item, channel),
            writeable=False,
        ).copy()
        first_slots = (first_slot + offsets) % self.capacity
        starts = self._next_start + offsets + self._index_offsets[first_slots]
        flags = _window_flags(
            self._read(self._flags, first_slot, span),
            self._read(self._jump_before, first_slot, span),
            offsets,
            self.window,
        )

        self._next_start += n_windows * self.hop
        self._windows_out += n_windows
        return WindowBatch(samples=windows, starts=starts, flags=flags)

    def _read(self, storage: np.ndarray, slot: int, count: int) -> np.ndarray:
        """Return ``count`` entries of ``storage`` from ``slot`` on, a view unless they wrap."""
        stop = slot + count
        if stop <= self.capacity:
            return storage[slot:stop]
        return np.concatenate((storage[slot:], storage[: stop - self.capacity]))


def _window_flags(
    sample_flags: np.ndarray, jump_before: np.ndarray, offsets: np.ndarray, window: int
) -> np.ndarray:
    """OR the per-sample flags over each window, and set GAP where a jump falls inside one.

    A jump before a window's first sample does not make the window span it,
    so the GAP count of a window starts at its second sample.
    """
    flags = np.zeros(offsets.shape[0], dtype=np.uint8)
    present = int(np.bitwise_or.reduce(sample_flags))
    for bit in _BLOCK_FLAG_BITS:
        if present & bit:
            counts = np.concatenate(([0], np.cumsum((sample_flags & bit) != 0)))
            inside = counts[offsets + window] - counts[offsets] > 0
            flags[inside] |= np.uint8(bit)
    if jump_before.any():
        counts = np.concatenate(([0], np.cumsum(jump_before)))
        spans = counts[offsets + window] - counts[offsets + 1] > 0
        flags[spans] |= np.uint8(WindowFlag.GAP)
    return flags
