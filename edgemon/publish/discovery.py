"""Home Assistant MQTT discovery for the monitored sensors.

For each sensor the publisher announces two Home Assistant ``sensor``
entities, both reading the sensor's state topic:

* ``<sensor> state``: the state name, an ``enum`` sensor whose options are the
  model's state names plus ``unknown`` and ``invalid``; ``seq``, ``cluster``,
  ``model`` and ``flags`` become its attributes;
* ``<sensor> novelty score``: the novelty score, a ``measurement``.

Both are available while the retained device status is ``online``. The
configs are retained, so Home Assistant finds them when it starts, and they
are sent again whenever Home Assistant announces ``online`` on its own status
topic (``<discovery prefix>/status``), which it does after a restart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from edgemon import __version__
from edgemon.publish.topics import state_topic, status_topic
from edgemon.states import INVALID, UNKNOWN

__all__ = ["birth_topic", "discovery_messages"]

_ATTRIBUTES_TEMPLATE = (
    '{{ {"seq": value_json.seq, "cluster": value_json.cluster, '
    '"model": value_json.model, "flags": value_json.flags} | tojson }}'
)


def birth_topic(discovery_prefix: str) -> str:
    """Return the topic on which Home Assistant announces ``online`` after it starts."""
    return f"{discovery_prefix}/status"


def discovery_messages(
    discovery_prefix: str,
    topic_prefix: str,
    device: str,
    sensors: Mapping[str, Sequence[str]],
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
        "qos": 1,
    }
    messages = []
    for sensor, state_names in sensors.items():
        topic = state_topic(topic_prefix, device, sensor)
        options = list(dict.fromkeys([*state_names, UNKNOWN, INVALID]))
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
            **common,
        }
        score_config = {
            "name": f"{sensor} novelty score",
            "unique_id": f"{node_id}_{sensor}_score",
            "state_topic": topic,
            # A null score (window not scored) renders as "None".
            "value_template": "{{ value_json.score }}",
            "state_class": "measurement",
            "icon": "mdi:chart-bell-curve",
            **common,
        }
        for suffix, config in (("state", state_config), ("score", score_config)):
            config_topic = f"{discovery_prefix}/sensor/{node_id}/{sensor}_{suffix}/config"
            messages.append((config_topic, json.dumps(config, separators=(",", ":")).encode()))
    return messages
