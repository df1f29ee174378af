"""Tests of broker URL parsing."""

import pytest

from edgemon.errors import ConfigError
from edgemon.publish.url import parse_broker_url


@pytest.mark.parametrize(
    ("url", "host", "port", "transport", "tls", "path"),
    [
        ("mqtt://127.0.0.1:1883", "127.0.0.1", 1883, "tcp", False, ""),
        ("mqtt://localhost", "localhost", 1883, "tcp", False, ""),
        ("MQTT://Broker.LAN:1884/", "broker.lan", 1884, "tcp", False, ""),
        ("mqtts://broker.lan", "broker.lan", 8883, "tcp", True, ""),
        ("ws://broker.lan:9001", "broker.lan", 9001, "websockets", False, "/mqtt"),
        ("wss://broker.lan/ws", "broker.lan", 443, "websockets", True, "/ws"),
        ("mqtt://[::1]:1883", "::1", 1883, "tcp", False, ""),
    ],
)
def test_url_valid(url, host, port, transport, tls, path):
    parsed = parse_broker_url(url)
    assert parsed.host == host
    assert parsed.port == port
    assert parsed.transport == transport
    assert parsed.tls is tls
    assert parsed.path == path


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("", "non-empty"),
        ("tcp://127.0.0.1:1883", "scheme"),
        ("127.0.0.1:1883", "scheme"),
        ("mqtt://user:secret@127.0.0.1", "user name or password"),
        ("mqtt://127.0.0.1:99999", "port"),
        ("mqtt://127.0.0.1:0", "port"),
        ("mqtt://127.0.0.1:port", "port"),
        ("mqtt://:1883", "no host"),
        ("mqtt://127.0.0.1/topic", "no path"),
        ("mqtt://127.0.0.1?x=1", "query"),
    ],
)
def test_url_invalid(url, match):
    with pytest.raises(ConfigError, match=match):
        parse_broker_url(url)


def test_url_error_hides_password():
    with pytest.raises(ConfigError) as info:
        parse_broker_url("mqtt://user:hunter2@127.0.0.1")
    assert "hunter2" not in str(info.value)


def test_url_str_round_trip():
    assert str(parse_broker_url("mqtts://broker.lan")) == "mqtts://broker.lan:8883"
    assert str(parse_broker_url("ws://[::1]:9001")) == "ws://[::1]:9001/mqtt"
