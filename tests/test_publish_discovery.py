"""Tests of the Home Assistant discovery configs and their expiry."""

import json
import re
import time

import paho.mqtt.client as mqtt
import pytest

from edgemon import __version__
from edgemon.errors import ConfigError
from edgemon.publish.client import MqttPublisher
from edgemon.publish.discovery import discovery_messages, expire_after_seconds
from edgemon.publish.settings import MqttSettings

STATES = ("normal", "inner_race")


def configs(**options):
    messages = discovery_messages("homeassistant", "edgemon", "rig1", {"de": STATES}, **options)
    return [json.loads(payload) for _, payload in messages]


def test_discovery_attributes_leave_out_per_message_fields():
    # seq, ts, score and window change with every message; as attributes they
    # would make Home Assistant record a row per message.
    state, _ = configs()
    fields = set(re.findall(r"value_json\.(\w+)", state["json_attributes_template"]))
    assert fields == {"cluster", "model", "flags"}


def test_discovery_score_display_precision():
    state, score = configs()
    assert score["suggested_display_precision"] == 3
    assert "suggested_display_precision" not in state


def test_discovery_origin_block():
    for config in configs():
        assert config["origin"] == {"name": "edgemon", "sw_version": __version__}


def test_discovery_without_expiry():
    for config in configs():
        assert "expire_after" not in config


def test_discovery_expire_after_per_sensor():
    messages = discovery_messages(
        "homeassistant",
        "edgemon",
        "rig1",
        {"de": STATES, "fe": STATES},
        expire_after={"de": 120},
    )
    by_topic = {topic: json.loads(payload) for topic, payload in messages}
    assert by_topic["homeassistant/sensor/edgemon_rig1/de_state/config"]["expire_after"] == 120
    assert by_topic["homeassistant/sensor/edgemon_rig1/de_score/config"]["expire_after"] == 120
    assert "expire_after" not in by_topic["homeassistant/sensor/edgemon_rig1/fe_state/config"]
    assert "expire_after" not in by_topic["homeassistant/sensor/edgemon_rig1/fe_score/config"]


@pytest.mark.parametrize(
    ("window_period", "health_interval", "expected"),
    [
        (1024 / 12000, 60.0, 120),  # the default hop at 12 kHz: 2 health intervals
        (1024 / 12000, 2.0, 4),
        (30.0, 60.0, 300),  # a slow hop: 10 window periods
        (0.01, 0.1, 1),  # never below one second
        (1.05, 0.1, 11),  # rounded up
    ],
)
def test_expire_after_seconds(window_period, health_interval, expected):
    assert expire_after_seconds(window_period, health_interval) == expected


@pytest.mark.parametrize(
    ("window_period", "health_interval"),
    [(0.0, 60.0), (-1.0, 60.0), (float("nan"), 60.0), (1.0, float("inf"))],
)
def test_expire_after_seconds_invalid(window_period, health_interval):
    with pytest.raises(ValueError, match="finite number of seconds above 0"):
        expire_after_seconds(window_period, health_interval)


def _publisher(broker, tmp_path, **options):
    settings = MqttSettings.from_url(
        broker.url, discovery=True, health_interval=2.0, reconnect_min_delay=0.1
    )
    return MqttPublisher(
        settings,
        "rig1",
        state_dir=tmp_path,
        sensors={"de": STATES, "fe": STATES},
        model_ids={"de": "test-model", "fe": "test-model"},
        **options,
    )


def test_publisher_discovery_expire_after(broker, tmp_path):
    received = {}
    subscriber = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="discovery-reader")
    subscriber.on_message = lambda _c, _u, message: received.__setitem__(
        message.topic, json.loads(message.payload)
    )
    subscriber.connect("127.0.0.1", broker.port)
    subscriber.subscribe("homeassistant/sensor/#", qos=1)
    subscriber.loop_start()
    publisher = _publisher(broker, tmp_path, window_periods={"de": 1024 / 12000})
    publisher.start()
    try:
        assert publisher.wait_connected(10)
        for _ in range(100):
            if len(received) == 4:
                break
            time.sleep(0.1)
        assert len(received) == 4
    finally:
        publisher.stop(5)
        subscriber.disconnect()
        subscriber.loop_stop()
    # health_interval 2 s beats 10 windows of 85 ms.
    assert received["homeassistant/sensor/edgemon_rig1/de_state/config"]["expire_after"] == 4
    assert received["homeassistant/sensor/edgemon_rig1/de_score/config"]["expire_after"] == 4
    assert "expire_after" not in received["homeassistant/sensor/edgemon_rig1/fe_state/config"]


def test_publisher_window_period_unknown_sensor(broker, tmp_path):
    with pytest.raises(ConfigError, match="unknown sensor 'xx'"):
        _publisher(broker, tmp_path, window_periods={"xx": 0.1})


def test_publisher_window_period_invalid(broker, tmp_path):
    with pytest.raises(ConfigError, match="sensor 'de': window_period must be"):
        _publisher(broker, tmp_path, window_periods={"de": 0.0})
