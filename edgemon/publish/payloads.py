"""MQTT payloads and their JSON Schemas.

Each JSON payload has a draft 2020-12 schema in ``edgemon/publish/schemas/``
(``state.json``, ``status.json``, ``health.json``, ``features.json``), shipped
with the package and loaded with :func:`load_schema`. The renderers write
compact UTF-8 JSON with no NaN or infinity: a value that is not finite becomes
``null``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # edgemon.states imports numpy, which edgemon watch does not need
    from edgemon.states import StateEvent

__all__ = [
    "HEALTH_FIELDS",
    "PIPELINE_HEALTH_FIELDS",
    "STATUS_OFFLINE",
    "STATUS_ONLINE",
    "format_ts",
    "load_schema",
    "render_features",
    "render_health",
    "render_state",
]

STATUS_ONLINE = b"online"
STATUS_OFFLINE = b"offline"

#: Health counters that the pipeline's health callable may report.
PIPELINE_HEALTH_FIELDS = (
    "windows_processed",
    "windows_flagged",
    "samples_dropped",
    "samples_lost",
    "windows_by_flag",
    "sensors",
)
#: Health fields the publisher fills in itself.
HEALTH_FIELDS = (
    "uptime_s",
    "queue_depth",
    "queue_bytes",
    "queue_dropped",
    "broker_reconnects",
    "models",
    "cpu_percent",
    "cpu_seconds",
    "rss_bytes",
)


def format_ts(ts: datetime) -> str:
    """Format a timezone-aware time as UTC ISO 8601 with milliseconds and a ``Z`` suffix.

    For example ``2024-05-01T12:00:00.250Z``.

    Raises
    ------
    ValueError
        If ``ts`` is naive, because its offset from UTC is then unknown.
    """
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(
            f"timestamps must be timezone-aware (for example datetime.now(UTC)), got {ts!r}"
        )
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _finite_or_none(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _dumps(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode()


def render_state(event: StateEvent, seq: int) -> bytes:
    """Render the JSON payload of a state message (schema ``state.json``)."""
    return _dumps(
        {
            "ts": format_ts(event.ts),
            "seq": seq,
            "device": event.device,
            "sensor": event.sensor,
            "cluster": int(event.cluster),
            "state": event.state,
            "score": _finite_or_none(event.score),
            "model": event.model_id,
            "window": {
                "start": int(event.window_start),
                "samples": int(event.window_samples),
                "sample_rate": float(event.sample_rate),
            },
            "flags": list(event.flags),
        }
    )


def render_features(
    device: str, sensor: str, ts: datetime, columns: Sequence[str], values: Sequence[float]
) -> bytes:
    """Render the JSON payload of a feature message (schema ``features.json``).

    Parameters
    ----------
    columns : sequence of str
        Feature names, as in the model metadata.
    values : sequence of float
        One window's features, in the order of ``columns``.
    """
    if len(columns) != len(values):
        raise ValueError(f"got {len(columns)} feature names but {len(values)} values")
    features = {name: _finite_or_none(value) for name, value in zip(columns, values, strict=True)}
    return _dumps({"ts": format_ts(ts), "device": device, "sensor": sensor, "features": features})


def render_health(device: str, ts: datetime, fields: Mapping[str, Any]) -> bytes:
    """Render the JSON payload of a health message (schema ``health.json``).

    Raises
    ------
    ValueError
        If ``fields`` contains a key that is not a health field.
    """
    unknown = set(fields) - set(HEALTH_FIELDS) - set(PIPELINE_HEALTH_FIELDS)
    if unknown:
        raise ValueError(
            f"unknown health fields {sorted(unknown)}; "
            f"known are {sorted(HEALTH_FIELDS + PIPELINE_HEALTH_FIELDS)}"
        )
    return _dumps({"ts": format_ts(ts), "device": device, **fields})


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Load a payload schema: ``"state"``, ``"status"``, ``"health"`` or ``"features"``."""
    resource = resources.files("edgemon.publish").joinpath("schemas", f"{name}.json")
    if not resource.is_file():
        raise ValueError(f"no payload schema named {name!r}; use state, status, health or features")
    return json.loads(resource.read_text(encoding="utf-8"))
