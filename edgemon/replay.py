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
from edgemon.errors import RecordingError
from edgemon.model import Model
from edgemon.pipeline import SensorPipeline, check_model_for_source
from edgemon.sources.file import FileSource

__all__ = ["FileResult", "ReplayInput", "check_replay_inputs", "replay_files"]

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
    checked: bool = False,
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
    checked : bool, default=False
        True when :func:`check_replay_inputs` already checked ``inputs``
        with the same settings; otherwise this function checks them first.

    Returns
    -------
    list of FileResult
        One per file replayed; a file cut short by ``stop`` has ``completed=False``.

    Raises
    ------
    SourceError, ModelError, ConfigError
        As :func:`check_replay_inputs`, before the first file is replayed.
    """
    files = _ReplayFiles(model, channels, rename, file_sample_rate)
    items = _replay_inputs(inputs)
    if not checked:
        check_replay_inputs(
            items,
            model,
            channels=channels,
            rename=rename,
            file_sample_rate=file_sample_rate,
            hop=hop,
        )
    results = []
    for item in items:
        if stop.is_set():
            break
        path = item.path
        source = files.source(item, speed=speed, block_size=block_size)
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


def check_replay_inputs(
    inputs: Sequence[str | Path | ReplayInput],
    model: Model,
    *,
    channels: Sequence[str] | None = None,
    rename: Mapping[str, str] | None = None,
    file_sample_rate: float | None = None,
    hop: int | None = None,
) -> None:
    """Open each input as :func:`replay_files` will, check it against ``model``, and close it.

    Call it before anything is published, so that a bad third file fails
    before the first two were replayed. Each file is read, and resampled
    where needed, once here and once more when it is replayed.

    Raises
    ------
    RecordingError
        If a file is missing.
    SourceError
        If a file is unreadable, of unknown sample rate, lacks a channel,
        or its segment is empty.
    ModelError, ConfigError
        If a file's channels or sample rate do not fit the model.
    """
    files = _ReplayFiles(model, channels, rename, file_sample_rate)
    for item in _replay_inputs(inputs):
        if not Path(item.path).is_file():
            raise RecordingError(f"recording not found: {item.path}")
        source = files.source(item, speed=0.0, block_size=1024)
        source.open()
        try:
            check_model_for_source(
                model,
                sample_rate=source.sample_rate,
                channels=source.channels,
                source=source.name,
                hop=hop,
            )
        finally:
            source.close()


def _replay_inputs(inputs: Sequence[str | Path | ReplayInput]) -> list[ReplayInput]:
    return [item if isinstance(item, ReplayInput) else ReplayInput(Path(item)) for item in inputs]


@dataclass(frozen=True)
class _ReplayFiles:
    """The settings a replay reads its files with, shared by the check and the replay."""

    model: Model
    channels: Sequence[str] | None
    rename: Mapping[str, str] | None
    file_sample_rate: float | None

    def source(self, item: ReplayInput, *, speed: float, block_size: int) -> FileSource:
        meta = self.model.metadata
        return FileSource(
            item.path,
            channels=tuple(self.channels) if self.channels else meta.channels,
            sample_rate=meta.sample_rate,
            rename=self.rename,
            file_sample_rate=self.file_sample_rate,
            speed=speed,
            block_size=block_size,
            start=item.start,
            duration=item.duration,
            name=f"file {Path(item.path).name}",
        )
