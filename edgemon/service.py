"""``edgemon run``: assemble the daemon from a configuration file and run it.

Loads every model, checks it against its sensor's source before anything is
opened where the source's format is known in advance, opens the sources,
starts the publisher, and runs the :class:`~edgemon.daemon.Daemon` until a
stop request.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from edgemon.config import DaemonConfig, SensorConfig, create_state_dir
from edgemon.daemon import Daemon, SensorRunner, StateSink, health_counters
from edgemon.errors import EdgemonError, ModelError, SourceError
from edgemon.model import Model, load_model
from edgemon.pipeline import SensorPipeline, check_model_for_source
from edgemon.sources import make_source
from edgemon.sources.base import Source

__all__ = ["PreparedSensor", "check_service", "run_service"]

logger = logging.getLogger(__name__)

#: Seconds the daemon waits at shutdown for the broker to acknowledge queued states.
FLUSH_TIMEOUT = 10.0
#: Seconds between health reports when no broker is configured.
CONSOLE_HEALTH_INTERVAL = 60.0


@dataclass
class PreparedSensor:
    """A sensor whose model is loaded and whose source is built but not opened."""

    config: SensorConfig
    model: Model
    source: Source
    #: False when the source learns its sample rate or channels only when it opens
    #: (a file source without ``sample_rate`` or ``channels``), so the model was
    #: checked against them only after :meth:`Source.open`.
    format_checked: bool = True


def prepare_sensors(config: DaemonConfig) -> list[PreparedSensor]:
    """Load every sensor's model and build its source, checking them against each other.

    Where a source's sample rate and channels are known before it opens,
    :func:`~edgemon.pipeline.check_model_for_source` checks the model against
    them here. Otherwise it checks the window, hop and features here and the
    rest when the pipeline is built after the source opens.

    Raises
    ------
    EdgemonError
        Listing the problems of every sensor at once.
    """
    prepared, problems = [], []
    for sensor in config.sensors:
        try:
            model = load_model(sensor.model, backend=sensor.backend)
            source = make_source(
                sensor.source_kind,
                sensor.source_options,
                name=f"{sensor.name} ({sensor.source_kind})",
            )
            meta = model.metadata
            try:
                sample_rate, channels = source.sample_rate, source.channels
                format_checked = True
            except SourceError:
                sample_rate, channels = meta.sample_rate, meta.channels
                format_checked = False
            check_model_for_source(
                model,
                sample_rate=sample_rate,
                channels=channels,
                source=source.name,
                window=sensor.window,
                hop=sensor.hop,
            )
            prepared.append(PreparedSensor(sensor, model, source, format_checked))
        except EdgemonError as exc:
            problems.append(f"sensor {sensor.name}: {exc}")
    if problems:
        raise ModelError("cannot start:\n  - " + "\n  - ".join(problems))
    return prepared


def check_service(config: DaemonConfig) -> list[str]:
    """Validate a configuration as far as possible without opening devices; return summary lines.

    Creates the state directory when a broker is configured, as the daemon would.

    Raises
    ------
    EdgemonError
        If a model does not match its source, or the state directory cannot be used.
    """
    lines = []
    for item in prepare_sensors(config):
        meta = item.model.metadata
        lines.append(
            f"sensor {item.config.name}: {item.config.source_kind} source, model {meta.model_id} "
            f"({meta.algorithm}, {meta.n_clusters} clusters, {meta.sample_rate:g} Hz, "
            f"window {meta.window}, states {', '.join(sorted(set(meta.states)))}) via "
            f"{item.model.backend}"
        )
        if not item.format_checked:
            lines.append(
                f"sensor {item.config.name}: the source's sample rate and channels are known "
                "only when it opens, so the daemon checks them against the model at start"
            )
    lines.append(f"feature stage: {_feature_kernel()}")
    if config.mqtt is not None:
        create_state_dir(config.state_dir, "[device] state_dir")
        lines.append(
            f"device {config.device}: states go to {config.mqtt.url}; "
            f"state directory {config.state_dir} is writable"
        )
    else:
        lines.append(
            f"device {config.device}: states go to the console (no [mqtt] table); "
            "no state directory is used"
        )
    return lines


def run_service(config: DaemonConfig, stop: threading.Event) -> int:
    """Run the daemon described by ``config`` until ``stop`` is set.

    Returns
    -------
    int
        Process exit status: 0 after a clean stop, 1 after a failure.
    """
    prepared = prepare_sensors(config)
    logger.info("feature stage: %s", _feature_kernel())
    runners: list[SensorRunner] = []
    sink = _make_sink(config, prepared, lambda: health_counters(runners))
    opened: list[PreparedSensor] = []
    try:
        for item in prepared:
            item.source.open()
            opened.append(item)
            pipeline = SensorPipeline(
                config.device,
                item.config.name,
                item.source,
                item.model,
                window=item.config.window,
                hop=item.config.hop,
                debounce=item.config.debounce,
            )
            runners.append(
                SensorRunner(
                    item.source,
                    pipeline,
                    sink,
                    stop,
                    queue_blocks=item.config.queue_blocks,
                    silence_timeout=item.config.silence_timeout,
                )
            )
    except EdgemonError:
        for item in opened:
            item.source.close()
        raise

    health_interval = (
        config.mqtt.health_interval if config.mqtt is not None else CONSOLE_HEALTH_INTERVAL
    )
    daemon = Daemon(config.device, runners, stop, health_interval=health_interval)
    sink.start()
    try:
        status = daemon.run()
    finally:
        if not sink.flush(FLUSH_TIMEOUT):
            logger.warning(
                "device %s: some states were not acknowledged within %.0f s; they stay in the "
                "outbox and go out after the next start",
                config.device,
                FLUSH_TIMEOUT,
            )
        sink.stop(FLUSH_TIMEOUT)
    return status


def _make_sink(
    config: DaemonConfig, prepared: list[PreparedSensor], health: Callable[[], Mapping[str, int]]
) -> StateSink:
    if config.mqtt is None:
        from edgemon.publish.console import ConsoleSink

        logger.info("device %s: no [mqtt] table; states go to standard output", config.device)
        return ConsoleSink()
    from edgemon.publish.client import MqttPublisher

    create_state_dir(config.state_dir, "[device] state_dir")
    return MqttPublisher(
        config.mqtt,
        config.device,
        state_dir=config.state_dir,
        sensors={
            item.config.name: tuple(
                sorted(set(item.model.metadata.states) | {"unknown", "invalid"})
            )
            for item in prepared
        },
        model_ids={item.config.name: item.model.metadata.model_id for item in prepared},
        window_periods={item.config.name: _window_period(item) for item in prepared},
        health=health,
    )


def _feature_kernel() -> str:
    """Describe which order-statistics kernel the feature stage runs; it only changes the speed."""
    from edgemon.features._order import COMPILED

    if COMPILED:
        return "compiled order-statistics kernel"
    return (
        "numpy order statistics, because the C kernel is not installed: same results, more "
        "CPU for median and quartile features; to build it, install gcc and python3-dev and "
        "reinstall edgemon without EDGEMON_PURE_PYTHON"
    )


def _window_period(item: PreparedSensor) -> float:
    """Return the seconds between window starts of a prepared sensor."""
    meta = item.model.metadata
    return (item.config.hop or meta.hop) / meta.sample_rate
