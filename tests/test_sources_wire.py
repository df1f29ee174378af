"""Tests of the UDP packet framing."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgemon.flags import WindowFlag
from edgemon.sources.wire import (
    HEADER_SIZE,
    MAX_DATAGRAM,
    PacketError,
    decode_packet,
    encode_packet,
    max_samples_per_packet,
)

HEADER = struct.Struct("<4sBBHBBHIdQd")


def header(**fields):
    values = {
        "magic": b"EDGM",
        "version": 1,
        "flags": 0,
        "channels": 1,
        "format": 2,
        "reserved": 0,
        "samples": 2,
        "sequence": 0,
        "rate": 12000.0,
        "first": 0,
        "scale": 1.0,
    }
    values.update(fields)
    return HEADER.pack(*values.values())


def test_header_layout_byte_by_byte():
    data = encode_packet(
        np.array([[1.0, -2.0]]),
        sequence=7,
        first_sample=1000,
        sample_rate=12000.0,
        flags=WindowFlag.BUS_ERROR,
    )
    assert HEADER_SIZE == 40
    assert data[0:4] == b"EDGM"
    assert data[4] == 1
    assert data[5] == WindowFlag.BUS_ERROR
    assert data[6:8] == (2).to_bytes(2, "little")
    assert data[8] == 2
    assert data[9] == 0
    assert data[10:12] == (1).to_bytes(2, "little")
    assert data[12:16] == (7).to_bytes(4, "little")
    assert struct.unpack("<d", data[16:24]) == (12000.0,)
    assert data[24:32] == (1000).to_bytes(8, "little")
    assert struct.unpack("<d", data[32:40]) == (1.0,)
    assert struct.unpack("<2f", data[40:]) == (1.0, -2.0)


def test_samples_interleaved_frame_major():
    samples = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])
    data = encode_packet(samples, sequence=0, first_sample=0, sample_rate=1.0)
    assert struct.unpack("<6f", data[HEADER_SIZE:]) == (1.0, 10.0, 2.0, 20.0, 3.0, 30.0)


@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 64), st.integers(1, 4)),
        elements=st.floats(-100, 100, width=32),
    ),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**64 - 1),
    st.floats(0.5, 1e6),
)
@settings(max_examples=100, deadline=None)
def test_float32_round_trip(samples, sequence, first_sample, rate):
    packet = decode_packet(
        encode_packet(samples, sequence=sequence, first_sample=first_sample, sample_rate=rate)
    )
    np.testing.assert_array_equal(packet.samples, samples)
    assert packet.sequence == sequence
    assert packet.first_sample == first_sample
    assert packet.sample_rate == rate
    assert packet.flags == WindowFlag.NONE


def test_int16_round_trip_within_half_count():
    scale = 16.0 / 32768
    samples = np.random.default_rng(0).uniform(-15.9, 15.9, size=(100, 3))
    packet = decode_packet(
        encode_packet(
            samples,
            sequence=1,
            first_sample=0,
            sample_rate=3200,
            sample_format="int16",
            scale=scale,
        )
    )
    assert packet.sample_format == "int16"
    assert packet.scale == scale
    np.testing.assert_allclose(packet.samples, samples, atol=scale / 2)
    assert packet.flags == WindowFlag.NONE


@pytest.mark.parametrize("value", [2.0, -2.0, 1e9])
def test_int16_clipping_sets_saturated(value):
    samples = np.array([[0.0], [value]])
    packet = decode_packet(
        encode_packet(
            samples,
            sequence=0,
            first_sample=0,
            sample_rate=100,
            sample_format="int16",
            scale=1 / 16384,
        )
    )
    assert packet.flags & WindowFlag.SATURATED
    assert abs(packet.samples[1, 0]) == pytest.approx(2.0, abs=1e-3)


def test_int16_limit_code_from_other_sender_saturates():
    data = header(format=1, samples=1, flags=0) + struct.pack("<h", 32767)
    assert decode_packet(data).flags == WindowFlag.SATURATED


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "shorter than the 40-byte header"),
        (b"EDGM" + bytes(10), "shorter than the 40-byte header"),
        (header(magic=b"XXXX") + bytes(8), "bad magic"),
        (header(version=2) + bytes(8), "unsupported version 2"),
        (header(format=9) + bytes(8), "unknown sample format code 9"),
        (header(flags=0x80) + bytes(8), "unknown flag bits"),
        (header(reserved=1) + bytes(8), "reserved byte"),
        (header(channels=0) + bytes(8), "at least one channel"),
        (header(samples=0), "at least one channel and one sample"),
        (header(rate=0.0) + bytes(8), "sample rate must be a positive"),
        (header(rate=float("nan")) + bytes(8), "sample rate must be a positive"),
        (header(scale=-1.0) + bytes(8), "scale must be a positive"),
        (header() + bytes(7), "truncated: 47 bytes"),
        (header() + bytes(9), "trailing bytes"),
        (header(channels=3) + bytes(8), "3 channels x 2 float32 samples need 64"),
    ],
)
def test_decode_rejects_malformed(data, message):
    with pytest.raises(PacketError, match=message):
        decode_packet(data)


@pytest.mark.parametrize(
    ("samples", "kwargs", "message"),
    [
        (np.zeros((0, 1)), {}, "at least one of each"),
        (np.zeros((2, 2, 2)), {}, "shape"),
        (np.zeros(4), {"sequence": -1}, "sequence must be"),
        (np.zeros(4), {"sequence": 2**32}, "sequence must be"),
        (np.zeros(4), {"first_sample": -5}, "first_sample must be"),
        (np.zeros(4), {"sample_rate": 0.0}, "sample_rate must be"),
        (np.zeros(4), {"scale": 0.0}, "scale must be"),
        (np.zeros(4), {"sample_format": "int8"}, "sample_format must be one of"),
        (np.full(4, np.nan), {"sample_format": "int16"}, "NaN"),
        (np.zeros(4), {"flags": 64}, "flags must be WindowFlag bits"),
        (np.zeros((20000, 1)), {}, "exceeds the UDP maximum"),
    ],
)
def test_encode_rejects(samples, kwargs, message):
    arguments = {"sequence": 0, "first_sample": 0, "sample_rate": 100.0, **kwargs}
    with pytest.raises(PacketError, match=message):
        encode_packet(samples, **arguments)


@pytest.mark.parametrize(
    ("channels", "sample_format", "size", "expected"),
    [
        (1, "float32", 1472, 358),
        (3, "int16", 1472, 238),
        (1, "float32", MAX_DATAGRAM, 16366),
    ],
)
def test_max_samples_per_packet(channels, sample_format, size, expected):
    n = max_samples_per_packet(channels, sample_format, size)
    assert n == expected
    data = encode_packet(
        np.zeros((n, channels)),
        sequence=0,
        first_sample=0,
        sample_rate=1.0,
        sample_format=sample_format,
    )
    assert len(data) <= size
