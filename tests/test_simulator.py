"""Tests of edgemon-sim: streamed to the udp source over loopback, and its pacing."""

from __future__ import annotations

import subprocess
import sys
import time
from itertools import pairwise

import numpy as np
import pytest
from edgemon_sim.cli import main, parse_address
from edgemon_sim.streamer import Streamer
from fakes.clock import FakeClock

from edgemon.data import CWRU_EXCERPT
from edgemon.flags import WindowFlag
from edgemon.recordings import read_recording, resample
from edgemon.ringbuffer import RingBuffer
from edgemon.sources.udp import UdpSource
from edgemon.sources.wire import decode_packet

INNER_RACE = CWRU_EXCERPT / "12k_Drive_End_IR007_0_105.mat"
NORMAL = CWRU_EXCERPT / "normal_0_97.mat"


def start_sim(port, *args):
    command = [
        sys.executable,
        "-m",
        "edgemon_sim",
        "--udp",
        f"127.0.0.1:{port}",
        "--progress",
        "0",
        *map(str, args),
    ]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def receive(source, process, expected_samples, timeout=60.0):
    """Read blocks until ``expected_samples`` arrived or the simulator exited and went quiet."""
    blocks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        block = source.read(0.5)
        if block is not None:
            blocks.append(block)
            if blocks[-1].end_index >= expected_samples:
                break
        elif process.poll() is not None:
            break
    return blocks


def run_sim(port, source, expected_samples, *args):
    process = start_sim(port, *args)
    try:
        blocks = receive(source, process, expected_samples)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    return blocks, stderr


@pytest.mark.parametrize(
    ("path", "channels", "rate"),
    [
        (INNER_RACE, ["DE"], None),
        (INNER_RACE, ["FE", "DE"], None),
        (NORMAL, ["DE"], 12000.0),
    ],
)
def test_stream_equals_file_samples(path, channels, rate):
    recording = read_recording(path, channels=channels)
    if rate is not None:
        recording = resample(recording, rate)
    args = ["--input", path, "--speed", 8]
    for channel in channels:
        args += ["--channel", channel]
    if rate is not None:
        args += ["--rate", rate]

    with UdpSource(recording.sample_rate, channels, port=0) as source:
        blocks, stderr = run_sim(source.address[1], source, recording.n_samples, *args)
        counters = source.counters()

    received = np.concatenate([b.samples for b in blocks])
    expected = recording.samples.astype(np.float32).astype(np.float64)
    np.testing.assert_array_equal(received, expected)
    assert blocks[0].first_index == 0
    assert all(b.first_index == a.end_index for a, b in pairwise(blocks))
    assert counters["lost_packets"] == 0
    assert "achieved" in stderr


@pytest.mark.parametrize("drop_every", [3, 10])
def test_injected_loss_detected_as_gaps(drop_every):
    recording = read_recording(INNER_RACE, channels=["DE"])
    n_packets = -(-recording.n_samples // 256)
    dropped = list(range(drop_every - 1, n_packets, drop_every))
    # The receiver cannot notice a dropped last packet: no later packet reveals it.
    noticed = [p for p in dropped if p < n_packets - 1]

    with UdpSource(12000, ["DE"], port=0) as source:
        blocks, _ = run_sim(
            source.address[1],
            source,
            recording.n_samples,
            "--input",
            INNER_RACE,
            "--channel",
            "DE",
            "--speed",
            8,
            "--drop-every",
            drop_every,
        )
        counters = source.counters()

    assert counters["lost_packets"] == len(noticed)
    kept = [p for p in range(n_packets) if p not in dropped]
    assert [b.first_index for b in blocks] == [256 * p for p in kept]
    expected = np.concatenate([recording.samples[256 * p : 256 * (p + 1)] for p in kept])
    np.testing.assert_array_equal(
        np.concatenate([b.samples for b in blocks]), expected.astype(np.float32)
    )

    buffer = RingBuffer(capacity=recording.n_samples, n_channels=1, window=1024, hop=512)
    for block in blocks:
        buffer.push(block)
    batch = buffer.pop_windows()
    assert buffer.stats.gaps == len(noticed)
    assert buffer.stats.gap_samples == 256 * len(noticed)
    assert (batch.flags & WindowFlag.GAP).any()


def test_int16_stream_within_half_count():
    scale = 8.0 / 32768
    recording = read_recording(INNER_RACE, channels=["DE"])
    with UdpSource(12000, ["DE"], port=0) as source:
        blocks, _ = run_sim(
            source.address[1],
            source,
            recording.n_samples,
            "--input",
            INNER_RACE,
            "--channel",
            "DE",
            "--speed",
            8,
            "--int16",
            "--scale",
            scale,
        )
    received = np.concatenate([b.samples for b in blocks])
    np.testing.assert_allclose(received, recording.samples, atol=scale / 2 + 1e-12)
    assert not any(b.flags & WindowFlag.SATURATED for b in blocks)


def test_real_time_pacing_stays_close():
    # Loose check over 3 s of real-time streaming: the simulator's own report and
    # the receiver's arrival times both give the sample rate within 2 %.
    with UdpSource(12000, ["DE"], port=0) as source:
        blocks, stderr = run_sim(
            source.address[1],
            source,
            36000,
            "--input",
            INNER_RACE,
            "--channel",
            "DE",
            "--seconds",
            3,
        )
    assert blocks[-1].end_index == 36000
    arrival_rate = (blocks[-1].end_index - blocks[0].end_index) / (
        blocks[-1].received - blocks[0].received
    )
    assert arrival_rate == pytest.approx(12000, rel=0.02)
    reported = float(stderr.split("achieved ")[1].split()[0])
    assert reported == pytest.approx(12000, rel=0.02)


@pytest.mark.shared_data
def test_stream_shared_recording(cwru_dir):
    path = cwru_dir / "12k_Drive_End_B021_2_224.mat"
    recording = read_recording(path, channels=["BA"])
    with UdpSource(12000, ["BA"], port=0) as source:
        blocks, _ = run_sim(
            source.address[1],
            source,
            recording.n_samples,
            "--input",
            path,
            "--channel",
            "BA",
            "--speed",
            20,
        )
    np.testing.assert_array_equal(
        np.concatenate([b.samples for b in blocks]), recording.samples.astype(np.float32)
    )


# Streamer with a manual clock: packet contents and deadlines, no real time.


class Recorder:
    def __init__(self, clock):
        self.clock = clock
        self.packets = []
        self.times = []

    def sendto(self, data, address):
        self.packets.append(decode_packet(data))
        self.times.append(self.clock())


def stream(samples, overshoot=0.0, **kwargs):
    clock = FakeClock(overshoot=overshoot)
    recorder = Recorder(clock)
    start = clock()
    stats = Streamer(
        samples, 1000.0, ("127.0.0.1", 9), sock=recorder, clock=clock, sleep=clock.sleep, **kwargs
    ).run()
    return recorder, stats, start


@pytest.mark.parametrize(("speed", "overshoot"), [(1.0, 0.0), (1.0, 0.002), (4.0, 0.0005)])
def test_deadlines_do_not_drift(speed, overshoot):
    recorder, stats, start = stream(
        np.zeros((10000, 1)), overshoot, packet_samples=100, speed=speed
    )
    due = start + np.arange(1, 101) * 100 / (1000.0 * speed)
    np.testing.assert_allclose(recorder.times, due + overshoot, atol=1e-9)
    assert stats.achieved_rate == pytest.approx(1000 * speed, rel=1e-3)


def test_drop_every_skips_but_advances():
    recorder, stats, _ = stream(np.arange(1000.0)[:, None], packet_samples=100, drop_every=4)
    assert [p.sequence for p in recorder.packets] == [0, 1, 2, 4, 5, 6, 8, 9]
    assert [p.first_sample for p in recorder.packets] == [0, 100, 200, 400, 500, 600, 800, 900]
    assert stats.packets_dropped == 2
    assert stats.samples_streamed == 1000


def test_loop_continues_index_and_stops_at_max():
    recorder, stats, _ = stream(
        np.arange(250.0)[:, None], packet_samples=100, loop=True, max_seconds=0.6
    )
    assert [p.first_sample for p in recorder.packets] == [0, 100, 200, 250, 350, 450, 500]
    assert [p.n_samples for p in recorder.packets] == [100, 100, 50, 100, 100, 50, 100]
    assert recorder.packets[3].samples[0, 0] == 0.0
    assert stats.samples_streamed == 600


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--input", INNER_RACE, "--int16"], "--int16 needs --scale"),
        (["--input", INNER_RACE, "--scale", "0.001"], "--scale applies to --int16"),
        (["--input", INNER_RACE, "--udp", "localhost"], "expected HOST:PORT"),
        (["--input", INNER_RACE, "--drop-every", "1"], "would drop every packet"),
        (["--input", INNER_RACE, "--speed", "0"], "must be a positive number"),
    ],
)
def test_cli_rejects_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_missing_file_exits_2(tmp_path, caplog):
    assert main(["--input", str(tmp_path / "absent.mat")]) == 2
    assert "recording not found" in caplog.text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9870", ("127.0.0.1", 9870)),
        ("[::1]:9000", ("::1", 9000)),
        ("sensor-gw:1", ("sensor-gw", 1)),
    ],
)
def test_parse_address(text, expected):
    assert parse_address(text) == expected
