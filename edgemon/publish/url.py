"""Broker URLs: ``mqtt://``, ``mqtts://``, ``ws://`` and ``wss://``.

A URL names where the broker is and how to reach it (TCP or WebSocket, plain
or TLS). It never carries credentials: a password in a URL ends up in shell
history, ``ps`` output and logs, so user names and passwords come from the
``[mqtt]`` table of the config file instead.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from edgemon.errors import ConfigError

__all__ = ["SCHEMES", "BrokerUrl", "parse_broker_url"]

#: Scheme -> (transport, TLS, default port). WebSocket ports follow the URL defaults.
SCHEMES: dict[str, tuple[str, bool, int]] = {
    "mqtt": ("tcp", False, 1883),
    "mqtts": ("tcp", True, 8883),
    "ws": ("websockets", False, 80),
    "wss": ("websockets", True, 443),
}

#: Path paho-mqtt requests for a WebSocket connection when the URL has none.
DEFAULT_WEBSOCKET_PATH = "/mqtt"


@dataclass(frozen=True, slots=True)
class BrokerUrl:
    """A parsed broker URL."""

    scheme: str
    host: str
    port: int
    #: ``"tcp"`` or ``"websockets"``, as paho-mqtt names its transports.
    transport: str
    tls: bool
    #: HTTP path of the WebSocket endpoint; empty for TCP.
    path: str

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.path}"


def parse_broker_url(url: str) -> BrokerUrl:
    """Parse and validate a broker URL.

    Parameters
    ----------
    url : str
        For example ``mqtt://127.0.0.1:1883``, ``mqtts://broker.lan`` or
        ``ws://broker.lan:9001/mqtt``. The port defaults to 1883 (mqtt),
        8883 (mqtts), 80 (ws) or 443 (wss).

    Returns
    -------
    BrokerUrl

    Raises
    ------
    ConfigError
        If the scheme is not one of ``mqtt``, ``mqtts``, ``ws`` or ``wss``,
        the host is missing, the port is invalid, or the URL contains a user
        name, password, query or fragment.
    """
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(
            f"broker URL must be a non-empty string such as mqtt://127.0.0.1:1883, got {url!r}"
        )
    parts = urllib.parse.urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ConfigError(
            f"broker URL scheme must be one of {', '.join(s + '://' for s in SCHEMES)}, got {url!r}"
        )
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            "broker URL must not contain a user name or password, because command lines and logs "
            "would show them; for edgemon watch and edgemon replay pass --username with "
            "--password-env or --password-file, and for the daemon set username with password, "
            "password_env or password_file in the [mqtt] table of the config file"
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"broker URL must not have a query or fragment, got {url!r}")
    if not parts.hostname:
        raise ConfigError(
            f"broker URL has no host, got {url!r}; write for example mqtt://127.0.0.1:1883"
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(
            f"broker URL port must be an integer from 1 to 65535, got {url!r}"
        ) from exc
    transport, tls, default_port = SCHEMES[scheme]
    if port is None:
        port = default_port
    if port == 0:
        raise ConfigError(f"broker URL port must be an integer from 1 to 65535, got {url!r}")
    path = ""
    if transport == "websockets":
        path = parts.path or DEFAULT_WEBSOCKET_PATH
    elif parts.path not in ("", "/"):
        raise ConfigError(f"an {scheme}:// broker URL takes no path, got {url!r}")
    return BrokerUrl(
        scheme=scheme, host=parts.hostname, port=port, transport=transport, tls=tls, path=path
    )
