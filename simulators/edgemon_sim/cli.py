"""``edgemon-sim``: stream a recording over UDP as if it came from a live sensor.

Example::

    edgemon-sim --input 12k_Drive_End_IR007_0_105.mat --channel DE --udp 127.0.0.1:9870

The daemon's ``udp`` source, configured with the same sample rate and
channels, receives the stream. Progress goes to standard error every few
seconds, and the achieved sample rate is reported on exit.
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
import threading
from collections.abc import Sequence

from edgemon.errors import EdgemonError
from edgemon.sources.wire import max_samples_per_packet
from edgemon_sim.streamer import Streamer, StreamStats

__all__ = ["main", "parse_address"]

logger = logging.getLogger("edgemon_sim")


def parse_address(text: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[V6ADDR]:PORT`` for IPv6) into a (host, port) pair."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(
            f"expected HOST:PORT with a port from 1 to 65535, e.g. 127.0.0.1:9870, got {text!r}"
        )
    return host.strip("[]"), int(port)


def _positive(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``edgemon-sim``."""
    parser = argparse.ArgumentParser(
        prog="edgemon-sim",
        description="Stream a vibration recording over UDP in the edgemon framing, paced at "
        "its sample rate, as a stand-in for a live sensor.",
    )
    parser.add_argument(
        "--input",
        required=True,
        metavar="FILE",
        help="recording to stream (.mat, IMS text, .csv, .wav, .npy)",
    )
    parser.add_argument(
        "--channel",
        action="append",
        metavar="NAME",
        help="channel to stream; repeat for several (default: all)",
    )
    parser.add_argument(
        "--udp",
        type=parse_address,
        default=("127.0.0.1", 9870),
        metavar="HOST:PORT",
        help="destination (default: 127.0.0.1:9870)",
    )

    parser.add_argument(
        "--rate",
        type=_positive,
        metavar="HZ",
        help="resample to this rate in Hz before streaming (default: the file's)",
    )
    parser.add_argument(
        "--file-rate",
        type=_positive,
        metavar="HZ",
        help="the file's rate in Hz, for .npy and CSV files that do not state it",
    )
    parser.add_argument(
        "--speed",
        type=_positive,
        default=1.0,
        help="1 streams in real time, 10 ten times faster (default: 1)",
    )
    parser.add_argument(
        "--loop",
        action="store_true",
        help="start again at the end; the sample index keeps increasing",
    )

    parser.add_argument(
        "--seconds", type=_positive, metavar="S", help="stop after S seconds of stream time"
    )
    parser.add_argument(
        "--int16", action="store_true", help="send int16 counts instead of float32 (needs --scale)"
    )
    parser.add_argument(
        "--scale",
        type=_positive,
        metavar="G",
        help="g per int16 count, e.g. 0.00048828125 for a +-16 g sensor",
    )

    parser.add_argument(
        "--packet-samples",
        type=int,
        metavar="N",
        help="samples per channel in each packet (default: as many as fit "
        "in 1472 bytes, at most 256)",
    )
    parser.add_argument(
        "--drop-every",
        type=_count,
        default=0,
        metavar="N",
        help="loss injection: skip every N-th packet (default: 0, none)",
    )
    parser.add_argument(
        "--progress",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds between progress lines; 0 turns them off (default: 5)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``edgemon-sim``; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="edgemon-sim: %(message)s", stream=sys.stderr)

    if args.int16 and args.scale is None:
        parser.error("--int16 needs --scale G, the value of one count in g")
    if args.scale is not None and not args.int16:
        parser.error("--scale applies to --int16 counts only")
    if args.drop_every == 1:
        parser.error("--drop-every 1 would drop every packet; use 2 or more")
    sample_format = "int16" if args.int16 else "float32"

    try:
        recording = _load(args)
        n_channels = recording.samples.shape[1]
        packet_samples = args.packet_samples or max(
            1, min(256, max_samples_per_packet(n_channels, sample_format))
        )
        streamer = Streamer(
            recording.samples,
            recording.sample_rate,
            args.udp,
            packet_samples=packet_samples,
            speed=args.speed,
            loop=args.loop,
            sample_format=sample_format,
            scale=args.scale or 1.0,
            drop_every=args.drop_every,
            max_seconds=args.seconds,
        )
    except (EdgemonError, OSError) as exc:
        logger.error("%s", exc)
        return 2

    logger.info(
        "streaming %s [%s] at %g Hz to %s:%d, %d samples per packet, %s%s",
        recording.name,
        ",".join(recording.channels),
        recording.sample_rate,
        *args.udp,
        packet_samples,
        f"{args.speed:g}x real time",
        f", dropping every {args.drop_every}th packet" if args.drop_every else "",
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    interval = args.progress if args.progress > 0 else math.inf
    try:
        stats = streamer.run(stop, _report_progress, interval)
    except KeyboardInterrupt:
        logger.info("interrupted")
        return 130
    except OSError as exc:
        logger.error("sending to %s:%d failed: %s", *args.udp, exc)
        return 1

    logger.info(
        "done: %d packets sent, %d dropped on purpose, %d samples in %.2f s; achieved %.1f "
        "samples/s, target %.1f (%+.3f %%)",
        stats.packets_sent,
        stats.packets_dropped,
        stats.samples_streamed,
        stats.elapsed,
        stats.achieved_rate,
        stats.target_rate,
        100 * (stats.achieved_rate / stats.target_rate - 1) if stats.elapsed > 0 else 0.0,
    )
    return 0


def _load(args: argparse.Namespace):
    from edgemon.recordings import read_recording, resample

    recording = read_recording(args.input, channels=args.channel, sample_rate=args.file_rate)
    if args.rate is not None and args.rate != recording.sample_rate:
        recording = resample(recording, args.rate)
    return recording


def _report_progress(stats: StreamStats) -> None:
    logger.info(
        "%.1f s: %d samples, %d packets sent, %d dropped, %.1f samples/s",
        stats.elapsed,
        stats.samples_streamed,
        stats.packets_sent,
        stats.packets_dropped,
        stats.achieved_rate,
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
