"""``edgemon replay``: run recordings through the daemon's own pipeline and exit at the end.

Each file is replayed by a :class:`~edgemon.sources.file.FileSource`,
resampled to the model's rate where it differs, and processed by the same
reader and processing threads as ``edgemon run``, so a replay exercises
exactly what runs on the device.  One sink serves all the files, so ``seq``
continues from file to file.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edgemon.daemon import Daemon, SensorRunner, StateSink
from edgemon.model import Model
from edgemon.pipeline import SensorPipeline
from edgemon.sources.file import FileSource

__all__ = ["FileResult", "ReplayInput", "replay_files"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplayInput:
    """A recording to replay, or the segment of it from ``start`` for ``duration`` seconds."""

    path: Path
    start: float = 0.0
    duration: float | None = None


@dataclass
class FileResult:
    """What the replay of one file produced."""

    path: Path
    #: Seconds of signal replayed.
    duration: float
    #: Wall-clock seconds the replay took.
    elapsed: float
    windows: int
    windows_flagged: int
    samples_dropped: int
    #: Windows per reported state.
    states: dict[str, int] = field(default_factory=dict)
    completed: bool = True


def replay_files(
    inputs: Sequence[str | Path | ReplayInput],
    model: Model,
    sink: StateSink,
    stop: threading.Event,
    *,
    device: str,
    sensor: str,
    channels: Sequence[str] | None = None,
    rename: Mapping[str, str] | None = None,
    file_sample_rate: float | None = None,
    speed: float = 0.0,
    hop: int | None = None,
    block_size: int = 1024,
) -> list[FileResult]:
    """Replay ``inputs`` one after another through ``model`` into ``sink``.

    Parameters
    ----------
    inputs : sequence of path-like or ReplayInput
        Recordings in any format :func:`edgemon.recordings.read_recording`
        reads; a :class:`ReplayInput` selects a segment.
    model : Model
        Loaded model; files are resampled to its sample rate.
    sink : StateSink
        Already started; the caller flushes and stops it.
    stop : threading.Event
        Set it (for example from a SIGINT handler) to end the replay early.
    device, sensor : str
        Names used in the events.
    channels : sequence of str, optional
        Channels to read from each file; default the model's channels.
    rename : mapping of str to str, optional
        Names under which file channels reach the model, such as
        ``{"x": "accel"}`` for a model trained on a channel named accel.
    file_sample_rate : float, optional
        Hz, the files' own rate, for formats that do not state it.
    speed : float, default=0
        1 replays in real time, 10 ten times faster, 0 as fast as possible.
    hop : int, optional
        Samples between window starts; default the model's hop.
    block_size : int, default=1024
        Samples per block the source delivers.

    Returns
    -------
    list of FileResult
        One per file replayed; a file cut short by ``stop`` has ``completed=False``.

    Raises
    ------
    RecordingError
        If an input file is missing, unreadable, of unknown sample rate or
        lacks a channel; all files are read once to check this before the
        first is replayed.
    """
    meta = model.metadata
    channels = tuple(channels) if channels else meta.channels
    items = [item if isinstance(item, ReplayInput) else ReplayInput(Path(item)) for item in inputs]
    # A missing, unreadable or unlabelled file fails now, not after the files
    # before it were replayed and published. This reads each file twice.
    from edgemon.recordings import read_recording

    for item in items:
        read_recording(item.path, channels=channels, sample_rate=file_sample_rate)
    results = []
    for item in items:
        if stop.is_set():
            break
        path = item.path
        source = FileSource(
            path,
            channels=channels,
            sample_rate=meta.sample_rate,
            rename=rename,
            file_sample_rate=file_sample_rate,
            speed=speed,
            block_size=block_size,
            start=item.start,
            duration=item.duration,
            name=f"file {Path(path).name}",
        )
        source.open()
        pipeline = SensorPipeline(device, sensor, source, model, hop=hop)
        runner = SensorRunner(source, pipeline, sink, stop)
        started = time.monotonic()
        Daemon(device, [runner], stop).run()
        if runner.error is not None:
            raise runner.error
        stats = pipeline.stats
        results.append(
            FileResult(
                path=Path(path),
                duration=stats.samples / pipeline.sample_rate,
                elapsed=time.monotonic() - started,
                windows=stats.windows,
                windows_flagged=stats.windows_flagged,
                samples_dropped=runner.health()["samples_dropped"],
                states=dict(stats.states),
                completed=not stop.is_set(),
            )
        )
    return results
