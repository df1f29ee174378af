"""CPU time and resident memory of this process, read from ``/proc`` (Linux).

The health message reports both, so that a maintainer can see from the broker
whether edgemon keeps within the small share of a Raspberry Pi it is given.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProcessMeter", "ProcessUsage"]

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class ProcessUsage:
    """One reading of the process's resource use."""

    #: CPU time since the previous reading, percent of one core.
    cpu_percent: float
    #: CPU time (user + system) since the process started, s.
    cpu_seconds: float
    #: Resident set size, bytes.
    rss_bytes: int


class ProcessMeter:
    """Read CPU and RSS of a process and the CPU share between readings.

    Parameters
    ----------
    pid : str, default="self"
        Process to measure, as named under ``/proc``.
    """

    def __init__(self, pid: str = "self") -> None:
        self._stat = Path("/proc", pid, "stat")
        self._statm = Path("/proc", pid, "statm")
        self._last_cpu = self._cpu_seconds()
        self._last_time = time.monotonic()

    def _cpu_seconds(self) -> float:
        text = self._stat.read_text()
        # The command name (field 2) may contain spaces and parentheses, so
        # split after its closing parenthesis: utime and stime are fields 14, 15.
        fields = text[text.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS

    def read(self) -> ProcessUsage:
        """Take a reading; ``cpu_percent`` covers the time since the previous one."""
        cpu = self._cpu_seconds()
        now = time.monotonic()
        elapsed = now - self._last_time
        percent = 100.0 * (cpu - self._last_cpu) / elapsed if elapsed > 0 else 0.0
        self._last_cpu, self._last_time = cpu, now
        rss_pages = int(self._statm.read_text().split()[1])
        return ProcessUsage(
            cpu_percent=round(max(percent, 0.0), 2),
            cpu_seconds=round(cpu, 2),
            rss_bytes=rss_pages * _PAGE_SIZE,
        )
