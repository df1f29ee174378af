"""Tests of MqttPublisher and ConsoleSink against real Mosquitto brokers."""

import io
import json
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime

import jsonschema
import paho.mqtt.client as mqtt
import pytest
from brokers import Subscriber, free_port, state_event

from edgemon.errors import ConfigError, PublishError
from edgemon.publish.client import MqttPublisher
from edgemon.publish.connect import broker_reachable
from edgemon.publish.console import ConsoleSink
from edgemon.publish.payloads import load_schema
from edgemon.publish.settings import MqttSettings
from edgemon.publish.url import parse_broker_url

PROTOCOLS = [
    pytest.param("3.1.1", mqtt.MQTTv311, id="mqtt311"),
    pytest.param("5", mqtt.MQTTv5, id="mqtt5"),
]


def seqs(subscriber, suffix="/state"):
    return [document["seq"] for document in subscriber.payloads(suffix)]


@pytest.mark.parametrize(("protocol", "paho_protocol"), PROTOCOLS)
def test_publisher_delivers_in_order(broker, publisher_factory, protocol, paho_protocol):
    subscriber = Subscriber(broker, "edgemon/#", protocol=paho_protocol)
    publisher = publisher_factory(broker.url, protocol=protocol)
    assert publisher.wait_connected(10)
    returned = [publisher.submit_state(state_event(i)) for i in range(100)]
    assert returned == list(range(1, 101))
    assert publisher.flush(20)
    assert subscriber.wait_for(
        lambda m: len([x for x in m if x.topic.endswith("/state")]) >= 100, 10
    )
    assert seqs(subscriber) == list(range(1, 101))
    validator = jsonschema.Draft202012Validator(load_schema("state"))
    for document in subscriber.payloads("/state"):
        validator.validate(document)
    stats = publisher.stats
    assert stats.acked == 100
    assert stats.queue_depth == 0
    subscriber.close()


def test_publisher_qos2(broker, publisher_factory):
    subscriber = Subscriber(broker, "edgemon/rig1/de/state")
    publisher = publisher_factory(broker.url, qos=2)
    assert publisher.wait_connected(10)
    for index in range(20):
        publisher.submit_state(state_event(index))
    assert publisher.flush(10)
    assert subscriber.wait_for(lambda m: len(m) >= 20, 10)
    assert seqs(subscriber) == list(range(1, 21))
    subscriber.close()


def test_publisher_status_retained(broker, publisher_factory):
    publisher = publisher_factory(broker.url)
    assert publisher.wait_connected(10)
    late = Subscriber(broker, "edgemon/rig1/status", client_id="late")
    assert late.wait_for(lambda m: len(m) >= 1, 5)
    assert late.messages[0].payload == b"online"
    assert late.messages[0].retain
    late.close()

    publisher.stop()
    after = Subscriber(broker, "edgemon/rig1/status", client_id="after")
    assert after.wait_for(lambda m: len(m) >= 1, 5)
    assert after.messages[0].payload == b"offline"
    assert after.messages[0].retain
    after.close()


CHILD = textwrap.dedent(
    """
    import sys, time
    from datetime import UTC, datetime
    from edgemon.publish.client import MqttPublisher
    from edgemon.publish.settings import MqttSettings
    from edgemon.states import StateEvent

    url, state_dir, count, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    settings = MqttSettings.from_url(
        url, reconnect_min_delay=0.1, reconnect_max_delay=0.5, keepalive=5
    )
    publisher = MqttPublisher(settings, "rig1", state_dir=state_dir, sensors={"de": ("normal",)})
    publisher.start()
    if mode == "connected":
        publisher.wait_connected(10)
    for i in range(count):
        publisher.submit_state(StateEvent(
            "rig1", "de", datetime.now(UTC), 0, "normal", 0.5, "m", i * 1024, 2048, 12000.0
        ))
    print("stored", flush=True)
    if mode == "flush":
        print("flushed" if publisher.flush(30) else "timeout", flush=True)
        publisher.stop()
    else:
        time.sleep(3600)
    """
)


def run_child(url, state_dir, count, mode):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url, str(state_dir), str(count), mode],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline() == "stored\n"
    return child


def test_publisher_last_will_on_kill(broker, tmp_path):
    subscriber = Subscriber(broker, "edgemon/rig1/status")
    child = run_child(broker.url, tmp_path / "state", 0, "connected")
    assert subscriber.wait_for(lambda m: any(x.payload == b"online" for x in m), 10)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert subscriber.wait_for(lambda m: m[-1].payload == b"offline", 10)
    subscriber.close()


def test_publisher_health_message(broker, publisher_factory):
    subscriber = Subscriber(broker, "edgemon/rig1/health")
    counters = {"windows_processed": 12, "windows_flagged": 1, "samples_dropped": 0}
    publisher = publisher_factory(broker.url, health=lambda: counters, health_interval=0.2)
    assert publisher.wait_connected(10)
    assert subscriber.wait_for(lambda m: len(m) >= 2, 10)
    validator = jsonschema.Draft202012Validator(load_schema("health"))
    for document in subscriber.payloads("/health"):
        validator.validate(document)
    document = subscriber.payloads("/health")[-1]
    assert document["windows_processed"] == 12
    assert document["models"] == {"de": "test-model"}
    assert document["rss_bytes"] > 0
    subscriber.close()


def test_publisher_health_callback_failure_logged(broker, publisher_factory, caplog):
    def failing():
        raise RuntimeError("pipeline gone")

    subscriber = Subscriber(broker, "edgemon/rig1/health")
    publisher = publisher_factory(broker.url, health=failing, health_interval=0.2)
    assert publisher.wait_connected(10)
    assert subscriber.wait_for(lambda m: len(m) >= 1, 10)
    assert "windows_processed" not in subscriber.payloads("/health")[0]
    assert "the health callback failed" in caplog.text
    subscriber.close()


def test_publisher_features_rate_limited(broker, publisher_factory):
    subscriber = Subscriber(broker, "edgemon/rig1/de/features")
    publisher = publisher_factory(broker.url, features=True, features_min_interval=3600.0)
    assert publisher.wait_connected(10)
    now = datetime.now(UTC)
    assert publisher.submit_features("de", now, ["rms", "kurtosis"], [0.3, 3.1])
    assert not publisher.submit_features("de", now, ["rms", "kurtosis"], [0.4, 3.2])
    assert subscriber.wait_for(lambda m: len(m) >= 1, 10)
    document = subscriber.payloads("/features")[0]
    jsonschema.Draft202012Validator(load_schema("features")).validate(document)
    assert document["features"] == {"rms": 0.3, "kurtosis": 3.1}
    subscriber.close()


def test_publisher_features_off_by_default(broker, publisher_factory):
    publisher = publisher_factory(broker.url)
    assert not publisher.submit_features("de", datetime.now(UTC), ["rms"], [0.3])


def test_publisher_discovery_republished(broker, publisher_factory):
    subscriber = Subscriber(broker, "homeassistant/sensor/#")
    publisher = publisher_factory(broker.url, discovery=True)
    assert publisher.wait_connected(10)
    assert subscriber.wait_for(lambda m: len(m) >= 2, 10)
    home_assistant = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="home-assistant")
    home_assistant.connect("127.0.0.1", broker.port)
    home_assistant.loop_start()
    home_assistant.publish("homeassistant/status", b"online", qos=1).wait_for_publish(5)
    assert subscriber.wait_for(lambda m: len(m) >= 4, 10)
    home_assistant.disconnect()
    home_assistant.loop_stop()
    topics = sorted({m.topic for m in subscriber.messages})
    assert topics == [
        "homeassistant/sensor/edgemon_rig1/de_score/config",
        "homeassistant/sensor/edgemon_rig1/de_state/config",
    ]
    subscriber.close()


def test_publisher_seq_continues_after_restart(broker, tmp_path):
    subscriber = Subscriber(broker, "edgemon/rig1/de/state")
    for _ in range(2):
        child = run_child(broker.url, tmp_path / "state", 5, "flush")
        assert child.stdout.readline() == "flushed\n"
        assert child.wait(10) == 0
    assert subscriber.wait_for(lambda m: len(m) >= 10, 10)
    assert seqs(subscriber) == list(range(1, 11))
    subscriber.close()


def test_publisher_rejects_foreign_events(broker, publisher_factory):
    publisher = publisher_factory(broker.url)
    with pytest.raises(ConfigError, match="device 'rig2'"):
        publisher.submit_state(state_event(0, device="rig2"))
    with pytest.raises(ConfigError, match="unknown sensor 'fe'"):
        publisher.submit_state(state_event(0, sensor="fe"))


def test_publisher_rejects_uppercase_sensor(tmp_path, broker):
    from edgemon.publish.client import MqttPublisher
    from edgemon.publish.settings import MqttSettings

    with pytest.raises(ConfigError, match="lowercase"):
        MqttPublisher(
            MqttSettings.from_url(broker.url), "rig1", state_dir=tmp_path, sensors={"DE": ()}
        )


def test_publisher_submit_after_stop(broker, publisher_factory):
    publisher = publisher_factory(broker.url)
    publisher.stop()
    with pytest.raises(PublishError, match="stopped"):
        publisher.submit_state(state_event(0))


def test_publisher_without_broker_keeps_storing(publisher_factory, caplog):
    publisher = publisher_factory(f"mqtt://127.0.0.1:{free_port()}", connect_timeout=1.0)
    assert [publisher.submit_state(state_event(i)) for i in range(3)] == [1, 2, 3]
    assert not publisher.wait_connected(0.5)
    assert not publisher.flush(0.2)
    stats = publisher.stats
    assert stats.queue_depth == 3
    assert "cannot connect" in stats.last_error
    assert "retrying in" in caplog.text


@pytest.mark.parametrize(("protocol", "paho_protocol"), PROTOCOLS)
def test_publisher_over_websockets(broker_factory, publisher_factory, protocol, paho_protocol):
    ws_broker = broker_factory(websockets=True)
    assert ws_broker.url.startswith("ws://")
    publisher = publisher_factory(ws_broker.url, protocol=protocol)
    assert publisher.wait_connected(10)
    for i in range(10):
        publisher.submit_state(state_event(i))
    assert publisher.flush(10)
    assert publisher.stats.acked == 10


def test_broker_reachable(broker):
    assert broker_reachable(parse_broker_url(broker.url), timeout=2.0)
    assert not broker_reachable(parse_broker_url(f"mqtt://127.0.0.1:{free_port()}"), timeout=2.0)


def test_console_sink_lines():
    out = io.StringIO()
    sink = ConsoleSink(out)
    assert [sink.submit_state(state_event(i)) for i in range(3)] == [1, 2, 3]
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert " rig1/de seq=1 normal cluster=0 score=0 flags=gap" in lines[0]
    assert " rig1/de seq=2 inner_race cluster=1 score=0.1" in lines[1]
    assert sink.flush(0.0)


def test_console_sink_json_lines():
    out = io.StringIO()
    sink = ConsoleSink(out, json_lines=True)
    sink.submit_state(state_event(0))
    document = json.loads(out.getvalue())
    jsonschema.Draft202012Validator(load_schema("state")).validate(document)


def test_publisher_seq_per_device(tmp_path):
    # Two devices that share a state directory each count from 1.
    settings = MqttSettings.from_url(f"mqtt://127.0.0.1:{free_port()}")
    seqs_by_device = {}
    for device in ("deva", "devb", "deva"):
        publisher = MqttPublisher(settings, device, state_dir=tmp_path, sensors={"de": ("normal",)})
        events = [state_event(i, device=device) for i in range(2)]
        seqs_by_device.setdefault(device, []).extend(publisher.submit_states(events))
        publisher.stop(timeout=0.5)
    assert seqs_by_device == {"deva": [1, 2, 3, 4], "devb": [1, 2]}
