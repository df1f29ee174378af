"""Benchmark the feature stage against a naive per-window loop and against its cost floor.

All cases run in one process on the same windows, interleaved round by
round, so that a busy machine slows every case alike and the ratios stay
meaningful.  Cases, all for the six statistics of both domains (the ``all``
alias, 12 features per window):

- ``batch 64``: ``FeatureExtractor.transform`` on 64 windows at once, as
  training does;
- ``per window``: ``transform`` on one window at a time, in the shape
  (1, window, 1) that the daemon's ring buffer hands over when a block
  completes one window;
- ``per window with flags``: the same through ``transform_with_flags``,
  which also returns the window flags, and ``per window, separate flags``
  through ``window_flags`` and ``transform``.  The naive loop computes no
  flags, so these two are not compared with it for the target;
- ``naive loop``: numpy and ``scipy.stats`` on one window at a time;
- ``floor``: one numpy pass (``sum``) plus one ``rfft`` over the same 64 windows.

Times are the CPU time of the benchmarking thread by default, so that other
processes on a shared machine inflate them less.  ``--clock wall`` measures
elapsed time instead.  Peak memory is measured with ``tracemalloc`` while
streams of two lengths pass through ``transform_with_flags`` one window at a
time: it must not grow with the stream.

Run ``.venv/bin/python benchmarks/features.py`` from the repository; it reads
the drive-end channel of a CWRU recording when ../shared/data is present and
uses Gaussian noise otherwise.  ``--help`` lists the options.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgemon.features import FeatureExtractor, window_flags

REPOSITORY = Path(__file__).resolve().parents[1]
CWRU_FILE = "12k_Drive_End_IR014_1_170.mat"

#: Targets from the feature stage's specification, on a 2-core x86 machine.
TARGETS = {
    "batch 64 vs naive": (">=", 40.0),
    "batch 64 vs floor": ("<=", 6.0),
    "per window vs naive": (">=", 20.0),
}


def load_windows(n_windows: int, window: int, data: Path | None) -> tuple[np.ndarray, float, str]:
    """Return ``n_windows`` windows that overlap by half, the sample rate and a data description."""
    path = data / "cwru" / CWRU_FILE if data is not None else None
    if path is not None and path.is_file():
        from edgemon.recordings import read_recording

        recording = read_recording(path, channels="DE")
        signal = recording.samples[:, 0]
        hop = window // 2
        needed = (n_windows - 1) * hop + window
        if signal.size < needed:
            raise SystemExit(
                f"{path} has {signal.size} samples, but {n_windows} windows need {needed}; "
                "lower --batch or --window"
            )
        starts = np.arange(n_windows) * hop
        windows = signal[starts[:, np.newaxis] + np.arange(window)]
        return windows, recording.sample_rate, f"CWRU {CWRU_FILE}, drive-end channel, hop {hop}"
    rng = np.random.default_rng(0)
    return rng.normal(size=(n_windows, window)), 12000.0, "Gaussian noise (CWRU data not found)"


def naive_features(window: np.ndarray, taper: np.ndarray, scale: np.ndarray) -> list[float]:
    """Compute the 12 features of one window the obvious way, with scipy.stats."""
    import scipy.stats

    amplitude = np.abs(np.fft.rfft((window - window.mean()) * taper)) * scale
    values = []
    for x in (window, amplitude):
        values += [
            np.mean(x),
            np.median(x),
            np.std(x),
            scipy.stats.iqr(x),
            scipy.stats.skew(x),
            scipy.stats.kurtosis(x),
        ]
    return values


def measure(
    cases: dict[str, Callable[[], object]], rounds: int, clock: Callable[[], float]
) -> dict[str, list[float]]:
    """Run every case once per round, interleaved, and return the seconds of each run."""
    for case in cases.values():
        case()
    seconds: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, case in cases.items():
            start = clock()
            case()
            seconds[name].append(clock() - start)
    return seconds


def stream_peak_memory(extractor: FeatureExtractor, windows: np.ndarray, n_windows: int) -> int:
    """Return the peak bytes traced while ``n_windows`` windows pass one at a time."""
    column = windows[:, :, np.newaxis]
    extractor.transform_with_flags(column[:1])
    tracemalloc.start()
    tracemalloc.reset_peak()
    for i in range(n_windows):
        extractor.transform_with_flags(column[i % len(column)][np.newaxis])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """Return the 25th, 50th and 75th percentiles of ``values``."""
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, median, q3


def machine_description() -> str:
    """Return the CPU model, core count, OS and library versions, in one line."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    import numpy

    return (
        f"{model}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, numpy {numpy.__version__}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--window", type=int, default=2048, help="samples per window (default 2048)"
    )
    parser.add_argument("--batch", type=int, default=64, help="windows per batch (default 64)")
    parser.add_argument("--rounds", type=int, default=40, help="interleaved rounds (default 40)")
    parser.add_argument(
        "--naive-windows",
        type=int,
        default=8,
        help="windows the naive loop processes per round (default 8)",
    )
    parser.add_argument(
        "--clock",
        choices=["cpu", "wall"],
        default="cpu",
        help="cpu: CPU time of this thread (default); wall: elapsed time",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("EDGEMON_SHARED_DATA", REPOSITORY.parent / "shared" / "data")),
        help="folder of the shared recordings (default: $EDGEMON_SHARED_DATA, else ../shared/data)",
    )
    args = parser.parse_args(argv)

    windows, sample_rate, description = load_windows(args.batch, args.window, args.data)
    extractor = FeatureExtractor("all", sample_rate, args.window)
    full = FeatureExtractor(
        [
            "time.all",
            "time.rms",
            "time.peak",
            "time.crest_factor",
            "freq.all",
            "freq.centroid",
            "band.rms[0-1000]",
            "band.rms[1000-3000]",
            "band.rms[3000-6000]",
        ],
        sample_rate,
        args.window,
    )
    taper = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(args.window) / args.window)
    scale = np.full(args.window // 2 + 1, 2 / taper.sum())
    scale[[0, -1]] /= 2
    column = windows[:, :, np.newaxis]
    n_naive = min(args.naive_windows, args.batch)

    def per_window() -> None:
        for i in range(args.batch):
            extractor.transform(column[i : i + 1])

    def per_window_with_flags() -> None:
        for i in range(args.batch):
            extractor.transform_with_flags(column[i : i + 1])

    def per_window_separate_flags() -> None:
        for i in range(args.batch):
            one = column[i : i + 1]
            window_flags(one)
            extractor.transform(one)

    def naive() -> None:
        for i in range(n_naive):
            naive_features(windows[i], taper, scale)

    cases = {
        "floor": lambda: (np.add.reduce(windows, axis=1), np.fft.rfft(windows, axis=1)),
        "batch 64": lambda: extractor.transform(windows),
        "per window": per_window,
        "per window with flags": per_window_with_flags,
        "per window, separate flags": per_window_separate_flags,
        "naive loop": naive,
        "batch 64, 21 features": lambda: full.transform(windows),
    }
    per_case_windows = {
        "floor": args.batch,
        "batch 64": args.batch,
        "per window": args.batch,
        "per window with flags": args.batch,
        "per window, separate flags": args.batch,
        "naive loop": n_naive,
        "batch 64, 21 features": args.batch,
    }
    load = os.getloadavg()
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    seconds = measure(cases, args.rounds, clock)
    per_window = {
        name: [s / per_case_windows[name] * 1e6 for s in runs] for name, runs in seconds.items()
    }
    medians = {name: quartiles(values)[1] for name, values in per_window.items()}

    short = 100
    long = 20 * short
    peak_short = stream_peak_memory(extractor, windows, short)
    peak_long = stream_peak_memory(extractor, windows, long)

    print(f"machine: {machine_description()}")
    print(f"data: {description}, {args.window} samples per window at {sample_rate:g} Hz")
    print(f"load average before the run: {' '.join(f'{x:.2f}' for x in load)}")
    print(f"rounds: {args.rounds}; {args.clock} time in microseconds per window (median, IQR)\n")
    # The minimum is what a round gets when nothing else runs on its core.
    # On a busy machine it shows the cost of the code better than the median.
    minimums = {name: min(values) for name, values in per_window.items()}
    print(
        "| case | median µs/window | IQR µs/window | min µs/window "
        "| x faster than naive (median, min) | x floor (median) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, values in per_window.items():
        q1, median, q3 = quartiles(values)
        faster = medians["naive loop"] / median
        faster_min = minimums["naive loop"] / minimums[name]
        print(
            f"| {name} | {median:.1f} | {q1:.1f} to {q3:.1f} | {minimums[name]:.1f} | "
            f"{faster:.1f}, {faster_min:.1f} | {median / medians['floor']:.2f} |"
        )

    ratios = {
        "batch 64 vs naive": medians["naive loop"] / medians["batch 64"],
        "batch 64 vs floor": medians["batch 64"] / medians["floor"],
        "per window vs naive": medians["naive loop"] / medians["per window"],
    }
    print("\n| target | measured | required | met |")
    print("|---|---:|---:|---|")
    met_all = True
    for name, value in ratios.items():
        relation, bound = TARGETS[name]
        met = value >= bound if relation == ">=" else value <= bound
        met_all &= met
        print(f"| {name} | {value:.1f}x | {relation} {bound:g}x | {'yes' if met else 'NO'} |")

    print(
        f"\npeak memory allocated while streaming one window at a time: "
        f"{peak_short / 1024:.1f} KiB "
        f"over {short} windows, {peak_long / 1024:.1f} KiB over {long} windows; "
        f"scratch arrays kept by the extractor: {extractor.workspace_nbytes / 1024:.0f} KiB"
    )
    return 0 if met_all else 1


if __name__ == "__main__":
    sys.exit(main())
