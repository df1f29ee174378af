"""Tests of the daemon's threads: back-pressure, drops, failures, reopening and systemd."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

import numpy as np
import pytest
from fakes.source import FailingOnce, ScriptedSource

from edgemon.daemon import Daemon, SensorRunner
from edgemon.data import CWRU_EXCERPT
from edgemon.model import load_model
from edgemon.pipeline import SensorPipeline
from edgemon.recordings import read_recording
from edgemon.systemd import Notifier


@pytest.fixture(scope="module")
def model(excerpt_model):
    return load_model(excerpt_model)


@pytest.fixture(scope="module")
def blocks() -> list[np.ndarray]:
    samples = read_recording(CWRU_EXCERPT / "12k_Drive_End_B007_1_119.mat", channels=["DE"]).samples
    return [samples[i : i + 1024] for i in range(0, 40960, 1024)]


class RecordingSink:
    """Collects events; optionally slow, to make the processing thread fall behind."""

    def __init__(self, delay: float = 0.0, fail_after: int | None = None) -> None:
        self.events = []
        self.features = []
        self.delay = delay
        self.fail_after = fail_after

    def submit_state(self, event) -> int:
        if self.fail_after is not None and len(self.events) >= self.fail_after:
            raise OSError("disk full")
        if self.delay:
            time.sleep(self.delay)
        self.events.append(event)
        return len(self.events)

    def submit_states(self, events) -> list[int]:
        return [self.submit_state(event) for event in events]

    def submit_features(self, sensor, ts, columns, values) -> bool:
        self.features.append((sensor, ts, tuple(columns), list(values)))
        return True


def run_daemon(model, source, sink, *, queue_blocks=64, stop=None, timeout=60.0):
    stop = stop or threading.Event()
    pipeline = SensorPipeline("rig1", "de", source, model)
    runner = SensorRunner(source, pipeline, sink, stop, queue_blocks=queue_blocks)
    daemon = Daemon("rig1", [runner], stop, health_interval=0.2)
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(daemon.run()))
    thread.start()
    return daemon, runner, thread, result, stop


def expected_windows(n_samples: int, model) -> int:
    meta = model.metadata
    return (n_samples - meta.window) // meta.hop + 1


def test_finite_source_waits_instead_of_dropping(model, blocks):
    source = ScriptedSource(blocks)
    sink = RecordingSink(delay=0.002)
    _daemon, runner, thread, result, _ = run_daemon(model, source, sink, queue_blocks=2)
    thread.join(60)
    assert result == [0]
    assert runner.dropped_samples == 0
    assert len(sink.events) == expected_windows(40960, model)
    assert source.closed == 1


def test_live_source_drops_and_reports(model, blocks, caplog):
    caplog.set_level(logging.WARNING, logger="edgemon.daemon")
    source = ScriptedSource(blocks * 3, live=True, interval=0.002)
    sink = RecordingSink(delay=0.01)
    daemon, runner, thread, result, stop = run_daemon(model, source, sink, queue_blocks=1)
    assert source.exhausted.wait(30)
    stop.set()
    thread.join(60)
    assert result == [0]
    assert runner.dropped_blocks > 0
    assert runner.dropped_samples == 1024 * runner.dropped_blocks
    assert daemon.health_counters()["samples_dropped"] == runner.dropped_samples
    assert "dropped" in caplog.text
    # Every block that was not dropped was processed, gaps included.
    assert runner.health()["gaps"] > 0


def test_runner_offers_newest_features(model, blocks):
    source = ScriptedSource(blocks)
    sink = RecordingSink()
    _daemon, _runner, thread, result, _ = run_daemon(model, source, sink)
    thread.join(60)
    assert result == [0]
    assert sink.features
    sensor, ts, columns, values = sink.features[-1]
    assert sensor == "de"
    assert columns == tuple(model.metadata.columns)
    assert len(values) == len(columns)
    assert ts == sink.events[-1].ts


def test_health_counts_flags_and_sensors(model, blocks):
    source = ScriptedSource([np.zeros(4096), *blocks[:8]])
    sink = RecordingSink()
    daemon, _runner, thread, _result, _ = run_daemon(model, source, sink)
    thread.join(60)
    counters = daemon.health_counters()
    assert counters["windows_processed"] == len(sink.events)
    assert counters["windows_by_flag"]["constant"] >= 1
    assert counters["windows_flagged"] == sum(1 for e in sink.events if e.flags)
    assert counters["sensors"]["de"]["windows"] == len(sink.events)
    assert counters["samples_lost"] == 0


def test_stop_processes_blocks_already_read(model, blocks):
    source = ScriptedSource(blocks, live=True)
    sink = RecordingSink()
    _daemon, _runner, thread, result, stop = run_daemon(model, source, sink)
    assert source.exhausted.wait(30)
    stop.set()
    thread.join(60)
    assert result == [0]
    assert len(sink.events) == expected_windows(40960, model)


def test_sink_failure_stops_daemon(model, blocks, caplog):
    caplog.set_level(logging.ERROR)
    source = ScriptedSource(blocks)
    _daemon, runner, thread, result, stop = run_daemon(model, source, RecordingSink(fail_after=3))
    thread.join(60)
    assert result == [1]
    assert stop.is_set()
    assert isinstance(runner.error, OSError)
    assert "processing failed" in caplog.text


def test_live_source_reopened_after_error(model, blocks, caplog):
    caplog.set_level(logging.INFO, logger="edgemon.daemon")
    source = FailingOnce(blocks[:4])
    sink = RecordingSink()
    _daemon, _runner, thread, result, stop = run_daemon(model, source, sink)
    assert source.exhausted.wait(30)
    stop.set()
    thread.join(60)
    assert result == [0]
    assert source.opened == 1
    assert "bus went away" in caplog.text
    assert "reopened" in caplog.text
    assert len(sink.events) == expected_windows(4096, model)


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    path = tmp_path / "notify.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield server
    server.close()


def test_notifier_sends_ready(notify_socket):
    Notifier().ready("monitoring 1 sensor(s)")
    assert notify_socket.recv(256) == b"READY=1\nSTATUS=monitoring 1 sensor(s)"


def test_notifier_outside_systemd(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier()
    assert not notifier.enabled
    notifier.ready()  # no socket: nothing happens


def test_daemon_feeds_watchdog(model, blocks, notify_socket, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    source = ScriptedSource(blocks, live=True)
    _daemon, _runner, thread, _result, stop = run_daemon(model, source, RecordingSink())
    messages = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and messages.count(b"WATCHDOG=1") < 2:
        messages.append(notify_socket.recv(256))
    stop.set()
    thread.join(30)
    assert messages[0].startswith(b"READY=1")
    assert messages.count(b"WATCHDOG=1") >= 2
