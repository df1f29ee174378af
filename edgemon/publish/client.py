"""The MQTT publisher: a thread that owns the paho client and drains the outbox.

:class:`MqttPublisher` is what the daemon and ``edgemon replay`` publish
through. The processing thread calls :meth:`~MqttPublisher.submit_states`,
which stores the messages in the SQLite outbox and returns at once; it never
waits on the network. The publisher thread connects, sends the queued
messages oldest first with at most ``inflight`` unacknowledged, and deletes
each one when its PUBACK arrives. After a disconnect it reconnects with
capped, jittered exponential backoff, on a fresh session, and sends again
everything still queued, in order. A message whose PUBACK was lost is thus
sent twice: delivery is at least once, and ``seq`` lets subscribers drop
the duplicate.

Failures that a retry cannot fix (TLS verification, credentials,
authorization) end the thread with one :class:`~edgemon.errors.PublishError`,
logged once and kept in :attr:`MqttPublisher.fatal_error`; the outbox keeps
storing states meanwhile, within its bounds.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edgemon.errors import ConfigError, PublishError
from edgemon.publish import topics
from edgemon.publish.backoff import Backoff
from edgemon.publish.connect import BrokerUnavailableError, make_client, open_connection, pump
from edgemon.publish.discovery import birth_topic, discovery_messages, expire_after_seconds
from edgemon.publish.health import HealthReporter
from edgemon.publish.outbox import Outbox, Render
from edgemon.publish.payloads import (
    STATUS_OFFLINE,
    STATUS_ONLINE,
    render_features,
    render_state,
)
from edgemon.publish.settings import MqttSettings, validate_topic_level
from edgemon.states import StateEvent

__all__ = ["MqttPublisher", "PublishStats"]

logger = logging.getLogger(__name__)

#: Seconds between two warnings about messages dropped from a full outbox.
_DROP_WARNING_INTERVAL = 60.0
#: Maximum wait of the I/O loop when nothing happens, s, which bounds keepalive jitter.
_IDLE_WAIT = 1.0


@dataclass(frozen=True, slots=True)
class PublishStats:
    """Counters of a publisher since it was created."""

    connected: bool
    #: State messages sent, resends after a reconnect included.
    published: int
    #: State messages acknowledged by the broker and deleted from the outbox.
    acked: int
    #: State messages the broker refused in its PUBACK (MQTT 5 only), deleted and logged.
    rejected: int
    #: Oldest state messages deleted because the outbox was full.
    dropped_oldest: int
    queue_depth: int
    queue_bytes: int
    #: Successful connections after the first one.
    reconnects: int
    last_error: str | None


class MqttPublisher:
    """Publish state events through a persistent outbox, from a thread of its own.

    Parameters
    ----------
    settings : MqttSettings
        Broker, credentials, topics and outbox bounds.
    device : str
        Device name, the topic level after the prefix.
    state_dir : path-like
        Service state directory; the outbox lives here unless
        ``settings.outbox`` names another file.
    sensors : mapping of str to tuple of str
        Sensor name -> the state names its model can report (for Home
        Assistant discovery). Events of other sensors are rejected.
    model_ids : mapping of str to str, optional
        Sensor name -> model id, reported in health messages.
    window_periods : mapping of str to float, optional
        Sensor name -> seconds between window starts (hop / sample rate).
        With ``health_interval`` it sets the Home Assistant discovery
        ``expire_after`` of the sensor's entities; a sensor without one gets
        no ``expire_after`` and its entities show the last state until the
        device goes offline.
    health : callable, optional
        Returns the pipeline's counters for the health message: any of
        ``windows_processed``, ``windows_flagged`` and ``samples_dropped``.
        Called from the publisher thread.

    Raises
    ------
    ConfigError
        If the device or a sensor name cannot be a topic level, or a window
        period is not a positive number of seconds.
    PublishError
        If the outbox cannot be opened.
    """

    def __init__(
        self,
        settings: MqttSettings,
        device: str,
        *,
        state_dir: str | Path,
        sensors: Mapping[str, Sequence[str]],
        model_ids: Mapping[str, str] | None = None,
        window_periods: Mapping[str, float] | None = None,
        health: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        validate_topic_level("device", device)
        for sensor in sensors:
            validate_topic_level("sensor", sensor)
        self._expire_after = _expire_after(sensors, window_periods or {}, settings.health_interval)
        self.settings = settings
        self.device = device
        self.sensors = {name: tuple(states) for name, states in sensors.items()}
        self.model_ids = dict(model_ids or {})
        self._health = HealthReporter(device, model_ids or {}, health)
        self.client_id = settings.client_id or f"edgemon-{device}"
        self.outbox_path = settings.outbox or Path(state_dir) / "outbox.sqlite3"
        self._outbox = Outbox(
            self.outbox_path,
            max_messages=settings.max_messages,
            max_bytes=settings.max_bytes,
            destination=str(settings.url),
        )
        self._status_topic = topics.status_topic(settings.topic_prefix, device)
        self._health_topic = topics.health_topic(settings.topic_prefix, device)

        self._stop = threading.Event()
        self._connected = threading.Event()
        self._finished = threading.Event()
        self._drained = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stop_deadline = 0.0
        self._closed = False
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._wake_writer.setblocking(False)

        self._features_lock = threading.Lock()
        self._features_pending: dict[str, bytes] = {}
        self._features_last: dict[str, float] = {}

        # Owned by the publisher thread: the current connection's bookkeeping.
        self._inflight: dict[int, tuple[int, str]] = {}  # mid -> (outbox id, topic)
        self._control: dict[int, str] = {}  # mid -> topic, for status and discovery
        self._acked: list[int] = []
        self._last_sent_id = 0
        self._inflight_limit = settings.inflight

        self._stats_lock = threading.Lock()
        self._published = self._acked_count = self._rejected = self._reconnects = 0
        self._last_error: str | None = None
        self._fatal: PublishError | None = None
        self._last_drop_warning = -_DROP_WARNING_INTERVAL

    # --- caller API

    def start(self) -> None:
        """Start the publisher thread; it connects in the background."""
        if self._thread is not None:
            raise RuntimeError("the publisher was already started")
        self._health.restart_clock()
        self._thread = threading.Thread(target=self._run, name=f"mqtt-{self.device}", daemon=True)
        self._thread.start()
        logger.info(
            "publisher started: device %s, broker %s, MQTT %s, outbox %s (%d queued)",
            self.device,
            self.settings.url,
            self.settings.protocol,
            self.outbox_path,
            len(self._outbox),
        )

    def wait_connected(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the first connection; return whether it is up.

        Raises
        ------
        PublishError
            If the connection failed for a reason a retry cannot fix.
        """
        deadline = time.monotonic() + timeout
        while not self._connected.is_set() and not self._finished.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._connected.wait(min(remaining, 0.1))
        if self._fatal is not None:
            raise self._fatal
        return self._connected.is_set()

    @property
    def fatal_error(self) -> PublishError | None:
        """The error that stopped the publisher thread, or None while it runs."""
        return self._fatal

    def submit_state(self, event: StateEvent) -> int:
        """Store a state message in the outbox and return its ``seq``.

        The same as ``submit_states([event])[0]``; see :meth:`submit_states`.
        """
        return self.submit_states([event])[0]

    def submit_states(self, events: Sequence[StateEvent]) -> list[int]:
        """Store state messages in the outbox, in order, and return their ``seq``.

        The sequence numbers and the messages are committed to disk in one
        transaction before this returns. A batch thus costs one ``fsync``, and
        a crash stores all of it or none. The network is never waited on.

        Raises
        ------
        ConfigError
            If an event's device or sensor is not this publisher's; nothing
            of the batch is stored then.
        PublishError
            If the outbox cannot be written, or the publisher was stopped.
        """
        state_topics: dict[str, str] = {}
        for event in events:
            if event.device != self.device:
                raise ConfigError(
                    f"event of device {event.device!r} submitted to the publisher "
                    f"of {self.device!r}"
                )
            if event.sensor not in self.sensors:
                raise ConfigError(
                    f"event of unknown sensor {event.sensor!r}; "
                    f"this publisher has {sorted(self.sensors)}"
                )
            if event.sensor not in state_topics:
                state_topics[event.sensor] = topics.state_topic(
                    self.settings.topic_prefix, self.device, event.sensor
                )
        if self._stop.is_set():
            raise PublishError("the publisher was stopped; submit_states() must come before stop()")
        if not events:
            return []
        # seq counts per state topic, so per device and sensor, even when
        # several devices share one outbox.
        messages = []
        for event in events:
            topic = state_topics[event.sensor]
            messages.append((topic, _state_renderer(topic, event)))
        result = self._outbox.append_many(messages, self.settings.qos)
        if result.dropped:
            self._warn_dropped()
        self._wake()
        return list(result.seqs)

    def submit_features(
        self, sensor: str, ts: datetime, columns: Sequence[str], values: Sequence[float]
    ) -> bool:
        """Queue a feature message (QoS 0, not stored); return whether it was accepted.

        Messages are accepted only when ``settings.features`` is on, and at
        most one per sensor per ``settings.features_min_interval`` s. Only the
        newest accepted message per sensor waits while the broker is away.
        """
        if not self.settings.features:
            return False
        if sensor not in self.sensors:
            raise ConfigError(
                f"features of unknown sensor {sensor!r}; this publisher has {sorted(self.sensors)}"
            )
        now = time.monotonic()
        with self._features_lock:
            last = self._features_last.get(sensor)
            if last is not None and now - last < self.settings.features_min_interval:
                return False
            self._features_last[sensor] = now
            self._features_pending[sensor] = render_features(
                self.device, sensor, ts, columns, values
            )
        self._wake()
        return True

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s until the broker has acknowledged every queued state.

        Returns
        -------
        bool
            True when the outbox is empty; False on timeout or when the
            publisher thread has stopped.
        """
        deadline = time.monotonic() + timeout
        with self._drained:
            while len(self._outbox) > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._finished.is_set():
                    return False
                self._drained.wait(min(remaining, 0.5))
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Publish the retained ``offline`` status, disconnect and join the thread.

        Messages still in the outbox stay there for the next start. Waits at
        most ``timeout`` s; a thread still running then is logged as an error.
        Calling it again after it completed does nothing.
        """
        if self._closed:
            return
        self._stop_deadline = time.monotonic() + timeout
        self._stop.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout + 1.0)
            if self._thread.is_alive():
                logger.error(
                    "publisher thread did not stop within %.1f s; the outbox stays open", timeout
                )
                return
        self._outbox.close()
        self._wake_reader.close()
        self._wake_writer.close()
        self._closed = True
        logger.info(
            "publisher stopped: %d state messages left in the outbox %s",
            len(self._outbox),
            self.outbox_path,
        )

    @property
    def stats(self) -> PublishStats:
        """A snapshot of the counters."""
        with self._stats_lock:
            return PublishStats(
                connected=self._connected.is_set(),
                published=self._published,
                acked=self._acked_count,
                rejected=self._rejected,
                dropped_oldest=self._outbox.dropped,
                queue_depth=len(self._outbox),
                queue_bytes=self._outbox.nbytes,
                reconnects=self._reconnects,
                last_error=self._last_error,
            )

    # --- helpers for the callers' threads

    def _wake(self) -> None:
        try:
            self._wake_writer.send(b"\0")
        except BlockingIOError:
            pass  # a wake-up is already pending
        except OSError as exc:
            if not self._stop.is_set():
                raise PublishError(f"cannot wake the publisher thread: {exc}") from exc

    def _warn_dropped(self) -> None:
        now = time.monotonic()
        if now - self._last_drop_warning >= _DROP_WARNING_INTERVAL:
            self._last_drop_warning = now
            logger.warning(
                "outbox full (%d messages, %d bytes; bounds %d messages, %d bytes): "
                "%d oldest state messages dropped so far",
                len(self._outbox),
                self._outbox.nbytes,
                self.settings.max_messages,
                self.settings.max_bytes,
                self._outbox.dropped,
            )

    def _record_error(self, message: str) -> None:
        with self._stats_lock:
            self._last_error = message

    # --- publisher thread

    def _run(self) -> None:
        backoff = Backoff(self.settings.reconnect_min_delay, self.settings.reconnect_max_delay)
        connections = 0
        try:
            while not self._stop.is_set():
                try:
                    client = self._connect()
                except BrokerUnavailableError as exc:
                    delay = backoff.next_delay()
                    self._record_error(str(exc))
                    logger.warning("%s; retrying in %.1f s", exc, delay)
                    self._stop.wait(delay)
                    continue
                if client is None:
                    break
                backoff.reset()
                connections += 1
                if connections > 1:
                    with self._stats_lock:
                        self._reconnects += 1
                self._serve(client)
                if self._stop.is_set():
                    self._shutdown(client)
                    break
                delay = backoff.next_delay()
                logger.info("reconnecting to %s in %.1f s", self.settings.url, delay)
                self._stop.wait(delay)
        except PublishError as exc:
            self._fatal = exc
            self._record_error(str(exc))
            logger.error("MQTT publishing stopped: %s", exc)
        finally:
            self._connected.clear()
            self._finished.set()
            with self._drained:
                self._drained.notify_all()

    def _connect(self) -> mqtt.Client | None:
        client = make_client(
            self.settings, self.client_id, will=(self._status_topic, STATUS_OFFLINE)
        )
        client.on_publish = self._on_publish
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.max_inflight_messages_set(self.settings.inflight)
        result = open_connection(client, self.settings, self._stop)
        if result is None:
            return None
        # paho 2.2 ignores the broker's Receive Maximum (MQTT 5), so the window
        # of unacknowledged QoS 1 messages is kept within it here.
        receive_maximum = getattr(result.properties, "ReceiveMaximum", None)
        self._inflight_limit = min(
            self.settings.inflight, receive_maximum or self.settings.inflight
        )
        self._inflight.clear()
        self._control.clear()
        self._acked.clear()
        self._last_sent_id = 0
        logger.info(
            "connected to %s as %s (MQTT %s); %d state messages queued",
            self.settings.url,
            self.client_id,
            self.settings.protocol,
            len(self._outbox),
        )
        self._publish_control(client, self._status_topic, STATUS_ONLINE, retain=True)
        if self.settings.discovery:
            self._check_rc(
                client.subscribe(birth_topic(self.settings.discovery_prefix), qos=1)[0], "subscribe"
            )
            self._publish_discovery(client)
        self._connected.set()
        return client

    def _serve(self, client: mqtt.Client) -> None:
        next_health = time.monotonic()
        while not self._stop.is_set():
            if not self._send_queued(client) or not self._send_features(client):
                break
            now = time.monotonic()
            if now >= next_health:
                self._send_health(client)
                next_health = now + self.settings.health_interval
            rc, _ = pump(client, max(0.0, min(next_health - now, _IDLE_WAIT)), self._wake_reader)
            self._commit_acks()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._record_error(
                    f"connection to {self.settings.url} lost: {mqtt.error_string(rc)}"
                )
                break
        self._connected.clear()

    def _send_queued(self, client: mqtt.Client) -> bool:
        # Status and discovery messages share the window with the states.
        room = self._inflight_limit - len(self._inflight) - len(self._control)
        if room <= 0:
            return True
        for message in self._outbox.peek(self._last_sent_id, room):
            info = client.publish(message.topic, message.payload, qos=message.qos)
            if not self._check_rc(info.rc, f"publish to {message.topic}"):
                return False
            self._inflight[info.mid] = (message.id, message.topic)
            self._last_sent_id = message.id
            with self._stats_lock:
                self._published += 1
        return True

    def _send_features(self, client: mqtt.Client) -> bool:
        with self._features_lock:
            pending, self._features_pending = self._features_pending, {}
        for sensor, payload in pending.items():
            topic = topics.features_topic(self.settings.topic_prefix, self.device, sensor)
            if not self._check_rc(client.publish(topic, payload, qos=0).rc, f"publish to {topic}"):
                return False
        return True

    def _send_health(self, client: mqtt.Client) -> None:
        stats = self.stats
        payload = self._health.render(
            queue_depth=stats.queue_depth,
            queue_bytes=stats.queue_bytes,
            queue_dropped=stats.dropped_oldest,
            reconnects=stats.reconnects,
        )
        rc = client.publish(self._health_topic, payload, qos=0).rc
        self._check_rc(rc, f"publish to {self._health_topic}")

    def _publish_control(
        self, client: mqtt.Client, topic: str, payload: bytes, *, retain: bool
    ) -> int | None:
        info = client.publish(topic, payload, qos=1, retain=retain)
        if not self._check_rc(info.rc, f"publish to {topic}"):
            return None
        self._control[info.mid] = topic
        return info.mid

    def _publish_discovery(self, client: mqtt.Client) -> None:
        messages = discovery_messages(
            self.settings.discovery_prefix,
            self.settings.topic_prefix,
            self.device,
            self.sensors,
            self._expire_after,
        )
        for topic, payload in messages:
            self._publish_control(client, topic, payload, retain=True)
        logger.info("published %d Home Assistant discovery configs", len(messages))

    def _check_rc(self, rc: int, action: str) -> bool:
        if rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            return True
        message = f"{action} failed: {mqtt.error_string(rc)} (rc {int(rc)})"
        self._record_error(message)
        if rc in (MQTTErrorCode.MQTT_ERR_NO_CONN, MQTTErrorCode.MQTT_ERR_CONN_LOST):
            logger.warning("%s; the message stays queued", message)
        else:
            logger.error("%s", message)
        return False

    def _commit_acks(self) -> None:
        if not self._acked:
            return
        acked, self._acked = self._acked, []
        self._outbox.delete(acked)
        with self._stats_lock:
            self._acked_count += len(acked)
        with self._drained:
            self._drained.notify_all()

    def _shutdown(self, client: mqtt.Client) -> None:
        self._commit_acks()
        # A last health report carries the final counters of a clean stop.
        self._send_health(client)
        mid = self._publish_control(client, self._status_topic, STATUS_OFFLINE, retain=True)
        while mid in self._control and time.monotonic() < self._stop_deadline:
            rc, _ = pump(client, min(0.1, max(0.0, self._stop_deadline - time.monotonic())))
            self._commit_acks()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break
        if mid in self._control:
            logger.warning(
                "the broker did not acknowledge the offline status before the stop timeout"
            )
        client.disconnect()
        logger.info("disconnected from %s", self.settings.url)

    # --- paho callbacks, called in the publisher thread

    def _on_publish(
        self, _client: mqtt.Client, _userdata: Any, mid: int, reason: ReasonCode, _props: Properties
    ) -> None:
        if mid in self._inflight:
            row_id, topic = self._inflight.pop(mid)
            if reason.is_failure:
                # The broker will refuse a resend too (for Mosquitto: an ACL
                # denial), so the message is deleted, not retried forever.
                with self._stats_lock:
                    self._rejected += 1
                self._log_rejected(topic, reason)
            self._acked.append(row_id)
        elif mid in self._control:
            topic = self._control.pop(mid)
            if reason.is_failure:
                self._log_rejected(topic, reason)

    def _log_rejected(self, topic: str, reason: ReasonCode) -> None:
        message = (
            f"the broker rejected a message on {topic}: {reason} (reason code {reason.value:#04x})"
        )
        self._record_error(message)
        logger.error("%s; check the broker's ACL for client %s", message, self.client_id)

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, flags: Any, reason: ReasonCode, _props: Any
    ) -> None:
        if self._stop.is_set() and not reason.is_failure:
            return
        origin = "the broker closed" if flags.is_disconnect_packet_from_server else "lost"
        logger.warning(
            "connection to %s %s: %s (reason code %#04x); %d state messages queued",
            self.settings.url,
            origin,
            reason,
            reason.value,
            len(self._outbox),
        )

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _mid: int,
        reasons: list[ReasonCode],
        _props: Any,
    ) -> None:
        for reason in reasons:
            if reason.is_failure:
                logger.error(
                    "the broker rejected the subscription to %s: %s (reason code %#04x); "
                    "discovery is not sent again when Home Assistant restarts",
                    birth_topic(self.settings.discovery_prefix),
                    reason,
                    reason.value,
                )

    def _on_message(self, client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        if (
            message.topic == birth_topic(self.settings.discovery_prefix)
            and message.payload == b"online"
        ):
            logger.info("Home Assistant came online; publishing discovery again")
            self._publish_discovery(client)


def _state_renderer(topic: str, event: StateEvent) -> Render:
    """Return the outbox ``render(seq)`` of one state message."""

    def render(seq: int) -> tuple[str, bytes]:
        return topic, render_state(event, seq)

    return render


def _expire_after(
    sensors: Mapping[str, Sequence[str]],
    window_periods: Mapping[str, float],
    health_interval: float,
) -> dict[str, int]:
    expire_after = {}
    for sensor, period in window_periods.items():
        if sensor not in sensors:
            raise ConfigError(
                f"window period given for unknown sensor {sensor!r}; "
                f"this publisher has {sorted(sensors)}"
            )
        try:
            expire_after[sensor] = expire_after_seconds(period, health_interval)
        except ValueError as exc:
            raise ConfigError(f"sensor {sensor!r}: {exc}") from exc
    return expire_after
