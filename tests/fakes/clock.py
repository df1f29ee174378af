"""A manual clock that advances only when code sleeps or a test moves it."""

from __future__ import annotations


class FakeClock:
    """Replace ``time.monotonic`` (call the clock) and ``time.sleep`` (its ``sleep``).

    ``overshoot`` seconds are added to every sleep, the way a real scheduler
    wakes a thread late, so tests can check that pacing does not accumulate it.
    """

    def __init__(self, start: float = 1000.0, overshoot: float = 0.0) -> None:
        self.now = start
        self.overshoot = overshoot
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0, f"sleep({seconds}) with a negative duration"
        self.sleeps.append(seconds)
        self.now += seconds + self.overshoot

    def advance(self, seconds: float) -> None:
        self.now += seconds
