"""What each ``edgemon`` sub-command runs, given its parsed options.

Each handler imports what its command needs when it runs, so ``edgemon run``
and ``edgemon replay`` never load the training stack (scikit-learn, skl2onnx,
matplotlib). Handlers return the process exit status.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from edgemon.errors import ConfigError

if TYPE_CHECKING:
    from edgemon.publish.url import BrokerUrl

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_INVALID",
    "EXIT_OK",
    "run_demo",
    "run_evaluate",
    "run_inspect",
    "run_replay",
    "run_run",
    "run_train",
    "run_watch",
]

logger = logging.getLogger("edgemon")

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_INTERRUPTED = 0, 1, 2, 130


def run_train(args: argparse.Namespace) -> int:
    from edgemon.training.command import train_from_args

    return train_from_args(args)


def run_run(args: argparse.Namespace) -> int:
    from edgemon.config import load_config
    from edgemon.service import check_service, run_service

    config = load_config(args.config)
    logging.getLogger().setLevel(config.log_level.upper())
    if args.check:
        for line in check_service(config):
            print(line)
        print(f"{args.config}: OK")
        return EXIT_OK
    with stop_on_signals() as stop:
        return run_service(config, stop)


def run_replay(args: argparse.Namespace) -> int:
    from edgemon.model import load_model
    from edgemon.replay import ReplayInput, check_replay_inputs, replay_files
    from edgemon.summary import print_replay_summary

    if not (math.isfinite(args.flush_timeout) and args.flush_timeout >= 0):
        raise ConfigError(
            f"--flush-timeout must be a number of seconds >= 0, got {args.flush_timeout}"
        )
    if args.file_sample_rate is not None and not (
        math.isfinite(args.file_sample_rate) and args.file_sample_rate > 0
    ):
        raise ConfigError(
            f"--file-sample-rate must be a positive number of Hz, got {args.file_sample_rate}"
        )
    model = load_model(args.model, backend=args.backend)
    file_channels, rename = _replay_channels(args.channels, model.metadata.channels)
    channels = tuple(rename.get(name, name) for name in file_channels)
    _check_replay_channels(file_channels, channels, model.metadata.channels)
    sensor = args.sensor or channels[0].lower()
    inputs = [ReplayInput(path, args.start, args.duration) for path in args.inputs]
    # Every file is checked before the sink starts, so a bad one publishes nothing.
    check_replay_inputs(
        inputs,
        model,
        channels=file_channels,
        rename=rename,
        file_sample_rate=args.file_sample_rate,
        hop=args.hop,
    )
    sink = _replay_sink(args, model, sensor)
    sink.start()
    with stop_on_signals() as stop:
        try:
            results = replay_files(
                inputs,
                model,
                sink,
                stop,
                device=args.device,
                sensor=sensor,
                channels=file_channels,
                rename=rename,
                file_sample_rate=args.file_sample_rate,
                speed=args.speed,
                hop=args.hop,
                checked=True,
            )
        finally:
            delivered = _finish_sink(sink, args.flush_timeout)
    print_replay_summary(results, model, sys.stderr if args.mqtt is None else sys.stdout)
    if results and not any(result.windows for result in results):
        logger.warning(
            "no window was classified: each replayed segment is shorter than the model's "
            "window of %d samples (%.3g s); replay a longer --duration",
            model.metadata.window,
            model.metadata.window / model.metadata.sample_rate,
        )
    if stop.is_set():
        return EXIT_INTERRUPTED
    return EXIT_OK if delivered else EXIT_FAILED


def _replay_channels(
    values: list[str] | None, model_channels: tuple[str, ...]
) -> tuple[tuple[str, ...], dict[str, str]]:
    """Return the file channels to read and their renaming, from ``--channel`` values.

    Each value is a channel name, or ``FILE=MODEL`` to read the file's channel
    FILE as the model's channel MODEL. The same channels are read from every
    input file.
    """
    if not values:
        return model_channels, {}
    example = f"--channel x={model_channels[0]}"
    file_channels: list[str] = []
    rename: dict[str, str] = {}
    for value in values:
        parts = value.split("=")
        if len(parts) > 2 or not all(parts):
            raise ConfigError(
                f"--channel must be NAME or FILE=MODEL, got {value!r}; for example {example}"
            )
        if parts[0] in file_channels:
            raise ConfigError(f"--channel names the file channel {parts[0]!r} twice")
        file_channels.append(parts[0])
        if len(parts) == 2:
            rename[parts[0]] = parts[1]
    renamed = [rename.get(name, name) for name in file_channels]
    repeated = sorted({name for name in renamed if renamed.count(name) > 1})
    if repeated:
        raise ConfigError(
            f"--channel gives the model channel {repeated[0]!r} twice; each file channel needs "
            "its own model channel"
        )
    return tuple(file_channels), rename


def _check_replay_channels(
    file_channels: tuple[str, ...], channels: tuple[str, ...], expected: tuple[str, ...]
) -> None:
    """Raise unless ``channels``, the file channels after renaming, are the model's."""
    # Checked here so that the message names --channel; the pipeline's own
    # check would tell a replay user to configure the source.
    if channels == expected:
        return

    requested = " ".join(
        f"--channel {name}" if name == target else f"--channel {name}={target}"
        for name, target in zip(file_channels, channels, strict=True)
    )
    suggestion = " ".join(f"--channel {name}" for name in expected)
    if len(file_channels) == len(expected):
        renamed = " ".join(
            f"--channel {name}={target}"
            for name, target in zip(file_channels, expected, strict=True)
        )
        suggestion += f" (or leave --channel out), or {renamed} to read the file's channels as "
        suggestion += "the model's"
    raise ConfigError(
        f"{requested} gives the channels {list(channels)}, but the model was trained on the "
        f"channels {list(expected)}; pass {suggestion}. The same channels are read from "
        "every input file"
    )


def _replay_sink(args: argparse.Namespace, model, sensor: str):
    if args.mqtt is None:
        from edgemon.publish.console import ConsoleSink

        return ConsoleSink(json_lines=args.json)
    from edgemon.config import create_state_dir
    from edgemon.publish.client import MqttPublisher

    states = tuple(sorted(set(model.metadata.states) | {"unknown", "invalid"}))
    settings = _mqtt_settings(args)
    state_dir = args.state_dir or _default_replay_state_dir(settings.url)
    create_state_dir(state_dir, "--state-dir")
    return MqttPublisher(
        settings,
        args.device,
        state_dir=state_dir,
        sensors={sensor: states},
        model_ids={sensor: model.metadata.model_id},
        window_periods={sensor: (args.hop or model.metadata.hop) / model.metadata.sample_rate},
    )


def _finish_sink(sink, timeout: float) -> bool:
    """Flush and stop ``sink``; return whether every state was acknowledged in time."""
    delivered = sink.flush(timeout)
    if not delivered:
        # Only an MQTT publisher can fail to flush; the console prints at once.
        logger.warning(
            "%d states were not acknowledged within %g s; they stay in the outbox %s and "
            "are sent by the next replay to the same broker or with the same --state-dir",
            sink.stats.queue_depth,
            timeout,
            sink.outbox_path,
        )
    sink.stop(timeout)
    return delivered


def run_watch(args: argparse.Namespace) -> int:
    from edgemon.publish.watch import run_watch

    settings = _mqtt_settings(args)
    with stop_on_signals() as stop:
        return run_watch(
            settings, device=args.device, sensor=args.sensor, json_lines=args.json, stop=stop
        )


def run_inspect(args: argparse.Namespace) -> int:
    if args.json:
        from edgemon.model import load_model

        print(load_model(args.model, backend="numpy").metadata.to_json())
        return EXIT_OK
    from edgemon.training.inspect import inspect_text

    print(inspect_text(args.model))
    return EXIT_OK


def run_demo(args: argparse.Namespace) -> int:
    from edgemon.demo import run_demo

    with stop_on_signals() as stop:
        return run_demo(args.mqtt, out=args.out, speed=args.speed, stop=stop)


def run_evaluate(args: argparse.Namespace) -> int:
    from edgemon.training.evaluate import evaluate_from_args

    return evaluate_from_args(args)


def _mqtt_settings(args: argparse.Namespace):
    from edgemon.publish.settings import MqttSettings

    overrides = {"topic_prefix": args.topic_prefix, "protocol": args.protocol}
    for key in ("username", "password_env", "password_file", "ca"):
        value = getattr(args, key)
        if value is not None:
            overrides[key] = value
    return MqttSettings.from_url(args.mqtt, **overrides)


def _default_replay_state_dir(url: BrokerUrl) -> Path:
    """Return the replay outbox folder of one broker, so no broker gets another's queue."""
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    host = url.host.replace(":", "_")  # an IPv6 address
    return Path(base) / "edgemon" / "replay" / f"{host}-{url.port}"


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """Yield an event that SIGINT and SIGTERM set; a second SIGINT interrupts at once."""
    stop = threading.Event()

    def request_stop(signum: int, _frame) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        logger.info("%s received; stopping", signal.Signals(signum).name)
        stop.set()

    previous: dict[int, Callable | int | None] = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, request_stop)
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
