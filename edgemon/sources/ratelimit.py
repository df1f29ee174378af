"""Rate-limited warnings for events that can repeat thousands of times a second.

A sender that streams malformed packets, or a chip whose bus fails on every
transfer, must not flood the log. :class:`RateLimitedLog` logs the first
occurrence of each kind of event at once, then at most one line per interval
with the number of occurrences it held back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["RateLimitedLog"]


class RateLimitedLog:
    """Log repeated events of each kind at most once per ``interval`` seconds.

    Parameters
    ----------
    logger : logging.Logger
        Where the lines go.
    interval : float, default=10.0
        Seconds between two lines about the same kind of event.
    clock : callable, default=time.monotonic
        Returns the current time in seconds.
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._held_back: dict[str, int] = {}

    def warning(self, key: str, message: str, *args: object) -> None:
        """Log ``message % args`` at WARNING unless ``key`` was logged less than ``interval`` ago.

        A held-back line is counted, and the next line logged for ``key``
        ends with "(N similar messages suppressed)".
        """
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            self._held_back[key] = self._held_back.get(key, 0) + 1
            return
        held_back = self._held_back.pop(key, 0)
        self._last[key] = now
        if held_back:
            self._logger.warning(message + " (%d similar messages suppressed)", *args, held_back)
        else:
            self._logger.warning(message, *args)
