"""The ``file`` source: replays a recording as a stream of blocks.

Any format that :func:`edgemon.recordings.read_recording` reads can be
replayed, with a chosen channel list and, when the requested sample rate
differs from the file's, resampled with :func:`edgemon.recordings.resample`.

Pacing is drift-free: block ``k`` is released at
``start + n_sent / (sample_rate * speed)``, where ``n_sent`` counts the
samples up to the end of block ``k``, so sleep overshoot on one block is
absorbed by the next instead of accumulating. ``speed = 0`` replays as fast
as the reader takes blocks. A recording is finite: the source is not live,
so the daemon waits for it instead of dropping blocks, and :meth:`read`
raises :class:`EOFError` after the last block.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from edgemon.errors import RecordingError, SourceError
from edgemon.sources.base import Block, Source
from edgemon.sources.options import Option, channel_names, in_range, nonnegative, one_of, positive

__all__ = ["FileSource"]

logger = logging.getLogger(__name__)

#: Largest factor by which a file is resampled up.  A file replayed at many
#: times its own rate contains no information above its own Nyquist frequency,
#: and a mistyped rate (12 for 12000) would make millions of windows.
MAX_UPSAMPLING = 8

_FORMATS = ("cwru", "mfpt", "ims", "csv", "wav", "npy")


def _renaming(value: Mapping[Any, Any]) -> str | None:
    """Accept a table of non-empty channel names to distinct non-empty new names."""
    names = [*value.keys(), *value.values()]
    valid = all(isinstance(name, str) and name for name in names)
    if valid and len(set(value.values())) == len(value):
        return None
    return 'a table of file channel names to distinct new names, e.g. {x = "accel"}'


class FileSource(Source):
    """Replay a recorded file, paced in real time or faster.

    Parameters
    ----------
    path : str or path-like
        The recording.
    channels : sequence of str, optional
        Channels to replay, in this order. Default: all of the file's.
    sample_rate : float, optional
        Hz. The file is resampled to it when its own rate differs.
        Default: the file's rate.
    speed : float, default=1.0
        1 replays in real time, 10 ten times faster, 0 as fast as possible.
    block_size : int, default=1024
        Samples per block; the last block may be shorter.
    file_sample_rate : float, optional
        Hz. The file's rate, for formats that do not state it (``.npy``,
        CSV without a ``# sample_rate=`` line).
    format : str, optional
        The file's format; default: detected from its content.
    start : float, default=0.0
        Seconds into the recording where the replay starts. Sample indices
        count from the start of the recording, so ``window.start`` in the
        published states points into the file.
    duration : float, optional
        Seconds to replay from ``start``; default: to the end.
    name : str, optional
        Label for logs; default ``"file NAME"``.
    clock, sleep : callable, optional
        ``time.monotonic`` and ``time.sleep``, replaceable for tests.

    Notes
    -----
    The recording is read by :meth:`open`. When ``channels`` or
    ``sample_rate`` are not given, the :attr:`channels` and
    :attr:`sample_rate` attributes are known only after :meth:`open`.
    """

    kind: ClassVar[str] = "file"
    OPTIONS: ClassVar[tuple[Option, ...]] = (
        Option("path", (str, Path), help="the path of the recording"),
        Option(
            "channels",
            (list, tuple),
            None,
            channel_names(),
            help='the channels to replay, e.g. ["DE"]; default all',
        ),
        Option(
            "sample_rate",
            (float,),
            None,
            positive,
            help="the replay rate in Hz; the file is resampled when it differs",
        ),
        Option(
            "speed",
            (float,),
            1.0,
            nonnegative,
            help="1 for real time, 10 for ten times faster, 0 for as fast as possible",
        ),
        Option("block_size", (int,), 1024, in_range(1, 1_000_000), help="samples per block"),
        Option(
            "rename",
            (dict,),
            None,
            _renaming,
            help='names to report for file channels, e.g. {x = "accel"}, to match the '
            "channel names of a model trained on other files",
        ),
        Option(
            "file_sample_rate",
            (float,),
            None,
            positive,
            help="the file's own rate in Hz, for .npy and CSV files that do not state it",
        ),
        Option(
            "format",
            (str,),
            None,
            one_of(_FORMATS),
            help="the file's format; default detected from its content",
        ),
        Option(
            "start",
            (float,),
            0.0,
            nonnegative,
            help="seconds into the recording where the replay starts",
        ),
        Option(
            "duration",
            (float,),
            None,
            positive,
            help="seconds to replay from start; default to the end",
        ),
    )
    live = False

    def __init__(
        self,
        path: str | Path | None = None,
        channels: Sequence[str] | None = None,
        sample_rate: float | None = None,
        *,
        speed: float = 1.0,
        block_size: int = 1024,
        file_sample_rate: float | None = None,
        rename: Mapping[str, str] | None = None,
        format: str | None = None,
        start: float = 0.0,
        duration: float | None = None,
        name: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        values = self._validated(
            {
                "path": path,
                "channels": channels,
                "sample_rate": sample_rate,
                "speed": speed,
                "block_size": block_size,
                "file_sample_rate": file_sample_rate,
                "rename": rename,
                "format": format,
                "start": start,
                "duration": duration,
            }
        )
        self.path = Path(values["path"])
        self.speed = float(values["speed"])
        self.block_size = values["block_size"]
        self.file_sample_rate = values["file_sample_rate"]
        self.rename: dict[str, str] = dict(values["rename"] or {})
        self.format = values["format"]
        self.start = float(values["start"])
        self.duration = None if values["duration"] is None else float(values["duration"])
        self.name = name or f"file {self.path.name}"
        self._requested_channels = None if channels is None else tuple(channels)
        self._requested_rate = None if sample_rate is None else float(sample_rate)
        self._clock = clock
        self._sleep = sleep

        self._samples: np.ndarray | None = None
        self._recording_rate: float | None = None
        self._recording_channels: tuple[str, ...] | None = None
        self._sent = 0
        self._total = 0
        self._offset = 0
        self._start: float | None = None

    @classmethod
    def _related_problems(cls, values: dict[str, Any]) -> list[str]:
        problems = []
        path = Path(values["path"])
        if not path.is_file():
            problems.append(
                f"file source: option 'path' must name an existing file, got {str(path)!r}"
            )
        rename = values.get("rename") or {}
        channels = values.get("channels")
        if rename and channels is not None:
            unknown = [name for name in rename if name not in channels]
            if unknown:
                problems.append(
                    f"file source: option 'rename' names {unknown}, which option 'channels' "
                    f"does not select ({list(channels)}); rename selected channels only"
                )
            renamed = [rename.get(name, name) for name in channels]
            if len(set(renamed)) != len(renamed):
                problems.append(
                    f"file source: options 'channels' and 'rename' give the channel names "
                    f"{renamed}, which repeat; every channel needs its own name"
                )
        return problems

    @property
    def sample_rate(self) -> float:  # type: ignore[override]
        """Hz: the requested rate, or the file's once :meth:`open` has read it."""
        rate = self._requested_rate or self._recording_rate
        if rate is None:
            raise SourceError(
                f"{self.name}: the sample rate is known only after open(); "
                f"set sample_rate to fix it in advance"
            )
        return rate

    @property
    def channels(self) -> tuple[str, ...]:  # type: ignore[override]
        """Channel names: the requested ones, or the file's once :meth:`open` has read it.

        Names in :attr:`rename` are reported under their new names.
        """
        channels = self._requested_channels or self._recording_channels
        if channels is None:
            raise SourceError(
                f"{self.name}: the channels are known only after open(); "
                f"set channels to fix them in advance"
            )
        return tuple(self.rename.get(name, name) for name in channels)

    def open(self) -> None:
        from edgemon.recordings import read_recording, resample

        try:
            recording = read_recording(
                self.path,
                channels=self._requested_channels,
                format=self.format,
                sample_rate=self.file_sample_rate,
            )
            original_rate = recording.sample_rate
            if self._requested_rate is not None and self._requested_rate != original_rate:
                factor = self._requested_rate / original_rate
                if factor > MAX_UPSAMPLING:
                    raise SourceError(
                        f"{self.name}: the file's rate of {original_rate:g} Hz is "
                        f"{factor:,.0f} times below the {self._requested_rate:g} Hz to "
                        f"replay it at (at most {MAX_UPSAMPLING}); check the file's sample rate"
                    )
                recording = resample(recording, self._requested_rate)
        except RecordingError as exc:
            raise SourceError(f"{self.name}: {exc}") from exc

        first, last = self._segment(recording.n_samples, recording.sample_rate)
        self._samples = recording.samples[first:last]
        self._offset = first
        self._recording_rate = recording.sample_rate
        self._recording_channels = recording.channels
        if self._requested_rate is not None:
            # resample() may reach a slightly different rate for awkward ratios.
            self._requested_rate = recording.sample_rate
        self._sent = 0
        self._total = last - first
        self._start = None
        resampled = (
            f" (resampled from {original_rate:g} Hz)"
            if recording.sample_rate != original_rate
            else ""
        )
        pace = "unpaced" if self.speed == 0 else f"at {self.speed:g}x real time"
        segment = (
            f" from {first / recording.sample_rate:g} s"
            if first or last < recording.n_samples
            else ""
        )
        logger.info(
            "%s: replaying %d samples of %s at %g Hz%s%s, %s",
            self.name,
            self._total,
            ",".join(recording.channels),
            recording.sample_rate,
            resampled,
            segment,
            pace,
        )

    def _segment(self, n_samples: int, rate: float) -> tuple[int, int]:
        """Return the sample range [first, last) selected by ``start`` and ``duration``."""
        length = n_samples / rate
        first = round(self.start * rate)
        if first >= n_samples:
            raise SourceError(
                f"{self.name}: start={self.start:g} s is at or beyond the end of the recording "
                f"({length:g} s); choose a start below {length:g} s"
            )
        last = (
            n_samples
            if self.duration is None
            else min(n_samples, first + round(self.duration * rate))
        )
        if last <= first:
            raise SourceError(
                f"{self.name}: duration={self.duration:g} s selects no samples at {rate:g} Hz; "
                "choose a longer duration"
            )
        return first, last

    def close(self) -> None:
        if self._samples is not None:
            logger.info("%s: closed after %d of %d samples", self.name, self._sent, self._total)
        self._samples = None

    def counters(self) -> Mapping[str, int]:
        return {"samples": self._sent, "samples_total": self._total}

    def read(self, timeout: float) -> Block | None:
        if self._samples is None:
            raise SourceError(f"{self.name}: read() before open()")
        total = self._samples.shape[0]
        if self._sent >= total:
            raise EOFError(f"{self.name}: end of recording after {total} samples")
        stop = min(self._sent + self.block_size, total)

        if self.speed > 0:
            now = self._clock()
            if self._start is None:
                self._start = now
            due = self._start + stop / (self.sample_rate * self.speed)
            wait = due - now
            if wait > timeout:
                self._sleep(max(timeout, 0.0))
                return None
            if wait > 0:
                self._sleep(wait)

        block = Block(
            self._samples[self._sent : stop],
            first_index=self._offset + self._sent,
            received=self._clock(),
        )
        self._sent = stop
        return block
