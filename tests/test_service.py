"""Tests of ``edgemon run``'s assembly: the checks that ``--check`` and the start share."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from edgemon.config import parse_config
from edgemon.data import CWRU_EXCERPT
from edgemon.errors import ConfigError, ModelError
from edgemon.model import load_model
from edgemon.service import _window_period, check_service, prepare_sensors, run_service

RECORDING = CWRU_EXCERPT / "12k_Drive_End_IR007_1_106.mat"


def config_table(model: Path, source: dict, **sensor) -> dict:
    return {
        "device": {"id": "rig1", "state_dir": "state"},
        "sensors": [{"name": "de", "model": str(model), "source": source, **sensor}],
        "mqtt": {"url": "mqtt://127.0.0.1:1"},
    }


def udp_source(**options) -> dict:
    return {"kind": "udp", "port": 9870, "sample_rate": 12000, "channels": ["DE"], **options}


@pytest.mark.parametrize(
    ("source", "sensor", "message"),
    [
        (udp_source(sample_rate=48000), {}, "model expects sample_rate=12000 Hz"),
        (udp_source(channels=["FE"]), {}, r"model expects channels \['DE'\]"),
        (udp_source(channels=["DE", "FE"]), {}, r"model expects channels \['DE'\]"),
        (
            {"kind": "pipe", "path": "-", "sample_rate": 25600, "channels": ["DE"]},
            {},
            "sample_rate=12000 Hz",
        ),
        (
            {"kind": "file", "path": str(RECORDING), "sample_rate": 48000, "channels": ["DE"]},
            {},
            "sample_rate=12000 Hz",
        ),
        (udp_source(), {"window": 1024}, "configuration sets window=1024"),
        # The file's rate is known only after open(), but the window is checked before.
        (
            {"kind": "file", "path": str(RECORDING)},
            {"window": 2048},
            "configuration sets window=2048",
        ),
    ],
)
def test_check_rejects_mismatched_model(excerpt_model, tmp_path, source, sensor, message):
    config = parse_config(config_table(excerpt_model, source, **sensor), base_dir=tmp_path)
    with pytest.raises(ModelError, match=message) as caught:
        check_service(config)
    assert "sensor de" in str(caught.value)


def test_check_and_start_reject_the_same_config(excerpt_model, tmp_path):
    config = parse_config(
        config_table(excerpt_model, udp_source(sample_rate=48000)), base_dir=tmp_path
    )
    with pytest.raises(ModelError) as checked:
        check_service(config)
    with pytest.raises(ModelError) as started:
        run_service(config, threading.Event())
    assert str(checked.value) == str(started.value)


def test_check_accepts_matching_model(excerpt_model, tmp_path):
    config = parse_config(config_table(excerpt_model, udp_source()), base_dir=tmp_path)
    lines = check_service(config)
    assert lines[0].startswith("sensor de: udp source, model ")
    assert "12000 Hz, window 4096" in lines[0]
    assert f"state directory {tmp_path / 'state'} is writable" in lines[-1]
    assert (tmp_path / "state").is_dir()


def test_check_defers_format_of_plain_file(excerpt_model, tmp_path):
    source = {"kind": "file", "path": str(RECORDING)}
    config = parse_config(config_table(excerpt_model, source), base_dir=tmp_path)
    lines = check_service(config)
    assert any("known only when it opens" in line for line in lines)


def test_check_without_broker_skips_state_dir(excerpt_model, tmp_path):
    table = config_table(excerpt_model, udp_source())
    del table["mqtt"]
    table["device"]["state_dir"] = "afile/state"
    (tmp_path / "afile").write_text("a regular file, not a directory")
    lines = check_service(parse_config(table, base_dir=tmp_path))
    assert lines[-1].endswith("no state directory is used")


@pytest.mark.parametrize(
    ("state_dir", "reason"),
    [
        ("afile/state", "Not a directory"),
        ("afile", "it exists and is not a directory"),
        ("/proc/edgemon", "No such file or directory"),
    ],
)
def test_unusable_state_dir_is_config_error(excerpt_model, tmp_path, state_dir, reason):
    (tmp_path / "afile").write_text("a regular file, not a directory")
    table = config_table(excerpt_model, udp_source())
    table["device"]["state_dir"] = state_dir
    config = parse_config(table, base_dir=tmp_path)
    for call in (lambda: check_service(config), lambda: run_service(config, threading.Event())):
        with pytest.raises(ConfigError) as caught:
            call()
        message = str(caught.value)
        assert f"state directory {config.state_dir} cannot be created or written" in message
        assert reason in message
        assert "set [device] state_dir" in message


@pytest.mark.parametrize(("hop", "period"), [(None, None), (2048, 2048 / 12000)])
def test_window_period_from_model_or_config(excerpt_model, tmp_path, hop, period):
    sensor = {} if hop is None else {"hop": hop}
    config = parse_config(config_table(excerpt_model, udp_source(), **sensor), base_dir=tmp_path)
    (item,) = prepare_sensors(config)
    meta = load_model(excerpt_model).metadata
    expected = meta.hop / meta.sample_rate if period is None else period
    assert _window_period(item) == pytest.approx(expected)
