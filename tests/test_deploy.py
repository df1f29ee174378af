"""Tests of deploy/install.sh, deploy/fleet.sh and the systemd unit.

No test changes the machine it runs on: install.sh runs with ``--root`` into
``tmp_path``, and fleet.sh reaches its "hosts" through stand-in ssh and scp
commands (``EDGEMON_SSH``, ``EDGEMON_SCP``) that run each command in a folder
per host. systemd is not PID 1 here, so the unit is checked with
``systemd-analyze`` and its seccomp filters are rebuilt by tests/unit_sandbox.py.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import paho.mqtt.publish as mqtt_publish
import pytest
from brokers import HOST, Subscriber, free_port

REPOSITORY = Path(__file__).resolve().parents[1]
INSTALL = REPOSITORY / "deploy" / "install.sh"
FLEET = REPOSITORY / "deploy" / "fleet.sh"
UNIT = REPOSITORY / "systemd" / "edgemon.service"
EXAMPLE_CONFIG = REPOSITORY / "deploy" / "edgemon.toml"
SANDBOX = Path(__file__).with_name("unit_sandbox.py")
VENV_BIN = Path(sys.executable).parent
EDGEMON = [sys.executable, "-m", "edgemon.cli"]
CWRU_EXCERPT = REPOSITORY / "edgemon" / "data" / "cwru"
# Files a source tree needs for `pip wheel` and for install.sh to find its unit and config.
SOURCE_ITEMS = (
    "pyproject.toml",
    "setup.py",
    "README.md",
    "edgemon",
    "simulators",
    "deploy",
    "systemd",
)

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed"
)


def run_script(
    script: Path, *args: str | Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def copy_source_tree(target: Path) -> Path:
    """Copy what install.sh needs of the repository, so that no test writes into it."""
    target.mkdir(parents=True)
    for item in SOURCE_ITEMS:
        source = REPOSITORY / item
        if source.is_dir():
            shutil.copytree(
                source,
                target / item,
                ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.so"),
            )
        else:
            shutil.copy2(source, target / item)
    return target


def build_wheel(source: Path, out: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(out),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return next(out.glob("edgemon-*.whl"))


# --- install.sh: arguments and pre-flight checks ---------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus"], "unknown argument '--bogus'"),
        (["--source"], "--source needs a value"),
        (["--source=x"], "write '--source x' instead of '--source=x'"),
        (["--source", "/nonexistent/edgemon"], "--source not found: /nonexistent/edgemon"),
        (["--source", "{tmp}/notes.txt"], "--source must be a folder or an edgemon wheel"),
        (["--source", "{tmp}"], "is not an edgemon source tree"),
        (["--model", "{tmp}/missing.onnx"], "model file not found"),
        (["--config", "{tmp}/missing.toml"], "config file not found"),
        (["--wheelhouse", "{tmp}/wheels"], "wheelhouse folder not found"),
        (["--extras", "pi;reboot"], "--extras must be comma-separated extra names"),
        (["--purge"], "--purge only goes with --uninstall"),
        (
            ["--uninstall", "--enable"],
            "--uninstall cannot be combined with --model, --config or --enable",
        ),
        (["--root", "/"], "--root / installs into the running system"),
    ],
)
def test_install_rejects_bad_arguments(tmp_path, args, message):
    (tmp_path / "notes.txt").write_text("not a wheel\n")
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    # --root and an absent interpreter keep a wrongly accepted command from installing anything.
    safety = ["--root", str(tmp_path / "root"), "--python", str(tmp_path / "no-python")]
    result = (
        run_script(INSTALL, *safety, *args) if "--root" not in args else run_script(INSTALL, *args)
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Try deploy/install.sh --help" in result.stderr


def test_install_help_lists_options():
    result = run_script(INSTALL, "--help")
    assert result.returncode == 0
    for option in (
        "--source",
        "--model",
        "--config",
        "--enable",
        "--extras",
        "--root",
        "--uninstall",
        "--purge",
    ):
        assert option in result.stdout


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is not installed")
def test_install_refuses_without_root():
    if os.geteuid() == 0:
        # Run as the user nobody (uid 65534) from a world-readable copy, because
        # the clone may sit in a folder only root can enter, such as /root.
        folder = Path(tempfile.mkdtemp(prefix="edgemon-install-"))
        try:
            folder.chmod(0o755)
            script = copy_source_tree(folder / "source") / "deploy" / "install.sh"
            for path in [folder / "source", *(folder / "source").rglob("*")]:
                path.chmod(0o755 if path.is_dir() else 0o644)
            nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
            result = subprocess.run(
                [*nobody, "bash", str(script)], capture_output=True, text=True, timeout=60
            )
        finally:
            shutil.rmtree(folder)
    else:
        result = subprocess.run(["bash", str(INSTALL)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "must run as root" in result.stderr
    assert "sudo" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="only root gets past the root check")
@pytest.mark.skipif(
    Path("/run/systemd/system").exists(),
    reason="systemd runs here: the script would really install",
)
def test_install_refuses_without_systemd():
    result = run_script(INSTALL)
    assert result.returncode == 1
    assert "systemd is not running on this machine" in result.stderr
    assert "--root DIR" in result.stderr


def fake_python(tmp_path: Path, failing_check: str) -> Path:
    """A python3 stand-in that fails the one check whose code contains ``failing_check``."""
    path = tmp_path / "python3"
    path.write_text(
        textwrap.dedent(
            f"""\
            #!/bin/sh
            case "$*" in
              *{failing_check}*) exit 1 ;;
            esac
            exec {sys.executable} "$@"
            """
        )
    )
    path.chmod(0o755)
    return path


@pytest.mark.parametrize(
    ("failing_check", "message"),
    [
        ("ensurepip", "install python3-venv: sudo apt-get install -y python3-venv"),
        ("version_info", "edgemon needs Python >= 3.11"),
    ],
)
def test_install_checks_python(tmp_path, failing_check, message):
    python = fake_python(tmp_path, failing_check)
    result = run_script(INSTALL, "--root", tmp_path / "root", "--python", python)
    assert result.returncode == 1
    assert message in result.stderr
    assert not (tmp_path / "root" / "opt" / "edgemon" / "venv").exists()


def test_install_names_missing_python(tmp_path):
    result = run_script(INSTALL, "--root", tmp_path / "root", "--python", tmp_path / "python9")
    assert result.returncode == 1
    assert f"Python interpreter '{tmp_path / 'python9'}' not found" in result.stderr


# --- install.sh: a staged install --------------------------------------------------------


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """Install into a --root folder twice from a copy of the repository, with its own script.

    The first run creates everything; before the second, the config is edited,
    as a user would, and a model is given with --model.
    """
    base = tmp_path_factory.mktemp("install")
    source = copy_source_tree(base / "source")
    root = base / "root"
    script = source / "deploy" / "install.sh"
    first = run_script(script, "--root", root, "--python", sys.executable, timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr

    config = root / "etc" / "edgemon" / "edgemon.toml"
    snapshot = {"config_after_first": config.read_bytes()}
    config.write_text(config.read_text() + "# edited on the device\n")
    model = base / "model.onnx"
    model.write_bytes(b"model bytes")
    second = run_script(
        script, "--root", root, "--python", sys.executable, "--model", model, timeout=600
    )
    assert second.returncode == 0, second.stdout + second.stderr
    return {
        "root": root,
        "source": source,
        "first": first,
        "second": second,
        "model": model,
        **snapshot,
    }


@pytest.mark.slow
def test_install_creates_working_venv(staged):
    edgemon = staged["root"] / "opt" / "edgemon" / "venv" / "bin" / "edgemon"
    version = subprocess.run([edgemon, "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("edgemon ")
    assert "installed edgemon" in staged["first"].stdout


@pytest.mark.slow
def test_install_says_what_root_skips(staged):
    assert "skipping the user edgemon, file ownership and systemctl" in staged["first"].stdout


@pytest.mark.slow
def test_install_config_only_when_absent(staged):
    config = staged["root"] / "etc" / "edgemon" / "edgemon.toml"
    assert staged["config_after_first"] == EXAMPLE_CONFIG.read_bytes()
    assert config.read_text().endswith("# edited on the device\n")
    assert "kept the existing" in staged["second"].stdout
    assert mode(config) == 0o640
    assert mode(config.parent) == 0o750


@pytest.mark.slow
def test_install_model_option(staged):
    model = staged["root"] / "etc" / "edgemon" / "model.onnx"
    assert model.read_bytes() == b"model bytes"
    assert mode(model) == 0o640
    assert not list(model.parent.glob("*.partial.*"))


@pytest.mark.slow
def test_install_unit_file(staged):
    unit = staged["root"] / "etc" / "systemd" / "system" / "edgemon.service"
    assert unit.read_bytes() == UNIT.read_bytes()
    assert mode(unit) == 0o644
    assert "is unchanged" in staged["second"].stdout


@pytest.mark.slow
def test_install_leaves_source_clean(staged):
    leftovers = [
        p.name
        for p in staged["source"].iterdir()
        if p.name == "build" or p.name.endswith(".egg-info")
    ]
    assert leftovers == []


@pytest.mark.slow
def test_install_reuses_venv(staged):
    assert "using the virtual environment" in staged["second"].stdout


@pytest.mark.slow
@needs_systemd_analyze
def test_installed_unit_verifies(staged, tmp_path):
    # systemd-analyze verify checks that ExecStart= names an executable, so point the
    # unit at the staged virtual environment instead of /opt/edgemon/venv.
    venv = staged["root"] / "opt" / "edgemon" / "venv"
    unit = tmp_path / "edgemon.service"
    text = (staged["root"] / "etc" / "systemd" / "system" / "edgemon.service").read_text()
    unit.write_text(text.replace("/opt/edgemon/venv", str(venv)))
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_uninstall_keeps_config_and_state(tmp_path):
    root = tmp_path / "root"
    (root / "opt" / "edgemon" / "venv" / "bin").mkdir(parents=True)
    (root / "etc" / "systemd" / "system").mkdir(parents=True)
    (root / "etc" / "systemd" / "system" / "edgemon.service").write_text("[Service]\n")
    (root / "etc" / "edgemon").mkdir(parents=True)
    (root / "var" / "lib" / "edgemon").mkdir(parents=True)

    uninstalled = run_script(INSTALL, "--root", root, "--uninstall")
    assert uninstalled.returncode == 0, uninstalled.stderr
    assert not (root / "opt" / "edgemon").exists()
    assert not (root / "etc" / "systemd" / "system" / "edgemon.service").exists()
    assert (root / "etc" / "edgemon").is_dir()
    assert (root / "var" / "lib" / "edgemon").is_dir()

    purged = run_script(INSTALL, "--root", root, "--uninstall", "--purge")
    assert purged.returncode == 0, purged.stderr
    assert not (root / "etc" / "edgemon").exists()
    assert not (root / "var" / "lib" / "edgemon").exists()


# --- the unit ----------------------------------------------------------------------------


@needs_systemd_analyze
def test_unit_exposure_score():
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "security", "--offline=true", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if "--offline" in result.stderr:
        pytest.skip("this systemd-analyze has no --offline")
    found = re.search(r"Overall exposure level for edgemon\.service: (\d+\.\d+)", result.stdout)
    assert found, result.stdout + result.stderr
    # 1.4 with systemd 252; what remains is network, SPI/I2C device access and shared users.
    assert float(found.group(1)) <= 1.5


def sandbox_available() -> bool:
    import ctypes.util

    return SYSTEMD_ANALYZE is not None and ctypes.util.find_library("seccomp") is not None


@pytest.mark.skipif(not sandbox_available(), reason="needs systemd-analyze and libseccomp")
def test_sandbox_blocks_privileged_calls():
    code = "import os\ntry:\n    os.setuid(0)\nexcept PermissionError:\n    print('blocked')\n"
    result = subprocess.run(
        [sys.executable, str(SANDBOX), str(UNIT), "--", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "blocked"


def daemon_config(path: Path, model: Path, broker_url: str, port: int) -> Path:
    path.write_text(
        textwrap.dedent(
            f"""\
            [device]
            id = "sandboxed"
            state_dir = "{path.parent / "state"}"

            [[sensors]]
            name = "de"
            model = "{model}"

            [sensors.source]
            kind = "udp"
            host = "127.0.0.1"
            port = {port}
            sample_rate = 12000
            channels = ["DE"]

            [mqtt]
            url = "{broker_url}"
            """
        )
    )
    return path


@pytest.mark.slow
@pytest.mark.skipif(not sandbox_available(), reason="needs systemd-analyze and libseccomp")
def test_daemon_runs_under_unit_filters(tmp_path, excerpt_model, broker):
    config = daemon_config(tmp_path / "edgemon.toml", excerpt_model, broker.url, free_port())
    sandboxed = [
        sys.executable,
        str(SANDBOX),
        str(UNIT),
        "--",
        *EDGEMON,
        "run",
        "--config",
        str(config),
    ]

    check = subprocess.run([*sandboxed, "--check"], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr

    subscriber = Subscriber(broker, "edgemon/sandboxed/#")
    daemon = subprocess.Popen(sandboxed, stderr=subprocess.PIPE, text=True)
    try:
        for line in daemon.stderr:
            if "monitoring 1 sensor" in line:
                break
        port = re.search(r"port = (\d+)", config.read_text()).group(1)
        recording = CWRU_EXCERPT / "12k_Drive_End_IR007_1_106.mat"
        sim = subprocess.run(
            [
                sys.executable,
                "-m",
                "edgemon_sim",
                "--input",
                str(recording),
                "--channel",
                "DE",
                "--udp",
                f"127.0.0.1:{port}",
                "--speed",
                "4",
                "--seconds",
                "2",
                "--progress",
                "0",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert sim.returncode == 0, sim.stderr
        assert subscriber.wait_for(
            lambda messages: any(m.topic.endswith("/state") for m in messages), 60
        )
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, errors = daemon.communicate(timeout=60)
        subscriber.close()
    assert daemon.returncode == 0, errors
    assert "Operation not permitted" not in errors


# --- edgemon run --check, the unit's ExecStartPre= -----------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            EXAMPLE_CONFIG.read_text().replace("/etc/edgemon/model.onnx", "missing.onnx"),
            "model file not found",
        ),
        ('[device]\nid = "Press 3"\n', "[device] id must be 1-64 lowercase letters"),
        ("[device\n", "is not valid TOML"),
        (None, "config file not found"),
    ],
    ids=["missing-model", "invalid-id", "invalid-toml", "missing-file"],
)
def test_check_rejects_bad_config(tmp_path, text, message):
    config = tmp_path / "edgemon.toml"
    if text is not None:
        config.write_text(text)
    result = subprocess.run(
        [*EDGEMON, "run", "--config", str(config), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert message in result.stderr


# --- fleet.sh ----------------------------------------------------------------------------

FAKE_SSH = """\
#!/bin/bash
# Stand-in for ssh: runs the command in $FLEET_HOSTS/<destination> as if logged in there,
# with /opt/edgemon mapped into that folder and the stand-ins in $FLEET_BIN first on PATH.
set -euo pipefail
destination="$1"
shift
home="$FLEET_HOSTS/$destination"
mkdir -p "$home"
cd "$home"
if [ -e unreachable ]; then
  echo "ssh: connect to host $destination: No route to host" >&2
  exit 255
fi
command="${*//\\/opt\\/edgemon/$home/root/opt/edgemon}"
echo "$*" >>ssh.log
PATH="$FLEET_BIN:$PATH" HOME="$home" bash -c "$command"
"""

FAKE_SCP = """\
#!/bin/bash
# Stand-in for scp: copies FILE... into $FLEET_HOSTS/<destination>/<folder>.
set -euo pipefail
target="${@: -1}"
destination="${target%%:*}"
folder="${target#*:}"
mkdir -p "$FLEET_HOSTS/$destination/$folder"
cp "${@:1:$#-1}" "$FLEET_HOSTS/$destination/$folder"
"""

FAKE_SUDO = """\
#!/bin/bash
# Stand-in for sudo on a host: records the command and keeps a copy of the roll-out folder.
# With FLEET_RUN_INSTALL set it runs install.sh, always with --root inside the host folder.
set -euo pipefail
[ "$1" = -n ] && shift
echo "$*" >>sudo.log
rm -rf received && cp -R edgemon-rollout received
[ ! -e fail ] || { echo "install.sh: error: pip could not install" >&2; exit 1; }
if [ -n "${FLEET_RUN_INSTALL:-}" ]; then
  "$@" --root "$PWD/root" --python "$FLEET_PYTHON"
fi
"""

# Makes the remote command take its sudo branch even where the tests run as root.
FAKE_ID = """\
#!/bin/bash
if [ "${1:-}" = -u ]; then echo 1000; else exec /usr/bin/id "$@"; fi
"""

FAKE_SYSTEMCTL = """\
#!/bin/bash
# Stand-in for systemctl on a host: is-active prints the content of ./active.
case "$1" in
  is-active)
    state="$(cat active 2>/dev/null || echo inactive)"
    echo "$state"
    [ "$state" = active ]
    ;;
  show) echo "monitoring 1 sensor(s)" ;;
  *) exit 1 ;;
esac
"""


class Fleet:
    """A fleet of stand-in hosts, each a folder under ``hosts``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.hosts = root / "hosts"
        self.bin = root / "bin"
        self.hosts.mkdir()
        self.bin.mkdir()
        for name, text in [
            ("ssh", FAKE_SSH),
            ("scp", FAKE_SCP),
            ("sudo", FAKE_SUDO),
            ("id", FAKE_ID),
            ("systemctl", FAKE_SYSTEMCTL),
        ]:
            path = self.bin / name
            path.write_text(text)
            path.chmod(0o755)
        self.wheel = root / "edgemon-0.1.0-py3-none-any.whl"
        self.wheel.write_bytes(b"wheel bytes")
        self.model = root / "model.onnx"
        self.model.write_bytes(b"model bytes")
        self.config = root / "fleet.toml"
        self.config.write_text(
            EXAMPLE_CONFIG.read_text().replace('id = "rig1"', 'id = "@DEVICE_ID@"')
        )
        self.hosts_file = root / "hosts.txt"

    def host(self, destination: str) -> Path:
        path = self.hosts / destination
        path.mkdir(parents=True, exist_ok=True)
        return path

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "EDGEMON_SSH": str(self.bin / "ssh"),
            "EDGEMON_SCP": str(self.bin / "scp"),
            "FLEET_HOSTS": str(self.hosts),
            "FLEET_BIN": str(self.bin),
            "FLEET_PYTHON": sys.executable,
            **extra,
        }

    def deploy(
        self, *args: str | Path, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess:
        return run_script(
            FLEET,
            "deploy",
            "--hosts",
            self.hosts_file,
            "--wheel",
            self.wheel,
            "--model",
            self.model,
            "--config",
            self.config,
            *args,
            env=env or self.env(),
            timeout=timeout,
        )


@pytest.fixture
def fleet(tmp_path):
    fleet = Fleet(tmp_path)
    (tmp_path / "press-4.toml").write_text(
        '[device]\nid = "@DEVICE_ID@"\n# press 4 has two sensors\n'
    )
    fleet.hosts_file.write_text(
        "# destination [id=DEVICE_ID] [config=FILE]\n"
        "pi@press-1.plant.lan\n"
        "\n"
        "pi@10.0.4.17 id=press-2   # named by address\n"
        "root@Press-3\n"
        "pi@press-4.plant.lan config=press-4.toml\n"
    )
    return fleet


def test_fleet_dry_run_prints_commands(fleet):
    result = fleet.deploy("--dry-run")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "dry run: nothing is copied or changed" in out
    for destination, device in [
        ("pi@press-1.plant.lan", "press-1"),
        ("pi@10.0.4.17", "press-2"),
        ("root@Press-3", "press-3"),
    ]:
        assert f"[{destination}] fleet.sh: device id {device}, config from {fleet.config}" in out
        assert (
            f"[{destination}] would run: {fleet.bin / 'scp'} {FLEET.parent / 'install.sh'}" in out
        )
        assert f"{destination}:edgemon-rollout/deploy/" in out
    assert (
        "--source edgemon-rollout/edgemon-0.1.0-py3-none-any.whl --model edgemon-rollout/model.onnx"
        in out
    )
    assert "--config edgemon-rollout/edgemon.toml --enable" in out
    press_4 = fleet.root / "press-4.toml"
    assert f"[pi@press-4.plant.lan] fleet.sh: device id press-4, config from {press_4}" in out
    assert "nothing was changed" in out


def test_fleet_dry_run_contacts_nobody(fleet):
    result = fleet.deploy("--dry-run")
    assert result.returncode == 0, result.stderr
    assert list(fleet.hosts.iterdir()) == []


def test_fleet_deploy_through_stand_ins(fleet):
    result = fleet.deploy()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "deploy succeeded on all 4 hosts" in result.stdout

    for destination, device in [
        ("pi@press-1.plant.lan", "press-1"),
        ("pi@10.0.4.17", "press-2"),
        ("root@Press-3", "press-3"),
    ]:
        home = fleet.hosts / destination
        received = home / "received"
        assert f'id = "{device}"' in (received / "edgemon.toml").read_text()
        assert (received / "model.onnx").read_bytes() == b"model bytes"
        assert (received / fleet.wheel.name).read_bytes() == b"wheel bytes"
        assert (received / "deploy" / "install.sh").read_bytes() == INSTALL.read_bytes()
        assert (received / "systemd" / "edgemon.service").read_bytes() == UNIT.read_bytes()
        assert (home / "sudo.log").read_text() == (
            f"bash edgemon-rollout/deploy/install.sh --source edgemon-rollout/{fleet.wheel.name} "
            "--model edgemon-rollout/model.onnx --config edgemon-rollout/edgemon.toml --enable\n"
        )
        assert not (home / "edgemon-rollout").exists()

    press_4 = (fleet.hosts / "pi@press-4.plant.lan" / "received" / "edgemon.toml").read_text()
    assert press_4 == '[device]\nid = "press-4"\n# press 4 has two sensors\n'


def test_fleet_no_start_skips_enable(fleet):
    result = fleet.deploy("--no-start")
    assert result.returncode == 0, result.stderr
    assert "--enable" not in (fleet.hosts / "root@Press-3" / "sudo.log").read_text()


def test_fleet_reports_failed_hosts(fleet):
    (fleet.host("root@Press-3") / "fail").touch()
    (fleet.host("pi@10.0.4.17") / "unreachable").touch()
    result = fleet.deploy("--jobs", "2")
    assert result.returncode == 1
    assert "deploy failed on 2 of 4 hosts: pi@10.0.4.17 root@Press-3" in result.stdout
    assert "[root@Press-3] install.sh: error: pip could not install" in result.stdout
    assert (fleet.hosts / "pi@press-1.plant.lan" / "sudo.log").exists()


@pytest.mark.parametrize(
    ("hosts", "message"),
    [
        ("pi@10.0.4.17\n", "hosts.txt:1: pi@10.0.4.17 names no device; add id=DEVICE_ID"),
        (
            "pi@press-1\npi@press-1.lan\n",
            "hosts.txt:2: device id 'press-1' is already used by pi@press-1",
        ),
        ("pi@press-1 id=Press_1!\n", "device id 'Press_1!' is invalid"),
        ("pi@press-1 role=spare\n", "hosts.txt:1: unknown field 'role=spare'"),
        ("pi@press-1 config=missing.toml\n", "hosts.txt:1: config file not found"),
        ("# nobody yet\n", "lists no hosts"),
    ],
)
def test_fleet_rejects_bad_hosts_file(fleet, hosts, message):
    fleet.hosts_file.write_text(hosts)
    result = fleet.deploy("--dry-run")
    assert result.returncode == 1
    assert message in result.stderr


def test_fleet_needs_placeholder_for_shared_config(fleet):
    fleet.config.write_text('[device]\nid = "rig1"\n')
    result = fleet.deploy("--dry-run")
    assert result.returncode == 1
    assert "has no @DEVICE_ID@, so all 3 devices would publish under the same id" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "name a command: deploy or status"),
        (["restart"], "unknown command 'restart'"),
        (["deploy", "--hosts", "{hosts}"], "deploy needs --wheel FILE"),
        (
            ["deploy", "--hosts", "{hosts}", "--wheel", "{model}"],
            "--wheel must be an edgemon wheel",
        ),
        (["status"], "--hosts FILE is required"),
        (["status", "--hosts", "{hosts}", "--jobs", "0"], "--jobs must be a whole number >= 1"),
        (
            ["status", "--hosts", "{hosts}", "--model", "{model}"],
            "status takes only --hosts, --mqtt, --watch and --dry-run",
        ),
    ],
)
def test_fleet_rejects_bad_arguments(fleet, args, message):
    args = [
        arg.replace("{hosts}", str(fleet.hosts_file)).replace("{model}", str(fleet.model))
        for arg in args
    ]
    result = run_script(FLEET, *args, env=fleet.env())
    assert result.returncode == 2
    assert message in result.stderr


def test_fleet_status_per_host(fleet):
    fleet.hosts_file.write_text("pi@press-1\npi@press-2\n")
    (fleet.host("pi@press-1") / "active").write_text("active\n")
    (fleet.host("pi@press-2") / "active").write_text("failed\n")
    edgemon = fleet.host("pi@press-1") / "root" / "opt" / "edgemon" / "venv" / "bin" / "edgemon"
    edgemon.parent.mkdir(parents=True)
    edgemon.write_text("#!/bin/sh\necho edgemon 0.1.0\n")
    edgemon.chmod(0o755)

    result = run_script(FLEET, "status", "--hosts", fleet.hosts_file, env=fleet.env())
    assert result.returncode == 1
    assert (
        "[pi@press-1] fleet.sh: press-1: active, edgemon 0.1.0, monitoring 1 sensor(s)"
        in result.stdout
    )
    assert (
        "[pi@press-2] fleet.sh: press-2: failed, not-installed, monitoring 1 sensor(s)"
        in result.stdout
    )
    assert "status check failed on 1 of 2 hosts: pi@press-2" in result.stdout


def test_fleet_status_unreachable_host(fleet):
    fleet.hosts_file.write_text("pi@press-1\n")
    (fleet.host("pi@press-1") / "unreachable").touch()
    result = run_script(FLEET, "status", "--hosts", fleet.hosts_file, env=fleet.env())
    assert result.returncode == 1
    assert "press-1: unreachable (ssh failed)" in result.stdout


def test_fleet_status_watches_broker(fleet, broker):
    fleet.hosts_file.write_text("pi@press-1\n")
    (fleet.host("pi@press-1") / "active").write_text("active\n")
    mqtt_publish.single(
        "edgemon/press-1/status", "online", qos=1, retain=True, hostname=HOST, port=broker.port
    )
    env = fleet.env(PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}")

    result = run_script(
        FLEET, "status", "--hosts", fleet.hosts_file, "--mqtt", broker.url, "--watch", "3", env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"press-1 status online \(retained\)", result.stdout), result.stdout


@pytest.mark.slow
def test_fleet_install_through_stand_in(staged, fleet, tmp_path):
    # A device that already runs edgemon: a copy of the staged install, venv included.
    home = fleet.host("pi@press-1")
    shutil.copytree(staged["root"], home / "root", symlinks=True)
    fleet.hosts_file.write_text("pi@press-1\n")
    fleet.wheel.unlink()
    fleet.wheel = build_wheel(staged["source"], tmp_path / "dist")

    result = fleet.deploy(env=fleet.env(FLEET_RUN_INSTALL="1"), timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    etc = home / "root" / "etc" / "edgemon"
    assert 'id = "press-1"' in (etc / "edgemon.toml").read_text()
    backups = list(etc.glob("edgemon.toml.bak-*"))
    assert len(backups) == 1
    assert backups[0].read_text().endswith("# edited on the device\n")
    assert (etc / "model.onnx").read_bytes() == b"model bytes"
    assert "--root: not enabling or starting the service" in result.stdout
    version = subprocess.run(
        [home / "root" / "opt" / "edgemon" / "venv" / "bin" / "edgemon", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert version.returncode == 0, version.stderr
