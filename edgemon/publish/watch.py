"""``edgemon watch``: show the state messages of one device or a whole fleet.

The watcher subscribes to ``<prefix>/<device>/<sensor>/state`` and
``<prefix>/<device>/status``, where ``device`` and ``sensor`` may be the
``+`` wildcard, and prints one line per message. It follows ``seq`` per
device and sensor and marks a line that shows lost messages (a jump) or a
duplicate delivery (a ``seq`` already seen). With ``json_lines`` it prints
each state payload unchanged, one per line, for piping into ``jq`` and the
like; status changes are then left out.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from datetime import UTC, datetime
from typing import Any, TextIO

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

from edgemon.errors import ConfigError, PublishError
from edgemon.publish.backoff import Backoff
from edgemon.publish.connect import BrokerUnavailableError, make_client, open_connection, pump
from edgemon.publish.console import format_state_line
from edgemon.publish.payloads import format_ts
from edgemon.publish.settings import MqttSettings, validate_topic_level
from edgemon.publish.topics import parse_sensor_topic, state_topic, status_topic

__all__ = ["SeqTracker", "run_watch"]

logger = logging.getLogger(__name__)


class SeqTracker:
    """Follow ``seq`` per (device, sensor) and describe gaps, duplicates and restarts.

    ``seq`` 1 after a highest ``seq`` above 1 counts as a restart of the
    counter, because the device's outbox was deleted. ``seq`` 1 after 1 is a
    duplicate. The retained ``online`` status does not mark a restart, because
    the device publishes it after every connection, with or without a new
    outbox.

    NOTE: a restarted counter whose first messages were resent after a broken
    connection (1 2 3, then 1 2 3 again) shows as a second restart, because the
    payload does not say which outbox a message came from.
    """

    def __init__(self) -> None:
        self._highest: dict[tuple[str, str], int] = {}

    def check(self, device: str, sensor: str, seq: int) -> str:
        """Record ``seq`` and return a note for the line: empty when it follows the previous one."""
        key = (device, sensor)
        highest = self._highest.get(key)
        if highest is None or seq == highest + 1:
            self._highest[key] = seq
            return ""
        if seq > highest + 1:
            self._highest[key] = seq
            missing = seq - highest - 1
            first, last = highest + 1, seq - 1
            span = f"seq {first}" if first == last else f"seq {first}-{last}"
            return f"<< GAP: {missing} missing ({span})"
        if seq == 1 and highest > 1:
            self._highest[key] = seq
            return f"<< seq restarted (was {highest}): the device's outbox was reset"
        return f"<< DUPLICATE (seq up to {highest} already seen)"


def run_watch(
    settings: MqttSettings,
    *,
    device: str = "+",
    sensor: str = "+",
    json_lines: bool = False,
    out: TextIO | None = None,
    stop: threading.Event,
    ready: threading.Event | None = None,
) -> int:
    """Subscribe and print state messages until ``stop`` is set.

    Parameters
    ----------
    settings : MqttSettings
        Broker and topic prefix.
    device, sensor : str, default="+"
        Names to watch, or ``+`` for all.
    json_lines : bool, default=False
        Print the raw JSON state payloads instead of formatted lines.
    out : text stream, default=sys.stdout
    stop : threading.Event
        Set it (for example from a SIGINT handler) to disconnect and return.
    ready : threading.Event, optional
        Set once the broker has acknowledged every subscription, so a caller
        can start publishing without missing the first messages.

    Returns
    -------
    int
        0 after ``stop``; 1 when the broker rejected the connection or the
        subscription for a reason a retry cannot fix (logged).
    """
    for kind, name in (("device", device), ("sensor", sensor)):
        if name == "+":
            continue
        if "#" in name or "+" in name:
            raise ConfigError(
                f"--{kind} must be one {kind} name or '+' for every {kind}, got {name!r}; "
                f"use --{kind} + to watch every {kind}"
            )
        validate_topic_level(kind, name)
    out = out if out is not None else sys.stdout
    watcher = _Watcher(settings, device, sensor, json_lines, out, ready)
    backoff = Backoff(settings.reconnect_min_delay, settings.reconnect_max_delay)
    client_id = settings.client_id or f"edgemon-watch-{os.getpid()}"
    while not stop.is_set():
        client = make_client(settings, client_id)
        client.on_message = watcher.on_message
        client.on_subscribe = watcher.on_subscribe
        try:
            result = open_connection(client, settings, stop)
        except BrokerUnavailableError as exc:
            delay = backoff.next_delay()
            logger.warning("%s; retrying in %.1f s", exc, delay)
            stop.wait(delay)
            continue
        except PublishError as exc:
            logger.error("%s", exc)
            return 1
        if result is None:
            break
        backoff.reset()
        logger.info("watching %s on %s", ", ".join(watcher.topics), settings.url)
        for topic in watcher.topics:
            rc, _ = client.subscribe(topic, qos=1)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                logger.warning("subscribe to %s failed: %s", topic, mqtt.error_string(rc))
        while not stop.is_set() and not watcher.refused:
            rc, _ = pump(client, 0.25)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                logger.warning(
                    "connection to %s lost: %s; reconnecting", settings.url, mqtt.error_string(rc)
                )
                break
        if watcher.refused:
            client.disconnect()
            return 1
        if stop.is_set():
            client.disconnect()
            break
        stop.wait(backoff.next_delay())
    return 0


class _Watcher:
    """Message handling of :func:`run_watch`, called from its loop."""

    def __init__(
        self,
        settings: MqttSettings,
        device: str,
        sensor: str,
        json_lines: bool,
        out: TextIO,
        ready: threading.Event | None,
    ) -> None:
        self.prefix = settings.topic_prefix
        self.topics = [state_topic(self.prefix, device, sensor)]
        if not json_lines:
            self.topics.append(status_topic(self.prefix, device))
        self.json_lines = json_lines
        self.out = out
        self.tracker = SeqTracker()
        self.refused = False
        self._ready = ready
        self._acknowledged = 0

    def on_subscribe(
        self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: list, _props: Any
    ) -> None:
        for reason in reasons:
            if reason.is_failure:
                logger.error(
                    "the broker rejected the subscription: %s (reason code %#04x); check its ACL",
                    reason,
                    reason.value,
                )
                self.refused = True
        self._acknowledged += 1
        if self._ready is not None and self._acknowledged >= len(self.topics) and not self.refused:
            self._ready.set()

    def on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        parsed = parse_sensor_topic(self.prefix, message.topic)
        if parsed is None:
            return
        device, sensor, kind = parsed
        if kind == "status" and sensor is None:
            text = message.payload.decode(errors="replace")
            retained = " (retained)" if message.retain else ""
            self._write(f"{format_ts(datetime.now(UTC))} {device} status {text}{retained}")
            return
        if kind != "state" or sensor is None:
            return
        if self.json_lines:
            self._write(message.payload.decode(errors="replace"))
            return
        try:
            document = json.loads(message.payload)
            seq = int(document["seq"])
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("invalid state payload on %s: %s", message.topic, exc)
            return
        note = self.tracker.check(device, sensor, seq)
        self._write(format_state_line(document, note))

    def _write(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()
