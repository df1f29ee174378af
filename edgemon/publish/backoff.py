"""Capped, jittered exponential backoff for reconnecting to the broker."""

from __future__ import annotations

import random

__all__ = ["Backoff"]


class Backoff:
    """Delays that double from ``min_delay`` up to ``max_delay``, each jittered.

    Each delay is drawn uniformly from the upper half of the current step, so
    that devices that lost the broker together do not reconnect together, and
    no delay is shorter than half of ``min_delay``.

    Parameters
    ----------
    min_delay, max_delay : float
        First step and cap, s.
    rng : random.Random, optional
        Source of the jitter; a new unseeded generator by default.
    """

    def __init__(
        self, min_delay: float, max_delay: float, rng: random.Random | None = None
    ) -> None:
        if not 0 < min_delay <= max_delay:
            raise ValueError(
                f"backoff needs 0 < min_delay <= max_delay, got {min_delay} and {max_delay}"
            )
        self.min_delay = min_delay
        self.max_delay = max_delay
        self._rng = rng or random.Random()
        self.attempts = 0

    def next_delay(self) -> float:
        """Return the delay before the next attempt, s, and count the attempt."""
        step = min(self.max_delay, self.min_delay * 2.0 ** min(self.attempts, 62))
        self.attempts += 1
        return self._rng.uniform(step / 2, step)

    def reset(self) -> None:
        """Start again from ``min_delay``, after a successful connection."""
        self.attempts = 0
