"""Tests of edgemon watch against real Mosquitto brokers."""

import io
import json
import re
import threading
import time

import jsonschema
import paho.mqtt.client as mqtt
import pytest
from brokers import state_event

from edgemon.errors import ConfigError
from edgemon.publish.payloads import load_schema, render_state
from edgemon.publish.settings import MqttSettings
from edgemon.publish.watch import SeqTracker, run_watch


def _restarted(highest):
    return f"<< seq restarted (was {highest}): the device's outbox was reset"


def _duplicate(highest):
    return f"<< DUPLICATE (seq up to {highest} already seen)"


@pytest.mark.parametrize(
    ("seqs", "notes"),
    [
        ([1, 2, 3], ["", "", ""]),
        ([5, 6], ["", ""]),
        ([1, 2, 4], ["", "", "<< GAP: 1 missing (seq 3)"]),
        ([1, 5], ["", "<< GAP: 3 missing (seq 2-4)"]),
        ([1, 2, 2], ["", "", "<< DUPLICATE (seq up to 2 already seen)"]),
        ([1, 2, 3, 2, 4], ["", "", "", "<< DUPLICATE (seq up to 3 already seen)", ""]),
        ([7, 1], ["", _restarted(7)]),
        ([1, 1], ["", _duplicate(1)]),
        ([1, 2, 1], ["", "", _restarted(2)]),
        ([1, 2, 1, 1, 2], ["", "", _restarted(2), _duplicate(1), ""]),
        (
            [1, 2, 3, 3, 5, 4, 1, 1, 2, 2],
            [
                "",
                "",
                "",
                _duplicate(3),
                "<< GAP: 1 missing (seq 4)",
                _duplicate(5),
                _restarted(5),
                _duplicate(1),
                "",
                _duplicate(2),
            ],
        ),
        ([3, 1, 2, 3], ["", _restarted(3), "", ""]),
        # Without an outbox id in the payload, a resend of a new counter's first
        # messages looks like another restart.
        ([9, 1, 2, 1, 2], ["", _restarted(9), "", _restarted(2), ""]),
    ],
)
def test_seq_tracker_notes(seqs, notes):
    tracker = SeqTracker()
    assert [tracker.check("rig1", "de", seq) for seq in seqs] == notes


def test_seq_tracker_per_sensor():
    tracker = SeqTracker()
    assert tracker.check("rig1", "de", 1) == ""
    assert tracker.check("rig1", "fe", 1) == ""
    assert tracker.check("rig2", "de", 1) == ""
    assert tracker.check("rig1", "de", 2) == ""


class Watch:
    """run_watch in a thread, writing to a string buffer."""

    def __init__(self, url, **options):
        self.out = io.StringIO()
        self.stop = threading.Event()
        self.exit_code = None
        settings = MqttSettings.from_url(url, reconnect_min_delay=0.1, reconnect_max_delay=0.5)
        self.thread = threading.Thread(target=self._run, args=(settings, options))
        self.thread.start()

    def _run(self, settings, options):
        self.exit_code = run_watch(settings, out=self.out, stop=self.stop, **options)

    def lines(self):
        return self.out.getvalue().splitlines()

    def wait_for_lines(self, predicate, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.lines()):
                return True
            self.stop.wait(0.05)
        return False

    def close(self):
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive()
        return self.exit_code


def test_watch_fleet(broker, publisher_factory):
    watch = Watch(broker.url)
    publishers = [publisher_factory(broker.url, device=device) for device in ("rig1", "rig2")]
    for publisher in publishers:
        assert publisher.wait_connected(10)
        for index in range(3):
            publisher.submit_state(state_event(index, device=publisher.device))
        assert publisher.flush(10)
    assert watch.wait_for_lines(lambda lines: sum(" seq=" in line for line in lines) >= 6)
    lines = watch.lines()
    for device in ("rig1", "rig2"):
        assert any(f" {device} status online" in line for line in lines)
        for seq in (1, 2, 3):
            assert any(f" {device}/de seq={seq} " in line for line in lines)
    assert not any("GAP" in line or "DUPLICATE" in line for line in lines)
    assert watch.close() == 0


def test_watch_one_device(broker, publisher_factory):
    watch = Watch(broker.url, device="rig2")
    for device in ("rig1", "rig2"):
        publisher = publisher_factory(broker.url, device=device)
        assert publisher.wait_connected(10)
        publisher.submit_state(state_event(0, device=device))
        assert publisher.flush(10)
    assert watch.wait_for_lines(lambda lines: any("rig2/de seq=1" in line for line in lines))
    assert not any("rig1" in line for line in watch.lines())
    assert watch.close() == 0


def test_watch_marks_gaps_and_duplicates(broker):
    watch = Watch(broker.url)
    sender = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="sender")
    sender.connect("127.0.0.1", broker.port)
    sender.loop_start()
    # Wait until the watcher has subscribed: it reports the retained status.
    sender.publish("edgemon/rig1/status", b"online", qos=1, retain=True).wait_for_publish(5)
    assert watch.wait_for_lines(lambda lines: any("status online" in line for line in lines))
    for seq in (1, 2, 4, 4, 5):
        payload = render_state(state_event(seq), seq)
        sender.publish("edgemon/rig1/de/state", payload, qos=1).wait_for_publish(5)
    assert watch.wait_for_lines(lambda lines: any("seq=5" in line for line in lines))
    lines = [line for line in watch.lines() if " seq=" in line]
    assert lines[2].endswith("<< GAP: 1 missing (seq 3)")
    assert lines[3].endswith("<< DUPLICATE (seq up to 4 already seen)")
    assert "<<" not in lines[4]
    sender.disconnect()
    sender.loop_stop()
    assert watch.close() == 0


def test_watch_json_lines(broker, publisher_factory):
    watch = Watch(broker.url, json_lines=True)
    publisher = publisher_factory(broker.url)
    assert publisher.wait_connected(10)
    for index in range(3):
        publisher.submit_state(state_event(index))
    assert publisher.flush(10)
    assert watch.wait_for_lines(lambda lines: len(lines) >= 3)
    validator = jsonschema.Draft202012Validator(load_schema("state"))
    documents = [json.loads(line) for line in watch.lines()]
    for document in documents:
        validator.validate(document)
    assert [document["seq"] for document in documents] == [1, 2, 3]
    assert watch.close() == 0


def test_watch_rejected_credentials(broker_factory):
    broker = broker_factory(users={"edgemon": "pw"})
    watch = Watch(broker.url)
    watch.thread.join(10)
    assert watch.exit_code == 1


@pytest.mark.parametrize(
    ("device", "sensor", "message"),
    [
        ("#", "+", "--device must be one device name or '+' for every device, got '#'"),
        ("rig+", "+", "--device must be one device name or '+'"),
        ("rig1", "d#", "--sensor must be one sensor name or '+' for every sensor, got 'd#'"),
        ("Rig1", "+", "device name must be lowercase"),
    ],
)
def test_watch_rejects_filters(device, sensor, message):
    settings = MqttSettings.from_url("mqtt://127.0.0.1:1")
    with pytest.raises(ConfigError, match=re.escape(message)):
        run_watch(settings, device=device, sensor=sensor, stop=threading.Event())
