"""Home Assistant MQTT discovery for the monitored sensors.

For each sensor the publisher announces two Home Assistant ``sensor``
entities, both reading the sensor's state topic:

* ``<sensor> state``: the state name, an ``enum`` sensor whose options are the
  model's state names plus ``unknown`` and ``invalid``; ``cluster``, ``model``
  and ``flags`` become its attributes;
* ``<sensor> novelty score``: the novelty score, a ``measurement``.

Both are available while the retained device status is ``online``. With an
``expire_after`` they also become unavailable when their sensor stops
publishing while the device stays online. The configs are retained, so Home
Assistant finds them when it starts, and they are sent again whenever Home
Assistant announces ``online`` on its own status topic
(``<discovery prefix>/status``), which it does after a restart.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence

from edgemon import __version__
from edgemon.publish.topics import state_topic, status_topic
from edgemon.states import INVALID, UNKNOWN

__all__ = ["birth_topic", "discovery_messages", "expire_after_seconds"]

# Only fields that change when the condition changes: Home Assistant's recorder
# writes a row for every change of the attributes, and a field that changes with
# every message, such as seq or ts, would write one per window.
_ATTRIBUTES_TEMPLATE = (
    '{{ {"cluster": value_json.cluster, "model": value_json.model, '
    '"flags": value_json.flags} | tojson }}'
)

#: Windows without a state message after which Home Assistant shows a sensor unavailable.
EXPIRE_WINDOWS = 10
#: Health intervals without a state message after which it does so, whichever is longer.
EXPIRE_HEALTH_INTERVALS = 2
#: Decimals Home Assistant shows of the novelty score; the payload carries full precision.
SCORE_DISPLAY_PRECISION = 3


def expire_after_seconds(window_period: float, health_interval: float) -> int:
    """Choose Home Assistant's ``expire_after`` for one sensor, in whole seconds.

    The longer of :data:`EXPIRE_WINDOWS` window periods and
    :data:`EXPIRE_HEALTH_INTERVALS` health intervals, rounded up. The window
    count covers short stalls, such as a reconnect that sends a backlog. The
    health intervals set a floor, so that at a fast hop a pause of a few
    seconds does not mark a sensor unavailable.

    Parameters
    ----------
    window_period : float
        Seconds between window starts: the hop in samples over the sample rate.
    health_interval : float
        Seconds between health messages.

    Raises
    ------
    ValueError
        If either value is not a finite number above 0.
    """
    for name, value in (("window_period", window_period), ("health_interval", health_interval)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number of seconds above 0, got {value!r}")
    longest = max(EXPIRE_WINDOWS * window_period, EXPIRE_HEALTH_INTERVALS * health_interval)
    return max(1, math.ceil(longest))


def birth_topic(discovery_prefix: str) -> str:
    """Return the topic on which Home Assistant announces ``online`` after it starts."""
    return f"{discovery_prefix}/status"


def discovery_messages(
    discovery_prefix: str,
    topic_prefix: str,
    device: str,
    sensors: Mapping[str, Sequence[str]],
    expire_after: Mapping[str, int] | None = None,
) -> list[tuple[str, bytes]]:
    """Build the retained discovery configs: (topic, JSON payload) pairs, two per sensor.

    Parameters
    ----------
    discovery_prefix : str
        Home Assistant's discovery prefix, ``homeassistant`` by default.
    topic_prefix : str
        edgemon's topic prefix.
    device : str
        Device name; Home Assistant groups the entities of one device.
    sensors : mapping of str to sequence of str
        Sensor name -> the state names its model can report.
    expire_after : mapping of str to int, optional
        Sensor name -> seconds without a state message after which Home
        Assistant shows the sensor's entities unavailable, for example from
        :func:`expire_after_seconds`. A sensor without one never expires.
    """
    node_id = f"edgemon_{device}"
    availability = status_topic(topic_prefix, device)
    device_block = {
        "identifiers": [node_id],
        "name": f"edgemon {device}",
        "manufacturer": "edgemon",
        "model": "edgemon condition monitor",
        "sw_version": __version__,
    }
    common = {
        "availability_topic": availability,
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": device_block,
        "origin": {"name": "edgemon", "sw_version": __version__},
        "qos": 1,
    }
    expire_after = expire_after or {}
    messages = []
    for sensor, state_names in sensors.items():
        topic = state_topic(topic_prefix, device, sensor)
        options = list(dict.fromkeys([*state_names, UNKNOWN, INVALID]))
        expiry = {"expire_after": expire_after[sensor]} if sensor in expire_after else {}
        state_config = {
            "name": f"{sensor} state",
            "unique_id": f"{node_id}_{sensor}_state",
            "state_topic": topic,
            "value_template": "{{ value_json.state }}",
            "device_class": "enum",
            "options": options,
            "json_attributes_topic": topic,
            "json_attributes_template": _ATTRIBUTES_TEMPLATE,
            "icon": "mdi:engine",
            **expiry,
            **common,
        }
        score_config = {
            "name": f"{sensor} novelty score",
            "unique_id": f"{node_id}_{sensor}_score",
            "state_topic": topic,
            # A null score (window not scored) renders as "None", which Home
            # Assistant's MQTT sensor shows as unknown.
            "value_template": "{{ value_json.score }}",
            "state_class": "measurement",
            "suggested_display_precision": SCORE_DISPLAY_PRECISION,
            "icon": "mdi:chart-bell-curve",
            **expiry,
            **common,
        }
        for suffix, config in (("state", state_config), ("score", score_config)):
            config_topic = f"{discovery_prefix}/sensor/{node_id}/{sensor}_{suffix}/config"
            messages.append((config_topic, json.dumps(config, separators=(",", ":")).encode()))
    return messages
