"""MQTT settings: the ``[mqtt]`` table of the config file and the ``--mqtt`` URL.

:func:`parse_mqtt_table` checks every key and appends each problem to a list,
so that the config loader can report all the mistakes in a file at once.
:meth:`MqttSettings.from_url` builds settings for the command line, where only
the URL is given and everything else keeps its default.

The password is read here, once, from the config file, an environment variable
(``password_env``) or a file (``password_file``, for systemd credentials or
Docker secrets). It never appears in ``repr()``, in logs or in error messages.
"""

from __future__ import annotations

import logging
import math
import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgemon.errors import ConfigError
from edgemon.publish.url import BrokerUrl, parse_broker_url

__all__ = ["PROTOCOLS", "MqttSettings", "parse_mqtt_table", "validate_topic_level"]

logger = logging.getLogger(__name__)

#: Accepted values of ``protocol``.
PROTOCOLS = ("3.1.1", "5")
#: Accepted values of ``overflow``: what to do when the outbox is full.
OVERFLOW_POLICIES = ("drop-oldest",)

_TOPIC_LEVEL = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_TOPIC_PREFIX = re.compile(r"^[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)*$")


def validate_topic_level(kind: str, name: str) -> None:
    """Check that ``name`` can be one level of a topic and a Home Assistant id.

    Raises
    ------
    ConfigError
        If ``name`` is not lowercase letters, digits, ``_`` and ``-``,
        starting with a letter or digit.
    """
    if not isinstance(name, str) or not _TOPIC_LEVEL.match(name):
        raise ConfigError(
            f"{kind} name must be lowercase letters, digits, '_' and '-' (it becomes an MQTT topic "
            f"level), got {name!r}; rename it, for example to {_suggest_level(name)!r}"
        )


def _suggest_level(name: object) -> str:
    text = re.sub(r"[^a-z0-9_-]+", "-", str(name).lower()).strip("-_")
    return text or "sensor1"


@dataclass(frozen=True)
class MqttSettings:
    """Everything the publisher and ``edgemon watch`` need to talk to a broker.

    Build it with :func:`parse_mqtt_table` or :meth:`from_url`, which validate;
    the constructor itself does not.
    """

    url: BrokerUrl
    #: MQTT client id; None lets the caller derive one (``edgemon-<device>``).
    client_id: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    #: Where the password came from: ``"config"``, ``"env:NAME"``, ``"file:PATH"`` or ``""``.
    password_source: str = ""
    #: CA certificate file (PEM) that signed the broker's certificate; None uses the system CAs.
    ca: Path | None = None
    #: Client certificate (PEM) and its private key, for brokers that require one.
    certfile: Path | None = None
    keyfile: Path | None = None
    verify_hostname: bool = True
    #: ``"3.1.1"`` or ``"5"``.
    protocol: str = "5"
    #: First topic levels, lowercase, without leading or trailing slash.
    topic_prefix: str = "edgemon"
    #: Seconds between MQTT PINGREQs when the connection is idle.
    keepalive: int = 30
    #: QoS of state messages: 1 or 2 (the outbox needs an acknowledgement).
    qos: int = 1
    #: Outbox file; None puts ``outbox.sqlite3`` in the service's state directory.
    outbox: Path | None = None
    #: Bounds of the outbox, in messages and in bytes of topic plus payload.
    max_messages: int = 100_000
    max_bytes: int = 32 * 1024 * 1024
    overflow: str = "drop-oldest"
    #: Maximum number of state messages sent and not yet acknowledged.
    inflight: int = 20
    #: Reconnect backoff, s: the first delay and the cap of the doubling delays.
    reconnect_min_delay: float = 1.0
    reconnect_max_delay: float = 60.0
    #: Bound on the TCP connect, the TLS handshake and the wait for CONNACK, s.
    connect_timeout: float = 10.0
    #: Seconds between health messages.
    health_interval: float = 60.0
    #: Publish feature vectors on ``.../features`` (QoS 0), at most one per sensor per interval.
    features: bool = False
    features_min_interval: float = 10.0
    #: Publish Home Assistant MQTT discovery configs under ``discovery_prefix``.
    discovery: bool = False
    discovery_prefix: str = "homeassistant"

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> MqttSettings:
        """Build settings from a broker URL, for example from ``--mqtt``.

        Parameters
        ----------
        url : str
            Broker URL, see :func:`edgemon.publish.url.parse_broker_url`.
        **overrides
            Any key of the ``[mqtt]`` config table, for example
            ``topic_prefix="plant1"`` or ``ca="ca.pem"``.

        Raises
        ------
        ConfigError
            Listing every invalid value.
        """
        errors: list[str] = []
        settings = parse_mqtt_table({"url": url, **overrides}, errors, where="mqtt")
        if errors or settings is None:
            raise ConfigError("invalid MQTT settings:\n  " + "\n  ".join(errors))
        return settings


def parse_mqtt_table(
    table: Mapping[str, Any], errors: list[str], where: str = "mqtt"
) -> MqttSettings | None:
    """Validate an ``[mqtt]`` config table and build :class:`MqttSettings`.

    Parameters
    ----------
    table : mapping
        The table as parsed from TOML. Keys are the field names of
        :class:`MqttSettings`, except that the password is given as one of
        ``password``, ``password_env`` (name of an environment variable) or
        ``password_file`` (path of a file holding it).
    errors : list of str
        Every problem found is appended here, prefixed with ``where``.
    where : str, default="mqtt"
        Name of the table in messages, for example ``"mqtt"``.

    Returns
    -------
    MqttSettings or None
        None when at least one error was appended.
    """
    n_errors = len(errors)
    reader = _TableReader(table, errors, where)
    known = {
        f for f in MqttSettings.__dataclass_fields__ if f not in ("password", "password_source")
    }
    known |= {"password", "password_env", "password_file"}
    for key in table:
        if key not in known:
            errors.append(f"{where}.{key}: unknown key; valid keys are {', '.join(sorted(known))}")

    url = None
    raw_url = reader.string("url", None, required=True)
    if raw_url is not None:
        try:
            url = parse_broker_url(raw_url)
        except ConfigError as exc:
            errors.append(f"{where}.url: {exc}")

    username = reader.string("username", None)
    password, password_source = _read_password(reader)
    if password is not None and username is None:
        errors.append(
            f"{where}.username: missing; MQTT sends a password only together with a user name"
        )

    ca = reader.path("ca", must_exist=True)
    certfile = reader.path("certfile", must_exist=True)
    keyfile = reader.path("keyfile", must_exist=True)
    if keyfile is not None and certfile is None:
        errors.append(
            f"{where}.keyfile: given without certfile; set certfile to the client certificate"
        )
    if url is not None and not url.tls and (ca or certfile):
        errors.append(
            f"{where}.url: {url.scheme}:// is not encrypted but ca or certfile is set; "
            "use mqtts:// or wss://"
        )

    prefix = reader.string("topic_prefix", "edgemon")
    if prefix is not None and not _TOPIC_PREFIX.match(prefix):
        errors.append(f"{where}.topic_prefix: {_topic_prefix_problem(prefix)}")
    discovery_prefix = reader.string("discovery_prefix", "homeassistant")
    if discovery_prefix is not None and not _TOPIC_PREFIX.match(discovery_prefix):
        errors.append(
            f"{where}.discovery_prefix: must be lowercase topic levels without leading or trailing "
            f"slash, got {discovery_prefix!r}"
        )

    client_id = reader.string("client_id", None)
    if client_id is not None and not 1 <= len(client_id.encode()) <= 65535:
        errors.append(f"{where}.client_id: must be 1 to 65535 bytes long, got {client_id!r}")

    values = {
        "client_id": client_id,
        "verify_hostname": reader.boolean("verify_hostname", True),
        "protocol": reader.choice("protocol", "5", PROTOCOLS),
        "keepalive": reader.integer("keepalive", 30, 5, 65535),
        "qos": reader.integer("qos", 1, 1, 2),
        "outbox": reader.path("outbox", must_exist=False),
        "max_messages": reader.integer("max_messages", 100_000, 1, None),
        "max_bytes": reader.integer("max_bytes", 32 * 1024 * 1024, 4096, None),
        "overflow": reader.choice("overflow", "drop-oldest", OVERFLOW_POLICIES),
        "inflight": reader.integer("inflight", 20, 1, 65535),
        "reconnect_min_delay": reader.number("reconnect_min_delay", 1.0, 0.01),
        "reconnect_max_delay": reader.number("reconnect_max_delay", 60.0, 0.01),
        "connect_timeout": reader.number("connect_timeout", 10.0, 0.1),
        "health_interval": reader.number("health_interval", 60.0, 0.1),
        "features": reader.boolean("features", False),
        "features_min_interval": reader.number("features_min_interval", 10.0, 0.0),
        "discovery": reader.boolean("discovery", False),
    }
    low, high = values["reconnect_min_delay"], values["reconnect_max_delay"]
    if low is not None and high is not None and high < low:
        errors.append(
            f"{where}.reconnect_max_delay: must be >= reconnect_min_delay ({low} s), got {high} s"
        )

    if len(errors) > n_errors or url is None:
        return None
    return MqttSettings(
        url=url,
        username=username,
        password=password,
        password_source=password_source,
        ca=ca,
        certfile=certfile,
        keyfile=keyfile,
        topic_prefix=prefix,
        discovery_prefix=discovery_prefix,
        **values,
    )


def _topic_prefix_problem(prefix: str) -> str:
    # MQTT topics are case-sensitive, so an upper-case prefix is rejected rather than
    # lowercased. A subscriber to "Plant1/#" would otherwise never see "plant1/..." topics.
    if prefix.lower() != prefix and _TOPIC_PREFIX.match(prefix.lower()):
        return (
            f"must be lowercase, because MQTT topics are case-sensitive and edgemon's "
            f"topics are lowercase, got {prefix!r}; write {prefix.lower()!r} and "
            "subscribe to that"
        )
    return (
        "must be lowercase topic levels of letters, digits, '_' and '-' separated by '/', "
        f"with no leading or trailing slash or space, got {prefix!r}"
    )


def _read_password(reader: _TableReader) -> tuple[str | None, str]:
    sources = [key for key in ("password", "password_env", "password_file") if key in reader.table]
    if len(sources) > 1:
        reader.fail(
            sources[1], f"give only one of password, password_env and password_file, got {sources}"
        )
        return None, ""
    if not sources:
        return None, ""
    key = sources[0]
    if key == "password":
        # Never echo the value itself, not even its type's repr.
        value = reader.table["password"]
        if not isinstance(value, str) or not value:
            reader.fail("password", "must be a non-empty string")
            return None, ""
        return value, "config"
    if key == "password_env":
        name = reader.string("password_env", None)
        if name is None:
            return None, ""
        value = os.environ.get(name)
        if not value:
            reader.fail("password_env", f"environment variable {name} is not set or empty")
            return None, ""
        return value, f"env:{name}"
    path = reader.path("password_file", must_exist=True)
    if path is None:
        return None, ""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reader.fail("password_file", f"cannot read {path}: {exc}")
        return None, ""
    value = text.rstrip("\r\n")
    if not value:
        reader.fail("password_file", f"{path} is empty")
        return None, ""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning("password file %s is readable by other users; chmod 600 it", path)
    return value, f"file:{path}"


class _TableReader:
    """Typed access to one config table that records errors instead of raising."""

    def __init__(self, table: Mapping[str, Any], errors: list[str], where: str) -> None:
        self.table = table
        self.errors = errors
        self.where = where

    def fail(self, key: str, message: str) -> None:
        self.errors.append(f"{self.where}.{key}: {message}")

    def _get(self, key: str, default: Any, check: Callable[[Any], bool], expected: str) -> Any:
        if key not in self.table:
            return default
        value = self.table[key]
        if not check(value):
            self.fail(key, f"must be {expected}, got {value!r}")
            return None
        return value

    def string(self, key: str, default: str | None, *, required: bool = False) -> str | None:
        if required and key not in self.table:
            self.fail(key, 'missing; set it, for example url = "mqtt://127.0.0.1:1883"')
            return None
        return self._get(
            key, default, lambda v: isinstance(v, str) and v != "", "a non-empty string"
        )

    def boolean(self, key: str, default: bool) -> bool | None:
        return self._get(key, default, lambda v: isinstance(v, bool), "true or false")

    def integer(self, key: str, default: int, low: int, high: int | None) -> int | None:
        expected = f"an integer >= {low}" if high is None else f"an integer from {low} to {high}"
        return self._get(
            key,
            default,
            lambda v: (
                isinstance(v, int)
                and not isinstance(v, bool)
                and v >= low
                and (high is None or v <= high)
            ),
            expected,
        )

    def number(self, key: str, default: float, low: float) -> float | None:
        value = self._get(
            key,
            default,
            lambda v: (
                isinstance(v, int | float)
                and not isinstance(v, bool)
                and math.isfinite(v)
                and v >= low
            ),
            f"a number >= {low} (seconds)",
        )
        return None if value is None else float(value)

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str | None:
        return self._get(
            key, default, lambda v: v in choices, f"one of {', '.join(map(repr, choices))}"
        )

    def path(self, key: str, *, must_exist: bool) -> Path | None:
        value = self._get(
            key, None, lambda v: isinstance(v, str | os.PathLike) and str(v) != "", "a file path"
        )
        if value is None:
            return None
        path = Path(value).expanduser()
        if must_exist and not path.is_file():
            self.fail(key, f"file {path} not found")
            return None
        return path
