"""Daemon configuration: a TOML file read into frozen dataclasses.

Every problem in a file is collected before anything is raised, so that a user
fixing a configuration sees all of its mistakes at once, each with the table
and key it concerns.  Each subsystem validates its own table (the source
options in :mod:`edgemon.sources`, the broker settings in
:mod:`edgemon.publish.settings`); this module checks the layout and the
daemon-wide settings and assembles the result.

Example
-------
See ``deploy/edgemon.toml`` for a documented example of every key.
"""

from __future__ import annotations

import ipaddress
import math
import re
import socket
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgemon.errors import ConfigError

__all__ = ["DaemonConfig", "SensorConfig", "create_state_dir", "load_config", "parse_config"]

#: Device and sensor names become MQTT topic levels, so they are restricted to safe characters.
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
LOG_LEVELS = ("debug", "info", "warning", "error")
BACKENDS = ("auto", "onnxruntime", "numpy")

_TOP_KEYS = {"device", "sensors", "mqtt", "logging"}
_DEVICE_KEYS = {"id", "state_dir"}
_SENSOR_KEYS = {
    "name",
    "model",
    "source",
    "window",
    "hop",
    "debounce",
    "queue_blocks",
    "backend",
    "silence_timeout",
}
_LOGGING_KEYS = {"level"}


@dataclass(frozen=True)
class SensorConfig:
    """One monitored sensor: where its samples come from and which model judges them."""

    name: str
    model: Path
    source_kind: str
    source_options: Mapping[str, Any]
    #: Samples per window; None takes the model's window (a different value is rejected at start).
    window: int | None = None
    #: Samples between window starts; None takes the model's hop.
    hop: int | None = None
    debounce: int = 1
    #: Bound of the queue between the reader and the processing thread, in blocks.
    queue_blocks: int = 64
    backend: str = "auto"
    #: Seconds without samples from a live source before a warning; None takes
    #: ``edgemon.daemon.DEFAULT_SILENCE_TIMEOUT`` or two window periods, whichever is longer.
    silence_timeout: float | None = None


@dataclass(frozen=True)
class DaemonConfig:
    """Everything ``edgemon run`` needs, validated."""

    device: str
    state_dir: Path
    sensors: tuple[SensorConfig, ...]
    #: Broker settings (an ``edgemon.publish.settings.MqttSettings``), or None to print the
    #: states to standard output.
    mqtt: Any = None
    log_level: str = "info"
    path: Path | None = field(default=None, compare=False)


def load_config(path: str | Path) -> DaemonConfig:
    """Read and validate a daemon configuration file.

    Parameters
    ----------
    path : str or Path
        TOML file, for example ``/etc/edgemon/edgemon.toml``.

    Returns
    -------
    DaemonConfig

    Raises
    ------
    ConfigError
        If the file is missing or not valid TOML, or if any setting is invalid.
        The message lists every problem found, one per line.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not UTF-8 text (invalid byte at offset {exc.start}); "
            "TOML files must be saved as UTF-8"
        ) from exc
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    return parse_config(table, base_dir=path.parent, path=path)


def parse_config(
    table: Mapping[str, Any], *, base_dir: Path = Path("."), path: Path | None = None
) -> DaemonConfig:
    """Validate a parsed configuration table; see :func:`load_config`.

    Relative paths (models, the state directory) are resolved against ``base_dir``.
    """
    errors: list[str] = []
    _check_keys(table, _TOP_KEYS, "the top level", errors)

    device_table = _table(table, "device", errors, required=True)
    _check_keys(device_table, _DEVICE_KEYS, "[device]", errors)
    device = _name(device_table.get("id"), "[device] id", errors)
    state_dir = _path(
        device_table.get("state_dir", "/var/lib/edgemon"), "[device] state_dir", base_dir, errors
    )

    sensors = _parse_sensors(table.get("sensors"), base_dir, errors)

    mqtt = None
    if "mqtt" in table:
        from edgemon.publish.settings import parse_mqtt_table

        mqtt = parse_mqtt_table(_table(table, "mqtt", errors), errors, where="mqtt")

    logging_table = _table(table, "logging", errors)
    _check_keys(logging_table, _LOGGING_KEYS, "[logging]", errors)
    log_level = logging_table.get("level", "info")
    if log_level not in LOG_LEVELS:
        errors.append(f"[logging] level must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")

    if errors:
        where = f"{path}: " if path else ""
        raise ConfigError(f"{where}{len(errors)} invalid setting(s):\n  - " + "\n  - ".join(errors))
    return DaemonConfig(
        device=device,
        state_dir=state_dir,
        sensors=sensors,
        mqtt=mqtt,
        log_level=log_level,
        path=path,
    )


def create_state_dir(path: Path, setting: str) -> None:
    """Create the state directory if it is missing, and check that files can be written in it.

    Parameters
    ----------
    path : Path
        The directory that contains the outbox.
    setting : str
        Where the path was set, for the message, e.g. ``"[device] state_dir"``.

    Raises
    ------
    ConfigError
        If the directory cannot be created, or a file cannot be created in it.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
        # Create and delete a file, because an existing directory can sit on a read-only filesystem.
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if isinstance(exc, FileExistsError) and not path.is_dir():
            reason = "it exists and is not a directory"
        elif exc.filename is not None and str(exc.filename) != str(path):
            reason += f" ({exc.filename})"
        raise ConfigError(
            f"state directory {path} cannot be created or written: {reason}; set {setting} "
            "to a directory that edgemon can create, or create it for the user edgemon runs as"
        ) from exc


def _parse_sensors(value: Any, base_dir: Path, errors: list[str]) -> tuple[SensorConfig, ...]:
    from edgemon.sources import check_source_options

    if value is None:
        errors.append(
            "missing [[sensors]]: configure at least one sensor with a source and a model"
        )
        return ()
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        errors.append("sensors must be an array of tables, written as [[sensors]]")
        return ()
    sensors = []
    seen: set[str] = set()
    for number, item in enumerate(value, start=1):
        where = f"[[sensors]] #{number}"
        _check_keys(item, _SENSOR_KEYS, where, errors)
        name = _name(item.get("name"), f"{where} name", errors)
        if name in seen:
            errors.append(
                f"{where} name {name!r} is used by another sensor; sensor names must be unique"
            )
        seen.add(name)
        model = _path(item.get("model"), f"{where} model", base_dir, errors)
        if model is not None and not model.is_file():
            errors.append(f"{where} model file not found: {model}; train one with 'edgemon train'")

        source = item.get("source")
        kind, options = "", {}
        if not isinstance(source, dict):
            errors.append(f"missing {where} source table: add [sensors.source] with a 'kind' key")
        else:
            kind = source.get("kind", "")
            options = {key: val for key, val in source.items() if key != "kind"}
            if not kind:
                errors.append(f'missing {where} source kind, for example kind = "udp"')
            else:
                errors.extend(
                    f"{where}: {problem}" for problem in check_source_options(kind, options)
                )

        window = item.get("window")
        if window is not None:
            window = _integer(window, f"{where} window", errors, minimum=16)
        hop = item.get("hop")
        if hop is not None:
            hop = _integer(hop, f"{where} hop", errors, minimum=1)
        debounce = _integer(item.get("debounce", 1), f"{where} debounce", errors, minimum=1)
        queue_blocks = _integer(
            item.get("queue_blocks", 64), f"{where} queue_blocks", errors, minimum=1
        )
        backend = item.get("backend", "auto")
        if backend not in BACKENDS:
            errors.append(f"{where} backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        silence_timeout = item.get("silence_timeout")
        if silence_timeout is not None:
            silence_timeout = _seconds(silence_timeout, f"{where} silence_timeout", errors)
        sensors.append(
            SensorConfig(
                name=name,
                model=model,
                source_kind=kind,
                source_options=options,
                window=window,
                hop=hop,
                debounce=debounce,
                queue_blocks=queue_blocks,
                backend=backend,
                silence_timeout=silence_timeout,
            )
        )
    _check_udp_endpoints(sensors, errors)
    return tuple(sensors)


def _check_udp_endpoints(sensors: list[SensorConfig], errors: list[str]) -> None:
    """Report UDP sources that would bind the same port as an earlier sensor.

    Hosts are compared by the addresses they resolve to, so ``localhost``
    and ``127.0.0.1`` are the same. Two addresses overlap when they are
    equal, or when one is the wildcard of its family (``0.0.0.0``, ``::``),
    which binds the port on every interface. The IPv6 wildcard also binds
    IPv4, as on Linux by default.
    """
    from edgemon.sources.udp import UdpSource

    bound: list[tuple[frozenset[tuple[int, str]], int, str, str]] = []
    for sensor in sensors:
        if sensor.source_kind != "udp":
            continue
        values, problems = UdpSource.validate(sensor.source_options)
        if problems or values["port"] == 0:
            continue  # invalid options (reported above), or a port picked by the system
        host, port = values["host"], values["port"]
        addresses = _bind_addresses(host)
        if addresses is None:
            continue  # not resolvable: the source reports it when it opens
        for other_addresses, other_port, other_host, other_name in bound:
            if port == other_port and _overlap(addresses, other_addresses):
                errors.append(
                    f"sensor {sensor.name!r}: udp {host}:{port} overlaps the source of sensor "
                    f"{other_name!r} ({other_host}:{other_port}); give each udp source its own port"
                )
                break
        bound.append((addresses, port, host, sensor.name))


def _bind_addresses(host: str) -> frozenset[tuple[int, str]] | None:
    """Return the (family, address) pairs that binding ``host`` may use, or None if unresolvable."""
    from edgemon.sources.udp import address_family

    family = address_family(host)
    try:
        infos = socket.getaddrinfo(host or None, 0, family, socket.SOCK_DGRAM, 0, socket.AI_PASSIVE)
    except (OSError, UnicodeError):
        return None
    addresses = set()
    for info_family, *_, address in infos:
        ip = ipaddress.ip_address(address[0].split("%")[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            addresses.add((socket.AF_INET, str(ip.ipv4_mapped)))
        else:
            addresses.add((info_family, str(ip)))
    return frozenset(addresses)


def _overlap(first: frozenset[tuple[int, str]], second: frozenset[tuple[int, str]]) -> bool:
    for family, address in first:
        for other_family, other_address in second:
            if address == other_address and family == other_family:
                return True
            wildcards = {address, other_address} & _WILDCARDS
            if wildcards and (family == other_family or "::" in wildcards):
                return True
    return False


#: Addresses that bind a port on every interface of their family.
_WILDCARDS = frozenset({"0.0.0.0", "::"})


def _table(
    table: Mapping[str, Any], key: str, errors: list[str], *, required: bool = False
) -> Mapping[str, Any]:
    value = table.get(key)
    if value is None:
        if required:
            errors.append(f"missing [{key}] table")
        return {}
    if not isinstance(value, dict):
        errors.append(f"[{key}] must be a table, got {type(value).__name__}")
        return {}
    return value


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str, errors: list[str]) -> None:
    for key in table:
        if key not in allowed:
            errors.append(
                f"unknown key {key!r} in {where}; valid keys: {', '.join(sorted(allowed))}"
            )


def _name(value: Any, where: str, errors: list[str]) -> str:
    if value is None:
        errors.append(f"missing {where}")
        return ""
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        errors.append(
            f"{where} must be 1-64 lowercase letters, digits, '-' or '_' (it becomes an MQTT "
            f"topic level), got {value!r}"
        )
        return ""
    return value


def _path(value: Any, where: str, base_dir: Path, errors: list[str]) -> Path | None:
    if value is None:
        errors.append(f"missing {where}")
        return None
    if not isinstance(value, str) or not value:
        errors.append(f"{where} must be a path string, got {value!r}")
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base_dir / path).resolve()


def _integer(value: Any, where: str, errors: list[str], *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        errors.append(f"{where} must be an integer >= {minimum}, got {value!r}")
        return minimum
    return value


def _seconds(value: Any, where: str, errors: list[str]) -> float | None:
    valid = isinstance(value, int | float) and not isinstance(value, bool)
    if not valid or not math.isfinite(value) or value <= 0:
        errors.append(f"{where} must be a positive number of seconds, got {value!r}")
        return None
    return float(value)
