"""Tests of one sensor's processing stage: windows, flags, states and timestamps."""

from __future__ import annotations

import dataclasses
import itertools
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from fakes.source import ScriptedSource

from edgemon.data import CWRU_EXCERPT
from edgemon.errors import ConfigError, ModelError
from edgemon.flags import WindowFlag
from edgemon.model import Model, load_model
from edgemon.pipeline import SensorPipeline, check_model_for_source
from edgemon.recordings import read_recording
from edgemon.sources.base import Block


@pytest.fixture(scope="module")
def model(excerpt_model):
    return load_model(excerpt_model)


@pytest.fixture(scope="module")
def inner_race() -> np.ndarray:
    return read_recording(CWRU_EXCERPT / "12k_Drive_End_IR007_1_106.mat", channels=["DE"]).samples


def make_pipeline(model, **source_options) -> SensorPipeline:
    source = ScriptedSource([], **source_options)
    return SensorPipeline("rig1", "de", source, model)


def block(samples: np.ndarray, first_index: int, flags=WindowFlag.NONE) -> Block:
    samples = np.asarray(samples, dtype=np.float64).reshape(len(samples), -1)
    return Block(samples, first_index, time.monotonic(), flags)


def test_pipeline_events_per_window(model, inner_race):
    pipeline = make_pipeline(model)
    meta = model.metadata
    events = []
    for start in range(0, 24576, 1000):
        events += pipeline.process(block(inner_race[start : start + 1000], start))
    assert [e.window_start for e in events] == list(range(0, 24576 - meta.window + 1, meta.hop))
    assert pipeline.stats.windows == len(events)
    assert {e.state for e in events} <= set(meta.states) | {"unknown"}
    assert all(e.cluster >= 0 and e.score is not None for e in events)
    assert all(e.window_samples == meta.window and e.sample_rate == 12000.0 for e in events)


@pytest.mark.parametrize(
    ("make_samples", "flag"),
    [
        (lambda x: np.full_like(x, 0.25), "constant"),
        (lambda x: np.where(np.arange(len(x))[:, None] == 100, np.nan, x), "nonfinite"),
        (lambda x: np.where(np.arange(len(x))[:, None] == 100, np.inf, x), "nonfinite"),
        (lambda x: np.clip(x * 50, -2.0, 2.0), "saturated"),
    ],
)
def test_pipeline_unclassifiable_windows_invalid(model, inner_race, make_samples, flag):
    pipeline = make_pipeline(model, full_scale=2.0)
    samples = make_samples(inner_race[: model.metadata.window].copy())
    (event,) = pipeline.process(block(samples, 0))
    assert event.state == "invalid"
    assert event.cluster == -1
    assert flag in event.flags
    assert pipeline.stats.windows_flagged == 1
    assert pipeline.stats.flags[flag] == 1
    if flag == "nonfinite":
        assert event.score is None


def test_pipeline_nan_window_does_not_poison_batch(model, inner_race):
    pipeline = make_pipeline(model)
    window, hop = model.metadata.window, model.metadata.hop
    samples = inner_race[: window + 3 * hop].copy()
    samples[window + 2 * hop + 10] = np.nan  # only in the last window
    events = pipeline.process(block(samples, 0))
    assert [e.state == "invalid" for e in events] == [False, False, False, True]


def test_pipeline_gap_flagged_and_classified(model, inner_race):
    pipeline = make_pipeline(model)
    window = model.metadata.window
    pipeline.process(block(inner_race[:window], 0))
    events = pipeline.process(block(inner_race[window : 2 * window], window + 500))
    assert events
    spanning = [e for e in events if e.window_start < window + 500]
    assert spanning
    assert all("gap" in e.flags for e in spanning)
    assert all(e.state != "invalid" for e in spanning)
    assert pipeline.buffer.stats.gap_samples == 500


def test_pipeline_block_flags_reach_events(model, inner_race):
    pipeline = make_pipeline(model)
    events = pipeline.process(block(inner_race[: model.metadata.window], 0, WindowFlag.BUS_ERROR))
    assert events[0].flags == ("bus_error",)
    assert events[0].state == "invalid"


def test_pipeline_large_block_loses_nothing(model, inner_race):
    pipeline = make_pipeline(model)
    meta = model.metadata
    events = pipeline.process(block(inner_race, 0))
    assert [e.window_start for e in events] == list(
        range(0, len(inner_race) - meta.window + 1, meta.hop)
    )
    assert pipeline.buffer.stats.overrun_samples == 0


def test_pipeline_timestamps_follow_samples(model, inner_race):
    pipeline = make_pipeline(model, live=True)
    before = datetime.now(UTC)
    events = pipeline.process(block(inner_race[:12000], 0))
    steps = {
        round((b.ts - a.ts) / timedelta(microseconds=1)) for a, b in itertools.pairwise(events)
    }
    hop_us = round(model.metadata.hop / 12000 * 1e6)
    assert steps <= {hop_us - 1, hop_us, hop_us + 1}
    assert events[0].ts.tzinfo is UTC
    assert before - timedelta(seconds=2) < events[0].ts < before + timedelta(seconds=2)


@pytest.mark.parametrize("first_index", [10**15, 2**62])
def test_pipeline_timestamps_large_index(model, inner_race, first_index):
    # A live sender's counter may start anywhere; the time comes from the clock.
    pipeline = make_pipeline(model, live=True)
    before = datetime.now(UTC)
    events = pipeline.process(block(inner_race[:12000], first_index))
    assert events
    assert events[0].window_start == first_index
    assert before - timedelta(seconds=2) < events[-1].ts < before + timedelta(seconds=2)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sample_rate": 25600.0}, "model expects sample_rate=12000 Hz"),
        ({"channels": ("x", "y", "z")}, "channel"),
    ],
)
def test_pipeline_rejects_mismatched_source(model, options, message):
    with pytest.raises(ModelError, match=message):
        make_pipeline(model, **options)


def test_pipeline_rejects_configured_window(model):
    source = ScriptedSource([])
    with pytest.raises(ModelError, match="configuration sets window=1024"):
        SensorPipeline("rig1", "de", source, model, window=1024)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"window": 2048, "hop": 1024}, "computed on windows of 4096 samples but it scores"),
        ({"columns": ("DE:time.rms",)}, "its features produce the columns"),
    ],
)
def test_check_rejects_inconsistent_model(model, change, message):
    meta = dataclasses.replace(model.metadata, **change)
    inconsistent = Model(meta, model._scorer, model.path)
    with pytest.raises(ModelError, match=message):
        check_model_for_source(
            inconsistent, sample_rate=12000.0, channels=("DE",), source="scripted"
        )


def test_check_rejects_invalid_hop(model):
    with pytest.raises(ConfigError, match="hop must be a positive number of samples, got 0"):
        check_model_for_source(model, sample_rate=12000.0, channels=("DE",), source="s", hop=0)
