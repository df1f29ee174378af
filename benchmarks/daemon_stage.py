"""In-process parts of ``benchmarks/pipeline.py``: data, models and the measurements in its process.

The processing stage, the outbox and the latency are measured here, on
the daemon's own classes (``SensorPipeline``, ``Outbox``, ``SensorRunner``
and ``MqttPublisher``), fed by :class:`ArraySource` instead of a socket.
"""

from __future__ import annotations

import io
import statistics
import threading
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from edgemon.daemon import Daemon, SensorRunner
from edgemon.data import CWRU_EXCERPT
from edgemon.demo import TRAIN_SHARE, demo_split, train_demo_model
from edgemon.model import Model, load_model
from edgemon.pipeline import SensorPipeline
from edgemon.publish.outbox import Outbox
from edgemon.publish.payloads import render_state
from edgemon.recordings import Recording, read_recording, resample
from edgemon.sources.base import Block, Source
from edgemon.sources.wire import max_samples_per_packet


def packet_samples(n_channels: int) -> int:
    """Return the samples per channel in each packet that ``edgemon-sim`` sends (float32)."""
    return min(256, max_samples_per_packet(n_channels, "float32"))


@dataclass
class Stream:
    """A model and the held-out signal it is benchmarked on."""

    name: str
    model_path: Path
    samples: np.ndarray  # (n_samples, n_channels)
    sample_rate: float
    channels: tuple[str, ...]


# --- sources and sinks ---------------------------------------------------------------------------


class ArraySource(Source):
    """Deliver an array in blocks; when live, each one once its last sample is due in real time."""

    def __init__(self, stream: Stream, block: int, *, live: bool) -> None:
        self.name = f"benchmark {stream.name}"
        self.sample_rate = stream.sample_rate
        self.channels = stream.channels
        self.full_scale = None
        self.live = live
        self._samples = stream.samples
        self.block = block
        self._next = 0
        self._start = 0.0
        #: First sample index and arrival time of every block delivered.
        self.arrivals: list[tuple[int, float]] = []

    def open(self) -> None:
        self._start = time.monotonic()

    def read(self, timeout: float) -> Block | None:
        if self._next >= len(self._samples):
            raise EOFError("end of the benchmark stream")
        end = min(self._next + self.block, len(self._samples))
        if self.live:
            wait = self._start + end / self.sample_rate - time.monotonic()
            if wait > timeout:
                time.sleep(timeout)
                return None
            if wait > 0:
                time.sleep(wait)
        received = time.monotonic()
        block = Block(self._samples[self._next : end], self._next, received)
        self.arrivals.append((self._next, received))
        self._next = end
        return block

    def close(self) -> None:
        pass


class TimedSink:
    """Pass states on to a publisher and note when each one was committed.

    With ``per_state`` it stores them one transaction each, as the daemon did
    before it submitted batches.
    """

    def __init__(self, sink, *, per_state: bool) -> None:
        self.sink = sink
        self.per_state = per_state
        #: (window start, monotonic time of the commit) of every state.
        self.commits: list[tuple[int, float]] = []
        self.transactions = 0

    def submit_states(self, events) -> list[int]:
        self.transactions += 1 if not self.per_state else len(events)
        if not self.per_state:
            seqs = self.sink.submit_states(events)
            now = time.monotonic()
            self.commits += [(event.window_start, now) for event in events]
            return seqs
        seqs = []
        for event in events:
            seqs.append(self.sink.submit_state(event))
            self.commits.append((event.window_start, time.monotonic()))
        return seqs

    def submit_features(self, *args, **kwargs) -> bool:
        return self.sink.submit_features(*args, **kwargs)


# --- data and models -----------------------------------------------------------------------------


def cwru_stream(model_path: Path) -> Stream:
    """Return the held-out part of the excerpt at 12 kHz, as ``edgemon demo`` replays it."""
    _, held_out = demo_split()
    parts = []
    for item in held_out:
        recording = resample(read_recording(item.path, channels=["DE"]), 12000.0)
        parts.append(recording.samples[round(item.start * 12000.0) :])
    return Stream("1 axis, 12 kHz", model_path, np.concatenate(parts), 12000.0, ("DE",))


def three_axis_split(sample_rate: float = 25600.0):
    """Return training recordings and a held-out stream of three axes built from the excerpt."""
    from edgemon.training.datasets import load_dataset

    recordings = load_dataset("cwru", CWRU_EXCERPT, channels=("DE", "FE"), sample_rate=sample_rate)
    train, held_out = [], []
    for item in recordings:
        de, fe = item.recording.samples.T
        axes = np.column_stack([de, fe, np.roll(de, len(de) // 2)])
        recording = Recording(axes, sample_rate, ("x", "y", "z"), item.recording.path, item.sha256)
        if item.label == "normal":
            n_train = int(len(axes) * TRAIN_SHARE)
            train.append(replace(item, recording=replace(recording, samples=axes[:n_train])))
            held_out.insert(0, axes[n_train:])
        elif item.attrs["load_hp"] == 0:
            train.append(replace(item, recording=recording))
        else:
            held_out.append(axes)
    return train, np.concatenate(held_out)


def prepare_streams(workdir: Path) -> list[Stream]:
    """Train both models into ``workdir`` and return their held-out streams."""
    one_axis = workdir / "cwru-1axis.onnx"
    train, _ = demo_split()
    train_demo_model(train, one_axis)
    three_axes = workdir / "cwru-3axis.onnx"
    train3, held_out3 = three_axis_split()
    train_demo_model(train3, three_axes)
    return [
        cwru_stream(one_axis),
        Stream("3 axes, 25.6 kHz", three_axes, held_out3, 25600.0, ("x", "y", "z")),
    ]


# --- measurements --------------------------------------------------------------------------------


class PartTimer:
    """Accumulate the CPU time of calls to the parts of a pipeline, measured where they run."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, name: str, function: Callable) -> Callable:
        self.seconds[name] = 0.0

        def timed(*args, **kwargs):
            start = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] += time.thread_time() - start

        return timed


def run_stage(
    model: Model,
    stream: Stream,
    n_samples: int,
    hop: int | None = None,
    parts: PartTimer | None = None,
) -> tuple[float, int, list]:
    """Push ``n_samples`` of the stream through a new pipeline; return CPU seconds, windows, events.

    With ``parts``, the calls to the ring buffer, the feature extractor and
    the model are timed one by one as the pipeline makes them.
    """
    source = ArraySource(stream, packet_samples(len(stream.channels)), live=False)
    pipeline = SensorPipeline("bench", "s1", source, model, hop=hop)
    if parts is not None:
        buffer, extractor = pipeline.buffer, pipeline.extractor
        buffer.push = parts.wrap("ring buffer push", buffer.push)
        buffer.pop_windows = parts.wrap("ring buffer pop", buffer.pop_windows)
        extractor.transform_with_flags = parts.wrap(
            "features and flags", extractor.transform_with_flags
        )
        model.score = parts.wrap("model", model.score)
    block = source.block
    samples = stream.samples[:n_samples]
    blocks = [Block(samples[i : i + block], i, 0.0) for i in range(0, len(samples), block)]
    events = []
    try:
        start = time.thread_time()
        for item in blocks:
            events += pipeline.process(item)
        seconds = time.thread_time() - start
    finally:
        if parts is not None:
            del model.score
    return seconds, pipeline.stats.windows, events


def measure_stage(
    streams: Sequence[Stream],
    rounds: int,
    n_samples: int,
    progress: Callable[[str], None] | None = None,
) -> list[dict]:
    """Return the CPU time per window of the processing stage for each stream and backend.

    ``progress`` receives a line before each round, outside the timed runs.
    """
    cases = {}
    for stream in streams:
        for backend in ("onnxruntime", "numpy"):
            model = load_model(stream.model_path, backend=backend)
            run_stage(model, stream, 4 * n_samples // rounds)  # warm up
            cases[(stream.name, backend)] = (model, stream, [])
    parts: dict[tuple[str, str], list[dict[str, float]]] = {key: [] for key in cases}
    for round_index in range(rounds):
        if progress is not None:
            progress(f"stage: round {round_index + 1} of {rounds}, {len(cases)} cases")
        for key, (model, stream, per_window) in cases.items():
            seconds, windows, _ = run_stage(model, stream, n_samples)
            per_window.append(seconds / windows)
            timer = PartTimer()
            seconds, windows, _ = run_stage(model, stream, n_samples, parts=timer)
            parts[key].append({name: value / windows for name, value in timer.seconds.items()})
            parts[key][-1]["rest"] = seconds / windows - sum(parts[key][-1].values())
    rows = []
    for key, (model, stream, per_window) in cases.items():
        cost = statistics.median(per_window)
        windows_per_second = stream.sample_rate / model.metadata.hop
        rows.append(
            {
                "stream": key[0],
                "backend": key[1],
                "channels": len(stream.channels),
                "block": packet_samples(len(stream.channels)),
                "hop": model.metadata.hop,
                "us_per_window": cost * 1e6,
                "spread": (min(per_window) * 1e6, max(per_window) * 1e6),
                "windows_per_second": windows_per_second,
                "core_share": cost * windows_per_second,
                "parts": {
                    name: statistics.median(p[name] for p in parts[key]) * 1e6
                    for name in parts[key][0]
                },
            }
        )
    return rows


def stage_peak_memory(stream: Stream, n_samples: int) -> int:
    """Return the peak bytes Python allocates while ``n_samples`` pass through the stage."""
    model = load_model(stream.model_path)
    run_stage(model, stream, 8 * 2048)
    tracemalloc.start()
    source = ArraySource(stream, packet_samples(len(stream.channels)), live=False)
    pipeline = SensorPipeline("bench", "s1", source, model)
    block = source.block
    for start in range(0, n_samples, block):
        offset = start % (len(stream.samples) - block)
        pipeline.process(Block(stream.samples[offset : offset + block], start, 0.0))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def measure_outbox(
    directory: Path,
    events: list,
    batch_sizes: Sequence[int],
    n_states: int,
    rounds: int,
    progress: Callable[[str], None] | None = None,
) -> dict[int, list[tuple[float, float]]]:
    """Return (wall, CPU) seconds per state of storing ``n_states`` states, per batch size.

    A batch size of 1 stores each state with :meth:`Outbox.append`, one
    transaction per state. ``progress`` receives a line before each round,
    outside the timed runs.
    """
    seconds: dict[int, list[tuple[float, float]]] = {size: [] for size in batch_sizes}
    topic = "edgemon/bench/s1/state"
    for round_index in range(rounds):
        if progress is not None:
            progress(f"outbox: round {round_index + 1} of {rounds}, batch sizes {batch_sizes}")
        for size in batch_sizes:
            path = directory / f"outbox-{size}-{round_index}.sqlite3"
            outbox = Outbox(path, max_messages=100_000, max_bytes=32 * 1024 * 1024)
            start, cpu_start = time.perf_counter(), time.thread_time()
            for first in range(0, n_states, size):
                batch = [events[i % len(events)] for i in range(first, min(first + size, n_states))]
                if size == 1:
                    outbox.append(
                        "s1", 1, lambda seq, event=batch[0]: (topic, render_state(event, seq))
                    )
                else:
                    outbox.append_many(
                        [
                            ("s1", lambda seq, event=event: (topic, render_state(event, seq)))
                            for event in batch
                        ],
                        1,
                    )
            seconds[size].append(
                (
                    (time.perf_counter() - start) / n_states,
                    (time.thread_time() - cpu_start) / n_states,
                )
            )
            outbox.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
    return seconds


def measure_latency(
    stream: Stream,
    broker_url: str | None,
    directory: Path,
    seconds: float,
    hop: int,
    per_state: bool,
    *,
    paced: bool = True,
) -> dict:
    """Stream through the daemon's threads, paced or not; return latency and throughput."""
    from edgemon.publish.client import MqttPublisher
    from edgemon.publish.console import ConsoleSink
    from edgemon.publish.settings import MqttSettings

    model = load_model(stream.model_path)
    n_samples = min(len(stream.samples), int(seconds * stream.sample_rate))
    part = replace(stream, samples=stream.samples[:n_samples])
    source = ArraySource(part, packet_samples(len(stream.channels)), live=paced)
    if broker_url is not None:
        state_dir = directory / f"latency-{per_state}-{hop}-{paced}"
        publisher = MqttPublisher(
            MqttSettings.from_url(broker_url),
            "bench",
            state_dir=state_dir,
            sensors={"s1": tuple(sorted(set(model.metadata.states) | {"unknown", "invalid"}))},
        )
    else:
        publisher = ConsoleSink(io.StringIO())
    sink = TimedSink(publisher, per_state=per_state)
    stop = threading.Event()
    publisher.start()
    try:
        source.open()
        pipeline = SensorPipeline("bench", "s1", source, model, hop=hop)
        runner = SensorRunner(source, pipeline, sink, stop)
        Daemon("bench", [runner], stop).run()
        publisher.flush(30.0)
    finally:
        publisher.stop(10.0)
    firsts = np.array([first for first, _ in source.arrivals])
    arrivals = np.array([received for _, received in source.arrivals])
    latencies = []
    for window_start, committed in sink.commits:
        last_sample = window_start + model.metadata.window - 1
        block = np.searchsorted(firsts, last_sample, side="right") - 1
        latencies.append((committed - arrivals[block]) * 1e3)
    latencies = np.array(latencies)
    elapsed = sink.commits[-1][1] - source.arrivals[0][1]
    return {
        "states": len(latencies),
        "median": float(np.median(latencies)),
        "p99": float(np.percentile(latencies, 99)),
        "max": float(latencies.max()),
        "transactions": sink.transactions,
        "dropped": runner.dropped_samples,
        "states_per_second": len(latencies) / elapsed,
    }
