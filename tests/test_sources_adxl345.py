"""Tests of the ADXL345 driver against a register-level fake of the chip."""

from __future__ import annotations

import math
import sys
from itertools import pairwise

import numpy as np
import pytest
from fakes.adxl345 import BW_RATE, DATA_FORMAT, FIFO_CTL, POWER_CTL, FakeAdxl345
from fakes.clock import FakeClock

from edgemon.errors import SourceError
from edgemon.flags import WindowFlag
from edgemon.ringbuffer import RingBuffer
from edgemon.sources import check_source_options
from edgemon.sources.adxl345 import Adxl345Source


def vibration(t):
    return (
        0.5 * math.sin(2 * math.pi * 50 * t),
        -1.0 + 0.25 * math.cos(2 * math.pi * 130 * t),
        1.0,
    )


def make(signal=vibration, chip_options=None, **options):
    clock = FakeClock()
    chip = FakeAdxl345(clock, signal, **(chip_options or {}))
    source = Adxl345Source(device=chip, clock=clock, sleep=clock.sleep, **options)
    return source, chip, clock


def collect(source, n_samples, timeout=0.05):
    blocks = []
    while sum(b.n_samples for b in blocks) < n_samples:
        block = source.read(timeout)
        if block is not None:
            blocks.append(block)
    return blocks


def expected_g(chip, indices, axes=(0, 1, 2), range_g=16):
    g = np.array([vibration(chip.sample_times[i]) for i in indices])[:, axes]
    limit = 256 * range_g
    return np.clip(np.rint(g * 256), -limit, limit - 1) / 256


@pytest.mark.parametrize(
    ("interface", "sample_rate", "range_g"),
    [("spi", 3200, 16), ("spi", 800, 2), ("i2c", 800, 4), ("i2c", 100, 8)],
)
def test_decoded_g_values(interface, sample_rate, range_g):
    source, chip, _ = make(
        interface=interface, sample_rate=sample_rate, range_g=range_g, block_size=64
    )
    with source:
        blocks = collect(source, 1000)
    samples = np.concatenate([b.samples for b in blocks])
    np.testing.assert_array_equal(samples, expected_g(chip, range(len(samples)), range_g=range_g))
    assert blocks[0].first_index == 0
    assert all(b.first_index == a.end_index for a, b in pairwise(blocks))
    assert not any(b.flags for b in blocks)
    assert source.counters()["overruns"] == 0


def test_configures_registers_and_stops():
    source, chip, _ = make(sample_rate=1600, range_g=8)
    with source:
        assert chip.registers[BW_RATE] == 0x0E
        assert chip.registers[DATA_FORMAT] == 0x08 | 0b10
        assert chip.registers[FIFO_CTL] == 0x80 | 16
        assert chip.registers[POWER_CTL] == 0x08
    assert chip.registers[POWER_CTL] == 0
    assert chip.closed


def test_channel_subset_in_given_order():
    source, chip, _ = make(channels=["z", "x"], block_size=32)
    with source:
        samples = np.concatenate([b.samples for b in collect(source, 200)])
    assert source.channels == ("z", "x")
    np.testing.assert_array_equal(samples, expected_g(chip, range(len(samples)), axes=[2, 0]))


def test_overrun_reported_as_estimated_gap():
    source, chip, clock = make(block_size=64)
    with source:
        before = collect(source, 256)
        clock.advance(0.05)  # 160 samples at 3200 Hz into a 32-entry FIFO
        after = collect(source, 256)
    jump = after[0].first_index - before[-1].end_index
    assert chip.discarded >= 160 - 32
    assert abs(jump - chip.discarded) <= 1
    assert source.counters()["overruns"] == 1
    assert source.counters()["overrun_samples"] == jump

    buffer = RingBuffer(capacity=4096, n_channels=3, window=128, hop=64)
    for block in before + after:
        buffer.push(block)
    buffer.pop_windows()
    assert buffer.stats.gaps == 1
    assert buffer.stats.gap_samples == jump


def test_reopen_keeps_index_increasing():
    source, _, clock = make(block_size=64)
    with source:
        first = collect(source, 128)
    clock.advance(1.0)
    with source:
        second = collect(source, 128)
    jump = second[0].first_index - first[-1].end_index
    assert 3200 <= jump <= 3200 + 64
    assert all(b.first_index == a.end_index for a, b in pairwise(second))


def test_saturation_flags_block():
    source, _, _ = make(
        signal=lambda t: (3.0 if t > 1000.01 else 0.0, 0.0, 0.0), range_g=2, block_size=16
    )
    with source:
        blocks = collect(source, 200)
    saturated = [b for b in blocks if b.flags & WindowFlag.SATURATED]
    assert saturated
    assert saturated[-1].samples[-1, 0] == 511 / 256
    assert not blocks[0].flags


def test_bus_error_flags_blocks_and_skips_popped_entry():
    source, chip, _ = make(block_size=64)
    chip.fail_data_reads = {40}
    with source:
        blocks = collect(source, 400)
    flagged = [i for i, b in enumerate(blocks) if b.flags & WindowFlag.BUS_ERROR]
    assert len(flagged) == 2
    before, after = blocks[flagged[0]], blocks[flagged[1]]
    assert after.first_index - before.end_index == 1
    assert source.counters()["bus_errors"] == 1
    # The samples after the lost entry are still the chip's samples at their indices.
    indices = np.arange(after.first_index, after.end_index)
    np.testing.assert_array_equal(after.samples, expected_g(chip, indices))


def test_repeated_bus_errors_raise():
    source, chip, _ = make(max_bus_errors=5)
    with source:
        collect(source, 64)
        chip.fail_from = chip.transfers + 1
        with pytest.raises(SourceError, match="5 ADXL345 bus transfers failed in a row"):
            collect(source, 64)
    assert source.counters()["bus_errors"] == 5


def test_wrong_device_id_raises_with_both_values():
    source, chip, _ = make(chip_options={"device_id": 0x00})
    with pytest.raises(SourceError, match=r"DEVID \(0x00\) read 0x00, expected 0xe5"):
        source.open()
    assert chip.closed


def test_i2c_wrong_address_fails_at_open():
    source, _, _ = make(interface="i2c", sample_rate=800, chip_options={"i2c_address": 0x1D})
    with pytest.raises(SourceError, match="bus transfer failed while configuring the ADXL345"):
        source.open()


def test_real_bus_imported_only_on_open():
    source = Adxl345Source()
    assert "spidev" not in sys.modules
    assert source.name == "adxl345 spi0.0"
    with pytest.raises(SourceError, match="spidev"):
        source.open()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"interface": "i2c", "sample_rate": 3200}, "at most 800 Hz over I2C, got 3200"),
        ({"sample_rate": 1000}, "'sample_rate' must be one of 3200, 1600, 800"),
        ({"range_g": 3}, "'range_g' must be one of 2, 4, 8, 16"),
        ({"spi_speed_hz": 10_000_000}, "'spi_speed_hz' must be an integer from 100000 to 5000000"),
        (
            {"channels": ["x", "w"]},
            "'channels' must be a non-empty list of distinct channel names from 'x', 'y', 'z'",
        ),
        ({"i2c_address": 0x50}, "'i2c_address' must be one of 83, 29"),
    ],
)
def test_options_rejected(options, message):
    (problem,) = check_source_options("adxl345", options)
    assert message in problem
