"""Subprocess parts of ``benchmarks/pipeline.py``: real ``edgemon`` commands and their costs.

Resident memory is read from ``/proc/PID/status`` (Linux only) while the
process runs, and CPU time from ``/proc/PID/stat``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from edgemon.data import CWRU_EXCERPT

PYTHON = sys.executable


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_mosquitto(directory: Path) -> tuple[subprocess.Popen, str] | None:
    """Start a Mosquitto on a free loopback port; return it and its URL, or None if missing."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        return None
    port = free_port()
    config = directory / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    process = subprocess.Popen(
        [binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, f"mqtt://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"mosquitto did not listen on port {port} within 10 s")


def cpu_seconds(pid: int) -> float:
    """Return the user plus system CPU time of a process and all its threads, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_kib(pid: int) -> dict[str, int]:
    """Return VmRSS and VmHWM (peak resident memory) of a process, KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(value.split()[0])
    return values


def wait_peak_kib(process: subprocess.Popen, interval: float = 0.02) -> int:
    """Wait for a child, polling its peak resident memory (VmHWM); return the last value read, KiB.

    The ``ru_maxrss`` that ``wait4`` reports would not do: Linux counts in it
    the memory of the parent that the child was forked from.
    """
    peak = 0
    while process.poll() is None:
        # The process may end between poll() and the read.
        with contextlib.suppress(OSError):
            peak = memory_kib(process.pid).get("VmHWM", peak)
        time.sleep(interval)
    return peak


def write_run_config(
    directory: Path, model: Path, udp_port: int, broker_url: str | None, backend: str = "auto"
) -> Path:
    config = directory / f"edgemon-{backend}.toml"
    mqtt = f'\n[mqtt]\nurl = "{broker_url}"\n' if broker_url else ""
    config.write_text(
        f'[device]\nid = "bench"\nstate_dir = "{directory / "state"}"\n\n'
        f'[[sensors]]\nname = "de"\nmodel = "{model}"\nbackend = "{backend}"\n\n'
        f'[sensors.source]\nkind = "udp"\nhost = "127.0.0.1"\nport = {udp_port}\n'
        f'sample_rate = 12000\nchannels = ["DE"]\n{mqtt}'
    )
    return config


def start_daemon(
    directory: Path, model: Path, broker_url: str | None, backend: str
) -> tuple[subprocess.Popen, int]:
    """Start ``edgemon run`` on a free UDP port; return it, once it monitors, and the port."""
    port = free_port(socket.SOCK_DGRAM)
    config = write_run_config(directory, model, port, broker_url, backend)
    log = directory / f"run-{backend}.log"
    with log.open("w") as stderr:
        daemon = subprocess.Popen(
            [PYTHON, "-m", "edgemon.cli", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    deadline = time.monotonic() + 60
    while "monitoring" not in log.read_text():
        if daemon.poll() is not None or time.monotonic() > deadline:
            daemon.kill()
            daemon.wait()
            raise RuntimeError(f"edgemon run did not start:\n{log.read_text()}")
        time.sleep(0.05)
    time.sleep(1.0)
    return daemon, port


def stop_daemon(daemon: subprocess.Popen) -> None:
    daemon.send_signal(signal.SIGTERM)
    try:
        daemon.wait(30)
    finally:
        if daemon.returncode is None:
            daemon.kill()
            daemon.wait()


def started_memory(
    directory: Path, model: Path, broker_url: str | None, backend: str
) -> dict[str, int]:
    """Return the memory of ``edgemon run`` with a model backend, after start-up."""
    daemon, _ = start_daemon(directory, model, broker_url, backend)
    try:
        return memory_kib(daemon.pid)
    finally:
        stop_daemon(daemon)


def measure_run_memory(
    directory: Path,
    model: Path,
    broker_url: str | None,
    stream_seconds: float,
    speed: float,
    *,
    window: int,
    hop: int,
) -> dict:
    """Measure memory and CPU of ``edgemon run`` fed by ``edgemon-sim`` for two stream lengths.

    ``window`` and ``hop`` are the model's, in samples, to count the windows.
    """
    daemon, port = start_daemon(directory, model, broker_url, "auto")
    try:
        result = {"started": memory_kib(daemon.pid)}
        recording = CWRU_EXCERPT / "12k_Drive_End_IR007_1_106.mat"
        cpu_before = cpu_seconds(daemon.pid)
        started = time.perf_counter()
        for label in ("stream 1", "stream 2"):
            subprocess.run(
                [
                    PYTHON,
                    "-m",
                    "edgemon_sim",
                    "--input",
                    str(recording),
                    "--channel",
                    "DE",
                    "--udp",
                    f"127.0.0.1:{port}",
                    "--speed",
                    str(speed),
                    "--loop",
                    "--seconds",
                    str(stream_seconds),
                    "--progress",
                    "0",
                ],
                check=True,
                capture_output=True,
            )
            result[label] = memory_kib(daemon.pid)
            if label == "stream 2":
                result["cpu"] = cpu_seconds(daemon.pid) - cpu_before
                result["wall"] = time.perf_counter() - started
            time.sleep(1.0)
    finally:
        stop_daemon(daemon)
    # The sender restarts its sample count once, so this is an estimate.
    result["windows"] = int(2 * stream_seconds * 12000 - window) // hop + 1
    result["speed"] = speed
    return result


def parse_importtime(stderr: str) -> tuple[float, list[tuple[str, float]], set[str]]:
    """Return the total import time (s), the top-level imports by cumulative time, all modules."""
    total = 0.0
    top = []
    modules = set()
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, cumulative, name = line.removeprefix("import time:").split("|")
        total += int(own) / 1e6
        modules.add(name.strip())
        # Nested imports are indented by two spaces per level.
        if len(name) - len(name.lstrip()) == 1:
            top.append((name.strip(), int(cumulative) / 1e6))
    top.sort(key=lambda item: -item[1])
    return total, top, modules


#: Modules reported when a command imports them: the run path needs only scipy.io, for .mat files.
WATCHED = (
    "sklearn",
    "skl2onnx",
    "onnx",
    "matplotlib",
    "tqdm",
    "scipy.stats",
    "scipy.signal",
    "scipy.io",
)


def measure_command(command: Sequence[str]) -> dict:
    """Run ``python -X importtime -m edgemon.cli COMMAND``; return times, imports, peak memory."""
    with tempfile.TemporaryFile("w+") as log:
        start = time.perf_counter()
        process = subprocess.Popen(
            [PYTHON, "-X", "importtime", "-m", "edgemon.cli", *command],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        peak = wait_peak_kib(process)
        elapsed = time.perf_counter() - start
        log.seek(0)
        stderr = log.read()
    if process.returncode != 0:
        raise RuntimeError(f"edgemon {' '.join(command)} failed:\n{stderr[-2000:]}")
    total, top, modules = parse_importtime(stderr)
    return {
        "elapsed": elapsed,
        "imports": total,
        "top": top[:8],
        "modules": len(modules),
        "watched": [name for name in WATCHED if name in modules],
        "peak": peak,
    }


SCIPY_SIGNAL_COST = """
import sys, time
import numpy, scipy.io
def rss():
    return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0])
before = rss()
start = time.perf_counter()
import scipy.signal
print(time.perf_counter() - start, rss() - before, "scipy.stats" in sys.modules)
"""


def scipy_signal_cost() -> tuple[float, int, bool]:
    """Return the seconds and KiB that ``import scipy.signal`` adds, and if it loads scipy.stats.

    The process has imported numpy and scipy.io before, as a replay of a ``.mat`` file has.
    """
    output = subprocess.run(
        [PYTHON, "-c", SCIPY_SIGNAL_COST], capture_output=True, text=True, check=True
    ).stdout
    seconds, kib, stats = output.split()
    return float(seconds), int(kib), stats == "True"
