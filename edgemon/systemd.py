"""Minimal sd_notify client: readiness, status and watchdog messages to systemd.

Implements the datagram protocol of ``sd_notify(3)`` directly, so the daemon
needs no extra package.  Outside systemd (no ``NOTIFY_SOCKET``) every call is
a no-op.
"""

from __future__ import annotations

import logging
import os
import socket

__all__ = ["Notifier"]

logger = logging.getLogger(__name__)


class Notifier:
    """Send ``READY=1``, ``STATUS=...``, ``WATCHDOG=1`` and ``STOPPING=1`` to systemd."""

    def __init__(self) -> None:
        address = os.environ.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):
            address = "\0" + address[1:]  # abstract socket namespace
        self._address = address or None
        usec = os.environ.get("WATCHDOG_USEC", "")
        watchdog_pid = os.environ.get("WATCHDOG_PID", "")
        enabled = usec.isdigit() and (not watchdog_pid or watchdog_pid == str(os.getpid()))
        #: Seconds between watchdog pings systemd expects, or None when the watchdog is off.
        self.watchdog_interval = int(usec) / 1e6 if enabled else None

    @property
    def enabled(self) -> bool:
        """True when running under systemd with a notification socket."""
        return self._address is not None

    def ready(self, status: str = "") -> None:
        """Tell systemd that start-up has finished."""
        self._send("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def status(self, status: str) -> None:
        """Set the one-line status shown by ``systemctl status``."""
        self._send(f"STATUS={status}")

    def watchdog(self) -> None:
        """Reset the service watchdog timer."""
        self._send("WATCHDOG=1")

    def stopping(self) -> None:
        """Tell systemd that a clean shutdown has begun."""
        self._send("STOPPING=1")

    def _send(self, message: str) -> None:
        if self._address is None:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(message.encode(), self._address)
        except OSError as exc:
            logger.warning("sd_notify to %r failed: %s", self._address, exc)
