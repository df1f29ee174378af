"""Tests of the [mqtt] config table and MqttSettings."""

import os
from pathlib import Path

import pytest

from edgemon.errors import ConfigError
from edgemon.publish.settings import MqttSettings, parse_mqtt_table, validate_topic_level


def parse(table):
    errors = []
    settings = parse_mqtt_table(table, errors)
    return settings, errors


def test_settings_defaults():
    settings, errors = parse({"url": "mqtt://127.0.0.1:1883"})
    assert errors == []
    assert settings.url.port == 1883
    assert settings.topic_prefix == "edgemon"
    assert settings.protocol == "5"
    assert settings.qos == 1
    assert settings.verify_hostname is True
    assert settings.overflow == "drop-oldest"
    assert settings.discovery_prefix == "homeassistant"
    assert settings.password is None


def test_settings_collects_every_error():
    table = {
        "url": "tcp://x",
        "qos": 0,
        "protocol": "3",
        "keepalive": "30",
        "max_messages": 0,
        "topic_prefix": "/plant/",
        "reconnect_min_delay": 5.0,
        "reconnect_max_delay": 1.0,
        "colour": "blue",
    }
    settings, errors = parse(table)
    assert settings is None
    for key in (
        "url",
        "qos",
        "protocol",
        "keepalive",
        "max_messages",
        "topic_prefix",
        "reconnect_max_delay",
        "colour",
    ):
        assert any(e.startswith(f"mqtt.{key}:") for e in errors), (key, errors)


def test_settings_prefix_upper_case_rejected():
    settings, errors = parse({"url": "mqtt://h", "topic_prefix": "Plant1/Line2"})
    assert settings is None
    assert len(errors) == 1
    assert errors[0].startswith("mqtt.topic_prefix: must be lowercase")
    assert "'Plant1/Line2'" in errors[0]
    assert "write 'plant1/line2'" in errors[0]


def test_settings_prefix_upper_case_from_url():
    with pytest.raises(ConfigError, match="write 'edgemon'"):
        MqttSettings.from_url("mqtt://127.0.0.1", topic_prefix="Edgemon")


def test_settings_prefix_kept_as_written():
    settings, errors = parse({"url": "mqtt://h", "topic_prefix": "plant1/line-2"})
    assert errors == []
    assert settings.topic_prefix == "plant1/line-2"


@pytest.mark.parametrize(
    "prefix", ["/edgemon", "edgemon/", "a//b", "a+b", "a#", "", " edgemon", "Plant 1"]
)
def test_settings_prefix_invalid(prefix):
    settings, errors = parse({"url": "mqtt://h", "topic_prefix": prefix})
    assert settings is None
    assert any("topic_prefix" in e for e in errors)


def test_settings_password_from_config():
    settings, errors = parse({"url": "mqtt://h", "username": "u", "password": "hunter2"})
    assert errors == []
    assert settings.password == "hunter2"
    assert settings.password_source == "config"
    assert "hunter2" not in repr(settings)


def test_settings_password_from_env(monkeypatch):
    monkeypatch.setenv("EDGEMON_TEST_PASSWORD", "s3cret")
    settings, errors = parse(
        {"url": "mqtt://h", "username": "u", "password_env": "EDGEMON_TEST_PASSWORD"}
    )
    assert errors == []
    assert settings.password == "s3cret"
    assert settings.password_source == "env:EDGEMON_TEST_PASSWORD"


def test_settings_password_env_missing(monkeypatch):
    monkeypatch.delenv("EDGEMON_TEST_PASSWORD", raising=False)
    _, errors = parse({"url": "mqtt://h", "username": "u", "password_env": "EDGEMON_TEST_PASSWORD"})
    assert errors == [
        "mqtt.password_env: environment variable EDGEMON_TEST_PASSWORD is not set or empty"
    ]


def test_settings_password_from_file(tmp_path):
    path = tmp_path / "password"
    path.write_text("from-file\n")
    os.chmod(path, 0o600)
    settings, errors = parse({"url": "mqtt://h", "username": "u", "password_file": str(path)})
    assert errors == []
    assert settings.password == "from-file"


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"password": "a", "password_env": "B"}, "only one of"),
        ({"password": ""}, "non-empty"),
        ({"password_file": "/nonexistent/password"}, "not found"),
    ],
)
def test_settings_password_invalid(extra, match):
    settings, errors = parse({"url": "mqtt://h", "username": "u", **extra})
    assert settings is None
    assert any(match in e for e in errors), errors


def test_settings_password_needs_username():
    _, errors = parse({"url": "mqtt://h", "password": "x"})
    assert any(e.startswith("mqtt.username: missing") for e in errors)


def test_settings_password_never_in_errors():
    _, errors = parse({"url": "mqtt://h", "password": "hunter2", "qos": 5})
    assert not any("hunter2" in e for e in errors)


def test_settings_tls_files_must_exist(tmp_path):
    _, errors = parse({"url": "mqtts://h", "ca": str(tmp_path / "missing.pem")})
    assert errors == [f"mqtt.ca: file {tmp_path / 'missing.pem'} not found"]


def test_settings_tls_files_need_tls_url(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    _, errors = parse({"url": "mqtt://h", "ca": str(ca)})
    assert any("not encrypted" in e for e in errors)


def test_settings_from_url_overrides(tmp_path):
    settings = MqttSettings.from_url(
        "mqtt://127.0.0.1:1884", topic_prefix="plant", outbox=tmp_path / "o.db"
    )
    assert settings.topic_prefix == "plant"
    assert settings.outbox == Path(tmp_path / "o.db")


def test_settings_from_url_invalid():
    with pytest.raises(ConfigError, match=r"mqtt\.url"):
        MqttSettings.from_url("http://127.0.0.1")


@pytest.mark.parametrize("name", ["rig1", "de", "bearing_2", "a-b"])
def test_topic_level_valid(name):
    validate_topic_level("sensor", name)


@pytest.mark.parametrize("name", ["DE", "rig 1", "a/b", "+", "#", "", "_x"])
def test_topic_level_invalid(name):
    with pytest.raises(ConfigError, match="lowercase"):
        validate_topic_level("sensor", name)
