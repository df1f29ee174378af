"""Broker outages, publisher crashes and a full outbox, against real Mosquitto brokers."""

import json
import signal
import threading

import pytest
from brokers import Subscriber, state_event
from test_publish_client import run_child


def first_occurrences(seqs):
    seen, order = set(), []
    for seq in seqs:
        if seq not in seen:
            seen.add(seq)
            order.append(seq)
    return order


@pytest.mark.slow
def test_outage_20s_loses_nothing(broker_factory, publisher_factory):
    broker = broker_factory(persistence=True)
    subscriber = Subscriber(
        broker, "edgemon/rig1/de/state", client_id="persistent", persistent=True
    )
    publisher = publisher_factory(broker.url, reconnect_max_delay=2.0)
    assert publisher.wait_connected(10)

    stop_producing = threading.Event()
    produced = []

    def produce():
        index = 0
        while not stop_producing.wait(0.05):
            produced.append(publisher.submit_state(state_event(index)))
            index += 1

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        assert subscriber.wait_for(lambda m: len(m) >= 20, 10)
        broker.stop()
        stored_at_stop = len(produced)
        threading.Event().wait(20.0)
        assert len(produced) > stored_at_stop + 100  # the pipeline never waited on the broker
        broker.start()
        assert publisher.wait_connected(15)
        threading.Event().wait(2.0)
    finally:
        stop_producing.set()
        producer.join()

    assert publisher.flush(30)
    last = produced[-1]
    assert produced == list(range(1, last + 1))
    expected = set(range(1, last + 1))
    assert subscriber.wait_for(lambda m: {json.loads(x.payload)["seq"] for x in m} >= expected, 30)
    received = [document["seq"] for document in subscriber.payloads("/state")]
    # At least once: a message whose PUBACK was lost is sent again, so a
    # duplicate may arrive, but every seq arrives and in order of first arrival.
    assert first_occurrences(received) == list(range(1, last + 1))
    assert publisher.stats.reconnects >= 1
    subscriber.close()


@pytest.mark.slow
def test_outage_sigkill_then_restart(broker_factory, tmp_path):
    broker = broker_factory(start=False)
    state_dir = tmp_path / "state"
    child = run_child(broker.url, state_dir, 30, "wait")
    child.send_signal(signal.SIGKILL)
    child.wait()

    broker.start()
    subscriber = Subscriber(broker, "edgemon/rig1/de/state")
    child = run_child(broker.url, state_dir, 5, "flush")
    assert child.stdout.readline() == "flushed\n"
    assert child.wait(10) == 0
    assert subscriber.wait_for(lambda m: len(m) >= 35, 10)
    assert [document["seq"] for document in subscriber.payloads("/state")] == list(range(1, 36))
    subscriber.close()


def test_outage_queue_bound_drops_oldest(broker_factory, publisher_factory, tmp_path):
    broker = broker_factory(start=False)
    # Reconnect delays of 1 to 2 s give the subscriber time to subscribe first.
    publisher = publisher_factory(
        broker.url,
        max_messages=50,
        health_interval=3600.0,
        reconnect_min_delay=1.0,
        reconnect_max_delay=2.0,
    )
    for index in range(300):
        publisher.submit_state(state_event(index))
    stats = publisher.stats
    assert stats.queue_depth == 50
    assert stats.dropped_oldest == 250
    outbox_files = list((tmp_path / "state-rig1").iterdir())
    assert sum(path.stat().st_size for path in outbox_files) < 8 * 1024 * 1024

    broker.start()
    subscriber = Subscriber(broker, "edgemon/rig1/#")
    # The first health message after the connection reports the drops.
    assert subscriber.wait_for(lambda m: any(x.topic.endswith("/health") for x in m), 15)
    assert publisher.flush(15)
    assert subscriber.wait_for(
        lambda m: len([x for x in m if x.topic.endswith("/state")]) >= 50, 10
    )
    assert [document["seq"] for document in subscriber.payloads("/state")] == list(range(251, 301))
    health = subscriber.payloads("/health")[0]
    assert health["queue_dropped"] == 250
    subscriber.close()
