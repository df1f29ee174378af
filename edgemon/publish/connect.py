"""One connection attempt to the broker, and the I/O loop around a paho client.

Both the publisher thread and ``edgemon watch`` connect through
:func:`open_connection`, which sorts every failure into one of two kinds:

* :class:`BrokerUnavailableError`: the broker cannot be reached now (refused,
  timed out, server busy). The caller retries with backoff.
* :class:`~edgemon.errors.PublishError`: the connection cannot succeed as
  configured (certificate verification failed, wrong password, not
  authorized, protocol rejected). Retrying would only hammer the broker, so
  the caller reports the error once and stops.

:func:`pump` is the event loop for one connection, built on paho's
external-loop API (``socket()``, ``loop_read()``, ``loop_write()``,
``loop_misc()``), so that the publisher can also wake on a socket of its own
when a new message is queued.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edgemon.errors import PublishError
from edgemon.publish.settings import MqttSettings
from edgemon.publish.url import BrokerUrl

__all__ = [
    "FATAL_CONNACK_CODES",
    "BrokerUnavailableError",
    "ConnectResult",
    "broker_reachable",
    "make_client",
    "open_connection",
    "pump",
]

logger = logging.getLogger(__name__)

#: CONNACK reason codes after which a retry with the same settings fails again.
#: They use MQTT 5 numbers, and paho maps the MQTT 3.1.1 return codes 1 to 5 onto 0x84 to 0x87.
FATAL_CONNACK_CODES = frozenset(
    {
        0x81,  # malformed packet
        0x82,  # protocol error
        0x84,  # unsupported protocol version
        0x85,  # client identifier not valid
        0x86,  # bad user name or password
        0x87,  # not authorized
        0x8A,  # banned
        0x8C,  # bad authentication method
        0x90,  # topic name invalid (the Last Will topic)
        0x95,  # packet too large
        0x99,  # payload format invalid
        0x9A,  # retain not supported (the status topic is retained)
        0x9B,  # QoS not supported
        0x9D,  # server moved
    }
)


class BrokerUnavailableError(ConnectionError):
    """The broker cannot be reached right now; retrying later may succeed."""


@dataclass
class ConnectResult:
    """Contents of the broker's CONNACK."""

    session_present: bool = False
    reason: ReasonCode | None = None
    properties: Properties | None = field(default=None, repr=False)


def make_client(
    settings: MqttSettings, client_id: str, *, will: tuple[str, bytes] | None = None
) -> mqtt.Client:
    """Create a paho client for ``settings``: protocol, transport, TLS, credentials and Last Will.

    Raises
    ------
    PublishError
        If the CA file, client certificate or key cannot be loaded.
    """
    protocol = mqtt.MQTTv5 if settings.protocol == "5" else mqtt.MQTTv311
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        # MQTT 5 has no clean session flag: clean_start is passed to connect().
        clean_session=True if protocol == mqtt.MQTTv311 else None,
        protocol=protocol,
        transport=settings.url.transport,
        reconnect_on_failure=False,
    )
    client.enable_logger(logging.getLogger("edgemon.publish.paho"))
    client.connect_timeout = settings.connect_timeout
    if settings.url.transport == "websockets":
        client.ws_set_options(path=settings.url.path)
    if settings.url.tls:
        client.tls_set_context(make_tls_context(settings))
        if not settings.verify_hostname:
            client.tls_insecure_set(True)
    if settings.username is not None:
        client.username_pw_set(settings.username, settings.password)
    if will is not None:
        client.will_set(will[0], will[1], qos=1, retain=True)
    return client


def make_tls_context(settings: MqttSettings) -> ssl.SSLContext:
    """Build the TLS context from the configured CA (or the system's) and client certificate."""
    try:
        context = ssl.create_default_context(cafile=settings.ca)
        context.check_hostname = settings.verify_hostname
        if settings.certfile is not None:
            context.load_cert_chain(settings.certfile, settings.keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise PublishError(
            f"cannot load the TLS files (ca={settings.ca}, certfile={settings.certfile}, "
            f"keyfile={settings.keyfile}): {exc}; check that they are PEM files and the key matches"
        ) from exc
    return context


def broker_reachable(url: BrokerUrl, timeout: float = 2.0) -> bool:
    """Return whether a TCP connection to the broker's host and port succeeds within ``timeout`` s.

    This checks only that something listens there, not MQTT, TLS or
    credentials: use it to decide quickly, at start, whether to publish at all.
    """
    try:
        with socket.create_connection((url.host, url.port), timeout=timeout):
            return True
    except OSError as exc:
        logger.debug("no broker at %s: %s", url, exc)
        return False


def open_connection(
    client: mqtt.Client,
    settings: MqttSettings,
    stop: threading.Event,
    *,
    clean_start: bool = True,
    properties: Properties | None = None,
) -> ConnectResult | None:
    """Connect ``client`` and wait for the broker's CONNACK, at most ``settings.connect_timeout`` s.

    Returns
    -------
    ConnectResult or None
        None if ``stop`` was set while waiting.

    Raises
    ------
    BrokerUnavailableError
        For failures that may pass: refused or timed-out TCP connections,
        DNS errors, broker busy or unavailable.
    PublishError
        For failures that retrying cannot fix: TLS verification, credentials,
        authorization, protocol; the message names the URL and what to check.
    """
    url = settings.url
    result = ConnectResult()
    answered = threading.Event()

    def on_connect(_client, _userdata, flags, reason, props) -> None:
        result.session_present = bool(flags.session_present)
        result.reason = reason
        result.properties = props
        answered.set()

    client.on_connect = on_connect
    try:
        if settings.protocol == "5":
            client.connect(
                url.host,
                url.port,
                settings.keepalive,
                clean_start=clean_start,
                properties=properties,
            )
        else:
            client.connect(url.host, url.port, settings.keepalive)
    except ssl.SSLCertVerificationError as exc:
        raise PublishError(
            f"TLS certificate verification failed for {url}: {exc.verify_message}; check that "
            f"ca= names the CA that signed the broker's certificate and that the host {url.host!r} "
            "is in the certificate's subjectAltName"
        ) from exc
    except ssl.CertificateError as exc:
        raise PublishError(
            f"the broker's certificate does not match the host {url.host!r} of {url}: {exc}"
        ) from exc
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError) as exc:
        raise BrokerUnavailableError(
            f"{url} closed the connection during the TLS handshake ({exc}); if this "
            "repeats, check that the port speaks TLS"
        ) from exc
    except ssl.SSLError as exc:
        raise PublishError(
            f"TLS handshake with {url} failed: {exc.reason or exc}; check that the port speaks TLS "
            "and that the client certificate is accepted"
        ) from exc
    except OSError as exc:
        raise BrokerUnavailableError(f"cannot connect to {url}: {exc}") from exc

    deadline = time.monotonic() + settings.connect_timeout
    while not answered.is_set():
        if stop.is_set():
            client.disconnect()
            return None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            client.disconnect()
            raise BrokerUnavailableError(
                f"no CONNACK from {url} within {settings.connect_timeout} s"
            )
        rc, _ = pump(client, min(remaining, 0.2))
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS and not answered.is_set():
            raise BrokerUnavailableError(
                f"{url} closed the connection before CONNACK: {mqtt.error_string(rc)}"
            )

    reason = result.reason
    if reason is not None and reason.is_failure:
        client.disconnect()
        if reason.value in FATAL_CONNACK_CODES:
            raise PublishError(
                f"{url} rejected the connection: {reason} (reason code {reason.value:#04x}); "
                "check username, password, client_id and the broker's ACL"
            )
        raise BrokerUnavailableError(
            f"{url} refused the connection for now: {reason} (reason code {reason.value:#04x})"
        )
    return result


def pump(
    client: mqtt.Client, timeout: float, wake: socket.socket | None = None
) -> tuple[MQTTErrorCode, bool]:
    """Wait up to ``timeout`` s for network events on ``client``'s socket and process them.

    Parameters
    ----------
    wake : socket, optional
        A socket that other threads write a byte to, to end the wait early.

    Returns
    -------
    rc : MQTTErrorCode
        ``MQTT_ERR_SUCCESS`` while the connection is up.
    woken : bool
        Whether ``wake`` became readable; its bytes have been read.
    """
    sock = client.socket()
    if sock is None:
        return MQTTErrorCode.MQTT_ERR_NO_CONN, False
    # An SSL or WebSocket layer may hold decoded bytes that select() cannot see.
    pending = sock.pending() if hasattr(sock, "pending") else 0
    readers = [sock] if wake is None else [sock, wake]
    writers = [sock] if client.want_write() else []
    try:
        readable, writable, _ = select.select(readers, writers, [], 0.0 if pending else timeout)
    except (OSError, ValueError):
        # The socket was closed under us: paho reports the loss on the next call.
        return MQTTErrorCode.MQTT_ERR_CONN_LOST, False
    woken = wake is not None and wake in readable
    if woken:
        # Another pump may have drained it already.
        with contextlib.suppress(BlockingIOError):
            wake.recv(4096)
    if sock in readable or pending:
        rc = client.loop_read()
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return rc, woken
    if sock in writable or client.want_write():
        rc = client.loop_write()
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return rc, woken
    return client.loop_misc(), woken
