"""Tests of batched store-and-forward: Outbox.append_many, submit_states, the daemon's batches."""

from __future__ import annotations

import io
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from brokers import Subscriber, state_event
from fakes.source import ScriptedSource
from hypothesis import given, settings
from hypothesis import strategies as st

from edgemon.daemon import Daemon, SensorRunner
from edgemon.data import CWRU_EXCERPT
from edgemon.errors import ConfigError
from edgemon.model import load_model
from edgemon.pipeline import SensorPipeline
from edgemon.publish.console import ConsoleSink
from edgemon.publish.outbox import Outbox
from edgemon.recordings import read_recording

TOPIC = "edgemon/rig1/de/state"


def render(size: int = 100):
    return lambda seq: (TOPIC, b"x" * size + b"#" + str(seq).encode())


def seq_of(payload: bytes) -> int:
    return int(payload.rsplit(b"#", 1)[1])


def stored(outbox: Outbox) -> list[tuple[str, int]]:
    return [(m.topic, seq_of(m.payload)) for m in outbox.peek(0, 10**6)]


def test_append_many_seq_per_stream(tmp_path):
    outbox = Outbox(tmp_path / "o.db", max_messages=100, max_bytes=10**6)
    outbox.append("de", 1, render())
    streams = ["de", "fe", "de", "fe", "fe"]
    result = outbox.append_many([(stream, render()) for stream in streams], qos=1)
    assert result.seqs == (2, 1, 3, 2, 3)
    assert result.dropped == 0
    assert [seq_of(m.payload) for m in outbox.peek(0, 100)] == [1, 2, 1, 3, 2, 3]
    assert outbox.last_seq("de") == 3
    assert outbox.last_seq("fe") == 3
    assert len(outbox) == 6
    outbox.close()


def test_append_many_empty_batch(tmp_path):
    outbox = Outbox(tmp_path / "o.db", max_messages=10, max_bytes=10**6)
    result = outbox.append_many([], qos=1)
    assert result.seqs == ()
    assert result.dropped == 0
    assert len(outbox) == 0
    outbox.close()


# (max_messages, max_bytes, messages already stored, batch size, payload size)
BOUNDS = [
    pytest.param(100, 10**6, 5, 10, 100, id="within-bounds"),
    pytest.param(8, 10**6, 5, 6, 100, id="drops-old-by-count"),
    pytest.param(8, 10**6, 5, 20, 100, id="batch-exceeds-count"),
    pytest.param(1, 10**6, 3, 4, 100, id="one-message-bound"),
    pytest.param(1000, 1200, 5, 6, 100, id="drops-old-by-bytes"),
    pytest.param(1000, 500, 2, 9, 100, id="batch-exceeds-bytes"),
    pytest.param(1000, 50, 2, 3, 200, id="oversized-messages"),
]


@pytest.mark.parametrize(("max_messages", "max_bytes", "before", "batch", "size"), BOUNDS)
def test_append_many_equals_single_appends(tmp_path, max_messages, max_bytes, before, batch, size):
    single = Outbox(tmp_path / "single.db", max_messages=max_messages, max_bytes=max_bytes)
    batched = Outbox(tmp_path / "batched.db", max_messages=max_messages, max_bytes=max_bytes)
    for outbox in (single, batched):
        for _ in range(before):
            outbox.append("de", 1, render(size))
    dropped_before = single.dropped

    seqs = [single.append("de", 1, render(size)).seq for _ in range(batch)]
    result = batched.append_many([("de", render(size))] * batch, qos=1)

    assert list(result.seqs) == seqs
    assert result.dropped == single.dropped - dropped_before
    assert stored(batched) == stored(single)
    assert len(batched) == len(single)
    assert batched.nbytes == single.nbytes
    assert batched.dropped == single.dropped
    assert batched.last_seq("de") == single.last_seq("de")
    single.close()
    batched.close()


@given(
    max_messages=st.integers(1, 12),
    max_bytes=st.integers(50, 2000),
    batches=st.lists(
        st.lists(st.tuples(st.sampled_from(["de", "fe"]), st.integers(0, 400)), max_size=8),
        max_size=5,
    ),
)
@settings(max_examples=40, deadline=None)
def test_append_many_property_equals_single_appends(max_messages, max_bytes, batches):
    with tempfile.TemporaryDirectory() as folder:
        bounds = {"max_messages": max_messages, "max_bytes": max_bytes}
        single = Outbox(Path(folder) / "single.db", **bounds)
        batched = Outbox(Path(folder) / "batched.db", **bounds)
        for batch in batches:
            seqs = [single.append(stream, 1, render(size)).seq for stream, size in batch]
            result = batched.append_many([(stream, render(size)) for stream, size in batch], qos=1)
            assert list(result.seqs) == seqs
        assert stored(batched) == stored(single)
        assert len(batched) == len(single)
        assert batched.nbytes == single.nbytes
        assert batched.dropped == single.dropped
        for stream in ("de", "fe"):
            assert batched.last_seq(stream) == single.last_seq(stream)
        single.close()
        batched.close()


def test_append_many_counters_survive_reopen(tmp_path):
    outbox = Outbox(tmp_path / "o.db", max_messages=7, max_bytes=10**6)
    outbox.append_many([("de", render())] * 10, qos=1)
    count, nbytes = len(outbox), outbox.nbytes
    outbox.close()
    reopened = Outbox(tmp_path / "o.db", max_messages=7, max_bytes=10**6)
    assert (len(reopened), reopened.nbytes) == (count, nbytes)
    assert [seq for _, seq in stored(reopened)] == list(range(4, 11))
    reopened.close()


def test_append_many_render_failure_rolls_back(tmp_path):
    outbox = Outbox(tmp_path / "o.db", max_messages=3, max_bytes=10**6)
    outbox.append_many([("de", render())] * 3, qos=1)

    def failing(seq):
        raise ValueError("bad event")

    # The failure comes after two renders and after the oldest messages would have been dropped.
    with pytest.raises(ValueError, match="bad event"):
        outbox.append_many([("de", render()), ("fe", render()), ("de", failing)], qos=1)
    assert [seq for _, seq in stored(outbox)] == [1, 2, 3]
    assert outbox.last_seq("de") == 3
    assert outbox.last_seq("fe") == 0
    assert outbox.dropped == 0
    assert outbox.append_many([("de", render())], qos=1).seqs == (4,)
    outbox.close()


# Stores one batch, then kills itself with SIGKILL in the middle of a second,
# larger one. By then SQLite has written part of the second batch to the WAL
# file, because the transaction outgrew its page cache, but no commit record.
WRITER = textwrap.dedent(
    """
    import os, signal, sys
    from edgemon.publish.outbox import Outbox

    path, first, second = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    outbox = Outbox(path, max_messages=10**6, max_bytes=10**9)

    def render(seq):
        return "t", b"p" * 1000 + b"#" + str(seq).encode()

    outbox.append_many([("de", render)] * first, 1)
    wal = path + "-wal"
    committed = os.stat(wal).st_size
    print("committed", committed, flush=True)

    def kill_once_spilled():
        size = os.stat(wal).st_size
        if size > committed + 8 * 1024 * 1024:
            print("killed", size, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        return 0

    outbox._db.set_progress_handler(kill_once_spilled, 10000)
    outbox.append_many([("de", render)] * second, 1)
    print("not killed", flush=True)
    """
)


def test_append_many_sigkill_keeps_no_partial_batch(tmp_path):
    path = tmp_path / "o.db"
    first, second = 3000, 20000
    writer = subprocess.run(
        [sys.executable, "-c", WRITER, str(path), str(first), str(second)],
        capture_output=True,
        timeout=120,
    )
    lines = writer.stdout.decode().splitlines()
    assert writer.returncode == -signal.SIGKILL, writer.stderr.decode()
    assert lines[0].startswith("committed ")
    assert lines[1].startswith("killed ")

    outbox = Outbox(path, max_messages=10**6, max_bytes=10**9)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    seqs = [seq_of(m.payload) for m in outbox.peek(0, 10**6)]
    assert seqs == list(range(1, first + 1))
    assert len(outbox) == first
    assert outbox.last_seq("de") == first
    assert outbox.append_many([("de", render())], qos=1).seqs == (first + 1,)
    outbox.close()


def test_publisher_submit_states_in_order(broker, publisher_factory):
    subscriber = Subscriber(broker, "edgemon/rig1/+/state")
    publisher = publisher_factory(broker.url, sensors=("de", "fe"))
    assert publisher.submit_state(state_event(0)) == 1
    events = [state_event(i, sensor=("de", "fe")[i % 2]) for i in range(1, 41)]
    seqs = publisher.submit_states(events)
    assert seqs[:4] == [1, 2, 2, 3]  # fe, de, fe, de
    assert seqs[-2:] == [20, 21]
    assert publisher.submit_states([]) == []
    assert publisher.flush(10)
    assert subscriber.wait_for(lambda messages: len(messages) >= 41, 10)
    payloads = subscriber.payloads("/state")
    for sensor in ("de", "fe"):
        received = [p["seq"] for p in payloads if p["sensor"] == sensor]
        assert received == list(range(1, len(received) + 1))
    assert [p["window"]["start"] for p in payloads] == [i * 1024 for i in range(41)]
    subscriber.close()


def test_publisher_rejects_batch_with_foreign_event(broker, publisher_factory):
    publisher = publisher_factory(broker.url)
    events = [state_event(0), state_event(1, sensor="fe")]
    with pytest.raises(ConfigError, match="unknown sensor 'fe'"):
        publisher.submit_states(events)
    assert publisher.stats.queue_depth == 0
    assert publisher.submit_state(state_event(2)) == 1


def test_console_sink_submit_states():
    out = io.StringIO()
    sink = ConsoleSink(out)
    assert sink.submit_state(state_event(0)) == 1
    assert sink.submit_states([state_event(1), state_event(2, sensor="fe")]) == [2, 1]
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert " rig1/de seq=2 inner_race " in lines[1]
    assert " rig1/fe seq=1 outer_race " in lines[2]


class BatchSink:
    """Records each submit_states call; the first one waits for ``hold`` when given."""

    def __init__(self, hold: threading.Event | None = None) -> None:
        self.batches: list[list] = []
        self.hold = hold

    def submit_states(self, events) -> list[int]:
        if self.hold is not None and not self.batches:
            assert self.hold.wait(30), "the reader did not queue every block"
        self.batches.append(list(events))
        return list(range(len(events)))

    def submit_features(self, sensor, ts, columns, values) -> bool:
        return False


@pytest.fixture(scope="module")
def model(excerpt_model):
    return load_model(excerpt_model)


@pytest.fixture(scope="module")
def samples() -> np.ndarray:
    return read_recording(CWRU_EXCERPT / "12k_Drive_End_B007_1_119.mat", channels=["DE"]).samples


def run_runner(model, source, sink, queue_blocks):
    stop = threading.Event()
    pipeline = SensorPipeline("rig1", "de", source, model)
    runner = SensorRunner(source, pipeline, sink, stop, queue_blocks=queue_blocks)
    status = Daemon("rig1", [runner], stop, health_interval=0.2).run()
    return status, runner, pipeline


def test_runner_batches_waiting_blocks(model, samples):
    meta = model.metadata
    size = meta.hop // 4
    blocks = [samples[i : i + size] for i in range(0, 40 * size, size)]
    source = ScriptedSource(blocks)
    # The first commit waits until the reader has queued every block (40 fit in
    # the queue), so the processing thread then finds them all waiting.
    sink = BatchSink(hold=source.exhausted)
    status, _, pipeline = run_runner(model, source, sink, queue_blocks=64)
    assert status == 0
    events = [event for batch in sink.batches for event in batch]
    expected = (40 * size - meta.window) // meta.hop + 1
    assert [e.window_start for e in events] == [k * meta.hop for k in range(expected)]
    assert pipeline.stats.windows == expected
    assert all(sink.batches)
    assert len(sink.batches) <= 2


class RewindingSource(ScriptedSource):
    """Deliver the blocks, the last one starting 4096 samples before the end of the previous."""

    def read(self, timeout):
        if len(self._items) == 1:
            self._index -= 4096
        return super().read(timeout)


def test_runner_keeps_events_before_failure(model, samples):
    blocks = [samples[i : i + 1024] for i in range(0, 20480 + 1024, 1024)]
    sink = BatchSink()
    status, runner, _ = run_runner(model, RewindingSource(blocks), sink, queue_blocks=64)
    assert status == 1
    assert isinstance(runner.error, ValueError)
    # Every window of the blocks before the rejected one was submitted.
    events = [event for batch in sink.batches for event in batch]
    meta = model.metadata
    assert len(events) == (20480 - meta.window) // meta.hop + 1


def test_outbox_delete_keeps_appends_synced(tmp_path):
    outbox = Outbox(tmp_path / "o.db", max_messages=100, max_bytes=10**6)
    outbox.append_many([("de", render())] * 3, qos=1)
    first = outbox.peek(0, 1)[0]
    assert outbox.delete([first.id]) == 1
    # Deletions commit with synchronous=NORMAL (1); appends must go on with FULL (2).
    assert outbox._db.execute("PRAGMA synchronous").fetchone()[0] == 2
    assert [seq for _, seq in stored(outbox)] == [2, 3]
    outbox.close()
    reopened = Outbox(tmp_path / "o.db", max_messages=100, max_bytes=10**6)
    assert [seq for _, seq in stored(reopened)] == [2, 3]
    reopened.close()
