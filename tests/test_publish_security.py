"""Tests of TLS, credentials and ACLs against real Mosquitto brokers."""

import logging
import threading

import paho.mqtt.client as mqtt
import pytest
from brokers import Subscriber, state_event

from edgemon.errors import PublishError

PROTOCOLS = ["3.1.1", "5"]
USERS = {"edgemon": "correct horse", "reader": "reader pw"}
ACL = """\
user edgemon
topic write edgemon/rig1/status
topic write edgemon/rig1/health

user reader
topic read edgemon/#
"""


#: Logged by Mosquitto 2.0 once per refused attempt. A TLS alert shows either in an
#: "OpenSSL Error" line or in a "Client connection ... failed" line, depending on timing,
#: so the TLS tests count the alert text itself.
CONNACK_SENT = "Sending CONNACK"


def assert_single_fatal_error(publisher, broker, marker, caplog, match):
    """Check that the publisher stops with one error and never connects again."""
    with pytest.raises(PublishError, match=match):
        publisher.wait_connected(10)
    assert publisher.fatal_error is not None
    # With reconnect delays of 0.1 to 0.5 s, a retry loop would show within a second.
    threading.Event().wait(1.0)
    assert broker.log_text().count(marker) == 1
    errors = [
        r
        for r in caplog.records
        if r.levelno >= logging.ERROR and "publishing stopped" in r.message
    ]
    assert len(errors) == 1
    assert "retrying" not in caplog.text


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_tls_good_ca(broker_factory, publisher_factory, tls_files, protocol):
    broker = broker_factory(tls=tls_files)
    publisher = publisher_factory(broker.url, ca=str(tls_files.ca), protocol=protocol)
    assert publisher.wait_connected(10)
    publisher.submit_state(state_event(0))
    assert publisher.flush(10)


def test_tls_wrong_ca(broker_factory, publisher_factory, tls_files, caplog):
    broker = broker_factory(tls=tls_files)
    publisher = publisher_factory(broker.url, ca=str(tls_files.other_ca))
    assert_single_fatal_error(
        publisher, broker, "alert unknown ca", caplog, "certificate verification failed"
    )


def test_tls_wrong_hostname(broker_factory, publisher_factory, tls_files, caplog):
    broker = broker_factory(
        tls=tls_files, server_cert=(tls_files.wrong_host_cert, tls_files.wrong_host_key)
    )
    publisher = publisher_factory(broker.url, ca=str(tls_files.ca))
    assert_single_fatal_error(publisher, broker, "alert bad certificate", caplog, "mismatch")


def test_tls_hostname_check_can_be_disabled(broker_factory, publisher_factory, tls_files):
    broker = broker_factory(
        tls=tls_files, server_cert=(tls_files.wrong_host_cert, tls_files.wrong_host_key)
    )
    publisher = publisher_factory(broker.url, ca=str(tls_files.ca), verify_hostname=False)
    assert publisher.wait_connected(10)


def test_tls_plain_port(broker, publisher_factory, tls_files):
    # The broker resets the connection, as a restarting broker may, so the
    # publisher retries with backoff.
    publisher = publisher_factory(broker.url.replace("mqtt://", "mqtts://"), ca=str(tls_files.ca))
    assert not publisher.wait_connected(1.0)
    assert publisher.fatal_error is None
    assert f"mqtts://127.0.0.1:{broker.port}" in publisher.stats.last_error


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_auth_accepted(broker_factory, publisher_factory, protocol):
    broker = broker_factory(users=USERS)
    publisher = publisher_factory(
        broker.url, protocol=protocol, username="edgemon", password=USERS["edgemon"]
    )
    assert publisher.wait_connected(10)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    "credentials",
    [
        pytest.param({}, id="anonymous"),
        pytest.param({"username": "edgemon", "password": "not-the-password-x9"}, id="wrong"),
    ],
)
def test_auth_rejected(broker_factory, publisher_factory, caplog, protocol, credentials):
    broker = broker_factory(users=USERS)
    publisher = publisher_factory(broker.url, protocol=protocol, **credentials)
    assert_single_fatal_error(publisher, broker, CONNACK_SENT, caplog, "rejected the connection")
    assert "not-the-password-x9" not in caplog.text


def test_acl_denied_logged_mqtt5(broker_factory, publisher_factory, caplog):
    broker = broker_factory(users=USERS, acl=ACL)
    publisher = publisher_factory(
        broker.url, protocol="5", username="edgemon", password=USERS["edgemon"]
    )
    assert publisher.wait_connected(10)
    for i in range(3):
        publisher.submit_state(state_event(i))
    assert publisher.flush(10)
    # Mosquitto 2.0.11 closes the connection after each denied PUBLISH, so the
    # publisher reconnects in between; the messages are deleted, not retried.
    assert publisher.stats.rejected == 3
    assert publisher.stats.queue_depth == 0
    denied = [
        r
        for r in caplog.records
        if r.levelno == logging.ERROR and "edgemon/rig1/de/state" in r.message
    ]
    assert len(denied) == 3
    assert "Not authorized" in denied[0].message


def test_acl_denied_silent_mqtt311(broker_factory, publisher_factory):
    # MQTT 3.1.1 has no reason code in PUBACK: Mosquitto acknowledges a
    # denied message and drops it, so the publisher cannot tell.
    broker = broker_factory(users=USERS, acl=ACL)
    reader = Subscriber(
        broker, "edgemon/#", protocol=mqtt.MQTTv311, username="reader", password=USERS["reader"]
    )
    publisher = publisher_factory(
        broker.url, protocol="3.1.1", username="edgemon", password=USERS["edgemon"]
    )
    assert publisher.wait_connected(10)
    publisher.submit_state(state_event(0))
    assert publisher.flush(10)
    assert publisher.stats.rejected == 0
    assert reader.wait_for(lambda m: any(x.topic.endswith("/status") for x in m), 5)
    assert not [m for m in reader.messages if m.topic.endswith("/state")]
    reader.close()
