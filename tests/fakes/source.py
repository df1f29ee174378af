"""A scripted source for pipeline and daemon tests: blocks from a list, then the end."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

import numpy as np

from edgemon.errors import SourceError
from edgemon.flags import WindowFlag
from edgemon.sources.base import Block, Source


class ScriptedSource(Source):
    """Deliver ``blocks`` as fast as they are read, then raise EOFError (or wait, if live).

    Each item is an array of samples, or an exception to raise from ``read``.
    ``interval`` seconds pass before each block, like a sensor's FIFO filling.
    """

    kind = "scripted"

    def __init__(
        self,
        blocks: Iterable[np.ndarray | Exception],
        *,
        sample_rate: float = 12000.0,
        channels: tuple[str, ...] = ("DE",),
        live: bool = False,
        full_scale: float | None = None,
        first_index: int = 0,
        flags: WindowFlag = WindowFlag.NONE,
        interval: float = 0.0,
    ) -> None:
        self.name = "scripted"
        self.sample_rate = sample_rate
        self.channels = channels
        self.live = live
        self.full_scale = full_scale
        self._items = list(blocks)
        self._index = first_index
        self._flags = flags
        self._interval = interval
        self.opened = 0
        self.closed = 0
        self.exhausted = threading.Event()

    def open(self) -> None:
        self.opened += 1

    def close(self) -> None:
        self.closed += 1

    def read(self, timeout: float) -> Block | None:
        if not self._items:
            self.exhausted.set()
            if self.live:
                time.sleep(min(timeout, 0.01))
                return None
            raise EOFError("end of script")
        if self._interval:
            time.sleep(self._interval)
        item = self._items.pop(0)
        if isinstance(item, Exception):
            raise item
        samples = np.asarray(item, dtype=np.float64)
        if samples.ndim == 1:
            samples = samples[:, None]
        block = Block(
            samples, first_index=self._index, received=time.monotonic(), flags=self._flags
        )
        self._index += len(samples)
        return block

    def skip(self, n_samples: int) -> None:
        """Make the next block start ``n_samples`` later, as after lost samples."""
        self._index += n_samples


class FailingOnce(ScriptedSource):
    """A live source whose first read fails, as a sensor that drops off the bus."""

    def __init__(self, blocks, **kwargs) -> None:
        super().__init__([SourceError("bus went away"), *blocks], live=True, **kwargs)
