"""Benchmark the daemon's run path: processing cost, outbox cost, latency, memory and start-up.

Everything runs in one invocation on the bundled CWRU excerpt
(``edgemon/data/cwru``), with models trained by the default settings of
``edgemon train`` (those of ``edgemon demo``), so that ratios compare cases
measured on the same machine at the same time:

- **stage**: CPU time per window of what the processing thread does with each
  block, ``SensorPipeline.process`` (ring buffer, features and window flags,
  model, state events). It runs with the onnxruntime and the numpy backend,
  for the single-channel 12 kHz CWRU model and for a 3-axis model at
  25.6 kHz, on blocks of the size ``edgemon-sim`` sends over UDP. The share
  of one core that following each stream in real time takes follows;
- **outbox**: wall and CPU time per state of storing states in the SQLite
  outbox, one transaction per state (how each state was stored before
  batching) and one transaction per batch of 4, 16 and 64 states;
- **latency**: from the arrival of a block to the commit of its states in
  the outbox, through the daemon's real reader and processing threads and
  ``MqttPublisher`` (to a Mosquitto started here on a free port), batched and
  one transaction per state; and the states committed per second when blocks
  come as fast as they are taken;
- **memory**: resident memory of a real ``edgemon run`` process (udp source,
  real model, Mosquitto) after start-up and after streaming from
  ``edgemon-sim`` for two stream lengths, with its CPU time; of
  ``edgemon replay`` and of ``edgemon train``; and the peak of the memory the
  stage allocates, for two stream lengths;
- **start-up**: ``python -X importtime`` of ``edgemon run --check`` (a udp
  source) and of ``edgemon train``.

The 3-axis recordings are built from the excerpt, which has two
accelerometers: x is the drive-end channel, y the fan-end channel and z the
drive-end channel shifted by half the recording, all resampled to 25.6 kHz.

Run ``.venv/bin/python benchmarks/pipeline.py`` from the repository. It took
18 minutes on a 2-core machine busy with other work, and ``--quick`` about
one minute on the same machine when it was less busy. It prints each step, with the seconds
since the start, to standard error, and the report to standard output at the end.
``--markdown FILE`` also writes the tables to FILE; ``--help`` lists the other options.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from daemon_processes import (
    free_port,
    measure_command,
    measure_run_memory,
    scipy_signal_cost,
    start_mosquitto,
    started_memory,
    write_run_config,
)
from daemon_stage import (
    Stream,
    measure_latency,
    measure_outbox,
    measure_stage,
    prepare_streams,
    run_stage,
    stage_peak_memory,
)

from edgemon.data import CWRU_EXCERPT
from edgemon.model import load_model


def machine_lines(outbox_dir: Path) -> list[str]:
    """Describe the CPU, kernel, Python, libraries and the outbox's filesystem."""
    from importlib.metadata import version

    lscpu = (
        subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        if shutil.which("lscpu")
        else ""
    )
    fields = {
        key.strip(): value.strip()
        for key, _, value in (line.partition(":") for line in lscpu.splitlines())
    }
    model = fields.get("Model name", platform.processor())
    cpu = f"{model}, {fields.get('CPU(s)', os.cpu_count())} CPUs"
    if "Hypervisor vendor" in fields:
        cpu += f" under {fields['Hypervisor vendor']}"
    libraries = ", ".join(
        f"{name} {version(name)}" for name in ("numpy", "scipy", "onnxruntime", "paho-mqtt")
    )
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    uname = subprocess.run(["uname", "-a"], capture_output=True, text=True).stdout.strip()
    return [
        f"- CPU: {cpu}; load average at the start {load} (1, 5, 15 min)",
        f"- `uname -a`: {uname}",
        f"- Python {platform.python_version()}, {libraries}, SQLite {sqlite3.sqlite_version}",
        f"- outbox directory {outbox_dir}: {filesystem(outbox_dir)}",
    ]


def filesystem(path: Path) -> str:
    """Return the filesystem type and device that ``path`` is on, from /proc/mounts."""
    best = ("", "unknown", "unknown")
    for line in Path("/proc/mounts").read_text().splitlines():
        device, mount, kind = line.split()[:3]
        if str(path.resolve()).startswith(mount) and len(mount) > len(best[0]):
            best = (mount, kind, device)
    return f"{best[1]} on {best[2]}"


class Progress:
    """Print progress lines to standard error, each with the seconds since the benchmark started.

    The report goes to standard output at the end, so ``> report.md`` keeps
    only the report. Every call sits between measurements, never inside a
    timed run.
    """

    def __init__(self) -> None:
        self._start = time.monotonic()

    def __call__(self, message: str) -> None:
        elapsed = time.monotonic() - self._start
        print(f"[{elapsed:7.1f} s] {message}", file=sys.stderr, flush=True)


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer rounds and shorter streams, for a run of a minute or two",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="interleaved rounds of the stage and outbox cases (default 15, quick 5)",
    )
    parser.add_argument(
        "--latency-seconds",
        type=float,
        default=None,
        help="seconds streamed in real time per latency case (default 20, quick 5)",
    )
    parser.add_argument(
        "--outbox-dir",
        type=Path,
        default=None,
        help="folder for the outbox files, on the disk to measure (default: a temporary folder)",
    )
    parser.add_argument(
        "--skip",
        default="",
        metavar="LIST",
        help="comma-separated sections to leave out: stage, outbox, latency, memory, startup",
    )
    parser.add_argument(
        "--markdown",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the report to FILE as Markdown",
    )
    args = parser.parse_args(argv)
    rounds = args.rounds or (5 if args.quick else 15)
    latency_seconds = args.latency_seconds or (5.0 if args.quick else 20.0)
    skip = {name.strip() for name in args.skip.split(",") if name.strip()}

    workdir = Path(tempfile.mkdtemp(prefix="edgemon-bench-"))
    outbox_dir = args.outbox_dir or workdir
    outbox_dir.mkdir(parents=True, exist_ok=True)
    report = ["Machine:", "", *machine_lines(outbox_dir), ""]
    report += [
        "Command: `python benchmarks/pipeline.py "
        + " ".join(argv if argv is not None else sys.argv[1:])
        + "`",
        "",
    ]
    progress = Progress()
    broker = None
    try:
        progress("preparing the streams and training their models")
        streams = prepare_streams(workdir)
        if "stage" not in skip or "outbox" not in skip:
            report += stage_section(
                streams,
                rounds,
                quick=args.quick,
                skip=skip,
                outbox_dir=outbox_dir,
                progress=progress,
            )
        broker = start_mosquitto(workdir)
        broker_url = broker[1] if broker else None
        if "latency" not in skip:
            report += latency_section(streams, broker_url, workdir, latency_seconds, progress)
        if "memory" not in skip or "startup" not in skip:
            progress("memory and start-up: edgemon train on the excerpt")
            dataset = ["--dataset", "cwru", "--data", str(CWRU_EXCERPT), "--channel", "DE"]
            out = ["--out", str(workdir / "train.onnx"), "--quiet"]
            train = measure_command(["train", *dataset, *out])
        if "memory" not in skip:
            report += memory_section(
                streams, broker_url, workdir, train, quick=args.quick, progress=progress
            )
        if "startup" not in skip:
            report += startup_section(streams[0], workdir, train, progress)
        progress("done")
    finally:
        if broker is not None:
            broker[0].terminate()
            broker[0].wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
    report.append(
        "Load average at the end: " + ", ".join(f"{value:.1f}" for value in os.getloadavg()) + "."
    )
    text = "\n".join(report)
    print(text)
    if args.markdown is not None:
        args.markdown.write_text(text + "\n")
    return 0


def stage_section(
    streams: list[Stream],
    rounds: int,
    *,
    quick: bool,
    skip: set[str],
    outbox_dir: Path,
    progress: Callable[[str], None],
) -> list[str]:
    lines = []
    n_samples = 60 * 2048 if quick else 120 * 2048
    if "stage" not in skip:
        progress("stage: loading the models and warming up")
        rows = measure_stage(streams, rounds, n_samples, progress)
        lines += [
            f"Processing stage, CPU time per window (median of {rounds} rounds of about "
            f"{n_samples // 1024} windows, min to max), blocks of the size edgemon-sim sends:",
            "",
            table(
                [
                    "stream",
                    "backend",
                    "block",
                    "hop",
                    "µs per window",
                    "min to max",
                    "windows/s",
                    "share of one core",
                ],
                [
                    [
                        r["stream"],
                        r["backend"],
                        r["block"],
                        r["hop"],
                        f"{r['us_per_window']:.0f}",
                        f"{r['spread'][0]:.0f} to {r['spread'][1]:.0f}",
                        f"{r['windows_per_second']:.1f}",
                        f"{100 * r['core_share']:.1f} %",
                    ]
                    for r in rows
                ],
            ),
            "",
            "The same runs with each part of the stage timed where the pipeline calls it, "
            "CPU µs per window (median); the rest is the state logic, the events and the code "
            "between the parts:",
            "",
            table(
                ["stream", "backend", *rows[0]["parts"]],
                [
                    [r["stream"], r["backend"], *(f"{v:.0f}" for v in r["parts"].values())]
                    for r in rows
                ],
            ),
            "",
        ]
        progress("stage: peak memory of 200 and 2000 windows")
        peak_short = stage_peak_memory(streams[1], 200 * 1024)
        peak_long = stage_peak_memory(streams[1], 2000 * 1024)
        lines += [
            "Peak memory Python allocates in the stage (tracemalloc, 3 axes): "
            f"{peak_short / 1024:.0f} KiB "
            f"over 200 windows, {peak_long / 1024:.0f} KiB over 2000 windows.",
            "",
        ]
    if "outbox" not in skip:
        model = load_model(streams[0].model_path)
        _, _, events = run_stage(model, streams[0], 40 * 2048)
        n_states = 200 if quick else 1000
        sizes = (1, 4, 16, 64)
        seconds = measure_outbox(outbox_dir, events, sizes, n_states, max(3, rounds // 3), progress)
        wall = {size: [w for w, _ in runs] for size, runs in seconds.items()}
        cpu = {size: [c for _, c in runs] for size, runs in seconds.items()}
        naive = statistics.median(wall[1])
        rows = []
        for size in sizes:
            median = statistics.median(wall[size])
            rows.append(
                [
                    size if size > 1 else "1 (one transaction per state)",
                    f"{median * 1e3:.3f}",
                    f"{min(wall[size]) * 1e3:.3f} to {max(wall[size]) * 1e3:.3f}",
                    f"{statistics.median(cpu[size]) * 1e6:.0f}",
                    f"{naive / median:.1f}",
                ]
            )
        lines += [
            f"Outbox, time per state over {n_states} states "
            f"(median of {len(wall[1])} rounds), "
            f"synchronous=FULL in WAL mode on {filesystem(outbox_dir)}:",
            "",
            table(
                [
                    "states per transaction",
                    "wall ms per state",
                    "min to max",
                    "CPU µs per state",
                    "x faster than one per state",
                ],
                rows,
            ),
            "",
        ]
    return lines


def latency_section(
    streams: list[Stream],
    broker_url: str | None,
    workdir: Path,
    seconds: float,
    progress: Callable[[str], None],
) -> list[str]:
    paced_rows, unpaced_rows = [], []
    for stream, hop in ((streams[0], None), (streams[1], 256)):
        model_hop = hop or load_model(stream.model_path).metadata.hop
        unpaced = {}
        for per_state in (True, False):
            how = "one per state" if per_state else "batched"
            case = f"{stream.name}, hop {model_hop}, {how}"
            progress(f"latency: {case}, {seconds:g} s in real time")
            result = measure_latency(stream, broker_url, workdir, seconds, model_hop, per_state)
            paced_rows.append(
                [
                    stream.name,
                    model_hop,
                    how,
                    result["states"],
                    result["transactions"],
                    f"{result['median']:.2f}",
                    f"{result['p99']:.2f}",
                    f"{result['max']:.2f}",
                    result["dropped"],
                ]
            )
            progress(f"latency: {case}, as fast as possible")
            unpaced[per_state] = measure_latency(
                stream, broker_url, workdir, seconds, model_hop, per_state, paced=False
            )
        for per_state, result in unpaced.items():
            unpaced_rows.append(
                [
                    stream.name,
                    model_hop,
                    "one per state" if per_state else "batched",
                    result["states"],
                    result["transactions"],
                    f"{result['states_per_second']:.0f}",
                    f"{result['states_per_second'] / unpaced[True]['states_per_second']:.1f}",
                ]
            )
    target = (
        f"MqttPublisher to Mosquitto at {broker_url}"
        if broker_url
        else "the console sink (no Mosquitto found)"
    )
    return [
        "Latency from a block's arrival to the commit of its states, "
        f"{seconds:g} s of stream in real time through SensorRunner and {target}. "
        "One transaction per state is how the daemon stored states "
        "before it submitted batches. Samples are dropped when the processing thread falls "
        "64 blocks (the default queue_blocks) behind the reader:",
        "",
        table(
            [
                "stream",
                "hop",
                "outbox writes",
                "states",
                "transactions",
                "median ms",
                "p99 ms",
                "max ms",
                "samples dropped",
            ],
            paced_rows,
        ),
        "",
        f"The same {seconds:g} s of stream read as fast as possible "
        "(a finite source, as `edgemon replay --speed 0` "
        "reads a file), states committed per second:",
        "",
        table(
            [
                "stream",
                "hop",
                "outbox writes",
                "states",
                "transactions",
                "states/s",
                "x one per state",
            ],
            unpaced_rows,
        ),
        "",
    ]


def memory_section(
    streams: list[Stream],
    broker_url: str | None,
    workdir: Path,
    train: dict,
    *,
    quick: bool,
    progress: Callable[[str], None],
) -> list[str]:
    stream_seconds, speed = (60.0, 10.0) if quick else (300.0, 10.0)
    meta = load_model(streams[0].model_path).metadata
    progress(
        f"memory: edgemon run receiving 2 x {stream_seconds:g} s of stream at {speed:g}x "
        f"(about {2 * stream_seconds / speed:.0f} s)"
    )
    run = measure_run_memory(
        workdir,
        streams[0].model_path,
        broker_url,
        stream_seconds,
        speed,
        window=meta.window,
        hop=meta.hop,
    )
    progress("memory: edgemon run with the numpy backend")
    numpy_backend = started_memory(workdir, streams[0].model_path, broker_url, "numpy")
    progress("memory: edgemon replay of normal_0_97.mat")
    replay = measure_command(
        [
            "replay",
            "--model",
            str(streams[0].model_path),
            "--input",
            str(CWRU_EXCERPT / "normal_0_97.mat"),
            "--channel",
            "DE",
            "--speed",
            "0",
        ]
    )
    rows = [
        ["`edgemon run`, after start-up", run["started"]["VmRSS"], run["started"]["VmHWM"]],
        [
            '`edgemon run` with `backend = "numpy"`, after start-up',
            numpy_backend["VmRSS"],
            numpy_backend["VmHWM"],
        ],
        [
            f"`edgemon run`, after {stream_seconds:g} s of stream",
            run["stream 1"]["VmRSS"],
            run["stream 1"]["VmHWM"],
        ],
        [
            f"`edgemon run`, after {2 * stream_seconds:g} s of stream",
            run["stream 2"]["VmRSS"],
            run["stream 2"]["VmHWM"],
        ],
        ["`edgemon replay` of normal_0_97.mat (48 kHz, resampled)", "", replay["peak"]],
        ["`edgemon train` on the excerpt", "", train["peak"]],
    ]
    return [
        "Memory, KiB (`edgemon run`: udp source, the 1-axis model, "
        f"{'Mosquitto' if broker_url else 'console'}; "
        f"edgemon-sim at {speed:g}x real time, about {run['windows']} windows in all):",
        "",
        table(["process", "resident (VmRSS)", "peak (VmHWM)"], rows),
        "",
        "CPU time of the whole `edgemon run` process "
        "(all threads: UDP reader, processing, MQTT publisher) "
        f"while it received {2 * stream_seconds:g} s of stream at {run['speed']:g}x real time: "
        f"{run['cpu']:.2f} s "
        f"in {run['wall']:.1f} s, {1e3 * run['cpu'] / run['windows']:.2f} ms per window, "
        f"{100 * run['cpu'] / (2 * stream_seconds):.2f} % of one core at real time.",
        "",
        "`edgemon replay` of a 48 kHz file imports: "
        f"{', '.join(replay['watched']) or 'none of the watched modules'}.",
        "",
    ]


def startup_section(
    stream: Stream, workdir: Path, train: dict, progress: Callable[[str], None]
) -> list[str]:
    progress("start-up: edgemon run --check")
    config = write_run_config(workdir, stream.model_path, free_port(socket.SOCK_DGRAM), None)
    check = measure_command(["run", "--config", str(config), "--check"])
    lines = ["Start-up (`python -X importtime -m edgemon.cli ...`):", ""]
    lines.append(
        table(
            [
                "command",
                "wall s",
                "import s",
                "modules",
                "watched modules imported",
                "largest top-level imports (cumulative s)",
            ],
            [
                [
                    name,
                    f"{r['elapsed']:.2f}",
                    f"{r['imports']:.2f}",
                    r["modules"],
                    ", ".join(r["watched"]) or "none",
                    ", ".join(f"{module} {seconds:.2f}" for module, seconds in r["top"][:5]),
                ]
                for name, r in (
                    ("`run --check`, udp source", check),
                    ("`train` on the excerpt", train),
                )
            ],
        )
    )
    lines.append("")
    progress("start-up: import scipy.signal")
    seconds, kib, stats = scipy_signal_cost()
    lines += [
        "`import scipy.signal` in a process that has imported numpy and scipy.io: "
        f"{seconds:.2f} s, {kib / 1024:.0f} MiB more resident memory; "
        f"it imports scipy.stats: {'yes' if stats else 'no'}.",
        "",
    ]
    return lines


if __name__ == "__main__":
    sys.exit(main())
