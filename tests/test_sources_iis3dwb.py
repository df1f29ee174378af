"""Tests of the IIS3DWB driver against a register-level fake of the chip."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest
from fakes.clock import FakeClock
from fakes.iis3dwb import CTRL1_XL, CTRL3_C, CTRL5_C, FIFO_CTRL3, FIFO_CTRL4, FakeIis3dwb

from edgemon.errors import SourceError
from edgemon.flags import WindowFlag
from edgemon.sources import check_source_options, make_source
from edgemon.sources.iis3dwb import Iis3dwbSource

SENSITIVITY = {2: 0.061e-3, 4: 0.122e-3, 8: 0.244e-3, 16: 0.488e-3}


def vibration(t):
    return (1.5 * math.sin(2 * math.pi * 1000 * t), 0.2 * math.sin(2 * math.pi * 5000 * t), -1.0)


def make(signal=vibration, chip_options=None, **options):
    clock = FakeClock()
    chip = FakeIis3dwb(clock, signal, **(chip_options or {}))
    source = Iis3dwbSource(device=chip, clock=clock, sleep=clock.sleep, **options)
    return source, chip, clock


def collect(source, n_samples, timeout=0.05):
    blocks = []
    while sum(b.n_samples for b in blocks) < n_samples:
        block = source.read(timeout)
        if block is not None:
            blocks.append(block)
    return blocks


def expected_g(chip, indices, range_g, axes=(0, 1, 2)):
    g = np.array([vibration(chip.sample_times[i]) for i in indices])[:, axes]
    sensitivity = SENSITIVITY[range_g]
    return np.clip(np.rint(g / sensitivity), -32768, 32767) * sensitivity


@pytest.mark.parametrize(
    ("range_g", "channels"), [(16, ["x", "y", "z"]), (2, ["y"]), (4, ["z", "x"])]
)
def test_decoded_g_values(range_g, channels):
    source, chip, _ = make(range_g=range_g, channels=channels, block_size=1024)
    with source:
        blocks = collect(source, 4000)
    samples = np.concatenate([b.samples for b in blocks])
    axes = ["xyz".index(c) for c in channels]
    np.testing.assert_allclose(
        samples, expected_g(chip, range(len(samples)), range_g, axes), rtol=0, atol=1e-12
    )
    assert all(b.first_index == a.end_index for a, b in pairwise(blocks))
    assert not any(b.flags for b in blocks)
    assert source.sample_rate == 26667.0


def test_configures_registers():
    source, chip, _ = make(range_g=8)
    with source:
        assert chip.registers[CTRL3_C] == 0x44
        assert chip.registers[CTRL5_C] == 0x20
        assert chip.registers[FIFO_CTRL3] == 0x0A
        assert chip.registers[FIFO_CTRL4] == 0x06
        assert chip.registers[CTRL1_XL] == 0xA0 | 0b1100
    assert chip.registers[CTRL1_XL] == 0
    assert chip.closed


def test_reads_actual_rate_from_freq_fine():
    source, _, _ = make(chip_options={"freq_fine": -3})
    with source:
        assert source.actual_rate == pytest.approx(26667 * (1 - 0.0045))


def test_overrun_reported_as_estimated_gap():
    source, chip, clock = make(block_size=1024, chip_options={"freq_fine": 5})
    with source:
        before = collect(source, 2048)
        clock.advance(0.05)  # about 1340 samples into a 512-sample FIFO
        after = collect(source, 2048)
    jump = after[0].first_index - before[-1].end_index
    assert chip.discarded > 800
    assert abs(jump - chip.discarded) <= 1
    assert source.counters()["overruns"] == 1


def test_failed_burst_counts_its_words_lost():
    source, chip, _ = make(block_size=512)
    chip.fail_data_reads = {3}
    with source:
        blocks = collect(source, 3000)
    flagged = [b for b in blocks if b.flags & WindowFlag.BUS_ERROR]
    assert len(flagged) == 2
    lost = flagged[1].first_index - flagged[0].end_index
    assert lost > 0
    assert sum(b.n_samples for b in blocks) + lost == blocks[-1].end_index
    np.testing.assert_allclose(
        flagged[1].samples,
        expected_g(chip, range(flagged[1].first_index, flagged[1].end_index), 16),
        atol=1e-12,
    )


def test_repeated_bus_errors_raise():
    source, chip, _ = make(max_bus_errors=3)
    with source:
        collect(source, 100)
        chip.fail_from = chip.transfers + 1
        with pytest.raises(SourceError, match="3 IIS3DWB bus transfers failed in a row"):
            collect(source, 100)


def test_saturation_at_full_scale_code():
    source, _, _ = make(signal=lambda t: (2.5, 0.0, 0.0), range_g=2, block_size=256)
    with source:
        (block, *_) = collect(source, 256)
    assert block.flags == WindowFlag.SATURATED
    assert block.samples[0, 0] == pytest.approx(32767 * 0.061e-3)


def test_temperature_words_skipped_and_counted():
    source, chip, _ = make(block_size=256, chip_options={"temperature_every": 100})
    with source:
        samples = np.concatenate([b.samples for b in collect(source, 1000)])
    np.testing.assert_allclose(samples, expected_g(chip, range(len(samples)), 16), atol=1e-12)
    assert source.counters()["unexpected_tags"] >= 9


@pytest.mark.parametrize(
    ("chip_options", "message"),
    [
        ({"device_id": 0x6B}, r"WHO_AM_I \(0x0F\) read 0x6b, expected 0x7b"),
        ({"reset_reads": -1}, "did not finish its software reset"),
    ],
)
def test_open_failures_raise(chip_options, message):
    source, chip, _ = make(chip_options=chip_options)
    with pytest.raises(SourceError, match=message):
        source.open()
    assert chip.closed


def test_make_source_builds_iis3dwb():
    source = make_source("iis3dwb", {"range_g": 4, "channels": ["x"]})
    assert isinstance(source, Iis3dwbSource)
    assert source.full_scale == 4.0
    assert source.live


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"range_g": 32}, "'range_g' must be one of 2, 4, 8, 16, got 32"),
        ({"spi_speed_hz": 20_000_000}, "'spi_speed_hz' must be an integer from 2500000"),
        ({"sample_rate": 3200}, "unknown option 'sample_rate'"),
    ],
)
def test_options_rejected(options, message):
    (problem,) = check_source_options("iis3dwb", options)
    assert message in problem
