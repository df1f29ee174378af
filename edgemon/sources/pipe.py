"""The ``pipe`` source: raw interleaved samples from standard input or a named pipe.

The stream has no header: it is frames of ``len(channels)`` samples, one
frame per sample instant, each sample either a little-endian float32 or a
little-endian int16. A sample's value in g is its stored value times
``scale``. For example ``sox`` or a small C program can write it::

    my-adc-reader | edgemon run --config pipe.toml      # path = "-"
    mkfifo /run/edgemon/adc && my-adc-reader > /run/edgemon/adc

A named pipe (FIFO) is opened for reading and writing, so the source keeps
it open while writers come and go and never reads end-of-file. A writer that
stops and starts again shows up only as a pause. Standard input, and any
other file, ends: :meth:`PipeSource.read` then raises :class:`EOFError`.
The stream carries no sample index, so lost samples cannot be detected here.
"""

from __future__ import annotations

import logging
import os
import select
import stat
import sys
import time
from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np

from edgemon.errors import SourceError
from edgemon.flags import WindowFlag
from edgemon.sources.base import Block, Source
from edgemon.sources.options import Option, channel_names, in_range, one_of, positive

__all__ = ["PipeSource"]

logger = logging.getLogger(__name__)

_DTYPES = {"float32": np.dtype("<f4"), "int16": np.dtype("<i2")}
_INT16_LIMITS = (-32768, 32767)


class PipeSource(Source):
    """Read raw interleaved samples from standard input or a FIFO.

    Parameters
    ----------
    sample_rate : float
        Hz, the rate at which the writer produces frames.
    channels : sequence of str
        Channel names, one per sample in a frame.
    path : str, default="-"
        ``"-"`` for standard input, or the path of a named pipe.
    sample_format : {"float32", "int16"}, default="float32"
        How each sample is stored, little-endian.
    scale : float, default=1.0
        g per stored unit; for int16 the value of one count.
    full_scale : float, optional
        g. Samples whose magnitude reaches it make the block
        ``SATURATED``. int16 samples at -32768 or 32767 always do.
    block_size : int, default=1024
        Maximum frames per block.
    name : str, optional
        Label for logs; default ``"pipe stdin"`` or ``"pipe PATH"``.
    """

    kind: ClassVar[str] = "pipe"
    OPTIONS: ClassVar[tuple[Option, ...]] = (
        Option(
            "sample_rate",
            (float,),
            check=positive,
            help="the writer's sample rate in Hz, e.g. 12000",
        ),
        Option(
            "channels",
            (list, tuple),
            check=channel_names(),
            help='the list of channel names, one per sample in a frame, e.g. ["x", "y"]',
        ),
        Option("path", (str,), "-", help='"-" for standard input, or the path of a FIFO'),
        Option(
            "sample_format",
            (str,),
            "float32",
            one_of(_DTYPES),
            help='"float32" or "int16", little-endian',
        ),
        Option("scale", (float,), 1.0, positive, help="g per stored unit"),
        Option(
            "full_scale",
            (float,),
            None,
            positive,
            help="the sensor's full scale in g; reaching it flags the block SATURATED",
        ),
        Option("block_size", (int,), 1024, in_range(1, 1_000_000), help="maximum frames per block"),
    )
    live = True

    def __init__(
        self,
        sample_rate: float | None = None,
        channels: Sequence[str] | None = None,
        *,
        path: str = "-",
        sample_format: str = "float32",
        scale: float = 1.0,
        full_scale: float | None = None,
        block_size: int = 1024,
        name: str | None = None,
    ) -> None:
        values = self._validated(
            {
                "sample_rate": sample_rate,
                "channels": channels,
                "path": path,
                "sample_format": sample_format,
                "scale": scale,
                "full_scale": full_scale,
                "block_size": block_size,
            }
        )
        self.sample_rate = float(values["sample_rate"])
        self.channels = tuple(values["channels"])
        self.path = values["path"]
        self.sample_format = values["sample_format"]
        self.scale = float(values["scale"])
        self.block_size = values["block_size"]
        self._dtype = _DTYPES[self.sample_format]
        if full_scale is not None:
            self.full_scale = float(full_scale)
        elif self.sample_format == "int16":
            self.full_scale = 32768 * self.scale
        self.name = name or ("pipe stdin" if self.path == "-" else f"pipe {self.path}")

        self._frame_size = len(self.channels) * self._dtype.itemsize
        self._fd: int | None = None
        self._owns_fd = False
        self._pending = bytearray()
        self._frames = 0
        self._ended = False

    def open(self) -> None:
        if self.path == "-":
            self._fd = sys.stdin.fileno()
            self._owns_fd = False
        else:
            try:
                mode = os.stat(self.path).st_mode
                # A FIFO opened read-write never reports end-of-file when its writer leaves.
                flags = os.O_RDWR if stat.S_ISFIFO(mode) else os.O_RDONLY
                self._fd = os.open(self.path, flags)
            except OSError as exc:
                raise SourceError(
                    f"{self.name}: cannot open {self.path}: {exc.strerror or exc}; "
                    f"create it with mkfifo, or check its permissions"
                ) from exc
            self._owns_fd = True
        # The frame count, and so the sample index, continues across a reopen.
        self._pending.clear()
        self._ended = False
        logger.info(
            "%s: reading %s %s frames of %s at %g Hz",
            self.name,
            self.sample_format,
            "little-endian",
            ",".join(self.channels),
            self.sample_rate,
        )

    def close(self) -> None:
        if self._fd is not None and self._owns_fd:
            os.close(self._fd)
        if self._fd is not None:
            logger.info("%s: closed after %d frames", self.name, self._frames)
        self._fd = None

    def counters(self) -> Mapping[str, int]:
        return {"samples": self._frames}

    def read(self, timeout: float) -> Block | None:
        if self._fd is None:
            raise SourceError(f"{self.name}: read() before open()")
        max_bytes = self.block_size * self._frame_size
        deadline = time.monotonic() + timeout
        while len(self._pending) < self._frame_size and not self._ended:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._wait_readable(remaining):
                return None
            self._read_available(max_bytes)
        # Take what else is already there, without waiting, up to a full block.
        while len(self._pending) < max_bytes and not self._ended and self._wait_readable(0.0):
            self._read_available(max_bytes)

        n_frames = min(len(self._pending) // self._frame_size, self.block_size)
        if n_frames == 0:
            self._drop_partial_frame()
            raise EOFError(f"{self.name}: end of stream after {self._frames} frames")
        return self._take(n_frames)

    def _wait_readable(self, timeout: float) -> bool:
        readable, _, _ = select.select([self._fd], [], [], timeout)
        return bool(readable)

    def _read_available(self, max_bytes: int) -> None:
        try:
            data = os.read(self._fd, max(max_bytes - len(self._pending), self._frame_size))
        except OSError as exc:
            raise SourceError(f"{self.name}: read failed: {exc.strerror or exc}") from exc
        if not data:
            self._ended = True
        self._pending += data

    def _take(self, n_frames: int) -> Block:
        size = n_frames * self._frame_size
        stored = np.frombuffer(bytes(self._pending[:size]), dtype=self._dtype)
        del self._pending[:size]
        stored = stored.reshape(n_frames, len(self.channels))
        # Garbage float32 input can contain signalling NaN, and values that
        # overflow when scaled. They become NaN and Inf, which the window flags
        # report, so numpy's warnings would only repeat that on stderr.
        with np.errstate(invalid="ignore", over="ignore"):
            samples = stored.astype(np.float64) * self.scale

        flags = WindowFlag.NONE
        # Two reductions instead of np.isin, which costs ten times more on a block.
        low, high = _INT16_LIMITS
        if self.sample_format == "int16" and (stored.min() == low or stored.max() == high):
            flags |= WindowFlag.SATURATED
        if self.full_scale is not None and np.any(np.abs(samples) >= self.full_scale):
            flags |= WindowFlag.SATURATED
        block = Block(samples, first_index=self._frames, received=time.monotonic(), flags=flags)
        self._frames += n_frames
        return block

    def _drop_partial_frame(self) -> None:
        if self._pending:
            logger.warning(
                "%s: dropped %d trailing bytes, less than one %d-byte frame",
                self.name,
                len(self._pending),
                self._frame_size,
            )
            self._pending.clear()
