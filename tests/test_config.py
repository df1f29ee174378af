"""Tests of the daemon configuration file: layout, names, and collecting every error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edgemon.config import create_state_dir, load_config, parse_config
from edgemon.errors import ConfigError

REPOSITORY = Path(__file__).resolve().parents[1]


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"placeholder: config parsing only checks that the file exists")
    return path


def valid_table(model_file: Path) -> dict:
    return {
        "device": {"id": "rig1", "state_dir": "state"},
        "sensors": [
            {
                "name": "de",
                "model": str(model_file),
                "source": {"kind": "udp", "port": 9870, "sample_rate": 12000, "channels": ["DE"]},
            }
        ],
        "mqtt": {"url": "mqtt://127.0.0.1:1883"},
    }


@pytest.mark.parametrize(
    ("first_host", "second_host"),
    [
        ("localhost", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("::ffff:127.0.0.1", "127.0.0.1"),
        ("0", "127.0.0.1"),
        ("::", "127.0.0.1"),
        ("", "127.0.0.1"),
    ],
)
def test_config_udp_hosts_overlap(model_file, tmp_path, first_host, second_host):
    table = valid_table(model_file)
    table["sensors"][0]["source"]["host"] = first_host
    second = {**table["sensors"][0]["source"], "host": second_host}
    table["sensors"].append({**table["sensors"][0], "name": "fe", "source": second})
    with pytest.raises(ConfigError, match="overlaps the source of sensor 'de'"):
        parse_config(table, base_dir=tmp_path)


@pytest.mark.parametrize(
    "second",
    [{"port": 9871}, {"host": "127.0.0.2"}, {"port": 0}, {"host": "::1"}],
)
def test_config_udp_endpoints_distinct(model_file, tmp_path, second):
    table = valid_table(model_file)
    source = {**table["sensors"][0]["source"], **second}
    table["sensors"].append({**table["sensors"][0], "name": "fe", "source": source})
    config = parse_config(table, base_dir=tmp_path)
    assert [sensor.name for sensor in config.sensors] == ["de", "fe"]


def test_config_valid_table(model_file, tmp_path):
    config = parse_config(valid_table(model_file), base_dir=tmp_path)
    assert config.device == "rig1"
    assert config.state_dir == (tmp_path / "state").resolve()
    assert len(config.sensors) == 1
    sensor = config.sensors[0]
    assert sensor.name == "de"
    assert sensor.source_kind == "udp"
    assert sensor.source_options["port"] == 9870
    assert sensor.debounce == 1
    assert sensor.hop is None
    assert sensor.silence_timeout is None
    assert str(config.mqtt.url) == "mqtt://127.0.0.1:1883"


def test_config_silence_timeout_in_seconds(model_file, tmp_path):
    table = valid_table(model_file)
    table["sensors"][0]["silence_timeout"] = 30
    assert parse_config(table, base_dir=tmp_path).sensors[0].silence_timeout == 30.0


def test_config_without_mqtt_uses_console(model_file, tmp_path):
    table = valid_table(model_file)
    del table["mqtt"]
    assert parse_config(table, base_dir=tmp_path).mqtt is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.pop("device"), "missing [device] table"),
        (lambda t: t["device"].update(id="Rig 1"), "[device] id must be 1-64 lowercase letters"),
        (lambda t: t.update(extra=1), "unknown key 'extra' in the top level"),
        (lambda t: t.pop("sensors"), "missing [[sensors]]"),
        (lambda t: t.update(sensors={"name": "de"}), "sensors must be an array of tables"),
        (lambda t: t["sensors"][0].update(hopp=3), "unknown key 'hopp' in [[sensors]] #1"),
        (lambda t: t["sensors"][0].update(model="missing.onnx"), "model file not found"),
        (lambda t: t["sensors"][0].pop("source"), "missing [[sensors]] #1 source table"),
        (lambda t: t["sensors"][0]["source"].pop("kind"), "missing [[sensors]] #1 source kind"),
        (lambda t: t["sensors"][0]["source"].update(kind="serial"), "serial"),
        (lambda t: t["sensors"][0]["source"].update(port="x"), "port"),
        (lambda t: t["sensors"][0].update(hop=0), "hop must be an integer >= 1, got 0"),
        (
            lambda t: t["sensors"][0].update(debounce=True),
            "debounce must be an integer >= 1, got True",
        ),
        (
            lambda t: t["sensors"][0].update(silence_timeout=0),
            "silence_timeout must be a positive number of seconds, got 0",
        ),
        (
            lambda t: t["sensors"][0].update(silence_timeout="10 s"),
            "silence_timeout must be a positive number of seconds, got '10 s'",
        ),
        (
            lambda t: t["sensors"][0].update(backend="gpu"),
            "backend must be one of auto, onnxruntime, numpy",
        ),
        (
            lambda t: t["sensors"].append(dict(t["sensors"][0])),
            "name 'de' is used by another sensor",
        ),
        (
            lambda t: t["sensors"].append({**t["sensors"][0], "name": "fe"}),
            "sensor 'fe': udp 127.0.0.1:9870 overlaps the source of sensor 'de' "
            "(127.0.0.1:9870); give each udp source its own port",
        ),
        (
            lambda t: t["sensors"].append(
                {
                    **t["sensors"][0],
                    "name": "fe",
                    "source": {**t["sensors"][0]["source"], "host": "0.0.0.0"},
                }
            ),
            "sensor 'fe': udp 0.0.0.0:9870 overlaps the source of sensor 'de'",
        ),
        (lambda t: t["mqtt"].update(url="http://x"), "mqtt.url"),
        (lambda t: t.update(logging={"level": "loud"}), "[logging] level must be one of"),
    ],
)
def test_config_invalid_setting(model_file, tmp_path, change, message):
    table = valid_table(model_file)
    change(table)
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(table, base_dir=tmp_path)


def test_config_reports_every_error_at_once(model_file, tmp_path):
    table = valid_table(model_file)
    table["device"]["id"] = "Bad Name"
    table["sensors"][0]["hop"] = -1
    table["sensors"][0]["source"]["port"] = "x"
    table["mqtt"]["qos"] = 0
    with pytest.raises(ConfigError) as caught:
        parse_config(table, base_dir=tmp_path)
    text = str(caught.value)
    assert text.startswith("4 invalid setting(s)")
    for fragment in ("[device] id", "hop", "port", "qos"):
        assert fragment in text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "config file not found"),
        (b"[device\nid = 1", "is not valid TOML"),
        (b"\xff\xfe\x00x", r"is not UTF-8 text \(invalid byte at offset 0\)"),
    ],
)
def test_load_config_unreadable(tmp_path, content, message):
    path = tmp_path / "edgemon.toml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_example_config_parses(tmp_path):
    # The shipped example must stay valid; only its model path is machine-specific.
    text = (REPOSITORY / "deploy" / "edgemon.toml").read_text()
    model = tmp_path / "model.onnx"
    model.write_bytes(b"x")
    path = tmp_path / "edgemon.toml"
    path.write_text(text.replace("/etc/edgemon/model.onnx", str(model)))
    config = load_config(path)
    assert config.device == "rig1"
    assert config.sensors[0].source_kind == "udp"
    assert config.mqtt.health_interval == 60


def test_create_state_dir_leaves_no_file(tmp_path):
    state_dir = tmp_path / "a" / "state"
    create_state_dir(state_dir, "--state-dir")
    assert state_dir.is_dir()
    assert list(state_dir.iterdir()) == []


def test_create_state_dir_under_file_names_setting(tmp_path):
    (tmp_path / "afile").write_text("a regular file, not a directory")
    state_dir = tmp_path / "afile" / "state"
    with pytest.raises(ConfigError) as caught:
        create_state_dir(state_dir, "--state-dir")
    message = str(caught.value)
    assert f"state directory {state_dir} cannot be created or written: Not a directory" in message
    assert "set --state-dir to a directory" in message
