"""Mosquitto brokers for the tests, each on a free loopback port with its own config.

The ``broker_factory`` fixture starts ``mosquitto`` processes in ``tmp_path``
and stops them after the test. A :class:`Broker` can be stopped and started
again on the same port with the same persistence file, to stage an outage.
``tls_files`` makes a test CA, a server certificate for 127.0.0.1 and
localhost, a server certificate for another host name, and an unrelated CA,
with the ``openssl`` command. The shared broker on port 1883 is never used.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edgemon.publish.client import MqttPublisher
from edgemon.publish.settings import MqttSettings
from edgemon.states import StateEvent

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
HOST = "127.0.0.1"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@dataclass
class TlsFiles:
    """PEM files of a test PKI."""

    ca: Path
    server_cert: Path
    server_key: Path
    #: Server certificate signed by ``ca`` for the name ``wrong.example`` only.
    wrong_host_cert: Path
    wrong_host_key: Path
    #: A CA that signed none of the certificates above.
    other_ca: Path


@dataclass
class Broker:
    """One mosquitto process; see :meth:`BrokerFactory.__call__` for the options."""

    directory: Path
    port: int
    config: Path
    tls: bool = False
    websockets: bool = False
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        scheme = {
            (False, False): "mqtt",
            (True, False): "mqtts",
            (False, True): "ws",
            (True, True): "wss",
        }
        return f"{scheme[(self.tls, self.websockets)]}://{HOST}:{self.port}"

    @property
    def log(self) -> Path:
        return self.directory / "mosquitto.log"

    def start(self, timeout: float = 10.0) -> None:
        """Start mosquitto and wait until its port accepts connections."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("broker already running")
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"mosquitto exited with {self.process.returncode}:\n{self.log.read_text()}"
                )
            try:
                with socket.create_connection((HOST, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on port {self.port} within {timeout} s")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop mosquitto with SIGTERM, so that it writes its persistence file."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class BrokerFactory:
    """Create brokers in a test's ``tmp_path``; stop them all at teardown."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.brokers: list[Broker] = []

    def __call__(
        self,
        *,
        persistence: bool = False,
        tls: TlsFiles | None = None,
        server_cert: tuple[Path, Path] | None = None,
        users: dict[str, str] | None = None,
        acl: str | None = None,
        websockets: bool = False,
        start: bool = True,
    ) -> Broker:
        """Write a mosquitto config and start a broker.

        Parameters
        ----------
        persistence : bool
            Keep sessions and queued messages in ``mosquitto.db`` across restarts.
        tls : TlsFiles, optional
            Serve TLS with ``tls.server_cert`` (or ``server_cert``: (cert, key)).
        users : dict, optional
            User name -> password; anonymous clients are then refused.
        acl : str, optional
            Text of an ACL file.
        websockets : bool
            Speak MQTT over WebSocket instead of plain TCP.
        """
        directory = self.root / f"broker{len(self.brokers)}"
        directory.mkdir()
        port = free_port()
        lines = [
            # mosquitto drops root privileges to its own user unless configured to stay,
            # and that user cannot read the test's files.
            "user root",
            "per_listener_settings false",
            f"allow_anonymous {'false' if users else 'true'}",
            "max_queued_messages 0",
            "max_inflight_messages 20",
            "log_type all",
            "connection_messages true",
        ]
        if persistence:
            lines += [
                "persistence true",
                f"persistence_location {directory}/",
                "autosave_interval 1",
            ]
        if users:
            passwords = directory / "passwords"
            passwords.touch(mode=0o600)
            for user, password in users.items():
                subprocess.run([MOSQUITTO_PASSWD, "-b", str(passwords), user, password], check=True)
            lines.append(f"password_file {passwords}")
        if acl is not None:
            acl_file = directory / "acl"
            acl_file.write_text(acl)
            lines.append(f"acl_file {acl_file}")
        lines.append(f"listener {port} {HOST}")
        if websockets:
            lines.append("protocol websockets")
            # Mosquitto 2.0.11 exits with "Unable to start any listening
            # sockets" when all its listeners are WebSocket ones.
            lines.append(f"listener {free_port()} {HOST}")
        if tls is not None:
            cert, key = server_cert or (tls.server_cert, tls.server_key)
            lines += [
                f"cafile {tls.ca}",
                f"certfile {cert}",
                f"keyfile {key}",
                "require_certificate false",
            ]
        config = directory / "mosquitto.conf"
        config.write_text("\n".join(lines) + "\n")
        broker = Broker(directory, port, config, tls=tls is not None, websockets=websockets)
        self.brokers.append(broker)
        if start:
            broker.start()
        return broker

    def stop_all(self) -> None:
        for broker in self.brokers:
            broker.stop()


class Subscriber:
    """A paho subscriber that records every message it receives, in order.

    With ``persistent=True`` the broker keeps its session and queued QoS 1
    messages while it is away (clean_session False in MQTT 3.1.1, a session
    expiry interval in MQTT 5), and paho reconnects it after a broker restart.
    """

    def __init__(
        self,
        broker: Broker,
        topic: str,
        *,
        client_id: str = "test-subscriber",
        persistent: bool = False,
        protocol: int = mqtt.MQTTv5,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self.topic = topic
        if protocol == mqtt.MQTTv5:
            self.client = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol
            )
        else:
            self.client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=client_id,
                protocol=protocol,
                clean_session=not persistent,
            )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(0.2, 1.0)
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        properties = None
        clean_start: bool | int = mqtt.MQTT_CLEAN_START_FIRST_ONLY
        if protocol == mqtt.MQTTv5:
            properties = Properties(PacketTypes.CONNECT)
            if persistent:
                properties.SessionExpiryInterval = 3600
                clean_start = False
        self.client.connect(
            HOST, broker.port, keepalive=10, clean_start=clean_start, properties=properties
        )
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError(f"subscription to {topic} not acknowledged")

    def _on_connect(self, client, _userdata, _flags, reason, _props) -> None:
        if not reason.is_failure:
            client.subscribe(self.topic, qos=1)

    def _on_message(self, _client, _userdata, message) -> None:
        with self._cond:
            self.messages.append(message)
            self._cond.notify_all()

    def wait_for(self, predicate, timeout: float) -> bool:
        """Wait until ``predicate(messages)`` is true; return whether it became true in time."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self.messages), timeout)

    def payloads(self, suffix: str) -> list[dict]:
        """Decode the JSON payloads of the messages whose topic ends with ``suffix``."""
        with self._cond:
            return [json.loads(m.payload) for m in self.messages if m.topic.endswith(suffix)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def broker_factory(tmp_path: Path):
    """Start mosquitto brokers for one test: ``broker_factory(persistence=True, ...)``."""
    if not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto is not installed (apt-get install mosquitto mosquitto-clients)")
    factory = BrokerFactory(tmp_path)
    yield factory
    factory.stop_all()


@pytest.fixture
def broker(broker_factory: BrokerFactory) -> Broker:
    """A plain, anonymous mosquitto without persistence."""
    return broker_factory()


def state_event(index: int, *, sensor: str = "de", device: str = "rig1") -> StateEvent:
    """The state event of window ``index`` of a 12 kHz stream with a hop of 1024 samples."""
    return StateEvent(
        device=device,
        sensor=sensor,
        ts=datetime.now(UTC),
        cluster=index % 3,
        state=("normal", "inner_race", "outer_race")[index % 3],
        score=0.1 * index,
        model_id="test-model",
        window_start=index * 1024,
        window_samples=2048,
        sample_rate=12000.0,
        flags=("gap",) if index % 7 == 0 else (),
    )


@pytest.fixture
def publisher_factory(tmp_path: Path):
    """Create started publishers with ``publisher_factory(url, **settings_overrides)``.

    They are stopped at teardown.
    """
    publishers: list[MqttPublisher] = []

    def create(url: str, *, device: str = "rig1", sensors=("de",), health=None, **overrides):
        overrides.setdefault("reconnect_min_delay", 0.1)
        overrides.setdefault("reconnect_max_delay", 0.5)
        overrides.setdefault("connect_timeout", 5.0)
        settings = MqttSettings.from_url(url, **overrides)
        publisher = MqttPublisher(
            settings,
            device,
            state_dir=tmp_path / f"state-{device}",
            sensors={name: ("normal", "inner_race", "outer_race") for name in sensors},
            model_ids={name: "test-model" for name in sensors},
            health=health,
        )
        publisher.start()
        publishers.append(publisher)
        return publisher

    yield create
    for publisher in publishers:
        publisher.stop(timeout=5.0)


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    new_key = ["-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-subj", f"/CN={name}"]
    ca_extensions = [
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]
    _openssl("req", "-x509", *new_key, *ca_extensions, "-days", "2", "-out", str(cert))
    return cert, key


def _make_server_cert(
    directory: Path, name: str, ca: tuple[Path, Path], san: str
) -> tuple[Path, Path]:
    key, csr, cert = directory / f"{name}.key", directory / f"{name}.csr", directory / f"{name}.pem"
    extensions = directory / f"{name}.ext"
    extensions.write_text(
        f"subjectAltName={san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    new_key = ["-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-subj", f"/CN={name}"]
    _openssl("req", *new_key, "-out", str(csr))
    signer = ["-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial"]
    _openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        *signer,
        "-days",
        "2",
        "-extfile",
        str(extensions),
        "-out",
        str(cert),
    )
    return cert, key


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A test CA with two server certificates, and an unrelated CA, made with ``openssl``."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    directory = tmp_path_factory.mktemp("pki")
    ca = _make_ca(directory, "edgemon-test-ca")
    server = _make_server_cert(directory, "server", ca, "IP:127.0.0.1,DNS:localhost")
    wrong = _make_server_cert(directory, "wrong-host", ca, "DNS:wrong.example")
    other_ca, _ = _make_ca(directory, "other-ca")
    return TlsFiles(ca[0], server[0], server[1], wrong[0], wrong[1], other_ca)
