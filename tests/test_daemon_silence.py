"""Tests of the warning about a live source that stops delivering samples, over real UDP."""

from __future__ import annotations

import logging
import socket
import threading

import numpy as np
import pytest
from fakes.source import ScriptedSource

import edgemon.daemon
from edgemon.daemon import DEFAULT_SILENCE_TIMEOUT, Daemon, SensorRunner
from edgemon.model import load_model
from edgemon.pipeline import SensorPipeline
from edgemon.sources.udp import UdpSource
from edgemon.sources.wire import encode_packet

RATE = 12000.0
PACKET_SAMPLES = 1000


@pytest.fixture(scope="module")
def model(excerpt_model):
    return load_model(excerpt_model)


class DiscardingSink:
    def submit_states(self, events) -> list[int]:
        return list(range(len(events)))

    def submit_features(self, sensor, ts, columns, values) -> bool:
        return True


class LogWaiter(logging.Handler):
    """Counts the records of the daemon's logger that contain a text, and signals each one."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.DEBUG)
        self.text = text
        self.records: list[logging.LogRecord] = []
        self._arrived = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            with self._arrived:
                self.records.append(record)
                self._arrived.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.records) >= count, timeout)


@pytest.fixture
def waiters():
    logger = logging.getLogger("edgemon.daemon")
    previous = logger.level
    logger.setLevel(logging.INFO)
    created = {}

    def make(text: str) -> LogWaiter:
        waiter = LogWaiter(text)
        logger.addHandler(waiter)
        created[text] = waiter
        return waiter

    yield make
    for waiter in created.values():
        logger.removeHandler(waiter)
    logger.setLevel(previous)


class UdpRig:
    """A udp source read by a running daemon, and a socket that sends it packets."""

    def __init__(self, model, silence_timeout: float) -> None:
        self.source = UdpSource(RATE, ["DE"], port=0, name="de (udp)")
        self.source.open()
        self.sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sequence = 0
        self.stop = threading.Event()
        pipeline = SensorPipeline("rig1", "de", self.source, model)
        self.runner = SensorRunner(
            self.source, pipeline, DiscardingSink(), self.stop, silence_timeout=silence_timeout
        )
        self.daemon = Daemon("rig1", [self.runner], self.stop, health_interval=0.2)
        self.result: list[int] = []
        self.thread = threading.Thread(target=lambda: self.result.append(self.daemon.run()))
        self.thread.start()

    def send(self, n_packets: int) -> None:
        rng = np.random.default_rng(self.sequence)
        for _ in range(n_packets):
            samples = rng.normal(0.0, 0.1, (PACKET_SAMPLES, 1))
            first = self.sequence * PACKET_SAMPLES
            data = encode_packet(
                samples, sequence=self.sequence, first_sample=first, sample_rate=RATE
            )
            self.sender.sendto(data, self.source.address)
            self.sequence += 1

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        self.sender.close()


@pytest.fixture
def rig(model):
    rigs = []

    def make(silence_timeout: float) -> UdpRig:
        rigs.append(UdpRig(model, silence_timeout))
        return rigs[-1]

    yield make
    for item in rigs:
        item.close()


def test_silent_udp_source_warns_then_resumes(rig, waiters):
    silence = waiters("no samples from source de (udp)")
    resumed = waiters("samples from source de (udp) resumed")
    udp = rig(silence_timeout=0.6)
    udp.send(3)

    assert silence.wait_for(1, timeout=10)
    assert udp.runner.health()["samples"] == 3 * PACKET_SAMPLES
    assert silence.records[0].levelno == logging.WARNING
    assert udp.runner.silent
    assert udp.runner.health()["source_counters"]["silent_periods"] == 1
    assert "no samples from sensor(s) de" in udp.daemon._status_line()
    assert not resumed.records

    udp.send(2)
    assert resumed.wait_for(1, timeout=10)
    assert resumed.records[0].levelno == logging.INFO
    assert not udp.runner.silent
    assert udp.runner.health()["source_counters"]["silent_periods"] == 1
    assert "no samples" not in udp.daemon._status_line()


def test_silence_warning_is_rate_limited(rig, waiters, monkeypatch):
    monkeypatch.setattr(edgemon.daemon, "SILENCE_WARNING_INTERVAL", 0.8)
    silence = waiters("no samples from source de (udp)")
    udp = rig(silence_timeout=0.4)

    assert silence.wait_for(2, timeout=10)
    first, second = silence.records[:2]
    assert second.created - first.created >= 0.7
    # Repeated warnings belong to one silent period.
    assert udp.runner.silent_periods == 1


def test_silence_of_second_period_counted(rig, waiters):
    silence = waiters("no samples from source de (udp)")
    resumed = waiters("resumed")
    udp = rig(silence_timeout=0.4)
    assert silence.wait_for(1, timeout=10)
    udp.send(1)
    assert resumed.wait_for(1, timeout=10)
    assert silence.wait_for(2, timeout=10)
    assert udp.runner.silent_periods == 2


def test_finite_source_never_silent(model):
    source = ScriptedSource([])
    pipeline = SensorPipeline("rig1", "de", source, model)
    runner = SensorRunner(source, pipeline, DiscardingSink(), threading.Event())
    assert "silent_periods" not in runner.health()["source_counters"]


@pytest.mark.parametrize(("rate", "expected"), [(12000.0, DEFAULT_SILENCE_TIMEOUT), (200.0, 40.96)])
def test_default_silence_timeout(model, rate, expected):
    # Two window periods of 4096 samples at 200 Hz exceed the default.
    assert model.metadata.window == 4096
    source = ScriptedSource([], sample_rate=rate)
    pipeline = SensorPipeline("rig1", "de", ScriptedSource([]), model)
    pipeline.sample_rate = rate
    runner = SensorRunner(source, pipeline, DiscardingSink(), threading.Event())
    assert runner.silence_timeout == pytest.approx(expected)
