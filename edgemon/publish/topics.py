"""The topic layout, in one place: ``<prefix>/<device>/...``.

=========================================  =====  ======  ==========================
topic                                      QoS    retain  payload
=========================================  =====  ======  ==========================
``<prefix>/<device>/<sensor>/state``       1      no      JSON, ``state.json``
``<prefix>/<device>/status``               1      yes     ``online`` or ``offline``
``<prefix>/<device>/health``               0      no      JSON, ``health.json``
``<prefix>/<device>/<sensor>/features``    0      no      JSON, ``features.json``
=========================================  =====  ======  ==========================

Any of ``device`` and ``sensor`` may be the ``+`` wildcard, for subscribers.
"""

from __future__ import annotations

__all__ = ["features_topic", "health_topic", "parse_sensor_topic", "state_topic", "status_topic"]


def state_topic(prefix: str, device: str, sensor: str) -> str:
    """Return the topic of one sensor's state messages."""
    return f"{prefix}/{device}/{sensor}/state"


def features_topic(prefix: str, device: str, sensor: str) -> str:
    """Return the topic of one sensor's feature messages."""
    return f"{prefix}/{device}/{sensor}/features"


def status_topic(prefix: str, device: str) -> str:
    """Return the topic of a device's retained ``online``/``offline`` status."""
    return f"{prefix}/{device}/status"


def health_topic(prefix: str, device: str) -> str:
    """Return the topic of a device's periodic health messages."""
    return f"{prefix}/{device}/health"


def parse_sensor_topic(prefix: str, topic: str) -> tuple[str, str | None, str] | None:
    """Split a received topic into (device, sensor or None, kind).

    ``kind`` is the last level (``state``, ``features``, ``status`` or
    ``health``); ``sensor`` is None for the device-level topics. Returns None
    for a topic outside ``prefix``.
    """
    if not topic.startswith(prefix + "/"):
        return None
    levels = topic[len(prefix) + 1 :].split("/")
    if len(levels) == 2:
        return levels[0], None, levels[1]
    if len(levels) == 3:
        return levels[0], levels[1], levels[2]
    return None
