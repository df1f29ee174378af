"""Tests of the udp source over real loopback sockets."""

from __future__ import annotations

import logging
import socket
import time

import numpy as np
import pytest

from edgemon.errors import ConfigError, SourceError
from edgemon.flags import WindowFlag
from edgemon.ringbuffer import RingBuffer
from edgemon.sources import check_source_options, make_source
from edgemon.sources.udp import RESTART_AFTER_OLD, UdpSource
from edgemon.sources.wire import encode_packet

RATE = 12000.0
N = 100


@pytest.fixture
def source():
    udp = UdpSource(RATE, ["DE"], port=0, sender_timeout=0.2)
    udp.open()
    yield udp
    udp.close()


@pytest.fixture
def sender():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    yield sock
    sock.close()


def packet(sequence, first_sample=None, n=N, channels=1, rate=RATE, **kwargs):
    first_sample = sequence * n if first_sample is None else first_sample
    samples = np.arange(first_sample, first_sample + n, dtype=float)[:, None] / 1e4
    samples = np.repeat(samples, channels, axis=1)
    return encode_packet(
        samples, sequence=sequence, first_sample=first_sample, sample_rate=rate, **kwargs
    )


def send_all(sender, source, datagrams):
    for data in datagrams:
        sender.sendto(data, source.address)


def read_all(source, timeout=0.3):
    blocks = []
    while (block := source.read(timeout)) is not None:
        blocks.append(block)
    return blocks


def test_in_order_stream_round_trips(source, sender):
    send_all(sender, source, [packet(i) for i in range(5)])
    blocks = read_all(source)
    assert [b.first_index for b in blocks] == [0, 100, 200, 300, 400]
    stream = np.concatenate([b.samples for b in blocks])
    np.testing.assert_allclose(stream[:, 0], np.arange(500) / 1e4, rtol=1e-6)
    assert source.counters()["packets"] == 5
    assert source.counters()["samples"] == 500


@pytest.mark.parametrize(
    ("sequences", "indices", "counter", "count"),
    [
        ([0, 1, 3, 4], [0, 100, 300, 400], "lost_packets", 1),
        ([0, 1, 5], [0, 100, 500], "lost_packets", 3),
        ([0, 1, 1, 2], [0, 100, 200], "duplicates", 1),
        ([0, 2, 1, 3], [0, 200, 300], "reordered", 1),
    ],
)
def test_sequence_problems_counted(source, sender, sequences, indices, counter, count):
    send_all(sender, source, [packet(s) for s in sequences])
    blocks = read_all(source)
    assert [b.first_index for b in blocks] == indices
    assert source.counters()[counter] == count


def test_lost_packet_is_gap_in_ring_buffer(source, sender):
    send_all(sender, source, [packet(s) for s in (0, 1, 3, 4)])
    buffer = RingBuffer(capacity=1000, n_channels=1, window=100, hop=50)
    for block in read_all(source):
        buffer.push(block)
    batch = buffer.pop_windows()
    assert buffer.stats.gaps == 1
    assert buffer.stats.gap_samples == 100
    assert list(batch.starts) == [0, 50, 100, 150, 300, 350, 400]
    assert [flag == WindowFlag.GAP for flag in batch.flags] == [0, 0, 0, 1, 0, 0, 0]


@pytest.mark.parametrize(
    ("bad", "counter"),
    [
        (packet(1, rate=48000.0), "mismatched"),
        (packet(1, channels=2), "mismatched"),
        (b"not a packet", "malformed"),
        (packet(1)[:-3], "malformed"),
        (b"EDGM" + bytes(60), "malformed"),
    ],
)
def test_bad_packets_dropped_and_counted(source, sender, bad, counter, caplog):
    with caplog.at_level(logging.WARNING, logger="edgemon.sources.udp"):
        send_all(sender, source, [packet(0), bad, packet(1)])
        blocks = read_all(source)
    assert [b.first_index for b in blocks] == [0, 100]
    assert source.counters()[counter] == 1
    assert source.counters()["lost_packets"] == 0
    assert f"dropped {counter}" in caplog.text or "dropped packet" in caplog.text


def test_malformed_flood_logs_rate_limited(source, sender, caplog):
    with caplog.at_level(logging.WARNING, logger="edgemon.sources.udp"):
        send_all(sender, source, [b"junk"] * 50 + [packet(0)])
        blocks = read_all(source)
    assert len(blocks) == 1
    assert source.counters()["malformed"] == 50
    assert len(caplog.records) == 1


def test_restart_from_same_sender_followed(source, sender):
    send_all(sender, source, [packet(s) for s in range(20, 30)])
    first = read_all(source)
    send_all(sender, source, [packet(s) for s in range(0, RESTART_AFTER_OLD + 3)])
    second = read_all(source)
    indices = [b.first_index for b in first + second]
    assert indices == sorted(indices)
    assert source.counters()["restarts"] == 1
    # The packets before the restart was recognised are dropped, not delivered out of order.
    assert len(second) == 3
    assert second[1].first_index - second[0].first_index == N


def test_restart_far_back_followed_at_once(source, sender):
    send_all(sender, source, [packet(s) for s in range(1000, 1003)] + [packet(0)])
    blocks = read_all(source)
    assert len(blocks) == 4
    assert blocks[3].first_index > blocks[2].end_index - 1
    assert source.counters()["restarts"] == 1


@pytest.mark.parametrize(
    ("first_samples", "restarts"),
    [
        ([0, 100, 1200], 0),  # the sender itself skipped 1000 samples
        ([0, 100, 10**15], 1),  # a counter jump no lost packet explains
        ([0, 100, 2**62], 1),
    ],
)
def test_index_jump_without_lost_packets(source, sender, first_samples, restarts):
    datagrams = [packet(sequence, first) for sequence, first in enumerate(first_samples)]
    send_all(sender, source, datagrams)
    blocks = read_all(source)
    assert len(blocks) == 3
    assert source.counters()["restarts"] == restarts
    if restarts:
        # The index continues after an estimated gap, not at the sender's counter.
        assert 200 < blocks[2].first_index < 200 + RATE
    else:
        assert blocks[2].first_index == first_samples[2]


@pytest.mark.parametrize(
    ("sequence", "first_sample"),
    [
        (2**31 - 1, 100 + 10**15),  # a claimed loss of 2**31 packets, index to match
        (2**31 - 2, 100 + 10**12),
    ],
)
def test_implausible_loss_is_restart(source, sender, sequence, first_sample):
    send_all(sender, source, [packet(0), packet(sequence, first_sample)])
    blocks = read_all(source)
    assert len(blocks) == 2
    assert source.counters()["restarts"] == 1
    assert source.counters()["lost_packets"] == 0
    assert 100 < blocks[1].first_index < 100 + RATE


def test_plausible_loss_counted(source, sender):
    # 50 lost packets of 100 samples fit in the time a 10 kHz sender had.
    send_all(sender, source, [packet(0), packet(51)])
    blocks = read_all(source)
    assert source.counters()["restarts"] == 0
    assert source.counters()["lost_packets"] == 50
    assert blocks[1].first_index == 5100


@pytest.mark.parametrize("first_sample", [2**53, 2**63 + 5, 2**64 - 1000])
def test_huge_first_index_counts_from_zero(source, sender, first_sample, caplog):
    send_all(sender, source, [packet(0, first_sample), packet(1, first_sample + N)])
    blocks = read_all(source)
    assert [b.first_index for b in blocks] == [0, N]
    assert "counting from 0 instead" in caplog.text


def test_other_sender_dropped_until_silence(source, sender):
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        send_all(sender, source, [packet(0)])
        assert source.read(1.0) is not None
        send_all(other, source, [packet(0)])
        assert source.read(0.1) is None
        assert source.counters()["foreign"] == 1

        time.sleep(0.3)  # longer than sender_timeout
        send_all(other, source, [packet(0), packet(1)])
        blocks = read_all(source)
    finally:
        other.close()
    assert len(blocks) == 2
    assert blocks[0].first_index >= 100
    assert source.counters()["restarts"] == 1


@pytest.mark.parametrize(
    ("options", "samples", "saturated"),
    [
        ({"sample_format": "int16", "scale": 1 / 32768}, [[0.5], [0.99]], False),
        ({"sample_format": "int16", "scale": 1 / 32768}, [[0.5], [1.5]], True),
        ({"flags": WindowFlag.SATURATED}, [[0.1], [0.2]], True),
        ({"flags": WindowFlag.BUS_ERROR}, [[0.1], [0.2]], False),
    ],
)
def test_saturation_flag_reaches_block(source, sender, options, samples, saturated):
    data = encode_packet(np.array(samples), sequence=0, first_sample=0, sample_rate=RATE, **options)
    send_all(sender, source, [data])
    block = source.read(1.0)
    assert bool(block.flags & WindowFlag.SATURATED) == saturated


def test_full_scale_option_saturates(sender):
    with UdpSource(RATE, ["DE"], port=0, full_scale=2.0) as source:
        data = encode_packet(
            np.array([[0.1], [-2.0]]), sequence=0, first_sample=0, sample_rate=RATE
        )
        send_all(sender, source, [data])
        assert source.read(1.0).flags == WindowFlag.SATURATED


def test_bus_error_flag_passes_through(source, sender):
    send_all(sender, source, [packet(0, flags=WindowFlag.BUS_ERROR | WindowFlag.GAP)])
    assert source.read(1.0).flags == WindowFlag.BUS_ERROR


def test_reopen_continues_stream(source, sender):
    send_all(sender, source, [packet(0), packet(1)])
    assert len(read_all(source)) == 2
    port = source.address[1]
    source.close()
    source.port = port
    source.open()
    send_all(sender, source, [packet(2), packet(5)])
    blocks = read_all(source)
    assert [b.first_index for b in blocks] == [200, 500]
    assert source.counters()["lost_packets"] == 2


def test_read_times_out_with_none(source):
    assert source.read(0.05) is None


def test_bind_conflict_raises_source_error(source):
    other = UdpSource(RATE, ["DE"], port=source.address[1])
    with pytest.raises(SourceError, match=r"cannot bind UDP 127\.0\.0\.1"):
        other.open()


@pytest.mark.parametrize("host", ["not a host", "192.0.2.1"])
def test_bind_bad_host_names_fix(host):
    source = UdpSource(RATE, ["DE"], host=host, port=0)
    with pytest.raises(SourceError, match="set host to an address of this machine"):
        source.open()


def test_read_before_open_raises():
    with pytest.raises(SourceError, match="before open"):
        UdpSource(RATE, ["DE"]).read(0.1)


def test_make_source_builds_udp():
    source = make_source(
        "udp", {"sample_rate": 12000, "channels": ["DE"], "port": 9999}, name="rig1/de"
    )
    assert isinstance(source, UdpSource)
    assert source.name == "rig1/de"
    assert source.sample_rate == 12000.0
    assert source.channels == ("DE",)
    assert source.live


@pytest.mark.parametrize(
    ("options", "messages"),
    [
        ({}, ["'sample_rate' is missing", "'channels' is missing"]),
        (
            {"sample_rate": 12000, "channels": ["DE"], "port": 70000},
            ["'port' must be an integer from 0 to 65535, got 70000"],
        ),
        (
            {"sample_rate": -1, "channels": "DE"},
            ["'sample_rate' must be a positive number", "'channels' must be a list"],
        ),
        ({"sample_rate": 12000, "channels": ["DE", "DE"]}, ["distinct channel names"]),
        ({"sample_rate": 12000, "channels": ["DE"], "prot": 1}, ["unknown option 'prot'"]),
        ({"sample_rate": True, "channels": ["DE"]}, ["'sample_rate' must be a number"]),
    ],
)
def test_check_options_lists_every_problem(options, messages):
    problems = check_source_options("udp", options)
    assert len(problems) == len(messages)
    for problem, message in zip(problems, messages, strict=True):
        assert message in problem
        assert problem.startswith("udp source: ")
    with pytest.raises(ConfigError):
        make_source("udp", options)


def test_unknown_kind_reported():
    assert check_source_options("serial", {}) == [
        "unknown source kind 'serial'; known kinds: file, udp, pipe, adxl345, iis3dwb"
    ]
