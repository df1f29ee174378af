"""Tests of the pipe source on FIFOs, regular files and standard input."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from edgemon.errors import SourceError
from edgemon.flags import WindowFlag
from edgemon.sources import check_source_options
from edgemon.sources.pipe import PipeSource


def read_until_eof(source, timeout=2.0):
    blocks = []
    while True:
        try:
            block = source.read(timeout)
        except EOFError:
            return blocks
        assert block is not None, "read timed out before end-of-file"
        blocks.append(block)


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "samples"
    os.mkfifo(path)
    return path


def write_in_pieces(path, data, sizes):
    with open(path, "wb", buffering=0) as writer:
        position = 0
        for size in sizes:
            writer.write(data[position : position + size])
            position += size
        writer.write(data[position:])


def test_fifo_frames_split_anywhere(fifo):
    frames = np.random.default_rng(1).normal(size=(500, 3)).astype("<f4")
    data = frames.tobytes()
    with PipeSource(1000, ["x", "y", "z"], path=str(fifo), block_size=128) as source:
        writer = threading.Thread(target=write_in_pieces, args=(fifo, data, [5, 7, 1, 1000, 3]))
        writer.start()
        blocks = []
        while sum(b.n_samples for b in blocks) < 500:
            block = source.read(2.0)
            assert block is not None
            blocks.append(block)
        writer.join()
    stream = np.concatenate([b.samples for b in blocks])
    np.testing.assert_array_equal(stream, frames.astype(np.float64))
    indices = [b.first_index for b in blocks]
    assert indices == list(np.cumsum([0] + [b.n_samples for b in blocks[:-1]]))
    assert max(b.n_samples for b in blocks) <= 128


def test_fifo_survives_writer_leaving(fifo):
    with PipeSource(1000, ["x"], path=str(fifo)) as source:
        write_in_pieces(fifo, np.ones(10, "<f4").tobytes(), [])
        assert source.read(1.0).n_samples == 10
        assert source.read(0.05) is None
        write_in_pieces(fifo, np.ones(4, "<f4").tobytes(), [])
        block = source.read(1.0)
    assert block.first_index == 10
    assert block.n_samples == 4


def test_reopen_continues_index(fifo):
    source = PipeSource(1000, ["x"], path=str(fifo))
    with source:
        write_in_pieces(fifo, np.ones(10, "<f4").tobytes(), [])
        assert source.read(1.0).first_index == 0
    with source:
        write_in_pieces(fifo, np.ones(4, "<f4").tobytes(), [])
        assert source.read(1.0).first_index == 10


@pytest.mark.parametrize(
    ("counts", "saturated"),
    [([0, 100, -100], False), ([0, 32767, 5], True), ([-32768, 0, 0], True)],
)
def test_int16_scaled_and_saturation(tmp_path, counts, saturated):
    path = tmp_path / "raw"
    path.write_bytes(np.array(counts, "<i2").tobytes())
    scale = 16.0 / 32768
    with PipeSource(3200, ["x"], path=str(path), sample_format="int16", scale=scale) as source:
        (block,) = read_until_eof(source)
    np.testing.assert_array_equal(block.samples[:, 0], np.array(counts) * scale)
    assert bool(block.flags & WindowFlag.SATURATED) == saturated
    assert source.full_scale == 16.0


def test_full_scale_flags_float_samples(tmp_path):
    path = tmp_path / "raw"
    path.write_bytes(np.array([0.5, -2.5], "<f4").tobytes())
    with PipeSource(100, ["x"], path=str(path), full_scale=2.0) as source:
        (block,) = read_until_eof(source)
    assert block.flags == WindowFlag.SATURATED


def test_signalling_nan_read_quietly(tmp_path, recwarn):
    # Random bytes as float32: a signalling NaN and the largest float32.
    path = tmp_path / "raw"
    path.write_bytes(np.array([0x7F800001, 0x7F7FFFFF], "<u4").tobytes())
    with PipeSource(100, ["x"], path=str(path), scale=1e300) as source:
        (block,) = read_until_eof(source)
    assert np.isnan(block.samples[0, 0])
    assert np.isinf(block.samples[1, 0])
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_partial_trailing_frame_dropped(tmp_path, caplog):
    path = tmp_path / "raw"
    path.write_bytes(np.arange(6, dtype="<f4").tobytes() + b"\x01\x02")
    with caplog.at_level(logging.WARNING), PipeSource(100, ["a", "b"], path=str(path)) as source:
        blocks = read_until_eof(source)
    assert [b.n_samples for b in blocks] == [3]
    assert "dropped 2 trailing bytes" in caplog.text


def test_stdin_until_end_of_file():
    script = textwrap.dedent("""
        from edgemon.sources.pipe import PipeSource
        with PipeSource(100, ["x", "y"], block_size=1000) as source:
            total = 0
            while True:
                try:
                    block = source.read(5.0)
                except EOFError:
                    break
                total += block.n_samples
                last = block.samples[-1].tolist()
        print(total, last)
    """)
    data = np.arange(400, dtype="<f4").tobytes()
    result = subprocess.run(
        [sys.executable, "-c", script], input=data, capture_output=True, timeout=60, check=True
    )
    assert result.stdout.decode().split() == ["200", "[398.0,", "399.0]"]


def test_missing_fifo_raises_source_error(tmp_path):
    source = PipeSource(100, ["x"], path=str(tmp_path / "absent"))
    with pytest.raises(SourceError, match=r"cannot open .*absent.*mkfifo"):
        source.open()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"channels": ["x"]}, "'sample_rate' is missing"),
        (
            {"sample_rate": 100, "channels": ["x"], "sample_format": "int24"},
            "'sample_format' must be one of 'float32', 'int16'",
        ),
        ({"sample_rate": 100, "channels": ["x"], "scale": 0}, "'scale' must be a positive"),
    ],
)
def test_options_rejected(options, message):
    (problem,) = check_source_options("pipe", options)
    assert message in problem
