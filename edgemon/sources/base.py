"""The unit of data that sources deliver, and the interface every source implements.

A source is read by one reader thread. It turns whatever the sensor delivers
(UDP packets, a chip's FIFO, a recorded file) into :class:`Block` objects of
samples in g, numbered by their index in the source's sample sequence. A
source reports lost samples by a jump in that index. The ring buffer counts
each jump as a gap and flags the windows that span it with ``GAP``.
"""

from __future__ import annotations

import abc
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from edgemon.flags import WindowFlag
from edgemon.sources.options import Option, raise_problems, validate_options

__all__ = ["Block", "Source"]


@dataclass(frozen=True, slots=True)
class Block:
    """Consecutive samples read from a source at one time.

    Parameters
    ----------
    samples : ndarray of shape (n_samples, n_channels), float32 or float64
        Physical values in g, one column per channel of the source.
    first_index : int
        Index of ``samples[0]`` in the source's sample sequence, counted
        from 0. Sample ``i`` of the block has index ``first_index + i``.
    received : float
        ``time.monotonic()`` when the block was read, in seconds.
    flags : WindowFlag
        Quality flags that hold for the samples of this block, set by the
        driver: ``SATURATED`` when a sample reached the sensor's full scale,
        ``BUS_ERROR`` when a transfer failed around this block.
    """

    samples: np.ndarray
    first_index: int
    received: float
    flags: WindowFlag = WindowFlag.NONE

    @property
    def n_samples(self) -> int:
        """Number of samples per channel."""
        return int(self.samples.shape[0])

    @property
    def end_index(self) -> int:
        """Index one past the block's last sample.

        It is the next block's ``first_index`` when no sample was lost.
        """
        return self.first_index + int(self.samples.shape[0])


class Source(abc.ABC):
    """A stream of samples from one sensor, read in blocks.

    Subclasses declare their options in ``OPTIONS`` and set the attributes
    below in their constructor, which validates every option and raises
    :class:`~edgemon.errors.ConfigError` naming the option and the fix. The
    constructor opens nothing: devices, sockets and files are opened by
    :meth:`open`.

    Attributes
    ----------
    name : str
        Label for logs and health reports, e.g. ``"udp 127.0.0.1:9870"``.
    sample_rate : float
        Hz.
    channels : tuple of str
        Channel names, one per column of every block's samples.
    full_scale : float or None
        The largest magnitude the sensor can report, in g; None when
        unknown (recordings).
    live : bool
        True for a sensor that keeps producing samples whether or not they
        are read, so a reader that falls behind loses samples. False for a finite source
        (a recording) that waits for its reader and must not drop blocks.
    """

    name: str
    sample_rate: float
    channels: tuple[str, ...]
    full_scale: float | None = None
    live: bool = True

    #: The ``kind`` of the source in config files and :func:`edgemon.sources.make_source`.
    kind: ClassVar[str] = ""
    #: The options that :func:`edgemon.sources.make_source` accepts for this kind.
    OPTIONS: ClassVar[tuple[Option, ...]] = ()

    @classmethod
    def validate(cls, options: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """Check ``options`` without opening anything.

        Returns
        -------
        values : dict
            Every declared option, with defaults filled in.
        problems : list of str
            One message per invalid, missing or unknown option; empty when
            the options are valid.
        """
        values, problems = validate_options(cls.kind, cls.OPTIONS, options)
        if not problems:
            problems = cls._related_problems(values)
        return values, problems

    @classmethod
    def _related_problems(cls, values: dict[str, Any]) -> list[str]:
        """Return problems that involve several options; called once each option is valid."""
        return []

    @classmethod
    def _validated(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        values, problems = cls.validate(options)
        raise_problems(cls.kind, problems)
        return values

    @abc.abstractmethod
    def open(self) -> None:
        """Open the device, socket or file.

        A live source may be opened again after :meth:`close`; its sample
        index then continues after the last one it delivered, with a jump
        for the samples missed while it was closed, so it never goes back.

        Raises
        ------
        SourceError
            If it cannot be opened, or is not the device the options describe.
        """

    @abc.abstractmethod
    def read(self, timeout: float) -> Block | None:
        """Return the next block, waiting at most ``timeout`` seconds.

        Returns
        -------
        Block or None
            None when no sample arrived within ``timeout``.

        Raises
        ------
        EOFError
            At the end of a finite source.
        SourceError
            When the source failed in a way it cannot recover from.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release the device, socket or file. Closing twice is harmless."""

    def counters(self) -> Mapping[str, int]:
        """Return the source's event counters for the health report.

        For example ``{"packets": 1200, "lost_packets": 3}``. The keys
        depend on the kind of source; the base class has none.
        """
        return {}

    def __enter__(self) -> Source:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: types.TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        channels = ",".join(self.channels)
        return f"<{type(self).__name__} {self.name!r} {self.sample_rate:g} Hz [{channels}]>"
