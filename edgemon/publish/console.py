"""Show state messages as text lines, and a sink that prints states instead of publishing.

:func:`format_state_line` is shared by :class:`ConsoleSink` (runs without a
broker) and ``edgemon watch`` (a subscriber), so both show the same line.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from edgemon.publish.payloads import render_state

if TYPE_CHECKING:
    from edgemon.states import StateEvent

__all__ = ["ConsoleSink", "format_state_line"]


def format_state_line(message: Mapping[str, Any], note: str = "") -> str:
    """Format a decoded state payload as one line.

    For example ``2024-05-01T12:00:00.250Z rig1/de seq=12 inner_race cluster=2
    score=0.84 flags=gap``, followed by ``note`` (such as a gap warning).
    """
    score = message.get("score")
    score_text = "-" if score is None else f"{score:.3g}"
    parts = [
        str(message.get("ts", "?")),
        f"{message.get('device', '?')}/{message.get('sensor', '?')}",
        f"seq={message.get('seq', '?')}",
        str(message.get("state", "?")),
        f"cluster={message.get('cluster', '?')}",
        f"score={score_text}",
    ]
    flags = message.get("flags") or []
    if flags:
        parts.append("flags=" + ",".join(map(str, flags)))
    if note:
        parts.append(note)
    return " ".join(parts)


class ConsoleSink:
    """Print state events to a text stream, for runs without a broker.

    It offers the calls of :class:`~edgemon.publish.client.MqttPublisher` that
    the pipeline makes, numbers the states of each sensor from 1 (in memory,
    so the numbering restarts with the process), and keeps nothing.

    Parameters
    ----------
    out : text stream, default=sys.stdout
    json_lines : bool, default=False
        Print each state's JSON payload instead of a formatted line.
    """

    def __init__(self, out: TextIO | None = None, *, json_lines: bool = False) -> None:
        self.out = out if out is not None else sys.stdout
        self.json_lines = json_lines
        self._seqs: dict[str, int] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        """Do nothing: a console needs no connection."""

    def submit_state(self, event: StateEvent) -> int:
        """Print the event and return its ``seq``."""
        return self.submit_states([event])[0]

    def submit_states(self, events: Sequence[StateEvent]) -> list[int]:
        """Print the events, in order, and return their ``seq``."""
        seqs = []
        lines = []
        with self._lock:
            for event in events:
                seq = self._seqs.get(event.sensor, 0) + 1
                self._seqs[event.sensor] = seq
                payload = render_state(event, seq)
                if self.json_lines:
                    lines.append(payload.decode() + "\n")
                else:
                    lines.append(format_state_line(json.loads(payload)) + "\n")
                seqs.append(seq)
            self.out.write("".join(lines))
            self.out.flush()
        return seqs

    def submit_features(
        self, sensor: str, ts: datetime, columns: Sequence[str], values: Sequence[float]
    ) -> bool:
        """Drop the features: the console shows states only. Returns False."""
        return False

    def flush(self, timeout: float) -> bool:
        """Return True at once: every state was printed when it was submitted."""
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Flush the stream."""
        self.out.flush()
