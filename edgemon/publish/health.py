"""The periodic health message: pipeline counters, outbox, broker and process figures."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from edgemon.publish.payloads import PIPELINE_HEALTH_FIELDS, render_health
from edgemon.publish.resources import ProcessMeter

__all__ = ["HealthReporter"]

logger = logging.getLogger(__name__)


class HealthReporter:
    """Compose health payloads for one device.

    Parameters
    ----------
    device : str
    model_ids : mapping of str to str
        Sensor name -> model id.
    pipeline : callable, optional
        Returns any of the fields in ``PIPELINE_HEALTH_FIELDS``; a failing or
        malformed callback is logged and its counters are left out of that
        message.
    """

    def __init__(
        self,
        device: str,
        model_ids: Mapping[str, str],
        pipeline: Callable[[], Mapping[str, int]] | None,
    ) -> None:
        self.device = device
        self.model_ids = dict(model_ids)
        self._pipeline = pipeline
        self._meter = ProcessMeter()
        self.started_at = time.monotonic()

    def restart_clock(self) -> None:
        """Count the uptime from now."""
        self.started_at = time.monotonic()

    def render(
        self, *, queue_depth: int, queue_bytes: int, queue_dropped: int, reconnects: int
    ) -> bytes:
        """Return the JSON payload of a health message (schema ``health.json``)."""
        fields: dict[str, Any] = self._pipeline_fields()
        usage = self._meter.read()
        fields.update(
            uptime_s=round(time.monotonic() - self.started_at, 1),
            queue_depth=queue_depth,
            queue_bytes=queue_bytes,
            queue_dropped=queue_dropped,
            broker_reconnects=reconnects,
            models=self.model_ids,
            cpu_percent=usage.cpu_percent,
            cpu_seconds=usage.cpu_seconds,
            rss_bytes=usage.rss_bytes,
        )
        return render_health(self.device, datetime.now(UTC), fields)

    def _pipeline_fields(self) -> dict[str, Any]:
        if self._pipeline is None:
            return {}
        try:
            reported = dict(self._pipeline())
        except Exception:
            # The callback belongs to the pipeline; its failure must not stop publishing.
            logger.exception("the health callback failed; this health message omits its counters")
            return {}
        unknown = sorted(set(reported) - set(PIPELINE_HEALTH_FIELDS))
        if unknown:
            logger.error(
                "the health callback returned unknown fields %s; known are %s",
                unknown,
                PIPELINE_HEALTH_FIELDS,
            )
        # Counters are integers; the per-flag and per-sensor breakdowns are mappings.
        return {
            key: dict(reported[key]) if isinstance(reported[key], Mapping) else int(reported[key])
            for key in PIPELINE_HEALTH_FIELDS
            if key in reported
        }
